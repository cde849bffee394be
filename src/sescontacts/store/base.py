"""The one interface every surface uses: the console, the importer, the SES API and the CLI.

Two implementations: ``SqliteContactStore`` (the local backend, and the ses backend's mirror) and the ses
backend on boto3. Methods are synchronous; async surfaces call them in a worker thread, one call per hop.
Errors are those of :mod:`sescontacts.errors`, carrying SES's codes and messages (a missing list is
``ListNotFound``, a missing contact on an existing list ``NotFound``).

What a surface needs beyond single calls is part of the Protocol too, typed, so no surface asks which class
it holds: ``atomic()`` and ``transactional`` (a bulk batch and the job's progress committed together),
``bulk_batch_rows`` (the batch size that suits the backend), ``export_rows`` (rows the backend renders
itself, or None), ``apply_to_matching`` (a bulk action on the contacts a query matches, one keyset batch at a
time). A store that keeps a mirror synced in the background also implements :class:`SyncedStore`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ..errors import BadRequest
from ..history import Change, ChangeQuery, CreatedBatch
from ..model import (
    OPT_IN,
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
from ..suppression import SuppressedDestination, SuppressionQuery

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 1000


def check_page_size(page_size: int | None) -> int:
    """The page size a list call asked for, or the default; SES's error (message as probed) outside
    1..MAX_PAGE_SIZE (every backend pages lists and contacts by the same rule)."""
    if page_size is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadRequest(f"The page size must be between 1 and {MAX_PAGE_SIZE}", field="PageSize")
    return page_size


@dataclass(frozen=True, slots=True)
class ExportRows:
    """Contacts rendered by the backend itself for an export, read in one consistent snapshot.

    ``chunks`` gives lists of rows in the query's order. CSV: one text cell per column, in the export's
    column order (address, ``true``/``false``, AttributesData or empty, then one cell per topic of
    ``contact_list`` in order, empty when the contact made no choice). JSON: a 1-tuple holding one finished
    line of SES's import format (no newline).
    """

    contact_list: ContactList
    chunks: Iterator[list[tuple[str, ...]]]


#: What a bulk action does to each contact it reaches: the console's Delete / Unsubscribe / Resubscribe, and
#: Opt in to / Opt out of a topic (those two name the topic: ``apply_to_matching``'s ``topic``).
BulkAction = Literal["delete", "unsubscribe", "resubscribe", "topic_opt_in", "topic_opt_out"]
BULK_ACTIONS: tuple[BulkAction, ...] = ("delete", "unsubscribe", "resubscribe", "topic_opt_in", "topic_opt_out")
#: The topic actions and the explicit preference each sets.
TOPIC_ACTIONS: dict[str, str] = {"topic_opt_in": OPT_IN, "topic_opt_out": OPT_OUT}


def check_bulk_action(action: str, topic: str | None) -> str | None:
    """The preference a topic action sets (None for the others); ValueError for an unknown action, a topic
    action without a topic, or a topic given to an action that has none (a caller's mistake, not a user's)."""
    if action not in BULK_ACTIONS:
        raise ValueError(f"unknown bulk action {action!r}")
    status = TOPIC_ACTIONS.get(action)
    if (status is None) != (topic is None):
        raise ValueError(f"bulk action {action!r} {'takes no' if status is None else 'needs a'} topic")
    return status


@dataclass(frozen=True, slots=True)
class MatchingStep:
    """One batch of :meth:`ContactStore.apply_to_matching`: what it found and did, and where the walk stands.

    ``matched``: contacts of the batch the query matched; ``changed``: those the action changed (deleted,
    unsubscribed, resubscribed, opted in or out: the others already were, or were gone by the time the backend
    reached them, ``gone``); ``refused``: those the backend refused (an SES import job's failed records).
    ``last_key`` is the key of the batch's last contact, to pass as ``after`` for the next batch; None when the
    walk has reached the end of the list (the batch held fewer than ``limit`` contacts).

    What a confirmation asks about, as the matched contacts were before the batch (a dry run fills them; a
    batch that writes may leave them 0): ``unsubscribed``, those unsubscribed from all; ``opted_out``, for a
    topic action, those whose own choice for the topic was OPT_OUT (a topic default is no choice).
    """

    matched: int
    changed: int
    last_key: str | None
    gone: int = 0
    refused: int = 0
    unsubscribed: int = 0
    opted_out: int = 0


@runtime_checkable
class ContactStore(Protocol):
    backend: str  # "local" or "ses"
    region: str

    @property
    def account_id(self) -> str:
        """The account in list ARNs. Read-only: a store may only learn it (the ses backend asks STS, once)."""
        ...

    def email_key(self, address: str) -> str:
        """The key this store files ``address`` under: two addresses with one key are one contact (the local
        backend: whatever their case; the ses backend: as SES keeps them, each spelling its own). Surfaces
        that group addresses, like the importer counting duplicates, group by it."""
        ...

    @property
    def identity(self) -> AddressIdentity:
        """The rule behind :meth:`email_key`, by which the importer's parser process keys its batches."""
        ...

    # Contact lists
    def create_list(
        self,
        name: str,
        *,
        topics: Sequence[Topic] = (),
        description: str | None = None,
        tags: Sequence[tuple[str, str]] = (),
    ) -> ContactList: ...
    def get_list(self, name: str) -> ContactList: ...
    def update_list(
        self,
        name: str,
        *,
        topics: Sequence[Topic] | None = None,
        description: str | None = None,
        replace: bool = False,
    ) -> ContactList:
        """``topics`` replaces all topics when given and ``description`` the description; None keeps each (as
        a probe saw SES's UpdateContactList do). ``replace``: the call is the list's whole new definition, so
        None removes them (UpdateContactList as its API reference documents it: "a complete replacement")."""
        ...

    def delete_list(self, name: str) -> None:
        """Deletes the list and every contact on it."""
        ...

    def list_lists(self, *, page_size: int | None = None, token: str | None = None) -> Page[ContactList]: ...
    def tag_list(self, name: str, tags: Sequence[tuple[str, str]]) -> None: ...
    def untag_list(self, name: str, keys: Sequence[str]) -> None: ...
    def list_arn(self, name: str) -> str: ...

    # Contacts
    def create_contact(self, list_name: str, contact: Contact) -> Contact: ...
    def get_contact(self, list_name: str, email: str) -> Contact: ...
    def update_contact(self, list_name: str, contact: Contact, *, merge_topic_preferences: bool = False) -> Contact:
        """Replace the contact's unsubscribe-all and attributes with ``contact``'s. Topic preferences are
        replaced too, or merged by topic name when ``merge_topic_preferences`` (SES API semantics)."""
        ...

    def delete_contact(self, list_name: str, email: str) -> None: ...
    def list_contacts(
        self,
        list_name: str,
        query: ContactQuery = ContactQuery(),  # noqa: B008 - frozen, shared safely
        *,
        page_size: int | None = None,
        token: str | None = None,
    ) -> Page[Contact]:
        """Keyset pages in ``query.sort`` order; the token is opaque, signed and tied to the query."""
        ...

    def list_contact_items(
        self,
        list_name: str,
        query: ContactQuery = ContactQuery(),  # noqa: B008
        *,
        page_size: int | None = None,
        token: str | None = None,
    ) -> Page[ListedContact]:
        """:meth:`list_contacts`' page (the same contacts, order, checks and token) as SES's ListContacts shows
        it: what the SES API serves, without building a :class:`Contact` a row."""
        ...

    def count_contacts(self, list_name: str, query: ContactQuery, *, cap: int | None = None) -> Count:
        """How many contacts match. With a ``cap`` it stops there, or sooner where counting on would read too
        much, and says so (Count.exact False: ``value`` is then a lower bound), so a search stays cheap."""
        ...

    def list_stats(self, list_name: str) -> ListStats: ...

    def daily_counts(self, list_name: str) -> tuple[DayCounts, ...]:
        """:attr:`ListStats.per_day` alone, from counters (no scan): what the overview shows as current while
        it reuses the per-topic counts (which read every contact) for a few seconds."""
        ...

    # Bulk
    def upsert_contacts(
        self,
        list_name: str,
        patches: Sequence[ContactPatch],
        policy: UpsertPolicy,
        *,
        dry_run: bool = False,
    ) -> list[RowResult]:
        """Apply import rows in one transaction; one result per patch, in order (last row wins)."""
        ...

    def delete_contacts(self, list_name: str, emails: Sequence[str], *, dry_run: bool = False) -> list[RowResult]:
        """One result per address, in order: DELETED, NOT_FOUND (also for an address met earlier in the
        batch), or REFUSED with the backend's reason."""
        ...

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
        """Apply ``action`` to the next ``limit`` contacts (None: all) that match ``query``, in the order of their
        keys (:meth:`email_key`; ``query.sort`` is ignored) after the key ``after``, leaving out contacts created
        after ``created_before`` (a time as ``Contact.created`` gives it).

        The console's "all N matching" runs as a job of such batches: each batch's ``last_key`` is where the
        next starts, so a job resumed after a kill neither repeats nor skips a contact, whatever changed in
        between. A contact is acted on when the walk reaches it and it matches then; one created after the job
        began is never. Unsubscribe and resubscribe change only unsubscribe-all (topic opt-outs stay, as for
        the checked rows of a page). ``topic_opt_in`` / ``topic_opt_out`` set the contact's own preference for
        ``topic`` (a topic of the list, else the BadRequest SES gives a preference for another) and nothing
        else: other topics, attributes and unsubscribe-all stay (opting in never resubscribes). A contact
        changes when its own preference for the topic was not already that one, also when the topic's default
        gave it the same (it becomes its own choice, which a later change of the default leaves alone:
        ListContacts' topic filter without UseDefaultIfPreferenceUnavailable shows it only now). ``dry_run``:
        only the counts. On a transactional store the batch is one transaction with the list's counters (and
        joins an :meth:`atomic` block around it)."""
        ...

    @property
    def bulk_batch_rows(self) -> int | None:
        """Rows per bulk batch that suit this backend (the ses backend: what one import job or a minute of
        paced calls takes), or None to let the caller choose."""
        ...

    # Transactions
    @property
    def transactional(self) -> bool:
        """Whether :meth:`atomic` is one transaction. True: the store's writes inside it and the writes made on
        this thread to the same :class:`~sescontacts.db.Database` (its ``write()`` joins the open one) commit
        together when the block ends, or roll back together when it raises; so a caller can record its
        progress in the batch's own commit, and a dry run can apply everything and roll back. False: the
        store commits each write where it lands as it goes (SES), :meth:`atomic` groups nothing, a caller
        commits its own records after each call, and a dry run passes ``dry_run=True`` to every call."""
        ...

    def atomic(self) -> AbstractContextManager[None]:
        """The block's writes as one transaction (see :attr:`transactional`). Nested use joins the outer one."""
        ...

    # Export
    def export_rows(
        self, list_name: str, query: ContactQuery, fmt: Literal["csv", "json"], *, neutralise: str = ""
    ) -> AbstractContextManager[ExportRows | None]:
        """The backend's own fast rendering of an export (see :class:`ExportRows`), held in one snapshot
        until the block ends; None when it has none, and the caller pages through :meth:`list_contacts`.

        CSV cells that are the users' text (address, AttributesData) and start with a character of
        ``neutralise``, or with one or more ``'`` then one of them, get one leading ``'`` (the spreadsheet
        formula guard of :func:`sescontacts.bulk.formats.encode_cell`, applied where the rows are made).
        """
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SyncStatus:
    """What the console shows of a mirror sync: when the mirror was last complete, and the progress of a
    running sync."""

    list_name: str
    running: bool = False
    kind: str | None = None
    pages: int = 0
    seen: int = 0
    fetched: int = 0
    removed: int = 0
    calls: int = 0
    estimate: int = 0
    started: float | None = None
    last_synced: float | None = None
    last_full: float | None = None
    last_duration: float | None = None
    last_error: str | None = None
    eta_seconds: float | None = None
    phase: str = "walk"  # "walk": listing pages; "fetch": reading the attributes of new or changed contacts
    to_fetch: int = 0  # contacts listed whose attributes are still to be read
    # The same pass's walk of the account suppression list (its own SyncStatus, list_name "suppression list";
    # fetched = entries new or changed), so that the console can say when the sync is busy there.
    suppression: SyncStatus | None = None

    @property
    def fraction(self) -> float | None:
        if not self.running:
            return None
        return min(1.0, self.seen / self.estimate) if self.estimate else None


@dataclass(frozen=True)
class SyncResult:
    """One finished sync of one list."""

    list_name: str
    kind: str
    pages: int
    seen: int
    fetched: int
    removed: int
    calls: int
    seconds: float


@runtime_checkable
class SyncedStore(ContactStore, Protocol):
    """A store that answers reads from a local mirror of a remote source, kept up to date in the background
    (the ses backend). Surfaces ask ``isinstance(store, SyncedStore)`` to start the sync with the server and
    to say how fresh the mirror is."""

    def sync_status(self, list_name: str | None = None) -> SyncStatus | None:
        """When the mirror of ``list_name`` (default: the list synced last) was last synced and what a running
        sync is doing; None when no sync is set up."""
        ...

    def start_sync(self) -> None:
        """Start the scheduled background sync (nothing when none is scheduled)."""
        ...

    def stop_sync(self) -> None:
        """Stop the background sync, waiting for a running pass to end."""
        ...

    def sync_now(
        self, *, full: bool = True, on_progress: Callable[[SyncStatus], None] | None = None
    ) -> list[SyncResult]:
        """Sync every list now, in this thread (``sescontacts sync``): ``full`` walks from the first page,
        else an interrupted sync is resumed. ``on_progress`` hears the status after each page and chunk."""
        ...


class SuppressionList(Protocol):
    """The account's suppression list (SES's, per account and region: not per contact list), as every surface
    reads and changes it: the SES API's suppression operations, the console's Suppression page and contacts
    filter, the event rules. ``Services.suppression`` holds the backend's implementation: the local one in
    the product database; the ses backend's writes through to SES and answers reads from its mirror.

    Errors are SES's: an address not on the list is ``NotFound``; a bad reason or page size ``BadRequest``.
    """

    def put_suppressed(
        self, email: str, reason: str, *, message_id: str | None = None, feedback_id: str | None = None
    ) -> SuppressedDestination:
        """Add ``email`` or replace its entry (reason, time now); the entry as stored."""
        ...

    def get_suppressed(self, email: str) -> SuppressedDestination:
        """The entry of ``email`` (folded, as SES looks it up); NotFound when it has none."""
        ...

    def delete_suppressed(self, email: str) -> None:
        """Remove the entry of ``email``; NotFound when it has none."""
        ...

    def list_suppressed(
        self, query: SuppressionQuery, *, page_size: int | None = None, token: str | None = None
    ) -> Page[SuppressedDestination]:
        """Entries matching ``query`` in address order, one page; ``token`` is a previous page's next_token
        for the same query (anything else is BadRequest "Provided NextToken is invalid")."""
        ...

    def count_suppressed(self, query: SuppressionQuery) -> int:
        """How many entries match ``query`` (the console's counts)."""
        ...

    def suppressed_among(self, emails: Sequence[str]) -> dict[str, SuppressedDestination]:
        """The entries of those of ``emails`` that have one, by the folded key (:func:`model.email_key`): one
        query for a page of contacts."""
        ...

    def suppressed_reasons(self) -> tuple[str, ...]:
        """The account's ``SuppressionAttributes.SuppressedReasons``: which events add an address by themselves."""
        ...

    def set_suppressed_reasons(self, reasons: Sequence[str]) -> None:
        """PutAccountSuppressionAttributes: BadRequest for a reason that is not BOUNCE or COMPLAINT."""
        ...


class ContactHistory(Protocol):
    """Every recorded change to the contacts (who, when, what), as the console's timeline and activity page,
    ``sescontacts history`` and an undo read it. ``Services.history`` holds it; on both backends it is the
    product database's own record (the ses backend's mirror records what reaches it, and SES's own changes as
    its sync sees them, as the actor "SES"). Who a write acts for is set by the surface making it
    (:func:`sescontacts.history.acting_as`), never passed to the store."""

    def changes(
        self, list_name: str, query: ChangeQuery, *, page_size: int = 50, token: str | None = None
    ) -> Page[Change]:
        """The list's changes matching ``query``, newest first, one page; ``token`` a previous page's."""
        ...

    def contact_history(self, list_name: str, email: str, *, limit: int = 100) -> list[Change]:
        """Every recorded change of the contact ``email`` is or was, newest first (its timeline)."""
        ...

    def job_changes(self, job: str, *, before_id: int | None = None, limit: int = 1000) -> list[Change]:
        """The changes job ``job`` made, newest first, with an id below ``before_id`` (a store may record a batch
        as one row: its changes then share the row's id, and ``limit`` counts rows)."""
        ...

    def job_records(self, job: str, *, before_id: int | None = None, limit: int = 1000) -> list[Change | CreatedBatch]:
        """:meth:`job_changes` as recorded: a batch's creations one :class:`CreatedBatch`, not a Change each."""
        ...

    def changed_keys(
        self, list_name: str, keys: Sequence[str], after_id: int, *, ignore_jobs: Sequence[str] = ()
    ) -> set[str]:
        """Which of ``keys`` were updated or deleted after change ``after_id`` by no job of ``ignore_jobs``."""
        ...

    def later_change(self, change: Change, *, ignore_jobs: Sequence[str] = ()) -> Change | None:
        """The first later change to ``change``'s contact made by no job of ``ignore_jobs``, or None."""
        ...

    def later_changes(self, changes: Sequence[Change], *, ignore_jobs: Sequence[str] = ()) -> list[Change | None]:
        """:meth:`later_change` of each of ``changes``, in order, read together (an undo's batch)."""
        ...

    def set_recording(self, on: bool) -> bool:
        """Record changes from now on, or record nothing (retention 0 days); whether that changed."""
        ...

    def prune(self, older_than: float, *, limit: int = 10_000) -> int:
        """Delete up to ``limit`` changes recorded before ``older_than``; how many it deleted."""
        ...

    def table_sizes(self) -> dict[str, int]:
        """Bytes on disk of the history's and the contacts' tables and indexes, by name."""
        ...
