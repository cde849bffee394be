"""The ses backend's mirror: SES's state written as-is into the contact tables.

The ses backend keeps a :class:`~sescontacts.store.sqlite.SqliteContactStore` as its searchable mirror and
reads it through the ``ContactStore`` methods; these functions are the writes (and the queries) it needs
beyond them, so that it never writes SQL against tables this package owns. Each takes the mirror and opens
``db.write()`` / ``db.snapshot()`` on its database, which joins a write transaction the caller holds on this
thread: the caller's own rows (its sync state) then commit with the mirror's. Contacts are keyed by the
mirror's identity (the exact address, as SES may key them: ``model.EXACT``), so "by key" below means
``mirror.email_key(address)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...model import Contact, ContactList, ContactQuery
from .actions import matching_keys
from .lists import find_list_id, insert_list, list_id, list_row, mirror_list_row, replace_topics
from .rows import day
from .writes import existing_contacts, remove_contacts, spellings, write_contacts

if TYPE_CHECKING:
    from .store import SqliteContactStore


def mirror_list(mirror: SqliteContactStore, contact_list: ContactList) -> None:
    """Store a list exactly as SES returned it (its timestamps included), creating it when new.

    Topics replace the stored ones; preferences for removed topics are dropped, as on ``update_list``.
    """
    with mirror.db.write() as conn:
        if find_list_id(conn, contact_list.name) is None:
            insert_list(
                conn,
                contact_list.name,
                topics=contact_list.topics,
                description=contact_list.description,
                tags=contact_list.tags,
                created=contact_list.created,
                updated=contact_list.updated,
            )
            return
        found_id, current = list_row(conn, contact_list.name)
        if current == contact_list:
            return
        replace_topics(conn, found_id, current, contact_list.topics)
        mirror_list_row(conn, found_id, contact_list)


def mirror_contacts(
    mirror: SqliteContactStore, list_name: str, contacts: Sequence[Contact], *, force: bool = False
) -> None:
    """Upsert contacts with the timestamps they carry (SES's), keeping counters and daily additions right.

    A copy older than the mirror's is skipped (a sync page read before a write), unless ``force``.
    :class:`~sescontacts.errors.ListNotFound` when the mirror does not have the list."""
    if not contacts:
        return
    with mirror.db.write() as conn:
        found_id = list_id(conn, list_name)
        latest = {mirror.email_key(c.email): c for c in contacts}
        existing = existing_contacts(conn, found_id, list(latest))
        by_day: dict[str, list[tuple[str, Contact | None, Contact]]] = {}
        for key, after in latest.items():
            before = existing.get(key)
            if before is not None and (
                (before.updated > after.updated and not force)
                or (before.same_state(after) and before.updated == after.updated)
            ):
                continue  # already current, or newer than this copy (a sync page read before a write)
            if before is not None:  # the address keeps the spelling first written, as on every write
                after = dataclasses.replace(after, email=before.email)
            by_day.setdefault(day(after.created), []).append((key, before, after))
        for changes in by_day.values():
            # Additions count on the day they are given: the contact's creation day in SES.
            write_contacts(conn, found_id, changes, changes[0][2].created)


def mirror_existing(mirror: SqliteContactStore, list_name: str, emails: Sequence[str]) -> dict[str, Contact]:
    """The mirrored contacts among ``emails``, by key; an unknown list has none."""
    with mirror.db.snapshot() as conn:
        found_id = find_list_id(conn, list_name)
        if found_id is None:
            return {}
        return existing_contacts(conn, found_id, [mirror.email_key(e) for e in emails])


def mirror_spellings(mirror: SqliteContactStore, list_name: str, emails: Sequence[str]) -> dict[str, Contact]:
    """The mirrored contacts, by key, whose address is one of ``emails`` but for case (and Unicode
    composition), each of ``emails`` itself included when mirrored; an unknown list has none."""
    with mirror.db.snapshot() as conn:
        found_id = find_list_id(conn, list_name)
        if found_id is None:
            return {}
        return spellings(conn, found_id, emails, mirror.identity)


def mirror_remove(mirror: SqliteContactStore, list_name: str, emails: Sequence[str]) -> int:
    """Drop contacts SES no longer has; unknown ones are ignored. Returns how many were removed."""
    with mirror.db.write() as conn:
        found_id = find_list_id(conn, list_name)
        if found_id is None:
            return 0
        existing = existing_contacts(conn, found_id, [mirror.email_key(e) for e in emails])
        remove_contacts(conn, found_id, existing, mirror._now())
        return len(existing)


def mirror_unlisted(
    mirror: SqliteContactStore,
    list_name: str,
    *,
    updated_before: float,
    listed: str,
    params: Sequence[object] = (),
) -> list[str]:
    """Addresses (as spelled) of the list's mirrored contacts last updated before ``updated_before`` whose
    key is not among those ``listed`` returns; an unknown list has none.

    ``listed`` is an SQL query the caller owns, over its own tables, returning one column of keys (NOT NULL,
    ``mirror.email_key`` of each address), with ``params`` its parameters: the sync's "seen in this walk, or
    written since it began". So the contacts SES no longer has are found in one statement without the caller
    naming our tables.
    """
    with mirror.db.snapshot() as conn:
        found_id = find_list_id(conn, list_name)
        if found_id is None:
            return []
        return [
            row[0]
            for row in conn.execute(
                f"SELECT email FROM contacts WHERE list_id = ? AND updated < ? AND email_key NOT IN ({listed})",
                (found_id, updated_before, *params),
            )
        ]


def mirror_matching(
    mirror: SqliteContactStore,
    list_name: str,
    query: ContactQuery,
    *,
    after: str | None,
    limit: int,
    created_before: float | None,
) -> list[tuple[str, str]]:
    """(key, address as spelled) of the next ``limit`` mirrored contacts matching ``query`` after the key
    ``after``, in key order, none created after ``created_before``: the ses backend's walk of a bulk action
    (``ContactStore.apply_to_matching``), whose batches it then applies on SES. An unknown list has none."""
    with mirror.db.snapshot() as conn:
        found_id = find_list_id(conn, list_name)
        if found_id is None:
            return []
        contact_list = list_row(conn, list_name)[1]
        return matching_keys(
            conn,
            found_id,
            contact_list,
            query,
            after=after,
            limit=limit,
            created_before=created_before,
            identity=mirror.identity,
        )
