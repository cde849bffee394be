"""Undo of a job (bulk/undo.py): the prior state back after add, update and delete imports, conflicts listed
with both states and decided per contact, an undo of an undo, a SIGKILL mid-undo then resume, and the ses
backend (our own server acting as SES), on real SQLite files."""

from __future__ import annotations

import csv
import io
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sescontacts.bulk.job_manager import ImportOptions, Job
from sescontacts.cli import main
from sescontacts.errors import BadRequest
from sescontacts.history import Actor, ChangeQuery, acting_as
from sescontacts.model import OPT_IN, OPT_OUT, Contact, Topic
from sescontacts.services import Services
from sescontacts.settings import Settings
from tests.support.killed_child import kill_between_batches
from tests.support.stores import all_pages

LIST = "contacts"
TOPICS = [Topic("news", "News", OPT_OUT), Topic("sports", "Sports", OPT_IN)]
ALICE = Actor("console", "alice")
Row = tuple[str, bool | None, dict[str, Any] | None, str | None]  # email, unsubscribe-all, attributes, news


def open_services(data_dir: Path) -> Services:
    services = Services.open(Settings(data_dir=data_dir))
    if services.ensure_default_list():
        services.store.update_list(LIST, topics=TOPICS)
    return services


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    s = open_services(tmp_path / "data")
    yield s
    s.close()


def write_csv(path: Path, rows: Sequence[Row]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["emailAddress", "unsubscribeAll", "attributesData", "topicPreferences.news"])
    for email, unsubscribe, attributes, news in rows:
        writer.writerow(
            [
                email,
                "" if unsubscribe is None else str(unsubscribe).lower(),
                "" if attributes is None else orjson.dumps(attributes).decode(),
                news or "",
            ]
        )
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def run_import(services: Services, rows: Sequence[Row], action: str = "add", *, resubscribe: bool = False) -> Job:
    """An import job of ``rows``, recorded under its job ID (as every job's writes are)."""
    path = write_csv(services.settings.data_dir / f"{uuid.uuid4()}.csv", rows)
    options = ImportOptions(LIST, action=action, resubscribe=resubscribe)  # type: ignore[arg-type]
    job = services.jobs.submit(path, options, file_name=path.name, run_here=True)
    with acting_as(Actor("job", "tester", job.id)):
        done = services.jobs.run(job.id)
    assert done.state == "completed", done.error
    return done


def undo(services: Services, job_id: str, policy: str = "keep") -> Job:
    job = services.undo.start(job_id, policy, "tester", run_here=True)
    done = services.jobs.run(job.id)
    assert done.state == "completed", done.error
    return done


def state(services: Services) -> dict[str, tuple[object, ...]]:
    """What a user sees of each contact: address, unsubscribe-all, topic preferences, attributes (as JSON)."""
    return {
        c.email.lower(): (
            c.email,
            c.unsubscribe_all,
            dict(c.topic_preferences),
            orjson.loads(c.attributes_data) if c.attributes_data else None,
        )
        for c in all_pages(services.store, LIST)
    }


def seed(services: Services, n: int = 20) -> None:
    rows: list[Row] = [
        (f"c{i:03d}@example.com", i % 3 == 0, {"n": i, "tier": "gold" if i % 2 else "free"}, OPT_IN if i % 4 else None)
        for i in range(n)
    ]
    run_import(services, rows)


# -- the prior state back ------------------------------------------------------------------------------------


def test_undo_of_an_add_import_removes_what_it_created_and_puts_back_what_it_updated(services: Services) -> None:
    seed(services)
    before = state(services)
    rows: list[Row] = [(f"c{i:03d}@example.com", False, {"n": -i}, OPT_OUT) for i in range(0, 20, 2)]
    rows += [(f"new{i}@example.com", True, {"new": True}, OPT_IN) for i in range(5)]
    job = run_import(services, rows, resubscribe=True)
    assert (job.counts["created"], job.counts["updated"]) == (5, 10)
    assert state(services) != before
    done = undo(services, job.id)
    assert state(services) == before
    assert (done.counts["deleted"], done.counts["updated"], done.counts["conflicts"]) == (5, 10, 0)
    assert done.rows_done == done.bytes_total == 15 and done.fraction == 1.0


