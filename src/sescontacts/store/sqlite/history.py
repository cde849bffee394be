"""The contact history in SQLite (schema owner "history"): recorded by triggers on ``contacts``, read back as
:class:`~sescontacts.history.Change`.

Why triggers: every write path (single contacts, the importer's bulk batches, bulk actions, the ses backend's
mirror and its sync) goes through ``contacts``, so none can forget to record, and SQLite records in C in the
same transaction as the change: a crash never leaves a change without its record or the reverse.

Who writes: at the start of every write transaction :func:`set_actor` (a ``Database`` begin hook) puts the
current :func:`~sescontacts.history.current_actor`'s id in the one-row ``history_context``, which the
triggers read. The write lock is held from BEGIN IMMEDIATE, and every process sets the row in every
transaction, so the row is always the writing transaction's own.

Cost, by measurement on an import of new contacts (the 1.15x goal): a creation is recorded without reading
anything (no before-image) and is appended to the table in id order; its indexes are appended to as well
(``contact_changes_created`` by creation time, ``contact_changes_by_actor`` by actor then id). Only updates and
deletions go into the per-contact index (``contact_changes_by_contact``, a partial index): a random insert
per row there cost 70% more than the contacts write itself in a probe. A contact's creation is then found by
its creation time (the contact's own ``created``, or the one its deletion recorded).

Updates record only the fields that changed, both sides (``*_before`` / ``*_after``); deletions every field
before, with the creation time, so that an undo restores the contact as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import orjson

from ...db import Database, Migrations, run_script
from ...errors import BadRequest
from ...history import (
    ACTOR_KINDS,
    ATTRIBUTES,
    CHANGE_OPS,
    SYSTEM,
    TOPIC_PREFERENCES,
    UNSUBSCRIBE_ALL,
    Actor,
    Change,
    ChangeOp,
    ChangeQuery,
    current_actor,
)
from ...model import SPELLING_SEPARATOR, AddressIdentity, Page

OP_CODES: Final[dict[ChangeOp, int]] = {"created": 1, "updated": 2, "deleted": 3}
_OPS_BY_CODE: Final[dict[int, ChangeOp]] = {code: op for op, code in OP_CODES.items()}
# SQL's now, as seconds since the epoch (julianday has millisecond precision; unixepoch('subsec') needs 3.42).
_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
RECORDING_META = "history_recording"  # "off" when the history is off (retention 0 days)


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
            recording INTEGER NOT NULL DEFAULT 1,
            bulk INTEGER NOT NULL DEFAULT 0
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
            unsub_before INTEGER,
            topics_before TEXT,
            attributes_before TEXT,
            unsub_after INTEGER,
            topics_after TEXT,
            attributes_after TEXT
        );
        CREATE INDEX contact_changes_by_contact ON contact_changes (list_id, email_key, id) WHERE op != 1;
        CREATE INDEX contact_changes_created ON contact_changes (list_id, at, email_key) WHERE op = 1;
        CREATE INDEX contact_changes_by_actor ON contact_changes (actor, id);
        CREATE INDEX contact_changes_by_time ON contact_changes (at);
        """,
    )
    set_recording(conn, True)


# What changed, per field, in an UPDATE trigger.
_CHANGED = {
    "unsub": "old.unsubscribe_all IS NOT new.unsubscribe_all",
    "topics": "old.topics IS NOT new.topics",
    "attributes": "old.attributes IS NOT new.attributes",
}
_COLUMN = {"unsub": "unsubscribe_all", "topics": "topics", "attributes": "attributes"}
_PER_ROW = "(SELECT bulk FROM history_context) = 0"
_TRIGGERS: Final = {
    "history_created": f"AFTER INSERT ON contacts WHEN {_PER_ROW} BEGIN "
    "INSERT INTO contact_changes (list_id, email_key, at, actor, op, email) "
    "SELECT new.list_id, new.email_key, new.created, actor, 1, "
    "CASE WHEN new.email = new.email_key THEN NULL ELSE new.email END FROM history_context; END",
    "history_updated": f"AFTER UPDATE ON contacts WHEN ({' OR '.join(_CHANGED.values())}) AND {_PER_ROW} BEGIN "
    "INSERT INTO contact_changes (list_id, email_key, at, actor, op, email, "
    "unsub_before, topics_before, attributes_before, unsub_after, topics_after, attributes_after) "
    "SELECT new.list_id, new.email_key, new.updated, actor, 2, "
    "CASE WHEN new.email = new.email_key THEN NULL ELSE new.email END, "
    + ", ".join(f"CASE WHEN {test} THEN old.{_COLUMN[f]} END" for f, test in _CHANGED.items())
    + ", "
    + ", ".join(f"CASE WHEN {test} THEN new.{_COLUMN[f]} END" for f, test in _CHANGED.items())
    + " FROM history_context; END",
    "history_deleted": f"AFTER DELETE ON contacts WHEN {_PER_ROW} BEGIN "
    "INSERT INTO contact_changes (list_id, email_key, at, actor, op, email, created, "
    "unsub_before, topics_before, attributes_before) "
    f"SELECT old.list_id, old.email_key, {_NOW}, actor, 3, old.email, old.created, "
    "old.unsubscribe_all, old.topics, old.attributes FROM history_context; END",
}


