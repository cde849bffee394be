"""Slow and oversized requests against a real ``sescontacts serve``: a client that never finishes its request
head, stalls its body or idles on a kept-alive connection is disconnected within the configured timeout, and
an oversized request head is refused, so a few sockets cannot hold the server's connections forever."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import RunningServer, run_server

TIMEOUT = 1  # seconds, set through the options below
SLACK = 5  # how much later than TIMEOUT the server may act before the test calls it a failure


@pytest.fixture(scope="module", name="server")
def server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    options = ["--header-timeout", str(TIMEOUT), "--body-timeout", str(TIMEOUT), "--keep-alive-timeout", str(TIMEOUT)]
    with run_server(tmp_path_factory.mktemp("connections") / "data", extra_args=options) as running:
        yield running


def connect(server: RunningServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT + SLACK)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took; socket.timeout if it never does."""
    started = time.monotonic()
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received, time.monotonic() - started


def test_half_a_request_line_is_disconnected_within_the_header_timeout(server: RunningServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /log")
        answer, waited = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert waited < TIMEOUT + SLACK


def test_headers_dripped_slowly_do_not_extend_the_header_timeout(server: RunningServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        with pytest.raises(OSError):  # the server closes while we are still sending headers
            deadline = started + TIMEOUT + SLACK
            while time.monotonic() < deadline:
                sock.sendall(b"X-Drip: 1\r\n")
                sock.settimeout(0.2)
                try:
                    if sock.recv(65536) == b"":
                        raise ConnectionResetError("closed by the server")
                except TimeoutError:
                    pass
        assert time.monotonic() - started < TIMEOUT + SLACK


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(server: RunningServer) -> None:
    with connect(server) as sock:
        answer, waited = read_until_closed(sock)
    assert answer == b"" and waited < TIMEOUT + SLACK


def test_a_stalled_body_is_abandoned_within_the_body_timeout(server: RunningServer) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100\r\n\r\nusername=a"
        )
        _answer, waited = read_until_closed(sock)
    assert waited < TIMEOUT + SLACK


def test_an_idle_kept_alive_connection_is_closed(server: RunningServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer, waited = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and waited < TIMEOUT + SLACK


def test_an_oversized_request_head_is_refused(server: RunningServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for _ in range(200):  # 200 KiB of headers
                sock.sendall(b"X-Filler: " + b"a" * 1024 + b"\r\n")
        except OSError:
            pass  # the server may close before we finish
        answer, _ = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_an_ordinary_request_still_works(server: RunningServer, tmp_path: Path) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer, _ = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and b"Log in" in answer
