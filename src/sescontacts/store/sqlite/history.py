"""The contact history in SQLite (schema owner "history"): its tables, who is writing, and the history read
back as :class:`~sescontacts.history.Change`. The writes of this package record it (:mod:`.history_record`
says how and why not by triggers), in the same transaction as the change: a crash never leaves a change
without its record or the reverse.

Who writes: at the start of every write transaction :func:`set_actor` (a ``Database`` begin hook) puts the
current :func:`~sescontacts.history.current_actor`'s id in the one-row ``history_context``, which the writes
read. The write lock is held from BEGIN IMMEDIATE, and every process sets the row in every transaction, so the
row is always the writing transaction's own.

Layout, for the import speed goal (history on <= 1.15x off): a batch's creations are one row (``keys``, a JSON
array) and need no before-image, and its updates one row (``keys`` and ``entries``), which the reads find along
each contact's chain of batch rows (``history_rows.BatchChain``; ``history_record`` says why). Rows are appended
in id order, and ids follow time (the activity page and the pruner find a time by bisecting ids: no index on
``at``). Only single updates and deletions enter the per-contact index (``contact_changes_by_contact``, partial;
a batch's updates row once, under the empty key no read asks for); a contact's creation is found by its creation
time (``contact_changes_created``: the contact's own ``created``, or the one its deletion recorded), and a job's
changes by ``contact_changes_by_actor``, both appended to in order.

Updates record which fields changed (``changed``) and their values before, and after but for the attributes
(read from the contact's next change, or the contact: ``history_rows.attributes_after``); deletions every field before,
with the creation time, so that an undo restores the contact as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

import orjson

from ...db import Database, Migrations, run_script
from ...errors import BadRequest
from ...history import (
    ACTOR_KINDS,
    CHANGE_OPS,
    SYSTEM,
    Actor,
    Change,
    ChangeQuery,
    CreatedBatch,
    current_actor,
)
from ...model import SPELLING_SEPARATOR, AddressBatch, AddressIdentity, Page
from .history_record import CREATED
from .history_rows import OP_CODES, SELECT, BatchChain, address, batch_change, batched_since, changes_from_row


def _schema_v1(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE history_actors (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            job TEXT NOT NULL,
            UNIQUE (kind, name, job)
        );
        CREATE TABLE history_context (
            actor INTEGER NOT NULL,
            recording INTEGER NOT NULL DEFAULT 1
        );
        INSERT INTO history_actors (id, kind, name, job) VALUES (1, 'system', '', '');
        INSERT INTO history_context (actor) VALUES (1);
        CREATE TABLE contact_changes (
            id INTEGER PRIMARY KEY,
            list_id INTEGER NOT NULL,
            email_key TEXT NOT NULL,
            at REAL NOT NULL,
            actor INTEGER NOT NULL,
            op INTEGER NOT NULL,
            email TEXT,
            keys TEXT,
            created REAL,
            changed INTEGER,
            unsub_before INTEGER,
            topics_before TEXT,
            attributes_before TEXT,
            unsub_after INTEGER,
            topics_after TEXT
        );
        CREATE INDEX contact_changes_by_contact ON contact_changes (list_id, email_key, id) WHERE op != 1;
        CREATE INDEX contact_changes_created ON contact_changes (list_id, at, email_key) WHERE op = 1;
        CREATE INDEX contact_changes_by_actor ON contact_changes (actor, id);
        """,
    )


def _batch_updates(conn: sqlite3.Connection) -> None:
    """A batch's updates in one row (``history_record`` says why): each contact's fields in ``entries``, and a
    deletion's ``prev``, the deleted contact's last batch row."""
    conn.execute("ALTER TABLE contact_changes ADD COLUMN entries TEXT")
    conn.execute("ALTER TABLE contact_changes ADD COLUMN prev INTEGER")


def set_recording(conn: sqlite3.Connection, on: bool) -> None:
    """Record changes from now on, or stop (retention 0 days): in the caller's transaction, for every process
    that writes the file (each write reads ``history_context.recording`` in its own transaction: the one place
    the setting is kept)."""
    conn.execute("UPDATE history_context SET recording = ?", (int(on),))


