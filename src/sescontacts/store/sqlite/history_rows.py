"""The contact history's recorded rows read back as :class:`~sescontacts.history.Change` (``history.py`` reads
the rows, this module says what they mean), and each contact's chain of batch rows: a batch's updates are one
row that the per-contact index cannot find per contact (``history_record`` says why), so each contact names the
last batch row that updated it and each entry the one before."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Final

import orjson

from ...history import ATTRIBUTES, TOPIC_PREFERENCES, UNSUBSCRIBE_ALL, Actor, Change, ChangeOp
from ...model import SPELLING_SEPARATOR
from .history_record import (
    CHANGED_ATTRIBUTES,
    CHANGED_TOPICS,
    CHANGED_UNSUBSCRIBE,
    CREATED,
    DELETED,
    ENTRY_LINES,
    UPDATED,
    UPDATED_BATCH,
)

# The ``op`` codes of each kind of change (an update is a row of its own, or a batch's row).
OP_CODES: Final[dict[ChangeOp, tuple[int, ...]]] = {
    "created": (CREATED,),
    "updated": (UPDATED, UPDATED_BATCH),
    "deleted": (DELETED,),
}
_OPS_BY_CODE: Final[dict[int, ChangeOp]] = {code: op for op, codes in OP_CODES.items() for code in codes}
# An entry of a batch row: the update's fields (history_record.UpdateFields), then the contact's batch row before.
_PREV: Final = 6


SELECT = (
    "SELECT c.id, coalesce(l.name, ''), coalesce(c.email, c.email_key), c.at, a.kind, a.name, a.job, c.op, "
    "c.created, c.changed, c.unsub_before, c.topics_before, c.attributes_before, c.unsub_after, c.topics_after, "
    "c.list_id, c.email_key, c.keys, c.entries FROM contact_changes AS c JOIN history_actors AS a ON a.id = c.actor "
    "LEFT JOIN contact_lists AS l ON l.id = c.list_id"
)


def _topics(text: Any) -> dict[str, object]:
    return dict(orjson.loads(text)) if text else {}


def _entry_of(lines: Sequence[str], i: int) -> list[Any]:
    """Entry ``i`` of a batch row's ``entries`` split into lines: only its line is parsed
    (history_record.ENTRY_LINES; line 0 is the array's "[")."""
    entry: list[Any] = orjson.loads(lines[i + 1].rstrip(","))
    return entry


class BatchChain:
    """A contact's updates that batch rows record, found along its chain (``history_record`` says why): from the
    contact's ``last_batch``, and from the ``prev`` of each deletion of it (its chain before), each entry naming
    the row before. Each (row, contact) is read once per chain object, and only what a Change needs of the row
    is kept: a row holds a whole batch (~1 MB of text at 5,000 contacts)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._entries: dict[tuple[int, str], tuple[Sequence[Any], list[Any]] | None] = {}

    def _entry(self, row_id: int, key: str) -> tuple[Sequence[Any], list[Any]] | None:
        """Contact ``key``'s entry in batch row ``row_id`` with the row's own columns, or None (pruned)."""
        if (row_id, key) not in self._entries:
            row = self.conn.execute(f"{SELECT} WHERE c.id = ? AND c.op = {UPDATED_BATCH}", (row_id,)).fetchone()
            found = None
            if row is not None:
                keys: list[str] = orjson.loads(row[17])
                if key in keys:  # in C: a dict of the keys would cost more to build than the one lookup
                    found = ((*row[:17], None, None), _entry_of(row[18].split(ENTRY_LINES), keys.index(key)))
            self._entries[row_id, key] = found
        return self._entries[row_id, key]

    def updates(
        self, list_id: int, key: str, after_id: int, *, limit: int | None = None
    ) -> list[tuple[Sequence[Any], list[Any]]]:
        """The contact ``key``'s batch updates recorded after change ``after_id``, newest first (at most
        ``limit`` a chain): each its row and the contact's entry."""
        starts = self.conn.execute(
            "SELECT last_batch FROM contacts WHERE list_id = ? AND email_key = ? UNION ALL SELECT prev FROM "
            # ``op != 1``: the partial per-contact index's own condition, which SQLite needs to see to use it.
            f"contact_changes WHERE list_id = ? AND email_key = ? AND op != 1 AND op = {DELETED} AND id > ?",
            (list_id, key, list_id, key, after_id),
        ).fetchall()
        found: dict[int, tuple[Sequence[Any], list[Any]]] = {}
        for (node,) in starts:
            walked = 0
            while node is not None and node > after_id and node not in found and (limit is None or walked < limit):
                got = self._entry(int(node), key)
                if got is None:
                    break
                found[int(node)] = got
                walked += 1
                node = got[1][_PREV]
        return [found[i] for i in sorted(found, reverse=True)]

    def first_after(
        self, list_id: int, key: str, after_id: int, ignore_jobs: Sequence[str] = ()
    ) -> tuple[Sequence[Any], list[Any]] | None:
        """The contact's first batch update after change ``after_id`` by no job of ``ignore_jobs``."""
        later = [found for found in self.updates(list_id, key, after_id) if str(found[0][6]) not in ignore_jobs]
        return later[-1] if later else None


