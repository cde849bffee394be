"""How ``serve`` runs uvicorn: connection timeouts and a bound on the request head, which uvicorn lacks.

uvicorn (0.54 here) closes an idle kept-alive connection (``timeout_keep_alive``) but has no header-read
timeout: a client that opens a connection and sends half a request line holds it forever, and a handful of
such clients hold every file descriptor the process has. With httptools (what ``uvicorn[standard]`` uses)
the request head is not bounded either: megabytes of headers are buffered. Neither can be fixed in ASGI
middleware, which only runs once the head is complete, so this module extends uvicorn's httptools protocol:

- the request line and headers must be complete within ``header_timeout`` seconds of the connection opening
  (or of the previous response, on a kept-alive connection); otherwise 408 and close (a connection that sent
  nothing at all is closed without an answer, as a browser's unused pre-connection expects);
- a request body that stalls for ``body_timeout`` seconds (no byte, while we are reading) ends the
  connection; the application sees the client disconnect;
- a request head over MAX_HEAD_BYTES is answered 431 and the connection closed.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024  # request line + headers; browsers send a few KiB, SigV4 clients less
# After a 408/431 the rest of what the client sends is read and dropped (up to this much, for this long)
# before closing: closing with unread data makes the kernel send a reset, and the client never sees the answer.
LINGER_BYTES = 1024 * 1024
LINGER_SECONDS = 2.0


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_head_bytes: int = MAX_HEAD_BYTES


class _HeadTooLarge(Exception):
    pass


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header-read timeout, a body idle timeout and a head size cap."""

    limits = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_started = False  # the parser has seen the first byte of a request since the timer started
        self._head_too_large = False
        self._lingering = -1  # bytes dropped after the answer that ends this connection; -1: not lingering

    # -- the request head ------------------------------------------------------------------------------

    # The signature of uvicorn's own override, which narrows asyncio's BaseTransport (and says so the same way).
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_bytes = 0
        self._head_started = False
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def data_received(self, data: bytes) -> None:
        if self._lingering >= 0:
            self._lingering += len(data)
            if self._lingering > LINGER_BYTES:
                self.transport.close()
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        # The first byte of a request (not of the rest of a body the application answered early).
        super().on_message_begin()
        if self._head_timer is None:  # a pipelined request: its head gets the full time too
            self._arm_head_timer()
        self._head_started = True

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.limits.max_head_bytes:
            self._head_too_large = True
            raise _HeadTooLarge  # httptools stops parsing; uvicorn answers through send_400_response

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()
        if not self.transport.is_closing():
            self._arm_body_timer()

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._answer_and_close(431, "Request header fields too large.")
        else:
            super().send_400_response(msg)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_started:
            self._answer_and_close(408, "The request was not received in time.")
        else:
            self.transport.close()

    def _answer_and_close(self, status: int, text: str) -> None:
        body = text.encode()
        reason = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
        head = b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % (
            status,
            reason,
            len(body),
        )
        self.transport.write(head + b"connection: close\r\n\r\n" + body)
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()  # the answer is complete; keep reading (and dropping) for a moment
        self._lingering = 0
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    # -- the request body ------------------------------------------------------------------------------

    def _arm_body_timer(self) -> None:
        self._cancel_body_timer()
        if self.cycle is not None and self.cycle.more_body:
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm_body_timer()

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # we stopped reading (the application is slow), not the client
            self._arm_body_timer()
            return
        self.transport.close()

    # -- between requests ------------------------------------------------------------------------------

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)


def protocol_class(limits: ConnectionLimits) -> type[BoundedHttpProtocol]:
    """uvicorn builds one protocol per connection from a class: a subclass carries this server's limits."""
    return type("BoundedHttpProtocol", (BoundedHttpProtocol,), {"limits": limits})


def uvicorn_options(limits: ConnectionLimits, forwarded_allow_ips: tuple[str, ...]) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``: these limits, and forwarded headers only from named proxies."""
    return {
        "http": protocol_class(limits),
        "timeout_keep_alive": limits.keep_alive_timeout,
        "proxy_headers": bool(forwarded_allow_ips),
        # None would make uvicorn read FORWARDED_ALLOW_IPS; it only matters when proxy_headers is on.
        "forwarded_allow_ips": list(forwarded_allow_ips) or None,
    }


# Query parameters whose value is a credential: the pre-signed failed-records URL's Token (it fetches rejected
# rows for an hour), a console CSRF token a client put in a URL (refused, but the request is still logged), and
# SigV4's query-string form. An access log is read by more people than the data dir: the values never reach it.
SECRET_QUERY_PARAMETERS = ("token", "csrf_token", "x-amz-signature", "x-amz-credential", "x-amz-security-token")
_SECRET_VALUE = re.compile(r"(?i)(?<=[?&])(" + "|".join(re.escape(p) for p in SECRET_QUERY_PARAMETERS) + r")=[^&#]*")


def redact_query(path_with_query: str) -> str:
    """The request target with each secret query parameter's value replaced by ``REDACTED``."""
    if "?" not in path_with_query:
        return path_with_query
    return _SECRET_VALUE.sub(r"\1=REDACTED", path_with_query)


class RedactSecrets(logging.Filter):
    """Rewrites uvicorn's access log record (its args: client, method, target, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact_query(args[2]), args[3], args[4])
        return True


def log_config(access_log: bool) -> dict[str, Any]:
    """uvicorn's logging: its own start/stop lines off (``serve`` prints its banner), warnings and errors on
    stderr, and with ``--access-log`` one line a request on stdout with secrets redacted. uvicorn's
    ``log_level`` would set the access logger to the same level as its errors, which silenced it."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_secrets": {"()": RedactSecrets}}
    config["handlers"]["access"]["filters"] = ["redact_secrets"]
    config["loggers"]["uvicorn"]["level"] = "WARNING"
    config["loggers"]["uvicorn.error"]["level"] = "WARNING"
    config["loggers"]["uvicorn.access"]["level"] = "INFO" if access_log else "WARNING"
    return config
