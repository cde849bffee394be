"""SigV4 against the running server: only the configured key pair gets in; each failure is the error AWS's
JSON front ends send (code in ``x-amzn-ErrorType``, status 403, or 400 for a malformed Authorization)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.server import ACCESS_KEY_ID, RunningServer

from .api_http import send, sign, signed_request
from .conftest import make_client

TARGET = "/v2/email/contact-lists/contacts"


def error(reply: tuple[int, dict[str, str], Any]) -> tuple[int, str, str]:
    status, headers, body = reply
    assert headers["content-type"] == "application/json"
    assert body["__type"] == headers["x-amzn-errortype"]
    return status, body["__type"], body["message"]


def test_signed_request_passes(api_server: RunningServer) -> None:
    assert signed_request(api_server.url, "GET", TARGET)[0] == 200


def test_unsigned(api_server: RunningServer) -> None:
    assert error(send(api_server.url, "GET", TARGET)) == (
        403,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )


def test_unknown_access_key(api_server: RunningServer) -> None:
    client = make_client(api_server.url, aws_access_key_id="AKIAUNKNOWNKEY000000")
    with pytest.raises(ClientError) as caught:
        client.get_contact_list(ContactListName="contacts")
    assert caught.value.response["Error"] == {
        "Code": "UnrecognizedClientException",
        "Message": "The security token included in the request is invalid.",
    }
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_bad_signature(api_server: RunningServer) -> None:
    client = make_client(api_server.url, aws_secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as caught:
        client.get_contact_list(ContactListName="contacts")
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert caught.value.response["Error"]["Message"].startswith(
        "The request signature we calculated does not match the signature you provided."
    )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_tampered_body_and_path(api_server: RunningServer) -> None:
    target = "/v2/email/contact-lists/contacts/contacts"
    headers = sign(api_server.url, "POST", target, b'{"EmailAddress": "a@example.com"}')
    assert error(send(api_server.url, "POST", target, b'{"EmailAddress": "b@example.com"}', headers))[:2] == (
        403,
        "InvalidSignatureException",
    )
    headers = sign(api_server.url, "GET", "/v2/email/contact-lists/contacts/contacts/a%40example.com")
    assert error(
        send(api_server.url, "GET", "/v2/email/contact-lists/contacts/contacts/b%40example.com", b"", headers)
    )[:2] == (403, "InvalidSignatureException")


@pytest.mark.parametrize("service", ["email", "s3", "sesv2"])
def test_wrong_service(api_server: RunningServer, service: str) -> None:
    assert error(signed_request(api_server.url, "GET", TARGET, service=service)) == (
        403,
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'ses'. ",
    )


@pytest.mark.parametrize("minutes", [-16, 16, -60 * 24])
def test_date_more_than_15_minutes_off(api_server: RunningServer, minutes: int) -> None:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    status, code, message = error(signed_request(api_server.url, "GET", TARGET, at=at))
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("Signature expired:" if minutes < 0 else "Signature not yet current:")
    assert at.strftime("%Y%m%dT%H%M%SZ") in message


def test_date_within_15_minutes_passes(api_server: RunningServer) -> None:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=14)
    assert signed_request(api_server.url, "GET", TARGET, at=at)[0] == 200


def test_session_token_is_accepted(api_server: RunningServer) -> None:
    client = make_client(api_server.url, aws_session_token="a-session-token")
    assert client.get_contact_list(ContactListName="contacts")["ContactListName"] == "contacts"


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 Credential=x",
        "AWS4-HMAC-SHA256",
        "Basic dXNlcjpwYXNz",
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20260101/us-east-1/ses, SignedHeaders=host, Signature=00",
    ],
)
def test_malformed_authorization(api_server: RunningServer, authorization: str) -> None:
    headers = {"Authorization": authorization, "X-Amz-Date": dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")}
    status, code, _ = error(send(api_server.url, "GET", TARGET, b"", headers))
    assert (status, code) == (400, "IncompleteSignatureException")


def test_missing_date_header(api_server: RunningServer) -> None:
    headers = sign(api_server.url, "GET", TARGET)
    headers.pop("X-Amz-Date")
    assert error(send(api_server.url, "GET", TARGET, b"", headers))[:2] == (400, "IncompleteSignatureException")
