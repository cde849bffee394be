"""The one way events enter sescontacts: :meth:`EventIngest.ingest` records a batch and lets each list's
rules act on the new ones. The file import, the SQS poller and the SNS endpoint all call it.

Contacts change only through the :class:`~sescontacts.store.base.ContactStore` Protocol, on every list that
holds the address (``upsert_contacts`` with ``existing_only``, so an address on no list is never created;
its events and mark wait for the day it is added). Actions follow the recording through ``pending_actions``
(schema.py): on a transactional store (local) the record, the actions and the pending rows' removal are one
transaction; on the ses backend, whose calls commit one by one, an action interrupted by a kill is done by
the next ingest, and a re-ingested event, being no longer new, never acts again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields

from ..db import Database
from ..errors import SesContactsError
from ..history import Actor, acting_as
from ..model import ContactPatch, Outcome, UpsertPolicy, email_key
from ..store.base import ContactStore
from .log import EVENT_COLUMNS, EventLog, event_from_row
from .model import BOUNCE, DeliveryEvent
from .rules import DELETE, UNSUBSCRIBE, RuleBook, Rules

logger = logging.getLogger("sescontacts.events")

# Pending events acted on per pass (bounds memory when a large file brings many).
_PENDING_BATCH = 5_000
_STORE_BATCH = 1_000
RULE = Actor("event")  # an action whose event is not known


def event_actor(event: DeliveryEvent) -> Actor:
    """Who a rule's action on ``event`` is recorded as: the event, by its feedback ID (SES's, on the bounce or
    complaint notification), else by its type."""
    return Actor("event", event.feedback_id or event.kind)


@dataclass
class IngestResult:
    """What one or more ingests did. ``recorded``: new bounce and complaint rows; ``counted``: new sends and
    deliveries (counted per day only); ``duplicates``: events already recorded (nothing changed for them);
    ``unsubscribed`` / ``deleted``: contacts changed by the rules, summed over lists; ``waiting``: events
    recorded whose actions SES refused or could not take yet (ses backend), tried again by the next ingest."""

    recorded: int = 0
    counted: int = 0
    duplicates: int = 0
    unsubscribed: int = 0
    deleted: int = 0
    waiting: int = 0

    def add(self, other: IngestResult) -> None:
        for name in (f.name for f in fields(self) if f.name != "waiting"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.waiting = other.waiting  # a state, not a count: the latest


@dataclass
class _Plan:
    """One list's actions for a pass: addresses by folded key (delete wins over unsubscribe), and the event each
    acts on."""

    unsubscribe: dict[str, str] = field(default_factory=dict)
    delete: dict[str, str] = field(default_factory=dict)
    # Who each action is recorded as in the contact history (by key; absent: the rule, unnamed).
    actors: dict[str, Actor] = field(default_factory=dict)


class EventIngest:
    """Record and act: see the module's docstring. Thread-safe (one ingest at a time per process)."""

    def __init__(self, db: Database, store: ContactStore, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.store = store
        self.log = EventLog(db)
        self.rules = RuleBook(db)
        self.clock = clock
        self._lock = threading.Lock()

    def ingest(self, events: Iterable[DeliveryEvent], *, source: str) -> IngestResult:
        """Record ``events`` (any number; one transaction) from ``source`` (a label kept on each row: "sqs",
        "sns", "file", ...), then apply the rules to the new ones. Returns when both are committed: a caller
        may then acknowledge the events (delete the queue message, answer SNS)."""
        result = IngestResult()
        with self._lock:
            with self.store.atomic():
                with self.db.write() as conn:
                    recorded = self.log.record(conn, events, source=source, now=self.clock())
                result.recorded = len(recorded.new)
                result.counted = recorded.counted
                result.duplicates = recorded.duplicates
                if recorded.new and self.store.transactional:
                    self._act_pending(result)
            if not self.store.transactional:
                try:
                    self._act_pending(result)
                except SesContactsError as exc:
                    # The events are recorded; their actions wait in pending_actions. Raising would leave the
                    # queue message undeleted, to come back for as long as SES refuses.
                    result.waiting = self._waiting()
                    logger.warning("events: %d recorded events wait for their actions: %s", result.waiting, exc)
        return result

    def _waiting(self) -> int:
        return int(self.db.reader().execute("SELECT count(*) FROM pending_actions").fetchone()[0])

    def act_pending(self) -> IngestResult:
        """Apply the rules to events recorded but not yet acted on (left by a kill on the ses backend)."""
        result = IngestResult()
        with self._lock, self.store.atomic():
            self._act_pending(result)
        return result

    def _act_pending(self, result: IngestResult) -> None:
        while True:
            with self.db.write() as conn:
                pending = self._pending(conn)
            if not pending:
                return
            with self.db.write() as conn:
                plans = self._plan(conn, [event for _, event in pending])
            for list_name, plan in plans.items():
                self._apply(list_name, plan, result)
            with self.db.write() as conn:
                conn.executemany("DELETE FROM pending_actions WHERE event_id = ?", [(i,) for i, _ in pending])

    def _pending(self, conn: sqlite3.Connection) -> list[tuple[int, DeliveryEvent]]:
        rows = conn.execute(
            f"SELECT p.event_id, {', '.join('d.' + c.strip() for c in EVENT_COLUMNS.split(','))} "
            "FROM pending_actions p JOIN delivery_events d ON d.id = p.event_id ORDER BY p.event_id LIMIT ?",
            (_PENDING_BATCH,),
        ).fetchall()
        return [(row[0], event_from_row(row[1:])) for row in rows]

    def _plan(self, conn: sqlite3.Connection, events: Sequence[DeliveryEvent]) -> dict[str, _Plan]:
        plans: dict[str, _Plan] = {}
        for list_name in self.list_names():
            rules = self.rules.for_list(list_name)
            plan = _Plan()
            for event in events:
                action = self._action(conn, rules, event)
                key = email_key(event.email)
                if action == DELETE:
                    plan.delete[key] = event.email
                    plan.unsubscribe.pop(key, None)
                elif action == UNSUBSCRIBE and key not in plan.delete:
                    plan.unsubscribe[key] = event.email
                else:
                    continue
                plan.actors[key] = event_actor(event)
            if plan.unsubscribe or plan.delete:
                plans[list_name] = plan
        return plans

    def _action(self, conn: sqlite3.Connection, rules: Rules, event: DeliveryEvent) -> str | None:
        action = rules.action_for(event)
        if action is None or event.is_permanent_bounce or event.kind != BOUNCE:
            return action
        window = (rules.transient_window_days or 0) * 86_400
        count = self.log.transient_count(conn, event.email, event.time - window, event.time)
        return action if rules.transient_acts(count) else None

    def list_names(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            page = self.store.list_lists(token=token)
            names.extend(contact_list.name for contact_list in page.items)
            token = page.next_token
            if token is None:
                return names

    def apply(
        self, list_name: str, unsubscribe: dict[str, str], delete: dict[str, str], actors: dict[str, Actor]
    ) -> IngestResult:
        """Unsubscribe or delete those addresses (by folded key) on ``list_name``, as the rules' actions are:
        through the store, existing contacts only, each recorded as ``actors`` says. For :mod:`.added`."""
        result = IngestResult()
        with self._lock:
            self._apply(list_name, _Plan(unsubscribe=unsubscribe, delete=delete, actors=actors), result)
        return result

    def _apply(self, list_name: str, plan: _Plan, result: IngestResult) -> None:
        """The plan's actions, a store batch per event (actor): the history says which event made each change."""
        parts: dict[Actor, _Plan] = {}
        for key, address in plan.delete.items():
            parts.setdefault(plan.actors.get(key, RULE), _Plan()).delete[key] = address
        for key, address in plan.unsubscribe.items():
            parts.setdefault(plan.actors.get(key, RULE), _Plan()).unsubscribe[key] = address
        for actor, part in parts.items():
            with acting_as(actor):
                self._apply_part(list_name, part, result)

    def _apply_part(self, list_name: str, plan: _Plan, result: IngestResult) -> None:
        batch = self.store.bulk_batch_rows or _STORE_BATCH
        deletes = list(plan.delete.values())
        for start in range(0, len(deletes), batch):
            outcomes = self.store.delete_contacts(list_name, deletes[start : start + batch])
            result.deleted += sum(1 for row in outcomes if row.outcome is Outcome.DELETED)
        patches = [ContactPatch(email=address, unsubscribe_all=True) for address in plan.unsubscribe.values()]
        policy = UpsertPolicy(existing_only=True)
        for start in range(0, len(patches), batch):
            outcomes = self.store.upsert_contacts(list_name, patches[start : start + batch], policy)
            result.unsubscribed += sum(1 for row in outcomes if row.outcome is Outcome.UPDATED)
