"""Recording the contact history where contacts are written (the writes of this package call these).

Explicit, not triggers: a trigger costs SQLite a subprogram per row (measured 3 us a row in memory, 11 us on a
600k-row file, against ~10 us a row for a whole import), an AFTER UPDATE trigger reads every old column even
when its WHEN test is false (4 us a row of a re-import), and inside a savepoint any trigger on ``contacts``
makes SQLite keep a statement journal for every row of an executemany (28 against 6 us). So each write records
what it did with what it already has in hand: the importer's batches their creations as ONE row holding the
keys (no before-image needed) and their updates as ONE row too, from the rows they read; deletions and SQL-side
bulk actions copy the rows by one INSERT ... SELECT before they change them.

A batch's updates in one row (``keys`` and ``entries``, one each a contact): a row and two index entries a
contact made a re-import that updates every contact cost 1.5-1.95x the same re-import unrecorded (measured at
1M rows), one row a batch ~1.1x. The per-contact index then cannot find them: each contact names the last
batch row that updated it (``contacts.last_batch``, set by the batch's own UPDATE) and each entry the one
before (its ``prev``), a chain the reads follow (``history.py``). A deletion keeps the deleted contact's
pointer (its ``prev``), so the chain of a contact deleted since is still found.

``tests/test_history.py`` checks that every write path of the store records.

Each function takes the ``actor`` id :func:`actor_id` read for the transaction, or does nothing when it is None
(the history is off: retention 0 days).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import orjson

from ...model import Contact
from .rows import topics_json

# ``contact_changes.op``, and which fields an update changed (``changed``, bits: a NULL before or after is then
# a value, not "unchanged"). The one definition: the reads (history.py) decode with these too.
CREATED: Final = 1
UPDATED: Final = 2
DELETED: Final = 3
UPDATED_BATCH: Final = 4
# A batch row's ``entries``: "[", then entry i of ``keys``' i-th contact on line i + 1 ("," ended but the last),
# then "]". orjson never writes a raw newline inside a value.
ENTRY_LINES: Final = "\n"
CHANGED_UNSUBSCRIBE: Final = 1
CHANGED_TOPICS: Final = 2
CHANGED_ATTRIBUTES: Final = 4

# (email_key, at, changed (bits of CHANGED_*), unsub_before, topics_before, attributes_before,
# unsub_after, topics_after): a field that did not change None. The new attributes are not recorded (see
# history.attributes_after): they are half of what a re-import would write again.
UpdateRecord = tuple[str, float, int, int | None, str | None, str | None, int | None, str | None]


def actor_id(conn: sqlite3.Connection) -> int | None:
    """Who this transaction's writes are recorded for (set at its start by ``history.set_actor``), or None when
    the history records nothing."""
    (actor,) = conn.execute("SELECT CASE WHEN recording THEN actor END FROM history_context").fetchone()
    return None if actor is None else int(actor)


def _email(key: str, email: str) -> str | None:
    """The address column: only when it is not the key itself (most folded keys are the address)."""
    return None if email == key else email


def record_created(conn: sqlite3.Connection, list_id: int, keys: Sequence[str], at: float, actor: int | None) -> None:
    """A batch's new contacts, created at ``at`` (their ``created``): one row holding the keys in a JSON array.
    Each contact keeps the spelling it was written with (``contacts.email``): the row needs no addresses."""
    if keys and actor is not None:
        conn.execute(
            f"INSERT INTO contact_changes (list_id, email_key, at, actor, op, keys) VALUES (?, '', ?, ?, {CREATED}, ?)",
            (list_id, at, actor, orjson.dumps(list(keys)).decode()),
        )


def record_updated(conn: sqlite3.Connection, list_id: int, records: Sequence[UpdateRecord], actor: int | None) -> None:
    if records and actor is not None:
        conn.executemany(
            "INSERT INTO contact_changes (list_id, email_key, at, actor, op, changed, unsub_before, topics_before, "
            f"attributes_before, unsub_after, topics_after) VALUES ({int(list_id)}, ?, ?, {int(actor)}, {UPDATED}, "
            "?, ?, ?, ?, ?, ?)",
            records,
        )


# An update's fields as ``entries`` holds them: (changed, unsub_before, topics_before, attributes_before,
# unsub_after, topics_after), then in a batch row the contact's ``prev`` batch row (or None).
UpdateFields = tuple[int, int | None, str | None, str | None, int | None, str | None]


def _diff(old: tuple[int, str | None, str | None], new: tuple[int, str | None, str | None]) -> UpdateFields:
    """What changed from (unsubscribe_all, topics, attributes) ``old`` to ``new``: the fields that did not None."""
    u0, t0, a0 = old
    u1, t1, a1 = new
    if u0 == u1 and t0 == t1:  # the common case of a re-import: only the attributes changed
        return (CHANGED_ATTRIBUTES, None, None, a0, None, None)
    changed = (
        (CHANGED_UNSUBSCRIBE if u0 != u1 else 0)
        | (CHANGED_TOPICS if t0 != t1 else 0)
        | (CHANGED_ATTRIBUTES if a0 != a1 else 0)
    )
    return (
        changed,
        u0 if u0 != u1 else None,
        t0 if t0 != t1 else None,
        a0 if a0 != a1 else None,
        u1 if u0 != u1 else None,
        t1 if t0 != t1 else None,
    )


def update_record(
    key: str, at: float, old: tuple[int, str | None, str | None], new: tuple[int, str | None, str | None]
) -> UpdateRecord:
    """One update's record from (unsubscribe_all, topics, attributes) before and after."""
    return (key, at, *_diff(old, new))


