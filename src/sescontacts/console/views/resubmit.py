"""Forms the gate did not let through, shown again instead of a bare 401 or 403.

Two ways a form a user filled in is refused: the session ended (12 hours after login, logged out elsewhere,
cookies cleared) or its CSRF token is stale (logged out and in again in another tab after the page loaded).
The gate (``gate.py``) hands such a same-site form to ``refused`` with what it carried (``csrf.PostedForm``:
never the token, a password or a file). Without a session, the login page carries the fields along; after
the login, or at once for a stale token, the form's own page is rendered again from them with a fresh token
and a notice saying why. Nothing here writes: a state-changing form is only ever done when the user sends it
again. A form from another site is never shown again (the gate gives it no ``PostedForm``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urlencode, urlsplit

import orjson
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, compile_path

from ...errors import ListNotFound, SesContactsError
from ..gate import REFUSAL_SCOPE_KEY, Refusal, same_site_path
from . import account, contact_form, contact_list, contacts, import_mapping, imports, suppression, topics, undo
from .common import FormErrors, in_thread, is_htmx, list_name, render, safe_next, services, session, user

Reason = Literal["login", "csrf"]
# The login form carries the fields as one JSON text; past this they are dropped (the login's own body is
# bounded by csrf.MAX_FORM_BYTES, and a field's JSON grows when it is form-encoded).
MAX_PENDING = 256 * 1024
NOTICES: dict[Reason, str] = {
    "login": "Your session had ended, so nothing was saved. You are logged in again: what you entered is below. "
    "Check it and send it again.",
    "csrf": "This form's security token was out of date, so nothing was saved: you logged out and in again "
    "(perhaps in another tab) after the page was loaded. What you entered is below with a fresh token. Check "
    "it and send it again.",
}
DROPPED = " Files are never kept: choose the file again."
# htmx: the page the form is on is loaded again (a fragment is no place for a whole form), with this flash.
RELOADED = "This page's security token was out of date (you logged in again since it was loaded), so nothing was "
RELOADED += "saved. Send the form again."


@dataclass(frozen=True)
class Pending:
    """A refused form: where it was posted (path and query), its fields, whether something was left out."""

    path: str
    fields: tuple[tuple[str, str], ...] = ()
    dropped: bool = False

    def dump(self) -> str:
        text = orjson.dumps({"p": self.path, "f": self.fields, "d": self.dropped}).decode()
        if len(text) > MAX_PENDING:
            return replace(self, fields=(), dropped=True).dump()
        return text

    @classmethod
    def load(cls, text: str) -> Pending | None:
        """The login form's hidden field read back, or None when it is absent or not what ``dump`` wrote."""
        try:
            data = orjson.loads(text) if text else None
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or not isinstance(path := data.get("p"), str) or safe_next(path) != path:
            return None
        fields = data.get("f")
        if not isinstance(fields, list) or not all(
            isinstance(f, list) and len(f) == 2 and all(isinstance(x, str) for x in f) for f in fields
        ):
            return None
        return cls(path, tuple((k, v) for k, v in fields), data.get("d") is True)


Redisplay = Callable[[Request, FormData, dict[str, str]], Awaitable[Response]]


def _as_page(request: Request, path: str, query: dict[str, str], params: dict[str, str] | None = None) -> Request:
    """The same request as a GET of the page ``path`` with ``query``: the page's own view renders it."""
    scope = {
        **request.scope,
        "method": "GET",
        "path": path,
        "query_string": urlencode(query).encode(),
        "path_params": params or {},
    }
    return Request(scope, request.receive)


async def _contact(request: Request, form: FormData, _: dict[str, str], *, editing: bool) -> Response:
    contact_list_ = await in_thread(services(request).store.get_list, list_name(request))
    shown = contact_form.ContactForm.from_post(form, contact_list_)
    return render(
        request, "contact_form.html", form=shown, contact_list=contact_list_, errors=FormErrors(), editing=editing
    )


async def _new_contact(request: Request, form: FormData, params: dict[str, str]) -> Response:
    return await _contact(request, form, params, editing=False)


async def _edited_contact(request: Request, form: FormData, params: dict[str, str]) -> Response:
    return await _contact(request, form, params, editing=True)  # ``original`` comes back too: the merge holds