def _batch_rows_since(conn: sqlite3.Connection, list_id: int, after_id: int) -> bool:
    """Whether a batch's updates were recorded for the list after change ``after_id``: one probe of the
    per-contact index, which holds each such row under the empty key (and no other row there), so the reads
    look at the contacts' chains only when one can lead somewhere (the undo of an import, mostly not)."""
    return (
        conn.execute(
            "SELECT 1 FROM contact_changes WHERE list_id = ? AND email_key = '' AND op != 1 AND id > ? LIMIT 1",
            (list_id, after_id),
        ).fetchone()
        is not None
    )


def batched_since(conn: sqlite3.Connection, list_id: int, pairs: Sequence[tuple[str, int]]) -> set[int]:
    """The positions in ``pairs`` ((key, change id)) of the contacts a batch updated after that change (their
    ``last_batch`` is later): where a chain may hold a later change. One probe of the contacts a pair, and none
    when no batch row was recorded since the earliest change."""
    if not pairs or not _batch_rows_since(conn, list_id, min(after for _, after in pairs)):
        return set()
    rows = conn.execute(
        # CROSS JOIN: the pairs outside, a probe of the contacts each (left to itself, SQLite scanned the list and
        # the pairs for each contact: 23 s for 5,000 pairs on 10,000 contacts).
        "SELECT p.key FROM json_each(?) AS p CROSS JOIN contacts AS t ON t.list_id = ? "
        "AND t.email_key = p.value ->> 0 WHERE t.last_batch > p.value ->> 1",
        (orjson.dumps(pairs).decode(), list_id),
    )
    return {int(row[0]) for row in rows}


def attributes_after(
    conn: sqlite3.Connection, list_id: int, key: str, change_id: int, chain: BatchChain | None = None
) -> str | None:
    """What an update that changed the attributes set them to, which is not stored (it is half of what a
    re-import writes, measured): the attributes the contact's next change of them found (an update's before,
    or a deletion's), or the contact's own when none has changed them since."""
    row = conn.execute(
        "SELECT id, attributes_before FROM contact_changes WHERE list_id = ? AND email_key = ? AND op != 1 "
        f"AND id > ? AND (op = {DELETED} OR changed & {CHANGED_ATTRIBUTES}) ORDER BY id LIMIT 1",
        (list_id, key, change_id),
    ).fetchone()
    batch = [
        (int(found[0][0]), found[1][3])
        for found in (chain or BatchChain(conn)).updates(list_id, key, change_id)
        if found[1][0] & CHANGED_ATTRIBUTES
    ]
    candidates: list[tuple[int, str | None]] = ([(int(row[0]), row[1])] if row is not None else []) + batch[-1:]
    if candidates:
        return min(candidates, key=lambda found: found[0])[1]
    current = conn.execute(
        "SELECT attributes FROM contacts WHERE list_id = ? AND email_key = ?", (list_id, key)
    ).fetchone()
    return None if current is None else current[0]


