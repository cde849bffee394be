"""CSRF protection: every state-changing request must carry this session's token.

The token is the random secret kept in the signed session cookie (a page can read it only by being
rendered for this browser). It travels as the ``X-CSRF-Token`` header (htmx sends it on every request, see
``console.js``) or as the ``csrf_token`` form field (plain HTML forms, so the console works without
JavaScript). In a file upload (multipart) the field must be the *first* part, which a browser sends first
when the hidden input comes first in the form: it is checked after reading only that part, before a byte of
a file of hundreds of MB is stored. Never in the query string: URLs end up in access logs, proxy logs and
browser history, so a token there is refused, not just ignored.

A request whose ``Origin`` names another site is refused before any token is looked at.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs, parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import Message, Receive, Scope

FIELD = "csrf_token"
HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 2 * 1024 * 1024
# How far into a multipart body the token's part must have ended (boundary, part headers, the token).
MAX_FIRST_PART_BYTES = 16 * 1024
_MISSING = "The form's security token is missing or out of date. Reload the page and try again."


@dataclass(frozen=True)
class PostedForm:
    """What a refused form carried, to show it again (``console/views/resubmit.py``): its fields, less the
    token and any password, and whether a file (never kept) or a body too large to keep was left out."""

    fields: tuple[tuple[str, str], ...] = ()
    dropped: bool = False

    @classmethod
    def of(cls, content_type: bytes, body: bytes) -> PostedForm:
        if content_type != b"application/x-www-form-urlencoded":
            return cls(dropped=bool(body))  # a multipart body is an upload: its file is not kept
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return cls(tuple((k, v) for k, v in pairs if k != FIELD and "password" not in k.lower()))


class CsrfError(Exception):
    """Refuse with 403; the message is shown to the user. ``form``: what a same-site form whose token was
    missing or stale carried (None for a refusal whose input must not be shown again)."""

    def __init__(self, message: str, status: int = 403, form: PostedForm | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.form = form


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])  # ASGI: raw (name, value) pairs
    for key, value in headers:
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


def refuse_token_in_url(scope: Scope) -> None:
    """A token in the query string has already leaked into logs: refuse the request (whatever its method)."""
    query = scope.get("query_string", b"")
    if FIELD.encode() in query and FIELD in parse_qs(query.decode("latin-1"), keep_blank_values=True):
        raise CsrfError(
            "A security token must not be in the address of a request (addresses are logged). "
            "Go back, reload the page and try again.",
            status=400,
        )


async def check_request(scope: Scope, receive: Receive, expected: str, *, streamed: bool = False) -> Receive:
    """Raise CsrfError unless the request carries ``expected``; return a ``receive`` that replays the body.

    The body is read here, bounded to MAX_FORM_BYTES (413 past it: the route would parse it whole, and
    Starlette spools a multipart body's file parts to the temp dir without a limit), and handed on unchanged
    to the route. Only a ``streamed`` route (the import upload, which stores its file under its own cap) gets
    a multipart body unread: its token is in the header or the first part, read alone.
    """
    check_origin(scope)
    in_header = tokens_match(expected, _header(scope, HEADER))
    content_type, params = parse_options_header(_header(scope, b"content-type") or "")
    multipart = content_type == b"multipart/form-data"
    if multipart and streamed:
        if in_header:
            return receive
        return await _check_first_part(receive, expected, params.get(b"boundary", b""))
    body, messages = await _read_body(receive)
    given: str | None = None
    if not in_header and content_type == b"application/x-www-form-urlencoded":
        values = parse_qs(body.decode("utf-8", "replace")).get(FIELD)
        given = values[0] if values else None
    elif not in_header and multipart:
        first = _FirstPart(params.get(b"boundary", b""))
        first.feed(bytes(body))
        given = first.value if first.done and first.name == FIELD and not first.is_file else None
    if not (in_header or tokens_match(expected, given)):
        raise CsrfError(_MISSING, form=PostedForm.of(content_type, bytes(body)))
    return _replay(messages, receive)


async def _read_body(receive: Receive) -> tuple[bytearray, list[Message]]:
    """The whole body, bounded to MAX_FORM_BYTES (413 past it), and the messages it came in."""
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
    return body, messages


async def read_form(scope: Scope, receive: Receive, *, streamed: bool = False) -> PostedForm | None:
    """What a form sent without a session carried, to keep it across the login; None for a request from
    another site (its input is not shown on our pages). A streamed upload is not read: its file is not kept."""
    try:
        check_origin(scope)
    except CsrfError:
        return None
    if _header(scope, b"sec-fetch-site") == "cross-site":
        return None
    content_type, _ = parse_options_header(_header(scope, b"content-type") or "")
    if streamed and content_type == b"multipart/form-data":
        return PostedForm(dropped=True)
    try:
        body, _ = await _read_body(receive)
    except CsrfError:
        return PostedForm(dropped=True)
    return PostedForm.of(content_type, bytes(body))


async def _check_first_part(receive: Receive, expected: str, boundary: bytes) -> Receive:
    """Read a multipart body only up to the end of its first part, which must be the token's field."""
    if not boundary:
        raise CsrfError(_MISSING, form=PostedForm(dropped=True))
    first = _FirstPart(boundary)
    messages: list[Message] = []
    size = 0
    while not first.done and size <= MAX_FIRST_PART_BYTES:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        first.feed(chunk)
        if not message.get("more_body", False):
            break
    if not (first.done and first.name == FIELD and not first.is_file and tokens_match(expected, first.value)):
        raise CsrfError(_MISSING, form=PostedForm(dropped=True))
    return _replay(messages, receive)


class _FirstPart:
    """The name and (bounded) value of a multipart body's first part, fed chunk by chunk."""

    def __init__(self, boundary: bytes) -> None:
        self.done = False
        self.name = ""
        self.is_file = False
        self._value = b""
        self._field = self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._broken = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )

    @property
    def value(self) -> str:
        return self._value.decode("utf-8", "replace")

    def feed(self, chunk: bytes) -> None:
        if self.done or self._broken:
            return
        try:
            self._parser.write(chunk)
        except Exception:  # a malformed body: no token found
            self._broken = True

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        if not self.done:
            self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        if not self.done:
            self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if not self.done:
            self._headers[self._field.lower()] = self._header_value
        self._field = self._header_value = b""

    def _on_headers_finished(self) -> None:
        if self.done:
            return
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        self.is_file = b"filename" in options

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self.done and len(self._value) < 1024:
            self._value += data[start:end]

    def _on_part_end(self) -> None:
        self.done = True


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands the route the messages already read, then the rest of the request."""
    replay = iter(messages)

    async def replayed() -> Message:
        try:
            return next(replay)
        except StopIteration:
            return await receive()

    return replayed
