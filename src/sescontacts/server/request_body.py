"""An answer sent before the request body was read must still reach the client.

The server answers some requests before reading their body: a 413 for a body over a limit (the SES API's
1 MiB, a console form's 2 MiB), a 401 to a logged-out POST, a refused CSRF token or Host. If the connection
is then closed with the rest of the body unread - uvicorn closes it after the answer when the client sent
``Connection: close``, as Python's urllib always does - the kernel answers the unread data with a TCP reset,
and a client that sends its whole body before reading sees "Connection reset by peer", never the answer.

So when an application starts its answer while the request body is still arriving, :class:`ReadBeforeAnswer`
first reads and discards the rest: at most DRAIN_BYTES, for at most DRAIN_SECONDS. When it could not reach the
end (a bigger body, or a client waiting for ``100 Continue``, which has sent nothing and will send nothing)
the answer gets ``Connection: close``: refusing a body never costs more than the bound (uvicorn would
otherwise read a kept-alive connection's body to its end), and that client still reads its answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_BYTES: Final = 8 * 1024 * 1024
DRAIN_SECONDS: Final = 10.0
_CLOSE: Final = (b"connection", b"close")


@dataclass(slots=True)
class _Body:
    received: int = 0  # bytes the application (or the drain) has read
    complete: bool = False  # the last part arrived, or the client left


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return None


def _declared_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def has_body(scope: Scope) -> bool:
    """A request that announces a body (Content-Length above 0, or Transfer-Encoding)."""
    declared = _declared_length(scope)
    return bool(declared) or _header(scope, b"transfer-encoding") is not None


class ReadBeforeAnswer:
    """ASGI wrapper: an answer never races the request body (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, drain_bytes: int = DRAIN_BYTES, drain_seconds: float = DRAIN_SECONDS):
        self.app = app
        self.drain_bytes = drain_bytes
        self.drain_seconds = drain_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_body(scope):
            await self.app(scope, receive, send)
            return
        body = _Body()

        async def tracked_receive() -> Message:
            message = await receive()
            _note(body, message)
            return message

        async def answering_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not body.complete:
                await self._drain(scope, receive, body)
                if not body.complete:
                    headers = list(message.get("headers", []))
                    if _CLOSE not in headers:
                        message = {**message, "headers": [*headers, _CLOSE]}
            await send(message)

        await self.app(scope, tracked_receive, answering_send)

    async def _drain(self, scope: Scope, receive: Receive, body: _Body) -> None:
        """Read and drop the rest of the body, within the bounds; ``body.complete`` says if the end came."""
        if body.received == 0 and (_header(scope, b"expect") or b"").lower() == b"100-continue":
            return  # reading would make uvicorn send "100 Continue": the client has sent nothing yet
        declared = _declared_length(scope)
        if declared is not None and declared - body.received > self.drain_bytes:
            return
        limit = body.received + self.drain_bytes
        with anyio.move_on_after(self.drain_seconds):
            while not body.complete and body.received <= limit:
                _note(body, await receive())


def _note(body: _Body, message: Message) -> None:
    if message["type"] == "http.request":
        body.received += len(message.get("body", b""))
        if not message.get("more_body", False):
            body.complete = True
    else:  # http.disconnect: nothing more will come
        body.complete = True
