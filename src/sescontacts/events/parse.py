"""SES event JSON to :class:`~.model.DeliveryEvent` values: one per recipient.

Accepted, as SES and its carriers deliver them:

- event publishing records (``eventType``), as SNS, SQS and Firehose/S3 archives hold them;
- the older feedback notifications (``notificationType``), the same objects under another name;
- EventBridge's envelope (``source`` ``aws.ses``, the record in ``detail``);
- an SNS envelope (``Type`` ``Notification``, the record as JSON text in ``Message``), as an SNS to SQS
  subscription without raw delivery puts it in the queue.

Bounce, Complaint, Send and Delivery are kept; every other type (Open, Click, Reject, DeliveryDelay,
Subscription, SES's AmazonSnsSubscriptionSucceeded test notification, ...) is *skipped*: returned as the type
name so a caller counts it, never an error. A record that claims to be one of the kept types but lacks what
sescontacts needs is a :class:`EventParseError` naming the field (as a path: ``bounce.bouncedRecipients[0]
.emailAddress``) and why. SES may add fields at any time (its guide says so): unknown fields are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr

import orjson

from ..model import email_key
from ..validation import json_type_name
from .model import BOUNCE, COMPLAINT, DELIVERY, SEND, DeliveryEvent

# eventType / notificationType -> kind. Anything else is skipped.
KINDS: dict[str, str] = {"Bounce": BOUNCE, "Complaint": COMPLAINT, "Send": SEND, "Delivery": DELIVERY}


class EventParseError(ValueError):
    """A record sescontacts cannot read. ``field``: where in it (a dotted path), ``reason``: why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


@dataclass
class Parsed:
    """What one SES record (one line, one queue message) gave: its events, or the type it skipped."""

    events: list[DeliveryEvent] = field(default_factory=list)
    skipped: str | None = None


