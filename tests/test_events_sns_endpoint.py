"""The SNS subscription endpoint, POST /events/sns, through the server's real ASGI app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient  # its httpx deprecation: pyproject's filterwarnings

from sescontacts.events.sns import SnsMessage, SnsVerifier
from sescontacts.events.sns_endpoint import SnsEndpoint
from sescontacts.model import Contact
from sescontacts.server.app import build_app

from .support.console import open_services
from .support.sns import TOPIC, Signer, TestCertificates, notification, subscription_confirmation

PATH = "/events/sns"


@pytest.fixture
def certificates() -> TestCertificates:
    return TestCertificates()


@pytest.fixture
def signer(certificates: TestCertificates) -> Signer:
    return Signer(certificates)


class Endpoint:
    """An SnsEndpoint on a real data dir, recording what it was asked to do."""

    def __init__(self, data_dir: Path, certificates: TestCertificates) -> None:
        self.services = open_services(data_dir)
        self.notified: list[SnsMessage] = []
        self.confirmed: list[str] = []
        self.app = SnsEndpoint(
            self.services.db,
            SnsVerifier((TOPIC,), certificates=certificates),
            self.notify,
            confirm=self.confirm,
        )
        self.client = TestClient(self.app, base_url="http://127.0.0.1:8000")

    def notify(self, message: SnsMessage) -> str:
        self.notified.append(message)
        return "recorded 1 bounce"

    def confirm(self, url: str) -> bytes:
        self.confirmed.append(url)
        return b"<ConfirmSubscriptionResponse/>"

    def post(self, message: dict[str, object], **headers: str) -> tuple[int, str]:
        response = self.client.post(
            PATH, content=orjson.dumps(message), headers={"x-amz-sns-message-type": str(message["Type"]), **headers}
        )
        return response.status_code, response.text


@pytest.fixture
def endpoint(tmp_path: Path, certificates: TestCertificates) -> Iterator[Endpoint]:
    made = Endpoint(tmp_path / "data", certificates)
    yield made
    made.services.close()


def test_a_subscription_is_confirmed_at_snss_url(endpoint, signer) -> None:
    status, text = endpoint.post(signer.sign(subscription_confirmation()))
    assert (status, text.strip()) == (200, f"Subscription to {TOPIC} confirmed.")
    assert len(endpoint.confirmed) == 1 and endpoint.confirmed[0].startswith("https://sns.us-east-1.amazonaws.com/")


def test_a_notification_is_handed_to_the_recorder_once(endpoint, signer) -> None:
    signed = signer.sign(notification('{"eventType": "Bounce"}', message_id="n-1"))
    assert endpoint.post(signed) == (200, "recorded 1 bounce\n")
    status, text = endpoint.post(signed)  # SNS redelivers when our answer was lost
    assert status == 200 and "already received; nothing changed" in text
    assert [m.message_id for m in endpoint.notified] == ["n-1"]


def test_a_forged_notification_changes_nothing(endpoint, signer) -> None:
    signed = signer.sign(notification('{"eventType": "Bounce"}'))
    status, text = endpoint.post({**signed, "Message": '{"eventType": "Complaint"}'})
    assert (status, text.strip()) == (403, "The message's signature does not verify")
    status, text = endpoint.post({k: v for k, v in signed.items() if k != "Signature"})
    assert status == 400 and "Unsigned" in text
    assert endpoint.notified == []


def test_a_refused_message_id_is_not_remembered_as_received(endpoint, signer) -> None:
    signed = signer.sign(notification("{}", message_id="n-2"))
    assert endpoint.post({**signed, "Signature": signed["Signature"][::-1]})[0] == 403
    assert endpoint.post(signed)[0] == 200
    assert len(endpoint.notified) == 1


def test_the_type_header_must_match_the_body(endpoint, signer) -> None:
    signed = signer.sign(notification("{}"))
    status, text = endpoint.post(signed, **{"x-amz-sns-message-type": "SubscriptionConfirmation"})
    assert status == 400 and "does not match" in text


def test_bad_bodies_get_a_reason(endpoint) -> None:
    for body, reason in (
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not an SNS message"),
        (b'{"Type": "x"}', "not an SNS"),
    ):
        response = endpoint.client.post(PATH, content=body)
        assert response.status_code == 400 and reason in response.text
    assert endpoint.client.post(PATH, content=b"x" * (700 * 1024)).status_code == 413
    response = endpoint.client.get(PATH)
    assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_the_server_routes_the_path_and_is_off_without_a_topic(tmp_path: Path, signer, certificates) -> None:
    off = open_services(tmp_path / "off")
    on = open_services(tmp_path / "on", events_sns_topic_arns=(TOPIC,))
    try:
        client = TestClient(build_app(off, sns_certificates=certificates), base_url="http://127.0.0.1:8000")
        response = client.post(PATH, content=orjson.dumps(signer.sign(notification("{}"))))
        assert response.status_code == 404 and "--events-sns-topic-arn" in response.text
        client = TestClient(build_app(on, sns_certificates=certificates), base_url="http://127.0.0.1:8000")
        other = signer.sign(notification("{}", topic="arn:aws:sns:us-east-1:999999999999:other"))
        response = client.post(PATH, content=orjson.dumps(other))
        assert response.status_code == 403 and "not one this server subscribes to" in response.text
        # Not the console's: no login page, no redirect.
        assert client.post(PATH, content=b"{}").status_code == 400
    finally:
        off.close()
        on.close()


FIXTURES = Path(__file__).parent / "fixtures" / "ses-events"


def test_a_signed_bounce_unsubscribes_the_contact_once(tmp_path: Path, signer, certificates) -> None:
    """The whole path: SNS posts a signed Notification carrying SES's bounce event; the server verifies it,
    records the event and the list rule unsubscribes the contact. The same message again changes nothing."""
    services = open_services(tmp_path / "data", events_sns_topic_arns=(TOPIC,))
    try:
        services.store.create_contact(services.settings.contact_list, Contact("gone@example.com"))
        client = TestClient(build_app(services, sns_certificates=certificates), base_url="http://127.0.0.1:8000")
        bounce = (FIXTURES / "bounce-event.json").read_text()
        signed = signer.sign(notification(bounce, message_id="b-1"))
        response = client.post(PATH, content=orjson.dumps(signed), headers={"x-amz-sns-message-type": "Notification"})
        assert response.status_code == 200 and "Recorded 2 bounce or complaint" in response.text
        assert "1 unsubscribed" in response.text
        contact = services.store.get_contact(services.settings.contact_list, "gone@example.com")
        assert contact.unsubscribe_all
        history = services.events.log.history("gone@example.com")
        assert [(h.event.kind, h.event.bounce_type) for h in history] == [("BOUNCE", "Permanent")]
        again = signer.sign(notification(bounce, message_id="b-2"))  # a new SNS message, the same SES event
        response = client.post(PATH, content=orjson.dumps(again))
        assert "0 bounce or complaint" in response.text and "2 already recorded" in response.text
        assert len(services.events.log.history("gone@example.com")) == 1
    finally:
        services.close()


def test_a_notification_that_is_no_ses_event_is_kept_aside(tmp_path: Path, signer, certificates) -> None:
    services = open_services(tmp_path / "data", events_sns_topic_arns=(TOPIC,))
    try:
        client = TestClient(build_app(services, sns_certificates=certificates), base_url="http://127.0.0.1:8000")
        response = client.post(PATH, content=orjson.dumps(signer.sign(notification('{"hello": 1}', message_id="p"))))
        assert response.status_code == 200 and "Not an SES event, kept aside" in response.text
        [(message_id, _, source, reason, body)] = services.events.log.poison()
        assert (message_id, source, body) == ("p", "sns", '{"hello": 1}') and reason
    finally:
        services.close()
