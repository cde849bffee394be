"""Mirroring SES's account suppression list: ListSuppressedDestinations walked through the one pacer.

What a sync costs, in SES calls: one GetAccount (the account's SuppressedReasons) and one
ListSuppressedDestinations per 1,000 entries listed (``PageSize``; SES documents no bound, 1,000 is what our
server and ListContacts take). Two kinds of walk:

- **full**: every entry. The first sync, one a day (``full_every``), and ``sescontacts sync --full``. When it
  completes, mirrored entries SES did not list (and that nobody wrote since the walk began) are removed: only
  a full walk can see that an entry left SES, since a deleted entry is listed nowhere. 100,000 entries cost
  100 pages, about 100 s at 1 request/s.
- **incremental**: the entries with a LastUpdateTime from ``StartDate`` on: the time the last complete walk
  began, less ``overlap`` seconds. Every entry last updated before that walk began was listed by it; one
  updated during it may sit behind its cursor (pages come in address order), and is listed next time. Not the
  latest LastUpdateTime seen: entries added together (an import job, a campaign's bounces) share one, and a
  list whose newest 100,000 entries share it would be listed whole by every sync. The overlap (10 minutes)
  covers our clock being off SES's: SigV4 refuses requests from a clock more than 5 minutes off, so no call
  gets this far from one further off. Between syncs a few minutes apart that is one page: two calls a sync.

Resumable after a kill: each page's entries commit in one transaction with the walk's checkpoint (its kind,
StartDate and NextToken, table ``suppression_sync``) and, for a full walk, the addresses it listed
(``suppression_sync_seen``). The next sync resumes from the checkpoint; a NextToken SES no longer accepts
restarts the walk with the same StartDate (entries already mirrored are written again, never twice: the
mirror is keyed by the folded address).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from ...errors import BadRequest, InvalidNextToken, SesContactsError
from ...model import email_key
from ...ses_wire import from_ses_time
from ...suppression import SuppressedDestination
from ..base import SyncResult, SyncStatus
from ..sqlite.suppression import SqliteSuppressionList
from .client import SesClient

SUPPRESSION_PAGE_SIZE = 1000
OVERLAP_SECONDS = 600.0
FULL_EVERY_SECONDS = 86_400.0
#: The name a suppression walk's progress and result carry (``SyncStatus.list_name``): not a contact list.
SUPPRESSION_PART = "suppression list"

_COLUMNS = (
    "state, kind, start_date, next_token, started, pages, seen, stored, removed, calls, high_water, "
    "last_synced, last_full, last_duration, last_error"
)


class SuppressionSync:
    """Walks of SES's suppression list into ``mirror`` through ``ses`` (its pacer: the process's one)."""

    def __init__(
        self,
        ses: SesClient,
        mirror: SqliteSuppressionList,
        *,
        page_size: int = SUPPRESSION_PAGE_SIZE,
        overlap: float = OVERLAP_SECONDS,
        full_every: float = FULL_EVERY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ses = ses
        self.mirror = mirror
        self.db = mirror.db
        self.page_size = page_size
        self.overlap = overlap
        self.full_every = full_every
        self._now = clock

    # -- the checkpoint row ------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        row = self.db.reader().execute(f"SELECT {_COLUMNS} FROM suppression_sync WHERE id = 1").fetchone()
        names = _COLUMNS.split(", ")
        return dict(zip(names, row, strict=True)) if row else dict.fromkeys(names) | {"state": "idle"}

    def _save(self, **values: Any) -> None:
        with self.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO suppression_sync (id) VALUES (1)")
            assignments = ", ".join(f"{k} = ?" for k in values)
            conn.execute(f"UPDATE suppression_sync SET {assignments} WHERE id = 1", tuple(values.values()))

    def status(self) -> SyncStatus:
        """The walk as the console and ``sescontacts sync`` show it (``fetched``: entries written because new or
        changed; ``list_name``: :data:`SUPPRESSION_PART`)."""
        state = self._state()
        return SyncStatus(
            list_name=SUPPRESSION_PART,
            running=state["state"] == "running",
            kind=state["kind"],
            pages=state["pages"] or 0,
            seen=state["seen"] or 0,
            fetched=state["stored"] or 0,
            removed=state["removed"] or 0,
            calls=state["calls"] or 0,
            started=state["started"],
            last_synced=state["last_synced"],
            last_full=state["last_full"],
            last_duration=state["last_duration"],
            last_error=state["last_error"],
        )

    def full_due(self) -> bool:
        """Whether the schedule's next walk is a full one: never walked in full, or not for ``full_every``."""
        last_full = self._state()["last_full"]
        return last_full is None or self._now() - last_full >= self.full_every

    # -- one sync --------------------------------------------------------------------------------------

    def sync(
        self,
        *,
        full: bool | None = None,
        check_stop: Callable[[], None] | None = None,
        on_progress: Callable[[SyncStatus], None] | None = None,
    ) -> SyncResult:
        """One walk: resumes an interrupted one (unless ``full`` is asked of an interrupted incremental walk),
        else starts a full one when ``full`` (None: when :meth:`full_due`), else an incremental one.
        ``check_stop`` raises to stop between pages (the walk stays on record, to resume)."""
        calls_before = self.ses.total_calls()
        began = self._now()
        state = self._state()
        resume = state["state"] == "running" and not (full and state["kind"] != "full")
        try:
            if not resume:
                self._begin(full=self.full_due() if full is None else full)
            self._refresh_reasons()
            self._walk(check_stop, on_progress)
        except SesContactsError as exc:
            self._save(last_error=str(exc.message))
            raise
        return self._finish(began, calls_before, on_progress)

    def _begin(self, *, full: bool) -> None:
        high_water = self._state()["high_water"]
        incremental = not full and high_water is not None
        with self.db.write() as conn:
            conn.execute("DELETE FROM suppression_sync_seen")
            self._save(
                state="running",
                kind="incremental" if incremental else "full",
                start_date=max(0.0, high_water - self.overlap) if incremental else None,
                next_token=None,
                started=self._now(),
                pages=0,
                seen=0,
                stored=0,
                removed=0,
                calls=0,
                last_error=None,
            )

    def _refresh_reasons(self) -> None:
        """GetAccount's SuppressionAttributes into the mirror (what ``suppressed_reasons`` reads)."""
        account = self.ses.call("get_account")
        reasons = (account.get("SuppressionAttributes") or {}).get("SuppressedReasons") or []
        with self.db.write() as conn:
            self.mirror.set_suppressed_reasons(reasons)
            conn.execute("UPDATE suppression_sync SET calls = calls + 1 WHERE id = 1")

    def _walk(self, check_stop: Callable[[], None] | None, on_progress: Callable[[SyncStatus], None] | None) -> None:
        state = self._state()
        token: str | None = state["next_token"]
        full = state["kind"] == "full"
        while True:
            if check_stop is not None:
                check_stop()
            params: dict[str, Any] = {"PageSize": self.page_size}
            if state["start_date"] is not None:
                params["StartDate"] = dt.datetime.fromtimestamp(int(state["start_date"]), dt.UTC)
            if token:
                params["NextToken"] = token
            try:
                page = self.ses.call("list_suppressed_destinations", **params)
            except (InvalidNextToken, BadRequest):
                if not token:
                    raise
                token = None  # SES no longer knows the saved token: walk again (the mirror keys by address)
                continue
            token = page.get("NextToken") or None
            self._page(page.get("SuppressedDestinationSummaries") or [], token, full=full)
            if on_progress is not None:
                on_progress(self.status())
            if token is None:
                return

    def _page(self, items: list[dict[str, Any]], token: str | None, *, full: bool) -> None:
        """One page and the checkpoint, in one transaction. Only entries new or changed are written; the
        summaries carry no Attributes, so an entry whose reason is unchanged keeps the MessageId and
        FeedbackId the mirror knew."""
        listed = [
            SuppressedDestination(str(i["EmailAddress"]), str(i["Reason"]), from_ses_time(i["LastUpdateTime"]))
            for i in items
        ]
        have = self.mirror.suppressed_among([e.email for e in listed])
        changed: list[SuppressedDestination] = []
        for entry in listed:
            known = have.get(email_key(entry.email))
            if known is not None and (known.reason, known.last_update_time) == (entry.reason, entry.last_update_time):
                continue
            if known is not None and known.reason == entry.reason:
                entry = dataclasses.replace(entry, message_id=known.message_id, feedback_id=known.feedback_id)
            changed.append(entry)
        with self.db.write() as conn:
            self.mirror.store_entries(changed)
            if full:
                conn.executemany(
                    "INSERT OR IGNORE INTO suppression_sync_seen (email_key) VALUES (?)",
                    [(email_key(e.email),) for e in listed],
                )
            conn.execute(
                "UPDATE suppression_sync SET next_token = ?, pages = pages + 1, seen = seen + ?, stored = stored + ?, "
                "calls = calls + 1 WHERE id = 1",
                (token, len(listed), len(changed)),
            )

    def _finish(self, began: float, calls_before: int, on_progress: Callable[[SyncStatus], None] | None) -> SyncResult:
        """The walk is complete: a full one removes what SES no longer lists; the high-water mark moves on."""
        state = self._state()
        now = self._now()
        full = state["kind"] == "full"
        with self.db.write() as conn:
            removed = 0
            if full:
                # Not listed, and not written since the walk began (a put during the walk is newer than it).
                removed = self.mirror.remove_unlisted(updated_before=state["started"])
                conn.execute("DELETE FROM suppression_sync_seen")
            values: dict[str, Any] = {
                "state": "idle",
                "next_token": None,
                "removed": state["removed"] + removed,
                "high_water": state["started"],
                "last_synced": now,
                "last_duration": now - state["started"],
                "last_error": None,
            }
            if full:
                values["last_full"] = now
            self._save(**values)
        if on_progress is not None:
            on_progress(self.status())
        final = self._state()
        return SyncResult(
            SUPPRESSION_PART,
            final["kind"],
            final["pages"],
            final["seen"],
            final["stored"],
            final["removed"],
            self.ses.total_calls() - calls_before,
            now - began,
        )
