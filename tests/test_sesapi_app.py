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
from sescontacts.model import Contact, ContactList, ContactQuery, Topic, TopicFilter
from sescontacts.services import Services
from sescontacts.ses_wire import preferences_to_ses, to_ses_time
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
        "Value at 'topics.1.member.defaultSubscriptionStatus' failed to satisfy constraint: "
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


@pytest.mark.parametrize("holder", ["this process", "another process"])
def test_reads_proceed_while_writes_wait_for_the_write_lock(
    services: Services, client: InProcessClient, holder: str
) -> None:
    """An import (or another process) holding SQLite's write lock stalls writes, not the loop or reads; each
    write (tried on the loop first, then waiting in a worker) is answered once, after the lock frees."""
    import threading

    import anyio

    from sescontacts.db import Database
    from sescontacts.schema import PRODUCT_SCHEMA

    holder_db = services.db if holder == "this process" else Database(services.db.path, PRODUCT_SCHEMA)

    assert client.call("POST", f"{LIST}/L/contacts", {"EmailAddress": "seen@x.com"}).status == 200
    guarded: list[str] = []  # a guard (a rate limit, say) must count each request once, wherever it runs
    client.app.guards.append(lambda operation, key: guarded.append(operation))  # type: ignore[attr-defined]
    release = threading.Event()
    holding = threading.Event()

    def hold_write_lock() -> None:
        with holder_db.write():
            holding.set()
            release.wait(30)

    holder_thread = threading.Thread(target=hold_write_lock)
    holder_thread.start()
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
        holder_thread.join()
        if holder_db is not services.db:
            holder_db.close()
    listed = client.call("POST", f"{LIST}/L/contacts/list", {}).json["Contacts"]
    assert sorted(c["EmailAddress"] for c in listed) == ["seen@x.com", "w0@x.com", "w1@x.com", "w2@x.com"]
    assert sorted(guarded) == ["CreateContact"] * 3 + ["GetContact", "ListContacts"]


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


# -- error answers as SES gives them (issue #9; sources in each test's docstring) ---------------------------

ENUM_SUFFIX = "failed to satisfy constraint: Member must satisfy enum value set: [OPT_OUT, OPT_IN]"


def _topics(n: int) -> list[dict[str, str]]:
    return [{"TopicName": f"t{i}", "DisplayName": f"T{i}", "DefaultSubscriptionStatus": "OPT_IN"} for i in range(n)]


def assert_error(reply: Any, status: int, code: str, message: str) -> None:
    assert (reply.status, reply.error_type, reply.json) == (status, code, {"__type": code, "message": message})


def test_more_than_twenty_topics_is_a_bad_request(services: Services, client: InProcessClient) -> None:
    """floci's probe of real SES: BadRequestException, though the model also lists LimitExceeded."""
    services.store.delete_list("L")
    message = "Maximum of <20> topics allowed per ContactList"
    assert_error(
        client.call("POST", LIST, {"ContactListName": "M", "Topics": _topics(21)}), 400, "BadRequestException", message
    )
    assert client.call("POST", LIST, {"ContactListName": "M", "Topics": _topics(20)}).status == 200
    assert_error(client.call("PUT", f"{LIST}/M", {"Topics": _topics(21)}), 400, "BadRequestException", message)


def test_a_preference_for_a_topic_the_list_lacks_is_a_bad_request(client: InProcessClient) -> None:
    """400, not 404 (floci's SesContactService, probed): CreateContact and UpdateContact alike."""
    prefs = {"TopicPreferences": [{"TopicName": "nope", "SubscriptionStatus": "OPT_IN"}]}
    message = "List: L doesn't contain Topic: nope"
    reply = client.call("POST", f"{LIST}/L/contacts", {"EmailAddress": "a@x.com", **prefs})
    assert_error(reply, 400, "BadRequestException", message)
    assert client.call("POST", f"{LIST}/L/contacts", {"EmailAddress": "a@x.com"}).status == 200
    assert_error(client.call("PUT", f"{LIST}/L/contacts/a%40x.com", prefs), 400, "BadRequestException", message)


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("PUT", {}), ("DELETE", None)])
@pytest.mark.parametrize("list_name", ["L", "missing", "bad%20name"])
@pytest.mark.parametrize(("raw", "shown"), [("not-an-address", "not-an-address"), ("a%40nodot", "a@nodot")])
def test_a_malformed_path_address_is_refused_before_any_lookup(
    client: InProcessClient, method: str, body: Any, list_name: str, raw: str, shown: str
) -> None:
    """Get/Update/DeleteContact check the path's address first (floci's SesContactService, probed): a 400
    whether the list exists, is missing, or has a malformed name."""
    reply = client.call(method, f"{LIST}/{list_name}/contacts/{raw}", body)
    assert_error(reply, 400, "BadRequestException", f"EmailAddress <{shown}> is invalid")


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("PUT", {}), ("DELETE", None)])
def test_a_blank_path_address_is_blank(client: InProcessClient, method: str, body: Any) -> None:
    """botocore sends ``EmailAddress=""`` as a trailing "/": SES's blank-address message (our inference: the
    probe saw this message for a blank address, on a route that can carry one)."""
    for list_name in ("L", "missing"):
        reply = client.call(method, f"{LIST}/{list_name}/contacts/", body)
        assert_error(reply, 400, "BadRequestException", "EmailAddress can't be blank.")


