"""Console users, password hashing, signed session cookies and login rate limiting.

Users live in the product's SQLite file (table ``console_users``, migrations owned by "console"), so the
CLI (``sescontacts users``) and a running server see the same accounts. Passwords are hashed with scrypt
at parameters that cost ~100 ms and 32 MiB per guess, which is what makes a stolen database expensive to
attack; the parameters are stored with each hash so they can be raised later without breaking old hashes.

The session cookie holds the user name, a fingerprint of the password hash and a CSRF secret, signed with
a key kept in the database. Changing a password or removing a user therefore ends that user's sessions
everywhere, without a server-side session table.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..db import Database, register_migrations, run_script
from ..errors import BadRequest, NotFound

ADMIN = "admin"
SESSION_COOKIE = "sescontacts_session"
SESSION_MAX_AGE = 12 * 3600
MIN_PASSWORD_LENGTH = 8
# scrypt: N=2^15, r=8, p=1 needs 32 MiB and ~0.1 s; an offline attacker pays that per guess.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def _schema_v1(conn: sqlite3.Connection) -> None:
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


register_migrations("console", [_schema_v1])


# -- passwords -----------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` so verification knows the parameters each hash was made with."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=_SCRYPT_MAXMEM, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash of a random password, verified against when the user does not exist, so that a login for an
# unknown name takes as long as one for a known name (no user enumeration by timing).
_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(8))
    return _DUMMY_HASH


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(f"The password must be at least {MIN_PASSWORD_LENGTH} characters.", field="password")


def check_user_name(name: str) -> None:
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-@" for c in name):
        raise BadRequest("A user name is 1 to 64 letters, digits, dots, dashes, underscores or @.", field="username")


# -- users ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str
    created: float

    @property
    def fingerprint(self) -> str:
        """Changes whenever the password does; sessions carry it so a new password ends old sessions."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]


class Users:
    """The console's accounts, on the shared database (the console's only table of its own)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        if db.schema_version("console") < 1:
            db.migrate()

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
        check_new_password(password)
        encoded = hash_password(password)
        with self.db.write() as conn:
            cursor = conn.execute(
                "UPDATE console_users SET password_hash = ?, updated = ? WHERE name = ?", (encoded, time.time(), name)
            )
            if cursor.rowcount == 0:
                raise NotFound(f"No user named {name}.", field="username")

    def remove(self, name: str) -> None:
        with self.db.write() as conn:
            if conn.execute("DELETE FROM console_users WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"No user named {name}.", field="username")

    def authenticate(self, name: str, password: str) -> User | None:
        user = self.get(name)
        if user is None:
            verify_password(password, _dummy_hash())
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


# -- sessions ------------------------------------------------------------------------------------------


@dataclass
class Session:
    """What the cookie says: who is logged in (if anyone) and this browser's CSRF secret."""

    csrf: str
    user: str | None = None
    fingerprint: str | None = None
    flash: str | None = None  # a one-time message for the next page ("Deleted 3 contacts.")
    dirty: bool = False

    def pop_flash(self) -> str | None:
        message, self.flash = self.flash, None
        if message:
            self.dirty = True
        return message


class SessionCodec:
    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="sescontacts.console.session")

    def load(self, cookie: str | None) -> Session:
        """A valid session from the cookie, or a fresh anonymous one (with a new CSRF secret)."""
        if cookie:
            try:
                data = self._serializer.loads(cookie, max_age=SESSION_MAX_AGE)
            except BadSignature:
                data = None
            if isinstance(data, dict) and isinstance(data.get("c"), str):
                return Session(csrf=data["c"], user=data.get("u"), fingerprint=data.get("f"), flash=data.get("m"))
        return Session(csrf=secrets.token_urlsafe(24), dirty=True)

    def dump(self, session: Session) -> str:
        data = {"c": session.csrf, "u": session.user, "f": session.fingerprint}
        if session.flash:
            data["m"] = session.flash[:300]
        return self._serializer.dumps(data)


def session_secret(db: Database) -> str:
    secret = db.meta("console_session_secret")
    if not secret:
        raise RuntimeError("the console migration has not run: no session secret")
    return secret


# -- rate limiting -------------------------------------------------------------------------------------


class LoginLimiter:
    """At most ``attempts`` failed logins per client address (and per user name) in ``window`` seconds.

    Counting per user name as well stops a distributed guess at one account; counting per address stops
    one client spraying many names. In memory: a restart forgets, which costs an attacker a restart each.
    """

    def __init__(self, attempts: int = 5, window: float = 300.0) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, address: str, name: str) -> int:
        """Seconds until another attempt is allowed, 0 when one is allowed now."""
        now = time.monotonic()
        with self._lock:
            waits = [
                int(times[0] + self.window - now) + 1
                for key in (f"ip:{address}", f"user:{name.lower()}")
                if len(times := self._recent(key, now)) >= self.attempts
            ]
        return max(waits, default=0)

    def failed(self, address: str, name: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"ip:{address}", f"user:{name.lower()}"):
                self._recent(key, now).append(now)
            if len(self._failures) > 10_000:  # bound memory under a spray of names
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]

    def succeeded(self, address: str, name: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{name.lower()}", None)
