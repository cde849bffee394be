"""The contact history recorded in SQLite (store/sqlite/history.py): every write path records who, when and
what, in the same transaction; reads by contact, by list and by job."""

from __future__ import annotations

import orjson
import pytest

from sescontacts.history import SYSTEM, Actor, ChangeQuery, acting_as, attribute_diff
from sescontacts.model import Contact, ContactPatch, UpsertPolicy
from sescontacts.store.sqlite.history import SqliteContactHistory
from tests.support.stores import sqlite_store

ALICE = Actor("console", "alice")
JOB = Actor("job", "alice", "job-1")


@pytest.fixture
def store(tmp_path):
    with sqlite_store(tmp_path / "h.db", "contacts") as store:
        yield store


@pytest.fixture
def history(store):
    return SqliteContactHistory(store.db, store.identity)


def test_single_writes_are_recorded_with_their_actor_newest_first(store, history):
    with acting_as(ALICE):
        store.create_contact("contacts", Contact("Ann@Example.com", attributes_data='{"a": 1, "b": "x"}'))
    with acting_as(Actor("api", "AKIAEXAMPLE")):
        store.update_contact(
            "contacts", Contact("ann@example.com", unsubscribe_all=True, attributes_data='{"a": 2, "c": true}')
        )
    store.delete_contact("contacts", "ann@example.com")
    deleted, updated, created = history.contact_history("contacts", "ANN@example.com")
    assert (created.op, created.actor, created.email, created.before, created.after) == (
        "created",
        ALICE,
        "Ann@Example.com",
        {},
        {},
    )
    assert (updated.op, updated.actor) == ("updated", Actor("api", "AKIAEXAMPLE"))
    assert updated.before == {"unsubscribe_all": False, "attributes": '{"a": 1, "b": "x"}'}
    assert updated.after == {"unsubscribe_all": True, "attributes": '{"a": 2, "c": true}'}
    assert [
        (d.key, d.before, d.after) for d in attribute_diff(updated.before["attributes"], updated.after["attributes"])
    ] == [
        ("a", "1", "2"),
        ("b", "x", None),
        ("c", None, "true"),
    ]
    assert (deleted.op, deleted.actor, deleted.email) == ("deleted", SYSTEM, "Ann@Example.com")
    assert deleted.before == {
        "unsubscribe_all": True,
        "topic_preferences": {},
        "attributes": '{"a": 2, "c": true}',
    }
    assert deleted.created == created.at


def test_a_write_that_changes_nothing_records_nothing(store, history):
    store.create_contact("contacts", Contact("a@example.com", attributes_data='{"a": 1}'))
    store.update_contact("contacts", Contact("a@example.com", attributes_data='{"a": 1}'))
    assert [c.op for c in history.contact_history("contacts", "a@example.com")] == ["created"]


def test_bulk_batches_are_recorded_per_contact_under_the_job(store, history):
    with acting_as(JOB):
        store.upsert_contacts(
            "contacts", [ContactPatch(f"u{i}@example.com", attributes={"n": i}) for i in range(150)], UpsertPolicy()
        )
        store.upsert_contacts(
            "contacts",
            [ContactPatch(f"u{i}@example.com", attributes={"n": -i}) for i in range(100, 200)],
            UpsertPolicy(),
        )
        store.delete_contacts("contacts", [f"u{i}@example.com" for i in range(10)])
    changes = history.job_changes("job-1", limit=10_000)
    assert len(changes) == 150 + 100 + 10
    assert [c.op for c in changes[:10]] == ["deleted"] * 10
    assert {c.op for c in changes[10:]} == {"created", "updated"}
    page = history.changes("contacts", ChangeQuery(job="job-1", ops=("updated",)), page_size=30)
    assert len(page.items) == 30 and page.next_token
    rest = history.changes("contacts", ChangeQuery(job="job-1", ops=("updated",)), page_size=100, token=page.next_token)
    assert len(rest.items) == 20 and rest.next_token is None  # 50 updated (100..149), 50 created (150..199)
    timeline = history.contact_history("contacts", "u120@example.com")
    assert [(c.op, c.after.get("attributes")) for c in timeline] == [("updated", '{"n":-120}'), ("created", None)]


def test_a_later_change_by_someone_else_is_found_and_the_jobs_own_are_not(store, history):
    with acting_as(JOB):
        store.create_contact("contacts", Contact("a@example.com"))
        store.update_contact("contacts", Contact("a@example.com", unsubscribe_all=True))
    (_update, create) = history.job_changes("job-1")
    assert history.later_change(create, ignore_jobs=["job-1"]) is None
    with acting_as(ALICE):
        store.update_contact("contacts", Contact("a@example.com", attributes_data='{"x": 1}'))
    later = history.later_change(create, ignore_jobs=["job-1"])
    assert later is not None and later.actor == ALICE


def test_history_off_records_nothing(store, history):
    from sescontacts.store.sqlite.history import set_recording

    with store.db.write() as conn:
        set_recording(conn, False)
    store.create_contact("contacts", Contact("a@example.com"))
    assert history.contact_history("contacts", "a@example.com") == []
    assert history.table_sizes()["contact_changes"] > 0