def test_a_valid_path_address_still_reaches_the_list_and_the_contact(client: InProcessClient) -> None:
    assert_error(
        client.call("GET", f"{LIST}/missing/contacts/a%40x.com"),
        404,
        "NotFoundException",
        "List with name: missing doesn't exist.",
    )
    assert_error(
        client.call("DELETE", f"{LIST}/L/contacts/a%40x.com"),
        404,
        "NotFoundException",
        "a@x.com doesn't exist in List.",
    )


def test_an_invalid_body_address_has_ses_angle_brackets(client: InProcessClient) -> None:
    reply = client.call("POST", f"{LIST}/missing/contacts", {"EmailAddress": "two@@x.com"})
    assert_error(reply, 400, "BadRequestException", "EmailAddress <two@@x.com> is invalid")
    reply = client.call("POST", f"{LIST}/L/contacts", {"EmailAddress": "  "})
    assert_error(reply, 400, "BadRequestException", "EmailAddress can't be blank.")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"EmailAddress": true}', "TRUE_VALUE can not be converted to a String"),
        (b'{"EmailAddress": false}', "FALSE_VALUE can not be converted to a String"),
        (b'{"EmailAddress": 5}', "NUMBER_VALUE can not be converted to a String"),
        (b'{"EmailAddress": 5.5}', "NUMBER_VALUE can not be converted to a String"),
        (b'{"EmailAddress": []}', "Start of list found where not expected"),
        (b'{"EmailAddress": {}}', "Start of structure or map found where not expected."),
        (b'{"EmailAddress": "a@x.com", "AttributesData": false}', "FALSE_VALUE can not be converted to a String"),
        (b'{"EmailAddress": "a@x.com", "UnsubscribeAll": 1}', "NUMBER_VALUE can not be converted to a Boolean"),
        (b'{"EmailAddress": "a@x.com", "UnsubscribeAll": "maybe"}', "STRING_VALUE can not be converted to an Boolean"),
        (b'{"EmailAddress": "a@x.com", "UnsubscribeAll": null}', ""),
        (b'{"EmailAddress": "a@x.com", "UnsubscribeAll": []}', "Start of list found where not expected"),
        (b'{"EmailAddress": "a@x.com", "TopicPreferences": {}}', "Expected list or null"),
        (b'{"EmailAddress": "a@x.com", "TopicPreferences": "t1"}', "Expected list or null"),
        (b'{"EmailAddress": "a@x.com", "TopicPreferences": ["t1"]}', "Expected null"),
        (b'{"EmailAddress": "a@x.com", "TopicPreferences": [[]]}', "Start of list found where not expected"),
        (
            b'{"EmailAddress": "a@x.com", "TopicPreferences": [{"TopicName": true}]}',
            "TRUE_VALUE can not be converted to a String",
        ),
        (b'"text"', "Expected null"),
        (b"[]", "Start of list found where not expected"),
    ],
)
def test_wrong_json_types_get_the_deserialiser_messages_of_ses(
    client: InProcessClient, body: bytes, message: str
) -> None:
    """The messages of SES's deserialiser as floci's probe recorded them (SesV2Json and its tests): SES's own
    token names (TRUE_VALUE, not Jackson's VALUE_TRUE), no full stop after "list", "Expected null" for a
    scalar where a structure goes, "Expected list or null" where a list goes, and no message for a null
    boolean."""
    assert_error(client.call("POST", f"{LIST}/L/contacts", body), 400, "SerializationException", message)
    assert client.call("POST", f"{LIST}/L/contacts/list", {}).json["Contacts"] == []


