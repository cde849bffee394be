"""Verifying that a message posted to the SNS endpoint really comes from Amazon SNS, for a topic we trust.

Anyone can POST to a public HTTPS endpoint; a forged "permanent bounce" would unsubscribe a real reader. So
every message is checked the way AWS's own SDK validators check them, and refused otherwise:

1. ``SigningCertURL`` is ``https://sns.<region>.amazonaws.com[.cn]/….pem`` (no other host, port or user),
   so the certificate can only come from SNS itself; it is fetched over verified TLS and cached by URL.
2. The signature is over SNS's canonical string (the fields of the message's type, in SNS's order), RSA
   PKCS#1 v1.5 with SHA1 (``SignatureVersion`` 1) or SHA256 (2), with the certificate's key, and the
   certificate is within its validity dates.
3. ``TopicArn`` is one the user configured (``--events-sns-topic-arn``): a valid message from somebody
   else's topic is still refused.
4. ``Timestamp`` is no older than the replay window (SNS retries an HTTP delivery for at most an hour), and a
   ``MessageId`` already accepted is acknowledged without being recorded again (the endpoint's job).

Only :class:`SnsCertificates` fetches certificates. Tests construct a :class:`SnsVerifier` with their own
certificate source in Python; no setting, flag or environment variable can make the server trust another
certificate source, so the test rule cannot be reached from a production configuration.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SNS_HOST: Final = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
NOTIFICATION: Final = "Notification"
SUBSCRIPTION_CONFIRMATION: Final = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION: Final = "UnsubscribeConfirmation"
MESSAGE_TYPES: Final = (NOTIFICATION, SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION)
# The fields signed, in SNS's order (a Notification's Subject only when present).
_SIGNED_FIELDS: Final = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    UNSUBSCRIBE_CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
#: SNS retries an HTTP/S delivery for at most an hour; a message older than this (plus clock skew) is a replay.
DEFAULT_MAX_AGE_SECONDS: Final = 3600.0 + 300.0
_MAX_CERTIFICATE_BYTES: Final = 64 * 1024


class SnsMessageRefused(Exception):
    """Why a posted message is not accepted; the endpoint answers with ``status`` and this reason."""

    def __init__(self, reason: str, *, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class SnsMessage:
    """A message whose signature, certificate, topic and age were checked."""

    type: str
    message_id: str
    topic_arn: str
    message: str
    timestamp: float
    subscribe_url: str | None = None


def check_sns_url(url: str, *, what: str, suffix: str = "") -> str:
    """``url`` when it is https on an SNS host (no port, no user) and its path ends with ``suffix``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not SNS_HOST.match(host) or parts.port is not None or parts.username:
        raise SnsMessageRefused(f"{what} {url[:200]!r} is not an https URL on an SNS host (sns.<region>.amazonaws.com)")
    if suffix and not parts.path.endswith(suffix):
        raise SnsMessageRefused(f"{what} {url[:200]!r} does not end with {suffix}")
    return url


def https_get(url: str, *, limit: int = _MAX_CERTIFICATE_BYTES, timeout: float = 10.0) -> bytes:
    """GET ``url`` over TLS verified against the system's trust store; at most ``limit`` bytes."""
    context = ssl.create_default_context()
    with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
        body: bytes = response.read(limit + 1)
    if len(body) > limit:
        raise SnsMessageRefused(f"{url[:200]!r} answered more than {limit} bytes", status=502)
    return body


class CertificateSource(Protocol):
    def public_key(self, url: str) -> tuple[rsa.RSAPublicKey, x509.Certificate]:
        """The key and certificate at ``url`` (already checked to be an SNS URL)."""
        ...


