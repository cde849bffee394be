"""A bounce or complaint as sescontacts records it: one recipient of one SES event.

SES publishes an event per message (event publishing's ``eventType``, or the older notifications'
``notificationType``) naming one or more recipients; each recipient is one :class:`DeliveryEvent`.
``event_key`` makes recording idempotent: the feedback ID SES gives every bounce and complaint, with the
recipient (one feedback ID covers all recipients of one event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

EventKind = Literal["BOUNCE", "COMPLAINT", "SEND", "DELIVERY"]
BOUNCE: Final = "BOUNCE"
COMPLAINT: Final = "COMPLAINT"
SEND: Final = "SEND"
DELIVERY: Final = "DELIVERY"
#: SES's bounceType values: a Permanent bounce will never deliver; Transient may later; Undetermined: SES
#: could not tell (counted as transient by the rules, as SES's own guide advises treating it).
PERMANENT: Final = "Permanent"
TRANSIENT: Final = "Transient"
UNDETERMINED: Final = "Undetermined"


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One recipient of one SES event. SEND and DELIVERY events carry no recipient detail that is kept:
    they only count towards the day's sends (the denominator of the bounce and complaint rates)."""

    event_key: str
    kind: str
    email: str
    time: float
    bounce_type: str | None = None
    bounce_subtype: str | None = None
    complaint_type: str | None = None
    diagnostic_code: str | None = None
    status_code: str | None = None
    message_id: str | None = None
    feedback_id: str | None = None

    @property
    def is_permanent_bounce(self) -> bool:
        return self.kind == BOUNCE and self.bounce_type == PERMANENT
