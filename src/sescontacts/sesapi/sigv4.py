"""SigV4 verification of SES requests against the locally configured access keys.

The canonical request is rebuilt with botocore's own ``SigV4Auth`` (the code every boto3 and CLI request
was signed with): the method, the RAW request target (SigV4Auth re-quotes the already-encoded path itself,
which is how AWS double-encodes it), only the headers the client listed in ``SignedHeaders``, and the exact
body bytes. The timestamp comes from the request's ``X-Amz-Date`` (``add_auth`` is never called: it would
stamp the current time). Signatures are compared with ``hmac.compare_digest``.

What a request must carry, in the order it is checked:
- an ``Authorization: AWS4-HMAC-SHA256 Credential=KEY/DAY/REGION/ses/aws4_request, SignedHeaders=...,
  Signature=...`` header and an ``X-Amz-Date`` in ISO-8601 basic format;
- service ``ses``, the server's region, the scope day equal to X-Amz-Date's day, X-Amz-Date within 15 minutes
  of the server's clock, a known access key id, ``host`` among the signed headers;
- no ``x-amz-content-sha256`` header, or one equal to the body's SHA-256 (``UNSIGNED-PAYLOAD`` is refused);
- the signature over method, path, query, the signed headers and the SHA-256 of the body.
The path is signed as botocore normalises it (dot segments and ``//`` removed); routing refuses any path whose
normalised form differs (``routing.py``), so the operation that runs is the one that was signed.

Errors are the ones AWS's JSON front ends send: MissingAuthenticationTokenException (no signature),
IncompleteSignatureException (a malformed Authorization header), UnrecognizedClientException (unknown key),
InvalidSignatureException (bad signature or payload hash, wrong service/region/scope date, a date more than
15 minutes off).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPMessage
from typing import Final, cast
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ..errors import (
    IncompleteSignature,
    InvalidClientTokenId,
    MissingAuthenticationToken,
    RequestExpired,
    SignatureDoesNotMatch,
)

SERVICE: Final = "ses"
MAX_SKEW_SECONDS: Final = 15 * 60
ALGORITHM: Final = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
_AMZ_DATE: Final = "%Y%m%dT%H%M%SZ"
_AMZ_DATE_FORMAT = re.compile(r"\d{8}T\d{6}Z")
_SIGNATURE_MISMATCH: Final = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


@dataclass(frozen=True, slots=True)
class Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Authorization:
    """Split ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{algorithm}'")
    params = {}
    for part in rest.split(","):
        name, _, param = part.partition("=")
        params[name.strip()] = param.strip()
    missing = [p for p in ("Credential", "SignedHeaders", "Signature") if not params.get(p)]
    if missing:
        raise IncompleteSignature(
            " ".join(f"Authorization header requires '{p}' parameter." for p in missing)
            + f" Authorization={value[:200]}"
        )
    scope = params["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise IncompleteSignature(
            f"Credential should be scoped to a valid region and service, not '{params['Credential'][:100]}'."
        )
    return Authorization(
        access_key_id=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3],
        signed_headers=tuple(h.strip().lower() for h in params["SignedHeaders"].split(";") if h.strip()),
        signature=params["Signature"].lower(),
    )