async def _topic(request: Request, form: FormData, _: dict[str, str]) -> Response:
    data = {k: str(v) for k, v in form.items()}
    topic, original = topics._topic_from(data), data.get("original", "")
    page = _as_page(request, "/topics", {"edit": original} if original else {})
    return await topics.topics_page(page, form=replace(topic, name=original) if original else topic)


async def _topic_delete(request: Request, form: FormData, _: dict[str, str]) -> Response:
    return await topics.confirm_delete(_as_page(request, "/topics/delete", {"name": str(form.get("name", ""))}))


async def _contact_delete(request: Request, form: FormData, _: dict[str, str]) -> Response:
    page = _as_page(request, "/contacts/delete", {"email": str(form.get("email", ""))})
    return await contact_form.confirm_delete(page)


async def _bulk(request: Request, form: FormData, _: dict[str, str]) -> Response:
    """Its confirmation again (a dry run): the action is done only when the user confirms."""
    return await contacts.bulk_form(request, FormData([(k, v) for k, v in form.multi_items() if k != "confirm"]))


async def _bulk_job(request: Request, _: FormData, params: dict[str, str]) -> Response:
    return await contacts.bulk_job(_as_page(request, f"/contacts/bulk/jobs/{params['job_id']}", {}, params))


async def _suppress(request: Request, form: FormData, _: dict[str, str]) -> Response:
    data = {k: str(v) for k, v in form.items() if k in ("email", "reason")}
    return await suppression.suppression_page(_as_page(request, "/suppression", {}), form=data)


async def _suppression_remove(request: Request, form: FormData, _: dict[str, str]) -> Response:
    """Its warning again: the addresses leave the suppression list only when the user confirms."""
    return await suppression.remove_form(request, FormData([(k, v) for k, v in form.multi_items() if k != "confirm"]))


async def _upload(request: Request, _: FormData, __: dict[str, str]) -> Response:
    return await imports.import_page(_as_page(request, "/import", {}))


async def _import_start(request: Request, form: FormData, _: dict[str, str]) -> Response:
    """The preview again, with its Import button: the upload is still stored."""
    keys = ("upload", "action", "resubscribe", "merge_attributes", "extra_columns_as_attributes")
    query = {k: str(form.get(k)) for k in keys if form.get(k)}
    return await imports.preview(_as_page(request, "/import/preview", query))


async def _import_map(request: Request, form: FormData, _: dict[str, str]) -> Response:
    """The column mapping as chosen, as after Preview: Continue remembers it only when pressed again."""
    return await import_mapping.show_again(_as_page(request, "/import/map", {}), form)


async def _import_job(request: Request, _: FormData, params: dict[str, str]) -> Response:
    return await imports.job_page(_as_page(request, f"/import/jobs/{params['job_id']}", {}, params))


async def _undo_confirm(request: Request, _: FormData, params: dict[str, str]) -> Response:
    """What an undo does, again: it starts only when the user confirms."""
    return await undo.confirm(_as_page(request, f"/jobs/{params['job_id']}/undo", {}, params))


async def _undo_job(request: Request, form: FormData, params: dict[str, str]) -> Response:
    page = {"page": str(form.get("page"))} if form.get("page") else {}
    return await undo.undo_job_page(_as_page(request, f"/undo/jobs/{params['job_id']}", page, params))


async def _account(request: Request, _: FormData, __: dict[str, str]) -> Response:
    return await account.account_page(_as_page(request, "/account", {}))


async def _create_list(request: Request, form: FormData, _: dict[str, str]) -> Response:
    try:
        await in_thread(services(request).store.get_list, list_name(request))
    except ListNotFound:
        return contact_list.list_missing(request, topics_text=str(form.get("topics", "")))
    request.state.notice += f" The list {list_name(request)} exists already (created in another tab, perhaps)."
    return render(request, "resubmit.html", back="/")


async def _login(request: Request, form: FormData, _: dict[str, str]) -> Response:
    """A login form whose token went stale (logged in meanwhile in another tab, say)."""
    target = safe_next(str(form.get("next", "/")))
    if user(request) is not None:
        request.state.notice = "This login form's security token was out of date: you are logged in already."
        return render(request, "resubmit.html", status_code=403, back=target)
    request.state.notice = "This login form's security token was out of date. Enter your password again."
    return login_form(request, target, str(form.get("pending", "")), str(form.get("username", "")))


