"""What only the ses backend does, against a running ``sescontacts serve`` (our SES v2 API): SES first then the
mirror, full-state updates, throttle accounting, bulk writes through S3 and one import job.

The shared ContactStore contract runs on this backend in test_store_contract.py (``ses-local`` and
``ses-local-throttled``). The tests here run twice as well: unthrottled, and with the server throttled while the
client's pacer asks for twice the allowed rate, so throttles really happen and must never reach a test.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import orjson
import pytest

from sescontacts.errors import NotFound
from sescontacts.model import Contact, ContactQuery, Outcome, Topic
from sescontacts.store.ses import SesContactStore
from sescontacts.store.ses.pacer import Pacer

from .support.server import REGION, RunningServer, run_server
from .support.ses import clean_env, ses_store
from .support.stores import local_ses_store, run_ses_server


@pytest.fixture(scope="module", params=["unthrottled", "throttled"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_ses_server(tmp_path_factory, throttled=request.param == "throttled") as running:
        yield running


@pytest.fixture
def list_name() -> str:
    return "contacts"


@pytest.fixture
def store(tmp_path: Path, server: RunningServer, list_name: str) -> Iterator[SesContactStore]:
    throttled = server.env.get("throttled") == "throttled"
    with local_ses_store(tmp_path, server, list_name, throttled=throttled) as contact_store:
        yield contact_store


def test_writes_reach_ses_before_the_mirror(store: SesContactStore, list_name: str, server: RunningServer) -> None:
    store.create_contact(list_name, Contact("a@example.com", attributes_data='{"n": 1}'))
    ses = server.sesv2().get_contact(ContactListName=list_name, EmailAddress="a@example.com")
    assert ses["AttributesData"] == '{"n": 1}'
    mirrored = store.mirror.get_contact(list_name, "a@example.com")
    assert mirrored.updated == round(ses["LastUpdatedTimestamp"].timestamp(), 3)


def test_update_keeps_what_another_program_changed(
    store: SesContactStore, list_name: str, server: RunningServer
) -> None:
    """The update is built on SES's current state, not the mirror's stale copy (merge mode)."""
    store.update_list(list_name, topics=[Topic("news", "News"), Topic("offers", "Offers")])
    store.create_contact(list_name, Contact("a@example.com", topic_preferences={"news": "OPT_IN"}))
    server.sesv2().update_contact(
        ContactListName=list_name,
        EmailAddress="a@example.com",
        TopicPreferences=[
            {"TopicName": "news", "SubscriptionStatus": "OPT_IN"},
            {"TopicName": "offers", "SubscriptionStatus": "OPT_OUT"},
        ],
    )
    updated = store.update_contact(
        list_name,
        Contact("a@example.com", topic_preferences={"news": "OPT_OUT"}, attributes_data='{"x": 1}'),
        merge_topic_preferences=True,
    )
    assert dict(updated.topic_preferences) == {"news": "OPT_OUT", "offers": "OPT_OUT"}
    assert store.mirror.get_contact(list_name, "a@example.com").same_state(updated)


def test_a_contact_deleted_elsewhere_leaves_the_mirror_on_read(
    store: SesContactStore, list_name: str, server: RunningServer
) -> None:
    store.create_contact(list_name, Contact("gone@example.com"))
    server.sesv2().delete_contact(ContactListName=list_name, EmailAddress="gone@example.com")
    with pytest.raises(NotFound):
        store.get_contact(list_name, "gone@example.com")
    with pytest.raises(NotFound):
        store.mirror.get_contact(list_name, "gone@example.com")


def test_a_delete_spelled_otherwise_leaves_the_mirror_when_ses_ignores_case(
    store: SesContactStore, list_name: str
) -> None:
    """Our server, as SES, ignores case: deleting ``ANN@…`` deletes ``Ann@…``, so the mirror drops it too,
    although it files contacts by their exact spelling."""
    store.create_contact(list_name, Contact("Ann@example.com"))
    store.create_contact(list_name, Contact("bob@example.com"))
    assert [r.outcome for r in store.delete_contacts(list_name, ["ANN@EXAMPLE.COM"])] == [Outcome.DELETED]
    store.delete_contact(list_name, "BOB@example.com")
    assert store.list_contacts(list_name).items == []
    assert store.count_contacts(list_name, ContactQuery()).value == 0


def test_bulk_action_on_matching_contacts_never_creates_one_ses_lost(
    store: SesContactStore, list_name: str, server: RunningServer
) -> None:
    """The mirror says which contacts match; SES's state decides. A contact deleted in SES behind the mirror's
    back is counted gone (and leaves the mirror), never created again by an unsubscribe; one another program
    already unsubscribed is left as it is; the rest keep their topics and attributes."""
    store.update_list(list_name, topics=[Topic("news", "News")])
    for i in range(4):
        store.create_contact(
            list_name, Contact(f"b{i}@example.com", topic_preferences={"news": "OPT_OUT"}, attributes_data='{"a": 1}')
        )
    ses = server.sesv2()
    ses.delete_contact(ContactListName=list_name, EmailAddress="b1@example.com")
    ses.update_contact(ContactListName=list_name, EmailAddress="b2@example.com", UnsubscribeAll=True)
    store.calls.clear()
    step = store.apply_to_matching(list_name, ContactQuery(), "unsubscribe")
    assert (step.matched, step.changed, step.gone, step.last_key) == (4, 2, 1, None)
    assert store.calls["create_contact"] == 0
    with pytest.raises(ses.exceptions.NotFoundException):
        ses.get_contact(ContactListName=list_name, EmailAddress="b1@example.com")
    for email in ("b0@example.com", "b3@example.com"):
        got = ses.get_contact(ContactListName=list_name, EmailAddress=email)
        assert got["UnsubscribeAll"] is True and got["AttributesData"] == '{"a": 1}'
        assert got["TopicPreferences"] == [{"TopicName": "news", "SubscriptionStatus": "OPT_OUT"}]
    stats = store.list_stats(list_name)
    assert (stats.total, stats.unsubscribed) == (3, 3)


def test_throttles_are_absorbed_not_surfaced(store: SesContactStore, list_name: str, server: RunningServer) -> None:
    # Four writers at once: one after another, a slow box (calls over 10 ms each) stayed under the server's
    # 100 a second and was never refused, so the test proved nothing there; four exceed it at any speed the
    # pacer allows (200 a second).
    def create(worker: int) -> None:
        for i in range(15):
            store.create_contact(list_name, Contact(f"t{worker}-{i}@example.com"))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, range(4)))
    assert store.pacer.stats.surfaced == 0
    assert store.list_stats(list_name).total == 60
    if server.env.get("throttled") == "throttled":
        assert store.pacer.stats.throttled > 0  # the server really did refuse some calls


# -- bulk through S3 and one import job ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    """moto's S3 as the bucket, and a local server whose CreateImportJob reads s3:// URLs from it."""
    from .support.ses import run_moto

    clean_env()
    with run_moto() as moto_url:
        boto3.client(
            "s3", region_name=REGION, endpoint_url=moto_url, aws_access_key_id="x", aws_secret_access_key="x"
        ).create_bucket(Bucket="imports")
        env = {"SESCONTACTS_S3_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
        with run_server(tmp_path_factory.mktemp("ses-s3"), extra_env=env) as running:
            yield running, moto_url


@pytest.fixture
def s3_store(tmp_path: Path, s3_server: tuple[RunningServer, str]) -> Iterator[SesContactStore]:
    server, moto_url = s3_server
    contact_store = ses_store(
        tmp_path / "mirror.db",
        server.url,
        pacer=Pacer(1000, 100),
        s3_import_location="s3://imports/uploads/",
        s3_endpoint_url=moto_url,
    )
    contact_store.import_poll_interval = 0.05
    for existing in contact_store.list_lists().items:
        contact_store.delete_list(existing.name)
    contact_store.create_list("contacts", topics=[Topic("news", "News", default_status="OPT_IN")])
    yield contact_store
    contact_store.close()


def _uploads(moto_url: str) -> list[str]:
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_url, aws_access_key_id="x", aws_secret_access_key="x")
    return [o["Key"] for o in s3.list_objects_v2(Bucket="imports").get("Contents", [])]