def test_undo_of_a_delete_import_restores_attributes_topics_and_unsubscribe(services: Services) -> None:
    seed(services)
    before = state(services)
    job = run_import(services, [(f"C{i:03d}@EXAMPLE.COM", None, None, None) for i in range(0, 20, 3)], "delete")
    assert job.counts["deleted"] == 7 and len(state(services)) == 13
    done = undo(services, job.id)
    assert state(services) == before
    assert done.counts["created"] == 7


def test_undo_removes_a_topic_preference_the_job_added_and_restores_attributes_text(services: Services) -> None:
    """An update that added a topic preference is put back whole (an upsert only merges preferences); attributes
    that are not a JSON object (possible through the SES API) come back as the exact text."""
    services.store.create_contact(LIST, Contact("a@example.com", attributes_data='"just text"'))
    services.store.create_contact(LIST, Contact("b@example.com", topic_preferences={"sports": OPT_OUT}))
    before = state(services)
    job = run_import(services, [("a@example.com", None, {"x": 1}, OPT_IN), ("b@example.com", None, None, OPT_IN)])
    assert job.counts["updated"] == 2
    undo(services, job.id)
    assert state(services) == before
    assert services.store.get_contact(LIST, "a@example.com").attributes_data == '"just text"'


def test_an_undo_is_recorded_under_its_own_job_and_undoing_it_redoes(services: Services) -> None:
    seed(services)
    job = run_import(
        services, [("c001@example.com", None, {"n": 100}, OPT_OUT), ("fresh@example.com", None, {"f": 1}, None)]
    )
    after_job = state(services)
    first = undo(services, job.id)
    changes = services.history.changes(LIST, ChangeQuery(job=first.id)).items
    assert {(c.op, c.email, c.actor) for c in changes} == {
        ("updated", "c001@example.com", Actor("job", "tester", first.id)),
        ("deleted", "fresh@example.com", Actor("job", "tester", first.id)),
    }
    undo(services, first.id)  # the redo
    assert state(services) == after_job


def test_undoing_the_later_import_then_the_earlier_one_finds_no_conflict(services: Services) -> None:
    """The later import and its undo cancel out: they are no change since the earlier import. A job undone
    cannot be undone twice (undoing its undo redoes it)."""
    seed(services, 5)
    before = state(services)
    first = run_import(services, [(f"c{i:03d}@example.com", None, {"first": i}, None) for i in range(3)])
    second = run_import(services, [(f"c{i:03d}@example.com", True, {"second": i}, OPT_OUT) for i in range(3)])
    undone = undo(services, second.id)
    first_undo = undo(services, first.id)
    assert first_undo.counts["conflicts"] == 0
    assert state(services) == before
    with pytest.raises(BadRequest, match=f"Job {second.id} was undone by job {undone.id}"):
        services.undo.start(second.id)
    assert (services.undo.undone_by(second.id), services.undo.undone_by(first.id)) == (undone.id, first_undo.id)
    redo = undo(services, first_undo.id)
    assert (services.undo.undone_by(first.id), services.undo.undone_by(first_undo.id)) == (None, redo.id)


def test_undo_of_a_bulk_action_run_as_a_job(services: Services) -> None:
    """ "Delete all matching" as a job, taken back: the contacts return with their attributes, topics and
    unsubscribe state."""
    from sescontacts.model import ContactQuery

    seed(services)
    before = state(services)
    services.jobs.action_batch_rows = 4
    action = services.jobs.submit_action(LIST, ContactQuery(), "delete", description="all contacts", run_here=True)
    with acting_as(Actor("job", "tester", action.id)):
        assert services.jobs.run(action.id).counts["deleted"] == 20
    assert state(services) == {}
    done = undo(services, action.id)
    assert state(services) == before and done.counts["created"] == 20


