"""What every page handler shares: rendering, the current user and session, form errors, redirects.

Handlers are async only to read the request; the store is synchronous, so each handler does its database
work in one ``run_in_threadpool`` hop (a page's reads together, as the architecture asks).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ...accounts.model import User
from ...errors import SesContactsError
from ...services import Services
from ..auth import Session
from ..gate import SESSION_SCOPE_KEY, USER_SCOPE_KEY

T = TypeVar("T")

# SES error fields (``SesContactsError.field``) mapped to the console's form field names.
FIELD_NAMES = {
    "EmailAddress": "email",
    "AttributesData": "attributes",
    "TopicPreferences": "topics",
    "TopicName": "name",
    "DisplayName": "display_name",
    "Description": "description",
    "Topics": "name",
    "ContactListName": "form",
    "NextToken": "page",
}


@dataclass
class FormErrors:
    """Messages keyed by form field, shown next to the field they are about (``form`` = top of the form)."""

    messages: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.messages.setdefault(name, message)

    def add_error(self, error: SesContactsError) -> None:
        self.add(FIELD_NAMES.get(error.field or "", "form"), error.message)

    def __bool__(self) -> bool:
        return bool(self.messages)

    def get(self, name: str) -> str | None:
        return self.messages.get(name)


# Starlette's app.state and the ASGI scope hold untyped values: these accessors name what app.py and the gate
# put there.
def services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


def session(request: Request) -> Session:
    return cast(Session, request.scope[SESSION_SCOPE_KEY])


def user(request: Request) -> User | None:
    return request.scope.get(USER_SCOPE_KEY)


def list_name(request: Request) -> str:
    return services(request).settings.contact_list


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") is None


async def in_thread(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await run_in_threadpool(func, *args, **kwargs)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    env: Environment = request.app.state.jinja
    sess = session(request)
    base = {
        "request": request,
        "user": user(request),
        "csrf_token": sess.csrf,
        "list_name": list_name(request),
        "flash": sess.pop_flash(),
        "htmx": is_htmx(request),
        # why a form is shown again instead of done (views/resubmit.py): its session ended, its token was stale
        "notice": getattr(request.state, "notice", None),
    }
    base.update(context)
    html = env.get_template(template).render(base)
    return HTMLResponse(html, status_code=status_code, headers={"cache-control": "no-store"})


def render_partial(request: Request, macro: str, *args: Any, status_code: int = 200, **kwargs: Any) -> HTMLResponse:
    """One macro of ``_partials.html``: the same markup a full page includes, sent alone for an htmx swap."""
    env: Environment = request.app.state.jinja
    module = env.get_template("_partials.html").make_module(
        {"request": request, "csrf_token": session(request).csrf, "list_name": list_name(request)}
    )
    html = getattr(module, macro)(*args, **kwargs)
    return HTMLResponse(str(html), status_code=status_code, headers={"cache-control": "no-store"})


def redirect(
    url: str, *, flash: str | None = None, request: Request | None = None, target: str | None = None
) -> Response:
    """303 after a POST (so reload does not resubmit). htmx follows it with a full navigation, or, with
    ``target`` (a dialog's body), loads the next step into that element and puts its URL in the history."""
    if flash and request is not None:
        sess = session(request)
        sess.flash = flash
        sess.dirty = True
    if request is not None and is_htmx(request):
        if target:
            location = json.dumps({"path": url, "target": target})
            return Response(status_code=204, headers={"hx-location": location})
        return Response(status_code=204, headers={"hx-redirect": url})
    return RedirectResponse(url, status_code=303)


def url_with(path: str, params: Mapping[str, object | None]) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "", False)}
    return path + ("?" + urlencode(clean) if clean else "")


def safe_next(target: str | None) -> str:
    """Only same-site paths: ``next=//evil.example`` or ``next=https://...`` would be an open redirect, and so
    would ``/<tab>/evil.example``: browsers drop tabs and newlines from a URL, so no control character or
    space passes either (a path the console makes has them percent-encoded)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(c <= " " or c == "\x7f" for c in target)
    ):
        return "/"
    return target
