"""A test signing certificate for the SNS endpoint, and messages signed with it as SNS signs them.

The endpoint trusts it only because a test passes :class:`TestCertificates` to ``SnsVerifier`` or
``build_app`` in Python; no setting can."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from sescontacts.events.sns import string_to_sign

CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"


def make_certificate(
    key: rsa.RSAPrivateKey, *, not_before: dt.datetime | None = None, days: int = 30
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com (test)")])
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


class TestCertificates:
    """A CertificateSource holding test certificates by URL, counting fetches like a network source would."""

    __test__ = False

    def __init__(self) -> None:
        self.by_url: dict[str, x509.Certificate] = {}
        self.fetched: list[str] = []

    def public_key(self, url: str) -> tuple[rsa.RSAPublicKey, x509.Certificate]:
        self.fetched.append(url)
        certificate = self.by_url[url]
        key = certificate.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        return key, certificate

    def pem(self, url: str) -> bytes:
        return self.by_url[url].public_bytes(serialization.Encoding.PEM)


class Signer:
    """Signs SNS messages with a test key whose certificate sits at ``url`` in ``certificates``."""

    def __init__(self, certificates: TestCertificates, url: str = CERT_URL, **certificate: Any) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.url = url
        certificates.by_url[url] = make_certificate(self.key, **certificate)

    def sign(self, message: dict[str, Any], version: str = "2") -> dict[str, Any]:
        signed = {**message, "SignatureVersion": version, "SigningCertURL": self.url}
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(string_to_sign(signed), padding.PKCS1v15(), algorithm)
        return {**signed, "Signature": base64.b64encode(signature).decode()}


def notification(
    message: str,
    *,
    message_id: str = "m-1",
    topic: str = TOPIC,
    when: dt.datetime | None = None,
    subject: str | None = None,
) -> dict[str, Any]:
    stamp = (when or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    body = {"Type": "Notification", "MessageId": message_id, "TopicArn": topic, "Message": message, "Timestamp": stamp}
    if subject is not None:
        body["Subject"] = subject
    return body


def subscription_confirmation(*, message_id: str = "c-1", topic: str = TOPIC) -> dict[str, Any]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": message_id,
        "TopicArn": topic,
        "Token": "2336412f37fb687f5d51e6e2425c464de12884",
        "Message": f"You have chosen to subscribe to the topic {topic}.",
        "SubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}&Token=2336",
        "Timestamp": stamp,
    }
