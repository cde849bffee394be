"""The ses backend's mirror: SES's state written as-is into the contact tables.

The ses backend keeps a :class:`~sescontacts.store.sqlite.SqliteContactStore` as its searchable mirror and
reads it through the ``ContactStore`` methods; these functions are the writes (and the one query) it needs
beyond them, so that it never writes SQL against tables this package owns. Each takes the mirror's
``Database`` and opens ``db.write()`` / ``db.snapshot()``, which joins a write transaction the caller holds
on this thread: the caller's own rows (its sync state) then commit with the mirror's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ...db import Database
from ...model import Contact, ContactList
from ...validation import email_key
from .lists import find_list_id, insert_list, list_id, list_row, mirror_list_row, replace_topics
from .rows import day
from .writes import existing_contacts, remove_contacts, write_contacts


def mirror_list(db: Database, contact_list: ContactList) -> None:
    """Store a list exactly as SES returned it (its timestamps included), creating it when new.

    Topics replace the stored ones; preferences for removed topics are dropped, as on ``update_list``.
    """
    with db.write() as conn:
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


def mirror_contacts(db: Database, list_name: str, contacts: Sequence[Contact], *, force: bool = False) -> None:
    """Upsert contacts with the timestamps they carry (SES's), keeping counters and daily additions right.

    A copy older than the mirror's is skipped (a sync page read before a write), unless ``force``.
    :class:`~sescontacts.errors.ListNotFound` when the mirror does not have the list."""
    if not contacts:
        return
    with db.write() as conn:
        found_id = list_id(conn, list_name)
        latest = {email_key(c.email): c for c in contacts}
        existing = existing_contacts(conn, found_id, list(latest))
        by_day: dict[str, list[tuple[Contact | None, Contact]]] = {}
        for key, after in latest.items():
            before = existing.get(key)
            if before is not None and (
                (before.updated > after.updated and not force)
                or (before.same_state(after) and before.updated == after.updated)
            ):
                continue  # already current, or newer than this copy (a sync page read before a write)
            if before is not None:  # the address keeps the spelling first written, as on every write
                after = dataclasses.replace(after, email=before.email)
            by_day.setdefault(day(after.created), []).append((before, after))
        for changes in by_day.values():
            # Additions count on the day they are given: the contact's creation day in SES.
            write_contacts(conn, found_id, changes, changes[0][1].created)


def mirror_existing(db: Database, list_name: str, emails: Sequence[str]) -> dict[str, Contact]:
    """The mirrored contacts among ``emails``, by email key; an unknown list has none."""
    with db.snapshot() as conn:
        found_id = find_list_id(conn, list_name)
        if found_id is None:
            return {}
        return existing_contacts(conn, found_id, [email_key(e) for e in emails])


def mirror_remove(db: Database, list_name: str, emails: Sequence[str]) -> int:
    """Drop contacts SES no longer has; unknown ones are ignored. Returns how many were removed."""
    with db.write() as conn:
        found_id = find_list_id(conn, list_name)
        if found_id is None:
            return 0
        existing = list(existing_contacts(conn, found_id, [email_key(e) for e in emails]).values())
        remove_contacts(conn, found_id, existing)
        return len(existing)


def mirror_unlisted(
    db: Database, list_name: str, *, updated_before: float, listed: str, params: Sequence[object] = ()
) -> list[str]:
    """Addresses (as spelled) of the list's mirrored contacts last updated before ``updated_before`` whose
    email key is not among those ``listed`` returns; an unknown list has none.

    ``listed`` is an SQL query the caller owns, over its own tables, returning one column of email keys
    (NOT NULL), with ``params`` its parameters: the sync's "seen in this walk, or written since it began".
    So the contacts SES no longer has are found in one statement without the caller naming our tables.
    """
    with db.snapshot() as conn:
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
