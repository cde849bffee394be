"""Contacts added after their address bounced or complained: the list's rule applied to them, once.

Events for an address on no list are kept (its marks and history); when the address is later added (an old
CSV imported again, a form, the API), the rule that would have acted on the event acts on the new contact:
by default it is unsubscribed from all, so a hard-bounced address does not quietly come back to the mailing.
Only contacts *created after* the event are concerned (one that existed then was acted on at the time), and
each contact once per kind: a user who resubscribes it afterwards keeps that choice.

A background pass (every ``interval`` seconds, in the process that owns the background work) reads, per list,
the contacts with a permanent bounce or complaint recorded, newest updated first, down to where the last pass
stopped: the deliverability filter reads the events' own keys, so a pass costs little however big the list.
Everything goes through the ContactStore Protocol, on both backends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..background import Periodic
from ..db import Database
from ..errors import SesContactsError
from ..history import Actor
from ..model import Contact, ContactQuery, email_key
from ..store.base import ContactStore
from .ingest import EventIngest, IngestResult
from .model import BOUNCE, COMPLAINT
from .rules import DELETE, MARK

logger = logging.getLogger("sescontacts.events")

# (deliverability filter, the rule's attribute)
_KINDS = (("bounced", "on_permanent_bounce"), ("complained", "on_complaint"))
_EVENT_KINDS = {"bounced": BOUNCE, "complained": COMPLAINT}  # the event a contact's action is recorded as
# A pass reads back this far before where the last one stopped: a write that committed late is not missed.
OVERLAP_SECONDS = 300.0
PAGE = 50  # newest first, the first page usually reaches back past the last pass


class AddedContactRules:
    def __init__(self, ingest: EventIngest, *, interval: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.ingest = ingest
        self.db: Database = ingest.db
        self.store: ContactStore = ingest.store
        self.interval = interval
        self.clock = clock
        # Background work (start / stop): a pass every ``interval`` seconds; one SES refused (ses backend) is
        # logged, and the next one tries again.
        worker = Periodic(
            "added-rules",
            "events: contacts added after their bounce or complaint",
            self.run_once,
            interval,
            errors=(SesContactsError,),
        )
        self.start, self.stop = worker.start, worker.stop

    def run_once(self) -> IngestResult:
        """One pass over every list (see the module docstring); what it changed."""
        result = IngestResult()
        for list_name in self.ingest.list_names():
            started = self.clock()
            result.add(self._pass(list_name))
            with self.db.write() as conn:
                conn.execute(
                    "INSERT INTO added_checked (list_name, checked_at) VALUES (?, ?) "
                    "ON CONFLICT (list_name) DO UPDATE SET checked_at = excluded.checked_at",
                    (list_name, started),
                )
        return result

    def _pass(self, list_name: str) -> IngestResult:
        row = self.db.reader().execute("SELECT checked_at FROM added_checked WHERE list_name = ?", (list_name,))
        checked = row.fetchone()
        since = checked[0] - OVERLAP_SECONDS if checked else 0.0
        rules = self.ingest.rules.for_list(list_name)
        unsubscribe: dict[str, str] = {}
        delete: dict[str, str] = {}
        acted: list[tuple[str, str]] = []
        for delivery, rule in _KINDS:
            action = getattr(rules, rule)
            if action == MARK:
                continue
            for contact, key in self._added_after_event(list_name, delivery, since):
                if action == DELETE:
                    delete[key] = contact.email
                elif not contact.unsubscribe_all:
                    unsubscribe[key] = contact.email
                else:
                    continue
                acted.append((key, delivery))
        if not acted:
            return IngestResult()
        for key in delete:
            unsubscribe.pop(key, None)
        actors = {key: Actor("event", _EVENT_KINDS[delivery]) for key, delivery in acted}
        result = self.ingest.apply(list_name, unsubscribe, delete, actors)
        with self.db.write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO added_acted (list_name, email_key, kind, acted_at) VALUES (?, ?, ?, ?)",
                [(list_name, key, kind, self.clock()) for key, kind in acted],
            )
        logger.info(
            "events: %s: %d contact(s) added after their bounce or complaint: %d unsubscribed, %d deleted",
            list_name,
            len(acted),
            result.unsubscribed,
            result.deleted,
        )
        return result

    def _added_after_event(self, list_name: str, delivery: str, since: float) -> list[tuple[Contact, str]]:
        """The list's contacts with that mark, updated since ``since``, created after their event was recorded
        (before, the ingest itself acted on them) and not yet acted on for it."""
        found: list[tuple[Contact, str]] = []
        token: str | None = None
        query = ContactQuery(delivery=delivery, sort="updated")
        while True:
            page = self.store.list_contacts(list_name, query, page_size=PAGE, token=token)
            recent = [c for c in page.items if c.updated >= since]
            keys = [email_key(c.email) for c in recent]
            recorded = self.ingest.log.first_recorded(keys, delivery)
            done = self._acted(list_name, delivery, keys)
            for contact, key in zip(recent, keys, strict=True):
                at = recorded.get(key)
                if at is not None and contact.created > at and key not in done:
                    found.append((contact, key))
            token = page.next_token
            if token is None or len(recent) < len(page.items):
                return found

    def _acted(self, list_name: str, kind: str, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        rows = self.db.reader().execute(
            "SELECT email_key FROM added_acted WHERE list_name = ? AND kind = ? "
            f"AND email_key IN ({', '.join('?' * len(keys))})",
            (list_name, kind, *keys),
        )
        return {row[0] for row in rows}
