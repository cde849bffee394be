"""The event log: events recorded once, with each address's marks and the daily counts kept current in the
same transaction, and the reads the console and the rules make of them.

Recording is idempotent by ``event_key`` (schema.py says what each table holds): in one write transaction
the batch is inserted with ``INSERT OR IGNORE`` (``executemany``), the rows it added are read back by id, and
the marks and daily counts change by those new events alone. So the same event twice,
in one batch or across batches, changes nothing, and a batch either counts entirely or not at all.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

from ..db import Database
from ..model import email_key
from .model import BOUNCE, COMPLAINT, DELIVERY, PERMANENT, SEND, DeliveryEvent

# Bound parameters per IN (...) query: well under SQLite's limit, few queries per 10k batch.
_CHUNK = 500
EVENT_COLUMNS = (
    "event_key, kind, email, time, bounce_type, bounce_subtype, complaint_type, diagnostic_code, status_code, "
    "message_id, feedback_id"
)


@dataclass(frozen=True, slots=True)
class AddressMark:
    """What the events say of one address (see schema.py's ``address_marks``). ``transient_count``: transient
    (or undetermined) bounces since ``transient_since`` with no delivery after them."""

    email: str
    bounced_at: float | None
    complained_at: float | None
    transient_count: int
    transient_since: float | None
    last_event_at: float
    last_event_kind: str


@dataclass(frozen=True, slots=True)
class EventDay:
    day: str  # YYYY-MM-DD, UTC
    sends: int = 0
    deliveries: int = 0
    permanent_bounces: int = 0
    transient_bounces: int = 0
    complaints: int = 0


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    event: DeliveryEvent
    received: float
    source: str


@dataclass(frozen=True, slots=True)
class MarkCounts:
    """How many addresses have a permanent bounce, and a complaint, on record."""

    bounced: int
    complained: int


@dataclass
class Recorded:
    """A batch's outcome: the new bounce and complaint events (with their row ids, for the rules), how many new
    sends and deliveries were counted, and how many of the batch were already recorded."""

    new: list[tuple[int, DeliveryEvent]]
    counted: int
    duplicates: int


@functools.lru_cache(maxsize=4096)
def _day_name(day_number: int) -> str:
    return datetime.fromtimestamp(day_number * 86_400, UTC).strftime("%Y-%m-%d")


def utc_day(moment: float) -> str:
    """The UTC day (YYYY-MM-DD) of a time: by day number, so a batch formats each of its few days once."""
    return _day_name(int(moment // 86_400))


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def event_from_row(row: Sequence[object]) -> DeliveryEvent:
    return DeliveryEvent(*cast("tuple[Any, ...]", row))  # the columns are EVENT_COLUMNS, in the model's order


class EventLog:
    """Recording (inside the caller's write transaction) and reading the event tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writes -------------------------------------------------------------------------------------------

    def record(self, conn: sqlite3.Connection, events: Iterable[DeliveryEvent], *, source: str, now: float) -> Recorded:
        """Record ``events`` in the open write transaction ``conn``; see the module's docstring."""
        batch: dict[str, DeliveryEvent] = {}
        total = 0
        for event in events:
            total += 1
            batch.setdefault(event.event_key, event)
        # INSERT OR IGNORE, then the rows past the table's last id before it are exactly the new ones: the write
        # transaction holds the lock, so no one else inserts in between.
        last = conn.execute("SELECT coalesce(max(id), 0) FROM delivery_events").fetchone()[0]
        conn.executemany(
            "INSERT OR IGNORE INTO delivery_events (event_key, email_key, email, kind, bounce_type, bounce_subtype, "
            "complaint_type, diagnostic_code, status_code, message_id, feedback_id, time, received, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (e.event_key, email_key(e.email), e.email, e.kind, e.bounce_type, e.bounce_subtype, e.complaint_type,
                 e.diagnostic_code, e.status_code, e.message_id, e.feedback_id, e.time, now, source)
                for e in batch.values() if e.kind in (BOUNCE, COMPLAINT)
            ],
        )  # fmt: skip
        new = [
            (event_id, batch[key])
            for event_id, key in conn.execute("SELECT id, event_key FROM delivery_events WHERE id > ?", (last,))
        ]
        last = conn.execute("SELECT coalesce(max(id), 0) FROM counted_events").fetchone()[0]
        conn.executemany(
            "INSERT OR IGNORE INTO counted_events (event_key) VALUES (?)",
            [(e.event_key,) for e in batch.values() if e.kind in (SEND, DELIVERY)],
        )
        counted = [batch[key] for (key,) in conn.execute("SELECT event_key FROM counted_events WHERE id > ?", (last,))]
        fresh = [event for _, event in new] + counted
        conn.executemany("INSERT INTO pending_actions (event_id) VALUES (?)", [(event_id,) for event_id, _ in new])
        self._update_marks(conn, fresh)
        self._update_days(conn, fresh)
        return Recorded(new=new, counted=len(counted), duplicates=total - len(fresh))

    def _update_marks(self, conn: sqlite3.Connection, fresh: Sequence[DeliveryEvent]) -> None:
        # Bounces and complaints change their address's mark here, with the batch's deliveries to those addresses
        # in time order; any other delivery can only end an existing mark's transient run, done in SQL below
        # (most deliveries are to addresses with no mark: nothing to read for them).
        keys = {email_key(e.email) for e in fresh if e.kind in (BOUNCE, COMPLAINT)}
        touching = [e for e in fresh if e.kind != SEND and (e.kind != DELIVERY or email_key(e.email) in keys)]
        conn.executemany(
            "UPDATE address_marks SET transient_count = 0, transient_since = NULL "
            "WHERE email_key = ? AND transient_since <= ?",
            [(email_key(e.email), e.time) for e in fresh if e.kind == DELIVERY and email_key(e.email) not in keys],
        )
        if not touching:
            return
        marks = self._marks_on(conn, sorted(keys))
        changed: set[str] = set()
        for event in sorted(touching, key=lambda e: e.time):
            key = email_key(event.email)
            mark = marks.get(key)
            if event.kind == DELIVERY:
                # A delivery after the transient bounces: the address takes mail again; only an existing mark
                # changes (a delivered address gets no mark).
                if mark is not None and mark.transient_since is not None and event.time >= mark.transient_since:
                    marks[key] = replace(mark, transient_count=0, transient_since=None)
                    changed.add(key)
                continue
            if mark is None:
                mark = AddressMark(event.email, None, None, 0, None, event.time, event.kind)
            if event.kind == COMPLAINT:
                mark = replace(mark, complained_at=max(mark.complained_at or event.time, event.time))
            elif event.bounce_type == PERMANENT:
                mark = replace(mark, bounced_at=max(mark.bounced_at or event.time, event.time))
            else:
                since = event.time if mark.transient_since is None else min(mark.transient_since, event.time)
                mark = replace(mark, transient_count=mark.transient_count + 1, transient_since=since)
            if event.time >= mark.last_event_at:
                mark = replace(mark, last_event_at=event.time, last_event_kind=event.kind)
            marks[key] = mark
            changed.add(key)
        conn.executemany(
            "INSERT OR REPLACE INTO address_marks (email_key, email, bounced_at, complained_at, transient_count, "
            "transient_since, last_event_at, last_event_kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (key, m.email, m.bounced_at, m.complained_at, m.transient_count, m.transient_since,
                 m.last_event_at, m.last_event_kind)
                for key in sorted(changed)
                for m in (marks[key],)
            ],
        )  # fmt: skip

    def _update_days(self, conn: sqlite3.Connection, fresh: Sequence[DeliveryEvent]) -> None:
        days: dict[str, list[int]] = {}
        for event in fresh:
            counts = days.setdefault(utc_day(event.time), [0, 0, 0, 0, 0])
            if event.kind == SEND:
                counts[0] += 1
            elif event.kind == DELIVERY:
                counts[1] += 1
            elif event.kind == COMPLAINT:
                counts[4] += 1
            elif event.bounce_type == PERMANENT:
                counts[2] += 1
            else:
                counts[3] += 1
        conn.executemany(
            "INSERT INTO event_daily (day, sends, deliveries, permanent_bounces, transient_bounces, complaints) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(day) DO UPDATE SET sends = sends + excluded.sends, "
            "deliveries = deliveries + excluded.deliveries, "
            "permanent_bounces = permanent_bounces + excluded.permanent_bounces, "
            "transient_bounces = transient_bounces + excluded.transient_bounces, "
            "complaints = complaints + excluded.complaints",
            [(day, *counts) for day, counts in sorted(days.items())],
        )

    # -- reads ------------------------------------------------------------------------------------------

    def _marks_on(self, conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, AddressMark]:
        marks: dict[str, AddressMark] = {}
        for chunk in _chunks(keys):
            holes = ", ".join("?" * len(chunk))
            for key, *fields in conn.execute(
                "SELECT email_key, email, bounced_at, complained_at, transient_count, transient_since, "
                f"last_event_at, last_event_kind FROM address_marks WHERE email_key IN ({holes})",
                chunk,
            ):
                marks[key] = AddressMark(*fields)
        return marks

    def marks(self, emails: Iterable[str]) -> dict[str, AddressMark]:
        """The marks of a page of addresses (one query for a page), by folded address (``model.email_key``)."""
        return self._marks_on(self.db.reader(), sorted({email_key(email) for email in emails}))

    def history(self, email: str, *, limit: int = 100) -> list[HistoryEntry]:
        """The address's bounces and complaints, newest first."""
        rows = self.db.reader().execute(
            f"SELECT {EVENT_COLUMNS}, received, source FROM delivery_events WHERE email_key = ? "
            "ORDER BY time DESC, id DESC LIMIT ?",
            (email_key(email), limit),
        )
        return [HistoryEntry(event_from_row(row[:11]), row[11], row[12]) for row in rows]

    def daily(self, first_day: str, last_day: str) -> list[EventDay]:
        """The days from ``first_day`` to ``last_day`` (YYYY-MM-DD, inclusive) that have counts, oldest first."""
        rows = self.db.reader().execute(
            "SELECT day, sends, deliveries, permanent_bounces, transient_bounces, complaints FROM event_daily "
            "WHERE day BETWEEN ? AND ? ORDER BY day",
            (first_day, last_day),
        )
        return [EventDay(*row) for row in rows]

    def first_recorded(self, keys: Sequence[str], kind: str) -> dict[str, float]:
        """When sescontacts first recorded a permanent bounce (``kind`` "bounced") or a complaint ("complained")
        of each folded address of ``keys`` that has one: a contact created later was on no list then."""
        condition = "kind = 'BOUNCE' AND bounce_type = 'Permanent'" if kind == "bounced" else "kind = 'COMPLAINT'"
        found: dict[str, float] = {}
        for chunk in _chunks(keys):
            rows = self.db.reader().execute(
                f"SELECT email_key, min(received) FROM delivery_events WHERE {condition} "
                f"AND email_key IN ({', '.join('?' * len(chunk))}) GROUP BY email_key",
                tuple(chunk),
            )
            found.update((row[0], row[1]) for row in rows)
        return found

    def mark_counts(self) -> MarkCounts:
        bounced, complained = (
            self.db.reader().execute("SELECT count(bounced_at), count(complained_at) FROM address_marks").fetchone()
        )
        return MarkCounts(bounced, complained)

    def event_count(self) -> int:
        """Bounce and complaint rows recorded (one per recipient of each event)."""
        return int(self.db.reader().execute("SELECT count(*) FROM delivery_events").fetchone()[0])

    @staticmethod
    def transient_count(conn: sqlite3.Connection, email: str, since: float, until: float) -> int:
        """Transient (and undetermined) bounces of the address between two times, for a rule's window."""
        row = conn.execute(
            "SELECT count(*) FROM delivery_events WHERE email_key = ? AND time BETWEEN ? AND ? "
            "AND kind = ? AND coalesce(bounce_type, '') != ?",
            (email_key(email), since, until, BOUNCE, PERMANENT),
        ).fetchone()
        return int(row[0])

    # -- messages that could not be read ------------------------------------------------------------------

    def record_poison(self, entries: Sequence[tuple[str | None, str, str]], *, source: str, now: float) -> None:
        """Keep unreadable messages, ``(message id, reason, body)``, before they are deleted from their queue:
        one row per message ID, so a message redelivered before its delete went through is kept once."""
        with self.db.write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO event_poison (message_id, received, source, reason, body) "
                "VALUES (?, ?, ?, ?, ?)",
                [(message_id, now, source, reason, body) for message_id, reason, body in entries],
            )

    def poison(self, *, limit: int = 100) -> list[tuple[str | None, float, str, str, str]]:
        """The unreadable messages kept, newest first: (message id, received, source, reason, body)."""
        rows = self.db.reader().execute(
            "SELECT message_id, received, source, reason, body FROM event_poison ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [(row[0], row[1], row[2], row[3], row[4]) for row in rows]
