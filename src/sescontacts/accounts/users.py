"""The console's users: add, list, change a password, remove, check a login.

Users live in the product's SQLite file (table ``console_users``, migrations owned by "console", see
``schema.py``), so the CLI (``sescontacts users``) and a running server see the same accounts. A password
change or removing a user ends that user's sessions (``sessions.py``) in the same transaction; a password
change also lifts every login lockout (``login_limit.py``).
"""

from __future__ import annotations

import secrets
import sqlite3
import time

from ..db import Database, run_script
from ..errors import BadRequest, NotFound
from .login_limit import clear_login_attempts
from .model import User
from .passwords import check_new_password, check_user_name, dummy_hash, hash_password, verify_password
from .sessions import end_user_sessions

ADMIN = "admin"


def create_users_table(conn: sqlite3.Connection) -> None:
    """The "console" owner's step 1 (schema.py). It also seeds the key that signs the console's session cookie
    (``console/auth.py``): a shipped step, so it stays as it was written."""
    run_script(
        conn,
        """
        CREATE TABLE console_users (
            name TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL
        );
        """,
    )
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('console_session_secret', ?)", (secrets.token_hex(32),)
    )


class Users:
    """The console's accounts, on the shared database; passwords hashed by ``passwords.py``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, name: str) -> User | None:
        row = (
            self.db.reader()
            .execute("SELECT name, password_hash, created FROM console_users WHERE name = ?", (name,))
            .fetchone()
        )
        return User(*row) if row else None

    def list(self) -> list[User]:
        rows = self.db.reader().execute("SELECT name, password_hash, created FROM console_users ORDER BY name")
        return [User(*row) for row in rows]

    def add(self, name: str, password: str) -> User:
        check_user_name(name)
        check_new_password(password)
        encoded = hash_password(password)
        now = time.time()
        with self.db.write() as conn:
            if conn.execute("SELECT 1 FROM console_users WHERE name = ?", (name,)).fetchone():
                raise BadRequest(f"User {name} already exists.", field="username")
            conn.execute(
                "INSERT INTO console_users (name, password_hash, created, updated) VALUES (?, ?, ?, ?)",
                (name, encoded, now, now),
            )
        return User(name, encoded, now)

    def set_password(self, name: str, password: str) -> None:
        """A new password ends the user's sessions everywhere and lifts every login lockout."""
        check_new_password(password)
        encoded = hash_password(password)
        with self.db.write() as conn:
            cursor = conn.execute(
                "UPDATE console_users SET password_hash = ?, updated = ? WHERE name = ?", (encoded, time.time(), name)
            )
            if cursor.rowcount == 0:
                raise NotFound(f"No user named {name}.", field="username")
            end_user_sessions(conn, name)
            clear_login_attempts(conn)

    def remove(self, name: str) -> None:
        with self.db.write() as conn:
            if conn.execute("DELETE FROM console_users WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"No user named {name}.", field="username")
            end_user_sessions(conn, name)

    def authenticate(self, name: str, password: str) -> User | None:
        user = self.get(name)
        if user is None:
            verify_password(password, dummy_hash())
            return None
        return user if verify_password(password, user.password_hash) else None

    def ensure_admin(self, password: str | None) -> str | None:
        """On first start, create ``admin``. Returns the generated password (to print once), else None.

        With ``password`` given (SESCONTACTS_ADMIN_PASSWORD) it is used as is; nothing is printed then.
        An existing user table is left alone: the variable only seeds the first account.
        """
        if self.list():
            return None
        generated = None
        if not password:
            generated = password = secrets.token_urlsafe(15)
        self.add(ADMIN, password)
        return generated