def test_bulk_actions_record_each_contact_they_change(store, history):
    from sescontacts.model import ContactQuery, Topic

    store.update_list("contacts", topics=[Topic("news", "News", "OPT_OUT")])
    for i in range(4):
        store.create_contact("contacts", Contact(f"b{i}@example.com", unsubscribe_all=i == 0))
    with acting_as(JOB):
        store.apply_to_matching("contacts", ContactQuery(), "unsubscribe")
        store.apply_to_matching("contacts", ContactQuery(), "topic_opt_in", topic="news")
        store.apply_to_matching("contacts", ContactQuery(email_prefix="b3@"), "delete")
    changes = history.job_changes("job-1")
    unsubscribed = [c for c in changes if c.after.get("unsubscribe_all") is True]
    assert sorted(c.email for c in unsubscribed) == ["b1@example.com", "b2@example.com", "b3@example.com"]
    assert all(c.before == {"unsubscribe_all": False} for c in unsubscribed)
    opted = [c for c in changes if "topic_preferences" in c.after]
    assert len(opted) == 4 and all(c.after["topic_preferences"] == {"news": "OPT_IN"} for c in opted)
    assert all(c.before["topic_preferences"] == {} for c in opted)
    (deleted,) = [c for c in changes if c.op == "deleted"]
    assert deleted.email == "b3@example.com" and deleted.before["topic_preferences"] == {"news": "OPT_IN"}


def test_removing_a_topic_records_the_preferences_it_drops_and_deleting_the_list_drops_its_history(store, history):
    from sescontacts.model import Topic

    store.update_list("contacts", topics=[Topic("news", "News", "OPT_OUT"), Topic("deals", "Deals", "OPT_OUT")])
    store.create_contact("contacts", Contact("t@example.com", topic_preferences={"news": "OPT_IN", "deals": "OPT_IN"}))
    store.create_contact("contacts", Contact("n@example.com"))
    with acting_as(ALICE):
        store.update_list("contacts", topics=[Topic("deals", "Deals", "OPT_OUT")])
    latest = history.contact_history("contacts", "t@example.com")[0]
    assert (latest.actor, latest.before, latest.after) == (
        ALICE,
        {"topic_preferences": {"news": "OPT_IN", "deals": "OPT_IN"}},
        {"topic_preferences": {"deals": "OPT_IN"}},
    )
    assert [c.op for c in history.contact_history("contacts", "n@example.com")] == ["created"]
    store.delete_list("contacts")
    store.create_list("contacts")
    assert history.contact_history("contacts", "t@example.com") == []


def test_an_updates_new_attributes_are_read_from_the_next_change_or_the_contact(store, history):
    store.create_contact("contacts", Contact("a@example.com", attributes_data='{"v": 1}'))
    store.update_contact("contacts", Contact("a@example.com", attributes_data='{"v": 2}'))
    store.update_contact("contacts", Contact("a@example.com", unsubscribe_all=True, attributes_data='{"v": 2}'))
    store.update_contact("contacts", Contact("a@example.com", unsubscribe_all=True, attributes_data=None))
    to_none, unsubscribed, to_two, _created = history.contact_history("contacts", "a@example.com")
    assert (to_two.before, to_two.after) == ({"attributes": '{"v": 1}'}, {"attributes": '{"v": 2}'})
    assert (unsubscribed.before, unsubscribed.after) == ({"unsubscribe_all": False}, {"unsubscribe_all": True})
    assert (to_none.before, to_none.after) == ({"attributes": '{"v": 2}'}, {"attributes": None})


def _reimport(store, job: str, numbers, value) -> None:
    """A job's batch that updates (or creates) ``u<n>@example.com`` with attributes {"v": value}."""
    with acting_as(Actor("job", "alice", job)):
        store.upsert_contacts(
            "contacts", [ContactPatch(f"u{n}@example.com", attributes={"v": value}) for n in numbers], UpsertPolicy()
        )


def test_a_batchs_updates_are_found_per_contact_through_edits_deletions_and_later_batches(store, history):
    """A batch's updates are recorded as one row (history_record says why): each contact's timeline still shows
    every one of them, in order, with the attributes before and after, across a console edit, a deletion and
    the contact created again."""
    _reimport(store, "job-1", range(150), 1)
    _reimport(store, "job-2", range(150), 2)
    with acting_as(ALICE):
        store.update_contact("contacts", Contact("u5@example.com", attributes_data='{"v": "alice"}'))
    _reimport(store, "job-3", range(150), 3)
    store.delete_contact("contacts", "u5@example.com")
    _reimport(store, "job-4", [5], 4)
    _reimport(store, "job-5", range(150), 5)
    timeline = [
        (c.op, c.actor.job or c.actor.name, c.before.get("attributes"), c.after.get("attributes"))
        for c in history.contact_history("contacts", "U5@example.com")
    ]
    assert timeline == [
        ("updated", "job-5", '{"v":4}', '{"v":5}'),
        ("created", "job-4", None, None),
        ("deleted", "", '{"v":3}', None),
        ("updated", "job-3", '{"v": "alice"}', '{"v":3}'),
        ("updated", "alice", '{"v":2}', '{"v": "alice"}'),
        ("updated", "job-2", '{"v":1}', '{"v":2}'),
        ("created", "job-1", None, None),
    ]
    assert [
        (c.op, c.actor.job, c.after.get("attributes")) for c in history.contact_history("contacts", "u7@example.com")
    ] == [
        ("updated", "job-5", '{"v":5}'),
        ("updated", "job-3", '{"v":3}'),
        ("updated", "job-2", '{"v":2}'),
        ("created", "job-1", None),
    ]
    assert len(history.contact_history("contacts", "u7@example.com", limit=2)) == 2
    page = history.changes("contacts", ChangeQuery(email="u7@example.com", ops=("updated",)))
    assert [c.actor.job for c in page.items] == ["job-5", "job-3", "job-2"]


