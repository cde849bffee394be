"""Contacts added after their address bounced or complained (events/added.py): the list's rule, once."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from sescontacts.db import Database
from sescontacts.events.added import AddedContactRules
from sescontacts.events.ingest import EventIngest
from sescontacts.events.model import BOUNCE, COMPLAINT, PERMANENT, TRANSIENT, DeliveryEvent
from sescontacts.history import Actor
from sescontacts.model import Contact, ContactPatch, UpsertPolicy
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.store.sqlite import SqliteContactStore
from sescontacts.store.sqlite.history import SqliteContactHistory

LIST = "contacts"


@pytest.fixture
def ingest(tmp_path: Path) -> Iterator[EventIngest]:
    ticks = itertools.count(1_000_000)  # one clock for the store and the events: each write a second later

    def clock() -> float:
        return float(next(ticks))

    store = SqliteContactStore(Database(tmp_path / "a.db", PRODUCT_SCHEMA), clock=clock)
    store.create_list(LIST)
    yield EventIngest(store.db, store, clock=clock)
    store.close()


def bounce(email: str, n: int, bounce_type: str = PERMANENT) -> DeliveryEvent:
    return DeliveryEvent(f"fb-{n}:{email.lower()}", BOUNCE, email, 10.0, bounce_type=bounce_type, feedback_id=f"fb-{n}")


def contact(ingest: EventIngest, email: str) -> Contact:
    return ingest.store.get_contact(LIST, email)


def test_a_contact_added_after_its_bounce_is_unsubscribed_once(ingest: EventIngest) -> None:
    ingest.store.create_contact(LIST, Contact("here@example.com"))
    ingest.ingest([bounce("here@example.com", 1), bounce("Later@Example.com", 2)], source="file")
    assert contact(ingest, "here@example.com").unsubscribe_all  # the ingest acted on the one on the list
    rules = AddedContactRules(ingest, clock=ingest.clock)
    ingest.store.upsert_contacts(LIST, [ContactPatch("later@example.com")], UpsertPolicy())  # an old CSV again
    assert not contact(ingest, "later@example.com").unsubscribe_all
    assert rules.run_once().unsubscribed == 1
    assert contact(ingest, "later@example.com").unsubscribe_all
    # The user resubscribes both on purpose: no pass (nor a re-ingest) takes that back.
    for email in ("here@example.com", "later@example.com"):
        ingest.store.update_contact(LIST, Contact(email, unsubscribe_all=False))
    assert rules.run_once().unsubscribed == 0
    assert ingest.ingest([bounce("later@example.com", 2)], source="file").unsubscribed == 0
    assert not contact(ingest, "later@example.com").unsubscribe_all
    assert not contact(ingest, "here@example.com").unsubscribe_all


def test_complaints_follow_their_rule_and_transient_bounces_or_mark_do_nothing(ingest: EventIngest) -> None:
    ingest.rules.update(LIST, on_permanent_bounce="mark", on_complaint="delete")
    complaint = DeliveryEvent("c-1:angry@example.com", COMPLAINT, "angry@example.com", 10.0, feedback_id="c-1")
    ingest.ingest([complaint, bounce("soft@example.com", 3, TRANSIENT), bounce("hard@example.com", 4)], source="file")
    for email in ("angry@example.com", "soft@example.com", "hard@example.com"):
        ingest.store.create_contact(LIST, Contact(email))
    result = AddedContactRules(ingest, clock=ingest.clock).run_once()
    assert (result.deleted, result.unsubscribed) == (1, 0)
    emails = {c.email for c in ingest.store.list_contacts(LIST).items}
    assert emails == {"soft@example.com", "hard@example.com"}
    assert not contact(ingest, "hard@example.com").unsubscribe_all  # "mark": shown, not acted on


def test_a_rule_acting_on_an_added_contact_is_recorded_as_the_event_kind(ingest: EventIngest) -> None:
    ingest.ingest([bounce("late@example.com", 1)], source="file")
    ingest.store.upsert_contacts(LIST, [ContactPatch("late@example.com")], UpsertPolicy())
    assert AddedContactRules(ingest, clock=ingest.clock).run_once().unsubscribed == 1
    history = SqliteContactHistory(ingest.db, ingest.store.identity)
    latest = history.contact_history(LIST, "late@example.com")[0]
    assert (latest.op, latest.actor, latest.after) == ("updated", Actor("event", BOUNCE), {"unsubscribe_all": True})
