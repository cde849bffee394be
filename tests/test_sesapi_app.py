"""The SES API app in-process (real store on a temporary SQLite file, requests signed by botocore):
codec rules, body cap, error rendering, the guard seam, and the handlers' protocol checks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sescontacts.errors import NotFound, TooManyRequests
from sescontacts.model import Topic
from sescontacts.services import Services
from sescontacts.ses_wire import to_ses_time
from sescontacts.sesapi.app import SesApi
from sescontacts.sesapi.codec import ApiRequest, Violations, encode_error
from sescontacts.sesapi.routing import OperationTable
from tests.support.sesapi_client import KEY_ID, SECRET, InProcessClient, open_services

LIST = "/v2/email/contact-lists"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    services = open_services(tmp_path / "data")
    services.store.create_list("L", topics=[Topic("t1", "T1", "OPT_IN")])
    yield services
    services.close()


@pytest.fixture
def client(services: Services) -> InProcessClient:
    return InProcessClient(services)


def test_success_shape_and_headers(client: InProcessClient) -> None:
    reply = client.call("POST", f"{LIST}/L/contacts", {"EmailAddress": "a@x.com"})
    assert (reply.status, reply.body) == (200, b"{}")
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["content-length"] == "2"
    assert len(reply.headers["x-amzn-requestid"]) == 36
    got = client.call("GET", f"{LIST}/L/contacts/a%40x.com").json
    assert isinstance(got["CreatedTimestamp"], float)
    assert got["CreatedTimestamp"] == round(got["CreatedTimestamp"], 3)


def test_error_shape(client: InProcessClient) -> None:
    reply = client.call("GET", f"{LIST}/nope")
    assert reply.status == 404
    assert reply.error_type == "NotFoundException"
    assert reply.json == {"__type": "NotFoundException", "message": "List with name: nope doesn't exist."}


def test_empty_list_name_label_is_blank(client: InProcessClient) -> None:
    reply = client.call("GET", f"{LIST}//contacts/x%40y.z")
    assert (reply.status, reply.json["message"]) == (400, "ContactListName can't be blank.")


def test_body_cap_with_content_length(client: InProcessClient) -> None:
    body = b"x" * (1024 * 1024 + 1)
    reply = client.call("POST", f"{LIST}/L/contacts", body)
    assert (reply.status, reply.error_type) == (413, "RequestEntityTooLargeException")


def test_body_cap_when_streamed_without_content_length(client: InProcessClient) -> None:
    chunk = b"x" * 65536
    headers = [(b"host", b"testserver")]
    reply = client.raw("POST", f"{LIST}/L/contacts", headers=headers, chunks=[chunk] * 20)
    assert (reply.status, reply.error_type) == (413, "RequestEntityTooLargeException")


def test_body_in_chunks_is_reassembled(client: InProcessClient) -> None:
    body = orjson.dumps({"EmailAddress": "chunked@x.com", "AttributesData": "{}"})
    headers = client.signed_headers("POST", f"{LIST}/L/contacts", body)
    reply = client.raw("POST", f"{LIST}/L/contacts", headers=headers, chunks=[body[:5], body[5:9], body[9:]])
    assert reply.status == 200
    assert client.call("GET", f"{LIST}/L/contacts/chunked%40x.com").json["AttributesData"] == "{}"


def test_unexpected_exception_is_a_logged_json_500_without_secrets(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    table = OperationTable()

    def explode(request: ApiRequest) -> dict[str, Any]:
        raise RuntimeError("boom")

    table.add("Explode", "GET", "/v2/email/explode", explode)
    client = InProcessClient(services)
    client.app = SesApi(services, table=table, verifier=client.app.verifier)  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="sescontacts.sesapi"):
        reply = client.call("GET", "/v2/email/explode")
    assert (reply.status, reply.error_type) == (500, "InternalFailure")
    assert reply.json["__type"] == "InternalFailure"
    assert "Explode" in caplog.text and "boom" in caplog.text
    assert SECRET not in caplog.text and "Signature=" not in caplog.text


def test_guard_seam_answers_with_an_ses_error(services: Services) -> None:
    client = InProcessClient(services)
    calls: list[tuple[str, str]] = []

    def throttle(operation: str, access_key_id: str) -> None:
        calls.append((operation, access_key_id))
        raise TooManyRequests("Too Many Requests")

    client.app.guards.append(throttle)  # type: ignore[attr-defined]
    reply = client.call("GET", f"{LIST}/L")
    assert (reply.status, reply.error_type, reply.json["message"]) == (
        429,
        "TooManyRequestsException",
        "Too Many Requests",
    )
    assert calls == [("GetContactList", "AKIAINPROCESSTEST001")]
    # Unsigned requests are refused before any guard runs.
    assert client.raw("GET", f"{LIST}/L").status == 403 and len(calls) == 1


def test_client_disconnect_before_the_body_sends_nothing(client: InProcessClient) -> None:
    import anyio

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": LIST,
        "raw_path": LIST.encode(),
        "query_string": b"",
        "headers": [],
    }
    anyio.run(client.app, scope, receive, send)
    assert sent == []


def test_non_http_scopes_are_ignored(client: InProcessClient) -> None:
    import anyio

    async def receive() -> dict[str, Any]:
        raise AssertionError("not read")

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("nothing sent")

    anyio.run(client.app, {"type": "websocket"}, receive, send)


def test_multiple_violations_are_listed_together(client: InProcessClient) -> None:
    reply = client.call("POST", LIST, {"Topics": [{"TopicName": "t", "DefaultSubscriptionStatus": "SOMETIMES"}]})
    assert reply.json["message"] == (
        "3 validation errors detected: "
        "Value at 'contactListName' failed to satisfy constraint: Member must not be null; "
        "Value at 'topics.1.member.displayName' failed to satisfy constraint: Member must not be null; "
        "Value 'SOMETIMES' at 'topics.1.member.defaultSubscriptionStatus' failed to satisfy constraint: "
        "Member must satisfy enum value set: [OPT_OUT, OPT_IN]"
    )


def test_untag_requires_keys_and_arn(client: InProcessClient) -> None:
    reply = client.call("DELETE", "/v2/email/tags")
    assert reply.json["message"].startswith("2 validation errors detected: Value at 'resourceArn'")


def test_null_members_count_as_absent(client: InProcessClient) -> None:
    assert client.call("PUT", f"{LIST}/L", {"Topics": None, "Description": None}).status == 200
    assert client.call("GET", f"{LIST}/L").json["Topics"][0]["TopicName"] == "t1"
    assert client.call("POST", f"{LIST}/L/contacts", b"null").json["message"].endswith("Member must not be null")


def test_json_escapes_and_unknown_members(client: InProcessClient) -> None:
    body = b'{"EmailAddress": "\\u00fc\\u00f1@x.com", "Unknown": [1, {"deep": true}]}'
    assert client.call("POST", f"{LIST}/L/contacts", body).status == 200
    assert client.call("GET", f"{LIST}/L/contacts/%C3%BC%C3%B1%40x.com").json["EmailAddress"] == "üñ@x.com"


def test_integral_float_page_size_is_accepted(client: InProcessClient) -> None:
    assert client.call("POST", f"{LIST}/L/contacts/list", {"PageSize": 10.0}).status == 200
    assert client.call("POST", f"{LIST}/L/contacts/list", {"PageSize": 10.5}).error_type == "SerializationException"


def test_encode_error_and_timestamps() -> None:
    encoded = encode_error("rid", NotFound("gone"))
    assert encoded.status == 404
    assert (b"x-amzn-errortype", b"NotFoundException") in encoded.headers
    assert (b"x-amzn-requestid", b"rid") in encoded.headers
    assert orjson.loads(encoded.body) == {"__type": "NotFoundException", "message": "gone"}
    assert to_ses_time(1700000000.12345) == 1700000000.123


def test_violations_without_items_do_not_raise() -> None:
    Violations().raise_if_any()


def test_worker_pool_returns_results_and_exceptions_and_closes() -> None:
    import anyio

    from sescontacts.sesapi.workers import WorkerPool

    pool = WorkerPool(threads=2)

    def boom() -> None:
        raise ValueError("from the worker")

    async def main() -> tuple[int, str]:
        value = await pool.run(lambda a, b: a + b, 2, 3)
        try:
            await pool.run(boom)
        except ValueError as exc:
            return value, str(exc)
        return value, ""

    assert anyio.run(main) == (5, "from the worker")
    pool.close()
    pool.close()  # idempotent


def test_reads_proceed_while_writes_wait_for_the_write_lock(services: Services, client: InProcessClient) -> None:
    """An import (or another process) holding SQLite's write lock stalls writes, not the loop or reads."""
    import threading

    import anyio

    assert client.call("POST", f"{LIST}/L/contacts", {"EmailAddress": "seen@x.com"}).status == 200
    release = threading.Event()
    holding = threading.Event()

    def hold_write_lock() -> None:
        with services.db.write():
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold_write_lock)
    holder.start()
    holding.wait(10)

    async def request(method: str, target: str, body: bytes = b"") -> int:
        headers = client.signed_headers(method, target, body)
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": method,
            "path": target,
            "raw_path": target.encode(),
            "query_string": b"",
            "headers": headers,
        }
        await client.app(scope, receive, send)
        return int(sent[0]["status"])

    async def main() -> list[int]:
        statuses: list[int] = []
        async with anyio.create_task_group() as group:

            async def create(n: int) -> None:
                statuses.append(await request("POST", f"{LIST}/L/contacts", b'{"EmailAddress": "w%d@x.com"}' % n))

            for n in range(3):
                group.start_soon(create, n)
            with anyio.fail_after(10):  # the read answers while the three writes wait
                assert await request("GET", f"{LIST}/L/contacts/seen%40x.com") == 200
            assert statuses == []
            release.set()
        return statuses

    try:
        assert anyio.run(main) == [200, 200, 200]
    finally:
        release.set()
        holder.join()


