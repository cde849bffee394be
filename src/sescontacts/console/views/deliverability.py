"""What the overview says of deliverability: bounces and complaints per day over 30 days, the bounce and
complaint rates next to the levels at which SES reviews an account, and how many addresses are suppressed,
bounced or complained.

The rates are those of the events sescontacts received: bounces (permanent: SES's bounce rate counts hard
bounces) and complaints over sends. Without Send events (or Delivery events) in the event destination there is
no denominator, and the overview says so rather than showing a rate made up of bounces alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ...events.log import EventDay, EventLog
from ...store.base import SuppressionList
from ...suppression import SuppressionQuery

DAYS = 30
# The levels the SES developer guide names: an account is put under review at a 5% bounce rate or a 0.1%
# complaint rate (and may have its sending paused above 10% and 0.5%).
BOUNCE_REVIEW = 0.05
COMPLAINT_REVIEW = 0.001


@dataclass(frozen=True)
class Deliverability:
    days: list[EventDay]  # DAYS calendar days, oldest first, quiet days included
    suppressed: int  # the account's suppression list
    bounced: int  # addresses with a permanent bounce recorded
    complained: int  # addresses with a complaint recorded

    def _total(self, name: str) -> int:
        return sum(getattr(day, name) for day in self.days)

    @property
    def sends(self) -> int:
        """Sends in the window: Send events, or, where only Delivery events come, deliveries plus bounces."""
        return self._total("sends") or (self._total("deliveries") + self.bounces if self._total("deliveries") else 0)

    @property
    def bounces(self) -> int:
        return self._total("permanent_bounces")

    @property
    def complaints(self) -> int:
        return self._total("complaints")

    @property
    def bounce_rate(self) -> float | None:
        return self.bounces / self.sends if self.sends else None

    @property
    def complaint_rate(self) -> float | None:
        return self.complaints / self.sends if self.sends else None

    bounce_review = BOUNCE_REVIEW
    complaint_review = COMPLAINT_REVIEW


def calendar(days: list[EventDay], today: dt.date | None = None) -> list[EventDay]:
    """The last DAYS calendar days, each with its counts or none."""
    end = today or dt.datetime.now(dt.UTC).date()
    counts = {d.day: d for d in days}
    names = [(end - dt.timedelta(days=offset)).isoformat() for offset in range(DAYS - 1, -1, -1)]
    return [counts.get(name, EventDay(name)) for name in names]


def load(log: EventLog, suppression: SuppressionList, today: dt.date | None = None) -> Deliverability:
    days = calendar([], today)
    marks = log.mark_counts()
    return Deliverability(
        days=calendar(log.daily(days[0].day, days[-1].day), today),
        suppressed=suppression.count_suppressed(SuppressionQuery()),
        bounced=marks.bounced,
        complained=marks.complained,
    )
