"""SigV4 verification (sesapi/sigv4.py) against requests signed by botocore itself, in-process."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from sescontacts.errors import (
    IncompleteSignature,
    InvalidClientTokenId,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureDoesNotMatch,
)
from sescontacts.sesapi.sigv4 import SigV4Verifier, parse_authorization

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = dt.datetime(2026, 11, 26, 9, 6, 51, tzinfo=dt.UTC)


def verifier(now: dt.datetime = NOW, region: str = "us-east-1") -> SigV4Verifier:
    return SigV4Verifier(lambda k: SECRET if k == KEY else None, region=region, clock=lambda: now.timestamp())


def signed(
    method: str,
    target: str,
    body: bytes = b"",
    *,
    at: dt.datetime = NOW,
    secret: str = SECRET,
    service: str = "ses",
    region: str = "us-east-1",
    headers: dict[str, str] | None = None,
) -> dict[str, object]:
    """The pieces of a request as the ASGI server hands them over, signed by botocore as of ``at``."""
    request = AWSRequest(method=method, url=f"http://127.0.0.1:8000{target}", data=body, headers=dict(headers or {}))
    if body:
        request.headers["Content-Type"] = "application/json"
    signer = SigV4Auth(Credentials(KEY, secret), service, region)
    request.context["timestamp"] = at.strftime("%Y%m%dT%H%M%SZ")
    signer._modify_request_before_signing(request)
    signature = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    signer._inject_signature_to_request(request, signature)
    path, _, query = target.partition("?")
    wire_headers = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    wire_headers.append((b"host", b"127.0.0.1:8000"))
    return {
        "method": method,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": wire_headers,
        "body": body,
    }


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("GET", "/v2/email/contact-lists/MyList/contacts/a%2Bb%40example.com", b""),
        ("GET", "/v2/email/contact-lists/L/contacts/%C3%BCn%C3%AF%2Btag%40ex%C3%A4mple.com", b""),
        ("GET", "/v2/email/contact-lists/L/contacts/we%21rd%23%2F%25%26%3D%3F~%2A_.-%40x.com", b""),
        ("GET", "/v2/email/contact-lists//contacts/x%40y.z", b""),
        ("GET", "/v2/email/contact-lists?PageSize=1&NextToken=a%20b%2F%2B%3D", b""),
        (
            "DELETE",
            "/v2/email/tags?ResourceArn=arn%3Aaws%3Ases%3Aus-east-1%3A1%3Acontact-list%2FL&TagKeys=k2&TagKeys=k1",
            b"",
        ),
        ("POST", "/v2/email/contact-lists/L/contacts", b'{"EmailAddress": "\\u00fc@x.com"}'),
        ("PUT", "/v2/email/contact-lists/L", b"{}"),
    ],
)
def test_botocore_signed_requests_verify(method: str, target: str, body: bytes) -> None:
    assert verifier().verify(**signed(method, target, body)) == KEY  # type: ignore[arg-type]


def test_wrong_secret_fails() -> None:
    with pytest.raises(SignatureDoesNotMatch):
        verifier().verify(**signed("GET", "/v2/email/contact-lists", secret="other"))  # type: ignore[arg-type]


def test_any_changed_byte_fails() -> None:
    request = signed("POST", "/v2/email/contact-lists/L/contacts", b'{"EmailAddress": "a@x.com"}')
    for change in (
        {"body": b'{"EmailAddress": "b@x.com"}'},
        {"raw_path": b"/v2/email/contact-lists/M/contacts"},
        {"method": "PUT"},
        {"query_string": b"x=1"},
    ):
        with pytest.raises(SignatureDoesNotMatch):
            verifier().verify(**{**request, **change})  # type: ignore[arg-type]


def test_unknown_key() -> None:
    request = signed("GET", "/v2/email/contact-lists")
    v = SigV4Verifier(lambda k: None, region="us-east-1", clock=lambda: NOW.timestamp())
    with pytest.raises(InvalidClientTokenId, match=r"The security token included in the request is invalid\."):
        v.verify(**request)  # type: ignore[arg-type]


def test_unsigned() -> None:
    with pytest.raises(MissingAuthenticationToken):
        verifier().verify(method="GET", raw_path=b"/v2/email/contact-lists", query_string=b"", headers=[], body=b"")


def test_wrong_service_and_region() -> None:
    with pytest.raises(SignatureDoesNotMatch, match="correct service: 'ses'"):
        verifier().verify(**signed("GET", "/v2/email/contact-lists", service="email"))  # type: ignore[arg-type]
    with pytest.raises(SignatureDoesNotMatch, match="valid region, not 'eu-west-1'"):
        verifier().verify(**signed("GET", "/v2/email/contact-lists", region="eu-west-1"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("offset", "ok"),
    [(0, True), (-15 * 60, True), (15 * 60, True), (-15 * 60 - 1, False), (15 * 60 + 1, False), (-86400, False)],
)
def test_fifteen_minute_window(offset: int, ok: bool) -> None:
    request = signed("GET", "/v2/email/contact-lists", at=NOW + dt.timedelta(seconds=offset))
    if ok:
        verifier().verify(**request)  # type: ignore[arg-type]
    else:
        with pytest.raises(RequestExpired):
            verifier().verify(**request)  # type: ignore[arg-type]


def test_expired_message_names_both_times() -> None:
    request = signed("GET", "/v2/email/contact-lists", at=NOW - dt.timedelta(minutes=20))
    with pytest.raises(RequestExpired) as caught:
        verifier().verify(**request)  # type: ignore[arg-type]
    assert caught.value.message == (
        "Signature expired: 20261126T084651Z is now earlier than 20261126T085151Z (20261126T090651Z - 15 min.)"
    )
    assert (caught.value.code, caught.value.status) == ("InvalidSignatureException", 403)


def test_scope_date_must_match_x_amz_date() -> None:
    request = signed("GET", "/v2/email/contact-lists")
    headers = [
        (k, v.replace(b"/20261126/", b"/20261125/")) if k == b"authorization" else (k, v)
        for k, v in request["headers"]  # type: ignore[attr-defined]
    ]
    with pytest.raises(SignatureDoesNotMatch, match="Date in Credential scope does not match"):
        verifier().verify(**{**request, "headers": headers})  # type: ignore[arg-type]


def test_content_sha256_header_must_match_the_body() -> None:
    body = b'{"a": 1}'
    good = signed(
        "PUT", "/v2/email/contact-lists/L", body, headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}
    )
    verifier().verify(**good)  # type: ignore[arg-type]
    lying = signed("PUT", "/v2/email/contact-lists/L", body, headers={"X-Amz-Content-SHA256": "0" * 64})
    with pytest.raises(SignatureDoesNotMatch):
        verifier().verify(**lying)  # type: ignore[arg-type]


def test_session_token_header_is_signed_and_accepted() -> None:
    request = signed("GET", "/v2/email/contact-lists", headers={"X-Amz-Security-Token": "tok"})
    assert verifier().verify(**request) == KEY  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/ses/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/ses, SignedHeaders=host, Signature=ab",
        "AWS4-HMAC-SHA1 Credential=AKID/20261126/us-east-1/ses/aws4_request, SignedHeaders=host, Signature=ab",
        "Bearer xyz",
    ],
)
def test_malformed_authorization_is_incomplete_signature(value: str) -> None:
    with pytest.raises(IncompleteSignature) as caught:
        parse_authorization(value)
    assert caught.value.status == 400


def test_parse_authorization() -> None:
    auth = parse_authorization(
        "AWS4-HMAC-SHA256 Credential=AKID/20261126/eu-west-1/ses/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, Signature=ABCDEF"
    )
    assert (auth.access_key_id, auth.date, auth.region, auth.service) == ("AKID", "20261126", "eu-west-1", "ses")
    assert auth.signed_headers == ("content-type", "host", "x-amz-date")
    assert auth.signature == "abcdef"


def test_bad_x_amz_date_format() -> None:
    request = signed("GET", "/v2/email/contact-lists")
    headers = [(k, b"2026-11-26T09:06:51Z") if k == b"x-amz-date" else (k, v) for k, v in request["headers"]]  # type: ignore[attr-defined]
    with pytest.raises(IncompleteSignature, match="ISO-8601"):
        verifier().verify(**{**request, "headers": headers})  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    email=st.text(min_size=0, max_size=40),
    token=st.text(min_size=0, max_size=40),
    body=st.binary(max_size=200),
)
def test_any_botocore_signed_request_verifies(email: str, token: str, body: bytes) -> None:
    """Arbitrary labels and query values, encoded as botocore encodes them, and any body bytes."""
    target = f"/v2/email/contact-lists/L/contacts/{percent_encode(email)}?NextToken={percent_encode(token)}&PageSize=5"
    assert verifier().verify(**signed("PUT", target, body)) == KEY  # type: ignore[arg-type]


_UNSIGNED_PAYLOAD = {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}


def test_unsigned_payload_is_refused_so_the_body_stays_signed() -> None:
    """``x-amz-content-sha256: UNSIGNED-PAYLOAD`` would take the body out of the signature (S3's option; SES and
    its clients always sign the payload): a captured request's body could be swapped for 15 minutes."""
    signed_for = signed(
        "POST", "/v2/email/contact-lists/L/contacts", b'{"EmailAddress": "a@x.com"}', headers=_UNSIGNED_PAYLOAD
    )
    swapped = {**signed_for, "body": b'{"EmailAddress": "attacker@x.com"}'}
    for request in (signed_for, swapped):
        with pytest.raises(SignatureDoesNotMatch, match="UNSIGNED-PAYLOAD") as caught:
            verifier().verify(**request)  # type: ignore[arg-type]
        assert (caught.value.code, caught.value.status) == ("InvalidSignatureException", 403)


