"""Server-side sessions: a login is valid only while its session id has a row in ``console_sessions``.

Logging out deletes the row (a copied cookie stops working with it); "log out everywhere", a password change
and removing the user delete all of that user's rows; a row older than SESSION_MAX_AGE is dead and pruned.
The table keeps a digest of each id, not the id. The cookie that carries the id is the console's
(``console/auth.py``).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass

from ..db import Database, run_script
from .model import User

SESSION_MAX_AGE = 12 * 3600
# How often a session's last_seen is written: every request would be a database write per page view.
LAST_SEEN_EVERY = 300.0


def create_sessions_table(conn: sqlite3.Connection) -> None:
    """The "console" owner's step 3 (schema.py)."""
    run_script(
        conn,
        """
        CREATE TABLE console_sessions (
            id TEXT PRIMARY KEY,
            user TEXT NOT NULL,
            created REAL NOT NULL,
            last_seen REAL NOT NULL
        );
        CREATE INDEX console_sessions_user ON console_sessions (user);
        CREATE INDEX console_sessions_created ON console_sessions (created);
        """,
    )


def _session_key(sid: str) -> str:
    """The table keeps a digest of each session id, so a copy of the database holds no live session."""
    return hashlib.sha256(sid.encode()).hexdigest()


def end_user_sessions(conn: sqlite3.Connection, name: str) -> int:
    """Log ``name`` out on every browser (inside the caller's write transaction)."""
    return conn.execute("DELETE FROM console_sessions WHERE user = ?", (name,)).rowcount


@dataclass(frozen=True)
class ActiveSession:
    user: User
    last_seen: float


class Sessions:
    """Logins that are still valid, server-side: a signed cookie alone is not enough to be logged in."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, user: User) -> str | None:
        """A new session for ``user`` as its password was checked; returns the id for the cookie, or None.

        None when the account changed since the check (password set, user removed or re-added): the change
        ended every session in its transaction, and a login that checked the old password ~100 ms earlier
        must not open one after it. Checked in the same write transaction as the insert, so no change can
        fall between. Expired sessions are pruned here.
        """
        sid = secrets.token_urlsafe(32)
        now = time.time()
        with self.db.write() as conn:
            conn.execute("DELETE FROM console_sessions WHERE created <= ?", (now - SESSION_MAX_AGE,))
            inserted = conn.execute(
                "INSERT INTO console_sessions (id, user, created, last_seen) SELECT ?, name, ?, ? "
                "FROM console_users WHERE name = ? AND password_hash = ?",
                (_session_key(sid), now, now, user.name, user.password_hash),
            ).rowcount
        return sid if inserted else None

    def find(self, sid: str) -> ActiveSession | None:
        """The user of a live session (younger than SESSION_MAX_AGE), or None when it ended."""
        row = (
            self.db.reader()
            .execute(
                "SELECT u.name, u.password_hash, u.created, s.last_seen FROM console_sessions s "
                "JOIN console_users u ON u.name = s.user WHERE s.id = ? AND s.created > ?",
                (_session_key(sid), time.time() - SESSION_MAX_AGE),
            )
            .fetchone()
        )
        return ActiveSession(User(*row[:3]), row[3]) if row else None

    def touch(self, sid: str) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE console_sessions SET last_seen = ? WHERE id = ?", (time.time(), _session_key(sid)))

    def end(self, sid: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM console_sessions WHERE id = ?", (_session_key(sid),))

    def end_all(self, user: str) -> int:
        with self.db.write() as conn:
            return end_user_sessions(conn, user)

    def count(self, user: str) -> int:
        row = (
            self.db.reader()
            .execute(
                "SELECT count(*) FROM console_sessions WHERE user = ? AND created > ?",
                (user, time.time() - SESSION_MAX_AGE),
            )
            .fetchone()
        )
        return int(row[0])