def test_an_undo_cancelled_after_a_batch_stops_there_and_resumes_to_the_end(services: Services) -> None:
    seed(services)
    before = state(services)
    job = run_import(services, [(f"c{i:03d}@example.com", None, {"x": i}, None) for i in range(20)])
    services.undo.batch_rows = 5
    services.undo.after_batch = lambda j: services.jobs.cancel(j.id) if j.batches_done == 1 else None
    undo_job = services.undo.start(job.id, run_here=True)
    cancelled = services.jobs.run(undo_job.id)
    assert (cancelled.state, cancelled.rows_done) == ("cancelled", 5)
    assert sum(state(services)[k] == v for k, v in before.items()) == 5
    with pytest.raises(BadRequest, match=f"An undo of job {job.id} is cancelled \\(job {undo_job.id}\\): resume"):
        services.undo.start(job.id)
    services.undo.after_batch = None
    services.jobs.resume(undo_job.id, run_here=True)
    resumed = services.jobs.run(undo_job.id)
    assert (resumed.state, resumed.rows_done, resumed.counts["updated"]) == ("completed", 20, 20)
    assert state(services) == before


def test_a_job_still_running_or_with_no_recorded_changes_is_refused(services: Services, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", [("a@example.com", None, None, None)])
    queued = services.jobs.submit(path, ImportOptions(LIST), file_name="x.csv", run_here=True)
    with pytest.raises(BadRequest, match="still queued"):
        services.undo.start(queued.id)
    with pytest.raises(BadRequest, match="conflict policy"):
        services.undo.start(queued.id, "overwrite")
    from sescontacts.store.sqlite.history import set_recording

    with services.db.write() as conn:  # the history off (retention 0 days): nothing of the job is recorded
        set_recording(conn, False)
    with acting_as(Actor("job", "tester", queued.id)):
        assert services.jobs.run(queued.id).counts["created"] == 1
    with pytest.raises(BadRequest, match="the history holds none of its changes"):
        services.undo.start(queued.id)


# -- conflicts ----------------------------------------------------------------------------------------------


def conflicted_job(services: Services) -> tuple[dict[str, tuple[object, ...]], Job]:
    """An add import (c001..c003 updated, n1 and n2 created), then alice changes c001's attributes, deletes c002
    and edits n1: three conflicts. Returns the state before the import, and the import."""
    seed(services)
    before = state(services)
    rows: list[Row] = [(f"c00{i}@example.com", None, {"job": i}, None) for i in (1, 2, 3)]
    rows += [("n1@example.com", None, {"new": 1}, None), ("n2@example.com", None, {"new": 2}, None)]
    job = run_import(services, rows)
    with acting_as(ALICE):
        services.store.update_contact(LIST, Contact("c001@example.com", False, {"news": OPT_IN}, '{"alice": 1}'))
        services.store.delete_contact(LIST, "c002@example.com")
        services.store.update_contact(LIST, Contact("n1@example.com", unsubscribe_all=True))
    return before, job


def test_contacts_changed_since_the_job_are_kept_and_listed_with_both_states(services: Services) -> None:
    before, job = conflicted_job(services)
    edited = state(services)
    done = undo(services, job.id)
    after = state(services)
    assert after["c003@example.com"] == before["c003@example.com"] and "n2@example.com" not in after
    for email in ("c001@example.com", "n1@example.com"):
        assert after[email] == edited[email]  # kept as alice left them
    assert "c002@example.com" not in after
    assert done.counts["conflicts"] == 3
    conflicts = {c.email: c for c in services.undo.conflicts(done.id, page_size=10).items}
    assert set(conflicts) == {"c001@example.com", "c002@example.com", "n1@example.com"}
    c001, c002, n1 = conflicts["c001@example.com"], conflicts["c002@example.com"], conflicts["n1@example.com"]
    assert (c001.op, c001.state, c001.later_actor) == ("updated", "open", ALICE)
    assert c001.current is not None and c001.current.attributes_data == '{"alice": 1}'
    assert c001.restore is not None and orjson.loads(c001.restore.attributes_data or "") == {"n": 1, "tier": "gold"}
    assert c002.current is None and c002.later_actor == ALICE
    assert c002.restore is not None and orjson.loads(c002.restore.attributes_data or "") == {"n": 2, "tier": "free"}
    assert (n1.op, n1.restore) == ("created", None)
    assert n1.current is not None and n1.current.unsubscribe_all
    first = services.undo.conflicts(done.id, page_size=2)
    assert len(first.items) == 2 and first.next_token is not None
    assert len(services.undo.conflicts(done.id, page_size=2, token=first.next_token).items) == 1


def test_restore_anyway_gives_the_state_before_the_job_and_still_lists_them(services: Services) -> None:
    before, job = conflicted_job(services)
    done = undo(services, job.id, "restore")
    assert state(services) == before
    assert services.undo.conflict_counts(done.id) == {"open": 0, "restored": 3, "kept": 0}


def test_conflicts_are_resolved_per_contact_then_all(services: Services) -> None:
    before, job = conflicted_job(services)
    done = undo(services, job.id)
    assert services.undo.resolve(done.id, ["C002@example.com"], "restore") == 1
    assert state(services)["c002@example.com"] == before["c002@example.com"]
    assert services.undo.resolve(done.id, ["c002@example.com", "nobody@example.com"]) == 0  # none open
    assert services.undo.resolve(done.id, ["n1@example.com"], "keep") == 1
    assert "n1@example.com" in state(services)
    assert services.undo.resolve(done.id, None, "restore") == 1  # all the open ones: c001
    assert state(services)["c001@example.com"] == before["c001@example.com"]
    assert services.undo.conflict_counts(done.id) == {"open": 0, "restored": 2, "kept": 1}
    restored = services.history.contact_history(LIST, "c001@example.com")[0]
    assert restored.actor == Actor("job", "tester", done.id)  # recorded as the undo's own write


def test_a_contact_a_later_import_updated_is_a_conflict_of_the_earlier_imports_undo(services: Services) -> None:
    """A batch's updates are one recorded row, found per contact along its chain: the undo of a re-import finds
    the contacts a later import updated again, and keeps them."""
    seed(services)
    before = state(services)
    job = run_import(services, [(f"c{i:03d}@example.com", None, {"v": 2}, None) for i in range(20)])
    later = run_import(services, [(f"c{i:03d}@example.com", None, {"v": 3}, None) for i in range(5)])
    done = undo(services, job.id)
    after = state(services)
    assert done.counts["conflicts"] == 5
    assert {c.email: c.later_actor.job for c in services.undo.conflicts(done.id, page_size=10).items} == {
        f"c{i:03d}@example.com": later.id for i in range(5)
    }
    assert all(after[f"c{i:03d}@example.com"][3] == {"v": 3} for i in range(5))
    assert {k: v for k, v in after.items() if k >= "c005"} == {k: v for k, v in before.items() if k >= "c005"}


def test_a_deleted_contact_created_again_since_is_a_conflict(services: Services) -> None:
    seed(services)
    job = run_import(services, [("c010@example.com", None, None, None)], "delete")
    with acting_as(ALICE):
        services.store.create_contact(LIST, Contact("c010@example.com", attributes_data='{"again": true}'))
    done = undo(services, job.id)
    assert state(services)["c010@example.com"][3] == {"again": True}
    (conflict,) = services.undo.conflicts(done.id).items
    assert (conflict.op, conflict.later_actor) == ("deleted", ALICE)
    assert conflict.restore is not None and orjson.loads(conflict.restore.attributes_data or "") == {
        "n": 10,
        "tier": "free",
    }


# -- random sequences: the undo of an import gives the state before it -----------------------------------

EMAILS = [f"p{i}@example.com" for i in range(6)]
rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(EMAILS),
        st.one_of(st.none(), st.booleans()),
        st.one_of(st.none(), st.dictionaries(st.sampled_from("abc"), st.integers(0, 3), max_size=2)),
        st.sampled_from([None, OPT_IN, OPT_OUT]),
    ),
    min_size=1,
    max_size=6,
)
# An import (add or delete, with or without resubscribe) or a single edit by alice.
step_strategy = st.one_of(
    st.tuples(st.just("import"), st.sampled_from(["add", "add", "delete"]), st.booleans(), rows_strategy),
    st.tuples(st.just("edit"), st.sampled_from(EMAILS), st.booleans(), st.sampled_from([None, '{"e": 1}'])),
)


