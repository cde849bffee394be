"""Undo of a job (bulk/undo.py): the prior state back after add, update and delete imports, conflicts listed
with both states and decided per contact, an undo of an undo, a SIGKILL mid-undo then resume, and the ses
backend (our own server acting as SES), on real SQLite files."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from sescontacts.bulk.job_manager import ImportOptions, Job
from sescontacts.errors import BadRequest
from sescontacts.history import Actor, ChangeQuery, acting_as
from sescontacts.model import OPT_IN, OPT_OUT, Contact, Topic
from sescontacts.services import Services
from sescontacts.settings import Settings
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


def test_a_job_that_is_running_or_changes_no_contacts_is_refused(services: Services, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", [("a@example.com", None, None, None)])
    queued = services.jobs.submit(path, ImportOptions(LIST), file_name="x.csv", run_here=True)
    with pytest.raises(BadRequest, match="still queued"):
        services.undo.start(queued.id)
    with pytest.raises(BadRequest, match="conflict policy"):
        services.undo.start(queued.id, "overwrite")
