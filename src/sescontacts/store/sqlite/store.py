"""``SqliteContactStore``: the local backend's ``ContactStore`` on a SQLite file (also the ses backend's
searchable mirror, which it writes through the functions of :mod:`.mirror`).

The class checks each request in SES's order, opens the transaction and composes the package's modules:
:mod:`.lists` (list rows, topics, counts), :mod:`.writes` (single contacts), :mod:`.search` (pages and
counts), :mod:`.bulk` (import batches), :mod:`.actions` (bulk actions on what a query matches), :mod:`.export`
(the export fast path).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal, TypeVar

from ...db import Database
from ...errors import AlreadyExists, BadRequest
from ...model import (
    FOLDED,
    OPT_OUT,
    AddressIdentity,
    Contact,
    ContactList,
    ContactPatch,
    ContactQuery,
    Count,
    DayCounts,
    ListedContact,
    ListStats,
    Page,
    RowResult,
    Topic,
    UpsertPolicy,
)
from ...validation import (
    check_attributes_data,
    check_description,
    check_email,
    check_list_name,
    check_new_list,
    check_preference_statuses,
    check_topics,
)
from ..base import BulkAction, ExportRows, MatchingStep, check_bulk_action, check_page_size
from ..tokens import TokenCodec
from . import actions, export, lists, search, search_index, writes
from .bulk import BulkDeletes, BulkUpserts
from .schema import use_identity

T = TypeVar("T")


class SqliteContactStore:
    """``ContactStore`` on a SQLite file. ``max_lists`` is SES's one-list quota; None lifts it.

    ``identity`` says when two addresses are one contact: ``FOLDED`` (case-insensitive, the local backend's
    rule) or ``EXACT`` (every spelling its own contact, as SES may keep them: the ses backend's mirror). The
    file's contacts are re-keyed on opening when they were keyed by the other rule (see ``schema.use_identity``).
    """

    backend = "local"
    # Bulk batches and the caller's own records share this database's transactions (see ``atomic``), and the
    # importer's batch size suits it.
    transactional = True
    bulk_batch_rows: int | None = None

    def __init__(
        self,
        db: Database,
        *,
        region: str = "us-east-1",
        account_id: str = "000000000000",
        max_lists: int | None = 1,
        clock: Callable[[], float] | None = None,
        identity: AddressIdentity = FOLDED,
    ) -> None:
        use_identity(db, identity)
        search_index.ensure_triggers(db)
        self.db = db
        self.identity = identity
        self.region = region
        self.account_id = account_id
        self.max_lists = max_lists
        self._now = clock or time.time
        self._tokens = TokenCodec(db.meta("token_secret") or "")
        self._topic_counts = lists.TopicCountsCache()
        self._bulk = BulkUpserts()
        self._deletes = BulkDeletes()

    def close(self) -> None:
        self.db.close()

    def email_key(self, address: str) -> str:
        """The key this store files ``address`` under: two addresses with one key are one contact."""
        return self.identity.key(address)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One write transaction on ``self.db``: every store write inside it, and the caller's own
        ``self.db.write()`` on this thread (which joins it), commit together or roll back together."""
        with self.db.write():
            yield

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
        now = self._now()
        with self.db.write() as conn:
            if self.max_lists is not None and lists.count_lists(conn) >= self.max_lists:
                raise BadRequest(f"A maximum of {self.max_lists} Lists allowed per account.")
            if lists.find_list_id(conn, name) is not None:
                raise AlreadyExists(f"List with name: {name} already exists.", field="ContactListName")
            lists.insert_list(conn, name, topics=topics, description=description, tags=tags, created=now, updated=now)
            return lists.list_row(conn, name)[1]

    def get_list(self, name: str) -> ContactList:
        check_list_name(name)
        with self.db.snapshot() as conn:
            return lists.list_row(conn, name)[1]

    def update_list(
        self,
        name: str,
        *,
        topics: Sequence[Topic] | None = None,
        description: str | None = None,
        replace: bool = False,
    ) -> ContactList:
        check_list_name(name)
        if replace and topics is None:
            topics = ()
        if topics is not None:
            check_topics(topics)
        check_description(description)
        with self.db.write() as conn:
            list_id, current = lists.list_row(conn, name)
            if topics is not None:
                lists.replace_topics(conn, list_id, current, topics)
            lists.update_list_row(
                conn, list_id, description=description, keep_description=not replace, updated=self._now()
            )
            return lists.list_row(conn, name)[1]

    def delete_list(self, name: str) -> None:
        check_list_name(name)
        with self.db.write() as conn:
            list_id = lists.list_id(conn, name)
            lists.delete_list(conn, list_id)
        self._topic_counts.forget(list_id)

    def list_lists(self, *, page_size: int | None = None, token: str | None = None) -> Page[ContactList]:
        size = check_page_size(page_size)
        after = str(self._tokens.decode("lists", token)[0]) if token else ""
        with self.db.snapshot() as conn:
            names = lists.list_names_after(conn, after, size + 1)
            found = [lists.list_row(conn, n)[1] for n in names[:size]]
        next_token = self._tokens.encode("lists", [names[size - 1]]) if len(names) > size else None
        return Page(found, next_token)

    def tag_list(self, name: str, tags: Sequence[tuple[str, str]]) -> None:
        with self.db.write() as conn:
            lists.change_tags(conn, name, add=dict(tags))

    def untag_list(self, name: str, keys: Sequence[str]) -> None:
        with self.db.write() as conn:
            lists.change_tags(conn, name, remove=list(keys))

    def list_arn(self, name: str) -> str:
        return f"arn:aws:ses:{self.region}:{self.account_id}:contact-list/{name}"

    # -- single contacts -------------------------------------------------------------------------------

    def create_contact(self, list_name: str, contact: Contact) -> Contact:
        check_preference_statuses(contact.topic_preferences)  # SES: enums, then formats, then existence
        check_list_name(list_name)  # SES: name format (400) before list existence (404)
        check_email(contact.email)
        check_attributes_data(contact.attributes_data)  # size and nesting caps, as every surface applies them
        now = self._now()
        with self.db.write() as conn:
            list_id, contact_list = lists.list_row(conn, list_name)
            return writes.create_contact(conn, list_id, contact_list, contact, now, self.identity)

    def get_contact(self, list_name: str, email: str) -> Contact:
        check_list_name(list_name)
        with self.db.snapshot() as conn:
            contact = writes.fetch_contact(conn, lists.list_id(conn, list_name), email, self.identity)
        if contact is None:
            raise writes.contact_not_found(email)
        return contact

    def update_contact(self, list_name: str, contact: Contact, *, merge_topic_preferences: bool = False) -> Contact:
        check_preference_statuses(contact.topic_preferences)
        check_list_name(list_name)
        now = self._now()
        with self.db.write() as conn:
            list_id, contact_list = lists.list_row(conn, list_name)
            return writes.update_contact(
                conn,
                list_id,
                contact_list,
                contact,
                now,
                self.identity,
                merge_topic_preferences=merge_topic_preferences,
            )

    def delete_contact(self, list_name: str, email: str) -> None:
        check_list_name(list_name)
        now = self._now()
        with self.db.write() as conn:
            writes.delete_contact(conn, lists.list_id(conn, list_name), email, self.identity, now)

    # -- bulk ------------------------------------------------------------------------------------------

    def upsert_contacts(
        self,
        list_name: str,
        patches: Sequence[ContactPatch],
        policy: UpsertPolicy,
        *,
        dry_run: bool = False,
    ) -> list[RowResult]:
        now = self._now()
        with self.db.snapshot() if dry_run else self.db.write() as conn:
            list_id, contact_list = lists.list_row(conn, list_name)
            return self._bulk.upsert(conn, list_id, contact_list, patches, policy, now, self.identity, dry_run=dry_run)

    def delete_contacts(self, list_name: str, emails: Sequence[str], *, dry_run: bool = False) -> list[RowResult]:
        now = self._now()
        with self.db.snapshot() if dry_run else self.db.write() as conn:
            list_id = lists.list_id(conn, list_name)
            return self._deletes.delete(conn, list_id, emails, self.identity, now, dry_run=dry_run)

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
        """One batch as two statements and the counters in one transaction (see :mod:`.actions`)."""
        check_list_name(list_name)
        search.check_filter_status(query)
        check_bulk_action(action, topic)
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        now = self._now()
        with self.db.snapshot() if dry_run else self.db.write() as conn:
            list_id, contact_list = lists.list_row(conn, list_name)
            return actions.apply_to_matching(
                conn,
                list_id,
                contact_list,
                query,
                action,
                topic=topic,
                after=after,
                limit=limit,
                created_before=created_before,
                now=now,
                identity=self.identity,
                dry_run=dry_run,
            )

    # -- export ----------------------------------------------------------------------------------------

    @contextmanager
    def export_rows(
        self, list_name: str, query: ContactQuery, fmt: Literal["csv", "json"], *, neutralise: str = ""
    ) -> Iterator[ExportRows | None]:
        """Rows rendered by SQLite itself in one read transaction (a consistent snapshot), so a million rows
        cost about what the ``sqlite3`` shell's own CSV export costs: Python only moves finished rows."""
        with self.db.snapshot() as conn:
            list_id, contact_list = lists.list_row(conn, list_name)
            yield export.export_rows(conn, list_id, contact_list, query, fmt, neutralise, self.identity)

    # -- pages, counts and stats -----------------------------------------------------------------------

    def list_contacts(
        self,
        list_name: str,
        query: ContactQuery = ContactQuery(),  # noqa: B008
        *,
        page_size: int | None = None,
        token: str | None = None,
    ) -> Page[Contact]:
        return self._page(search.contacts_page, list_name, query, page_size, token)

    def list_contact_items(
        self,
        list_name: str,
        query: ContactQuery = ContactQuery(),  # noqa: B008
        *,
        page_size: int | None = None,
        token: str | None = None,
    ) -> Page[ListedContact]:
        """:meth:`list_contacts`' page without the attributes read or a Contact built (its token pages either)."""
        return self._page(search.listed_page, list_name, query, page_size, token)

    def _page(
        self, fetch: search.PageFetch[T], list_name: str, query: ContactQuery, page_size: int | None, token: str | None
    ) -> Page[T]:
        check_list_name(list_name)
        search.check_filter_status(query)
        size = check_page_size(page_size)
        scope = f"contacts:{list_name}:{query!r}"
        position = self._tokens.decode(scope, token) if token else None
        with self.db.snapshot() as conn:
            list_id, contact_list = lists.list_row(conn, list_name)
            items, after = fetch(conn, list_id, contact_list, query, size, position, self.identity)
        return Page(items, None if after is None else self._tokens.encode(scope, after))

    def count_contacts(self, list_name: str, query: ContactQuery, *, cap: int | None = None) -> Count:
        search.check_filter_status(query)
        with self.db.snapshot() as conn:
            totals = lists.list_totals(conn, list_name)
            if totals is None:
                raise lists.list_not_found(list_name)
            list_id, total, unsubscribed, _generation = totals
            if query in (ContactQuery(status=query.status), ContactQuery(status=query.status, sort="updated")):
                if query.status is None:  # the list's row keeps these counts
                    return Count(total)
                return Count(unsubscribed if query.status == OPT_OUT else total - unsubscribed)
            contact_list = lists.list_row(conn, list_name)[1]
            return search.count(conn, list_id, contact_list, query, cap, self.identity)

    def daily_counts(self, list_name: str) -> tuple[DayCounts, ...]:
        with self.db.snapshot() as conn:
            return lists.daily_counts(conn, lists.list_id(conn, list_name))

    def list_stats(self, list_name: str) -> ListStats:
        with self.db.snapshot() as conn:
            totals = lists.list_totals(conn, list_name)
            if totals is None:
                raise lists.list_not_found(list_name)
            list_id, total, unsubscribed, generation = totals
            contact_list = lists.list_row(conn, list_name)[1]
            days = lists.daily_counts(conn, list_id)
            topic_counts = self._topic_counts.counts(conn, list_id, contact_list, generation, total, unsubscribed)
        return ListStats(total, unsubscribed, topic_counts, days)
