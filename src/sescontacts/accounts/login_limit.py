"""Login rate limiting: failed attempts recorded in ``console_login_attempts``, per name and address."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from ..db import Database, run_script

PAIR_ATTEMPTS = 5  # failed logins per (user name, client address) in LOGIN_WINDOW
ADDRESS_ATTEMPTS = 20  # failed logins per client address, whatever the names: against spraying many names
LOGIN_WINDOW = 300.0
_MAX_NAME_KEY = 80  # longer names cannot exist (check_user_name); keep what is stored bounded


def create_login_attempts_table(conn: sqlite3.Connection) -> None:
    """The "console" owner's step 2 (schema.py)."""
    run_script(
        conn,
        """
        CREATE TABLE console_login_attempts (
            address TEXT NOT NULL,
            user TEXT NOT NULL,
            at REAL NOT NULL
        );
        CREATE INDEX console_login_attempts_key ON console_login_attempts (address, user, at);
        """,
    )


def clear_login_attempts(conn: sqlite3.Connection) -> None:
    """Forget every recorded login attempt: an operator who set a password lifts every lockout with it.

    All of them, not only that user's: a spray of names from the admin's own address (every local user is
    127.0.0.1) locks the admin out by the per-address limit, which no single user's record would clear.
    """
    conn.execute("DELETE FROM console_login_attempts")


@dataclass(frozen=True)
class Attempt:
    """A login attempt reserved before its password is hashed; ``retry_after`` > 0 means it was refused."""

    address: str
    user: str
    retry_after: int = 0


class LoginLimiter:
    """At most PAIR_ATTEMPTS failed logins per (user name, client address), ADDRESS_ATTEMPTS per address.

    An attempt is counted *before* its password is hashed, in one write transaction that checks the counts
    and records the attempt (so twenty parallel guesses cannot all pass the check while the first hashes);
    a successful login then deletes its pair's records. Keying on the pair, not the name alone, means guesses
    from one address cannot lock the admin out everywhere; the looser per-address count stops one address
    trying one password on many names.

    The records live in the database rather than in memory or keyed to the password hash: ``sescontacts
    users set-password`` runs in another process and lifts a lockout by deleting them
    (:func:`clear_login_attempts`), which also covers the per-address count that no password belongs to;
    and a restart does not reset the count.
    """

    def __init__(
        self,
        db: Database,
        pair_attempts: int = PAIR_ATTEMPTS,
        address_attempts: int = ADDRESS_ATTEMPTS,
        window: float = LOGIN_WINDOW,
    ) -> None:
        self.db = db
        self.pair_attempts = pair_attempts
        self.address_attempts = address_attempts
        self.window = window

    def reserve(self, address: str, name: str) -> Attempt:
        """Record an attempt now, or refuse it (``retry_after`` seconds) when a limit is reached."""
        user = name.lower()[:_MAX_NAME_KEY]
        now = time.time()
        cutoff = now - self.window
        with self.db.write() as conn:
            conn.execute("DELETE FROM console_login_attempts WHERE at <= ?", (cutoff,))
            waits = [
                self._wait(conn, now, "address = ? AND user = ?", (address, user), self.pair_attempts),
                self._wait(conn, now, "address = ?", (address,), self.address_attempts),
            ]
            if max(waits):
                return Attempt(address, user, retry_after=max(waits))
            conn.execute(
                "INSERT INTO console_login_attempts (address, user, at) VALUES (?, ?, ?)", (address, user, now)
            )
        return Attempt(address, user)

    def _wait(self, conn: sqlite3.Connection, now: float, where: str, args: tuple[str, ...], limit: int) -> int:
        """Seconds until fewer than ``limit`` attempts matching ``where`` are in the window (0: allowed now)."""
        times = [
            row[0] for row in conn.execute(f"SELECT at FROM console_login_attempts WHERE {where} ORDER BY at", args)
        ]
        if len(times) < limit:
            return 0
        return int(times[len(times) - limit] + self.window - now) + 1

    def succeeded(self, attempt: Attempt) -> None:
        """The right password: this name's failures from this address are forgiven."""
        with self.db.write() as conn:
            conn.execute(
                "DELETE FROM console_login_attempts WHERE address = ? AND user = ?", (attempt.address, attempt.user)
            )
