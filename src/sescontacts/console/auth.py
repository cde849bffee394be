"""The console's session cookie: what it carries, signed with a key kept in the database.

The cookie holds the user name, a random session id and a CSRF secret. It alone logs no one in: the gate
also asks ``accounts.sessions`` whether the id still has a live row (logout, "log out everywhere", a password
change and expiry end it there). The accounts themselves, their passwords and the login limit are stored by
``sescontacts.accounts``, which has no HTTP in it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..accounts.sessions import SESSION_MAX_AGE
from ..db import Database

SESSION_COOKIE = "sescontacts_session"


@dataclass
class Session:
    """What the cookie says: who is logged in (if anyone), under which session id, and its CSRF secret."""

    csrf: str
    user: str | None = None
    sid: str | None = None  # valid only while console_sessions has it (see accounts.sessions.Sessions)
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


def session_secret(db: Database) -> str:
    """The cookie's signing key, which the accounts' first migration step put in ``meta``."""
    secret = db.meta("console_session_secret")
    if not secret:
        raise RuntimeError("the console migration has not run: no session secret")
    return secret
