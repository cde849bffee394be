"""Import jobs: the persisted record, the worker, cancel, resume, a SIGKILL in the middle of an import, and
the SES API's CreateImportJob/GetImportJob/ListImportJobs (in process, and with boto3 against a server)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sescontacts.bulk.job_manager import ImportOptions, Job, JobManager
from sescontacts.history import Actor, acting_as
from sescontacts.services import Services
from sescontacts.settings import Settings
from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, run_server
from tests.support.sesapi_client import InProcessClient, open_services

LIST = "contacts"
HEADER = "emailAddress,unsubscribeAll,attributesData\n"


def make_csv(path: Path, rows: int, *, rejects_every: int = 0, duplicates_every: int = 0) -> Path:
    """``duplicates_every``: that row names the address of a row half as far into the file, in capitals (one
    contact by the local backend's rule), unsubscribed (kept unsubscribed where the earlier row was)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEADER)
        for i in range(rows):
            if rejects_every and i % rejects_every == 0:
                f.write(f"broken-{i},false,\n")
            elif duplicates_every and i and i % duplicates_every == 0:
                f.write(f'USER{i // 2}@EXAMPLE.COM,true,"{{""n"": {i}}}"\n')
            else:
                f.write(f'user{i}@example.com,{"true" if i % 7 == 0 else "false"},"{{""n"": {i}}}"\n')
    return path


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    s = Services.open(Settings(data_dir=tmp_path / "data"))
    s.ensure_default_list()
    yield s
    s.close()


def dump(db_path: Path) -> list[tuple[object, ...]]:
    """The contacts table's user-visible columns, in key order."""
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(
            "SELECT email_key, email, unsubscribe_all, topics, attributes FROM contacts ORDER BY list_id, email_key"
        ).fetchall()
    finally:
        conn.close()


def counters(db_path: Path) -> tuple[int, int, int, int]:
    """The list's kept counters next to the real counts: they must agree after any kill."""
    conn = sqlite3.connect(db_path)
    try:
        (kept_total, kept_unsub) = conn.execute(
            "SELECT contact_count, unsubscribed_count FROM contact_lists"
        ).fetchone()
        (total,) = conn.execute("SELECT count(*) FROM contacts").fetchone()
        (unsub,) = conn.execute("SELECT count(*) FROM contacts WHERE unsubscribe_all").fetchone()
        return kept_total, total, kept_unsub, unsub
    finally:
        conn.close()


def test_submitted_jobs_run_on_the_worker_one_at_a_time(services: Services, tmp_path: Path) -> None:
    jobs = services.jobs
    first = jobs.submit(make_csv(tmp_path / "a.csv", 50), ImportOptions(LIST), file_name="a.csv")
    second = jobs.submit(make_csv(tmp_path / "b.csv", 30, rejects_every=10), ImportOptions(LIST), file_name="b.csv")
    assert first.state == "queued" and first.sha256 is None
    services.start()
    done_second = jobs.wait(second.id, timeout=60)
    done_first = jobs.get(first.id)
    assert (done_first.state, done_second.state) == ("completed", "completed")
    assert done_first.started is not None and done_second.started is not None
    assert done_first.finished is not None and done_first.finished <= done_second.started
    assert done_first.counts["created"] == 50 and done_first.rejects_path is None
    assert done_second.counts["rejected"] == 3 and done_second.counts["unchanged"] == 27
    assert done_second.rejects_path is not None and done_second.rejects_path.read_text().count("\n") == 4
    assert done_first.sha256 == hashlib.sha256((tmp_path / "a.csv").read_bytes()).hexdigest()
    assert done_first.rows_done == 50 and done_first.bytes_done == done_first.bytes_total
    assert [j.id for j in jobs.list()] == [second.id, first.id]


def test_cancel_a_running_job_keeps_committed_batches_and_resume_finishes_it(
    services: Services, tmp_path: Path
) -> None:
    jobs = services.jobs
    jobs.batch_rows = jobs.commit_rows = 100
    path = make_csv(tmp_path / "big.csv", 1000)
    job = jobs.submit(path, ImportOptions(LIST), file_name="big.csv", run_here=True)

    def cancel_after_three_batches(j: Job) -> None:
        if j.state == "running" and j.batches_done == 3:
            jobs.cancel(j.id)

    cancelled = jobs.run(job.id, progress=cancel_after_three_batches)
    assert cancelled.state == "cancelled" and cancelled.rows_done == 300
    assert services.store.list_stats(LIST).total == 300
    resumed = jobs.resume(job.id, run_here=True)
    assert resumed.state == "queued"
    finished = jobs.run(job.id)
    assert finished.state == "completed" and finished.rows_done == 1000
    assert finished.counts["created"] == 1000 and finished.counts["duplicates"] == 0
    assert services.store.list_stats(LIST).total == 1000


def test_cancel_a_queued_job(services: Services, tmp_path: Path) -> None:
    job = services.jobs.submit(make_csv(tmp_path / "a.csv", 5), ImportOptions(LIST), file_name="a.csv")
    assert services.jobs.cancel(job.id).state == "cancelled"
    assert services.store.list_stats(LIST).total == 0


def test_a_running_job_whose_process_died_is_interrupted_on_start(services: Services, tmp_path: Path) -> None:
    job = services.jobs.submit(make_csv(tmp_path / "a.csv", 5), ImportOptions(LIST), file_name="a.csv")
    with services.db.write() as conn:  # as a killed process leaves it: running, owned by a dead pid
        conn.execute("UPDATE bulk_jobs SET state = 'running', owner = 'nohost:1' WHERE id = ?", (job.id,))
        conn.execute("UPDATE bulk_jobs SET owner = ? WHERE id = ?", (f"{os.uname().nodename}:{_dead_pid()}", job.id))
    assert [j.id for j in services.jobs.recover()] == [job.id]
    assert services.jobs.get(job.id).state == "interrupted"


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_resume_refuses_a_changed_file(services: Services, tmp_path: Path) -> None:
    jobs = services.jobs
    jobs.batch_rows = jobs.commit_rows = 10
    path = make_csv(tmp_path / "a.csv", 50)
    job = jobs.submit(path, ImportOptions(LIST), file_name="a.csv", run_here=True)
    jobs.run(job.id, progress=lambda j: jobs.cancel(j.id) if j.batches_done == 1 else None)
    make_csv(path, 60)
    jobs.resume(job.id, run_here=True)
    failed = jobs.run(job.id)
    assert failed.state == "failed" and "the file has changed" in (failed.error or "")


def test_reimporting_the_same_file_reaches_the_same_state(services: Services, tmp_path: Path) -> None:
    path = make_csv(tmp_path / "a.csv", 200)
    for expected in ("created", "unchanged"):
        job = services.jobs.submit(path, ImportOptions(LIST), file_name="a.csv", run_here=True)
        assert services.jobs.run(job.id).counts[expected] == 200
    assert len(dump(services.settings.database_path)) == 200


def test_dry_run_and_preview(services: Services, tmp_path: Path) -> None:
    path = make_csv(tmp_path / "a.csv", 20, rejects_every=5)
    report = services.jobs.dry_run(path, ImportOptions(LIST))
    assert report.counts["created"] == 16 and report.counts["rejected"] == 4 and report.exit_status == 1
    assert services.store.list_stats(LIST).total == 0
    preview = services.jobs.preview(path, ImportOptions(LIST), rows=3)
    assert preview.format == "csv" and preview.columns == ["emailAddress", "unsubscribeAll", "attributesData"]
    assert [r.email for r in preview.rows] == ["broken-0", "user1@example.com", "user2@example.com"]
    assert preview.rows[0].reject is not None and preview.rows[1].attributes == {"n": 1}
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00\x00")
    assert services.jobs.preview(bad, ImportOptions(LIST)).error is not None


# -- a SIGKILL in the middle of an import -----------------------------------------------------------------

CHILD = """
import sys
from pathlib import Path
from sescontacts.services import Services
from sescontacts.settings import Settings
from sescontacts.bulk.job_manager import ImportOptions
services = Services.open(Settings(data_dir=Path(sys.argv[1])))
services.ensure_default_list()
services.jobs.batch_rows = 5000
job = services.jobs.submit(Path(sys.argv[2]), ImportOptions("contacts"), file_name="big.csv", run_here=True)
def report(j):
    print(j.id, j.rows_done, flush=True)
services.jobs.run(job.id, progress=report)
print("finished", flush=True)
"""


@pytest.mark.slow
def test_sigkill_mid_import_then_resume_equals_a_clean_run(tmp_path: Path) -> None:
    source = make_csv(tmp_path / "big.csv", 200_000, rejects_every=997, duplicates_every=1009)
    killed_dir = tmp_path / "killed"
    job_id, rows = "", 0
    # The with block closes the pipe and waits for the child.
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(killed_dir), str(source)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:  # progress is printed after each committed batch: no sleeps needed
            job_id, rows_text = line.split()
            rows = int(rows_text)
            if rows >= 60_000:
                child.send_signal(signal.SIGKILL)
                break
    assert child.returncode == -signal.SIGKILL and 60_000 <= rows < 200_000

    db_path = killed_dir / "sescontacts.db"
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    (committed,) = conn.execute("SELECT rows_done FROM bulk_jobs WHERE id = ?", (job_id,)).fetchone()
    conn.close()
    assert committed >= rows  # every reported batch is committed (maybe one more)
    kept_total, total, kept_unsub, unsub = counters(db_path)
    assert kept_total == total and kept_unsub == unsub and 0 < total < 200_000

    services = Services.open(Settings(data_dir=killed_dir))
    try:
        services.jobs.start()  # marks the dead process's job interrupted
        job = services.jobs.get(job_id)
        assert job.state == "interrupted" and job.rows_done == committed
        services.jobs.resume(job_id)
        resumed = services.jobs.wait(job_id, timeout=120)
    finally:
        services.close()
    assert resumed.state == "completed"

    clean_dir = tmp_path / "clean"
    clean = Services.open(Settings(data_dir=clean_dir))
    try:
        clean.ensure_default_list()
        clean.jobs.batch_rows = 5000
        job = clean.jobs.submit(source, ImportOptions(LIST), file_name="big.csv", run_here=True)
        clean_job = clean.jobs.run(job.id)
    finally:
        clean.close()
    assert dump(db_path) == dump(clean_dir / "sescontacts.db")
    assert resumed.counts == clean_job.counts and resumed.rows_done == clean_job.rows_done == 200_000
    # 198 rows name an earlier row's address; for 99 of them that row named yet another (an even multiple of 1009)
    assert resumed.counts["duplicates"] == 99 and resumed.counts["rejected"] == 201
    assert counters(db_path) == counters(clean_dir / "sescontacts.db")
    assert resumed.rejects_path is not None and clean_job.rejects_path is not None
    assert resumed.rejects_path.read_bytes() == clean_job.rejects_path.read_bytes()


# -- SES API: CreateImportJob / GetImportJob / ListImportJobs ---------------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> Iterator[InProcessClient]:
    services = open_services(tmp_path / "api")
    services.ensure_default_list()
    bucket = services.settings.s3_folder / "bucket"
    bucket.mkdir(parents=True)
    make_csv(bucket / "contacts.csv", 10, rejects_every=4)
    yield InProcessClient(services)
    services.close()


def _create(client: InProcessClient, url: str = "s3://bucket/contacts.csv", action: str = "PUT") -> object:
    return client.call(
        "POST",
        "/v2/email/import-jobs",
        {
            "ImportDestination": {
                "ContactListDestination": {"ContactListName": LIST, "ContactListImportAction": action}
            },
            "ImportDataSource": {"S3Url": url, "DataFormat": "CSV"},
        },
    )


def test_import_job_api_runs_a_job_and_reports_like_ses(api: InProcessClient) -> None:
    reply = _create(api)
    assert reply.status == 200  # type: ignore[attr-defined]
    job_id = reply.json["JobId"]  # type: ignore[attr-defined]
    assert len(job_id) == 36
    got = api.call("GET", f"/v2/email/import-jobs/{job_id}").json
    assert got["JobStatus"] == "CREATED" and got["ProcessedRecordsCount"] == 0
    api.services.jobs.run(job_id)  # what the worker does
    got = api.call("GET", f"/v2/email/import-jobs/{job_id}").json
    assert got["JobStatus"] == "COMPLETED"
    assert (got["ProcessedRecordsCount"], got["FailedRecordsCount"]) == (10, 3)
    assert got["FailureInfo"]["FailedRecordsS3Url"].startswith(f"http://testserver/v2/email/import-jobs/{job_id}/")
    assert got["ImportDataSource"] == {"S3Url": "s3://bucket/contacts.csv", "DataFormat": "CSV"}
    assert got["ImportDestination"] == {
        "ContactListDestination": {"ContactListName": LIST, "ContactListImportAction": "PUT"}
    }
    assert got["CompletedTimestamp"] >= got["CreatedTimestamp"]
    assert api.services.store.list_stats(LIST).total == 7


def test_import_job_api_validation(api: InProcessClient) -> None:
    reply = api.call("POST", "/v2/email/import-jobs", {})
    assert reply.status == 400 and "importDestination" in reply.json["message"]
    bad_enum = api.call(
        "POST",
        "/v2/email/import-jobs",
        {
            "ImportDestination": {"ContactListDestination": {"ContactListName": LIST, "ContactListImportAction": "X"}},
            "ImportDataSource": {"S3Url": "s3://b/k", "DataFormat": "XML"},
        },
    )
    assert bad_enum.status == 400 and "2 validation errors" in bad_enum.json["message"]
    not_s3 = _create(api, url="not-an-s3-url").json["message"]  # type: ignore[attr-defined]
    assert "Value at 'importDataSource.s3Url' failed to satisfy constraint: Member must satisfy regular" in not_s3
    assert "Invalid S3Url" in _create(api, url="s3://bucket/../../secret").json["message"]  # type: ignore[attr-defined]
    missing = api.call("GET", "/v2/email/import-jobs/0a16a755-5069-493c-ba02-f50280ce4b7d")
    assert missing.status == 404 and missing.error_type == "NotFoundException"


def test_import_job_api_missing_file_fails_the_job(api: InProcessClient) -> None:
    job_id = _create(api, url="s3://bucket/nothing.csv").json["JobId"]  # type: ignore[attr-defined]
    api.services.jobs.run(job_id)
    got = api.call("GET", f"/v2/email/import-jobs/{job_id}").json
    assert got["JobStatus"] == "FAILED" and "cannot read the file" in got["FailureInfo"]["ErrorMessage"]


def test_list_import_jobs_pages_and_the_legacy_get(api: InProcessClient) -> None:
    ids = [_create(api).json["JobId"] for _ in range(3)]  # type: ignore[attr-defined]
    first = api.call("POST", "/v2/email/import-jobs/list", {"PageSize": 2}).json
    assert [j["JobId"] for j in first["ImportJobs"]] == ids[::-1][:2]
    rest = api.call("POST", "/v2/email/import-jobs/list", {"PageSize": 2, "NextToken": first["NextToken"]}).json
    assert [j["JobId"] for j in rest["ImportJobs"]] == ids[:1] and "NextToken" not in rest
    legacy = api.call("GET", "/v2/email/import-jobs?PageSize=5", {"ImportDestinationType": "CONTACT_LIST"}).json
    assert len(legacy["ImportJobs"]) == 3 and legacy["ImportJobs"][0]["JobStatus"] == "CREATED"
    suppression = api.call("POST", "/v2/email/import-jobs/list", {"ImportDestinationType": "SUPPRESSION_LIST"})
    assert suppression.json == {"ImportJobs": []}
    bad = api.call("POST", "/v2/email/import-jobs/list", {"NextToken": "!!!"})
    assert bad.status == 400


def test_import_jobs_with_boto3_against_a_running_server(tmp_path: Path) -> None:
    boto3 = pytest.importorskip("boto3")
    data_dir = tmp_path / "server"
    (data_dir / "s3" / "my-bucket" / "in").mkdir(parents=True)
    make_csv(data_dir / "s3" / "my-bucket" / "in" / "list.csv", 500, rejects_every=100)
    with run_server(data_dir) as server:
        client = boto3.client(
            "sesv2",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )
        job_id = client.create_import_job(
            ImportDestination={"ContactListDestination": {"ContactListName": LIST, "ContactListImportAction": "PUT"}},
            ImportDataSource={"S3Url": "s3://my-bucket/in/list.csv", "DataFormat": "CSV"},
        )["JobId"]
        deadline = time.monotonic() + 60
        while True:  # the job runs on the server's worker: poll its status as an SES client would
            job = client.get_import_job(JobId=job_id)
            if job["JobStatus"] in ("COMPLETED", "FAILED") or time.monotonic() > deadline:
                break
            time.sleep(0.05)  # polling interval of the status loop, not a synchronisation sleep
        assert job["JobStatus"] == "COMPLETED", job
        assert (job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == (500, 5)
        assert "FailedRecordsS3Url" in job["FailureInfo"]
        listed = client.list_import_jobs(ImportDestinationType="CONTACT_LIST")["ImportJobs"]
        assert [j["JobId"] for j in listed] == [job_id]
        contacts = client.list_contacts(ContactListName=LIST, PageSize=1000)["Contacts"]
        assert len(contacts) == 495
        delete_id = client.create_import_job(
            ImportDestination={
                "ContactListDestination": {"ContactListName": LIST, "ContactListImportAction": "DELETE"}
            },
            ImportDataSource={"S3Url": "s3://my-bucket/in/list.csv", "DataFormat": "CSV"},
        )["JobId"]
        while client.get_import_job(JobId=delete_id)["JobStatus"] not in ("COMPLETED", "FAILED"):
            time.sleep(0.05)  # polling interval, as above
        assert client.list_contacts(ContactListName=LIST)["Contacts"] == []


def test_job_manager_is_background_work_on_services(services: Services) -> None:
    assert isinstance(services.jobs, JobManager)
    assert (services.jobs.start, services.jobs.stop) in services.background.hooks
    assert services.background.start in services.on_start and services.background.stop in services.on_stop


def test_a_running_job_of_a_dead_worker_of_this_server_is_queued_again(services: Services, tmp_path: Path) -> None:
    """``serve --workers N``: the owner killed mid-job, a worker of the same server takes over and continues it;
    a job of a dead process of another server (or a CLI) stays interrupted, for its user to resume."""
    mine = services.jobs.submit(make_csv(tmp_path / "a.csv", 5), ImportOptions(LIST), file_name="a.csv")
    theirs = services.jobs.submit(make_csv(tmp_path / "b.csv", 5), ImportOptions(LIST), file_name="b.csv")
    host, dead = os.uname().nodename, _dead_pid()
    with services.db.write() as conn:  # as the killed worker left them: running, owned by a dead pid
        for job, group in ((mine, "serve-1"), (theirs, "serve-0")):
            conn.execute(
                "UPDATE bulk_jobs SET state = 'running', owner = ? WHERE id = ?", (f"{host}:{dead} {group}", job.id)
            )
    taking_over = JobManager(services.db, services.store, services.settings.data_dir, group="serve-1")
    assert sorted(j.id for j in taking_over.recover()) == sorted([mine.id, theirs.id])
    assert services.jobs.get(mine.id).state == "queued" and services.jobs.get(mine.id).owner is None
    assert services.jobs.get(theirs.id).state == "interrupted"
    taking_over.start()
    try:
        assert taking_over.wait(mine.id, timeout=60).counts["created"] == 5
    finally:
        taking_over.stop()


def test_a_live_workers_job_is_left_alone(services: Services, tmp_path: Path) -> None:
    job = services.jobs.submit(make_csv(tmp_path / "a.csv", 5), ImportOptions(LIST), file_name="a.csv")
    sibling = f"{os.uname().nodename}:{os.getppid()} serve-1"  # a live process (this one's parent) runs it
    with services.db.write() as conn:
        conn.execute("UPDATE bulk_jobs SET state = 'running', owner = ? WHERE id = ?", (sibling, job.id))
    assert JobManager(services.db, services.store, services.settings.data_dir, group="serve-1").recover() == []
    assert services.jobs.get(job.id).state == "running"


def test_a_queued_job_of_a_dead_cli_process_is_interrupted(services: Services, tmp_path: Path) -> None:
    job = services.jobs.submit(make_csv(tmp_path / "a.csv", 5), ImportOptions(LIST), file_name="a.csv", run_here=True)
    with services.db.write() as conn:
        conn.execute("UPDATE bulk_jobs SET owner = ? WHERE id = ?", (f"{os.uname().nodename}:{_dead_pid()}", job.id))
    services.jobs.recover()
    assert services.jobs.get(job.id).state == "interrupted"
    services.jobs.resume(job.id, run_here=True)
    assert services.jobs.run(job.id).counts["created"] == 5


# -- the parser process ----------------------------------------------------------------------------------


def _children() -> set[int]:
    """This process's child processes (Linux: /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            found.update(int(pid) for pid in (task / "children").read_text().split())
    return found


def test_a_cancelled_job_leaves_no_parser_process_and_resumes_exactly(services: Services, tmp_path: Path) -> None:
    jobs = services.jobs
    jobs.batch_rows = jobs.commit_rows = 1000
    jobs.parse_in_child = True
    path = make_csv(tmp_path / "big.csv", 20_000, rejects_every=101, duplicates_every=97)
    before = _children()
    job = jobs.submit(path, ImportOptions(LIST), file_name="big.csv", run_here=True)
    seen_children: set[int] = set()

    def cancel_after_two_batches(j: Job) -> None:
        seen_children.update(_children() - before)
        if j.state == "running" and j.batches_done == 2:
            jobs.cancel(j.id)

    cancelled = jobs.run(job.id, progress=cancel_after_two_batches)
    assert cancelled.state == "cancelled" and cancelled.rows_done == 2000
    assert seen_children, "the file was parsed in a process of its own"
    assert _children() - before == set()
    jobs.resume(job.id, run_here=True)
    finished = jobs.run(job.id)
    jobs.parse_in_child = False
    again = jobs.submit(path, ImportOptions(LIST), file_name="big.csv", run_here=True)
    clean_dir = tmp_path / "clean"
    clean = Services.open(Settings(data_dir=clean_dir))
    try:
        clean.ensure_default_list()
        clean.jobs.parse_in_child = False
        clean_job = clean.jobs.run(clean.jobs.submit(path, ImportOptions(LIST), file_name="big.csv", run_here=True).id)
    finally:
        clean.close()
    assert finished.state == "completed" and finished.counts == clean_job.counts
    assert finished.counts["duplicates"] > 0  # rows on both sides of the cancel name one contact
    assert dump(services.settings.database_path) == dump(clean_dir / "sescontacts.db")
    again_counts = jobs.run(again.id).counts  # parsed in this process this time: the same contacts
    assert again_counts["created"] == 0 and again_counts["duplicates"] == finished.counts["duplicates"]


def test_a_parser_process_that_dies_fails_the_job_and_keeps_what_was_committed(
    services: Services, tmp_path: Path
) -> None:
    jobs = services.jobs
    jobs.batch_rows = jobs.commit_rows = 1000
    jobs.parse_in_child = True
    path = make_csv(tmp_path / "big.csv", 20_000)
    before = _children()
    job = jobs.submit(path, ImportOptions(LIST), file_name="big.csv", run_here=True)

    def kill_the_parser(j: Job) -> None:
        if j.state == "running" and j.batches_done == 1:
            for pid in _children() - before:
                os.kill(pid, signal.SIGKILL)

    failed = jobs.run(job.id, progress=kill_the_parser)
    assert failed.state == "failed" and "the file's parser stopped" in (failed.error or "")
    assert 1000 <= failed.rows_done < 20_000
    kept_total, total, kept_unsub, unsub = counters(services.settings.database_path)
    assert kept_total == total >= 1000 and kept_unsub == unsub
    resumed = jobs.run(jobs.resume(job.id, run_here=True).id)
    assert resumed.state == "completed" and resumed.counts["created"] == 20_000


def test_a_running_job_of_a_killed_worker_not_yet_reaped_is_queued_again(services: Services, tmp_path: Path) -> None:
    """The worker killed mid-job stays a zombie until uvicorn's supervisor reaps it, and ``kill(pid, 0)``
    still succeeds on a zombie; the sibling that took the background work over must see it as gone, or the
    job stays ``running`` with nobody running it (seen under load in CI)."""
    job = services.jobs.submit(make_csv(tmp_path / "a.csv", 5), ImportOptions(LIST), file_name="a.csv")
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # exits at once; not waited for: a zombie
    try:
        stat = Path(f"/proc/{child.pid}/stat")
        deadline = time.monotonic() + 30
        while stat.read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)  # polling the child's state as the kernel reports it
        with services.db.write() as conn:
            owner = f"{os.uname().nodename}:{child.pid} serve-1"
            conn.execute("UPDATE bulk_jobs SET state = 'running', owner = ? WHERE id = ?", (owner, job.id))
        taking_over = JobManager(services.db, services.store, services.settings.data_dir, group="serve-1")
        assert [j.id for j in taking_over.recover()] == [job.id]
        assert services.jobs.get(job.id).state == "queued"
    finally:
        child.wait()


def test_an_api_import_job_records_its_key_and_runs_as_the_job(api: InProcessClient) -> None:
    """History item 1: a job started through the SES API says so ("api:<key id>"), and its changes are the job's."""
    key_id = api.services.access_key.access_key_id
    job_id = _create(api).json["JobId"]  # type: ignore[attr-defined]
    assert api.services.jobs.get(job_id).meta["started_by"] == f"api:{key_id}"
    api.services.jobs.run(job_id)
    changes = api.services.history.job_changes(job_id)
    assert len(changes) == 7 and {c.actor for c in changes} == {Actor("job", f"api:{key_id}", job_id)}


def test_a_job_started_by_nobody_known_runs_as_the_job_alone(tmp_path: Path) -> None:
    services = open_services(tmp_path / "d")
    services.ensure_default_list()
    try:
        path = tmp_path / "c.csv"
        make_csv(path, 3)
        with acting_as(Actor("cli", "ops")):
            by_cli = services.jobs.submit(path, ImportOptions(LIST), file_name="c.csv", run_here=True)
        unknown = services.jobs.submit(path, ImportOptions(LIST, action="delete"), file_name="c.csv", run_here=True)
        assert (by_cli.meta["started_by"], unknown.meta["started_by"]) == ("cli", "")
        services.jobs.run(by_cli.id)
        services.jobs.run(unknown.id)
        assert {c.actor for c in services.history.job_changes(by_cli.id)} == {Actor("job", "cli", by_cli.id)}
        assert {c.actor for c in services.history.job_changes(unknown.id)} == {Actor("job", "", unknown.id)}
    finally:
        services.close()