def recording(db: Database) -> bool:
    return bool(db.reader().execute("SELECT recording FROM history_context").fetchone()[0])


def set_actor(conn: sqlite3.Connection) -> None:
    """The begin hook: this transaction's writes are :func:`current_actor`'s (see the module's docstring)."""
    actor = current_actor()
    params = (actor.kind, actor.name, actor.job)
    conn.execute("INSERT OR IGNORE INTO history_actors (kind, name, job) VALUES (?, ?, ?)", params)
    conn.execute(
        "UPDATE history_context SET actor = a.id FROM (SELECT id FROM history_actors "
        "WHERE kind = ? AND name = ? AND job = ?) AS a WHERE history_context.actor != a.id",
        params,
    )


# Listed in schema.PRODUCT_SCHEMA. Never edit or reorder these steps: versions count per owner.
MIGRATIONS = Migrations("history", (_schema_v1, _batch_updates), on_begin=(set_actor,))

# A page token's two numbers are joined by a base64url character: the console stacks tokens joined by "."
# (console/views/filters.py: PageStack), as every store's token is base64url.
_TOKEN_SEPARATOR: Final = "_"


def _position(token: str | None) -> tuple[int, int] | None:
    """A page token: the id of the row to go on from (inclusive) and how many of its changes were shown."""
    if token is None:
        return None
    row_id, _, shown = token.partition(_TOKEN_SEPARATOR)
    if not row_id.isdigit() or not shown.isdigit():
        raise BadRequest("Provided NextToken is invalid.", field="NextToken")
    return int(row_id), int(shown)


def first_id_at(conn: sqlite3.Connection, at: float) -> int:
    """The id of the first change recorded at ``at`` or later (one past the last when none is): ids follow
    time, so a bisection of ids reads ~2 log2(n) rows instead of an index on ``at`` that every write would
    pay for. (Clocks of two processes may disagree by a little: a time filter is exact to that.)"""
    low, high = conn.execute("SELECT coalesce(min(id), 1), coalesce(max(id), 0) + 1 FROM contact_changes").fetchone()
    while low < high:
        middle = (low + high) // 2
        row = conn.execute("SELECT id, at FROM contact_changes WHERE id >= ? ORDER BY id LIMIT 1", (middle,)).fetchone()
        if row is None or row[1] >= at:
            high = middle
        else:
            low = int(row[0]) + 1
    return int(low)