@dataclass(slots=True)
class BatchUpdates:
    """A batch's updates as the importer finds them, recorded as one row by :func:`record_batch_updates`."""

    keys: list[str] = field(default_factory=list)
    entries: list[tuple[object, ...]] = field(default_factory=list)

    def add(
        self,
        key: str,
        old: tuple[int, str | None, str | None],
        new: tuple[int, str | None, str | None],
        prev: int | None,
    ) -> None:
        """Contact ``key`` goes from ``old`` to ``new``; ``prev`` its ``contacts.last_batch`` before."""
        self.keys.append(key)
        self.entries.append((*_diff(old, new), prev))


def record_batch_updates(
    conn: sqlite3.Connection, list_id: int, updates: BatchUpdates, at: float, actor: int | None
) -> int | None:
    """A batch's updates at ``at``, one row (see the module's docstring); its id, which the batch's UPDATE
    then puts in each contact's ``last_batch``. None when there is nothing to record.

    ``entries`` is a JSON array written one entry a line (:data:`ENTRY_LINES`), so that a read of one
    contact's entry parses its line, not the row (a chain's step: 1.1 ms against 5.1 ms for a 5,000-contact
    row, measured; the write costs ~2 ms more a batch)."""
    if not updates.keys or actor is None:
        return None
    entries = b"[\n" + b",\n".join(map(orjson.dumps, updates.entries)) + b"\n]"  # see ENTRY_LINES
    cursor = conn.execute(
        "INSERT INTO contact_changes (list_id, email_key, at, actor, op, keys, entries) "
        f"VALUES (?, '', ?, ?, {UPDATED_BATCH}, ?, ?)",
        (list_id, at, actor, orjson.dumps(updates.keys).decode(), entries.decode()),
    )
    return cursor.lastrowid


def _state(contact: Contact) -> tuple[int, str | None, str | None]:
    return int(contact.unsubscribe_all), topics_json(contact.topic_preferences), contact.attributes_data


def record_changes(
    conn: sqlite3.Connection,
    list_id: int,
    changes: Sequence[tuple[str, Contact | None, Contact]],
    actor: int | None,
) -> None:
    """(key, before, after) triples as written by ``writes.write_contacts``: a creation (before None) one row
    each, with its address; an update the fields it changed."""
    if not changes or actor is None:
        return
    created = [
        (list_id, key, after.created, actor, _email(key, after.email))
        for key, before, after in changes
        if before is None
    ]
    if created:
        conn.executemany(
            f"INSERT INTO contact_changes (list_id, email_key, at, actor, op, email) VALUES (?, ?, ?, ?, {CREATED}, ?)",
            created,
        )
    updates = []
    for key, before, after in changes:
        if before is not None:
            old, new = _state(before), _state(after)
            if old != new:
                updates.append(update_record(key, after.updated, old, new))
    record_updated(conn, list_id, updates, actor)


def record_removed(conn: sqlite3.Connection, list_id: int, keys: Sequence[str], at: float, actor: int | None) -> None:
    """Contacts (by key) the caller removes, as they are, copied by SQLite (with their ``last_batch``)."""
    if keys:
        record_deleting(
            conn,
            "list_id = ? AND email_key IN (SELECT value FROM json_each(?))",
            (list_id, orjson.dumps(list(keys)).decode()),
            at,
            actor,
        )


def record_deleting(
    conn: sqlite3.Connection, where: str, params: Sequence[object], at: float, actor: int | None
) -> None:
    """The contacts ``where`` (a condition on ``contacts``) selects, as they are, copied by SQLite before the
    caller deletes them."""
    if actor is not None:
        conn.execute(
            "INSERT INTO contact_changes (list_id, email_key, at, actor, op, email, created, unsub_before, "
            f"topics_before, attributes_before, prev) SELECT list_id, email_key, ?, ?, {DELETED}, email, created, "
            f"unsubscribe_all, topics, attributes, last_batch FROM contacts WHERE {where}",
            (at, actor, *params),
        )


def record_updating(
    conn: sqlite3.Connection,
    where: str,
    params: Sequence[object],
    at: float,
    actor: int | None,
    *,
    unsubscribe_all: int | None = None,
    topics_sql: str | None = None,
    topics_params: Sequence[object] = (),
) -> None:
    """The update the caller is about to make with one SQL statement, recorded first by one INSERT ... SELECT of
    the contacts ``where`` selects: ``unsubscribe_all`` the flag it sets, or ``topics_sql`` the expression of
    the new ``topics`` (over the row's columns, with ``topics_params``). ``where`` must select only the rows
    the update changes."""
    if actor is None:
        return
    if unsubscribe_all is not None:
        conn.execute(
            "INSERT INTO contact_changes (list_id, email_key, at, actor, op, changed, unsub_before, unsub_after) "
            f"SELECT list_id, email_key, ?, ?, {UPDATED}, {CHANGED_UNSUBSCRIBE}, unsubscribe_all, ? FROM contacts "
            f"WHERE {where}",
            (at, actor, unsubscribe_all, *params),
        )
    elif topics_sql is not None:
        conn.execute(
            "INSERT INTO contact_changes (list_id, email_key, at, actor, op, changed, topics_before, topics_after) "
            f"SELECT list_id, email_key, ?, ?, {UPDATED}, {CHANGED_TOPICS}, topics, {topics_sql} FROM contacts "
            f"WHERE {where}",
            (at, actor, *topics_params, *params),
        )