def set_recording(conn: sqlite3.Connection, on: bool) -> None:
    """Record changes from now on (the triggers exist), or stop (retention 0 days): in the caller's
    transaction, for every process that writes the file."""
    for name, body in _TRIGGERS.items():
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        if on:
            conn.execute(f"CREATE TRIGGER {name} {body}")
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (RECORDING_META, "on" if on else "off"),
    )
    conn.execute("UPDATE history_context SET recording = ?", (int(on),))


def recording(db: Database) -> bool:
    return db.meta(RECORDING_META) != "off"


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


# -- the bulk paths record by batch, not by trigger ----------------------------------------------------------
# A trigger costs SQLite a subprogram per row: measured 3 us a row in memory and 11 us on a 600k-row file,
# against ~10 us a row for a whole import. The importer's batches therefore switch the triggers off for
# their own statements (``bulk`` in ``history_context``; the WHEN test alone costs ~0.3 us a row) and record
# what they did themselves: a batch's creations as ONE row holding its keys, its updates from the rows it
# already read, its deletions copied by one INSERT ... SELECT before the DELETE.


@contextmanager
def batch_recording(conn: sqlite3.Connection) -> Iterator[bool]:
    """The block records its own changes (the per-row triggers are off for it); yields whether the history is
    recording at all (retention 0 days: nothing to record)."""
    (on,) = conn.execute("SELECT recording FROM history_context").fetchone()
    conn.execute("UPDATE history_context SET bulk = 1")
    try:
        yield bool(on)
    finally:
        conn.execute("UPDATE history_context SET bulk = 0")


def record_created(conn: sqlite3.Connection, list_id: int, keys: Sequence[str], at: float) -> None:
    """A batch's new contacts, created at ``at`` (their ``created``): one row holding the keys in a JSON array.
    Each contact keeps the spelling it was written with (``contacts.email``): the row needs no addresses."""
    if keys:
        conn.execute(
            "INSERT INTO contact_changes (list_id, email_key, at, actor, op, keys) "
            "SELECT ?, '', ?, actor, 1, ? FROM history_context",
            (list_id, at, orjson.dumps(list(keys)).decode()),
        )


# (email_key, at, unsub_before, topics_before, attributes_before, unsub_after, topics_after, attributes_after),
# unchanged fields None on both sides.
UpdateRecord = tuple[str, float, int | None, str | None, str | None, int | None, str | None, str | None]


def record_updated(conn: sqlite3.Connection, list_id: int, records: Sequence[UpdateRecord]) -> None:
    if records:
        (actor,) = conn.execute("SELECT actor FROM history_context").fetchone()
        conn.executemany(
            "INSERT INTO contact_changes (list_id, email_key, at, actor, op, unsub_before, topics_before, "
            f"attributes_before, unsub_after, topics_after, attributes_after) VALUES ({int(list_id)}, ?, ?, "
            f"{int(actor)}, 2, ?, ?, ?, ?, ?, ?)",
            records,
        )


def record_deleting(conn: sqlite3.Connection, list_id: int, keys_json: str, at: float) -> None:
    """The contacts among ``keys_json`` (a JSON array of keys) as they are, before the caller deletes them."""
    conn.execute(
        "INSERT INTO contact_changes (list_id, email_key, at, actor, op, email, created, unsub_before, "
        "topics_before, attributes_before) SELECT c.list_id, c.email_key, ?, h.actor, 3, c.email, c.created, "
        "c.unsubscribe_all, c.topics, c.attributes FROM history_context AS h, contacts AS c "
        "WHERE c.list_id = ? AND c.email_key IN (SELECT value FROM json_each(?))",
        (at, list_id, keys_json),
    )