def apply_step(services: Services, step: tuple[Any, ...]) -> Job | None:
    if step[0] == "import":
        _, action, resubscribe, rows = step
        return run_import(services, rows, action, resubscribe=resubscribe)
    _, email, unsubscribe, attributes = step
    with acting_as(ALICE):
        try:
            services.store.update_contact(LIST, Contact(email, unsubscribe, {"sports": OPT_OUT}, attributes))
        except Exception:
            services.store.create_contact(LIST, Contact(email, unsubscribe, {}, attributes))
    return None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    earlier=st.lists(step_strategy, max_size=5),
    target=st.tuples(st.just("import"), st.sampled_from(["add", "delete"]), st.booleans(), rows_strategy),
    later=st.lists(step_strategy, max_size=4),
)
def test_undo_of_an_import_equals_the_snapshot_before_it(
    tmp_path: Path, earlier: list[tuple[Any, ...]], target: tuple[Any, ...], later: list[tuple[Any, ...]]
) -> None:
    """Imports and edits, then one import, then more on other contacts; undoing that import gives its contacts
    the state of a snapshot taken just before it, and leaves the others as they are."""
    services = open_services(tmp_path / str(uuid.uuid4()))
    try:
        for step in earlier:
            apply_step(services, step)
        snapshot = state(services)
        job = apply_step(services, target)
        assert job is not None
        touched = {email for email, *_ in target[3]}
        for step in later:  # only on contacts the target import did not name
            if step[0] == "edit" and step[1] not in touched:
                apply_step(services, step)
            elif step[0] == "import" and (rows := [r for r in step[3] if r[0] not in touched]):
                apply_step(services, (*step[:3], rows))
        others = {k: v for k, v in state(services).items() if k not in touched}
        done = undo(services, job.id)
        assert done.counts.get("conflicts", 0) == 0
        after = state(services)
        assert {k: v for k, v in after.items() if k in touched} == {k: v for k, v in snapshot.items() if k in touched}
        assert {k: v for k, v in after.items() if k not in touched} == others
    finally:
        services.close()


