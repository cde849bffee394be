"""A contact list's contacts on SES, one call at a time: what the ses store's single-contact operations, its
row-by-row bulk paths and its bulk actions share.

Every call names a contact exactly as SES spells it, goes through the paced client, and is mirrored only after
SES has answered, so a failed call never leaves the mirror claiming what SES does not have. Row-by-row writes
decide on the contact as SES has it at that moment (never on the mirror's copy, which may be behind), so the
never-re-subscribe guards hold against SES's own state and re-running a batch after a kill is safe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from ... import errors
from ...model import Contact, ContactPatch, Outcome, RowResult, UpsertPolicy, apply_patch
from ...ses_wire import contact_from_ses, contact_write
from ..sqlite import SqliteContactStore
from ..sqlite.mirror import mirror_remove, mirror_spellings
from .client import SesClient
from .mirror import MirroredLists
from .sync import mirror_written


class PacedContacts:
    """Contacts read and written on SES through ``ses``, mirrored into ``mirror`` via ``mirror_lists``."""

    def __init__(
        self, ses: SesClient, mirror: SqliteContactStore, mirror_lists: MirroredLists, clock: Callable[[], float]
    ) -> None:
        self.ses = ses
        self.mirror = mirror
        self.mirror_lists = mirror_lists
        self.now = clock

    def get(self, list_name: str, email: str) -> Contact:
        return contact_from_ses(self.ses.call("get_contact", ContactListName=list_name, EmailAddress=email))

    def get_or_none(self, list_name: str, email: str) -> Contact | None:
        try:
            return self.get(list_name, email)
        except errors.ListNotFound:
            raise
        except errors.NotFound:
            return None

    def write(self, list_name: str, contact: Contact, *, exists: bool) -> None:
        self.ses.call("update_contact" if exists else "create_contact", **contact_write(list_name, contact))

    def spelling(self, list_name: str, email: str) -> str:
        """The contact a reader means by ``email``, as SES spells it: the mirrored contact with exactly this
        address, else the one mirrored address equal to it but for case, else ``email`` as given.

        So reading ``ANN@x.com`` finds the one contact ``Ann@x.com``, as on the local backend, and shows its
        spelling; when SES keeps ``Ann@x.com`` and ``ann@x.com`` apart, a third spelling is neither (SES
        answers it). Writes never guess: they name the contact exactly, as SES does, so that an edit or a
        delete (sent twice, say) never lands on another spelling's contact.
        """
        spellings = mirror_spellings(self.mirror, list_name, [email])
        if self.mirror.email_key(email) in spellings or len(spellings) != 1:
            return email
        return next(iter(spellings.values())).email

    def forget_deleted(self, list_name: str, email: str) -> None:
        """SES deleted ``email``: drop it from the mirror. Were SES to ignore case, the contact it deleted may
        be mirrored under another spelling: when the mirror has none spelled exactly so, the other spellings
        that SES no longer has go too (one GetContact each, only then)."""
        if mirror_remove(self.mirror, list_name, [email]):
            return
        for other in mirror_spellings(self.mirror, list_name, [email]).values():
            if self.get_or_none(list_name, other.email) is None:
                mirror_remove(self.mirror, list_name, [other.email])

    # -- bulk, row by row through the pacer --------------------------------------------------------------

    def upsert_rows(
        self, list_name: str, patches: Sequence[ContactPatch], policy: UpsertPolicy, *, dry_run: bool
    ) -> list[RowResult]:
        """Apply import rows one by one, each on the contact as SES has it right now (rows spelled differently
        are two contacts: SES's identity). Rows already applied come out UNCHANGED when a batch is re-run."""
        topics = sorted({t for p in patches for t in p.topic_preferences})
        self.mirror_lists.check_topics(list_name, topics)
        current: dict[str, Contact | None] = {}
        results: list[RowResult] = []
        for patch in patches:
            key = self.mirror.email_key(patch.email)
            if key not in current:
                found = self.get_or_none(list_name, patch.email)
                current[key] = found
                if found is not None and not dry_run:
                    # Free while we have it: heals a mirror left one row behind by a kill between SES and it.
                    self.mirror_lists.put(list_name, [found])
            before = current[key]
            after, result = apply_patch(before, patch, policy, self.now())
            if not dry_run and after is not None and result.outcome in (Outcome.CREATED, Outcome.UPDATED):
                try:
                    self._write_row(list_name, before, after)
                except errors.AlreadyExists:  # created elsewhere since we looked: apply on top of it
                    before = self.get(list_name, after.email)
                    after, result = apply_patch(before, patch, policy, self.now())
                    self._write_row(list_name, before, after)
                mirror_written(self.mirror_lists, list_name, after, self.now())
            current[key] = after
            results.append(result)
        return results

    def _write_row(self, list_name: str, before: Contact | None, after: Contact) -> None:
        """Write one import row's result. UpdateContact can change an explicit topic preference but, as SES's
        probe found (topic preferences merge by name), never remove one: a row that drops one (an SES API
        PUT import, which overrides the whole record) replaces the contact, delete then create. A kill in
        between loses the contact until the batch is re-run, which creates it again."""
        if before is not None and not set(before.topic_preferences) <= set(after.topic_preferences):
            self.ses.call("delete_contact", ContactListName=list_name, EmailAddress=before.email)
            before = None
        self.write(list_name, after, exists=before is not None)

    def delete_rows(self, list_name: str, emails: Sequence[str], *, dry_run: bool) -> list[RowResult]:
        """Delete each address once (a repeat is NOT_FOUND), mirroring what SES says it had."""
        results: list[RowResult] = []
        seen: set[str] = set()
        for email in emails:
            key = self.mirror.email_key(email)
            if key in seen:
                results.append(RowResult(Outcome.NOT_FOUND))
                continue
            seen.add(key)
            if dry_run:
                found = self.get_or_none(list_name, email) is not None
            else:
                try:
                    self.ses.call("delete_contact", ContactListName=list_name, EmailAddress=email)
                    found = True
                except errors.ListNotFound:
                    raise
                except errors.NotFound:
                    found = False
                if found:
                    self.forget_deleted(list_name, email)
                else:
                    mirror_remove(self.mirror, list_name, [email])
            results.append(RowResult(Outcome.DELETED if found else Outcome.NOT_FOUND))
        return results

    def set_unsubscribe_all(self, list_name: str, email: str, unsubscribe: bool) -> RowResult:
        """One contact's unsubscribe-all (see :meth:`change`)."""
        return self.change(list_name, email, lambda c: dataclasses.replace(c, unsubscribe_all=unsubscribe))

    def set_topic_preference(self, list_name: str, email: str, topic: str, status: str) -> RowResult:
        """One contact's own preference for ``topic`` (see :meth:`change`); unsubscribe-all stays."""
        return self.change(
            list_name, email, lambda c: dataclasses.replace(c, topic_preferences={**c.topic_preferences, topic: status})
        )

    def change(self, list_name: str, email: str, edit: Callable[[Contact], Contact]) -> RowResult:
        """``edit`` applied to the contact as SES has it now, and written whole (every topic preference, the
        attributes, unsubscribe-all), so the update means the same under either reading of UpdateContact's
        TopicPreferences (merged by topic, or replaced); never creates one. A write SES refuses (BadRequest) is
        REFUSED with its reason, and the batch goes on."""
        current = self.get_or_none(list_name, email)
        if current is None:
            mirror_remove(self.mirror, list_name, [email])
            return RowResult(Outcome.NOT_FOUND)
        after = edit(current)
        if after.same_state(current):
            self.mirror_lists.put(list_name, [current])  # heals a mirror that was behind
            return RowResult(Outcome.UNCHANGED)
        after = dataclasses.replace(after, updated=self.now())
        try:
            self.write(list_name, after, exists=True)
        except errors.BadRequest as exc:
            return RowResult(Outcome.REFUSED, reason=exc.message)
        mirror_written(self.mirror_lists, list_name, after, self.now())
        return RowResult(Outcome.UPDATED)


__all__ = ["PacedContacts"]
