"""An undo's conflicts: the contacts changed again after the undone job, kept apart for the user to decide.

The table ``undo_conflicts`` (schema owner "undo") holds one row per undo job and contact: what the contact is
now (when the undo reached it), what the undo would restore, who changed it after the job and when, and what
became of it (``open``: left as it is, waiting for the user; ``restored``: the undo or the user restored it;
``kept``: the user kept the current state). :mod:`.undo` writes the rows in the transaction of the batch that
met them, so a resumed undo neither loses nor repeats one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from ..db import Migrations, run_script
from ..errors import BadRequest
from ..history import Actor, ChangeOp
from ..model import Contact, Page

ConflictState = Literal["open", "restored", "kept"]
CONFLICT_STATES: Final[tuple[ConflictState, ...]] = ("open", "restored", "kept")


def _schema_v1(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE undo_conflicts (
            id INTEGER PRIMARY KEY,
            undo_job TEXT NOT NULL,
            list_name TEXT NOT NULL,
            email_key TEXT NOT NULL,
            email TEXT NOT NULL,
            op TEXT NOT NULL,
            later_kind TEXT NOT NULL,
            later_name TEXT NOT NULL,
            later_job TEXT NOT NULL,
            later_at REAL NOT NULL,
            current TEXT,
            restore TEXT,
            state TEXT NOT NULL DEFAULT 'open',
            resolved REAL,
            UNIQUE (undo_job, list_name, email_key)
        );
        """,
    )


# Listed in schema.PRODUCT_SCHEMA. Never edit or reorder these steps: versions count per owner.
MIGRATIONS = Migrations("undo", (_schema_v1,))


@dataclass(frozen=True, slots=True)
class Conflict:
    """One contact an undo did not simply take back: changed again after the undone job (by ``later_actor``
    at ``later_at``). ``current``: the contact when the undo reached it (None: it did not exist); ``restore``:
    what undoing the job gives it (None: it would not exist). ``op``: what the job had done to it (its oldest
    change, when it changed the contact more than once)."""

    id: int
    undo_job: str
    list_name: str
    email: str
    op: ChangeOp
    later_actor: Actor
    later_at: float
    current: Contact | None
    restore: Contact | None
    state: ConflictState
    resolved: float | None


def contact_json(contact: Contact | None) -> str | None:
    if contact is None:
        return None
    return orjson.dumps(
        {
            "email": contact.email,
            "unsubscribe_all": contact.unsubscribe_all,
            "topic_preferences": dict(contact.topic_preferences),
            "attributes": contact.attributes_data,
        }
    ).decode()


def contact_from_json(text: str | None) -> Contact | None:
    if text is None:
        return None
    data = orjson.loads(text)
    return Contact(data["email"], bool(data["unsubscribe_all"]), dict(data["topic_preferences"]), data["attributes"])


_COLUMNS = (
    "id, undo_job, list_name, email, op, later_kind, later_name, later_job, later_at, current, restore, state, resolved"
)


def _conflict(row: Sequence[Any]) -> Conflict:
    (cid, job, list_name, email, op, kind, name, later_job, at, current, restore, state, resolved) = row
    return Conflict(
        id=int(cid),
        undo_job=job,
        list_name=list_name,
        email=email,
        op=op,
        later_actor=Actor(kind, name, later_job),
        later_at=float(at),
        current=contact_from_json(current),
        restore=contact_from_json(restore),
        state=state,
        resolved=resolved,
    )


def record(conn: sqlite3.Connection, undo_job: str, key: str, conflict: Conflict) -> None:
    """Record ``conflict`` (in the caller's transaction). A contact met again (the job changed it more than
    once) keeps its first ``current`` and takes the new, older ``restore`` and ``op``."""
    actor = conflict.later_actor
    conn.execute(
        "INSERT INTO undo_conflicts (undo_job, list_name, email_key, email, op, later_kind, later_name, later_job, "
        "later_at, current, restore, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (undo_job, list_name, email_key) DO UPDATE SET op = excluded.op, restore = excluded.restore, "
        "state = excluded.state",
        (
            undo_job,
            conflict.list_name,
            key,
            conflict.email,
            conflict.op,
            actor.kind,
            actor.name,
            actor.job,
            conflict.later_at,
            contact_json(conflict.current),
            contact_json(conflict.restore),
            conflict.state,
        ),
    )


def find(conn: sqlite3.Connection, undo_job: str, list_name: str, key: str) -> Conflict | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM undo_conflicts WHERE undo_job = ? AND list_name = ? AND email_key = ?",
        (undo_job, list_name, key),
    ).fetchone()
    return _conflict(row) if row else None


def page(
    conn: sqlite3.Connection,
    undo_job: str,
    *,
    page_size: int,
    token: str | None,
    state: ConflictState | None = None,
    keys: Sequence[str] | None = None,
) -> Page[Conflict]:
    """The undo's conflicts in the order it met them (newest change first), one page; ``state`` and ``keys``
    (the contacts' keys) narrow it. The token is the last id shown."""
    if token is not None and not token.isdigit():
        raise BadRequest("Provided NextToken is invalid.", field="NextToken")
    where = ["undo_job = ?", "id > ?"]
    params: list[object] = [undo_job, int(token or 0)]
    if state is not None:
        where.append("state = ?")
        params.append(state)
    if keys is not None:
        where.append("email_key IN (SELECT value FROM json_each(?))")
        params.append(orjson.dumps(list(keys)).decode())
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM undo_conflicts WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
        (*params, page_size + 1),
    ).fetchall()
    items = [_conflict(row) for row in rows[:page_size]]
    return Page(items, str(items[-1].id) if len(rows) > page_size else None)


def counts(conn: sqlite3.Connection, undo_job: str) -> dict[str, int]:
    """How many conflicts the undo has in each state."""
    found: dict[str, int] = dict.fromkeys(CONFLICT_STATES, 0)
    for state, count in conn.execute(
        "SELECT state, count(*) FROM undo_conflicts WHERE undo_job = ? GROUP BY state", (undo_job,)
    ):
        found[state] = int(count)
    return found


def mark(conn: sqlite3.Connection, ids: Sequence[int], state: ConflictState, at: float) -> None:
    conn.execute(
        "UPDATE undo_conflicts SET state = ?, resolved = ? WHERE id IN (SELECT value FROM json_each(?))",
        (state, at, orjson.dumps(list(ids)).decode()),
    )
