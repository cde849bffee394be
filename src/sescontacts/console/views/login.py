"""Log in and log out."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...accounts.login_limit import Attempt, LoginLimiter
from ...accounts.model import User
from ...accounts.sessions import Sessions
from ...accounts.users import Users
from ..gate import USER_SCOPE_KEY
from . import resubmit
from .common import FormErrors, in_thread, redirect, render, safe_next, session, user


async def login_page(request: Request) -> Response:
    if user(request) is not None:
        return redirect(safe_next(request.query_params.get("next")))
    return render(request, "login.html", next=safe_next(request.query_params.get("next")), errors=FormErrors())


async def login_submit(request: Request) -> Response:
    form = await request.form()
    name = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/")))
    pending = str(form.get("pending", ""))  # a form refused for want of a session (views/resubmit.py)
    # The peer's address, or the one a proxy named in --forwarded-allow-ips reported (uvicorn applies that).
    address = request.client.host if request.client else "unknown"
    limiter: LoginLimiter = request.app.state.login_limiter
    users: Users = request.app.state.users
    sessions: Sessions = request.app.state.sessions
    sess = session(request)
    previous = sess.sid
    errors = FormErrors()

    def attempt() -> tuple[Attempt, User | None, str | None]:
        # Counted before the ~100 ms hash, so parallel guesses cannot all pass the check.
        reserved = limiter.reserve(address, name)
        if reserved.retry_after:
            return reserved, None, None
        found = users.authenticate(name, password)
        sid = sessions.start(found) if found is not None else None
        if sid is None:  # a wrong password, or one changed while it was being checked
            return reserved, None, None
        limiter.succeeded(reserved)
        if previous:  # logging in again over a live session: the old one ends
            sessions.end(previous)
        return reserved, found, sid

    reserved, found, sid = await in_thread(attempt)
    if reserved.retry_after:
        errors.add("form", f"Too many failed attempts. Try again in {reserved.retry_after} seconds.")
        response = render(
            request, "login.html", status_code=429, next=target, errors=errors, username=name, pending=pending
        )
        response.headers["retry-after"] = str(reserved.retry_after)
        return response
    if found is None:
        errors.add("form", "That user name and password do not match.")
        return render(
            request, "login.html", status_code=401, next=target, errors=errors, username=name, pending=pending
        )
    # A new CSRF secret on login: a token planted before login (session fixation) is worthless after.
    sess.csrf = secrets.token_urlsafe(24)
    sess.user = found.name
    sess.sid = sid
    sess.dirty = True
    kept = resubmit.Pending.load(pending)
    if kept is not None:  # the refused form's page, filled in: the user sends it, it is not sent for them
        request.scope[USER_SCOPE_KEY] = found  # rendered for the user just logged in
        return await resubmit.show_again(request, kept, "login")
    return redirect(target)


async def logout(request: Request) -> Response:
    """End the session on the server (a copy of the cookie stops working too), then forget it here."""
    sess = session(request)
    sessions: Sessions = request.app.state.sessions
    if sess.sid:
        await in_thread(sessions.end, sess.sid)
    sess.forget_user()
    return redirect("/login")


routes = [
    Route("/login", login_page, methods=["GET"], name="login"),
    Route("/login", login_submit, methods=["POST"], name="login_submit"),
    Route("/logout", logout, methods=["POST"], name="logout"),
]