def parse_text(text: str | bytes) -> Parsed:
    """One JSON document (a line of a file, an SQS message body) in any of the accepted shapes."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise EventParseError("", f"not JSON ({exc})") from None
    return parse_document(document)


def parse_document(document: object) -> Parsed:
    """A decoded JSON document in any of the accepted shapes (envelopes unwrapped)."""
    if not isinstance(document, dict):
        raise EventParseError("", f"expected a JSON object, got {json_type_name(document)}")
    if "eventType" not in document and "notificationType" not in document:
        if document.get("Type") is not None and "Message" in document:  # an SNS envelope
            if document["Type"] != "Notification":
                return Parsed(skipped=f"SNS {document['Type']}")
            message = document["Message"]
            if not isinstance(message, str):
                raise EventParseError("Message", f"expected the SES record as JSON text, got {json_type_name(message)}")
            try:
                return parse_document(orjson.loads(message))
            except orjson.JSONDecodeError as exc:
                raise EventParseError("Message", f"not JSON ({exc})") from None
            except EventParseError as exc:
                raise EventParseError(_join("Message", exc.field), exc.reason) from None
        if "detail" in document and "detail-type" in document:  # an EventBridge event
            try:
                return parse_record(document["detail"])
            except EventParseError as exc:
                raise EventParseError(_join("detail", exc.field), exc.reason) from None
    return parse_record(document)


def parse_record(record: object) -> Parsed:
    """An SES event record itself (``eventType`` or ``notificationType`` at its top)."""
    if not isinstance(record, dict):
        raise EventParseError("", f"expected a JSON object, got {json_type_name(record)}")
    name = "eventType" if "eventType" in record else "notificationType"
    event_type = record.get(name)
    if not isinstance(event_type, str):
        if name not in record:
            raise EventParseError("eventType", "missing: not an SES event (neither eventType nor notificationType)")
        raise EventParseError(name, f"expected a string, got {json_type_name(event_type)}")
    kind = KINDS.get(event_type)
    if kind is None:
        return Parsed(skipped=event_type)
    mail = _object(record, "mail", "mail")
    message_id = _string(mail, "messageId", "mail.messageId")
    if kind == BOUNCE:
        return Parsed(list(_bounces(_object(record, "bounce", "bounce"), message_id)))
    if kind == COMPLAINT:
        return Parsed(list(_complaints(_object(record, "complaint", "complaint"), message_id)))
    if kind == DELIVERY:
        delivery = _object(record, "delivery", "delivery")
        when = _time(delivery, "timestamp", "delivery.timestamp")
        recipients = _strings(delivery, "recipients", "delivery.recipients")
        return Parsed([_counted(DELIVERY, message_id, address, when) for address in recipients])
    when = _time(mail, "timestamp", "mail.timestamp")
    recipients = _strings(mail, "destination", "mail.destination")
    return Parsed([_counted(SEND, message_id, address, when) for address in recipients])


def _bounces(bounce: Mapping[str, object], message_id: str) -> Iterator[DeliveryEvent]:
    bounce_type = _string(bounce, "bounceType", "bounce.bounceType")
    subtype = _optional_string(bounce, "bounceSubType", "bounce.bounceSubType")
    feedback_id = _string(bounce, "feedbackId", "bounce.feedbackId")
    when = _time(bounce, "timestamp", "bounce.timestamp")
    for index, recipient in enumerate(_objects(bounce, "bouncedRecipients", "bounce.bouncedRecipients")):
        where = f"bounce.bouncedRecipients[{index}]"
        address = _address(recipient, f"{where}.emailAddress")
        yield DeliveryEvent(
            event_key=f"{feedback_id} {email_key(address)}",
            kind=BOUNCE,
            email=address,
            time=when,
            bounce_type=bounce_type,
            bounce_subtype=subtype,
            diagnostic_code=_optional_string(recipient, "diagnosticCode", f"{where}.diagnosticCode"),
            status_code=_optional_string(recipient, "status", f"{where}.status"),
            message_id=message_id,
            feedback_id=feedback_id,
        )


def _complaints(complaint: Mapping[str, object], message_id: str) -> Iterator[DeliveryEvent]:
    feedback_id = _string(complaint, "feedbackId", "complaint.feedbackId")
    when = _time(complaint, "timestamp", "complaint.timestamp")
    # complaintFeedbackType comes from the receiver's ARF report, when it sent one; complaintSubType is set
    # ("OnAccountSuppressionList") when SES itself turned the message away.
    complaint_type = _optional_string(complaint, "complaintFeedbackType", "complaint.complaintFeedbackType")
    if complaint_type is None:
        complaint_type = _optional_string(complaint, "complaintSubType", "complaint.complaintSubType")
    for index, recipient in enumerate(_objects(complaint, "complainedRecipients", "complaint.complainedRecipients")):
        address = _address(recipient, f"complaint.complainedRecipients[{index}].emailAddress")
        yield DeliveryEvent(
            event_key=f"{feedback_id} {email_key(address)}",
            kind=COMPLAINT,
            email=address,
            time=when,
            complaint_type=complaint_type,
            message_id=message_id,
            feedback_id=feedback_id,
        )


def _counted(kind: str, message_id: str, address: str, when: float) -> DeliveryEvent:
    """A send or delivery: keyed by message and recipient (it has no feedback ID)."""
    address = _plain(address)
    return DeliveryEvent(
        event_key=f"{kind} {message_id} {email_key(address)}",
        kind=kind,
        email=address,
        time=when,
        message_id=message_id,
    )


def _plain(address: str) -> str:
    """``Name <a@example.com>`` -> ``a@example.com`` (mail.destination keeps what the sender wrote)."""
    if "<" not in address:
        return address.strip()
    return parseaddr(address)[1] or address.strip()


def _address(recipient: Mapping[str, object], where: str) -> str:
    address = recipient.get("emailAddress")
    if not isinstance(address, str):
        raise EventParseError(
            where, "missing" if address is None else f"expected a string, got {json_type_name(address)}"
        )
    address = _plain(address)
    if "@" not in address:
        raise EventParseError(where, f"not an email address: {address!r}")
    return address


def _object(parent: Mapping[str, object], key: str, where: str) -> Mapping[str, object]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise EventParseError(where, "missing" if value is None else f"expected an object, got {json_type_name(value)}")
    return value


def _items(parent: Mapping[str, object], key: str, where: str) -> list[object]:
    """A list that must hold at least one item."""
    value = parent.get(key)
    if not isinstance(value, list) or not value:
        reason = (
            "missing"
            if value is None
            else "empty"
            if value == []
            else f"expected an array, got {json_type_name(value)}"
        )
        raise EventParseError(where, reason)
    return value


def _objects(parent: Mapping[str, object], key: str, where: str) -> list[Mapping[str, object]]:
    objects: list[Mapping[str, object]] = []
    for index, item in enumerate(_items(parent, key, where)):
        if not isinstance(item, dict):
            raise EventParseError(f"{where}[{index}]", f"expected an object, got {json_type_name(item)}")
        objects.append(item)
    return objects


def _strings(parent: Mapping[str, object], key: str, where: str) -> list[str]:
    strings: list[str] = []
    for index, item in enumerate(_items(parent, key, where)):
        if not isinstance(item, str) or "@" not in item:
            raise EventParseError(f"{where}[{index}]", f"not an email address: {item!r}")
        strings.append(item)
    return strings


def _string(parent: Mapping[str, object], key: str, where: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        reason = (
            "missing"
            if value is None
            else "empty"
            if value == ""
            else f"expected a string, got {json_type_name(value)}"
        )
        raise EventParseError(where, reason)
    return value


def _optional_string(parent: Mapping[str, object], key: str, where: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventParseError(where, f"expected a string, got {json_type_name(value)}")
    return value


def _time(parent: Mapping[str, object], key: str, where: str) -> float:
    """SES's timestamps: ISO 8601 in UTC (``2017-08-05T00:41:02.669Z``)."""
    text = _string(parent, key, where)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise EventParseError(where, f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise EventParseError(where, f"no time zone: {text!r}")
    return moment.timestamp()


def _join(outer: str, inner: str) -> str:
    return f"{outer}.{inner}" if inner else outer
