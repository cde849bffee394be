"""The one interface every surface uses: the console, the importer, the SES API and the CLI.

Two implementations: ``SqliteContactStore`` (the local backend, and the ses backend's mirror) and the ses
backend on boto3. Methods are synchronous; async surfaces call them in a worker thread, one call per hop.
Errors are those of :mod:`sescontacts.errors`, carrying SES's codes and messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from ..model import (
    Contact,
    ContactList,
    ContactPatch,
    ContactQuery,
    Count,
    ListStats,
    Page,
    RowResult,
    Topic,
    UpsertPolicy,
)

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 1000


@runtime_checkable
class ContactStore(Protocol):
    backend: str  # "local" or "ses"
    region: str
    account_id: str

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
        self, name: str, *, topics: Sequence[Topic] | None = None, description: str | None = None
    ) -> ContactList:
        """``topics`` replaces all topics when given; None keeps them (SES's UpdateContactList)."""
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

    def count_contacts(self, list_name: str, query: ContactQuery, *, cap: int | None = None) -> Count:
        """How many contacts match; stops at ``cap`` (Count.exact False) so a search stays cheap."""
        ...

    def list_stats(self, list_name: str) -> ListStats: ...

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

    def delete_contacts(self, list_name: str, emails: Sequence[str], *, dry_run: bool = False) -> list[RowResult]: ...

    def close(self) -> None: ...


def tags_dict(tags: Mapping[str, str] | Sequence[tuple[str, str]]) -> dict[str, str]:
    return dict(tags.items()) if isinstance(tags, Mapping) else dict(tags)