def test_import_job_path_applies_the_rules_on_ses_state(
    s3_store: SesContactStore, s3_server: tuple[RunningServer, str]
) -> None:
    from sescontacts.model import ContactPatch, Outcome, UpsertPolicy

    server, moto_url = s3_server
    ses = server.sesv2()
    # State another program left in SES (the mirror has never seen it): an unsubscribed contact, attributes.
    ses.create_contact(ContactListName="contacts", EmailAddress="gone@example.com", UnsubscribeAll=True)
    ses.create_contact(ContactListName="contacts", EmailAddress="keep@example.com", AttributesData='{"a": 1}')
    patches = [ContactPatch(f"new{i:03d}@example.com", attributes={"i": i}) for i in range(60)]
    patches += [
        ContactPatch("gone@example.com", unsubscribe_all=False, attributes={"b": 2}),
        ContactPatch("keep@example.com", topic_preferences={"news": "OPT_OUT"}),
    ]
    s3_store.calls.clear()
    results = s3_store.upsert_contacts("contacts", patches, UpsertPolicy())
    assert s3_store.calls["create_import_job"] == 1  # one job, not 62 rows of calls
    assert s3_store.calls["create_contact"] == s3_store.calls["update_contact"] == 0
    assert s3_store.calls["get_contact"] == 2  # only the contacts SES had before: the rest are adopted
    assert [r.outcome for r in results[:60]] == [Outcome.CREATED] * 60
    assert (results[60].outcome, results[60].kept_unsubscribed) == (Outcome.UPDATED, True)
    gone = s3_store.get_contact("contacts", "gone@example.com")
    assert gone.unsubscribe_all is True and gone.attributes() == {"b": 2}  # never re-subscribed
    keep = s3_store.get_contact("contacts", "keep@example.com")
    assert keep.attributes() == {"a": 1} and dict(keep.topic_preferences) == {"news": "OPT_OUT"}
    assert s3_store.mirror.get_contact("contacts", "new007@example.com").attributes() == {"i": 7}
    assert s3_store.list_stats("contacts").total == 62
    assert _uploads(moto_url) == []  # the uploaded file (personal data) is deleted after the job


