"""The bad-input corpus over real HTTP: each request gets SES's JSON error (never an HTML page or a crash),
and nothing is half-written. Addresses with ``+``, ``%2F`` and non-ASCII round-trip through the raw path."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.server import RunningServer

from .api_http import send, sign, signed_request


def path_of(contact_list: str, email: str | None = None) -> str:
    base = f"/v2/email/contact-lists/{contact_list}/contacts"
    return base if email is None else f"{base}/{quote(email, safe='-._~')}"


def assert_ses_error(reply: tuple[int, dict[str, str], Any], status: int, code: str) -> str:
    got_status, headers, body = reply
    assert (got_status, headers.get("x-amzn-errortype")) == (status, code), body
    assert headers["content-type"] == "application/json"
    assert headers.get("x-amzn-requestid")
    assert isinstance(body, dict) and body["__type"] == code
    return str(body["message"])


@pytest.mark.parametrize(
    ("body", "message_start"),
    [
        (b"{", "The request body is not valid JSON"),
        (b'{"EmailAddress": "a@example.com",}', "The request body is not valid JSON"),
        (b"\xff\xfe", "The request body is not valid JSON"),
        (b"[]", "Start of list found where not expected"),
        (b'"text"', "Expected null"),
        (b'{"EmailAddress": ["a@example.com"]}', "Start of list found where not expected"),
        (b'{"EmailAddress": {"a": 1}}', "Start of structure or map found where not expected"),
        (b'{"EmailAddress": true}', "TRUE_VALUE can not be converted to a String"),
        (b'{"EmailAddress": false}', "FALSE_VALUE can not be converted to a String"),
        (b'{"EmailAddress": "a@example.com", "TopicPreferences": {"TopicName": "x"}}', "Expected list or null"),
        (b'{"EmailAddress": "a@example.com", "TopicPreferences": ["x"]}', "Expected null"),
        (b'{"EmailAddress": "a@example.com", "UnsubscribeAll": 1}', "NUMBER_VALUE can not be converted to a Boolean"),
        (b'{"EmailAddress": "a@example.com", "AttributesData": {"a": 1}}', "Start of structure or map"),
    ],
)
def test_malformed_bodies_and_wrong_types(
    api_server: RunningServer, ses: Any, contact_list: str, body: bytes, message_start: str
) -> None:
    reply = signed_request(api_server.url, "POST", path_of(contact_list), body)
    assert assert_ses_error(reply, 400, "SerializationException").startswith(message_start)
    assert ses.list_contacts(ContactListName=contact_list)["Contacts"] == []  # nothing half-written


def test_missing_members_are_all_listed(api_server: RunningServer, contact_list: str) -> None:
    body = b'{"TopicPreferences": [{"TopicName": "news"}, {}]}'
    message = assert_ses_error(
        signed_request(api_server.url, "POST", path_of(contact_list), body), 400, "BadRequestException"
    )
    assert message == (
        "4 validation errors detected: "
        "Value at 'emailAddress' failed to satisfy constraint: Member must not be null; "
        "Value at 'topicPreferences.1.member.subscriptionStatus' failed to satisfy constraint: "
        "Member must not be null; "
        "Value at 'topicPreferences.2.member.topicName' failed to satisfy constraint: Member must not be null; "
        "Value at 'topicPreferences.2.member.subscriptionStatus' failed to satisfy constraint: Member must not be null"
    )


def test_page_size_of_the_wrong_type(api_server: RunningServer, contact_list: str) -> None:
    reply = signed_request(api_server.url, "POST", path_of(contact_list) + "/list", b'{"PageSize": "ten"}')
    assert_ses_error(reply, 400, "SerializationException")
    reply = signed_request(api_server.url, "GET", "/v2/email/contact-lists?PageSize=ten")
    assert_ses_error(reply, 400, "SerializationException")


def test_huge_body_is_refused_with_413(api_server: RunningServer, ses: Any, contact_list: str) -> None:
    attributes = "x" * (2 * 1024 * 1024)
    body = ('{"EmailAddress": "big@example.com", "AttributesData": "' + attributes + '"}').encode()
    reply = signed_request(api_server.url, "POST", path_of(contact_list), body)
    assert_ses_error(reply, 413, "RequestEntityTooLargeException")
    assert ses.list_contacts(ContactListName=contact_list)["Contacts"] == []
    # Through boto3 too (a keep-alive connection that the next call reuses).
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        ses.create_contact(ContactListName=contact_list, EmailAddress="big@example.com", AttributesData=attributes)
    assert caught.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert ses.get_contact_list(ContactListName=contact_list)["ContactListName"] == contact_list
    assert ses.list_contacts(ContactListName=contact_list)["Contacts"] == []


def test_large_attributes_under_the_cap_get_the_store_limit(api_server: RunningServer, contact_list: str) -> None:
    body = ('{"EmailAddress": "big@example.com", "AttributesData": "' + "x" * 100_000 + '"}').encode()
    message = assert_ses_error(
        signed_request(api_server.url, "POST", path_of(contact_list), body), 400, "BadRequestException"
    )
    assert "AttributesData" in message


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/v2/email/nothing-here"),
        ("GET", "/v2/email/contact-lists/a/b/c/d/e"),
        ("PATCH", "/v2/email/contact-lists/contacts"),
        ("POST", "/v2/email/contact-lists/contacts/contacts/a%40b.co"),
        ("GET", "/v2/"),
    ],
)
def test_unknown_routes_are_json_404(api_server: RunningServer, method: str, target: str) -> None:
    assert_ses_error(signed_request(api_server.url, method, target), 404, "UnknownOperationException")


@pytest.mark.parametrize("token", ["garbage", "", "AAAA", "eyJzIjoiMTIzIn0", "a" * 5000, "%00%ff"])
def test_bad_next_tokens(api_server: RunningServer, contact_list: str, token: str) -> None:
    """An empty token too: SES refuses it on ListContacts (probed, floci's SesListPaging)."""
    body = ('{"NextToken": "' + token + '"}').encode()
    reply = signed_request(api_server.url, "POST", path_of(contact_list) + "/list", body)
    assert assert_ses_error(reply, 400, "BadRequestException") == "Provided NextToken is invalid"


@pytest.mark.parametrize(
    "name",
    ["..", "..%2F..%2Fetc%2Fpasswd", "%2E%2E", "a%2Fb", "%00", "contacts%20", "%C3%A9", "a" * 65],
)
def test_path_traversal_looking_list_names(api_server: RunningServer, name: str) -> None:
    for method, target in (
        ("GET", f"/v2/email/contact-lists/{name}"),
        ("DELETE", f"/v2/email/contact-lists/{name}"),
        ("GET", f"/v2/email/contact-lists/{name}/contacts/a%40b.co"),
        ("POST", f"/v2/email/contact-lists/{name}/contacts/list"),
    ):
        message = assert_ses_error(signed_request(api_server.url, method, target), 400, "BadRequestException")
        assert message.startswith("ContactListName can")


@pytest.mark.parametrize(
    "email",
    [
        "a+b@x.com",
        "we!rd#%&=?~*_.-@x.com",
        "slash/in/local@x.com",
        "üñï+tag@exämple.com",
        "用户@例子.广告",
        "space%20not-decoded@x.com",
        "o'brien@x.com",
    ],
)
def test_addresses_round_trip_through_the_raw_path(ses: Any, contact_list: str, email: str) -> None:
    ses.create_contact(ContactListName=contact_list, EmailAddress=email, AttributesData='{"k": "v"}')
    got = ses.get_contact(ContactListName=contact_list, EmailAddress=email)
    assert got["EmailAddress"] == email
    ses.update_contact(ContactListName=contact_list, EmailAddress=email, UnsubscribeAll=True)
    assert ses.get_contact(ContactListName=contact_list, EmailAddress=email)["UnsubscribeAll"] is True
    assert [c["EmailAddress"] for c in ses.list_contacts(ContactListName=contact_list)["Contacts"]] == [email]
    ses.delete_contact(ContactListName=contact_list, EmailAddress=email)
    assert ses.list_contacts(ContactListName=contact_list)["Contacts"] == []


def test_plus_is_not_a_space(api_server: RunningServer, ses: Any, contact_list: str) -> None:
    ses.create_contact(ContactListName=contact_list, EmailAddress="a b@x.com".replace(" ", "+"))
    # A literal "+" in the raw path (not %2B) still means "+", never a space.
    status, _, body = signed_request(api_server.url, "GET", path_of(contact_list) + "/a+b%40x.com")
    assert status == 200 and body["EmailAddress"] == "a+b@x.com"


@pytest.mark.parametrize(
    "email", ["not-an-email", "a@b", "@x.com", "a@", "a@@x.com", "a b@x.com", "a@x..com", "x" * 300]
)
def test_invalid_emails(ses: Any, contact_list: str, email: str) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        ses.create_contact(ContactListName=contact_list, EmailAddress=email)
    assert caught.value.response["Error"] == {
        "Code": "BadRequestException",
        "Message": f"EmailAddress <{email}> is invalid",
    }


def test_unsigned_garbage_never_gets_html(api_server: RunningServer) -> None:
    for method, target, body in (
        ("POST", "/v2/email/contact-lists", b"\x00" * 100),
        ("GET", "/v2/email/contact-lists/%ZZ", b""),
        ("PUT", "/v2/email/contact-lists/contacts/contacts/%C3%28", b"{"),
    ):
        status, headers, reply = send(api_server.url, method, target, body)
        assert status == 403 and headers["content-type"] == "application/json", reply


def test_signed_odd_percent_encodings(api_server: RunningServer, contact_list: str) -> None:
    for target in (path_of(contact_list) + "/%ZZ", path_of(contact_list) + "/%C3%28@x.com"):
        status, headers, body = send(api_server.url, "GET", target, b"", sign(api_server.url, "GET", target))
        assert headers["content-type"] == "application/json"
        assert status in (400, 404) and body["__type"] in ("BadRequestException", "NotFoundException")


def _served_operations() -> list[tuple[str, str, str]]:
    """(name, method, path with every label filled) for each SES operation the server binds."""
    import botocore.session

    from sescontacts.sesapi.app import load_handlers
    from sescontacts.sesapi.routing import TABLE

    load_handlers()
    model = botocore.session.get_session().get_service_model("sesv2")
    labels = {"{ContactListName}": "no-such-list", "{EmailAddress}": "a%40x.com", "{JobId}": "job"}
    served = []
    for name, op in sorted(TABLE.operations.items()):
        if op.presigned or name.endswith("Legacy"):
            continue
        path = model.operation_model(name).http["requestUri"].split("?")[0]
        for label, value in labels.items():
            path = path.replace(label, value)
        served.append((name, op.method, path))
    return served


GARBAGE = [
    b"\x00\xff\xfe garbage",
    b"[]",
    b'{"PageSize": 1e300, "NextToken": "' + base64.urlsafe_b64encode(b"jobs:" + b"9" * 40) + b'"}',
    b'{"ImportDestination": {"ContactListDestination": {"ContactListName": "contacts", '
    b'"ContactListImportAction": "PUT"}}, "ImportDataSource": {"S3Url": "s3://b/a\\u0000.csv", "DataFormat": "CSV"}}',
    b'{"EmailAddress": "\\u0000@x.com", "ContactListName": "' + b"9" * 400 + b'", "Tags": [{"Key": null}]}',
]


@pytest.mark.parametrize(("name", "method", "path"), _served_operations())
def test_garbage_to_every_operation_is_never_a_server_error(
    api_server: RunningServer, name: str, method: str, path: str
) -> None:
    """The regression net for 500s on bad input (a forged ListImportJobs NextToken, a NUL in an S3Url were
    InternalFailure): each operation, over real HTTP, answers garbage with SES's JSON, a 4xx when it reads
    the member at fault (operations without body members ignore a body, as SES does). The in-process fuzz
    (tests/test_sesapi_fuzz.py) generates far more."""
    for body in GARBAGE:
        status, headers, reply = signed_request(api_server.url, method, path, body)
        assert status < 500 and headers["content-type"] == "application/json", (name, body[:60], status, reply)
        assert isinstance(reply, dict)
        if status >= 400:
            assert headers.get("x-amzn-errortype") == reply["__type"] and reply["message"], (name, body[:60])


def test_a_path_signed_normalised_does_not_run_another_operation(api_server: RunningServer) -> None:
    """botocore signs ``.../contacts/contacts/..`` as ``.../contacts`` (GetContactList); split raw, the path is
    GetContact. It is refused, whatever the signature says."""
    target = "/v2/email/contact-lists/contacts/contacts/.."
    reply = send(api_server.url, "GET", target, b"", sign(api_server.url, "GET", "/v2/email/contact-lists/contacts"))
    assert assert_ses_error(reply, 400, "BadRequestException").startswith("EmailAddress can't be '..'")


def test_the_two_reported_500s_are_bad_requests(api_server: RunningServer) -> None:
    token = base64.urlsafe_b64encode(b"jobs:" + b"9" * 40).decode()
    reply = signed_request(api_server.url, "POST", "/v2/email/import-jobs/list", f'{{"NextToken": "{token}"}}'.encode())
    assert assert_ses_error(reply, 400, "BadRequestException") == "Provided NextToken is invalid"
    body = GARBAGE[3]
    reply = signed_request(api_server.url, "POST", "/v2/email/import-jobs", body)
    assert assert_ses_error(reply, 400, "BadRequestException").startswith("Invalid S3Url")