# Each form's page, by the path the form posts to. A path not here gets the plain explanation page.
REDISPLAYS: dict[str, Redisplay] = {
    "/contacts/new": _new_contact,
    "/contacts/edit": _edited_contact,
    "/contacts/delete": _contact_delete,
    "/contacts/bulk": _bulk,
    "/contacts/bulk/jobs/{job_id}/cancel": _bulk_job,
    "/contacts/bulk/jobs/{job_id}/resume": _bulk_job,
    "/topics": _topic,
    "/topics/delete": _topic_delete,
    "/suppression": _suppress,
    "/suppression/remove": _suppression_remove,
    "/import/upload": _upload,
    "/import/map": _import_map,
    "/import/start": _import_start,
    "/import/jobs/{job_id}/cancel": _import_job,
    "/import/jobs/{job_id}/resume": _import_job,
    "/jobs/{job_id}/undo": _undo_confirm,
    "/undo/jobs/{job_id}/resolve": _undo_job,
    "/undo/jobs/{job_id}/cancel": _undo_job,
    "/undo/jobs/{job_id}/resume": _undo_job,
    "/account/logout-everywhere": _account,
    "/list/create": _create_list,
    "/login": _login,
}
_PATTERNS = [(compile_path(path)[0], handler) for path, handler in REDISPLAYS.items()]


def _match(path: str) -> tuple[Redisplay | None, dict[str, str]]:
    for pattern, handler in _PATTERNS:
        if found := pattern.match(path):
            return handler, found.groupdict()
    return None, {}


def _back(request: Request) -> str:
    return safe_next(same_site_path(request.scope, request.headers.get("referer")))


async def show_again(request: Request, pending: Pending, reason: Reason) -> Response:
    """The page of the form ``pending`` was posted from, filled in from it, with a notice saying why."""
    request.state.notice = NOTICES[reason] + (DROPPED if pending.dropped else "")
    handler, params = _match(urlsplit(pending.path).path)
    response: Response | None = None
    if handler is not None:
        try:
            response = await handler(request, FormData(list(pending.fields)), params)
        except SesContactsError:
            response = None  # the thing it was about is gone: the explanation alone
    if response is None or "location" in response.headers:  # a redirect would lose the notice
        back = safe_next(response.headers["location"]) if response is not None else _back(request)
        response = render(request, "resubmit.html", back=back)
    if reason == "csrf":
        response.status_code = 403  # refused, as before; the page says why and what to do now
    return response


def login_form(request: Request, target: str, pending: str = "", username: str = "") -> Response:
    """The login page, carrying a refused form (``pending``, as ``Pending.dump`` wrote it) through the login."""
    kept = Pending.load(pending)
    return render(
        request,
        "login.html",
        status_code=401,
        next=target,
        errors=FormErrors(),
        username=username,
        pending=kept.dump() if kept else "",
        pending_dropped=bool(kept and kept.dropped),
    )


async def refused(request: Request) -> Response:
    """The gate's ``refused`` app: the login page carrying the form, or the form's page again."""
    refusal: Refusal = request.scope[REFUSAL_SCOPE_KEY]
    query = request.url.query
    pending = Pending(request.url.path + ("?" + query if query else ""), refusal.form.fields, refusal.form.dropped)
    if is_htmx(request):
        # A fragment is no place for a whole form: reload the page the user is on, saying why.
        sess = session(request)
        sess.flash, sess.dirty = RELOADED, True
        back = same_site_path(request.scope, request.headers.get("hx-current-url")) or "/"
        return Response(status_code=204, headers={"hx-redirect": safe_next(back)})
    if refusal.reason == "login":
        if request.url.path in ("/logout", "/account/logout-everywhere"):
            return login_form(request, "/")  # logged out already: nothing to send again
        request.state.notice = "Your session has ended. Log in to continue" + (
            ": the form you were sending comes back filled in, for you to check and send again."
            if pending.fields
            else "."
        )
        return login_form(request, _back(request), pending.dump())
    return await show_again(request, pending, "csrf")


routes = [Route("/{path:path}", refused, methods=["POST", "PUT", "PATCH", "DELETE"])]