def test_a_later_batch_is_a_later_change_unless_its_job_is_ignored(store, history):
    _reimport(store, "job-1", range(150), 1)
    _reimport(store, "job-2", range(150), 2)
    _reimport(store, "job-3", range(10), 3)
    updates = history.job_changes("job-2", limit=10_000)
    assert len(updates) == 150 and {c.op for c in updates} == {"updated"}
    later = history.later_changes(updates)
    by_email = {c.email: found for c, found in zip(updates, later, strict=True)}
    assert by_email["u3@example.com"] is not None and by_email["u3@example.com"].actor.job == "job-3"
    assert by_email["u3@example.com"].before == {"attributes": '{"v":2}'}
    assert by_email["u30@example.com"] is None
    assert history.later_changes(updates, ignore_jobs=["job-3"]) == [None] * 150
    (created,) = {c.id for c in history.job_changes("job-1", limit=10_000)}
    keys = [f"u{n}@example.com" for n in range(150)]
    assert history.changed_keys("contacts", keys, created, ignore_jobs=["job-1"]) == set(keys)
    assert history.changed_keys("contacts", keys, created, ignore_jobs=["job-1", "job-2"]) == set(keys[:10])
    assert history.changed_keys("contacts", keys, created, ignore_jobs=["job-1", "job-2", "job-3"]) == set()


def test_a_history_written_before_batch_rows_reads_on_after_the_upgrade(tmp_path):
    """A data dir from the version that recorded a batch's updates a row each (and had no chain): after the
    upgrade its rows stay in the contact's timeline, and later batches and deletions join them."""
    from dataclasses import replace

    from sescontacts.db import Database
    from sescontacts.schema import PRODUCT_SCHEMA
    from sescontacts.store.sqlite import SqliteContactStore

    added = {"contacts": "_last_batch", "history": "_batch_updates"}
    before = tuple(
        replace(m, steps=m.steps[: [s.__name__ for s in m.steps].index(added[m.owner])]) if m.owner in added else m
        for m in PRODUCT_SCHEMA
    )
    old = SqliteContactStore(Database(tmp_path / "h.db", before))
    old.create_list("contacts")
    with acting_as(ALICE):
        old.create_contact("contacts", Contact("a@example.com", attributes_data='{"v": 1}'))
        old.update_contact("contacts", Contact("a@example.com", attributes_data='{"v": 2}'))
    old.close()
    with sqlite_store(tmp_path / "h.db") as store:
        history = SqliteContactHistory(store.db, store.identity)
        _reimport(store, "job-1", [0], 0)  # a batch's creation, then its update of a@example.com
        with acting_as(JOB):
            store.upsert_contacts("contacts", [ContactPatch("a@example.com", attributes={"v": 3})], UpsertPolicy())
            store.upsert_contacts(
                "contacts",
                [ContactPatch(f"b{i}@example.com", attributes={"v": 3}) for i in range(100)]
                + [ContactPatch("a@example.com", attributes={"v": 4})],
                UpsertPolicy(),
            )
        store.delete_contact("contacts", "a@example.com")
        timeline = [
            (c.op, c.actor.job or c.actor.name, c.before.get("attributes"), c.after.get("attributes"))
            for c in history.contact_history("contacts", "a@example.com")
        ]
        assert timeline == [
            ("deleted", "", '{"v":4}', None),
            ("updated", "job-1", '{"v":3}', '{"v":4}'),
            ("updated", "job-1", '{"v": 2}', '{"v":3}'),
            ("updated", "alice", '{"v": 1}', '{"v": 2}'),
            ("created", "alice", None, None),
        ]


def test_a_batch_entry_holding_line_breaks_and_commas_reads_back_exactly(store, history):
    """A batch row keeps one contact's entry a line (history_record.ENTRY_LINES): values with line breaks,
    commas and brackets read back as written."""
    note = 'two\nlines, "quoted" ]\n['
    _reimport(store, "job-1", range(120), 0)
    _reimport(store, "job-2", range(120), note)
    _reimport(store, "job-3", range(120), 3)
    updated3, updated2, _created = history.contact_history("contacts", "u119@example.com")
    assert updated2.after == {"attributes": orjson.dumps({"v": note}).decode()}
    assert updated3.before == updated2.after and updated3.after == {"attributes": '{"v":3}'}
