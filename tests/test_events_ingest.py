"""Recording events (idempotent, marks and daily counts in the same transaction) and each list's rules acting on
contacts through the ContactStore Protocol."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from sescontacts.db import Database
from sescontacts.errors import BadRequest, NotFound, ServiceUnavailable
from sescontacts.events.ingest import EventIngest
from sescontacts.events.log import EventLog
from sescontacts.events.model import BOUNCE, COMPLAINT, DELIVERY, SEND, DeliveryEvent
from sescontacts.events.rules import DELETE, MARK, UNSUBSCRIBE, RuleBook
from sescontacts.history import Actor, acting_as
from sescontacts.model import Contact
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.store.sqlite import SqliteContactStore
from sescontacts.store.sqlite.history import SqliteContactHistory

DAY = 86_400.0
T0 = 20_422 * DAY  # 2025-11-30 00:00 UTC


def bounce(email: str, n: int, *, permanent: bool = True, at: float = T0) -> DeliveryEvent:
    return DeliveryEvent(
        event_key=f"fb{n} {email.lower()}", kind=BOUNCE, email=email, time=at, feedback_id=f"fb{n}",
        bounce_type="Permanent" if permanent else "Transient", diagnostic_code=f"smtp; 5{n}",
    )  # fmt: skip


def complaint(email: str, n: int, at: float = T0) -> DeliveryEvent:
    return DeliveryEvent(f"cf{n} {email.lower()}", COMPLAINT, email, at, feedback_id=f"cf{n}", complaint_type="abuse")


@pytest.fixture
def store(tmp_path) -> Iterator[SqliteContactStore]:
    store = SqliteContactStore(Database(tmp_path / "e.db", PRODUCT_SCHEMA), max_lists=None)
    for name in ("news", "offers"):
        store.create_list(name)
    yield store
    store.close()


@pytest.fixture
def ingest(store) -> EventIngest:
    return EventIngest(store.db, store, clock=lambda: T0 + DAY)


def test_the_same_events_twice_change_nothing(ingest, store):
    events = [bounce("a@x.com", 1), bounce("b@x.com", 1), complaint("c@x.com", 2)]
    first = ingest.ingest([*events, events[0]], source="file")  # a duplicate inside the batch too
    assert (first.recorded, first.duplicates) == (3, 1)
    log = EventLog(store.db)
    marks, days = log.marks(["A@x.com", "b@x.com", "c@x.com"]), log.daily("2025-11-01", "2025-12-31")
    again = ingest.ingest(events, source="sqs")
    assert (again.recorded, again.duplicates) == (0, 3)
    assert log.marks(["A@x.com", "b@x.com", "c@x.com"]) == marks
    assert log.daily("2025-11-01", "2025-12-31") == days
    assert log.event_count() == 3
    assert [h.source for h in log.history("a@x.com")] == ["file"]


def test_marks_daily_counts_and_history(ingest, store):
    ingest.ingest(
        [
            bounce("a@x.com", 1, permanent=False, at=T0),
            bounce("A@X.com", 2, permanent=False, at=T0 + 60),
            bounce("a@x.com", 3, at=T0 + DAY),
            complaint("b@x.com", 4, at=T0 + 30),
            DeliveryEvent("SEND m1 a@x.com", SEND, "a@x.com", T0),
            DeliveryEvent("SEND m1 b@x.com", SEND, "b@x.com", T0),
            DeliveryEvent("DELIVERY m1 b@x.com", DELIVERY, "b@x.com", T0 + 1),
        ],
        source="file",
    )
    log = EventLog(store.db)
    marks = log.marks(["a@x.com", "B@x.com", "nobody@x.com"])
    assert set(marks) == {"a@x.com", "b@x.com"}
    a = marks["a@x.com"]
    assert (a.bounced_at, a.complained_at, a.transient_count, a.transient_since) == (T0 + DAY, None, 2, T0)
    assert (a.last_event_kind, marks["b@x.com"].complained_at) == (BOUNCE, T0 + 30)
    assert [(h.event.feedback_id, h.event.diagnostic_code) for h in log.history("A@x.com")] == [
        ("fb3", "smtp; 53"), ("fb2", "smtp; 52"), ("fb1", "smtp; 51"),
    ]  # fmt: skip
    days = log.daily("2025-11-30", "2025-12-01")
    assert [(d.day, d.sends, d.deliveries, d.permanent_bounces, d.transient_bounces, d.complaints) for d in days] == [
        ("2025-11-30", 2, 1, 0, 2, 1), ("2025-12-01", 0, 0, 1, 0, 0),
    ]  # fmt: skip
    assert (log.mark_counts().bounced, log.mark_counts().complained) == (1, 1)
    # a delivery after transient bounces clears their count
    ingest.ingest([DeliveryEvent("DELIVERY m2 a@x.com", DELIVERY, "a@x.com", T0 + 2 * DAY)], source="file")
    assert log.marks(["a@x.com"])["a@x.com"].transient_count == 0


def test_default_rules_unsubscribe_on_every_list_and_create_nobody(ingest, store):
    store.create_contact("news", Contact("Gone@x.com"))
    store.create_contact("offers", Contact("gone@x.com"))
    store.create_contact("news", Contact("angry@x.com"))
    store.create_contact("news", Contact("full@x.com"))
    result = ingest.ingest(
        [bounce("gone@x.com", 1), complaint("angry@x.com", 2), bounce("full@x.com", 3, permanent=False),
         bounce("stranger@x.com", 4)],
        source="file",
    )  # fmt: skip
    assert result.unsubscribed == 3  # gone on two lists, angry on one; a transient bounce only counts
    assert store.get_contact("news", "gone@x.com").unsubscribe_all
    assert store.get_contact("offers", "gone@x.com").unsubscribe_all
    assert store.get_contact("news", "angry@x.com").unsubscribe_all
    assert not store.get_contact("news", "full@x.com").unsubscribe_all
    for name in ("news", "offers"):
        with pytest.raises(NotFound):
            store.get_contact(name, "stranger@x.com")
    # the stranger's event is kept for when the address is added
    assert EventLog(store.db).marks(["stranger@x.com"])["stranger@x.com"].bounced_at == T0


def test_a_re_ingested_event_never_acts_again(ingest, store):
    store.create_contact("news", Contact("gone@x.com"))
    ingest.ingest([bounce("gone@x.com", 1)], source="file")
    store.update_contact("news", Contact("gone@x.com", unsubscribe_all=False))  # the user resubscribed them
    result = ingest.ingest([bounce("gone@x.com", 1)], source="sqs")
    assert (result.duplicates, result.unsubscribed) == (1, 0)
    assert not store.get_contact("news", "gone@x.com").unsubscribe_all


def test_rules_per_list(ingest, store):
    rules = RuleBook(store.db)
    rules.update("offers", on_permanent_bounce=DELETE, on_complaint=MARK)
    for name in ("news", "offers"):
        store.create_contact(name, Contact("gone@x.com"))
        store.create_contact(name, Contact("angry@x.com"))
    result = ingest.ingest([bounce("gone@x.com", 1), complaint("angry@x.com", 2)], source="file")
    assert (result.unsubscribed, result.deleted) == (2, 1)
    assert store.get_contact("news", "gone@x.com").unsubscribe_all
    with pytest.raises(NotFound):
        store.get_contact("offers", "gone@x.com")
    assert not store.get_contact("offers", "angry@x.com").unsubscribe_all  # mark: recorded and shown only
    assert rules.for_list("news").on_permanent_bounce == UNSUBSCRIBE


def test_transient_bounces_act_at_the_limit_within_the_window(ingest, store):
    RuleBook(store.db).update("news", on_transient=UNSUBSCRIBE, transient_limit=3, transient_window_days=7)
    store.create_contact("news", Contact("full@x.com"))
    store.create_contact("offers", Contact("full@x.com"))
    ingest.ingest([bounce("full@x.com", 1, permanent=False, at=T0 - 30 * DAY)], source="file")  # outside the window
    ingest.ingest([bounce("full@x.com", n, permanent=False, at=T0 + n) for n in (2, 3)], source="file")
    assert not store.get_contact("news", "full@x.com").unsubscribe_all
    ingest.ingest([bounce("full@x.com", 4, permanent=False, at=T0 + DAY)], source="file")
    assert store.get_contact("news", "full@x.com").unsubscribe_all
    assert not store.get_contact("offers", "full@x.com").unsubscribe_all  # offers keeps the defaults


def test_rules_are_checked(store):
    rules = RuleBook(store.db)
    with pytest.raises(BadRequest, match="on-complaint: 'ban' is not one of unsubscribe, mark, delete"):
        rules.update("news", on_complaint="ban")
    with pytest.raises(BadRequest, match="transient-limit"):
        rules.update("news", on_transient=UNSUBSCRIBE)
    assert rules.own("news") is None


class _CommitsEachCall:
    """The local store as the ses backend behaves: not transactional, each call committed as made."""

    def __init__(self, inner: SqliteContactStore, fail_after: int | None = None) -> None:
        self._inner = inner
        self.transactional = False
        self.fail_after = fail_after
        self.failure: Exception = RuntimeError("killed")

    def atomic(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def upsert_contacts(self, *args: object, **kwargs: object) -> object:
        if self.fail_after is not None:
            if self.fail_after == 0:
                raise self.failure
            self.fail_after -= 1
        return self._inner.upsert_contacts(*args, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_on_a_store_that_commits_each_call_an_interrupted_action_is_done_later(store):
    store.create_contact("news", Contact("gone@x.com"))
    store.create_contact("offers", Contact("gone@x.com"))
    flaky = _CommitsEachCall(store, fail_after=1)
    ingest = EventIngest(store.db, flaky)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        ingest.ingest([bounce("gone@x.com", 1)], source="sqs")
    assert EventLog(store.db).event_count() == 1  # recorded; one list acted on, the other not yet
    flaky.fail_after = None
    result = ingest.ingest([bounce("gone@x.com", 1)], source="sqs")  # redelivered: a duplicate, pending acts
    assert result.duplicates == 1
    assert store.get_contact("news", "gone@x.com").unsubscribe_all
    assert store.get_contact("offers", "gone@x.com").unsubscribe_all
    assert ingest.act_pending().unsubscribed == 0


def test_when_ses_refuses_an_action_the_event_is_kept_and_its_action_waits(store):
    store.create_contact("news", Contact("gone@x.com"))
    flaky = _CommitsEachCall(store, fail_after=0)
    flaky.failure = ServiceUnavailable("Could not connect to the endpoint URL")
    ingest = EventIngest(store.db, flaky)  # type: ignore[arg-type]
    result = ingest.ingest([bounce("gone@x.com", 1)], source="sqs")  # returns: the queue message may go
    assert (result.recorded, result.unsubscribed, result.waiting) == (1, 0, 1)
    assert not store.get_contact("news", "gone@x.com").unsubscribe_all
    flaky.fail_after = None
    later = ingest.ingest([complaint("other@x.com", 2)], source="sqs")
    assert (later.unsubscribed, later.waiting) == (1, 0)
    assert store.get_contact("news", "gone@x.com").unsubscribe_all


def test_each_action_is_recorded_as_its_event(ingest, store):
    """History item 1, events: a rule's change is the event's (its feedback ID, else its type), even inside an
    ingest that one command runs in one transaction as someone else (the writes nested in it say who acts)."""
    history = SqliteContactHistory(store.db, store.identity)
    for name in ("news", "offers"):
        for email in ("a@x.com", "b@x.com", "c@x.com"):
            store.create_contact(name, Contact(email))
    RuleBook(store.db).update("offers", on_permanent_bounce=DELETE)
    unnamed = DeliveryEvent("no-id c@x.com", COMPLAINT, "c@x.com", T0, complaint_type="abuse")
    with acting_as(Actor("cli", "ops")):
        ingest.ingest([bounce("a@x.com", 1), complaint("b@x.com", 2), unnamed], source="file")
    latest = {
        (name, email): history.contact_history(name, email)[0]
        for name in ("news", "offers")
        for email in ("a@x.com", "b@x.com", "c@x.com")
    }
    assert {key: (c.op, c.actor.name) for key, c in latest.items() if c.actor.kind == "event"} == {
        ("news", "a@x.com"): ("updated", "fb1"),
        ("offers", "a@x.com"): ("deleted", "fb1"),
        ("news", "b@x.com"): ("updated", "cf2"),
        ("offers", "b@x.com"): ("updated", "cf2"),
        ("news", "c@x.com"): ("updated", COMPLAINT),
        ("offers", "c@x.com"): ("updated", COMPLAINT),
    }