class SqliteContactHistory:
    """:class:`~sescontacts.store.base.ContactHistory` on the product database (both backends: the ses
    backend's mirror records what reaches it, SES's own changes as the sync sees them)."""

    def __init__(self, db: Database, identity: AddressIdentity) -> None:
        self.db = db
        self.identity = identity

    def _list_id(self, conn: sqlite3.Connection, list_name: str) -> int | None:
        row = conn.execute("SELECT id FROM contact_lists WHERE name = ?", (list_name,)).fetchone()
        return int(row[0]) if row else None

    def changes(
        self, list_name: str, query: ChangeQuery, *, page_size: int = 50, token: str | None = None
    ) -> Page[Change]:
        """The list's changes matching ``query``, newest first, one page (the token: the last id shown)."""
        if query.actor_kind is not None and query.actor_kind not in ACTOR_KINDS:
            raise BadRequest(f"Unknown actor kind {query.actor_kind!r}", field="actor")
        for op in query.ops:
            if op not in CHANGE_OPS:
                raise BadRequest(f"Unknown change {op!r}: created, updated or deleted", field="what")
        position = _position(token)
        conn = self.db.reader()
        list_id = self._list_id(conn, list_name)
        if list_id is None:
            return Page([])
        where: list[str] = ["c.list_id = ?"]
        params: list[object] = [list_id]
        key = None
        if query.email is not None:
            key = self.identity.key(query.email)
            where.append("(c.email_key = ? OR (c.email_key = '' AND ? IN (SELECT value FROM json_each(c.keys))))")
            params.extend((key, key))
        if query.actor_kind is not None or query.actor_name is not None or query.job is not None:
            actor_where: list[str] = []
            actor_params: list[str] = []
            for column, value in (("kind", query.actor_kind), ("name", query.actor_name), ("job", query.job)):
                if value is not None:
                    actor_where.append(f"{column} = ?")
                    actor_params.append(value)
            where.append(f"c.actor IN (SELECT id FROM history_actors WHERE {' AND '.join(actor_where)})")
            params.extend(actor_params)
        if query.ops:
            where.append(f"c.op IN ({', '.join(str(code) for op in query.ops for code in OP_CODES[op])})")
        if query.since is not None:
            where.append("c.id >= ? AND c.at >= ?")
            params.extend((first_id_at(conn, query.since), query.since))
        if query.until is not None:
            where.append("c.id < ? AND c.at < ?")
            params.extend((first_id_at(conn, query.until), query.until))
        if position is not None:
            where.append("c.id <= ?")
            params.append(position[0])
        # Read row by row, not fetched: a batch's row holds up to a batch of changes (and ~1 MB of text), and
        # the page is often full after the first.
        rows = conn.execute(
            f"{SELECT} WHERE {' AND '.join(where)} ORDER BY c.id DESC LIMIT ?", (*params, page_size + 1)
        )
        items: list[Change] = []
        for row in rows:
            shown = position[1] if position is not None and row[0] == position[0] else 0
            room = page_size - len(items)
            # Built only as far as the page goes, and one more: whether it ends inside this row (a batch's).
            found = changes_from_row(row, conn, key, slice(shown, shown + room + 1))
            items.extend(found[:room])
            if len(found) > room:  # the page ends inside this row
                return Page(items, f"{row[0]}{_TOKEN_SEPARATOR}{shown + room}")
            if len(items) == page_size:
                following = rows.fetchone()
                return Page(items, None if following is None else f"{following[0]}{_TOKEN_SEPARATOR}0")
        return Page(items)

    def contact_history(self, list_name: str, email: str, *, limit: int = 100) -> list[Change]:
        """Every recorded change of the contact ``email`` is (or was), newest first, at most ``limit``:
        updates and deletions by the per-contact index, a batch's updates along the contact's chain, creations
        by the creation times the contact and its deletions name (see the module's docstring)."""
        conn = self.db.reader()
        list_id = self._list_id(conn, list_name)
        if list_id is None:
            return []
        key = self.identity.key(email)
        rows = conn.execute(
            f"{SELECT} WHERE c.list_id = ? AND c.email_key = ? AND c.op != 1 ORDER BY c.id DESC LIMIT ?",
            (list_id, key, limit),
        ).fetchall()
        created_times = {float(row[8]) for row in rows if row[8] is not None}
        current = conn.execute(
            "SELECT created FROM contacts WHERE list_id = ? AND email_key = ?", (list_id, key)
        ).fetchone()
        if current is not None:
            created_times.add(float(current[0]))
        if created_times:
            rows += conn.execute(
                f"{SELECT} WHERE c.list_id = ? AND c.op = 1 AND c.at IN (SELECT value FROM json_each(?)) "
                "AND (c.email_key = ? OR (c.email_key = '' AND ? IN (SELECT value FROM json_each(c.keys))))",
                (list_id, orjson.dumps(sorted(created_times)).decode(), key, key),
            ).fetchall()
        chain = BatchChain(conn)
        batched = [
            batch_change(row, key, entry, conn, chain) for row, entry in chain.updates(list_id, key, 0, limit=limit)
        ]
        changes = sorted(
            [*(c for row in rows for c in changes_from_row(row, conn, key)), *batched], key=lambda c: c.id, reverse=True
        )
        return changes[:limit]

    def _job_rows(self, job: str, before_id: int | None, limit: int) -> list[Any]:
        conn = self.db.reader()
        # One actor at a time: each query walks its (actor, id) index in order and stops at ``limit``, where
        # ``actor IN (...)`` sorted every row of the job below ``before_id`` for each batch of an undo.
        rows = []
        for (actor,) in conn.execute("SELECT id FROM history_actors WHERE job = ?", (job,)).fetchall():
            rows += conn.execute(
                f"{SELECT} WHERE c.actor = ? AND c.id < ? ORDER BY c.id DESC LIMIT ?",
                (actor, before_id if before_id is not None else 1 << 62, limit),
            ).fetchall()
        rows.sort(key=lambda row: int(row[0]), reverse=True)
        return rows[:limit]

    def job_changes(self, job: str, *, before_id: int | None = None, limit: int = 1000) -> list[Change]:
        """The changes job ``job`` made (any list), newest first, those with an id below ``before_id``.
        ``limit`` counts recorded rows: a batch's creations are one row, and its updates one (their changes
        share its id). An update's ``after`` leaves out the attributes (not stored, and an undo restores
        ``before``: ``history_rows.attributes_after`` says why)."""
        return [change for row in self._job_rows(job, before_id, limit) for change in changes_from_row(row, None)]

    def job_records(self, job: str, *, before_id: int | None = None, limit: int = 1000) -> list[Change | CreatedBatch]:
        """:meth:`job_changes` as recorded: a batch's creations one :class:`CreatedBatch` (its keys as the
        contacts are filed, their addresses read from the keys), the rest a Change each."""
        records: list[Change | CreatedBatch] = []
        for row in self._job_rows(job, before_id, limit):
            keys_json = row[17]
            if row[7] != CREATED or keys_json is None:
                records.extend(changes_from_row(row, None))
                continue
            keys: list[str] = orjson.loads(keys_json)
            exact = any(SPELLING_SEPARATOR in key for key in keys)  # else every key is its address
            emails = [address(key) for key in keys] if exact else keys
            records.append(
                CreatedBatch(
                    int(row[0]),
                    str(row[1]),
                    float(row[3]),
                    Actor(row[4], row[5], row[6]),
                    AddressBatch(self.identity.name, keys, emails),
                )
            )
        return records

    def changed_keys(
        self, list_name: str, keys: Sequence[str], after_id: int, *, ignore_jobs: Sequence[str] = ()
    ) -> set[str]:
        """Which of ``keys`` (contacts as the store files them) were updated or deleted after change ``after_id``
        by no job of ``ignore_jobs``: one statement, a probe of the per-contact index and of the contact a key
        (its last batch row), then the chains of those a batch updated since. An undo's check of a batch's
        creations (a contact deleted since and created again was deleted first: the index has it)."""
        conn = self.db.reader()
        list_id = self._list_id(conn, list_name)
        if list_id is None or not keys:
            return set()
        rows = conn.execute(
            "SELECT k.value FROM json_each(?) AS k WHERE EXISTS (SELECT 1 FROM contact_changes AS c "
            "WHERE c.list_id = ? AND c.email_key = k.value AND c.op != 1 AND c.id > ? AND c.actor NOT IN "
            "(SELECT id FROM history_actors WHERE job IN (SELECT value FROM json_each(?))))",
            (orjson.dumps(list(keys)).decode(), list_id, after_id, orjson.dumps(list(ignore_jobs)).decode()),
        ).fetchall()
        found = {str(row[0]) for row in rows}
        chain = BatchChain(conn)
        for position in batched_since(conn, list_id, [(key, after_id) for key in keys]):
            key = keys[position]
            if key not in found and chain.first_after(list_id, key, after_id, ignore_jobs) is not None:
                found.add(key)
        return found

    def later_change(self, change: Change, *, ignore_jobs: Sequence[str] = ()) -> Change | None:
        """The first change to ``change``'s contact after it that no job of ``ignore_jobs`` made: an undo's
        conflict (the contact changed again since the job)."""
        conn = self.db.reader()
        list_id = self._list_id(conn, change.list_name)
        if list_id is None:
            return None
        key = self.identity.key(change.email)
        ignored = orjson.dumps(list(ignore_jobs)).decode()
        # Later creations follow a later deletion (which the per-contact index holds), or the contact was
        # created by ``change`` itself: the index suffices.
        row = conn.execute(
            f"{SELECT} WHERE c.list_id = ? AND c.email_key = ? AND c.op != 1 AND c.id > ? "
            "AND a.job NOT IN (SELECT value FROM json_each(?)) ORDER BY c.id LIMIT 1",
            (list_id, key, change.id, ignored),
        ).fetchone()
        chain = BatchChain(conn)
        batched = chain.first_after(list_id, key, change.id, ignore_jobs)
        if batched is not None and (row is None or int(batched[0][0]) < int(row[0])):
            return batch_change(batched[0], key, batched[1], conn, chain)
        if row is not None:
            return changes_from_row(row, conn)[0]
        if change.op != "deleted":
            return None
        # A deleted contact created again since is in no later row of the index (creations are not): the
        # contact exists now. Its creation, found by its creation time, is a later change unless an ignored job
        # made it (an undo restoring it); with no creation recorded (pruned, history off) it is one by "system".
        current = conn.execute(
            "SELECT created FROM contacts WHERE list_id = ? AND email_key = ?", (list_id, key)
        ).fetchone()
        if current is None:
            return None
        created = conn.execute(
            f"{SELECT} WHERE c.list_id = ? AND c.op = 1 AND c.at = ? AND c.id > ? "
            "AND (c.email_key = ? OR (c.email_key = '' AND ? IN (SELECT value FROM json_each(c.keys)))) "
            "ORDER BY c.id DESC LIMIT 1",
            (list_id, current[0], change.id, key, key),
        ).fetchone()
        if created is None:
            return Change(0, change.list_name, change.email, float(current[0]), SYSTEM, "created", {}, {})
        found = changes_from_row(created, None, key)[0]
        return None if found.actor.job and found.actor.job in ignore_jobs else found

    def later_changes(self, changes: Sequence[Change], *, ignore_jobs: Sequence[str] = ()) -> list[Change | None]:
        """:meth:`later_change` of each of ``changes``, in order: one query a list for the lot (an undo's batch),
        and one for the contacts a batch updated since; :meth:`later_change` itself for those, for the changes
        with a later row (a batch's update may come before it), and for the deletions without one."""
        conn = self.db.reader()
        found: list[Change | None] = [None] * len(changes)
        by_list: dict[str, list[int]] = {}
        for index, change in enumerate(changes):
            by_list.setdefault(change.list_name, []).append(index)
        ignored = orjson.dumps(list(ignore_jobs)).decode()
        for list_name, indexes in by_list.items():
            list_id = self._list_id(conn, list_name)
            if list_id is None:
                continue
            pairs = [(self.identity.key(changes[i].email), changes[i].id) for i in indexes]
            later_ids = [
                row[0]
                for row in conn.execute(
                    "SELECT (SELECT c.id FROM contact_changes AS c WHERE c.list_id = ? "
                    "AND c.email_key = json_extract(p.value, '$[0]') AND c.op != 1 "
                    "AND c.id > json_extract(p.value, '$[1]') AND c.actor NOT IN (SELECT id FROM history_actors "
                    "WHERE job IN (SELECT value FROM json_each(?))) ORDER BY c.id LIMIT 1) "
                    "FROM json_each(?) AS p ORDER BY p.key",
                    (list_id, ignored, orjson.dumps(pairs).decode()),
                )
            ]
            batched = batched_since(conn, list_id, pairs)
            for position, (index, later_id) in enumerate(zip(indexes, later_ids, strict=True)):
                if later_id is not None or position in batched or changes[index].op == "deleted":
                    found[index] = self.later_change(changes[index], ignore_jobs=ignore_jobs)
        return found

    def set_recording(self, on: bool) -> bool:
        """Record changes from now on, or stop (retention 0 days), for every process on the file; whether that
        changed anything (a server started with the same setting as the last one changes nothing)."""
        if recording(self.db) == on:
            return False
        with self.db.write() as conn:
            set_recording(conn, on)
        return True

    def prune(self, older_than: float, *, limit: int = 10_000) -> int:
        """Delete up to ``limit`` changes recorded before ``older_than``, oldest first; how many."""
        with self.db.write() as conn:
            below = first_id_at(conn, older_than)
            cursor = conn.execute(
                "DELETE FROM contact_changes WHERE id IN (SELECT id FROM contact_changes WHERE id < ? "
                "ORDER BY id LIMIT ?)",
                (below, limit),
            )
            return cursor.rowcount

    def table_sizes(self) -> dict[str, int]:
        """Bytes on disk of the history's table and indexes, and of the contacts table and its indexes, by
        name (what the benchmark reports side by side)."""
        rows = self.db.reader().execute(
            "SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'contact_changes%' OR name LIKE 'contacts%' "
            "GROUP BY name"
        )
        return {str(name): int(size) for name, size in rows}
