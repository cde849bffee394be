"""The logged-in user's own page: who you are, on how many browsers, and "Log out everywhere"."""

from __future__ import annotations

from typing import cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...accounts.sessions import SESSION_MAX_AGE, Sessions
from .common import in_thread, redirect, render, session, user


def _sessions(request: Request) -> Sessions:
    return cast(Sessions, request.app.state.sessions)  # app.py puts it there; Starlette's state is untyped


async def account_page(request: Request) -> Response:
    me = user(request)
    assert me is not None  # the gate lets no anonymous request through
    browsers = await in_thread(_sessions(request).count, me.name)
    return render(request, "account.html", browsers=browsers, max_hours=SESSION_MAX_AGE // 3600)


async def logout_everywhere(request: Request) -> Response:
    """End every session of this user, this browser's included (a stolen cookie somewhere stops working)."""
    me = user(request)
    assert me is not None
    await in_thread(_sessions(request).end_all, me.name)
    session(request).forget_user()
    return redirect("/login", flash="Logged out on every browser.", request=request)


routes = [
    Route("/account", account_page, methods=["GET"], name="account"),
    Route("/account/logout-everywhere", logout_everywhere, methods=["POST"], name="logout_everywhere"),
]