def address(key: str) -> str:
    """The address a contact's key holds: the spelling after the separator of an exact key
    (model.exact_email_key), or the folded key itself."""
    return key.rpartition(SPELLING_SEPARATOR)[2]


def _update_sides(
    fields: Sequence[Any], attributes: Callable[[], str | None] | None
) -> tuple[dict[str, object], dict[str, object]]:
    """An update's before and after from its recorded fields (``history_record.UpdateFields``); ``attributes``
    reads the new attributes (:func:`attributes_after`), or None leaves them out of ``after``."""
    changed, unsub_before, topics_before, attributes_before, unsub_after, topics_after = fields[:6]
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    if changed & CHANGED_UNSUBSCRIBE:
        before[UNSUBSCRIBE_ALL], after[UNSUBSCRIBE_ALL] = bool(unsub_before), bool(unsub_after)
    if changed & CHANGED_TOPICS:
        before[TOPIC_PREFERENCES], after[TOPIC_PREFERENCES] = _topics(topics_before), _topics(topics_after)
    if changed & CHANGED_ATTRIBUTES:
        before[ATTRIBUTES] = attributes_before
        if attributes is not None:
            after[ATTRIBUTES] = attributes()
    return before, after


def batch_change(
    row: Sequence[Any],
    key: str,
    entry: Sequence[Any],
    conn: sqlite3.Connection | None,
    chain: BatchChain | None = None,
) -> Change:
    """The update of contact ``key`` that batch row ``row`` records in ``entry``."""
    list_id, cid = int(row[15]), int(row[0])
    reader = None if conn is None else (lambda: attributes_after(conn, list_id, key, cid, chain))
    before, after = _update_sides(entry, reader)
    return Change(
        cid, str(row[1]), address(key), float(row[3]), Actor(row[4], row[5], row[6]), "updated", before, after
    )


def changes_from_row(
    row: Sequence[Any], conn: sqlite3.Connection | None, only_key: str | None = None, window: slice = slice(None)
) -> list[Change]:
    """The changes one row records: one, or a batch's creations or updates, one per key (``only_key``: that one
    alone; ``window``: those of them a page shows, the others not built). ``conn``: read an update's new
    attributes (:func:`attributes_after`, a few queries each); None leaves them out of ``after`` (an undo
    restores ``before`` and needs no more)."""
    (
        cid,
        list_name,
        email,
        at,
        kind,
        name,
        job,
        op_code,
        created,
        changed,
        *sides,
        list_id,
        row_key,
        keys_json,
        entries,
    ) = row
    if op_code == UPDATED_BATCH:
        chain = None if conn is None else BatchChain(conn)
        keys: list[str] = orjson.loads(keys_json)
        lines = entries.split(ENTRY_LINES)
        chosen = range(len(keys)) if only_key is None else [i for i, key in enumerate(keys) if key == only_key]
        return [batch_change(row, keys[i], _entry_of(lines, i), conn, chain) for i in chosen[window]]
    op = _OPS_BY_CODE[int(op_code)]
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    if op == "deleted":
        unsub_before, topics_before, attributes_before = sides[:3]
        before = {
            UNSUBSCRIBE_ALL: bool(unsub_before),
            TOPIC_PREFERENCES: _topics(topics_before),
            ATTRIBUTES: attributes_before,
        }
    elif op == "updated":
        reader = None if conn is None else (lambda: attributes_after(conn, int(list_id), str(row_key), int(cid)))
        before, after = _update_sides((changed, *sides), reader)
    keys = [email] if keys_json is None else orjson.loads(keys_json)
    if only_key is not None and keys_json is not None:
        keys = [key for key in keys if key == only_key]
    keys = keys[window]
    actor = Actor(kind, name, job)
    return [
        Change(
            id=int(cid),
            list_name=str(list_name),
            email=address(str(key)),
            at=float(at),
            actor=actor,
            op=op,
            before=before,
            after=after,
            created=float(created) if created is not None else None,
        )
        for key in keys
    ]