@pytest.mark.parametrize(
    "value", ["UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "", "0" * 64, "E3B0C442" + "0" * 56]
)
def test_any_content_sha256_but_the_bodys_own_is_refused_before_the_signature_is_checked(value: str) -> None:
    """Signed or not, the header must be the body's SHA-256 (lower-case hex, as every SDK sends it)."""
    for signed_headers in ({"X-Amz-Content-SHA256": value}, {}):
        request = signed("PUT", "/v2/email/contact-lists/L", b"{}", headers=signed_headers)
        if not signed_headers:  # sent but not signed
            request["headers"] = [*request["headers"], (b"x-amz-content-sha256", value.encode())]  # type: ignore[misc]
        with pytest.raises(SignatureDoesNotMatch, match="x-amz-content-sha256"):
            verifier().verify(**request)  # type: ignore[arg-type]


def test_the_bodys_own_content_sha256_is_accepted_signed_or_not() -> None:
    body = b'{"a": 1}'
    digest = hashlib.sha256(body).hexdigest()
    request = signed("PUT", "/v2/email/contact-lists/L", body, headers={"X-Amz-Content-SHA256": digest})
    assert verifier().verify(**request) == KEY  # type: ignore[arg-type]
    request = signed("PUT", "/v2/email/contact-lists/L", body)
    request["headers"] = [*request["headers"], (b"x-amz-content-sha256", digest.encode())]  # type: ignore[misc]
    assert verifier().verify(**request) == KEY  # type: ignore[arg-type]
