"""ReadBeforeAnswer (request_body.py) in process: an answer that starts before the request body was read waits
for the rest of the body (within bounds), and says ``Connection: close`` when it could not read to the end.
The acceptance test (tests/acceptance/test_body_limits.py) shows what a urllib client sees of it."""

from __future__ import annotations

from typing import Any

import anyio
from starlette.types import Message, Receive, Scope, Send

from sescontacts.server.request_body import ReadBeforeAnswer


async def refuse_at_once(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def read_then_answer(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body", False):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def run(
    app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]], *, drain_bytes: int = 1000
) -> tuple[int, list[Message], int]:
    """(chunks the client got to send, messages sent back, receive calls after the body ended)."""
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]
    total = len(pending)
    extra = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal extra
        if pending:
            return pending.pop(0)
        extra += 1
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    anyio.run(ReadBeforeAnswer(app, drain_bytes=drain_bytes), scope, receive, send)
    return total - len(pending), sent, extra


def closes(sent: list[Message]) -> bool:
    return (b"connection", b"close") in sent[0]["headers"]


def test_an_early_answer_waits_for_the_rest_of_the_body() -> None:
    read, sent, extra = run(refuse_at_once, [b"x" * 300] * 3, [(b"content-length", b"900")])
    assert (read, extra, sent[0]["status"], closes(sent)) == (3, 0, 413, False)


def test_a_body_past_the_bound_is_left_and_the_connection_closed() -> None:
    read, sent, _ = run(refuse_at_once, [b"x" * 300] * 10, [(b"transfer-encoding", b"chunked")])
    assert read < 10 and read * 300 <= 1000 + 300
    assert closes(sent)
    declared, sent, _ = run(refuse_at_once, [b"x" * 300] * 10, [(b"content-length", b"3000")])
    assert declared == 0 and closes(sent)  # declared past the bound: not read at all


def test_a_client_waiting_for_100_continue_is_answered_without_reading() -> None:
    headers = [(b"content-length", b"900"), (b"expect", b"100-continue")]
    read, sent, _ = run(refuse_at_once, [b"x" * 300] * 3, headers)
    assert (read, sent[0]["status"], closes(sent)) == (0, 413, True)


def test_an_application_that_read_its_body_is_untouched() -> None:
    read, sent, extra = run(read_then_answer, [b"a", b"b"], [(b"content-length", b"2")])
    assert (read, extra, sent[0]["status"], closes(sent)) == (2, 0, 200, False)


def test_a_request_without_a_body_is_not_read() -> None:
    read, sent, _ = run(refuse_at_once, [b""], [])
    assert (read, closes(sent)) == (0, False)
