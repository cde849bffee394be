"""The account's suppression list on the ses backend: SES's own, written through and mirrored.

Writes (put, delete, the account's SuppressedReasons) go to SES first, through the paced client, and only
then to the mirror, so a failed call never leaves the mirror claiming what SES does not have. Reads (a
lookup, a page, counts, the contacts page's "suppressed" filter) are answered by the mirror, a
:class:`~sescontacts.store.sqlite.suppression.SqliteSuppressionList` in the product database that
:class:`~.suppression_sync.SuppressionSync` keeps in step with SES: at SES's one request per second a
lookup per contact shown would cost a second each, a page of 50 contacts almost a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ... import errors
from ...model import Page
from ...suppression import SUPPRESSION_REASONS, SuppressedDestination, SuppressionQuery, check_reason
from ..sqlite.suppression import SqliteSuppressionList
from .client import SesClient
from .suppression_sync import SuppressionSync


class SesSuppressionList:
    """:class:`~sescontacts.store.base.SuppressionList` on SES's account suppression list (``ses``), read from
    ``mirror``; ``sync`` keeps the mirror current (run by the store's scheduled sync)."""

    def __init__(
        self,
        ses: SesClient,
        mirror: SqliteSuppressionList,
        *,
        clock: Callable[[], float] = time.time,
        sync: SuppressionSync | None = None,
    ) -> None:
        self.ses = ses
        self.mirror = mirror
        self._now = clock
        self.sync = sync or SuppressionSync(ses, mirror, clock=clock)

    # -- writes: SES first, then the mirror ------------------------------------------------------------

    def put_suppressed(
        self, email: str, reason: str, *, message_id: str | None = None, feedback_id: str | None = None
    ) -> SuppressedDestination:
        """PutSuppressedDestination, then the mirror, with this clock's time (reading SES's back would cost a
        second call; the next walk lists SES's own LastUpdateTime). SES takes no MessageId or FeedbackId on a
        put: the ids given are kept in the mirror only, as why we put it there."""
        self.ses.call("put_suppressed_destination", EmailAddress=email, Reason=check_reason(reason))
        entry = SuppressedDestination(email, reason, self._now(), message_id, feedback_id)
        self.mirror.store_entries([entry])
        return self.mirror.get_suppressed(email)

    def delete_suppressed(self, email: str) -> None:
        """DeleteSuppressedDestination, then the mirror. An address SES no longer has leaves the mirror too
        (removed elsewhere since the last walk) before its NotFound is raised."""
        try:
            self.ses.call("delete_suppressed_destination", EmailAddress=email)
        except errors.NotFound:
            self.mirror.remove_entries([email])
            raise
        self.mirror.remove_entries([email])

    def set_suppressed_reasons(self, reasons: Sequence[str]) -> None:
        """PutAccountSuppressionAttributes, then the mirror's copy (what :meth:`suppressed_reasons` reads)."""
        chosen = {check_reason(r, field="SuppressedReasons") for r in reasons}
        ordered = [r for r in SUPPRESSION_REASONS if r in chosen]
        self.ses.call("put_account_suppression_attributes", SuppressedReasons=ordered)
        self.mirror.set_suppressed_reasons(ordered)

    # -- reads: the mirror -----------------------------------------------------------------------------

    def get_suppressed(self, email: str) -> SuppressedDestination:
        return self.mirror.get_suppressed(email)

    def list_suppressed(
        self, query: SuppressionQuery, *, page_size: int | None = None, token: str | None = None
    ) -> Page[SuppressedDestination]:
        return self.mirror.list_suppressed(query, page_size=page_size, token=token)

    def count_suppressed(self, query: SuppressionQuery) -> int:
        return self.mirror.count_suppressed(query)

    def suppressed_among(self, emails: Sequence[str]) -> dict[str, SuppressedDestination]:
        return self.mirror.suppressed_among(emails)

    def suppressed_reasons(self) -> tuple[str, ...]:
        """GetAccount's SuppressionAttributes as the last sync read them (each sync reads them once)."""
        return self.mirror.suppressed_reasons()


__all__ = ["SesSuppressionList"]
