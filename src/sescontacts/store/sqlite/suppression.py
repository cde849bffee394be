"""The suppression list in SQLite (schema owner "suppression"): the local backend's own, and the ses
backend's mirror of SES's.

``suppressed_destinations`` is keyed by the folded address (WITHOUT ROWID, so a page in address order is a
range scan and the contacts page's "suppressed" filter is one probe per contact), with an index by
LastUpdateTime for ListSuppressedDestinations' StartDate/EndDate and the mirror's incremental walk.
``account_suppression`` holds the account's SuppressedReasons (one row; SES's default for a new account is
both reasons).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence

import orjson

from ...db import Database, Migrations, run_script
from ...errors import NotFound
from ...model import Page, email_key
from ...suppression import SUPPRESSION_REASONS, SuppressedDestination, SuppressionQuery, check_reason
from ..base import check_page_size
from ..tokens import TokenCodec


def _schema_v1(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE suppressed_destinations (
            email_key TEXT PRIMARY KEY,
            email TEXT NOT NULL,
            reason TEXT NOT NULL,
            last_update_time REAL NOT NULL,
            message_id TEXT,
            feedback_id TEXT
        ) WITHOUT ROWID;
        CREATE INDEX suppressed_by_time ON suppressed_destinations (last_update_time, email_key);
        CREATE TABLE account_suppression (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            reasons TEXT NOT NULL
        );
        """,
    )
    conn.execute("INSERT INTO account_suppression (id, reasons) VALUES (1, ?)", (orjson.dumps(SUPPRESSION_REASONS),))


def _schema_v2(conn: sqlite3.Connection) -> None:
    """The ses backend's walk of ListSuppressedDestinations, checkpointed so that a killed process resumes it:
    ``suppression_sync`` (one row) holds the walk under way (its kind, StartDate and NextToken), what the last
    ones did, and ``high_water``: when the last complete walk began (the next incremental walk's StartDate, less
    an overlap); ``suppression_sync_seen`` the addresses a full walk listed, so that its end removes only
    the entries SES no longer has."""
    run_script(
        conn,
        """
        CREATE TABLE suppression_sync (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            state TEXT NOT NULL DEFAULT 'idle',
            kind TEXT,
            start_date REAL,
            next_token TEXT,
            started REAL,
            pages INTEGER NOT NULL DEFAULT 0,
            seen INTEGER NOT NULL DEFAULT 0,
            stored INTEGER NOT NULL DEFAULT 0,
            removed INTEGER NOT NULL DEFAULT 0,
            calls INTEGER NOT NULL DEFAULT 0,
            high_water REAL,
            last_synced REAL,
            last_full REAL,
            last_duration REAL,
            last_error TEXT
        );
        CREATE TABLE suppression_sync_seen (email_key TEXT PRIMARY KEY) WITHOUT ROWID;
        """,
    )


def _by_reason_v3(conn: sqlite3.Connection) -> None:
    """Counts by reason (the Suppression page, ListSuppressedDestinations' Reasons) read an index, not every
    entry: 2 ms against 9 ms for 110,000 entries."""
    conn.execute("CREATE INDEX suppressed_by_reason ON suppressed_destinations (reason)")


MIGRATIONS = Migrations("suppression", (_schema_v1, _schema_v2, _by_reason_v3))

_COLUMNS = "email, reason, last_update_time, message_id, feedback_id"


def _entry(row: tuple[str, str, float, str | None, str | None]) -> SuppressedDestination:
    return SuppressedDestination(*row)