# Listed in schema.PRODUCT_SCHEMA. Never edit or reorder these steps: versions count per owner.
MIGRATIONS = Migrations("history", (_schema_v1,), on_begin=(set_actor,))

_SELECT = (
    "SELECT c.id, coalesce(l.name, ''), coalesce(c.email, c.email_key), c.at, a.kind, a.name, a.job, c.op, "
    "c.created, c.unsub_before, c.topics_before, c.attributes_before, c.unsub_after, c.topics_after, "
    "c.attributes_after, c.email_key, c.keys FROM contact_changes AS c JOIN history_actors AS a ON a.id = c.actor "
    "LEFT JOIN contact_lists AS l ON l.id = c.list_id"
)


def _fields(op: ChangeOp, unsub: Any, topics: Any, attributes: Any) -> dict[str, object]:
    """One side of a change as fields by name: an update's changed ones (a NULL is unchanged, except that
    topics and attributes may change to or from NULL: then the other side is set), a deletion's all."""
    fields: dict[str, object] = {}
    if unsub is not None:
        fields[UNSUBSCRIBE_ALL] = bool(unsub)
    if topics is not None or op == "deleted":
        fields[TOPIC_PREFERENCES] = orjson.loads(topics) if topics else {}
    if attributes is not None or op == "deleted":
        fields[ATTRIBUTES] = attributes
    return fields


def changes_from_row(row: Sequence[Any], only_key: str | None = None) -> list[Change]:
    """The changes one row records: one, or a batch's creations, one per key (``only_key``: that one alone)."""
    (cid, list_name, email, at, kind, name, job, op_code, created, *sides) = row
    keys_json = sides.pop()
    sides.pop()  # the row's own key, already in ``email`` when the row is one contact's
    op = _OPS_BY_CODE[int(op_code)]
    before = _fields(op, *sides[:3])
    after = _fields(op, *sides[3:])
    if op == "updated":  # a field that changed to or from NULL shows on both sides
        for field in (TOPIC_PREFERENCES, ATTRIBUTES):
            if (field in before) != (field in after):
                (after if field in before else before)[field] = {} if field == TOPIC_PREFERENCES else None
    keys = [email] if keys_json is None else orjson.loads(keys_json)
    if only_key is not None:
        keys = [key for key in keys if key == only_key] if keys_json is not None else keys
    actor = Actor(kind, name, job)
    return [
        Change(
            id=int(cid),
            list_name=str(list_name),
            email=str(key).rpartition(SPELLING_SEPARATOR)[2],
            at=float(at),
            actor=actor,
            op=op,
            before=before,
            after=after,
            created=float(created) if created is not None else None,
        )
        for key in keys
    ]


