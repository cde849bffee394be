"""SNS message verification: what the events endpoint accepts, and every way a forged or stale post is refused."""

from __future__ import annotations

import datetime as dt

import pytest

from sescontacts.events.sns import SnsCertificates, SnsMessageRefused, SnsVerifier, check_sns_url

from .support.sns import CERT_URL, TOPIC, Signer, TestCertificates, notification, subscription_confirmation


@pytest.fixture
def certificates() -> TestCertificates:
    return TestCertificates()


@pytest.fixture
def signer(certificates: TestCertificates) -> Signer:
    return Signer(certificates)


def verifier(certificates: TestCertificates, **options: object) -> SnsVerifier:
    return SnsVerifier((TOPIC,), certificates=certificates, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_notification_verifies_with_either_signature_version(certificates, signer, version) -> None:
    message = verifier(certificates).verify(signer.sign(notification('{"eventType":"Bounce"}'), version))
    assert (message.type, message.message_id, message.message) == ("Notification", "m-1", '{"eventType":"Bounce"}')


def test_a_subject_is_part_of_what_is_signed(certificates, signer) -> None:
    signed = signer.sign(notification("{}", subject="Amazon SES Email Event Notification"))
    assert verifier(certificates).verify(signed).message == "{}"
    with pytest.raises(SnsMessageRefused, match="signature does not verify"):
        verifier(certificates).verify({**signed, "Subject": "changed"})


def test_a_subscription_confirmation_verifies(certificates, signer) -> None:
    message = verifier(certificates).verify(signer.sign(subscription_confirmation()))
    assert message.subscribe_url is not None and message.subscribe_url.startswith("https://sns.us-east-1.")


@pytest.mark.parametrize("field", ["Message", "MessageId", "Timestamp", "Type"])
def test_a_changed_field_fails_the_signature(certificates, signer, field) -> None:
    signed = signer.sign(notification('{"a": 1}'))
    changed = {**signed, field: "SubscriptionConfirmation" if field == "Type" else signed[field][:-1] + "9"}
    with pytest.raises(SnsMessageRefused):
        verifier(certificates).verify(changed)


def test_unsigned_posts_are_refused(certificates, signer) -> None:
    signed = signer.sign(notification("{}"))
    for missing in ("Signature", "SigningCertURL", "SignatureVersion"):
        with pytest.raises(SnsMessageRefused, match="Unsigned or incomplete") as refused:
            verifier(certificates).verify({k: v for k, v in signed.items() if k != missing})
        assert refused.value.status == 400
    with pytest.raises(SnsMessageRefused, match="not 1 or 2"):
        verifier(certificates).verify({**signed, "SignatureVersion": "3"})


def test_a_key_that_is_not_snss_fails_even_with_a_good_url(certificates) -> None:
    real = Signer(certificates)
    impostor = Signer(TestCertificates())  # same URL, another key: SNS's certificate does not match
    with pytest.raises(SnsMessageRefused, match="signature does not verify"):
        verifier(certificates).verify(impostor.sign(notification("{}")))
    assert verifier(certificates).verify(real.sign(notification("{}")))


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
        "https://user@sns.us-east-1.amazonaws.com/cert.pem",
        "https://sqs.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com/cert.txt",
    ],
)
def test_a_certificate_from_anywhere_but_sns_is_never_fetched(certificates, url) -> None:
    elsewhere = Signer(certificates, url=url)
    with pytest.raises(SnsMessageRefused, match="SigningCertURL"):
        verifier(certificates).verify(elsewhere.sign(notification("{}")))
    assert certificates.fetched == []


def test_the_china_partition_host_is_an_sns_host() -> None:
    assert check_sns_url("https://sns.cn-north-1.amazonaws.com.cn/x.pem", what="SigningCertURL", suffix=".pem")


def test_a_topic_not_configured_is_refused_though_signed(certificates, signer) -> None:
    other = signer.sign(notification("{}", topic="arn:aws:sns:us-east-1:999999999999:someone-elses"))
    with pytest.raises(SnsMessageRefused, match="not one this server subscribes to"):
        verifier(certificates).verify(other)


def test_a_stale_message_is_a_replay(certificates, signer) -> None:
    old = signer.sign(notification("{}", when=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)))
    with pytest.raises(SnsMessageRefused, match="a replay"):
        verifier(certificates).verify(old)
    assert verifier(certificates, max_age=3 * 3600).verify(old)


def test_an_expired_certificate_is_refused(certificates) -> None:
    expired = Signer(certificates, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=60), days=30)
    with pytest.raises(SnsMessageRefused, match="validity dates"):
        verifier(certificates).verify(expired.sign(notification("{}")))


def test_the_production_source_fetches_each_certificate_once(certificates, signer) -> None:
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return certificates.pem(url)

    production = SnsVerifier((TOPIC,), certificates=SnsCertificates(fetch))
    for n in range(3):
        production.verify(signer.sign(notification("{}", message_id=f"m-{n}")))
    assert fetched == [CERT_URL]


def test_the_production_source_reports_an_unreadable_certificate(signer) -> None:
    production = SnsVerifier((TOPIC,), certificates=SnsCertificates(lambda url: b"not a certificate"))
    with pytest.raises(SnsMessageRefused, match="could not be read") as refused:
        production.verify(signer.sign(notification("{}")))
    assert refused.value.status == 502
