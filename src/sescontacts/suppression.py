"""The account-level suppression list: the addresses SES will not deliver to, whatever any contact list says.

SES keeps one suppression list per account and region (not per contact list). An address lands on it after
a hard bounce or a complaint (when the account's ``SuppressionAttributes`` name that reason), or when someone
puts it there. A contact list says who *wants* mail; this says who SES will silently drop it for, which is
why the console shows both side by side.

Addresses are kept by their folded key (:func:`model.email_key`): SES answers a lookup of ``A@x.com`` with
the entry of ``a@x.com``. The spelling first written is what every API returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from .errors import BadRequest
from .model import email_key

SuppressionReason = Literal["BOUNCE", "COMPLAINT"]
BOUNCE: Final = "BOUNCE"
COMPLAINT: Final = "COMPLAINT"
SUPPRESSION_REASONS: Final = (BOUNCE, COMPLAINT)


def check_reason(value: str, *, field: str = "Reason") -> str:
    """``value`` when it is one of SES's SuppressionListReason values; BadRequest naming the field otherwise
    (worded as SES words it: the value itself is not quoted)."""
    if value not in SUPPRESSION_REASONS:
        raise BadRequest(
            f"1 validation error detected: Value at '{field}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(SUPPRESSION_REASONS)}]",
            field=field,
        )
    return value


@dataclass(frozen=True, slots=True)
class SuppressedDestination:
    """One entry: SES's ``SuppressedDestination`` (``LastUpdateTime`` as epoch seconds; ``Attributes``'
    MessageId and FeedbackId, known when an event put it there)."""

    email: str
    reason: str
    last_update_time: float
    message_id: str | None = None
    feedback_id: str | None = None


@dataclass(frozen=True, slots=True)
class SuppressionQuery:
    """Which entries to list. ``reasons``, ``start`` and ``end`` are ListSuppressedDestinations' Reasons,
    StartDate and EndDate (LastUpdateTime within [start, end], both inclusive); ``email_contains`` is the
    console's search (a substring of the folded address)."""

    reasons: tuple[str, ...] = ()
    start: float | None = None
    end: float | None = None
    email_contains: str | None = None

    def matches(self, entry: SuppressedDestination) -> bool:
        """The reference semantics every implementation's SQL must agree with (tests check against it)."""
        if self.reasons and entry.reason not in self.reasons:
            return False
        if self.start is not None and entry.last_update_time < self.start:
            return False
        if self.end is not None and entry.last_update_time > self.end:
            return False
        return not self.email_contains or email_key(self.email_contains) in email_key(entry.email)


#: The contacts page's deliverability filter (``ContactQuery.delivery``): on the suppression list, with a
#: permanent bounce recorded, with a complaint recorded (the events' per-address marks).
DELIVERY_FILTERS: Final = {
    "suppressed": "Suppressed",
    "bounced": "Bounced",
    "complained": "Complained",
}
