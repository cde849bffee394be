"""Contact writes in the caller's transaction: single contacts, and the counter-keeping upsert and removal
that single, bulk and mirror writes share.

Every write keeps the list's row in step (contact and unsubscribed counts, ``generation``) and counts
additions per day in ``list_daily``, in the same transaction as the contacts it changes.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping, Sequence
from operator import itemgetter

import orjson

from ...errors import AlreadyExists, NotFound
from ...model import SPELLING_SEPARATOR, AddressIdentity, Contact, ContactList, email_key
from ...validation import apply_update, check_topic_preferences
from . import history_record, search_index
from .rows import CONTACT_COLUMNS, contact_from_row, day, topics_json

_UPSERT = (
    "INSERT INTO contacts (list_id, email_key, email, unsubscribe_all, topics, attributes, created, updated) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (list_id, email_key) DO UPDATE SET "
    "unsubscribe_all = excluded.unsubscribe_all, topics = excluded.topics, "
    "attributes = excluded.attributes, updated = excluded.updated"
)
# Bulk rows are (email_key, email, unsubscribe_all, topics, attributes, created, updated) with the list id
# written into the statement (an integer from the database): executemany then binds the tuples as they are.
# (Measured against one statement over a JSON array of the batch: executemany costs ~30% less SQLite time, as
# long as no other Python thread competes for the GIL while it runs; the importer parses in the same thread.)
_BULK_COLUMNS = "(list_id, email_key, email, unsubscribe_all, topics, attributes, created, updated)"
# A write of this many contacts or more is a bulk write to the search index (see search_index.before_bulk_write).
BULK_ROWS = 100


def bulk_insert_sql(list_id: int) -> str:
    """A plain INSERT of bulk rows: fails on the first address that exists."""
    return f"INSERT INTO contacts {_BULK_COLUMNS} VALUES ({int(list_id)}, ?, ?, ?, ?, ?, ?, ?)"


def _bulk_upsert_sql(list_id: int) -> str:
    return (
        f"INSERT INTO contacts {_BULK_COLUMNS} VALUES ({int(list_id)}, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (list_id, email_key) DO UPDATE SET unsubscribe_all = excluded.unsubscribe_all, "
        "topics = excluded.topics, attributes = excluded.attributes, updated = excluded.updated"
    )


def _last_batch_sql(batch_change: int | None) -> str:
    """The SET clause's part that points each contact a batch updates at the batch's recorded row."""
    return "" if batch_change is None else f", last_batch = {int(batch_change)}"


def _bulk_update_sql(list_id: int, batch_change: int | None) -> str:
    return (
        "UPDATE contacts SET unsubscribe_all = ?, topics = ?, attributes = ?, updated = ?"
        f"{_last_batch_sql(batch_change)} WHERE list_id = {int(list_id)} AND email_key = ?"
    )


def contact_row(key: str, contact: Contact) -> tuple[object, ...]:
    """A bulk row for ``contact``: (email_key, email, unsubscribe_all, topics, attributes, created, updated)."""
    return (
        key,
        contact.email,
        int(contact.unsubscribe_all),
        topics_json(contact.topic_preferences),
        contact.attributes_data,
        contact.created,
        contact.updated,
    )


def contact_not_found(email: str) -> NotFound:
    """SES's error for an address that is not on an existing list."""
    return NotFound(f"{email} doesn't exist in List.", field="EmailAddress")


def fetch_contact(conn: sqlite3.Connection, list_id: int, email: str, identity: AddressIdentity) -> Contact | None:
    """The stored contact ``email`` is under ``identity``, or None."""
    row = conn.execute(
        f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE list_id = ? AND email_key = ?",
        (list_id, identity.key(email)),
    ).fetchone()
    return contact_from_row(row) if row else None


