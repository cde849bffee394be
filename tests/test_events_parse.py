"""SES event JSON (fixtures shaped as the SES developer guide's examples) to DeliveryEvent values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sescontacts.events.model import BOUNCE, COMPLAINT, DELIVERY, SEND
from sescontacts.events.parse import EventParseError, parse_document, parse_text

FIXTURES = Path(__file__).parent / "fixtures" / "ses-events"


def load(name: str) -> dict[str, object]:
    return json.loads((FIXTURES / name).read_text())


def test_a_bounce_event_gives_one_event_per_recipient():
    parsed = parse_text((FIXTURES / "bounce-event.json").read_bytes())
    assert parsed.skipped is None
    first, second = parsed.events
    assert (first.kind, first.email, first.bounce_type, first.bounce_subtype) == (
        BOUNCE, "gone@example.com", "Permanent", "General",
    )  # fmt: skip
    assert (first.status_code, first.diagnostic_code) == ("5.1.1", "smtp; 550 5.1.1 user unknown")
    assert first.feedback_id == second.feedback_id == "0100018c1f000001-aaaa-bbbb-cccc-000000000001-000000"
    assert first.message_id == "0100018c1eff0001-msg-000001"
    assert first.is_permanent_bounce
    # one feedback ID covers both recipients: the key is the feedback ID with the (folded) recipient
    assert first.event_key != second.event_key
    assert second.email == "Also.Gone@Example.com" and second.event_key.endswith(" also.gone@example.com")
    assert first.time == pytest.approx(1796033702.669)


def test_complaints_and_the_older_notifications_read_alike():
    event = parse_document(load("complaint-event.json")).events[0]
    assert (event.kind, event.email, event.complaint_type) == (COMPLAINT, "angry@example.com", "abuse")
    bounce = parse_document(load("bounce-notification.json")).events[0]
    assert (bounce.kind, bounce.bounce_type, bounce.email, bounce.is_permanent_bounce) == (
        BOUNCE, "Transient", "full@example.net", False,
    )  # fmt: skip
    complaint = parse_document(load("complaint-notification.json")).events[0]
    assert (complaint.kind, complaint.email) == (COMPLAINT, "spam-clicker@example.net")


def test_sends_and_deliveries_are_keyed_by_message_and_recipient():
    sends = parse_document(load("send-event.json")).events
    assert [(e.kind, e.email) for e in sends] == [(SEND, "happy@example.com"), (SEND, "other@example.com")]
    delivery = parse_document(load("delivery-event.json")).events[0]
    assert (delivery.kind, delivery.email) == (DELIVERY, "happy@example.com")
    assert delivery.event_key != sends[0].event_key  # same message and recipient, another kind


def test_envelopes_are_unwrapped():
    bridged = parse_document(load("eventbridge-bounce.json")).events
    assert [(e.kind, e.email) for e in bridged] == [(BOUNCE, "bridge@example.com")]
    sns = parse_document(load("sns-complaint.json")).events
    assert [(e.kind, e.email) for e in sns] == [(COMPLAINT, "sns-angry@example.com")]


@pytest.mark.parametrize(
    ("document", "skipped"),
    [
        (load("open-event.json"), "Open"),
        ({"eventType": "DeliveryDelay", "mail": {}}, "DeliveryDelay"),
        ({"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "ok"}, "AmazonSnsSubscriptionSucceeded"),
        ({"Type": "SubscriptionConfirmation", "Message": "confirm", "Token": "t"}, "SNS SubscriptionConfirmation"),
    ],
)
def test_other_types_are_skipped_not_errors(document, skipped):
    parsed = parse_document(document)
    assert (parsed.events, parsed.skipped) == ([], skipped)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["bounce"].pop("feedbackId"), "bounce.feedbackId: missing"),
        (lambda d: d["bounce"].update(bouncedRecipients=[]), "bounce.bouncedRecipients: empty"),
        (lambda d: d["bounce"]["bouncedRecipients"][1].update(emailAddress=7),
         "bounce.bouncedRecipients[1].emailAddress: expected a string, got a number"),
        (lambda d: d["bounce"].update(timestamp="yesterday"), "bounce.timestamp: not an ISO 8601 time: 'yesterday'"),
        (lambda d: d.pop("mail"), "mail: missing"),
        (lambda d: d.update(eventType=["Bounce"]), "eventType: expected a string, got an array"),
    ],
)  # fmt: skip
def test_a_malformed_record_names_the_field_and_why(mutate, message):
    document = load("bounce-event.json")
    mutate(document)
    with pytest.raises(EventParseError) as caught:
        parse_document(document)
    assert str(caught.value) == message


def test_errors_inside_envelopes_name_the_path():
    sns = load("sns-complaint.json")
    inner = json.loads(sns["Message"])
    del inner["complaint"]["timestamp"]
    sns["Message"] = json.dumps(inner)
    with pytest.raises(EventParseError, match=r"^Message\.complaint\.timestamp: missing$"):
        parse_document(sns)
    with pytest.raises(EventParseError, match=r"^not JSON"):
        parse_text(b'{"eventType": "Bounce",')
    with pytest.raises(EventParseError, match=r"^eventType: missing"):
        parse_text(b'{"hello": 1}')
    with pytest.raises(EventParseError, match=r"^expected a JSON object, got an array"):
        parse_text(b"[1]")
