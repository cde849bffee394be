"""Answer only requests addressed to this server: the Host header must name one of the allowed hosts.

Without this, a web page on any site can point its own domain at 127.0.0.1 (DNS rebinding) and have the
visitor's browser talk to the console as a same-origin page of that site: read the login page, guess
passwords, and read whatever an open session shows. A rebound request still carries the attacker's host name
in ``Host``, so refusing unknown names stops it before any routing. SigV4 signs the host header, so SES
clients always send the endpoint's host (``127.0.0.1:8000``): the default allows exactly what they send.

Defaults (``--allowed-hosts`` unset): the address ``serve`` listens on, plus ``localhost`` for a loopback
address. For a wildcard bind (``0.0.0.0``, ``::``) any host is accepted and ``serve`` prints a warning: such a
server is reached by names we cannot know (a container's port mapping, a LAN name, a NAT address), and
refusing them all would make the first start look broken; the warning says how to name them.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import BadRequest
from ..sesapi.codec import encode_error, new_request_id

ANY = "*"
_WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


@functools.lru_cache(maxsize=256)  # a client sends the same Host on every request; parsing it cost ~25 us
def host_name(value: str) -> str | None:
    """The host part of a Host header (or an option value), lowercased, without port: None if malformed."""
    text = value.strip().lower()
    if text.startswith("["):  # [v6] or [v6]:port
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not re.fullmatch(r":\d{1,5}", text[end + 1 :])):
            return None
        return _address(text[1:end])
    if text.count(":") > 1:  # a bare IPv6 address (option values only: a Host header brackets it)
        return _address(text)
    name, _, port = text.partition(":")
    if port and not port.isdigit():
        return None
    name = name.rstrip(".")
    if _address(name) is not None:
        return _address(name)
    return name if name and len(name) <= 253 and _NAME.fullmatch(name) else None


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def default_hosts(bind_host: str) -> frozenset[str] | None:
    """What the server answers to when not told: None means any host (a wildcard bind)."""
    if bind_host in _WILDCARD_BINDS:
        return None
    name = host_name(bind_host) or bind_host
    if name == "localhost":
        return frozenset({"localhost", "127.0.0.1", "::1"})
    address = _address(name)
    if address is not None and ipaddress.ip_address(address).is_loopback:
        return frozenset({address, "localhost"})
    return frozenset({name})


def allowed_hosts(configured: Iterable[str], bind_host: str) -> frozenset[str] | None:
    """The names ``--allowed-hosts`` gave (None if one is ``*``), else the default for ``bind_host``."""
    names = frozenset(configured)
    if ANY in names:
        return None
    return names or default_hosts(bind_host)


def startup_warning(configured: Iterable[str], bind_host: str) -> str | None:
    if not tuple(configured) and default_hosts(bind_host) is None:
        return (
            f"WARNING: listening on {bind_host or 'every address'} without --allowed-hosts: requests for any host "
            "name are answered, which lets other web sites reach the console through DNS rebinding. Name the "
            "host names clients use: --allowed-hosts contacts.example.com,192.0.2.10 (or '*' to silence this)."
        )
    return None


class HostCheck:
    """ASGI middleware: 400 for a request whose Host header is missing or not allowed, before any routing.

    ``api_prefix`` marks the SES API's paths, answered with an SES-shaped JSON error; others get plain text.
    """

    def __init__(self, app: ASGIApp, allowed: frozenset[str] | None, api_prefix: bytes) -> None:
        self.app = app
        self.allowed = allowed
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allowed is None or scope["type"] != "http":  # lifespan; the server has no websockets
            await self.app(scope, receive, send)
            return
        header = next((value for key, value in scope.get("headers", []) if key == b"host"), None)
        name = host_name(header.decode("latin-1")) if header is not None else None
        if name in self.allowed:
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, send, header)

    async def _refuse(self, scope: Scope, send: Send, header: bytes | None) -> None:
        shown = repr(header.decode("latin-1")[:100]) if header is not None else "(none)"
        message = f"This server does not answer to the host {shown}."
        raw_path: bytes = scope.get("raw_path") or scope.get("path", "").encode()
        if raw_path.startswith(self.api_prefix):
            encoded = encode_error(new_request_id(), BadRequest(message))
            status, headers, body = encoded.status, encoded.headers, encoded.body
        else:
            body = (
                f"{message} If it should, start sescontacts with --allowed-hosts naming it (SESCONTACTS_ALLOWED_HOSTS)."
            ).encode()
            status = 400
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
            ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