def spellings(
    conn: sqlite3.Connection, list_id: int, emails: Sequence[str], identity: AddressIdentity
) -> dict[str, Contact]:
    """The stored contacts, by key, whose address is one of ``emails`` but for case and Unicode composition
    (:func:`model.email_key`): under the folded identity at most one each, under the exact one every spelling
    stored (one range of keys, see :func:`model.exact_email_key`)."""
    folded = sorted({email_key(e) for e in emails})
    if identity.name == "folded":
        return existing_contacts(conn, list_id, folded)
    after = chr(ord(SPELLING_SEPARATOR) + 1)
    bounds = [[f + SPELLING_SEPARATOR, f + after] for f in folded]
    # CROSS JOIN keeps the bounds outside: one key range each (left to itself, SQLite scanned the whole list
    # per bound, measured at ~150 ms a bound on 200,000 contacts).
    rows = conn.execute(
        f"SELECT email_key, {CONTACT_COLUMNS} FROM json_each(?) AS b CROSS JOIN contacts "
        "ON list_id = ? AND email_key > b.value ->> 0 AND email_key < b.value ->> 1",
        (orjson.dumps(bounds).decode(), list_id),
    )
    return {row[0]: contact_from_row(row[1:]) for row in rows}


def existing_contacts(conn: sqlite3.Connection, list_id: int, keys: Sequence[str]) -> dict[str, Contact]:
    """The stored contacts among ``keys`` (email keys), by key."""
    rows = conn.execute(
        f"SELECT email_key, {CONTACT_COLUMNS} FROM contacts "
        "WHERE list_id = ? AND email_key IN (SELECT value FROM json_each(?))",
        (list_id, orjson.dumps(list(keys)).decode()),
    )
    return {row[0]: contact_from_row(row[1:]) for row in rows}


def write_contacts(
    conn: sqlite3.Connection,
    list_id: int,
    changes: Sequence[tuple[str, Contact | None, Contact]],
    now: float,
    *,
    rows: Sequence[tuple[object, ...]] = (),
    updates: Sequence[tuple[object, ...]] = (),
    attribute_updates: Sequence[tuple[object, ...]] = (),
    added: int = 0,
    unsubscribed: int = 0,
    turned_unsubscribed: int = 0,
    ordered: bool = False,
    batch_change: int | None = None,
) -> None:
    """Upsert (key, before, after) triples and keep the list's counters in step, in the caller's transaction;
    additions count on ``now``'s day.

    ``rows`` are ready-made bulk rows (see :func:`contact_row`, the bulk fast path; ``ordered``: already in key
    order) and ``updates`` rows the caller knows exist, as (unsubscribe_all, topics, attributes, updated,
    email_key): one UPDATE each, where an upsert would first try the insert; ``attribute_updates`` those of
    them that change only the attributes, as (attributes, updated, email_key) (an UPDATE that sets the flag
    maintains the partial index on it for every row: measured ~1.3 us a row, 15% of the statement). The caller
    passes their effect on the counters as ``added``, ``unsubscribed`` (the change in how many are unsubscribed
    from all) and ``turned_unsubscribed`` (existing contacts that turned it on).

    ``changes`` are recorded in the history here; ``rows`` and ``updates`` are the bulk path's, which records
    them itself from what it read (``bulk.py``): ``batch_change`` the row that records ``updates`` and
    ``attribute_updates``, which their contacts then point at (``history_record`` says why)."""
    if not changes and not rows and not updates and not attribute_updates and not added and not unsubscribed:
        return
    if len(changes) + len(rows) >= BULK_ROWS:
        search_index.before_bulk_write(conn, list_id, len(changes) + len(rows))
    if changes:
        conn.executemany(_UPSERT, [(list_id, *contact_row(key, after)) for key, _, after in changes])
        history_record.record_changes(conn, list_id, changes, history_record.actor_id(conn))
    if rows:
        # In key order: the B-tree cursor then walks forward instead of jumping (measured: about a third
        # less CPU for a 10k-row batch of random addresses). Keys are distinct, so tuples never compare
        # past the key.
        conn.executemany(_bulk_upsert_sql(list_id), rows if ordered else sorted(rows))
    if updates:
        conn.executemany(
            _bulk_update_sql(list_id, batch_change), updates if ordered else sorted(updates, key=itemgetter(4))
        )
    if attribute_updates:
        conn.executemany(
            f"UPDATE contacts SET attributes = ?, updated = ?{_last_batch_sql(batch_change)} "
            f"WHERE list_id = {int(list_id)} AND email_key = ?",
            attribute_updates if ordered else sorted(attribute_updates, key=itemgetter(2)),
        )
    for _, before, after in changes:
        if before is None:
            added += 1
            unsubscribed += after.unsubscribe_all
        elif after.unsubscribe_all != before.unsubscribe_all:
            unsubscribed += 1 if after.unsubscribe_all else -1
            turned_unsubscribed += after.unsubscribe_all
    count(conn, list_id, now, added=added, unsubscribed=unsubscribed, turned_unsubscribed=turned_unsubscribed)