def _position(token: str | None) -> tuple[int, int] | None:
    """A page token: the id of the row to go on from (inclusive) and how many of its changes were shown."""
    if token is None:
        return None
    row_id, _, shown = token.partition(".")
    if not row_id.isdigit() or not shown.isdigit():
        raise BadRequest("Provided NextToken is invalid.", field="NextToken")
    return int(row_id), int(shown)


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
            where.append(f"c.op IN ({', '.join(str(OP_CODES[op]) for op in query.ops)})")
        if query.since is not None:
            where.append("c.at >= ?")
            params.append(query.since)
        if query.until is not None:
            where.append("c.at < ?")
            params.append(query.until)
        if position is not None:
            where.append("c.id <= ?")
            params.append(position[0])
        rows = conn.execute(
            f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY c.id DESC LIMIT ?", (*params, page_size + 1)
        ).fetchall()
        items: list[Change] = []
        for row in rows:
            found = changes_from_row(row, key)
            shown = position[1] if position is not None and row[0] == position[0] else 0
            room = page_size - len(items)
            items.extend(found[shown : shown + room])
            if len(found) - shown > room:  # the page ends inside this row (a batch's creations)
                return Page(items, f"{row[0]}.{shown + room}")
            if len(items) == page_size:
                more = row is not rows[-1]
                return Page(items, f"{rows[rows.index(row) + 1][0]}.0" if more else None)
        return Page(items)

    def contact_history(self, list_name: str, email: str, *, limit: int = 100) -> list[Change]:
        """Every recorded change of the contact ``email`` is (or was), newest first, at most ``limit``:
        updates and deletions by the per-contact index, creations by the creation times the contact and its
        deletions name (see the module's docstring)."""
        conn = self.db.reader()
        list_id = self._list_id(conn, list_name)
        if list_id is None:
            return []
        key = self.identity.key(email)
        rows = conn.execute(
            f"{_SELECT} WHERE c.list_id = ? AND c.email_key = ? AND c.op != 1 ORDER BY c.id DESC LIMIT ?",
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
                f"{_SELECT} WHERE c.list_id = ? AND c.op = 1 AND c.at IN (SELECT value FROM json_each(?)) "
                "AND (c.email_key = ? OR (c.email_key = '' AND ? IN (SELECT value FROM json_each(c.keys))))",
                (list_id, orjson.dumps(sorted(created_times)).decode(), key, key),
            ).fetchall()
        changes = sorted((c for row in rows for c in changes_from_row(row, key)), key=lambda c: c.id, reverse=True)
        return changes[:limit]

    def job_changes(self, job: str, *, before_id: int | None = None, limit: int = 1000) -> list[Change]:
        """The changes job ``job`` made (any list), newest first, those with an id below ``before_id``: what an
        undo walks back, batch by batch. ``limit`` counts recorded rows: a batch's creations are one row (its
        changes share its id)."""
        conn = self.db.reader()
        # One actor at a time: each query walks its (actor, id) index in order and stops at ``limit``, where
        # ``actor IN (...)`` sorted every row of the job below ``before_id`` for each batch of an undo.
        rows = []
        for (actor,) in conn.execute("SELECT id FROM history_actors WHERE job = ?", (job,)).fetchall():
            rows += conn.execute(
                f"{_SELECT} WHERE c.actor = ? AND c.id < ? ORDER BY c.id DESC LIMIT ?",
                (actor, before_id if before_id is not None else 1 << 62, limit),
            ).fetchall()
        rows.sort(key=lambda row: int(row[0]), reverse=True)
        return [change for row in rows[:limit] for change in changes_from_row(row)]

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
            f"{_SELECT} WHERE c.list_id = ? AND c.email_key = ? AND c.op != 1 AND c.id > ? "
            "AND a.job NOT IN (SELECT value FROM json_each(?)) ORDER BY c.id LIMIT 1",
            (list_id, key, change.id, ignored),
        ).fetchone()
        if row is not None:
            return changes_from_row(row)[0]
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
            f"{_SELECT} WHERE c.list_id = ? AND c.op = 1 AND c.at = ? AND c.id > ? "
            "AND (c.email_key = ? OR (c.email_key = '' AND ? IN (SELECT value FROM json_each(c.keys)))) "
            "ORDER BY c.id DESC LIMIT 1",
            (list_id, current[0], change.id, key, key),
        ).fetchone()
        if created is None:
            return Change(0, change.list_name, change.email, float(current[0]), SYSTEM, "created", {}, {})
        found = changes_from_row(created, key)[0]
        return None if found.actor.job and found.actor.job in ignore_jobs else found

    def later_changes(self, changes: Sequence[Change], *, ignore_jobs: Sequence[str] = ()) -> list[Change | None]:
        """:meth:`later_change` of each of ``changes``, in order: one query a list for the lot (an undo's batch),
        then a look at the contacts for the deletions without a later row."""
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
            pairs = [[self.identity.key(changes[i].email), changes[i].id] for i in indexes]
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
            wanted = sorted({i for i in later_ids if i is not None})
            rows = conn.execute(
                f"{_SELECT} WHERE c.id IN (SELECT value FROM json_each(?))", (orjson.dumps(wanted).decode(),)
            ).fetchall()
            by_id = {int(row[0]): changes_from_row(row)[0] for row in rows}
            for index, later_id in zip(indexes, later_ids, strict=True):
                if later_id is not None:
                    found[index] = by_id[int(later_id)]
                elif changes[index].op == "deleted":
                    found[index] = self.later_change(changes[index], ignore_jobs=ignore_jobs)
        return found

    def prune(self, older_than: float, *, limit: int = 10_000) -> int:
        """Delete up to ``limit`` changes recorded before ``older_than``, oldest first; how many."""
        with self.db.write() as conn:
            cursor = conn.execute(
                "DELETE FROM contact_changes WHERE id IN (SELECT id FROM contact_changes WHERE at < ? "
                "ORDER BY at LIMIT ?)",
                (older_than, limit),
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