class SnsCertificates:
    """SNS's signing certificates, fetched from SNS's own hosts only and kept by URL (SNS rotates them
    rarely; a new one comes with a new URL)."""

    def __init__(self, fetch: Callable[[str], bytes] = https_get, *, keep: int = 16) -> None:
        self._fetch = fetch
        self._keep = keep
        self._cache: dict[str, tuple[rsa.RSAPublicKey, x509.Certificate]] = {}
        self._lock = threading.Lock()

    def public_key(self, url: str) -> tuple[rsa.RSAPublicKey, x509.Certificate]:
        with self._lock:
            found = self._cache.get(url)
        if found is not None:
            return found
        try:
            certificate = x509.load_pem_x509_certificate(self._fetch(url))
        except SnsMessageRefused:
            raise
        except (OSError, ValueError) as exc:
            reason = f"The signing certificate at {url[:200]!r} could not be read: {exc}"
            raise SnsMessageRefused(reason, status=502) from None
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SnsMessageRefused(f"The signing certificate at {url[:200]!r} has no RSA key")
        with self._lock:
            if len(self._cache) >= self._keep:
                self._cache.pop(next(iter(self._cache)))
            self._cache[url] = (key, certificate)
        return key, certificate


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """SNS's canonical string for ``message``: each signed field's name and value on their own lines."""
    lines: list[str] = []
    for name in _SIGNED_FIELDS[message["Type"]]:
        value = message.get(name)
        if value is None and name == "Subject":
            continue
        lines += [name, str(value)]
    return ("\n".join(lines) + "\n").encode()


def _timestamp(text: str) -> float:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise SnsMessageRefused(f"Timestamp {text[:40]!r} is not an ISO 8601 time", status=400) from None


class SnsVerifier:
    """Checks a posted message (the JSON object) as the module docstring says; returns it as an SnsMessage."""

    def __init__(
        self,
        topic_arns: tuple[str, ...],
        *,
        certificates: CertificateSource | None = None,
        max_age: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topic_arns = frozenset(topic_arns)
        self._certificates = certificates or SnsCertificates()
        self._max_age = max_age
        self._now = clock

    def verify(self, message: Mapping[str, Any]) -> SnsMessage:
        kind = message.get("Type")
        if kind not in MESSAGE_TYPES:
            raise SnsMessageRefused(f"Type {str(kind)[:40]!r} is not an SNS message type", status=400)
        required = [n for n in _SIGNED_FIELDS[kind] if n != "Subject"] + ["Signature", "SigningCertURL"]
        missing = [n for n in required if not isinstance(message.get(n), str)]
        if missing or message.get("SignatureVersion") not in ("1", "2"):
            what = f"missing {', '.join(missing)}" if missing else "SignatureVersion is not 1 or 2"
            raise SnsMessageRefused(f"Unsigned or incomplete SNS message: {what}", status=400)
        if message["TopicArn"] not in self.topic_arns:
            raise SnsMessageRefused(f"Topic {message['TopicArn'][:200]!r} is not one this server subscribes to")
        url = check_sns_url(message["SigningCertURL"], what="SigningCertURL", suffix=".pem")
        key, certificate = self._certificates.public_key(url)
        now = self._now()
        if not certificate.not_valid_before_utc.timestamp() <= now <= certificate.not_valid_after_utc.timestamp():
            raise SnsMessageRefused("The signing certificate is outside its validity dates")
        algorithm = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
        try:
            key.verify(base64.b64decode(message["Signature"]), string_to_sign(message), padding.PKCS1v15(), algorithm)
        except (InvalidSignature, ValueError):
            raise SnsMessageRefused("The message's signature does not verify") from None
        timestamp = _timestamp(message["Timestamp"])
        if now - timestamp > self._max_age:
            age, limit = int(now - timestamp), int(self._max_age)
            raise SnsMessageRefused(f"The message is {age} s old: a replay (at most {limit} s)")
        subscribe_url = message.get("SubscribeURL")
        return SnsMessage(
            type=kind,
            message_id=message["MessageId"],
            topic_arn=message["TopicArn"],
            message=message["Message"],
            timestamp=timestamp,
            subscribe_url=subscribe_url if isinstance(subscribe_url, str) else None,
        )
