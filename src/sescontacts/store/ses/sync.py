"""Keeping the ses backend's mirror in step with SES: changes made by other programs, the SES console, or
contacts unsubscribing through SES's own links.

SES offers no "changed since" query, so every sync lists every page of ListContacts (1,000 contacts per
call) and compares each contact's LastUpdatedTimestamp with the mirror's copy. Each sync has two phases:

1. **walk**: the pages. What a page shows (address, unsubscribe-all, topic preferences, timestamp) goes to the
   mirror at once, so after ~100 calls for 100,000 contacts the console has every contact, its subscription
   state and the counts. Contacts that are new or changed are queued (``ses_unfetched``).
2. **fetch**: one GetContact per queued contact (the only call that returns attributes and the creation
   time). At the 1 request/s pacer that is a second per changed contact: a day for a first sync of 100,000,
   nothing for a list that did not change.

Two kinds:
- **full**: a walk from the first page; when it completes, contacts the mirror has but SES did not list
  (and that were not written since the walk began) are removed, and the list's topics are refreshed.
- **incremental**: continues an interrupted sync where it stopped (its NextToken, the contacts it saw and the
  queue are in the database), else starts one. A completed walk removes contacts too, since it has then
  seen the whole list.

Resumable after a kill: each page commits with its NextToken, the contacts it listed and its queue in one
transaction; fetched contacts are committed in small chunks. A restart resumes from the last committed page
(or restarts the walk if SES no longer accepts the token: contacts already read are unchanged and cost
nothing), or continues the fetch phase.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from ...errors import BadRequest, InvalidNextToken, NotFound, SesContactsError
from ...history import SES_SYNC, acting_as, current_actor
from ...model import Contact, ContactQuery
from ...ses_wire import contact_from_ses
from ..base import SyncResult, SyncStatus
from ..sqlite.mirror import mirror_contacts, mirror_existing, mirror_remove, mirror_spellings, mirror_unlisted
from .client import LIST_PAGE_SIZE, SesClient
from .mirror import MirroredLists
from .suppression_sync import SuppressionSync

_ALL = ContactQuery()
SYNC_SHARE_FACTOR = 3.0  # wait at least 3x the last walk's duration: syncing uses <= 25% of the request rate
FETCH_CHUNK = 25  # GetContact results committed together: a kill loses at most this many calls' work


def mirror_written(lists: MirroredLists, list_name: str, contact: Contact, written_at: float) -> None:
    """Mirror a contact just written to SES without reading it back (a call saved per row): its state is ours,
    its timestamps local, and it is marked pending (one transaction) until the next walk adopts SES's
    LastUpdatedTimestamp from ListContacts instead of calling GetContact for it."""
    lists.ensure(list_name)
    with lists.db.write() as conn:
        mirror_contacts(lists.local, list_name, [contact], force=True)
        conn.execute(
            "INSERT INTO ses_pending (list_name, email_key, written_at) VALUES (?, ?, ?) "
            "ON CONFLICT (list_name, email_key) DO UPDATE SET written_at = excluded.written_at",
            (list_name, lists.local.email_key(contact.email), written_at),
        )


_STATE_COLUMNS = (
    "state, kind, started, next_token, pages, seen, fetched, removed, calls, estimate, "
    "last_synced, last_full, last_duration, last_error, phase"
)


def _same_listed_state(contact: Contact, shown: Contact) -> bool:
    """Whether a ListContacts item shows what we wrote (the item has no attributes to compare)."""
    return shown.unsubscribe_all == contact.unsubscribe_all and dict(shown.topic_preferences) == dict(
        contact.topic_preferences
    )


class SyncStopped(Exception):
    """The sync was asked to stop (shutdown); its state stays 'running' so the next start resumes it."""


class MirrorSync:
    """Runs syncs of the mirror behind ``lists`` from SES (``ses``): on demand, and on a schedule in a
    background thread."""

    def __init__(
        self,
        ses: SesClient,
        lists: MirroredLists,
        *,
        interval: float = 300.0,
        page_size: int | None = None,
        on_progress: Callable[[SyncStatus], None] | None = None,
        clock: Callable[[], float] = time.time,
        suppression: SuppressionSync | None = None,
    ) -> None:
        self.ses = ses
        # The account's suppression list, walked after the lists in the same pass (and the same pacer budget).
        self.suppression = suppression
        self.lists = lists
        self.mirror = lists.local
        self.db = lists.db
        self.interval = interval
        self.page_size = page_size or LIST_PAGE_SIZE
        self.on_progress = on_progress
        self._now = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()  # one walk at a time per process
        self._segment: dict[str, tuple[float, int]] = {}  # list -> (wall start, calls at start) of this process
        self._adopt: dict[str, Contact] = {}
        self._adopter = SES_SYNC  # who wrote the contacts of ``_adopt`` (the history records them as theirs)
        self._pending: set[str] = set()

    # -- state rows ------------------------------------------------------------------------------------

    def _state(self, list_name: str) -> dict[str, Any] | None:
        row = (
            self.db.reader()
            .execute(f"SELECT {_STATE_COLUMNS} FROM ses_sync WHERE list_name = ?", (list_name,))
            .fetchone()
        )
        return dict(zip(_STATE_COLUMNS.split(", "), row, strict=True)) if row else None

    def status(self, list_name: str | None = None) -> SyncStatus:
        name = list_name or self._default_list()
        state = self._state(name)
        suppression = self.suppression.status() if self.suppression is not None else None
        if state is None:
            return SyncStatus(name, suppression=suppression)
        running = state["state"] == "running"
        return SyncStatus(
            suppression=suppression,
            list_name=name,
            running=running,
            kind=state["kind"],
            pages=state["pages"],
            seen=state["seen"],
            fetched=state["fetched"],
            removed=state["removed"],
            calls=state["calls"],
            estimate=state["estimate"],
            started=state["started"],
            last_synced=state["last_synced"],
            last_full=state["last_full"],
            last_duration=state["last_duration"],
            last_error=state["last_error"],
            eta_seconds=self._eta(name, state) if running else None,
            phase=state["phase"],
            to_fetch=self._to_fetch(name),
        )

    def _to_fetch(self, list_name: str) -> int:
        row = (
            self.db.reader().execute("SELECT count(*) FROM ses_unfetched WHERE list_name = ?", (list_name,)).fetchone()
        )
        return int(row[0])

    def _default_list(self) -> str:
        row = self.db.reader().execute("SELECT list_name FROM ses_sync ORDER BY last_synced DESC LIMIT 1").fetchone()
        return str(row[0]) if row else ""

    def _eta(self, list_name: str, state: dict[str, Any]) -> float | None:
        """Seconds left, from the calls still needed and the call rate actually achieved so far.

        Calls left = the pages not yet listed + a GetContact for each contact listed as new or changed and not
        yet read + the same share of the contacts on the pages still to list. The total is the mirror's count
        when the walk began (SES has no count); with an empty mirror it is unknown until the last page, and
        so is the ETA (None); in the fetch phase it is exact but for the rate.
        """
        to_fetch = self._to_fetch(list_name)
        walking = state["phase"] == "walk"
        more = walking and (bool(state["next_token"]) or not state["pages"])
        if more and state["estimate"] == 0:
            return None  # an empty mirror: SES has no count, so the number of pages left is unknown
        estimate = max(state["estimate"], state["seen"])
        remaining = max(0, estimate - state["seen"]) if walking else 0
        pages_left = math.ceil(remaining / self.page_size) + (1 if more and not remaining else 0)
        share = (state["fetched"] + to_fetch) / state["seen"] if state["seen"] else 0.0
        calls_left = pages_left + to_fetch + min(1.0, share) * remaining
        rate = self.ses.pacer.rate
        segment = self._segment.get(list_name)
        if segment is not None:
            elapsed = self._now() - segment[0]
            calls = state["calls"] - segment[1]
            if elapsed > 2 and calls > 0:
                rate = min(rate, calls / elapsed)
        return calls_left / rate if rate > 0 else None

    def _save(self, conn: sqlite3.Connection, list_name: str, **values: Any) -> None:
        conn.execute("INSERT OR IGNORE INTO ses_sync (list_name) VALUES (?)", (list_name,))
        assignments = ", ".join(f"{k} = ?" for k in values)
        conn.execute(f"UPDATE ses_sync SET {assignments} WHERE list_name = ?", (*values.values(), list_name))

    def forget(self, list_name: str) -> None:
        """A deleted list: drop its sync state."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM ses_sync WHERE list_name = ?", (list_name,))
            conn.execute("DELETE FROM ses_pending WHERE list_name = ?", (list_name,))
            conn.execute("DELETE FROM ses_unfetched WHERE list_name = ?", (list_name,))
            conn.execute("DELETE FROM ses_sync_seen WHERE list_name = ?", (list_name,))

    # -- one sync --------------------------------------------------------------------------------------

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise SyncStopped

    def _report(self, list_name: str) -> None:
        if self.on_progress is not None:
            self.on_progress(self.status(list_name))

    def sync_all(self, *, full: bool = False, suppression_full: bool | None = None) -> list[SyncResult]:
        """Sync every list SES has (SES allows one per region); drop mirrored lists SES no longer has. Then the
        suppression list (when this sync has one): a full walk when ``suppression_full``, else incremental
        (None: full when its schedule says one is due); its result last, absent when SES refused the walk."""
        answer = self.ses.call("list_contact_lists", PageSize=1000)
        names = [item["ContactListName"] for item in answer.get("ContactLists") or ()]
        for mirrored in self.lists.local.list_lists(page_size=1000).items:
            if mirrored.name not in names:
                self.lists.drop(mirrored.name)
                self.forget(mirrored.name)
        results = [self.sync(name, full=full) for name in names]
        if self.suppression is not None:
            with self._run_lock, contextlib.suppress(SesContactsError):
                # A refusal (no permission for it, an SES stand-in without it) is kept in the walk's own status,
                # which the console and `sescontacts sync` show: the lists' sync stands.
                results.append(
                    self.suppression.sync(
                        full=suppression_full, check_stop=self._check_stop, on_progress=self.on_progress
                    )
                )
        return results

    def sync(self, list_name: str, *, full: bool = False, adopt: dict[str, Contact] | None = None) -> SyncResult:
        """One walk. ``adopt`` (by the mirror's key, ``mirror.email_key``): contacts we just wrote in bulk (an
        import job), whose state we know but whose new LastUpdatedTimestamp we do not. A listed contact whose
        unsubscribe-all and topic preferences match is taken as ours with SES's timestamp, without a GetContact
        each: after a 100,000-row import job that saves 100,000 calls (a day at 1/s)."""
        # What the walk writes to the mirror is what SES changed, recorded as "SES"; the contacts it adopts are
        # ours, recorded as whoever wrote them (an import job through an SES import job: their only record).
        adopter = current_actor()
        with self._run_lock, acting_as(SES_SYNC):
            self._adopt, self._adopter = adopt or {}, adopter
            try:
                return self._sync(list_name, full=full)
            finally:
                self._adopt, self._adopter = {}, SES_SYNC

    def _sync(self, list_name: str, *, full: bool) -> SyncResult:
        calls_before = self.ses.total_calls()
        began = self._now()
        state = self._state(list_name)
        resume = not full and state is not None and state["state"] == "running"
        if not resume:
            try:
                self.lists.fetch(list_name)
            except NotFound:
                self.lists.drop(list_name)
                self.forget(list_name)
                raise
            estimate = self.lists.local.count_contacts(list_name, _ALL).value
            with self.db.write() as conn:
                conn.execute("DELETE FROM ses_sync_seen WHERE list_name = ?", (list_name,))
                self._save(
                    conn,
                    list_name,
                    state="running",
                    kind="full" if full else "incremental",
                    started=began,
                    next_token=None,
                    pages=0,
                    seen=0,
                    fetched=0,
                    removed=0,
                    calls=1,
                    estimate=estimate,
                    last_error=None,
                    phase="walk",
                )
            state = self._state(list_name)
        else:
            self.lists.ensure(list_name)
        assert state is not None
        self._segment[list_name] = (began, state["calls"])
        self._pending = {
            row[0]
            for row in self.db.reader().execute("SELECT email_key FROM ses_pending WHERE list_name = ?", (list_name,))
        }
        token: str | None = state["next_token"]
        while state["phase"] == "walk":
            self._check_stop()
            params: dict[str, Any] = {"ContactListName": list_name, "PageSize": self.page_size}
            if token:
                params["NextToken"] = token
            try:
                page = self.ses.call("list_contacts", **params)
            except (InvalidNextToken, BadRequest):
                if not token:
                    raise
                token = None  # SES no longer knows the saved token: walk again; fetched contacts cost nothing
                continue
            self._page(list_name, page)
            token = page.get("NextToken") or None
            self._report(list_name)
            if token is None:
                self._end_walk(list_name)
                break
        self._fetch_phase(list_name)
        return self._finish(list_name, began, calls_before)

    def _page(self, list_name: str, page: dict[str, Any]) -> None:
        """One page, in one transaction: what it shows goes to the mirror at once; the contacts that are new
        or changed are queued for the fetch phase (their attributes need a GetContact each)."""
        # A ListContacts item has no attributes and no creation time: kept from the mirror until read.
        items = [contact_from_ses(item) for item in page.get("Contacts") or ()]
        key_of = self.mirror.email_key
        existing = mirror_existing(self.mirror, list_name, [item.email for item in items])
        listed: list[Contact] = []
        adopted: list[Contact] = []
        superseded: list[Contact] = []  # our pending writes SES shows changed since: its copy wins, whatever the clocks
        unfetched: list[tuple[str, str, str, int]] = []
        # A new spelling of a mirrored address: read the mirrored spellings again, whatever their timestamps.
        # A mirror keyed by the folded address (before it followed SES's identity) merged the spellings into
        # one row, which may hold another spelling's data under a timestamp SES still shows; the first walk
        # after the upgrade lists a spelling the mirror lacks, so this reads the merged row back. Otherwise a
        # new spelling costs one GetContact per mirrored spelling of its address: rare, and harmless.
        new = [item.email for item in items if key_of(item.email) not in existing]
        for key, mate in (mirror_spellings(self.mirror, list_name, new) if new else {}).items():
            unfetched.append((list_name, key, mate.email, 1))
        for shown in items:
            key = key_of(shown.email)
            have = existing.get(key)
            listed_at = shown.updated
            pending = key in self._pending
            # Unchanged: the mirror holds SES's own timestamp for it (from_ses_time makes equal times equal).
            # Not for a pending contact: its mirrored time is our clock's at the write, which says nothing about
            # SES's (it can fall within a millisecond of it); its state decides, below.
            if have is not None and not pending and have.updated == listed_at:
                continue
            ours = self._adopt.get(key)
            if ours is None and pending:
                ours = have
            if ours is not None and _same_listed_state(ours, shown):
                created = have.created if have is not None else listed_at
                adopted.append(dataclasses.replace(ours, created=created, updated=listed_at))
                continue
            if have is not None:
                shown = dataclasses.replace(shown, attributes_data=have.attributes_data, created=have.created)
            else:
                shown = dataclasses.replace(shown, created=listed_at)
            (superseded if pending else listed).append(shown)
            unfetched.append((list_name, key, shown.email, 0))
        keys = [(list_name, key_of(item.email)) for item in items]
        with self.db.write() as conn:
            mirror_contacts(self.mirror, list_name, listed)
            with acting_as(self._adopter):  # (a write nested in the page's sets its own actor)
                mirror_contacts(self.mirror, list_name, adopted, force=True)  # SES's timestamp for our state
            # Listed after our write, so newer than it even when our clock reads later than SES's timestamp.
            mirror_contacts(self.mirror, list_name, superseded, force=True)
            conn.executemany(
                "INSERT INTO ses_unfetched (list_name, email_key, email, refetch) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (list_name, email_key) DO UPDATE SET refetch = max(refetch, excluded.refetch)",
                unfetched,
            )
            conn.executemany("DELETE FROM ses_pending WHERE list_name = ? AND email_key = ?", keys)
            conn.executemany("INSERT OR IGNORE INTO ses_sync_seen (list_name, email_key) VALUES (?, ?)", keys)
            conn.execute(
                "UPDATE ses_sync SET next_token = ?, pages = pages + 1, seen = seen + ?, calls = calls + 1 "
                "WHERE list_name = ?",
                (page.get("NextToken") or None, len(items), list_name),
            )

    def _end_walk(self, list_name: str) -> None:
        """The walk saw every page: remove what SES no longer has, then switch to the fetch phase (one
        transaction, so a kill never runs the removal again without the walk's record of what it saw)."""
        state = self._state(list_name)
        assert state is not None
        # Gone from SES: mirrored contacts the walk did not list and nobody wrote since the walk began.
        gone = mirror_unlisted(
            self.mirror,
            list_name,
            updated_before=state["started"],
            listed="SELECT email_key FROM ses_sync_seen WHERE list_name = ? "
            "UNION ALL SELECT email_key FROM ses_pending WHERE list_name = ? AND written_at >= ?",
            params=(list_name, list_name, state["started"]),
        )
        with self.db.write() as conn:
            removed = mirror_remove(self.mirror, list_name, gone) if gone else 0
            conn.executemany(
                "DELETE FROM ses_unfetched WHERE list_name = ? AND email_key = ?",
                [(list_name, self.mirror.email_key(e)) for e in gone],
            )
            conn.execute("DELETE FROM ses_sync_seen WHERE list_name = ?", (list_name,))
            # Pending marks older than the walk and not listed: the contact is gone; nothing to adopt.
            conn.execute(
                "DELETE FROM ses_pending WHERE list_name = ? AND written_at < ?", (list_name, state["started"])
            )
            self._save(conn, list_name, phase="fetch", removed=state["removed"] + removed)

    def _fetch_phase(self, list_name: str) -> None:
        """GetContact for every contact queued by the walk, committed in small chunks (resumable)."""
        while True:
            rows = (
                self.db.reader()
                .execute(
                    "SELECT email_key, email, refetch FROM ses_unfetched WHERE list_name = ? "
                    "ORDER BY email_key LIMIT ?",
                    (list_name, FETCH_CHUNK),
                )
                .fetchall()
            )
            if not rows:
                return
            fetched: list[Contact] = []
            forced: list[Contact] = []  # marked refetch: SES's copy wins whatever the mirror's timestamp says
            gone: list[str] = []
            done: list[str] = []
            try:
                for key, email, refetch in rows:
                    self._check_stop()
                    try:
                        answer = self.ses.call("get_contact", ContactListName=list_name, EmailAddress=email)
                        (forced if refetch else fetched).append(contact_from_ses(answer))
                    except NotFound:
                        gone.append(email)  # deleted since the page was listed
                    done.append(key)
            finally:  # what was read before a stop is kept
                with self.db.write() as conn:
                    mirror_contacts(self.mirror, list_name, fetched)
                    mirror_contacts(self.mirror, list_name, forced, force=True)
                    if gone:
                        mirror_remove(self.mirror, list_name, gone)
                    conn.executemany(
                        "DELETE FROM ses_unfetched WHERE list_name = ? AND email_key = ?",
                        [(list_name, key) for key in done],
                    )
                    conn.execute(
                        "UPDATE ses_sync SET fetched = fetched + ?, calls = calls + ? WHERE list_name = ?",
                        (len(fetched) + len(forced), len(done), list_name),
                    )
            self._report(list_name)

    def _finish(self, list_name: str, began: float, calls_before: int) -> SyncResult:
        state = self._state(list_name)
        assert state is not None
        now = self._now()
        with self.db.write() as conn:
            values: dict[str, Any] = {
                "state": "idle",
                "phase": "walk",
                "next_token": None,
                "last_synced": now,
                "last_duration": now - state["started"],
            }
            if state["kind"] == "full":
                values["last_full"] = now
            self._save(conn, list_name, **values)
        self._segment.pop(list_name, None)
        self._report(list_name)
        return SyncResult(
            list_name,
            state["kind"],
            state["pages"],
            state["seen"],
            state["fetched"],
            state["removed"],
            self.ses.total_calls() - calls_before,
            now - began,
        )

    # -- the schedule ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Sync now (resuming an interrupted walk) and then every ``interval`` seconds, in the background."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sescontacts-ses-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        first = True
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                # At start: finish what a killed process left, else a full walk. Later: full walks, since
                # every walk lists every page anyway and only a full one notices deletions.
                interrupted = any((self._state(n) or {}).get("state") == "running" for n in self._names())
                # The suppression list: incremental, full once a day (its own schedule, SuppressionSync.full_due).
                self.sync_all(full=not (first and interrupted), suppression_full=None)
            except SyncStopped:
                return
            except SesContactsError as exc:
                self._record_error(str(exc.message))
            except Exception as exc:  # keep the schedule alive; the console shows the reason
                self._record_error(f"{type(exc).__name__}: {exc}")
            first = False
            self._stop.wait(self.next_wait(time.monotonic() - began))

    def next_wait(self, last_walk_seconds: float) -> float:
        """Seconds until the next walk: the interval, stretched so that syncing takes at most a quarter of
        the time (and so of SES's shared 1 request/s): a 1,000,000-contact list walks for ~17 minutes."""
        return max(self.interval, SYNC_SHARE_FACTOR * last_walk_seconds)

    def _names(self) -> list[str]:
        return [r[0] for r in self.db.reader().execute("SELECT list_name FROM ses_sync")]

    def _record_error(self, message: str) -> None:
        with contextlib.suppress(Exception), self.db.write() as conn:
            for name in self._names() or [""]:
                self._save(conn, name, last_error=message)
