"""An in-process SES API client for fast tests: requests signed by botocore's SigV4Auth, sent straight to the
ASGI app with an exact raw path (no HTTP client that might re-encode or normalise it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sescontacts.services import Services
from sescontacts.sesapi import create_sesapi_app
from sescontacts.settings import Settings

KEY_ID = "AKIAINPROCESSTEST001"
SECRET = "in-process-secret-0123456789"
REGION = "us-east-1"
HOST = "testserver"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_type(self) -> str | None:
        return self.headers.get("x-amzn-errortype")


def open_services(data_dir: Path, **settings: Any) -> Services:
    env = {"SESCONTACTS_ACCESS_KEY_ID": KEY_ID, "SESCONTACTS_SECRET_ACCESS_KEY": SECRET}
    import os

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return Services.open(Settings(data_dir=data_dir, **settings))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class InProcessClient:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.app = create_sesapi_app(services)

    def signed_headers(
        self,
        method: str,
        target: str,
        body: bytes,
        *,
        key_id: str = KEY_ID,
        secret: str = SECRET,
        service: str = "ses",
        region: str = REGION,
        amz_date: str | None = None,
        content_type: bool = True,
    ) -> list[tuple[bytes, bytes]]:
        headers = {"Content-Type": "application/json"} if body and content_type else {}
        request = AWSRequest(method=method, url=f"http://{HOST}{target}", data=body, headers=headers)
        signer = SigV4Auth(Credentials(key_id, secret), service, region)
        if amz_date is None:
            signer.add_auth(request)
        else:  # sign as of a given time (stale / future dates)
            request.context["timestamp"] = amz_date
            request.headers["X-Amz-Date"] = amz_date
            canonical = signer.canonical_request(request)
            signature = signer.signature(signer.string_to_sign(request, canonical), request)
            request.headers["Authorization"] = (
                f"AWS4-HMAC-SHA256 Credential={key_id}/{amz_date[:8]}/{region}/{service}/aws4_request, "
                f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, Signature={signature}"
            )
        out = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
        out.append((b"host", HOST.encode()))
        return out

    def raw(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
        chunks: list[bytes] | None = None,
    ) -> Reply:
        """Send exactly this request; ``target`` is the raw path and query, as on the wire."""
        path, _, query = target.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "headers": headers if headers is not None else [(b"host", HOST.encode())],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        parts = chunks if chunks is not None else [body]
        messages = [
            {"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)
        ]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        anyio.run(self.app, scope, receive, send)
        start = sent[0]
        headers_out = {k.decode(): v.decode() for k, v in start["headers"]}
        return Reply(start["status"], headers_out, b"".join(m.get("body", b"") for m in sent[1:]))

    def call(self, method: str, target: str, body: Any = None, **sign: Any) -> Reply:
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        return self.raw(method, target, data, self.signed_headers(method, target, data, **sign))
