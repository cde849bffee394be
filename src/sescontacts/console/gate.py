"""The console's front door: one ASGI middleware in front of every console route.

It is deny-by-default: a route is reachable without a login only if its path is in ``PUBLIC_PATHS`` /
``PUBLIC_PREFIXES``; a new page added later is private without anyone remembering to protect it. The same
middleware checks CSRF on every non-GET request, writes the session cookie when the session changed, and
adds the security headers (a strict Content-Security-Policy keeps a stored ``<script>`` inert even if some
template ever forgot to escape) and a ``Server-Timing`` header the benchmark reads.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Literal
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..accounts.model import User
from ..accounts.sessions import LAST_SEEN_EVERY, SESSION_MAX_AGE, Sessions
from ..history import Actor, acting_as
from . import csrf
from .auth import SESSION_COOKIE, Session, SessionCodec

PUBLIC_PATHS = frozenset({"/login"})
PUBLIC_PREFIXES = ("/static/",)
# Routes that stream a multipart body themselves, to a cap of their own (uploads.py: --max-upload-mb). Every
# other request body is read by the CSRF check, bounded to csrf.MAX_FORM_BYTES.
STREAMED_PATHS = frozenset({"/import/upload"})
SESSION_SCOPE_KEY = "sescontacts.session"
USER_SCOPE_KEY = "sescontacts.user"
REFUSAL_SCOPE_KEY = "sescontacts.refusal"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
_SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


@dataclass(frozen=True)
class Refusal:
    """A same-site form that was not let through: no session (``login``) or a missing or stale token
    (``csrf``), with what it carried. The gate hands it to the console's ``refused`` app (in the scope, under
    REFUSAL_SCOPE_KEY), which shows the form again and never writes."""

    reason: Literal["login", "csrf"]
    form: csrf.PostedForm


Refused = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _cookie(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header from some other app on localhost
                return None
            if SESSION_COOKIE in jar:
                return jar[SESSION_COOKIE].value
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])  # ASGI: raw (name, value) pairs
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def same_site_path(scope: Scope, url: str | None) -> str | None:
    """The path and query of ``url`` (a Referer, htmx's HX-Current-URL) if it is on this site, else None."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme != scope.get("scheme", "http") or parts.netloc != _header(scope, b"host"):
        return None
    return (parts.path or "/") + ("?" + parts.query if parts.query else "")


class Gate:
    def __init__(self, app: ASGIApp, sessions: Sessions, codec: SessionCodec, refused: Refused | None = None) -> None:
        self.app = app
        self.sessions = sessions
        self.codec = codec
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        session = self.codec.load(_cookie(scope))
        user = await self._user(session)
        scope[SESSION_SCOPE_KEY] = session
        scope[USER_SCOPE_KEY] = user
        path: str = scope["path"]
        method: str = scope["method"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in _SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
                if session.dirty:
                    headers.append("set-cookie", self._set_cookie(scope, session))
                headers.append("server-timing", f"app;dur={(time.perf_counter() - started) * 1000:.2f}")
            await send(message)

        try:
            csrf.refuse_token_in_url(scope)
        except csrf.CsrfError as exc:
            await _plain(send_with_headers, exc.status, exc.message)
            return
        if user is None and not is_public(path):
            await self._refuse_anonymous(scope, receive, send_with_headers)
            return
        if method not in csrf.SAFE_METHODS:
            try:
                receive = await csrf.check_request(scope, receive, session.csrf, streamed=path in STREAMED_PATHS)
            except csrf.CsrfError as exc:
                if exc.form is not None and self.refused is not None and not _cross_site(scope):
                    await self._show_refused(scope, Refusal("csrf", exc.form), send_with_headers)
                else:
                    await _plain(send_with_headers, exc.status, exc.message)
                return
        if user is None:
            await self.app(scope, receive, send_with_headers)
            return
        # Everything the request writes, here and in the threads it hops to (anyio copies the context), is
        # recorded in the history as the logged-in user's.
        with acting_as(Actor("console", user.name)):
            await self.app(scope, receive, send_with_headers)

    async def _show_refused(self, scope: Scope, refusal: Refusal, send: Send) -> None:
        """The console's page for a form that was not let through (its body is read: nothing more to receive)."""
        assert self.refused is not None

        async def nothing() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        await self.refused({**scope, REFUSAL_SCOPE_KEY: refusal}, nothing, send)

    async def _user(self, session: Session) -> User | None:
        """The logged-in user, if the cookie names a session the server still has (one indexed read)."""
        if not session.user or not session.sid:
            if session.user:  # a cookie from before server-side sessions: log it out
                session.forget_user()
            return None
        active = self.sessions.find(session.sid)
        if active is None or active.user.name != session.user:
            # Logged out (here or everywhere), password changed, user removed, or expired: log this browser out.
            session.forget_user()
            return None
        if time.time() - active.last_seen > LAST_SEEN_EVERY:
            await run_in_threadpool(self.sessions.touch, session.sid)
        return active.user

    def _set_cookie(self, scope: Scope, session: Session) -> str:
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        value = self.codec.dump(session)
        return f"{SESSION_COOKIE}={value}; Path=/; Max-Age={SESSION_MAX_AGE}; HttpOnly; SameSite=Lax{secure}"

    async def _refuse_anonymous(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Browsers go to the login form and come back after: a page they asked for is shown again, a form they
        sent comes back filled in (``views/resubmit.py``) for them to send again. Everything else is 401."""
        path = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        target = path + ("?" + query if query else "")
        if _header(scope, b"hx-request"):
            # htmx would swap a login page into a table cell; send the whole page to the login, and back to
            # the page the user was on (not the fragment's URL).
            back = same_site_path(scope, _header(scope, b"hx-current-url")) or "/"
            login = "/login?next=" + quote(back, safe="")
            await _plain(send, 401, "Log in to continue.", extra=[(b"hx-redirect", login.encode())])
            return
        if scope["method"] in ("GET", "HEAD"):
            login = "/login?next=" + quote(target, safe="")
            await _plain(send, 303, "Log in to continue.", extra=[(b"location", login.encode())])
            return
        form = await csrf.read_form(scope, receive, streamed=path in STREAMED_PATHS)
        if form is None or self.refused is None:
            await _plain(send, 401, "Log in to continue.")
            return
        await self._show_refused(scope, Refusal("login", form), send)


def _cross_site(scope: Scope) -> bool:
    return _header(scope, b"sec-fetch-site") == "cross-site"


async def _plain(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
