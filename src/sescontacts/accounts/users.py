"""Console users, password hashing, signed session cookies and login rate limiting.

Users live in the product's SQLite file (table ``console_users``, migrations owned by "console"), so the
CLI (``sescontacts users``) and a running server see the same accounts. Passwords are hashed with scrypt
at parameters that cost ~100 ms and 32 MiB per guess, which is what makes a stolen database expensive to
attack; the parameters are stored with each hash so they can be raised later without breaking old hashes.

The session cookie holds the user name, a random session id and a CSRF secret, signed with a key kept in
the database. A login is valid only while its session id has a row in ``console_sessions``: logging out
deletes the row (a copied cookie stops working with it), "log out everywhere", a password change and
removing the user delete all of that user's rows, and a row older than SESSION_MAX_AGE is dead and pruned.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..db import Database, Migrations, run_script
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


class Users:
    """The console's accounts, on the shared database (the console's only table of its own)."""

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
    """What the cookie says: who is logged in (if anyone), under which session id, and its CSRF secret."""

    csrf: str
    user: str | None = None
    sid: str | None = None  # valid only while console_sessions has it (see Sessions)
    flash: str | None = None  # a one-time message for the next page ("Deleted 3 contacts.")
    dirty: bool = False

    def pop_flash(self) -> str | None:
        message, self.flash = self.flash, None
        if message:
            self.dirty = True
        return message

    def forget_user(self) -> None:
        """Anonymous from now on, with a new CSRF secret (the old one may have been seen with the login)."""
        self.user = self.sid = None
        self.csrf = secrets.token_urlsafe(24)
        self.dirty = True


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
                return Session(csrf=data["c"], user=data.get("u"), sid=data.get("s"), flash=data.get("m"))
        return Session(csrf=secrets.token_urlsafe(24), dirty=True)

    def dump(self, session: Session) -> str:
        data = {"c": session.csrf, "u": session.user, "s": session.sid}
        if session.flash:
            data["m"] = session.flash[:300]
        return self._serializer.dumps(data)


# How often a session's last_seen is written: every request would be a database write per page view.
LAST_SEEN_EVERY = 300.0


def _schema_v3(conn: sqlite3.Connection) -> None:
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


def session_secret(db: Database) -> str:
    secret = db.meta("console_session_secret")
    if not secret:
        raise RuntimeError("the console migration has not run: no session secret")
    return secret


# -- rate limiting -------------------------------------------------------------------------------------

PAIR_ATTEMPTS = 5  # failed logins per (user name, client address) in LOGIN_WINDOW
ADDRESS_ATTEMPTS = 20  # failed logins per client address, whatever the names: against spraying many names
LOGIN_WINDOW = 300.0
_MAX_NAME_KEY = 80  # longer names cannot exist (check_user_name); keep what is stored bounded


def _schema_v2(conn: sqlite3.Connection) -> None:
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


# Users, sessions and login attempts; listed in schema.PRODUCT_SCHEMA.
MIGRATIONS = Migrations("console", (_schema_v1, _schema_v2, _schema_v3))
