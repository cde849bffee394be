"""CSRF protection: every state-changing request must carry this session's token.

The token is the random secret kept in the signed session cookie (a page can read it only by being
rendered for this browser). It travels as the ``csrf_token`` form field (plain HTML forms, so the console
works without JavaScript), as the ``X-CSRF-Token`` header (htmx sends it on every request, see
``console.js``), or, for file uploads only, in the query string: reading a multipart body to find a field
would mean buffering an upload of hundreds of MB before we know whether to accept it.

A request whose ``Origin`` names another site is refused before any token is looked at.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.types import Message, Receive, Scope

FIELD = "csrf_token"
HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 2 * 1024 * 1024


class CsrfError(Exception):
    """Refuse with 403; the message is shown to the user."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def check_origin(scope: Scope) -> None:
    origin = _header(scope, b"origin")
    if origin is None:  # older clients and curl send none; the token check still applies
        return
    host = _header(scope, b"host")
    scheme = scope.get("scheme", "http")
    if origin == "null" or host is None or origin.rstrip("/") != f"{scheme}://{host}":
        raise CsrfError("This request came from another site and was refused.")


async def check_request(scope: Scope, receive: Receive, expected: str) -> Receive:
    """Raise CsrfError unless the request carries ``expected``; return a ``receive`` that replays the body.

    A url-encoded form is read here (bounded to MAX_FORM_BYTES) and handed on unchanged to the route.
    """
    check_origin(scope)
    if tokens_match(expected, _header(scope, HEADER)):
        return receive
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        if tokens_match(expected, (query.get(FIELD) or [None])[0]):
            return receive
        raise CsrfError("The form's security token is missing or out of date. Reload the page and try again.")
    body = bytearray()
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            raise CsrfError("The form is too large.", status=413)
        if not message.get("more_body", False):
            break
    given = None
    if content_type == "application/x-www-form-urlencoded":
        given = (parse_qs(body.decode("utf-8", "replace")).get(FIELD) or [None])[0]
    if not tokens_match(expected, given):
        raise CsrfError("The form's security token is missing or out of date. Reload the page and try again.")

    replay = iter(messages)

    async def replayed() -> Message:
        try:
            return next(replay)
        except StopIteration:
            return await receive()

    return replayed
