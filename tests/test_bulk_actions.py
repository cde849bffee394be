"""Bulk actions on "all N matching" as jobs of the import engine (bulk/actions.py): progress, cancel, resume,
what the job includes while contacts change, a SIGKILL between batches, and the counters after each."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sescontacts.bulk.actions import ActionProgress, query_from_json, query_to_json
from sescontacts.bulk.job_manager import ImportOptions, Job
from sescontacts.model import (
    OPT_IN,
    OPT_OUT,
    AttributeCondition,
    Contact,
    ContactPatch,
    ContactQuery,
    Topic,
    TopicFilter,
    UpsertPolicy,
)
from sescontacts.services import Services
from sescontacts.settings import Settings
from sescontacts.store.base import BulkAction
from tests.support.killed_child import kill_between_batches
from tests.support.sesapi_client import InProcessClient, open_services
from tests.support.stores import all_pages
from tests.test_jobs import counters

LIST = "contacts"
ACME = ContactQuery(domain="acme.com")
NEWS = Topic("news", "News", OPT_OUT)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    s = open_services(tmp_path / "data")  # with the SES API's keys: one test asks it about the job
    s.ensure_default_list()
    s.jobs.action_batch_rows = 10
    yield s
    s.close()


def seed(services: Services, n: int = 60, *, topic: bool = False) -> None:
    """``n`` contacts, every other one at acme.com, every third unsubscribed; with ``topic``, the list gets the
    topic ``news`` (OPT_OUT by default), every third contact opted in to it and the next one opted out."""
    if topic:
        services.store.update_list(LIST, topics=[NEWS])
    patches = [
        ContactPatch(
            f"c{i:05d}@{'acme.com' if i % 2 else 'example.org'}",
            unsubscribe_all=i % 3 == 0,
            attributes={"i": i},
            topic_preferences={"news": OPT_IN if i % 3 == 0 else OPT_OUT} if topic and i % 3 != 2 else {},
        )
        for i in range(n)
    ]
    services.store.upsert_contacts(LIST, patches, UpsertPolicy())


def acme_state(services: Services, topic: str | None = None) -> dict[str, bool]:
    """Which contacts at acme.com are unsubscribed from all (with ``topic``: opted in to it themselves)."""
    contacts = all_pages(services.store, LIST, ACME)
    if topic is not None:
        return {c.email: c.topic_preferences.get(topic) == OPT_IN for c in contacts}
    return {c.email: c.unsubscribe_all for c in contacts}


def assert_counters_exact(services: Services) -> None:
    kept_total, total, kept_unsub, unsub = counters(services.settings.database_path)
    assert (kept_total, kept_unsub) == (total, unsub)


def test_an_action_job_runs_to_completion_with_progress(services: Services) -> None:
    seed(services)  # 30 at acme.com, 10 of them unsubscribed
    job = services.jobs.submit_action(LIST, ACME, "unsubscribe", description="contacts at acme.com", run_here=True)
    assert (job.kind, job.state, job.action, job.rows_done) == ("action", "queued", "unsubscribe", 0)
    seen: list[tuple[str, int, int]] = []
    done = services.jobs.run(job.id, progress=lambda j: seen.append((j.state, j.rows_done, j.bytes_total)))
    assert done.state == "completed" and done.fraction == 1.0
    assert [rows for state, rows, _ in seen if state == "running"] == [10, 20, 30, 30]  # the last batch is empty
    assert {total for _, _, total in seen} == {30}  # how many matched when it started
    assert (done.rows_done, done.counts["updated"], done.counts["unchanged"]) == (30, 20, 10)
    assert all(acme_state(services).values())
    assert services.store.count_contacts(LIST, ContactQuery(status=OPT_OUT)).value == 30 + 10  # 10 elsewhere
    assert_counters_exact(services)


def test_cancel_stops_after_the_batch_and_resume_finishes_without_redoing(services: Services) -> None:
    seed(services)
    job = services.jobs.submit_action(LIST, ACME, "delete", description="contacts at acme.com", run_here=True)

    def cancel_after_two_batches(j: Job) -> None:
        if j.state == "running" and j.batches_done == 2:
            services.jobs.cancel(j.id)

    cancelled = services.jobs.run(job.id, progress=cancel_after_two_batches)
    assert (cancelled.state, cancelled.rows_done, cancelled.counts["deleted"]) == ("cancelled", 20, 20)
    assert sorted(acme_state(services)) == [f"c{i:05d}@acme.com" for i in range(41, 60, 2)]  # the first 20 are gone
    assert_counters_exact(services)
    services.jobs.resume(job.id, run_here=True)
    finished = services.jobs.run(job.id)
    assert (finished.state, finished.rows_done, finished.counts["deleted"]) == ("completed", 30, 30)
    assert acme_state(services) == {} and services.store.list_stats(LIST).total == 30
    assert_counters_exact(services)


def test_contacts_added_or_changed_while_it_runs(services: Services) -> None:
    """The walk in key order, bounded by the time the user confirmed: contacts added afterwards are left alone
    whether the walk has passed their key or not; a contact changed before the walk reaches it is acted on as
    it is then (here: it no longer matches, so it is not counted)."""
    seed(services)
    job = services.jobs.submit_action(
        LIST, ContactQuery(status=OPT_IN), "delete", description="subscribed contacts", run_here=True
    )

    def change_things(j: Job) -> None:
        if j.state == "running" and j.batches_done == 1:
            store = services.store
            store.create_contact(LIST, Contact("a-early@example.org"))  # before the walk's position
            store.create_contact(LIST, Contact("zz-late@example.org"))  # after it
            last = store.get_contact(LIST, "c00059@acme.com")  # not reached yet: unsubscribed meanwhile
            store.update_contact(LIST, Contact(last.email, unsubscribe_all=True))

    done = services.jobs.run(job.id, progress=change_things)
    assert done.state == "completed"
    left = {c.email: c.unsubscribe_all for c in all_pages(services.store, LIST)}
    assert left.pop("a-early@example.org") is False and left.pop("zz-late@example.org") is False
    assert all(left.values())  # every other subscribed contact is deleted
    assert "c00059@acme.com" in left
    assert done.rows_done == done.counts["deleted"] == 40 - 1  # 40 subscribed when it started, one changed
    assert_counters_exact(services)


def test_the_worker_runs_it_and_the_import_lists_stay_imports(services: Services, tmp_path: Path) -> None:
    seed(services)
    services.start()
    job = services.jobs.submit_action(LIST, ACME, "resubscribe", description="contacts at acme.com")
    done = services.jobs.wait(job.id, timeout=30)
    assert (done.state, done.counts["updated"], done.counts["unchanged"]) == ("completed", 10, 20)
    assert not any(acme_state(services).values())
    assert [j.id for j in services.jobs.list()] == []  # the import history, the CLI and ListImportJobs
    assert [j.id for j in services.jobs.list(kind=None)] == [job.id]
    api = InProcessClient(services)
    assert api.call("GET", f"/v2/email/import-jobs/{job.id}").status == 404
    assert api.call("POST", "/v2/email/import-jobs/list", {}).json == {"ImportJobs": []}


def test_a_query_that_fails_fails_the_job_with_the_reason(services: Services) -> None:
    from sescontacts.model import TopicFilter

    seed(services, 4)
    query = ContactQuery(topic=TopicFilter("gone"))
    job = services.jobs.submit_action(LIST, query, "delete", description="x", run_here=True)
    failed = services.jobs.run(job.id)
    assert failed.state == "failed" and failed.error == "List: contacts doesn't contain Topic: gone"
    assert services.store.list_stats(LIST).total == 4


# -- a SIGKILL between batches ----------------------------------------------------------------------------

# The child runs the job and, after each committed batch, tells the parent where it is and waits for a go: the
# parent kills it at a chosen batch, so the kill lands at a known point without any timing.
CHILD = """
import sys
from pathlib import Path
from sescontacts.model import ContactQuery
from sescontacts.services import Services
from sescontacts.settings import Settings
services = Services.open(Settings(data_dir=Path(sys.argv[1])))
services.jobs.action_batch_rows = 700
job = services.jobs.submit_action("contacts", ContactQuery(domain="acme.com"), sys.argv[2], topic=sys.argv[3] or None,
                                  description="contacts at acme.com", run_here=True)