@pytest.mark.parametrize(
    ("text", "expected"), [("yes", True), ("TRUE", True), ("1", True), ("no", False), ("F", False)]
)
def test_a_string_that_names_a_boolean_is_read_as_one(client: InProcessClient, text: str, expected: bool) -> None:
    """Probed (floci's SesBooleanCoercionV2IntegrationTest): "no" is false, not true as any string once was here."""
    assert client.call("POST", f"{LIST}/L/contacts", {"EmailAddress": "b@x.com", "UnsubscribeAll": text}).status == 200
    assert client.call("GET", f"{LIST}/L/contacts/b%40x.com").json["UnsubscribeAll"] is expected


@pytest.mark.parametrize(
    ("method", "target", "body", "path", "allowed"),
    [
        (
            "POST",
            LIST,
            {
                "ContactListName": "M",
                "Topics": [{"TopicName": "t", "DisplayName": "T", "DefaultSubscriptionStatus": "MAYBE"}],
            },
            "topics.1.member.defaultSubscriptionStatus",
            "[OPT_OUT, OPT_IN]",
        ),
        (
            "PUT",
            f"{LIST}/L",
            {"Topics": [{"TopicName": "t", "DisplayName": "T", "DefaultSubscriptionStatus": "opt_in"}]},
            "topics.1.member.defaultSubscriptionStatus",
            "[OPT_OUT, OPT_IN]",
        ),
        (
            "POST",
            f"{LIST}/L/contacts",
            {"EmailAddress": "a@x.com", "TopicPreferences": [{"TopicName": "t1", "SubscriptionStatus": "MAYBE"}]},
            "topicPreferences.1.member.subscriptionStatus",
            "[OPT_OUT, OPT_IN]",
        ),
        (
            "PUT",
            f"{LIST}/L/contacts/a%40x.com",
            {"TopicPreferences": [{"TopicName": "t1", "SubscriptionStatus": "MAYBE"}]},
            "topicPreferences.1.member.subscriptionStatus",
            "[OPT_OUT, OPT_IN]",
        ),
        (
            "POST",
            f"{LIST}/L/contacts/list",
            {"Filter": {"FilteredStatus": "MAYBE"}},
            "filter.filteredStatus",
            "[OPT_OUT, OPT_IN]",
        ),
        (
            "POST",
            "/v2/email/import-jobs/list",
            {"ImportDestinationType": "BOTH"},
            "importDestinationType",
            "[SUPPRESSION_LIST, CONTACT_LIST]",
        ),
        (
            "POST",
            "/v2/email/import-jobs",
            {
                "ImportDestination": {
                    "ContactListDestination": {"ContactListName": "L", "ContactListImportAction": "MERGE"}
                },
                "ImportDataSource": {"S3Url": "s3://b/k.csv", "DataFormat": "CSV"},
            },
            "importDestination.contactListDestination.contactListImportAction",
            "[DELETE, PUT]",
        ),
        (
            "POST",
            "/v2/email/import-jobs",
            {
                "ImportDestination": {
                    "ContactListDestination": {"ContactListName": "L", "ContactListImportAction": "PUT"}
                },
                "ImportDataSource": {"S3Url": "s3://b/k.csv", "DataFormat": "XML"},
            },
            "importDataSource.dataFormat",
            "[CSV, JSON]",
        ),
        (
            "POST",
            "/v2/email/import-jobs",
            {
                "ImportDestination": {"SuppressionListDestination": {"SuppressionListImportAction": "ADD"}},
                "ImportDataSource": {"S3Url": "s3://b/k.csv", "DataFormat": "CSV"},
            },
            "importDestination.suppressionListDestination.suppressionListImportAction",
            "[DELETE, PUT]",
        ),
    ],
)
def test_a_bad_enum_value_is_never_quoted(
    client: InProcessClient, method: str, target: str, body: Any, path: str, allowed: str
) -> None:
    """``1 validation error detected: Value at '<path>' ...`` with no value, as the probe saw for
    SubscriptionStatus; the other enums' values in the model's order (our inference)."""
    expected = f"1 validation error detected: Value at '{path}' failed to satisfy constraint: " + (
        f"Member must satisfy enum value set: {allowed}"
    )
    assert_error(client.call(method, target, body), 400, "BadRequestException", expected)