def _where(query: SuppressionQuery) -> tuple[list[str], list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if query.reasons:
        clauses.append(f"reason IN ({', '.join('?' * len(query.reasons))})")
        params.extend(query.reasons)
    if query.start is not None:
        clauses.append("last_update_time >= ?")
        params.append(query.start)
    if query.end is not None:
        clauses.append("last_update_time <= ?")
        params.append(query.end)
    if query.email_contains:
        clauses.append("instr(email_key, ?) > 0")
        params.append(email_key(query.email_contains))
    return clauses, params


class SqliteSuppressionList:
    """:class:`~sescontacts.store.base.SuppressionList` on the product database. The ses backend's
    implementation keeps this one as its mirror, writing what SES answered with :meth:`store_entries` and
    :meth:`remove_entries`."""

    def __init__(self, db: Database, *, clock: Callable[[], float] | None = None) -> None:
        self.db = db
        self._now = clock or time.time
        self._tokens = TokenCodec(db.meta("token_secret") or "")

    # -- the Protocol ------------------------------------------------------------------------------------

    def put_suppressed(
        self, email: str, reason: str, *, message_id: str | None = None, feedback_id: str | None = None
    ) -> SuppressedDestination:
        entry = SuppressedDestination(email, check_reason(reason), self._now(), message_id, feedback_id)
        self.store_entries([entry])
        return self.get_suppressed(email)

    def get_suppressed(self, email: str) -> SuppressedDestination:
        with self.db.snapshot() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM suppressed_destinations WHERE email_key = ?", (email_key(email),)
            ).fetchone()
        if row is None:
            raise NotFound(f"Email address {email} does not exist on your suppression list.", field="EmailAddress")
        return _entry(row)

    def delete_suppressed(self, email: str) -> None:
        with self.db.write() as conn:
            gone = conn.execute("DELETE FROM suppressed_destinations WHERE email_key = ?", (email_key(email),))
            if not gone.rowcount:
                raise NotFound(f"Email address {email} does not exist on your suppression list.", field="EmailAddress")

    def list_suppressed(
        self, query: SuppressionQuery, *, page_size: int | None = None, token: str | None = None
    ) -> Page[SuppressedDestination]:
        size = check_page_size(page_size)
        scope = (
            "suppressed:" + orjson.dumps([sorted(query.reasons), query.start, query.end, query.email_contains]).decode()
        )
        after = str(self._tokens.decode(scope, token)[0]) if token else ""
        clauses, params = _where(query)
        clauses.append("email_key > ?")
        params.append(after)
        with self.db.snapshot() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS}, email_key FROM suppressed_destinations WHERE {' AND '.join(clauses)} "
                "ORDER BY email_key LIMIT ?",
                (*params, size + 1),
            ).fetchall()
        items = [_entry(row[:5]) for row in rows[:size]]
        next_token = self._tokens.encode(scope, [rows[size - 1][5]]) if len(rows) > size else None
        return Page(items, next_token)

    def count_suppressed(self, query: SuppressionQuery) -> int:
        clauses, params = _where(query)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.db.snapshot() as conn:
            (count,) = conn.execute(f"SELECT count(*) FROM suppressed_destinations {where}", params).fetchone()
        return int(count)

    def suppressed_among(self, emails: Sequence[str]) -> dict[str, SuppressedDestination]:
        keys = sorted({email_key(e) for e in emails})
        found: dict[str, SuppressedDestination] = {}
        with self.db.snapshot() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                for row in conn.execute(
                    f"SELECT {_COLUMNS}, email_key FROM suppressed_destinations "
                    f"WHERE email_key IN ({', '.join('?' * len(chunk))})",
                    chunk,
                ):
                    found[row[5]] = _entry(row[:5])
        return found

    def suppressed_reasons(self) -> tuple[str, ...]:
        with self.db.snapshot() as conn:
            row = conn.execute("SELECT reasons FROM account_suppression WHERE id = 1").fetchone()
        return tuple(orjson.loads(row[0])) if row else ()

    def set_suppressed_reasons(self, reasons: Sequence[str]) -> None:
        chosen = [r for r in SUPPRESSION_REASONS if r in {check_reason(r, field="SuppressedReasons") for r in reasons}]
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO account_suppression (id, reasons) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET reasons = excluded.reasons",
                (orjson.dumps(chosen),),
            )

    # -- the mirror's writes (ses backend) ------------------------------------------------------------

    def store_entries(self, entries: Iterable[SuppressedDestination]) -> int:
        """Insert or replace entries as given (their own LastUpdateTime): a put, or what SES listed. The first
        spelling written is kept."""
        rows = [
            (email_key(e.email), e.email, check_reason(e.reason), e.last_update_time, e.message_id, e.feedback_id)
            for e in entries
        ]
        with self.db.write() as conn:
            conn.executemany(
                "INSERT INTO suppressed_destinations (email_key, email, reason, last_update_time, message_id, "
                "feedback_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (email_key) DO UPDATE SET "
                "reason = excluded.reason, last_update_time = excluded.last_update_time, "
                "message_id = excluded.message_id, feedback_id = excluded.feedback_id",
                rows,
            )
        return len(rows)

    def remove_entries(self, emails: Iterable[str]) -> int:
        """Remove the entries of ``emails`` (those SES no longer lists); how many were there."""
        with self.db.write() as conn:
            return sum(
                conn.execute("DELETE FROM suppressed_destinations WHERE email_key = ?", (email_key(e),)).rowcount
                for e in emails
            )

    def remove_unlisted(self, *, updated_before: float) -> int:
        """The end of the ses mirror's full walk: remove the entries it did not list (``suppression_sync_seen``)
        that nobody wrote since it began (``updated_before``); how many."""
        with self.db.write() as conn:
            return conn.execute(
                "DELETE FROM suppressed_destinations WHERE last_update_time < ? AND email_key NOT IN "
                "(SELECT email_key FROM suppression_sync_seen)",
                (updated_before,),
            ).rowcount