# -- a SIGKILL mid-undo, then `jobs resume` ------------------------------------------------------------------

# The child runs the undo and, after each committed batch, tells the parent where it is and waits for a go: the
# parent kills it at a chosen batch, so the kill lands at a known point without any timing.
CHILD = """
import sys
from pathlib import Path
from sescontacts.services import Services
from sescontacts.settings import Settings
services = Services.open(Settings(data_dir=Path(sys.argv[1])))
services.undo.batch_rows = 500
def report(j):
    print(j.id, j.state, j.batches_done, flush=True)
    sys.stdin.readline()
services.undo.after_batch = report
job = services.undo.start(sys.argv[2], "keep", "tester", run_here=True)
services.jobs.run(job.id)
"""


def conflicts_of(services: Services, undo_job_id: str) -> list[tuple[object, ...]]:
    return [
        (c.email, c.op, c.state, c.later_actor, c.current, c.restore)
        for c in services.undo.conflicts(undo_job_id, page_size=1000).items
    ]


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [3, 5])
def test_sigkill_mid_undo_then_resume_equals_a_clean_undo(tmp_path: Path, kill_after: int) -> None:
    """An import that updated 2,000 contacts and created 1,000 (one recorded row), ten of them edited since; its
    undo killed after 3 batches of 500 (in the updates) or 5 (inside the creations' row) and resumed with
    `sescontacts jobs resume` ends as an undo never killed: the same contacts, conflicts and counts."""
    seeded = tmp_path / "seeded"
    services = open_services(seeded)
    run_import(
        services, [(f"c{i:04d}@example.com", i % 5 == 0, {"n": i}, OPT_IN if i % 2 else None) for i in range(2500)]
    )
    before = state(services)
    rows: list[Row] = [(f"c{i:04d}@example.com", None, {"n": -i}, OPT_OUT) for i in range(2000)]
    job = run_import(services, rows + [(f"new{i:04d}@example.com", True, {"new": i}, None) for i in range(1000)])
    with acting_as(ALICE):
        for i in range(0, 3000, 300):
            email = f"c{i:04d}@example.com" if i < 2000 else f"new{i - 2000:04d}@example.com"
            services.store.update_contact(LIST, Contact(email, attributes_data='{"alice": true}'))
    services.close()
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    shutil.copytree(seeded, killed)
    shutil.copytree(seeded, clean)

    undo_id = kill_between_batches(
        CHILD, [str(killed), job.id], lambda state, batches: state == "running" and batches == kill_after
    )

    services = Services.open(Settings(data_dir=killed))
    try:
        halfway = services.jobs.get(undo_id)
        assert (halfway.state, halfway.rows_done, halfway.batches_done) == ("running", 500 * kill_after, kill_after)
    finally:
        services.close()
    result = CliRunner().invoke(main, ["jobs", "--data-dir", str(killed), "resume", undo_id], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"job {undo_id} completed" in result.stdout

    reference = Services.open(Settings(data_dir=clean))
    try:
        clean_undo = undo(reference, job.id)
        expected, expected_conflicts = state(reference), conflicts_of(reference, clean_undo.id)
    finally:
        reference.close()
    services = Services.open(Settings(data_dir=killed))
    try:
        resumed = services.jobs.get(undo_id)
        assert state(services) == expected
        assert conflicts_of(services, undo_id) == expected_conflicts and len(expected_conflicts) == 10
        assert (resumed.rows_done, resumed.counts) == (clean_undo.rows_done, clean_undo.counts)
        assert resumed.rows_done == 3000 and resumed.counts["conflicts"] == 10
        unedited = {k: v for k, v in before.items() if k not in {e for e, *_ in expected_conflicts}}
        assert {k: v for k, v in expected.items() if k in unedited} == unedited
    finally:
        services.close()


# -- the CLI -----------------------------------------------------------------------------------------------


def cli(data_dir: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["jobs", "--data-dir", str(data_dir), *args], catch_exceptions=False)


def test_the_cli_undoes_lists_conflicts_and_resolves_them(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    services = open_services(data_dir)
    before, job = conflicted_job(services)
    services.close()

    undone = cli(data_dir, "undo", job.id, "--wait")
    assert undone.exit_code == 1, undone.output  # done, with conflicts left open
    undo_id = undone.stdout.split()[2]
    assert f"undo job {undo_id} completed: 5 rows: updated 1, deleted 1" in undone.stdout
    assert f"3 contacts changed since job {job.id} were left as they are: sescontacts jobs conflicts {undo_id}" in (
        undone.stdout
    )
    listed = cli(data_dir, "conflicts", undo_id, "--format", "json")
    assert listed.exit_code == 0, listed.output
    lines = [orjson.loads(line) for line in listed.stdout.splitlines()]
    c002 = next(line for line in lines if line["emailAddress"] == "c002@example.com")
    assert (c002["state"], c002["jobDid"], c002["now"]) == ("open", "updated", None)
    assert c002["changedBy"] == {"kind": "console", "name": "alice", "job": ""}
    assert orjson.loads(c002["restore"]["attributesData"]) == {"n": 2, "tier": "free"}
    text = cli(data_dir, "conflicts", undo_id).stdout
    assert "c002@example.com  open  (the job updated it; changed since by console alice at " in text
    assert "  now:     (not on the list)\n" in text

    resolved = cli(data_dir, "resolve", undo_id, "--restore", "c002@example.com", "--keep", "n1@example.com")
    assert resolved.exit_code == 0, resolved.output
    assert "restored 1, kept 1\n1 conflicts still open" in resolved.stdout
    assert cli(data_dir, "resolve", undo_id, "--restore-all").stdout.startswith("restored 1, kept 0")
    assert cli(data_dir, "resolve", undo_id, "--keep-all", "--restore", "x@example.com").exit_code == 2
    services = Services.open(Settings(data_dir=data_dir))
    try:
        after = state(services)
        assert after["c002@example.com"] == before["c002@example.com"]
        assert after["c001@example.com"] == before["c001@example.com"]
        assert after["n1@example.com"][1] is True  # kept as alice left it
    finally:
        services.close()


def test_the_cli_queues_an_undo_that_jobs_resume_runs_here(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    services = open_services(data_dir)
    seed(services)
    before = state(services)
    job = run_import(services, [("fresh@example.com", None, None, None)])
    services.close()
    queued = cli(data_dir, "undo", job.id)
    assert queued.exit_code == 0, queued.output
    undo_id = queued.stdout.split()[7].rstrip(":")
    assert f"undo of job {job.id} queued as job {undo_id}:" in queued.stdout
    assert "queued       " in cli(data_dir).stdout.splitlines()[0]  # the jobs list shows undos too
    resumed = cli(data_dir, "resume", undo_id)
    assert resumed.exit_code == 0, resumed.output
    services = Services.open(Settings(data_dir=data_dir))
    try:
        assert state(services) == before
    finally:
        services.close()
    refused = CliRunner().invoke(main, ["jobs", "--data-dir", str(data_dir), "undo", "nope"])
    assert refused.exit_code == 2 and "Job nope doesn't exist." in refused.output


# -- the ses backend: the undo goes through SES ----------------------------------------------------------


def test_on_the_ses_backend_the_undo_goes_through_ses(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Our own server acting as SES: an import job's writes reach SES (and the mirror, which records them), and
    its undo deletes on SES what the job created and writes back on SES what it updated."""
    from sescontacts.bulk.job_manager import JobManager
    from sescontacts.bulk.undo import UNDO_KIND, Undo
    from sescontacts.store.sqlite.history import SqliteContactHistory

    from .support.stores import local_ses_store, run_ses_server

    with (
        run_ses_server(tmp_path_factory, throttled=False) as server,
        local_ses_store(tmp_path, server, LIST, throttled=False) as store,
    ):
        store.update_list(LIST, topics=TOPICS)
        for i in range(3):
            store.create_contact(LIST, Contact(f"c{i}@example.com", i == 0, {"news": OPT_IN}, f'{{"n": {i}}}'))
        db = store.mirror.db
        jobs = JobManager(db, store, tmp_path / "data")
        undo_engine = Undo(db, store, SqliteContactHistory(db, store.identity), jobs)
        jobs.runners[UNDO_KIND] = undo_engine
        path = write_csv(
            tmp_path / "job.csv", [("c1@example.com", None, {"n": -1}, OPT_OUT), ("new@example.com", True, None, None)]
        )
        job = jobs.submit(path, ImportOptions(LIST), file_name="job.csv", run_here=True)
        with acting_as(Actor("job", "tester", job.id)):
            assert jobs.run(job.id).counts["created"] == 1
        ses = server.sesv2()
        assert ses.get_contact(ContactListName=LIST, EmailAddress="c1@example.com")["AttributesData"] == '{"n":-1}'
        deletes_before = store.calls.get("delete_contact", 0)

        undo_job = undo_engine.start(job.id, "keep", "tester", run_here=True)
        done = jobs.run(undo_job.id)
        assert done.state == "completed", done.error
        assert (done.counts["deleted"], done.counts["updated"]) == (1, 1)
        assert store.calls.get("delete_contact", 0) == deletes_before + 1
        with pytest.raises(ses.exceptions.NotFoundException):
            ses.get_contact(ContactListName=LIST, EmailAddress="new@example.com")
        c1 = ses.get_contact(ContactListName=LIST, EmailAddress="c1@example.com")
        assert orjson.loads(c1["AttributesData"]) == {"n": 1}
        assert {p["TopicName"]: p["SubscriptionStatus"] for p in c1["TopicPreferences"]} == {"news": OPT_IN}
        assert sorted(c.email for c in all_pages(store, LIST)) == [f"c{i}@example.com" for i in range(3)]
        recorded = undo_engine.history.job_changes(done.id)  # the mirror recorded the undo under its own job
        assert sorted((c.op, c.email) for c in recorded) == [
            ("deleted", "new@example.com"),
            ("updated", "c1@example.com"),
        ]