def test_list_contacts_checks_in_ses_order(client: InProcessClient) -> None:
    """Probed precedence (floci's SesContactFilterTest): enum, page size, filter shape, token, list, topic."""
    contacts = f"{LIST}/missing/contacts/list"
    bad_enum = {
        "Filter": {"FilteredStatus": "BOGUS", "TopicFilter": {"TopicName": ""}},
        "PageSize": 0,
        "NextToken": "x",
    }
    assert_error(
        client.call("POST", contacts, bad_enum),
        400,
        "BadRequestException",
        f"1 validation error detected: Value at 'filter.filteredStatus' {ENUM_SUFFIX}",
    )
    page_size = {"Filter": {"TopicFilter": {}}, "PageSize": 0, "NextToken": "x"}
    assert_error(
        client.call("POST", contacts, page_size), 400, "BadRequestException", "The page size must be between 1 and 1000"
    )
    assert_error(
        client.call("POST", contacts, {"Filter": {}, "NextToken": "x"}),
        400,
        "BadRequestException",
        "Invalid FilteredStatus <null>",
    )
    blank_topic = {"Filter": {"FilteredStatus": "OPT_IN", "TopicFilter": {"TopicName": " "}}, "NextToken": "x"}
    assert_error(
        client.call("POST", contacts, blank_topic),
        400,
        "BadRequestException",
        "TopicName can't be blank in TopicFilter.",
    )
    no_topic = {"Filter": {"FilteredStatus": "OPT_IN", "TopicFilter": {}}}
    assert_error(
        client.call("POST", contacts, no_topic), 400, "BadRequestException", "TopicName can't be blank in TopicFilter."
    )
    unknown_topic = {"Filter": {"FilteredStatus": "OPT_IN", "TopicFilter": {"TopicName": "nope"}}}
    assert_error(
        client.call("POST", contacts, {**unknown_topic, "NextToken": "x"}),
        400,
        "BadRequestException",
        "Provided NextToken is invalid",
    )
    assert_error(
        client.call("POST", contacts, {**unknown_topic, "NextToken": ""}),
        400,
        "BadRequestException",
        "Provided NextToken is invalid",
    )
    assert_error(
        client.call("POST", contacts, unknown_topic), 404, "NotFoundException", "List with name: missing doesn't exist."
    )
    # A TopicFilter naming a topic the list lacks stays a 404 (probed), unlike a preference for one.
    reply = client.call("POST", f"{LIST}/L/contacts/list", unknown_topic)
    assert_error(reply, 404, "NotFoundException", "List: L doesn't contain Topic: nope")


def _item_from_contact(contact: Contact, contact_list: ContactList) -> dict[str, Any]:
    """A ListContacts item as the API built it from a whole Contact before it read the store's ListedContact
    page: the reference the listing's bytes are compared with."""
    return {
        "EmailAddress": contact.email,
        "TopicPreferences": preferences_to_ses(contact.topic_preferences),
        "TopicDefaultPreferences": preferences_to_ses(contact.default_preferences(contact_list)),
        "UnsubscribeAll": contact.unsubscribe_all,
        "LastUpdatedTimestamp": to_ses_time(contact.updated),
    }


def test_list_contacts_bytes_are_those_of_whole_contacts(services: Services, client: InProcessClient) -> None:
    """Every page, filtered or not, is byte for byte what rendering ``list_contacts``' Contacts gives: topics
    explicit and defaulted, unsubscribe-all, odd addresses, and the NextToken that pages either."""
    topics = [Topic("t1", "T1", "OPT_IN"), Topic("t2", 'Two "quoted"', "OPT_OUT"), Topic("t3", "Three", "OPT_IN")]
    services.store.update_list("L", topics=topics)
    contacts: list[dict[str, Any]] = [
        {"EmailAddress": "plain@example.com"},
        {
            "EmailAddress": "Ünïcode@exämple.com",
            "TopicPreferences": [{"TopicName": "t2", "SubscriptionStatus": "OPT_IN"}],
        },
        {"EmailAddress": "o'brien@example.com", "UnsubscribeAll": True, "AttributesData": '{"a": "\\"x\\""}'},
        {
            "EmailAddress": "both@example.com",
            "UnsubscribeAll": True,
            "TopicPreferences": [
                {"TopicName": "t3", "SubscriptionStatus": "OPT_OUT"},
                {"TopicName": "t1", "SubscriptionStatus": "OPT_IN"},
            ],
        },
        {"EmailAddress": "UPPER.case+tag@Example.com", "AttributesData": '{"n": 1}'},
    ]
    for body in contacts:
        assert client.call("POST", f"{LIST}/L/contacts", body).status == 200
    contact_list = services.store.get_list("L")
    filters: list[tuple[dict[str, Any], ContactQuery]] = [
        ({}, ContactQuery()),
        ({"Filter": {"FilteredStatus": "OPT_OUT"}}, ContactQuery(status="OPT_OUT")),
        (
            {"Filter": {"FilteredStatus": "OPT_IN", "TopicFilter": {"TopicName": "t2"}}},
            ContactQuery(status="OPT_IN", topic=TopicFilter("t2", False)),
        ),
        (
            {
                "Filter": {
                    "FilteredStatus": "OPT_OUT",
                    "TopicFilter": {"TopicName": "t3", "UseDefaultIfPreferenceUnavailable": True},
                }
            },
            ContactQuery(status="OPT_OUT", topic=TopicFilter("t3", True)),
        ),
    ]
    for request, query in filters:
        for size in (2, 1000):
            token: str | None = None
            while True:
                reply = client.call(
                    "POST",
                    f"{LIST}/L/contacts/list",
                    {**request, "PageSize": size, **({"NextToken": token} if token else {})},
                )
                page = services.store.list_contacts("L", query, page_size=size, token=token)
                expected: dict[str, Any] = {"Contacts": [_item_from_contact(c, contact_list) for c in page.items]}
                if page.next_token:
                    expected["NextToken"] = page.next_token
                assert reply.status == 200 and reply.body == orjson.dumps(expected)
                token = page.next_token
                if token is None:
                    break