def test_import_job_path_keeps_topic_opt_outs_ses_has(
    s3_store: SesContactStore, s3_server: tuple[RunningServer, str]
) -> None:
    """The guard is decided on SES's state (the mirror synced just before): an opt-out another program made in
    SES survives an import that says OPT_IN, and the row is counted as kept opted out."""
    from sescontacts.model import ContactPatch, Outcome, UpsertPolicy

    server, _ = s3_server
    s3_store.update_list("contacts", topics=[Topic("news", "News", "OPT_IN"), Topic("offers", "Offers")])
    server.sesv2().create_contact(
        ContactListName="contacts",
        EmailAddress="out@example.com",
        TopicPreferences=[{"TopicName": "news", "SubscriptionStatus": "OPT_OUT"}],
    )
    patches = [ContactPatch(f"n{i:03d}@example.com") for i in range(40)]
    patches.append(ContactPatch("out@example.com", topic_preferences={"news": "OPT_IN", "offers": "OPT_IN"}))
    results = s3_store.upsert_contacts("contacts", patches, UpsertPolicy())
    assert s3_store.calls["create_import_job"] == 1
    assert (results[40].outcome, results[40].kept_opted_out) == (Outcome.UPDATED, True)
    got = server.sesv2().get_contact(ContactListName="contacts", EmailAddress="out@example.com")
    assert {p["TopicName"]: p["SubscriptionStatus"] for p in got["TopicPreferences"]} == {
        "news": "OPT_OUT",
        "offers": "OPT_IN",
    }