class _SignedHeaders:
    """Exactly the headers the client listed in SignedHeaders, as ``SigV4Auth`` reads them (``get_all``)."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, list[str]]) -> None:
        self._values = values  # lower-case name -> values in arrival order

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def get_all(self, name: str) -> list[str]:
        return self._values.get(name, [])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __getitem__(self, name: str) -> str:
        return ",".join(self._values[name.lower()])


class _Request:
    """The parts of an ``AWSRequest`` that ``SigV4Auth`` reads, without AWSRequest's preparation machinery
    (which re-encodes the body and rebuilds every header on each access: most of the cost of a check)."""

    __slots__ = ("body", "context", "headers", "method", "params", "url")

    def __init__(self, method: str, url: str, headers: _SignedHeaders, params: list[tuple[str, str]], body: bytes):
        self.method = method
        self.url = url
        self.headers = headers
        self.params = params
        self.body = body
        self.context: dict[str, object] = {}


class _ServerSigV4(SigV4Auth):
    """botocore's signer, told to sign exactly the headers the client listed (no blacklist, no host guess),
    with the derived signing key cached per (secret, day, region, service).

    Its requests are ``_Request`` lookalikes (typed as the AWSRequest they stand in for)."""

    # Set by SigV4Auth.__init__; its stubs leave the private names out.
    _region_name: str
    _service_name: str

    def headers_to_sign(self, request: AWSRequest) -> HTTPMessage:
        return request.headers

    def signature(self, string_to_sign: str, request: AWSRequest) -> str:
        key = _signing_key(
            self.credentials.secret_key, str(request.context["timestamp"])[:8], self._region_name, self._service_name
        )
        return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=64)
def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class SigV4Verifier:
    """Verifies requests for one region against ``keys`` (access key id -> secret)."""

    def __init__(
        self,
        keys: Callable[[str], str | None],
        *,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret_for = keys
        self.region = region
        self._clock = clock

    def verify(
        self,
        *,
        method: str,
        raw_path: bytes,
        query_string: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
    ) -> str:
        """Check the request's signature; return the access key id, or raise the AWS error."""
        header_map: dict[str, list[str]] = {}
        for name, value in headers:
            header_map.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        authorization = header_map.get("authorization")
        if not authorization:
            raise MissingAuthenticationToken("Missing Authentication Token")
        auth = parse_authorization(authorization[0])
        amz_date = _first(header_map, "x-amz-date")
        if amz_date is None:
            raise IncompleteSignature(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                f"Authorization={authorization[0][:200]}"
            )
        signed_at = _parse_amz_date(amz_date)
        if auth.service != SERVICE:
            raise SignatureDoesNotMatch(f"Credential should be scoped to correct service: '{SERVICE}'. ")
        if auth.region != self.region:
            raise SignatureDoesNotMatch(f"Credential should be scoped to a valid region, not '{auth.region}'. ")
        if auth.date != amz_date[:8]:
            raise SignatureDoesNotMatch(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{auth.date}' != '{amz_date[:8]}', from '{amz_date}'."
            )
        self._check_skew(amz_date, signed_at)
        secret = self._secret_for(auth.access_key_id)
        if secret is None:
            raise InvalidClientTokenId("The security token included in the request is invalid.")
        if "host" not in auth.signed_headers:
            raise SignatureDoesNotMatch(_SIGNATURE_MISMATCH)
        _check_content_sha256(_first(header_map, "x-amz-content-sha256"), body)
        expected = self.signature(
            secret=secret,
            auth=auth,
            amz_date=amz_date,
            method=method,
            raw_path=raw_path,
            query_string=query_string,
            header_map=header_map,
            body=body,
        )
        if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
            raise SignatureDoesNotMatch(_SIGNATURE_MISMATCH)
        return auth.access_key_id

    def _check_skew(self, amz_date: str, signed_at: float) -> None:
        now = self._clock()
        if signed_at < now - MAX_SKEW_SECONDS:
            raise RequestExpired(
                f"Signature expired: {amz_date} is now earlier than {_format(now - MAX_SKEW_SECONDS)} "
                f"({_format(now)} - 15 min.)"
            )
        if signed_at > now + MAX_SKEW_SECONDS:
            raise RequestExpired(
                f"Signature not yet current: {amz_date} is still later than {_format(now + MAX_SKEW_SECONDS)} "
                f"({_format(now)} + 15 min.)"
            )

    @staticmethod
    def signature(
        *,
        secret: str,
        auth: Authorization,
        amz_date: str,
        method: str,
        raw_path: bytes,
        query_string: bytes,
        header_map: Mapping[str, list[str]],
        body: bytes,
    ) -> str:
        """The signature botocore would have produced for this request with ``secret``."""
        signed = {name: header_map[name] for name in auth.signed_headers if name in header_map}
        path = raw_path.decode("latin-1").split("?", 1)[0]
        host = _first(header_map, "host") or "localhost"
        # Decoded query pairs: SigV4Auth quotes them canonically (safe "-_.~") whatever encoding the client used.
        parts = _Request(method, f"http://{host}{path}", _SignedHeaders(signed), _query_pairs(query_string), body)
        parts.context["timestamp"] = amz_date
        request = cast(AWSRequest, parts)  # SigV4Auth reads only the attributes _Request has
        signer = _ServerSigV4(Credentials(auth.access_key_id, secret), auth.service, auth.region)
        return str(signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request))


def _check_content_sha256(value: str | None, body: bytes) -> None:
    """An ``x-amz-content-sha256`` header, signed or not, must be the body's own SHA-256.

    botocore's canonical request takes the payload hash from this header when it is signed, so a value other
    than the body's hash would leave the body outside the signature: ``UNSIGNED-PAYLOAD`` (S3's opt-out, which
    no SES client sends) would let a captured request's body be swapped for 15 minutes. SES itself hashes the
    payload it received, so such a request fails its signature check: InvalidSignatureException, 403. (S3's
    400 XAmzContentSHA256Mismatch is S3's own; other services answer a signature mismatch: "Only s3 related
    service support this option, other service would result in SignatureDoesNotMatch error",
    https://github.com/apache/opendal-reqsign/issues/346, after aws-sdk-go's v4 signer, which sends the header
    only for S3 and Glacier.)
    """
    if value is None:
        return
    if value == UNSIGNED_PAYLOAD:
        raise SignatureDoesNotMatch(
            "x-amz-content-sha256: UNSIGNED-PAYLOAD is not accepted: SES requests must sign their payload."
        )
    if not hmac.compare_digest(value.encode(), hashlib.sha256(body).hexdigest().encode()):
        raise SignatureDoesNotMatch("The provided 'x-amz-content-sha256' header does not match what was computed.")


def _query_pairs(query_string: bytes) -> list[tuple[str, str]]:
    pairs = []
    for pair in query_string.decode("latin-1").split("&"):
        if pair:
            key, _, value = pair.partition("=")
            pairs.append((_unquote(key), _unquote(value)))
    return pairs


def _unquote(text: str) -> str:
    return unquote(text.encode("latin-1").decode("utf-8", "replace"))


def _first(header_map: Mapping[str, list[str]], name: str) -> str | None:
    values = header_map.get(name)
    return values[0] if values else None


def _parse_amz_date(value: str) -> float:
    try:
        if not _AMZ_DATE_FORMAT.fullmatch(value):
            raise ValueError(value)
        return float(
            calendar.timegm(
                (
                    int(value[:4]),
                    int(value[4:6]),
                    int(value[6:8]),
                    int(value[9:11]),
                    int(value[11:13]),
                    int(value[13:15]),
                )
            )
        )
    except ValueError:
        raise IncompleteSignature(
            f"Date must be in ISO-8601 'basic format'. Got '{value[:40]}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None


def _format(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime(_AMZ_DATE)