def test_list_contacts_pages_by_fifty_without_a_page_size(client: InProcessClient) -> None:
    """SES's default page size for ListContacts (probed: floci's SesListPaging), though ours elsewhere is 1000."""
    for n in range(51):
        assert client.call("POST", f"{LIST}/L/contacts", {"EmailAddress": f"c{n:02}@x.com"}).status == 200
    first = client.call("POST", f"{LIST}/L/contacts/list", {}).json
    assert len(first["Contacts"]) == 50 and first["NextToken"]
    rest = client.call("POST", f"{LIST}/L/contacts/list", {"NextToken": first["NextToken"]}).json
    assert [c["EmailAddress"] for c in rest["Contacts"]] == ["c50@x.com"] and "NextToken" not in rest
    assert len(client.call("GET", f"{LIST}/L/contacts").json["Contacts"]) == 50  # the legacy GET too


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        ("NextToken=", "BadRequestException", "Provided NextToken is invalid"),
        ("NextToken=garbage", "BadRequestException", "Provided NextToken is invalid"),
        ("PageSize=0&NextToken=", "BadRequestException", "The page size must be between 1 and 1000"),
        ("PageSize=1001", "BadRequestException", "The page size must be between 1 and 1000"),
        ("PageSize=abc", "SerializationException", "'abc' can not be converted to Integer"),
        ("PageSize=1_0", "SerializationException", "'1_0' can not be converted to Integer"),
        ("PageSize=99999999999", "SerializationException", "'99999999999' can not be converted to Integer"),
    ],
)
def test_list_contact_lists_paging_errors(client: InProcessClient, query: str, code: str, message: str) -> None:
    """BadRequestException for a bad token (the model lists no InvalidNextTokenException here); messages as
    probed (floci's SesListPaging)."""
    assert_error(client.call("GET", f"{LIST}?{query}"), 400, code, message)


def test_list_contact_lists_reads_an_empty_page_size_as_absent(client: InProcessClient) -> None:
    assert client.call("GET", f"{LIST}?PageSize=").json["ContactLists"][0]["ContactListName"] == "L"


def test_create_import_job_on_a_missing_list_is_not_found(client: InProcessClient) -> None:
    """Probed (floci's SesImportJobService): 404 NotFoundException with this wording, though the model lists
    no NotFoundException for CreateImportJob."""
    body = {
        "ImportDestination": {"ContactListDestination": {"ContactListName": "ghost", "ContactListImportAction": "PUT"}},
        "ImportDataSource": {"S3Url": "s3://bucket/contacts.csv", "DataFormat": "CSV"},
    }
    assert_error(
        client.call("POST", "/v2/email/import-jobs", body),
        404,
        "NotFoundException",
        "ContactList <ghost> doesn't exist",
    )


def test_create_import_job_checks_the_s3_url_with_the_model_pattern(client: InProcessClient) -> None:
    """The model's pattern is checked with the other protocol constraints, in one message."""
    body = {
        "ImportDestination": {
            "ContactListDestination": {"ContactListName": "ghost", "ContactListImportAction": "MERGE"}
        },
        "ImportDataSource": {"S3Url": "https://bucket/contacts.csv", "DataFormat": "CSV"},
    }
    reply = client.call("POST", "/v2/email/import-jobs", body)
    assert_error(
        reply,
        400,
        "BadRequestException",
        "2 validation errors detected: Value at 'importDestination.contactListDestination.contactListImportAction' "
        "failed to satisfy constraint: Member must satisfy enum value set: [DELETE, PUT]; "
        "Value at 'importDataSource.s3Url' failed to satisfy constraint: Member must satisfy regular expression "
        "pattern: ^s3:\\/\\/([^\\/]+)\\/(.*?([^\\/]+)\\/?)$",
    )
