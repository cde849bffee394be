"""The ses backend: ``ContactStore`` on a real Amazon SES v2 contact list (boto3), with a local mirror.

SES is the source of truth. Every write goes to SES first and only then to the mirror (a
:class:`~sescontacts.store.sqlite.SqliteContactStore` on the local database: same schema, same query code),
so a failed SES call never leaves the mirror claiming something SES does not have. What SES cannot answer
(search, our filters, counts, attributes in a list, statistics) is read from the mirror, which
:mod:`.sync` keeps in step with changes made elsewhere.

Every SES request goes through :class:`.client.SesClient`: the process-wide :class:`~.pacer.Pacer` (SES
allows about one non-sending request per second), and SES's errors as the product's error classes with SES's
own message, so the console and the CLI show the same thing on both backends. SES's JSON is read and written
by :mod:`sescontacts.ses_wire`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from ... import errors
from ...model import (
    EXACT,
    OPT_IN,
    AddressIdentity,
    Contact,
    ContactList,
    ContactPatch,
    ContactQuery,
    Count,
    DayCounts,
    ListedContact,
    ListStats,
    Outcome,
    Page,
    RowResult,
    Topic,
    UpsertPolicy,
)
from ...ses_wire import list_from_ses, list_write, tags_to_ses
from ...validation import (
    apply_update,
    check_attributes_data,
    check_description,
    check_email,
    check_list_name,
    check_new_list,
    check_tags,
    check_topics,
)
from ..base import BulkAction, ExportRows, MatchingStep, SyncResult, SyncStatus, check_bulk_action, check_page_size
from ..sqlite import SqliteContactStore
from ..sqlite.mirror import mirror_matching, mirror_remove
from ..sqlite.suppression import SqliteSuppressionList
from .client import LIST_PAGE_SIZE, LOCAL_ACCOUNT_ID, SesClient, make_session
from .contacts import PacedContacts
from .mirror import MirroredLists
from .pacer import Pacer, shared_pacer
from .s3_import import ImportJobRunner
from .suppression import SesSuppressionList
from .sync import MirrorSync

if TYPE_CHECKING:
    from ...db import Database
    from ...settings import Settings

IMPORT_JOB_ROWS = 100_000  # rows per import job (SES takes up to 1,000,000; this bounds our memory)
PACED_BATCH_ROWS = 50


class SesContactStore:
    """``ContactStore`` on SES v2 through boto3, reads that SES cannot serve answered by ``mirror``.

    Composed of the parts in this package: ``ses`` (the paced client), ``mirror_lists`` (the mirror's copy of
    the lists), ``contacts`` (contacts read and written on SES one call at a time), ``sync`` (the scheduled
    :class:`MirrorSync`, when one is) and, per bulk batch with an S3 location, an :class:`ImportJobRunner`.

    Which addresses are one contact is SES's to say: the mirror keys contacts by the exact address
    (``model.EXACT``), so that it never merges two contacts SES keeps apart, and every call names a contact
    as SES spells it. (If SES ignores case, it simply never lists two spellings.)
    """

    backend = "ses"
    # Every write is committed on SES as it is made: there is no transaction to share with the caller.
    transactional = False

    def __init__(
        self,
        mirror: SqliteContactStore,
        *,
        region: str,
        client: Any = None,
        session: Any = None,
        endpoint_url: str | None = None,
        pacer: Pacer | None = None,
        account_id: str | None = None,
        list_page_size: int = LIST_PAGE_SIZE,
        s3_import_location: str | None = None,
        s3_endpoint_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if mirror.identity is not EXACT:
            raise ValueError("the ses backend's mirror must key contacts by the exact address (identity=EXACT)")
        self.mirror = mirror
        self.region = region
        self.ses = SesClient(
            region=region,
            pacer=pacer or shared_pacer(),
            client=client,
            session=session,
            endpoint_url=endpoint_url,
            account_id=account_id,
        )
        self.pacer = self.ses.pacer
        self.calls = self.ses.calls  # SES requests made, by operation
        self.mirror_lists = MirroredLists(self.ses, mirror)
        self.contacts = PacedContacts(self.ses, mirror, self.mirror_lists, clock)
        self.list_page_size = list_page_size
        self.s3_import_location = s3_import_location
        self.s3_endpoint_url = s3_endpoint_url
        self.sync: MirrorSync | None = None
        self.import_poll_interval = 2.0
        # The account's suppression list (``Services.suppression`` on this backend): SES's, mirrored in the same
        # database and walked by the same scheduled sync.
        self.suppression = SesSuppressionList(self.ses, SqliteSuppressionList(mirror.db, clock=clock), clock=clock)

    @classmethod
    def open(cls, settings: Settings, db: Database) -> SesContactStore:
        """The store ``Services`` uses: SES per ``settings``, the mirror in ``db``, and its scheduled sync."""
        mirror = SqliteContactStore(
            db, region=settings.region, account_id=LOCAL_ACCOUNT_ID, max_lists=None, identity=EXACT
        )
        store = cls.from_settings(settings, mirror)
        store.sync = store.new_sync(interval=settings.sync_interval_seconds)
        return store

    @classmethod
    def from_settings(cls, settings: Settings, mirror: SqliteContactStore) -> SesContactStore:
        session = make_session(
            region=settings.region,
            profile=settings.aws_profile,
            role_arn=settings.role_arn,
            external_id=settings.external_id,
        )
        return cls(
            mirror,
            region=settings.region,
            session=session,
            endpoint_url=settings.ses_endpoint_url,
            pacer=shared_pacer(settings.ses_rate, settings.ses_burst),
            s3_import_location=settings.s3_import_location,
            s3_endpoint_url=settings.s3_endpoint_url,
        )

    # -- plumbing ----------------------------------------------------------------------------------------

    @property
    def account_id(self) -> str:
        return self.ses.account_id

    def email_key(self, address: str) -> str:
        """SES's identity, as the mirror keeps it: every spelling of an address its own contact."""
        return self.mirror.email_key(address)

    @property
    def identity(self) -> AddressIdentity:
        return self.mirror.identity

    def close(self) -> None:
        if self.sync is not None:
            self.sync.stop()
        self.mirror.close()

    def new_sync(self, *, interval: float = 300.0, page_size: int | None = None) -> MirrorSync:
        """A :class:`MirrorSync` of this store's mirror (``sync`` holds the one in use)."""
        return MirrorSync(
            self.ses,
            self.mirror_lists,
            interval=interval,
            page_size=page_size or self.list_page_size,
            suppression=self.suppression.sync,
        )

    def mirror_sync(self) -> MirrorSync:
        """The sync used by bulk imports and ``sescontacts sync`` (created here when none is scheduled)."""
        if self.sync is None:
            self.sync = self.new_sync()
        return self.sync

    @property
    def bulk_batch_rows(self) -> int:
        """Rows per bulk batch: one import job takes up to 100,000; row by row, small batches keep progress
        and resume fine-grained (a batch at 1 request/s takes about a minute)."""
        return IMPORT_JOB_ROWS if self.s3_import_location else PACED_BATCH_ROWS

    def atomic(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to group (see ``transactional``): each SES write, and its mirror row, is committed as made.
        The mirror's write lock is not held across SES calls, which take a second each."""
        return contextlib.nullcontext()

    def export_rows(
        self, list_name: str, query: ContactQuery, fmt: Literal["csv", "json"], *, neutralise: str = ""
    ) -> contextlib.AbstractContextManager[ExportRows | None]:
        """No rendering of its own: exports page through ``list_contacts`` (served by the mirror)."""
        return contextlib.nullcontext()

    def _use_import_job(self, list_name: str, rows: int) -> bool:
        """An import job costs two walks of the list (a page per 1,000 contacts) and a few polls; row by row
        costs two calls a row. Take the cheaper."""
        if not self.s3_import_location:
            return False
        try:
            listed = self.mirror.count_contacts(list_name, ContactQuery()).value
        except errors.NotFound:
            listed = 0
        return 2 * rows > 2 * (listed // self.list_page_size + 1) + 10

    def _import_job_runner(self) -> ImportJobRunner:
        return ImportJobRunner(
            self.ses,
            self.mirror_lists,
            self.mirror_sync(),
            location=self.s3_import_location or "",
            s3_endpoint_url=self.s3_endpoint_url,
            poll_interval=self.import_poll_interval,
        )

    # -- SyncedStore: the mirror's background sync -----------------------------------------------------

    def sync_status(self, list_name: str | None = None) -> SyncStatus | None:
        """When the mirror was last synced and what a running sync is doing (for the console and exports)."""
        return self.sync.status(list_name) if self.sync is not None else None

    def start_sync(self) -> None:
        """Start the scheduled sync (``open`` schedules one; a store built otherwise has none)."""
        if self.sync is not None:
            self.sync.start()

    def stop_sync(self) -> None:
        if self.sync is not None:
            self.sync.stop()

    def sync_now(
        self, *, full: bool = True, on_progress: Callable[[SyncStatus], None] | None = None
    ) -> list[SyncResult]:
        """Sync every list now, in this thread, telling ``on_progress`` how it goes; then the suppression list:
        a full walk when ``full``, else incremental (full when one is due)."""
        syncer = self.mirror_sync()
        before = syncer.on_progress
        syncer.on_progress = on_progress
        try:
            return syncer.sync_all(full=full, suppression_full=True if full else None)
        finally:
            syncer.on_progress = before

    # -- contact lists ---------------------------------------------------------------------------------

    def create_list(
        self,
        name: str,
        *,
        topics: Sequence[Topic] = (),
        description: str | None = None,
        tags: Sequence[tuple[str, str]] = (),
    ) -> ContactList:
        check_new_list(name, topics, description, tags)
        self.ses.call("create_contact_list", **list_write(name, topics, description, tags))
        return self.mirror_lists.fetch(name)

    def get_list(self, name: str) -> ContactList:
        """From SES, or from the mirror when SES answered for this list moments ago: every console page needs
        the list, and at SES's 1 request/s a page view must not spend the second on it."""
        check_list_name(name)
        cached = self.mirror_lists.recent(name)
        if cached is not None:
            return cached
        try:
            return self.mirror_lists.fetch(name)
        except errors.NotFound:
            self.mirror_lists.drop(name)
            raise

    def update_list(
        self,
        name: str,
        *,
        topics: Sequence[Topic] | None = None,
        description: str | None = None,
        replace: bool = False,
    ) -> ContactList:
        """UpdateContactList is "a complete replacement" by its reference, while a probe saw SES keep an omitted
        Topics or Description: the call always carries the whole definition (the parts not changed as SES has
        them now), so it means the same under either reading."""
        check_list_name(name)
        if topics is not None:
            check_topics(topics)
        check_description(description)
        if replace:
            new_topics, new_description = topics or (), description
        else:
            current = list_from_ses(self.ses.call("get_contact_list", ContactListName=name))
            new_topics = current.topics if topics is None else topics
            new_description = current.description if description is None else description
        self.ses.call("update_contact_list", **list_write(name, new_topics, new_description))
        return self.mirror_lists.fetch(name)

    def delete_list(self, name: str) -> None:
        check_list_name(name)
        try:
            self.ses.call("delete_contact_list", ContactListName=name)
        except errors.NotFound:
            self.mirror_lists.drop(name)  # already gone in SES: gone from the mirror too
            raise
        self.mirror_lists.drop(name)
        if self.sync is not None:
            self.sync.forget(name)

    def list_lists(self, *, page_size: int | None = None, token: str | None = None) -> Page[ContactList]:
        size = check_page_size(page_size)
        params: dict[str, Any] = {"PageSize": size}
        if token:
            params["NextToken"] = token
        answer = self.ses.call("list_contact_lists", **params)
        lists = []
        for item in answer.get("ContactLists") or ():
            try:  # ListContactLists gives names only; SES allows one list, so the detail costs one call
                lists.append(self.mirror_lists.fetch(item["ContactListName"]))
            except errors.NotFound:
                continue  # deleted between the two calls
        return Page(lists, answer.get("NextToken") or None)

    def tag_list(self, name: str, tags: Sequence[tuple[str, str]]) -> None:
        check_tags(tags)
        self.ses.call("tag_resource", ResourceArn=self.list_arn(name), Tags=tags_to_ses(tags))
        self.mirror_lists.refresh_quietly(name)

    def untag_list(self, name: str, keys: Sequence[str]) -> None:
        self.ses.call("untag_resource", ResourceArn=self.list_arn(name), TagKeys=list(keys))
        self.mirror_lists.refresh_quietly(name)

    def list_arn(self, name: str) -> str:
        return f"arn:aws:ses:{self.region}:{self.account_id}:contact-list/{name}"

    # -- single contacts -------------------------------------------------------------------------------

    @staticmethod
    def _check_attributes(contact: Contact) -> None:
        check_attributes_data(contact.attributes_data)  # size and nesting caps, as every surface applies them

    def create_contact(self, list_name: str, contact: Contact) -> Contact:
        check_email(contact.email)
        self._check_attributes(contact)
        self.mirror_lists.check_topics(list_name, list(contact.topic_preferences))
        # Another spelling of an existing address is a second contact if SES says so (AlreadyExists if not).
        self.contacts.write(list_name, contact, exists=False)
        created = self.contacts.get(list_name, contact.email)
        self.mirror_lists.put(list_name, [created])
        return created

    def get_contact(self, list_name: str, email: str) -> Contact:
        spelled = self.contacts.spelling(list_name, email)
        try:
            contact = self.contacts.get(list_name, spelled)
        except errors.NotFound:
            mirror_remove(self.mirror, list_name, [spelled])
            raise
        self.mirror_lists.put(list_name, [contact])
        return contact

    def update_contact(self, list_name: str, contact: Contact, *, merge_topic_preferences: bool = False) -> Contact:
        """UpdateContact always gets the whole contact (every explicit topic preference, unsubscribe-all and
        attributes), built on the state SES has just now (not the mirror's, which may be behind), so it does
        the same whether SES merges omitted topic preferences (as a probe saw) or removes them (as the API
        reference says). One thing only the second reading can do: remove an explicit preference. When SES
        kept one the update drops, the rest is saved and mirrored, and :class:`errors.BadRequest` says so."""
        self.mirror_lists.check_topics(list_name, list(contact.topic_preferences))
        current = self.contacts.get(list_name, contact.email)
        desired = apply_update(current, contact, merge_topic_preferences=merge_topic_preferences)
        self.contacts.write(list_name, desired, exists=True)
        updated = self.contacts.get(list_name, current.email)
        self.mirror_lists.put(list_name, [updated])
        kept = sorted(set(updated.topic_preferences) - set(desired.topic_preferences))
        if kept:
            raise errors.BadRequest(
                f"SES kept the explicit preference for {', '.join(kept)}: it merges UpdateContact's topic "
                "preferences, so a preference cannot be reset to the topic default there. The other changes "
                "were saved; to reset it, delete the contact and add it again.",
                field="TopicPreferences",
            )
        return updated

    def delete_contact(self, list_name: str, email: str) -> None:
        try:
            self.ses.call("delete_contact", ContactListName=list_name, EmailAddress=email)
        except errors.NotFound:
            mirror_remove(self.mirror, list_name, [email])
            raise
        self.contacts.forget_deleted(list_name, email)

    # -- reads served by the mirror --------------------------------------------------------------------

    def list_contacts(
        self,
        list_name: str,
        query: ContactQuery = ContactQuery(),  # noqa: B008
        *,
        page_size: int | None = None,
        token: str | None = None,
    ) -> Page[Contact]:
        """From the mirror: SES's ListContacts has no attributes, no search and no sort."""
        self.mirror_lists.ensure(list_name)
        return self.mirror.list_contacts(list_name, query, page_size=page_size, token=token)

    def list_contact_items(
        self,
        list_name: str,
        query: ContactQuery = ContactQuery(),  # noqa: B008
        *,
        page_size: int | None = None,
        token: str | None = None,
    ) -> Page[ListedContact]:
        self.mirror_lists.ensure(list_name)
        return self.mirror.list_contact_items(list_name, query, page_size=page_size, token=token)

    def count_contacts(self, list_name: str, query: ContactQuery, *, cap: int | None = None) -> Count:
        self.mirror_lists.ensure(list_name)
        return self.mirror.count_contacts(list_name, query, cap=cap)

    def list_stats(self, list_name: str) -> ListStats:
        self.mirror_lists.ensure(list_name)
        return self.mirror.list_stats(list_name)

    def daily_counts(self, list_name: str) -> tuple[DayCounts, ...]:
        self.mirror_lists.ensure(list_name)
        return self.mirror.daily_counts(list_name)

    # -- bulk, row by row through the pacer --------------------------------------------------------------

    def upsert_contacts(
        self,
        list_name: str,
        patches: Sequence[ContactPatch],
        policy: UpsertPolicy,
        *,
        dry_run: bool = False,
    ) -> list[RowResult]:
        """Apply import rows one by one on SES, each on the contact as SES has it right now.

        The never-re-subscribe guards (:func:`model.apply_patch`) are therefore checked against SES's state.
        Re-running a batch after a crash is safe: rows already applied come out UNCHANGED. With an S3 location
        and enough rows, the batch goes through one import job instead (:mod:`.s3_import`).
        """
        if not dry_run and self._use_import_job(list_name, len(patches)):
            return self._import_job_runner().upsert(list_name, patches, policy)
        return self.contacts.upsert_rows(list_name, patches, policy, dry_run=dry_run)

    def delete_contacts(self, list_name: str, emails: Sequence[str], *, dry_run: bool = False) -> list[RowResult]:
        if not dry_run and self._use_import_job(list_name, len(emails)):
            return self._import_job_runner().delete(list_name, emails)
        return self.contacts.delete_rows(list_name, emails, dry_run=dry_run)

    # -- bulk actions on what a query matches: the mirror walked, each batch applied on SES --------------

    def apply_to_matching(
        self,
        list_name: str,
        query: ContactQuery,
        action: BulkAction,
        *,
        topic: str | None = None,
        after: str | None = None,
        limit: int | None = None,
        created_before: float | None = None,
        dry_run: bool = False,
    ) -> MatchingStep:
        """The mirror says which contacts match (SES cannot search), in its key order; each batch of
        ``bulk_batch_rows`` is applied on SES through the bulk paths (row by row through the pacer, or one S3
        import job), each contact as SES has it then and written whole. A contact SES no longer has is ``gone``
        (never created again). A dry run counts on the mirror. Re-running a batch after a kill is safe: what
        was applied comes out unchanged."""
        status = check_bulk_action(action, topic)
        self.mirror_lists.ensure(list_name)
        if topic is not None:
            self.mirror_lists.check_topics(list_name, [topic])
        if dry_run:
            return self.mirror.apply_to_matching(
                list_name,
                query,
                action,
                topic=topic,
                after=after,
                limit=limit,
                created_before=created_before,
                dry_run=True,
            )
        size = min(limit, self.bulk_batch_rows) if limit is not None else self.bulk_batch_rows
        total = MatchingStep(0, 0, after)
        while True:
            rows = mirror_matching(
                self.mirror, list_name, query, after=total.last_key, limit=size, created_before=created_before
            )
            emails = [email for _, email in rows]
            if topic is not None and status is not None:
                changed, gone, refused = self._apply_topic(list_name, topic, status, emails)
            else:
                changed, gone, refused = self._apply_action(list_name, action, emails)
            total = MatchingStep(
                total.matched + len(rows),
                total.changed + changed,
                rows[-1][0] if rows else total.last_key,
                total.gone + gone,
                total.refused + refused,
            )
            if len(rows) < size:
                return dataclasses.replace(total, last_key=None)
            if limit is not None and total.matched >= limit:
                return total

    def _apply_topic(self, list_name: str, topic: str, status: str, emails: Sequence[str]) -> tuple[int, int, int]:
        """(changed, gone, refused) of one batch of a topic action: each contact's own preference for ``topic``
        set on SES, the rest of it sent back as SES has it (so either reading of UpdateContact keeps it)."""
        if emails and self._use_import_job(list_name, len(emails)):
            patches = [ContactPatch(email=e, topic_preferences={topic: status}) for e in emails]
            # resubscribe lifts only the guard on the topic: the patches leave unsubscribe-all as it is
            policy = UpsertPolicy(resubscribe=status == OPT_IN, existing_only=True)
            results = self._import_job_runner().upsert(list_name, patches, policy)
        else:
            results = [self.contacts.set_topic_preference(list_name, e, topic, status) for e in emails]
        return _tally(results)

    def _apply_action(self, list_name: str, action: BulkAction, emails: Sequence[str]) -> tuple[int, int, int]:
        """(changed, gone, refused) of one batch, applied on SES."""
        if not emails:
            return 0, 0, 0
        if action == "delete":
            results = self.delete_contacts(list_name, emails)
        else:
            unsubscribe = action == "unsubscribe"
            if self._use_import_job(list_name, len(emails)):
                patches = [ContactPatch(email=e, unsubscribe_all=unsubscribe) for e in emails]
                policy = UpsertPolicy(resubscribe=not unsubscribe, existing_only=True)
                results = self._import_job_runner().upsert(list_name, patches, policy)
            else:
                results = [self.contacts.set_unsubscribe_all(list_name, e, unsubscribe) for e in emails]
        return _tally(results)


def _tally(results: Sequence[RowResult]) -> tuple[int, int, int]:
    """(changed, gone, refused) of a batch's results."""
    outcomes = [r.outcome for r in results]
    changed = outcomes.count(Outcome.DELETED) + outcomes.count(Outcome.UPDATED)
    return changed, outcomes.count(Outcome.NOT_FOUND), outcomes.count(Outcome.REFUSED)


__all__ = ["SesContactStore"]