def report(j):
    print(j.id, j.state, j.batches_done, flush=True)
    sys.stdin.readline()
services.jobs.run(job.id, progress=report)
"""


def dump(db_path: Path) -> list[tuple[object, ...]]:
    """What a user sees of each contact (not ``updated``, which is the time of the write)."""
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(
            "SELECT email_key, email, unsubscribe_all, topics, attributes, created FROM contacts ORDER BY email_key"
        ).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kill_after", "action"), [(3, "unsubscribe"), ("the last batch", "unsubscribe"), (3, "topic_opt_in")]
)
def test_sigkill_mid_job_then_resume_equals_a_clean_run(
    tmp_path: Path, kill_after: int | str, action: BulkAction
) -> None:
    """Unsubscribe (or opt in to a topic) at acme.com, killed after a batch and resumed: the same contacts, counters
    and counts as a run never killed. The seed makes every third contact already unsubscribed (opted in)."""
    topic = "news" if action == "topic_opt_in" else None
    seeded = tmp_path / "seeded"
    first = Services.open(Settings(data_dir=seeded))
    first.ensure_default_list()
    seed(first, 20_000, topic=topic is not None)  # 10,000 at acme.com: 15 batches of 700
    first.close()
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    shutil.copytree(seeded, killed)
    shutil.copytree(seeded, clean)

    def kill(state: str, batches: int) -> bool:
        return state == "running" and (batches == kill_after or (kill_after == "the last batch" and batches == 15))

    job_id = kill_between_batches(CHILD, [str(killed), action, topic or ""], kill)

    services = Services.open(Settings(data_dir=killed))
    try:
        acme = acme_state(services, topic)
        reached = 700 * (15 if kill_after == "the last batch" else int(kill_after))
        assert sum(acme.values()) == min(10_000, reached + (10_000 - reached) // 3)  # the rest: every third
        assert_counters_exact(services)
        services.jobs.start()  # the dead process's job is marked interrupted
        assert services.jobs.get(job_id).state == "interrupted"
        services.jobs.resume(job_id)
        resumed = services.jobs.wait(job_id, timeout=60)
    finally:
        services.close()
    assert resumed.state == "completed"

    reference = Services.open(Settings(data_dir=clean))
    try:
        reference.jobs.action_batch_rows = 700
        job = reference.jobs.submit_action(LIST, ACME, action, topic=topic, description="x", run_here=True)
        clean_job = reference.jobs.run(job.id)
    finally:
        reference.close()
    assert dump(killed / "sescontacts.db") == dump(clean / "sescontacts.db")
    assert counters(killed / "sescontacts.db") == counters(clean / "sescontacts.db")
    assert (resumed.rows_done, resumed.counts) == (clean_job.rows_done, clean_job.counts)
    assert (resumed.counts["updated"], resumed.counts["unchanged"]) == (6667, 3333)  # nothing done twice


def test_options_of_an_action_job_name_its_list(services: Services) -> None:
    job = services.jobs.submit_action(LIST, ACME, "delete", description="x", run_here=True)
    assert job.options == ImportOptions(LIST) and job.contact_list == LIST and job.file_name == "x"


def test_the_cli_resumes_a_bulk_action_as_it_resumes_imports(tmp_path: Path) -> None:
    """`sescontacts jobs resume ID` (what docs/bulk.md says to run after a kill) continues a bulk action too."""
    from click.testing import CliRunner

    from sescontacts.cli import main

    data_dir = tmp_path / "cli"
    services = Services.open(Settings(data_dir=data_dir))
    services.ensure_default_list()
    seed(services)
    services.jobs.action_batch_rows = 10
    job = services.jobs.submit_action(LIST, ACME, "unsubscribe", description="contacts at acme.com", run_here=True)
    services.jobs.run(job.id, progress=lambda j: services.jobs.cancel(j.id) if j.batches_done == 1 else None)
    services.close()
    result = CliRunner().invoke(main, ["jobs", "--data-dir", str(data_dir), "resume", job.id], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"job {job.id} completed: 30 rows: updated 20, unchanged 10" in result.stdout


def test_a_stored_query_round_trips_and_one_stored_by_the_previous_version_still_loads() -> None:
    """Jobs keep their query as JSON: several conditions survive the trip, and a job stored when a search had
    one ``attribute_key``/``attribute_value`` (compared exactly then) resumes with that same condition."""
    query = ContactQuery(
        status=OPT_IN,
        topic=TopicFilter("news", use_default=True),
        email_prefix="ann",
        domain="acme.com",
        attributes=(AttributeCondition("Company", "acm inc"), AttributeCondition("Plan", exact=True)),
    )
    assert query_from_json(json.loads(json.dumps(query_to_json(query)))) == query
    old = {"status": None, "topic": None, "email_contains": "ann", "domain": None, "sort": "email"}
    assert query_from_json({**old, "attribute_key": "Company", "attribute_value": "ACM"}) == ContactQuery(
        email_contains="ann", attributes=(AttributeCondition("Company", "ACM", exact=True),)
    )
    unset = {**old, "attribute_key": None, "attribute_value": None}
    assert query_from_json(unset) == ContactQuery(email_contains="ann")


def test_an_action_job_recorded_before_topic_actions_still_loads_and_resumes(services: Services) -> None:
    """A job row exactly as the version before topic actions wrote it (its meta holds no ``topic``), interrupted
    after its first batch: it loads, and resumes after the key it had reached."""
    seed(services)  # 30 at acme.com, 10 of them unsubscribed
    step = services.store.apply_to_matching(LIST, ACME, "unsubscribe", limit=10)  # what its first batch did
    done = ActionProgress(estimate=30).advanced(step, "unsubscribe")
    query = {"status": None, "topic": None, "email_contains": None, "email_prefix": None, "domain": "acme.com"}
    meta = {
        "view": "/?q=acme.com&field=domain",
        "query": {**query, "attributes": [], "sort": "email"},
        "created_before": time.time(),
        "after": done.after,
        "finished": False,
        "estimate": 30,
    }
    options = json.dumps(dataclasses.asdict(ImportOptions(LIST)))
    with services.db.write() as conn:
        conn.execute(
            "INSERT INTO bulk_jobs (id, seq, kind, file_name, path, contact_list, action, options, state, counts, "
            "created, started, meta, rows_done, bytes_done, bytes_total, batches_done) "
            "VALUES ('old', 1, 'action', 'contacts at acme.com', '', ?, 'unsubscribe', ?, 'interrupted', ?, ?, ?, ?, "
            "10, 10, 30, 1)",
            (LIST, options, json.dumps(done.counts), time.time(), time.time(), json.dumps(meta)),
        )
    job = services.jobs.get("old")
    assert (job.kind, job.action, job.state, job.rows_done) == ("action", "unsubscribe", "interrupted", 10)
    services.jobs.resume("old", run_here=True)
    finished = services.jobs.run("old")
    assert (finished.state, finished.rows_done, finished.counts["updated"], finished.counts["unchanged"]) == (
        "completed",
        30,
        20,
        10,
    )
    assert all(acme_state(services).values())
    assert_counters_exact(services)


def test_a_topic_action_job_cancelled_and_resumed(services: Services) -> None:
    """Opt in to a topic as a job: the topic is kept with the job, so a job cancelled after two batches resumes on
    the same topic; those who opted in already are counted unchanged, unsubscribe-all stays."""
    seed(services, topic=True)  # at acme.com: 10 opted in to news (and unsubscribed), 10 opted out, 10 no choice
    job = services.jobs.submit_action(LIST, ACME, "topic_opt_in", topic="news", description="acme", run_here=True)
    assert job.meta["topic"] == "news"

    def cancel_after_two_batches(j: Job) -> None:
        if j.state == "running" and j.batches_done == 2:
            services.jobs.cancel(j.id)

    cancelled = services.jobs.run(job.id, progress=cancel_after_two_batches)
    assert (cancelled.state, cancelled.rows_done) == ("cancelled", 20)
    services.jobs.resume(job.id, run_here=True)
    finished = services.jobs.run(job.id)
    assert (finished.state, finished.rows_done, finished.counts["updated"], finished.counts["unchanged"]) == (
        "completed",
        30,
        20,
        10,
    )
    assert all(acme_state(services, "news").values())
    assert sum(c.unsubscribe_all for c in all_pages(services.store, LIST, ACME)) == 10
    with pytest.raises(ValueError):
        services.jobs.submit_action(LIST, ACME, "topic_opt_in", description="no topic")
