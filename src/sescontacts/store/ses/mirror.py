"""The mirror's copy of a contact list, kept from SES: what the ses store, its sync and its import jobs share.

SES is the source of truth for a list and its topics; the mirror (a :class:`SqliteContactStore` on the local
database) holds the copy that reads are answered from. A list is fetched from SES when the mirror does not
know it, dropped from the mirror when SES no longer has it, and a contact's topic preferences are checked
against it before any SES write.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from ... import errors
from ...db import Database
from ...model import Contact, ContactList
from ...ses_wire import list_from_ses
from ...validation import unknown_topic
from ..sqlite import SqliteContactStore
from ..sqlite.mirror import mirror_contacts, mirror_list
from .client import SesClient

LIST_CACHE_SECONDS = 10.0


class MirroredLists:
    """The lists as the mirror (``local``) has them, fetched from SES through ``ses`` when needed."""

    def __init__(self, ses: SesClient, local: SqliteContactStore, *, cache_seconds: float = LIST_CACHE_SECONDS) -> None:
        self.ses = ses
        self.local = local
        self.db: Database = local.db
        self.cache_seconds = cache_seconds
        self._fetched: dict[str, float] = {}  # list name -> when SES last answered for it (monotonic)

    def fetch(self, name: str) -> ContactList:
        """The list as SES has it now, mirrored."""
        contact_list = list_from_ses(self.ses.call("get_contact_list", ContactListName=name))
        mirror_list(self.local, contact_list)
        self._fetched[name] = time.monotonic()
        return contact_list

    def mirrored(self, name: str) -> ContactList | None:
        """The mirror's copy, or None when it has none."""
        try:
            return self.local.get_list(name)
        except errors.SesContactsError:
            return None

    def recent(self, name: str) -> ContactList | None:
        """The mirror's copy when SES answered for this list less than ``cache_seconds`` ago."""
        fetched = self._fetched.get(name)
        if fetched is None or time.monotonic() - fetched >= self.cache_seconds:
            return None
        return self.mirrored(name)

    def ensure(self, name: str) -> ContactList:
        """The list as the mirror has it, fetched from SES first when the mirror does not know it yet."""
        return self.mirrored(name) or self.fetch(name)

    def refresh_quietly(self, name: str) -> None:
        """Re-read a list after a write that succeeded; a failure here is left for a sync to catch up."""
        with contextlib.suppress(errors.SesContactsError):
            self.fetch(name)

    def drop(self, name: str) -> None:
        """SES no longer has the list: gone from the mirror too, with its contacts."""
        self._fetched.pop(name, None)
        with contextlib.suppress(errors.NotFound):
            self.local.delete_list(name)

    def put(self, list_name: str, contacts: Sequence[Contact]) -> None:
        """Contacts as SES has just returned them, into the mirror."""
        self.ensure(list_name)
        mirror_contacts(self.local, list_name, contacts)

    def check_topics(self, list_name: str, topic_names: Sequence[str]) -> None:
        """Reject a preference for a topic the list lacks before any SES write, as SES would.

        Checked against the mirror's copy of the list, refreshed from SES when it seems to lack a topic (the
        list may have changed elsewhere), so a batch never fails half-way on SES.
        """
        if not topic_names:
            return
        contact_list = self.ensure(list_name)
        missing = [t for t in topic_names if contact_list.topic(t) is None]
        if missing:
            contact_list = self.fetch(list_name)
            for topic in missing:
                if contact_list.topic(topic) is None:
                    raise unknown_topic(list_name, topic)