def remove_contacts(conn: sqlite3.Connection, list_id: int, contacts: Mapping[str, Contact], now: float) -> None:
    """Delete stored contacts (by key) and take them off the list's counters (removed on ``now``'s day)."""
    if not contacts:
        return
    if len(contacts) >= BULK_ROWS:
        search_index.before_bulk_write(conn, list_id, len(contacts))
    history_record.record_removed(conn, list_id, list(contacts), now, history_record.actor_id(conn))
    conn.executemany("DELETE FROM contacts WHERE list_id = ? AND email_key = ?", [(list_id, key) for key in contacts])
    count(conn, list_id, now, removed=len(contacts), unsubscribed=-sum(c.unsubscribe_all for c in contacts.values()))


def count(
    conn: sqlite3.Connection,
    list_id: int,
    now: float,
    *,
    added: int = 0,
    removed: int = 0,
    unsubscribed: int = 0,
    turned_unsubscribed: int = 0,
) -> None:
    """Keep the list's counters and ``now``'s day in ``list_daily`` in step with a write: ``added`` and
    ``removed`` contacts, ``unsubscribed`` the change in how many are unsubscribed from all, and
    ``turned_unsubscribed`` existing contacts that turned it on (what the overview shows per day)."""
    conn.execute(
        "UPDATE contact_lists SET contact_count = contact_count + ?, "
        "unsubscribed_count = unsubscribed_count + ?, generation = generation + 1 WHERE id = ?",
        (added - removed, unsubscribed, list_id),
    )
    if added or removed or turned_unsubscribed:
        conn.execute(
            "INSERT INTO list_daily (list_id, day, added, removed, unsubscribed) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (list_id, day) DO UPDATE SET added = added + excluded.added, "
            "removed = removed + excluded.removed, unsubscribed = unsubscribed + excluded.unsubscribed",
            (list_id, day(now), added, removed, turned_unsubscribed),
        )


# -- single contacts (the store has checked the request and found the list) ---------------------------------


def create_contact(
    conn: sqlite3.Connection,
    list_id: int,
    contact_list: ContactList,
    contact: Contact,
    now: float,
    identity: AddressIdentity,
) -> Contact:
    """Store a new contact (CreateContact); :class:`AlreadyExists` when its address is on the list."""
    check_topic_preferences(contact_list, dict(contact.topic_preferences))
    if fetch_contact(conn, list_id, contact.email, identity) is not None:
        raise AlreadyExists(f"{contact.email} already exists in List.", field="EmailAddress")
    created = Contact(
        email=contact.email,
        unsubscribe_all=contact.unsubscribe_all,
        topic_preferences=dict(contact.topic_preferences),
        attributes_data=contact.attributes_data,
        created=now,
        updated=now,
    )
    write_contacts(conn, list_id, [(identity.key(created.email), None, created)], now)
    return created


def update_contact(
    conn: sqlite3.Connection,
    list_id: int,
    contact_list: ContactList,
    contact: Contact,
    now: float,
    identity: AddressIdentity,
    *,
    merge_topic_preferences: bool,
) -> Contact:
    """Replace a stored contact's state with ``contact``'s (UpdateContact); :class:`NotFound` when absent.
    The address keeps the spelling first written, and the creation time stays."""
    check_topic_preferences(contact_list, dict(contact.topic_preferences))
    existing = fetch_contact(conn, list_id, contact.email, identity)
    if existing is None:
        raise contact_not_found(contact.email)
    updated = dataclasses.replace(
        apply_update(existing, contact, merge_topic_preferences=merge_topic_preferences), updated=now
    )
    write_contacts(conn, list_id, [(identity.key(contact.email), existing, updated)], now)
    return updated


def delete_contact(conn: sqlite3.Connection, list_id: int, email: str, identity: AddressIdentity, now: float) -> None:
    """Delete one stored contact (DeleteContact); :class:`NotFound` when absent."""
    existing = fetch_contact(conn, list_id, email, identity)
    if existing is None:
        raise contact_not_found(email)
    remove_contacts(conn, list_id, {identity.key(email): existing}, now)