def test_unsigned_payload_cannot_swap_the_body(services: Services, client: InProcessClient) -> None:
    """A captured request signed with ``x-amz-content-sha256: UNSIGNED-PAYLOAD``, replayed with another body."""
    target = f"{LIST}/L/contacts"
    signed_body = b'{"EmailAddress": "a@x.com"}'
    request = AWSRequest(method="POST", url=f"http://testserver{target}", data=signed_body)
    request.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    request.headers["Content-Type"] = "application/json"
    SigV4Auth(Credentials(KEY_ID, SECRET), "ses", "us-east-1").add_auth(request)
    headers = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()] + [(b"host", b"testserver")]
    reply = client.raw("POST", target, b'{"EmailAddress": "swapped@x.com"}', headers=headers)
    assert (reply.status, reply.error_type) == (403, "InvalidSignatureException")
    assert "UNSIGNED-PAYLOAD" in reply.json["message"]
    assert client.call("POST", f"{target}/list", {}).json["Contacts"] == []


def _operations_run(client: InProcessClient) -> list[str]:
    """The operations the app routes to from now on (a guard sees each one before its handler runs)."""
    seen: list[str] = []
    client.app.guards.append(lambda operation, key: seen.append(operation))  # type: ignore[attr-defined]
    return seen


@pytest.mark.parametrize(
    ("signed_for", "sent_to", "message"),
    [
        # botocore signs the path with dot segments removed; the raw path would route to GetContact.
        (f"{LIST}/L", f"{LIST}/L/contacts/..", "EmailAddress can't be '..'"),
        (f"{LIST}/L/contacts/a%40x.com", f"{LIST}/L/contacts/./a%40x.com", "The request path has a '.' segment"),
        (f"{LIST}/L", f"{LIST}/x/../L", "The request path has a '..' segment"),
        # ...and "//" collapsed: the raw path has an empty ContactListName.
        (f"{LIST}/contacts/a%40x.com", f"{LIST}//contacts/a%40x.com", "ContactListName can't be blank."),
        (f"{LIST}/", f"{LIST}//", "The request path has an empty segment"),
    ],
)
def test_the_path_that_runs_is_the_path_that_was_signed(
    client: InProcessClient, signed_for: str, sent_to: str, message: str
) -> None:
    seen = _operations_run(client)
    reply = client.raw("GET", sent_to, headers=client.signed_headers("GET", signed_for, b""))
    assert (reply.status, reply.error_type) == (400, "BadRequestException")
    assert reply.json["message"].startswith(message)
    assert seen == []


def test_a_trailing_slash_is_signed_as_sent_and_routes_to_an_empty_label(client: InProcessClient) -> None:
    """What botocore sends for ``EmailAddress=""``: the signature covers the "/" (SigV4 keeps a trailing slash)."""
    seen = _operations_run(client)
    reply = client.call("GET", f"{LIST}/L/contacts/")
    assert reply.status in (400, 404) and reply.error_type in ("BadRequestException", "NotFoundException")
    assert seen == ["GetContact"]
