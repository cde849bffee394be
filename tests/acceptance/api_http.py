"""Raw HTTP to the server for requests boto3 cannot make (wrong types, malformed JSON, legacy bindings):
signed with botocore's SigV4Auth, sent with http.client so the path goes out byte for byte."""

from __future__ import annotations

import datetime as dt
import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY


def sign(
    url: str,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    key_id: str = ACCESS_KEY_ID,
    secret: str = SECRET_ACCESS_KEY,
    service: str = "ses",
    region: str = REGION,
    at: dt.datetime | None = None,
    extra_headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """Headers signed by botocore's SigV4Auth; ``at`` signs as of another time (a client with a wrong clock)."""
    headers = {"Content-Type": "application/json"} if body else {}
    headers.update(extra_headers or {})
    request = AWSRequest(method=method, url=url + target, data=body, headers=headers)
    signer = (
        SigV4Auth(Credentials(key_id, secret), service, region)
        if at is None
        else _SignedAt(Credentials(key_id, secret), service, region, at=at)
    )
    signer.add_auth(request)
    return dict(request.headers.items())


class _SignedAt(SigV4Auth):
    """SigV4Auth with a fixed clock: the same steps as ``add_auth``, stamped with ``at``."""

    def __init__(self, credentials: Credentials, service: str, region: str, *, at: dt.datetime) -> None:
        super().__init__(credentials, service, region)
        self._at = at

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._at.strftime("%Y%m%dT%H%M%SZ")
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        self._inject_signature_to_request(request, self.signature(self.string_to_sign(request, canonical), request))


def send(
    url: str, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """Send exactly ``method target`` with ``body``; the JSON body is decoded when there is one."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        sent = {k.lower(): v for k, v in (headers or {}).items()}
        for name, value in sent.items():
            connection.putheader(name, value)
        if "content-length" not in sent:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        data = response.read()
        reply_headers = {k.lower(): v for k, v in response.getheaders()}
        try:
            decoded: Any = json.loads(data) if data else None
        except ValueError:
            decoded = data
        return response.status, reply_headers, decoded
    finally:
        connection.close()


def signed_request(
    url: str, method: str, target: str, body: bytes = b"", **sign_options: Any
) -> tuple[int, dict[str, str], Any]:
    return send(url, method, target, body, sign(url, method, target, body, **sign_options))
