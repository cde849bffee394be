"""Bodies over a limit against a real ``sescontacts serve``, sent the way Python's urllib sends them: the whole
body first (with ``Connection: close``), then the answer is read. The refusal must arrive as an answer (a
413 in SES's JSON under /v2/, a page on the console), never as "Connection reset by peer"."""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.support.server import ADMIN_PASSWORD, RunningServer, run_server

from .api_http import sign

# Over both limits (1 MiB for the SES API, 2 MiB for console forms), under what the server reads to refuse
# them; big enough that the server, answering at once, closed while the client was still sending.
BODY_BYTES = 7 * 1024 * 1024


@pytest.fixture(scope="module", name="server")
def server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("limits") / "data") as running:
        yield running


def urlopen_error(request: urllib.request.Request) -> urllib.error.HTTPError:
    """The error answer to ``request``; it holds the connection: use it in a with block."""
    with pytest.raises(urllib.error.HTTPError) as caught:  # a reset would be a URLError, not an HTTPError
        urllib.request.urlopen(request, timeout=60)
    return caught.value


def test_the_ses_api_answers_a_body_over_its_limit_with_a_readable_413(server: RunningServer) -> None:
    target = "/v2/email/contact-lists/contacts/contacts"
    body = b'{"EmailAddress": "big@example.com", "AttributesData": "' + b"x" * BODY_BYTES + b'"}'
    request = urllib.request.Request(server.url + target, body, sign(server.url, "POST", target, body), method="POST")
    with urlopen_error(request) as error:
        assert error.code == 413
        assert error.headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"
        assert json.loads(error.read()) == {
            "__type": "RequestEntityTooLargeException",
            "message": "Request body is larger than 1048576 bytes.",
        }


def _logged_in_opener(server: RunningServer) -> tuple[urllib.request.OpenerDirector, str]:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    page = opener.open(server.url + "/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, page
    form = {"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token.group(1), "next": "/"}
    home = opener.open(server.url + "/login", urlencode(form).encode(), timeout=30).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', home) or re.search(
        r'name="csrf-token" content="([^"]+)"', home
    )
    assert token, home
    return opener, token.group(1)


def test_the_console_answers_a_form_over_its_limit_with_a_readable_413(server: RunningServer) -> None:
    opener, token = _logged_in_opener(server)
    body = urlencode({"csrf_token": token, "email": "big@example.com", "attributes": "x" * BODY_BYTES}).encode()
    request = urllib.request.Request(server.url + "/contacts/new", body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(request, timeout=60)
    with caught.value as error:
        assert error.code == 413
        assert "The form is too large." in error.read().decode()


def test_a_logged_out_post_with_a_big_body_reads_its_401(server: RunningServer) -> None:
    request = urllib.request.Request(server.url + "/contacts/new", b"x" * BODY_BYTES, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urlopen_error(request) as error:
        assert error.code == 401


def test_a_client_that_waits_for_100_continue_gets_the_413_without_sending_the_body(server: RunningServer) -> None:
    """curl's way: it sends nothing of a big body until the server says ``100 Continue``."""
    target = "/v2/email/contact-lists/contacts/contacts"
    head = (
        f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {BODY_BYTES}\r\nExpect: 100-continue\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large", answer[:300]
    assert b"connection: close" in rest.lower()
    assert b"100 Continue" not in answer


def test_a_body_past_what_the_server_reads_to_refuse_it_ends_the_connection(server: RunningServer) -> None:
    """Refusing costs at most the drain bound: a bigger declared body is answered at once, and closed."""
    target = "/v2/email/contact-lists/contacts/contacts"
    head = (
        f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {1024**3}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode() + b"x" * 65536)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in answer.lower()