def test_import_job_rows_carry_the_whole_contact_since_put_overrides(
    s3_store: SesContactStore, s3_server: tuple[RunningServer, str]
) -> None:
    """SES's PUT overrides a contact with the record (our server's PUT does too), so each line the ses backend
    writes is the contact's complete new state: an import that changes one topic keeps the others, the
    attributes and the unsubscribe flag; one that clears the attributes omits them (SES's documented form)."""
    from sescontacts.model import ContactPatch, UpsertPolicy

    server, moto_url = s3_server
    ses = server.sesv2()
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_url, aws_access_key_id="x", aws_secret_access_key="x")
    # A versioned bucket keeps the uploaded file after the store deletes it: what SES was given, as SES read it.
    s3.put_bucket_versioning(Bucket="imports", VersioningConfiguration={"Status": "Enabled"})
    s3_store.update_list("contacts", topics=[Topic("news", "News", "OPT_IN"), Topic("offers", "Offers")])
    ses.create_contact(
        ContactListName="contacts",
        EmailAddress="full@example.com",
        UnsubscribeAll=True,
        AttributesData='{"Name": "Ann"}',
        TopicPreferences=[
            {"TopicName": "news", "SubscriptionStatus": "OPT_IN"},
            {"TopicName": "offers", "SubscriptionStatus": "OPT_IN"},
        ],
    )
    ses.create_contact(ContactListName="contacts", EmailAddress="clear@example.com", AttributesData='{"a": 1}')
    patches = [ContactPatch(f"w{i:03d}@example.com") for i in range(40)]
    patches += [
        ContactPatch("full@example.com", topic_preferences={"offers": "OPT_OUT"}),
        ContactPatch("clear@example.com", attributes=None),
    ]
    s3_store.upsert_contacts("contacts", patches, UpsertPolicy())
    assert s3_store.calls["create_import_job"] == 1
    full = ses.get_contact(ContactListName="contacts", EmailAddress="full@example.com")
    assert full["UnsubscribeAll"] is True and full["AttributesData"] == '{"Name": "Ann"}'
    assert {p["TopicName"]: p["SubscriptionStatus"] for p in full["TopicPreferences"]} == {
        "news": "OPT_IN",
        "offers": "OPT_OUT",
    }
    cleared = ses.get_contact(ContactListName="contacts", EmailAddress="clear@example.com")
    assert "AttributesData" not in cleared
    try:
        [version] = [
            v for v in s3.list_object_versions(Bucket="imports")["Versions"] if v["Key"].startswith("uploads/")
        ]
        body = s3.get_object(Bucket="imports", Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
    finally:
        for v in s3.list_object_versions(Bucket="imports").get("Versions", []) + s3.list_object_versions(
            Bucket="imports"
        ).get("DeleteMarkers", []):
            s3.delete_object(Bucket="imports", Key=v["Key"], VersionId=v["VersionId"])
        s3.put_bucket_versioning(Bucket="imports", VersioningConfiguration={"Status": "Suspended"})
    lines = {line["emailAddress"]: line for line in map(orjson.loads, body.splitlines())}
    # SES documents attributesData as a JSON object and may refuse "": a cleared value is omitted (PUT clears it).
    assert lines["clear@example.com"] == {
        "emailAddress": "clear@example.com",
        "unsubscribeAll": False,
        "topicPreferences": [],
    }
    full_line = lines["full@example.com"]
    preferences = sorted((p["topicName"], p["subscriptionStatus"]) for p in full_line.pop("topicPreferences"))
    assert preferences == [("news", "OPT_IN"), ("offers", "OPT_OUT")]
    assert full_line == {
        "emailAddress": "full@example.com",
        "unsubscribeAll": True,
        "attributesData": '{"Name": "Ann"}',
    }


def test_import_job_path_reports_rows_ses_refused(s3_store: SesContactStore) -> None:
    from sescontacts.model import ContactPatch, Outcome, UpsertPolicy

    patches = [ContactPatch(f"ok{i:03d}@example.com") for i in range(40)] + [ContactPatch("not an address")]
    results = s3_store.upsert_contacts("contacts", patches, UpsertPolicy())
    refused = [(index, r.reason) for index, r in enumerate(results) if r.outcome is Outcome.REFUSED]
    assert [index for index, _ in refused] == [40]
    assert all(reason and reason.startswith("SES import job: ") for _, reason in refused)
    assert s3_store.list_stats("contacts").total == 40


def test_import_job_path_deletes(s3_store: SesContactStore) -> None:
    from sescontacts.model import ContactPatch, Outcome, UpsertPolicy

    s3_store.upsert_contacts("contacts", [ContactPatch(f"d{i:03d}@example.com") for i in range(40)], UpsertPolicy())
    targets = [f"d{i:03d}@example.com" for i in range(0, 40, 2)] + ["nobody@example.com"] * 20
    results = s3_store.delete_contacts("contacts", targets)
    assert [r.outcome for r in results].count(Outcome.DELETED) == 20
    print(dict(s3_store.calls))
    assert s3_store.calls["create_import_job"] == 2
    assert s3_store.list_stats("contacts").total == 20
    with pytest.raises(NotFound):
        s3_store.get_contact("contacts", "d000@example.com")


def test_bulk_action_on_matching_contacts_goes_through_one_import_job(
    s3_store: SesContactStore, s3_server: tuple[RunningServer, str]
) -> None:
    """With an S3 location a batch of a bulk action is one SES import job (whole contacts, as PUT needs), and
    a contact SES lost since the mirror listed it is not created again."""
    from sescontacts.model import ContactPatch, UpsertPolicy

    server, _ = s3_server
    s3_store.upsert_contacts(
        "contacts",
        [ContactPatch(f"u{i:03d}@example.com", topic_preferences={"news": "OPT_OUT"}) for i in range(40)],
        UpsertPolicy(),
    )
    server.sesv2().delete_contact(ContactListName="contacts", EmailAddress="u007@example.com")
    s3_store.calls.clear()
    step = s3_store.apply_to_matching("contacts", ContactQuery(), "unsubscribe")
    assert (step.matched, step.changed, step.gone) == (40, 39, 1)
    assert s3_store.calls["create_import_job"] == 1 and s3_store.calls["update_contact"] == 0
    got = server.sesv2().get_contact(ContactListName="contacts", EmailAddress="u008@example.com")
    assert got["UnsubscribeAll"] is True
    assert got["TopicPreferences"] == [{"TopicName": "news", "SubscriptionStatus": "OPT_OUT"}]
    ses = server.sesv2()
    with pytest.raises(ses.exceptions.NotFoundException):
        ses.get_contact(ContactListName="contacts", EmailAddress="u007@example.com")
    stats = s3_store.list_stats("contacts")
    assert (stats.total, stats.unsubscribed) == (39, 39)


def test_whole_file_import_through_the_bulk_engine(s3_store: SesContactStore, tmp_path: Path) -> None:
    from sescontacts.bulk.importer import run_import
    from sescontacts.bulk.report import ImportOptions

    path = tmp_path / "people.csv"
    path.write_text("emailAddress,unsubscribeAll\n" + "".join(f"f{i}@example.com,false\n" for i in range(300)))
    report = run_import(s3_store, path, ImportOptions(contact_list="contacts"))
    assert report.error is None and report.counts["created"] == 300
    assert s3_store.calls["create_import_job"] == 1
    assert s3_store.list_stats("contacts").total == 300


S3_IMPORT_KILL_SCRIPT = """
import sys
from pathlib import Path
from sescontacts.bulk.job_manager import JobManager
from sescontacts.bulk.report import ImportOptions
from sescontacts.store.ses.pacer import Pacer
from tests.support.ses import ses_store
db_path, url, moto_url, csv_path = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
store = ses_store(db_path, url, pacer=Pacer(1000, 100), s3_import_location="s3://imports/uploads/",
                  s3_endpoint_url=moto_url)
store.import_poll_interval = 30  # sits polling: the test kills it while the job is out of its hands
jobs = JobManager(store.mirror.db, store, db_path.parent / "data")
job = jobs.submit(csv_path, ImportOptions(contact_list="contacts"), file_name="people.csv", run_here=True)
jobs.run(job.id)
"""


@pytest.mark.slow
def test_killed_import_job_path_resumes_and_loses_nothing(
    s3_store: SesContactStore, s3_server: tuple[RunningServer, str], tmp_path: Path
) -> None:
    import os
    import sqlite3
    import subprocess
    import sys
    import time

    from sescontacts.bulk.job_manager import JobManager

    server, moto_url = s3_server
    root = Path(__file__).resolve().parent.parent
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(
        "emailAddress,attributesData\n" + "".join(f'k{i}@example.com,"{{""i"": {i}}}"\n' for i in range(300))
    )
    db_path = tmp_path / "killed.db"
    server_db = server.data_dir / "sescontacts.db"
    with sqlite3.connect(server_db) as conn:
        jobs_before = conn.execute("SELECT count(*) FROM bulk_jobs").fetchone()[0]
    process = subprocess.Popen(
        [sys.executable, "-c", S3_IMPORT_KILL_SCRIPT, str(db_path), server.url, moto_url, str(csv_path)],
        cwd=root,
        # This checkout's src first: the installed package may be another checkout's (a worktree's venv).
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)  # polling the server's job records for the import job the client created
        with sqlite3.connect(server_db, timeout=5) as conn:
            if conn.execute("SELECT count(*) FROM bulk_jobs").fetchone()[0] > jobs_before:
                break
    assert process.poll() is None
    process.kill()
    process.wait()

    store = ses_store(
        db_path,
        server.url,
        pacer=Pacer(1000, 100),
        s3_import_location="s3://imports/uploads/",
        s3_endpoint_url=moto_url,
    )
    store.import_poll_interval = 0.05
    try:
        jobs = JobManager(store.mirror.db, store, tmp_path / "data")
        [interrupted] = jobs.recover()
        jobs.resume(interrupted.id, run_here=True)
        job = jobs.run(interrupted.id)
        assert job.state == "completed", job.error
        assert job.counts["created"] + job.counts["unchanged"] == 300
        assert store.list_stats("contacts").total == 300
        assert store.mirror.get_contact("contacts", "k299@example.com").attributes() == {"i": 299}
        listed = server.sesv2().list_contacts(ContactListName="contacts", PageSize=1000)["Contacts"]
        assert len(listed) == 300
    finally:
        store.close()


def test_import_job_path_records_what_it_wrote_as_the_writer_and_what_ses_had_as_ses(
    s3_store: SesContactStore, s3_server: tuple[RunningServer, str]
) -> None:
    """History item 1: the contacts an SES import job wrote reach the mirror through the sync's walk, which
    adopts them: recorded as the job's (its only record), while what SES had before is recorded as "SES"."""
    from sescontacts.history import SES_SYNC, Actor, acting_as
    from sescontacts.model import ContactPatch, UpsertPolicy
    from sescontacts.store.sqlite.history import SqliteContactHistory

    server, _ = s3_server
    server.sesv2().create_contact(ContactListName="contacts", EmailAddress="theirs@example.com")
    job = Actor("job", "alice", "job-9")
    patches = [
        ContactPatch("ours@example.com", attributes={"a": 1}),
        ContactPatch("theirs@example.com", attributes={"b": 2}),
        *(ContactPatch(f"more{i:02d}@example.com") for i in range(60)),  # enough rows for the import job path
    ]
    with acting_as(job):
        s3_store.upsert_contacts("contacts", patches, UpsertPolicy())
    assert s3_store.calls["create_import_job"] == 1
    history = SqliteContactHistory(s3_store.mirror.db, s3_store.identity)
    assert [(c.op, c.actor) for c in history.contact_history("contacts", "ours@example.com")] == [("created", job)]
    theirs = history.contact_history("contacts", "theirs@example.com")
    assert [(c.op, c.actor) for c in theirs] == [("updated", job), ("created", SES_SYNC)]
    assert theirs[0].after == {"attributes": '{"b":2}'}


def test_undo_of_an_import_goes_through_import_jobs(s3_store: SesContactStore, tmp_path: Path) -> None:
    """With an S3 location, the undo of an import that created 200 contacts and updated one deletes the 200
    through one SES import job, not a call a row, and SES ends as it was before the import."""
    from sescontacts.bulk.job_manager import JobManager
    from sescontacts.bulk.report import ImportOptions
    from sescontacts.bulk.undo import UNDO_KIND, Undo
    from sescontacts.history import Actor, acting_as
    from sescontacts.store.sqlite.history import SqliteContactHistory

    s3_store.create_contact("contacts", Contact("kept@example.com", attributes_data='{"plan": "free"}'))
    path = tmp_path / "people.csv"
    path.write_text(
        'emailAddress,attributesData\nkept@example.com,"{""plan"": ""pro""}"\n'
        + "".join(f"u{i:03d}@example.com,\n" for i in range(200))
    )
    db = s3_store.mirror.db
    jobs = JobManager(db, s3_store, tmp_path / "data")
    undo = Undo(db, s3_store, SqliteContactHistory(db, s3_store.identity), jobs)
    jobs.runners[UNDO_KIND] = undo
    job = jobs.submit(path, ImportOptions(contact_list="contacts"), file_name="people.csv", run_here=True)
    with acting_as(Actor("job", "tester", job.id)):
        assert jobs.run(job.id).counts["created"] == 200
    assert s3_store.list_stats("contacts").total == 201
    s3_store.calls.clear()

    done = jobs.run(undo.start(job.id, "keep", "tester", run_here=True).id)

    assert done.state == "completed", done.error
    assert (done.counts["deleted"], done.counts["updated"], done.counts["conflicts"]) == (200, 1, 0)
    # The 200 deletions as one job; the one update row by row (too few rows to be worth an import job).
    assert (s3_store.calls["create_import_job"], s3_store.calls.get("delete_contact", 0)) == (1, 0)
    assert (s3_store.calls.get("create_contact", 0), s3_store.calls["update_contact"]) == (0, 1)
    assert s3_store.list_stats("contacts").total == 1
    assert orjson.loads(s3_store.get_contact("contacts", "kept@example.com").attributes_data or "") == {"plan": "free"}
