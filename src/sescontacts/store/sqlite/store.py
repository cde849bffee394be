"""The local backend: contact lists in a SQLite file. Also the ses backend's searchable mirror.

Layout decisions, each for a measured reason:
- ``contacts`` is WITHOUT ROWID with primary key (list_id, email_key): pages ordered by address are a range
  scan of the table itself, and an upsert touches one B-tree.
- ``email_key`` is the lower-cased address (identity, see :func:`validation.email_key`); ``email`` keeps
  the spelling first written, which is what every API returns.
- Totals (all, unsubscribed) and additions per day are kept in the list's row and ``list_daily``, updated in
  the same transaction as the contacts they count, so a page view never counts a million rows.
- Topic preferences are a JSON object per contact; per-topic counts are computed on demand and cached until
  the list's ``generation`` changes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import orjson

from ...db import Database, Migrations, SqlFunction, run_script
from ...errors import AlreadyExists, BadRequest, ListNotFound, NotFound
from ...model import (
    MISSING,
    OPT_IN,
    OPT_OUT,
    Contact,
    ContactList,
    ContactPatch,
    ContactQuery,
    Count,
    ListStats,
    Outcome,
    Page,
    RowResult,
    Topic,
    TopicCounts,
    UpsertPolicy,
    apply_patch,
    attributes_match,
    same_attributes,
)
from ...validation import (
    check_attributes_data,
    check_description,
    check_email,
    check_list_name,
    check_new_list,
    check_preference_statuses,
    check_status,
    check_tags,
    check_topic_preferences,
    check_topics,
    email_key,
)
from ..base import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ExportRows
from ..tokens import TokenCodec


def _schema_v1(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE contact_lists (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            created REAL NOT NULL,
            updated REAL NOT NULL,
            contact_count INTEGER NOT NULL DEFAULT 0,
            unsubscribed_count INTEGER NOT NULL DEFAULT 0,
            generation INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE topics (
            list_id INTEGER NOT NULL REFERENCES contact_lists(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            display_name TEXT NOT NULL,
            description TEXT,
            default_status TEXT NOT NULL,
            PRIMARY KEY (list_id, name)
        ) WITHOUT ROWID;
        CREATE TABLE contacts (
            list_id INTEGER NOT NULL,
            email_key TEXT NOT NULL,
            email TEXT NOT NULL,
            unsubscribe_all INTEGER NOT NULL DEFAULT 0,
            topics TEXT,
            attributes TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (list_id, email_key)
        ) WITHOUT ROWID;
        CREATE INDEX contacts_by_updated ON contacts (list_id, updated, email_key);
        CREATE INDEX contacts_unsubscribed ON contacts (list_id, email_key) WHERE unsubscribe_all = 1;
        CREATE TABLE list_daily (
            list_id INTEGER NOT NULL,
            day TEXT NOT NULL,
            added INTEGER NOT NULL,
            PRIMARY KEY (list_id, day)
        ) WITHOUT ROWID;
        """,
    )


def _rekey_nfc(conn: sqlite3.Connection) -> None:
    """``email_key`` became NFC-normalised (see :func:`model.email_key`): re-key the rows whose key changes.

    Only non-ASCII keys can change (byte length differs from character length). A row whose new key is
    already taken (both spellings were stored before) keeps its old key, so nothing is lost.
    """
    rows = conn.execute(
        "SELECT list_id, email_key, email FROM contacts WHERE length(email_key) != length(CAST(email_key AS BLOB))"
    ).fetchall()
    for list_id, old_key, email in rows:
        new_key = email_key(email)
        if new_key != old_key:
            conn.execute(
                "UPDATE OR IGNORE contacts SET email_key = ? WHERE list_id = ? AND email_key = ?",
                (new_key, list_id, old_key),
            )


# The contact tables (the local backend's store and the ses backend's mirror); listed in schema.PRODUCT_SCHEMA.
MIGRATIONS = Migrations(
    "contacts",
    (_schema_v1, _rekey_nfc),
    functions=(SqlFunction("sescontacts_attributes_match", 3, attributes_match),),
)

_CONTACT_COLUMNS = "email, unsubscribe_all, topics, attributes, created, updated"
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


def _bulk_insert(list_id: int) -> str:
    """A plain INSERT: fails on the first address that exists."""
    return f"INSERT INTO contacts {_BULK_COLUMNS} VALUES ({int(list_id)}, ?, ?, ?, ?, ?, ?, ?)"


def _bulk_upsert(list_id: int) -> str:
    return (
        f"INSERT INTO contacts {_BULK_COLUMNS} VALUES ({int(list_id)}, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (list_id, email_key) DO UPDATE SET unsubscribe_all = excluded.unsubscribe_all, "
        "topics = excluded.topics, attributes = excluded.attributes, updated = excluded.updated"
    )


def _contact(row: Sequence[object]) -> Contact:
    email, unsubscribe_all, topics, attributes, created, updated = row
    return Contact(
        email=str(email),
        unsubscribe_all=bool(unsubscribe_all),
        topic_preferences=orjson.loads(topics) if topics else {},  # type: ignore[arg-type]
        attributes_data=attributes,  # type: ignore[arg-type]
        created=float(created),  # type: ignore[arg-type]
        updated=float(updated),  # type: ignore[arg-type]
    )


def _topics_json(preferences: object) -> str | None:
    return orjson.dumps(preferences).decode() if preferences else None


def _row(list_id: int, key: str, contact: Contact) -> tuple[object, ...]:
    """The _UPSERT parameters for one contact."""
    return (
        list_id,
        key,
        contact.email,
        contact.unsubscribe_all,
        _topics_json(contact.topic_preferences),
        contact.attributes_data,
        contact.created,
        contact.updated,
    )


def _same_object(attributes: object, text: str | None, stored: str | None) -> bool:
    """model.same_attributes(text, stored), cheaper when they differ (the common case of an update): objects
    that are not even equal as Python values cannot be the same JSON, so one parse decides; only equal ones
    (1 == 1.0 == true in Python) go to the exact comparison."""
    if attributes is None or stored is None:
        return same_attributes(text, stored)
    try:
        current = orjson.loads(stored)
    except orjson.JSONDecodeError:
        return False
    return current == attributes and same_attributes(text, stored)


# Results are immutable: the bulk paths share one instance per outcome instead of a million.
_CREATED = RowResult(Outcome.CREATED)
_UPDATED = RowResult(Outcome.UPDATED)
_UNCHANGED = RowResult(Outcome.UNCHANGED)
_KEPT_UPDATED = RowResult(Outcome.UPDATED, kept_unsubscribed=True)
_KEPT_UNCHANGED = RowResult(Outcome.UNCHANGED, kept_unsubscribed=True)
_DELETED = RowResult(Outcome.DELETED)
_NOT_FOUND = RowResult(Outcome.NOT_FOUND)


def _day(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _neutralised(column: str, triggers: str) -> str:
    """``column`` with one ``'`` before a value that starts with a trigger, or with quotes and then one (the
    formula guard of ``ContactStore.export_rows``), as an SQLite expression: the rows then go to the csv
    module without a Python step per cell. The first character decides alone, but for the rare cell that
    starts with a quote."""
    if not triggers:
        return column
    codes = "(" + ", ".join(str(ord(c)) for c in triggers) + ")"
    first_is_trigger = f"unicode({column}) IN {codes}"
    quotes_then_trigger = f"(unicode({column}) = 39 AND unicode(ltrim({column}, '''')) IN {codes})"
    return f"CASE WHEN {first_is_trigger} OR {quotes_then_trigger} THEN '''' || {column} ELSE {column} END"


def _csv_columns(contact_list: ContactList, neutralise: str) -> tuple[list[str], list[object]]:
    """The export's CSV cells as SQL, with one JSON path parameter per topic. Only the two columns whose
    text is the users' (addresses, AttributesData) are guarded; statuses and booleans never need it."""
    columns = [
        _neutralised("email", neutralise),
        "CASE WHEN unsubscribe_all THEN 'true' ELSE 'false' END",
        _neutralised("coalesce(attributes, '')", neutralise),
    ]
    params: list[object] = []
    for topic in contact_list.topic_names:
        columns.append("coalesce(json_extract(topics, ?), '')")
        params.append(_json_path(topic))
    return columns, params


_HEAD = "'emailAddress', email, 'unsubscribeAll', json(CASE WHEN unsubscribe_all THEN 'true' ELSE 'false' END)"
_TOPICS = (
    "json((SELECT json_group_array(json_object('topicName', key, 'subscriptionStatus', value)) "
    "FROM json_each(contacts.topics)))"
)
# One finished JSON line per row, built by SQLite in SES's import format: attributesData only when set, topic
# preferences as SES's [{topicName, subscriptionStatus}] list only when there are some.
_JSON_LINE = (
    f"CASE WHEN attributes IS NULL AND topics IS NULL THEN json_object({_HEAD}) "
    f"WHEN topics IS NULL THEN json_object({_HEAD}, 'attributesData', attributes) "
    f"WHEN attributes IS NULL THEN json_object({_HEAD}, 'topicPreferences', {_TOPICS}) "
    f"ELSE json_object({_HEAD}, 'attributesData', attributes, 'topicPreferences', {_TOPICS}) END"
)
EXPORT_CHUNK_ROWS = 10_000


def _chunks(cursor: sqlite3.Cursor) -> Iterator[list[tuple[str, ...]]]:
    """The cursor's rows, a chunk at a time (one fetch per 10,000 rows)."""
    while rows := cursor.fetchmany(EXPORT_CHUNK_ROWS):
        yield rows


MAX_ATTRIBUTE_INDEXES = 16
# An address search first tries the next ADDRESS_PROBE addresses in order, then collects at most
# ADDRESS_CANDIDATES matching addresses to sort (see _address_search).
ADDRESS_PROBE = 20_000
ADDRESS_CANDIDATES = 5000


def _attribute_prefilter(key: str, value: str | None) -> str | None:
    """SQL for a *necessary* condition of "attribute ``key`` equals ``value``", or None when there is none.

    A value that is not the JSON text of a number, boolean, null, array or object can only match a string
    attribute, and a string attribute's text is what SQLite's ``->>`` returns; so ``expr = value`` keeps
    every match (the exact model predicate still runs after it). The path is inlined as a literal because
    SQLite uses an expression index only for a query expression written identically. Keys a JSON path
    cannot address (a quote, a backslash, a control character) get no prefilter. Raw AttributesData with the
    same key twice (possible through the SES API) is read first-wins by SQLite and last-wins by the model, so
    text where the quoted key occurs twice is a candidate too (UNSURE), and the exact predicate decides.
    """
    if value is None or not key or any(c in '"\\' or ord(c) < 32 for c in key):
        return None
    try:
        parsed: object = orjson.loads(value)
    except orjson.JSONDecodeError:
        parsed = value
    if not isinstance(parsed, str):
        return None
    path = "'" + _json_path(key).replace("'", "''") + "'"
    quoted = "'" + f'"{key}"'.replace("'", "''") + "'"
    # SQLite 3.40 matches a path against a key's raw JSON text, so a key written with escapes (Python's
    # json.dumps writes "pr\u00e9nom" for "prénom") is invisible to it. Any text with a backslash is
    # therefore always a candidate (UNSURE), and the exact predicate decides.
    return (
        f"(CASE WHEN instr(attributes, '\\') THEN '{_UNSURE}' "
        f"WHEN instr(substr(attributes, instr(attributes, {quoted}) + {len(key) + 2}), {quoted}) THEN '{_UNSURE}' "
        f"WHEN json_valid(attributes) AND json_type(attributes, {path}) = 'text' THEN attributes ->> {path} END)"
    )


_UNSURE = "(sescontacts: unsure)"  # any value works: candidates still go through the exact predicate


def _attribute_index_name(key: str) -> str:
    """One index per searched key; the "v3" changes the name whenever the indexed expression changes, since
    ``INDEXED BY`` an index on a different expression fails the query."""
    return "contacts_attr_" + hashlib.sha256(("v3:" + key).encode()).hexdigest()[:16]


def _check_filter_status(query: ContactQuery) -> None:
    """An unknown status would silently select on "not unsubscribed"; SES answers it with an enum error."""
    if query.status is not None:
        check_status("filter.filteredStatus", query.status)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqliteContactStore:
    """``ContactStore`` on a SQLite file. ``max_lists`` is SES's one-list quota; None lifts it."""

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
    ) -> None:
        self.db = db
        self.region = region
        self.account_id = account_id
        self.max_lists = max_lists
        self._now = clock or time.time
        self._tokens = TokenCodec(db.meta("token_secret") or "")
        # list id -> ((generation, list created), counts). The creation time tells a list deleted and re-created
        # by another process (SQLite may reuse the id, and generations restart at 0) from the one cached.
        self._stats_cache: dict[int, tuple[tuple[int, float], tuple[TopicCounts, ...]]] = {}
        self._stats_lock = threading.Lock()
        # Whether the next bulk batch is tried as all-new first (see _insert_all_new).
        self._bulk_all_new = True
        self._attribute_indexes: set[str] = set()  # on-demand expression indexes known to exist

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One write transaction on ``self.db``: every store write inside it, and the caller's own
        ``self.db.write()`` on this thread (which joins it), commit together or roll back together."""
        with self.db.write():
            yield

    # -- contact lists ---------------------------------------------------------------------------------

    def _list_row(self, conn: sqlite3.Connection, name: str) -> tuple[int, ContactList]:
        row = conn.execute(
            "SELECT id, name, description, tags, created, updated FROM contact_lists WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise ListNotFound(f"List with name: {name} doesn't exist.", field="ContactListName")
        list_id = row[0]
        topics = tuple(
            Topic(name=t[0], display_name=t[1], description=t[2], default_status=t[3])
            for t in conn.execute(
                "SELECT name, display_name, description, default_status FROM topics "
                "WHERE list_id = ? ORDER BY position",
                (list_id,),
            )
        )
        tags = tuple((k, v) for k, v in orjson.loads(row[3]))
        return list_id, ContactList(
            name=row[1], topics=topics, description=row[2], tags=tags, created=row[4], updated=row[5]
        )

    def _list_id(self, conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT id FROM contact_lists WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ListNotFound(f"List with name: {name} doesn't exist.", field="ContactListName")
        return int(row[0])

    @staticmethod
    def _write_topics(conn: sqlite3.Connection, list_id: int, topics: Sequence[Topic]) -> None:
        conn.execute("DELETE FROM topics WHERE list_id = ?", (list_id,))
        conn.executemany(
            "INSERT INTO topics (list_id, position, name, display_name, description, default_status) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(list_id, i, t.name, t.display_name, t.description, t.default_status) for i, t in enumerate(topics)],
        )

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
            (count,) = conn.execute("SELECT count(*) FROM contact_lists").fetchone()
            if self.max_lists is not None and count >= self.max_lists:
                raise BadRequest(f"A maximum of {self.max_lists} Lists allowed per account.")
            if conn.execute("SELECT 1 FROM contact_lists WHERE name = ?", (name,)).fetchone():
                raise AlreadyExists(f"List with name: {name} already exists.", field="ContactListName")
            cursor = conn.execute(
                "INSERT INTO contact_lists (name, description, tags, created, updated) VALUES (?, ?, ?, ?, ?)",
                (name, description, orjson.dumps(list(tags)).decode(), now, now),
            )
            assert cursor.lastrowid is not None
            self._write_topics(conn, cursor.lastrowid, topics)
            return self._list_row(conn, name)[1]

    def get_list(self, name: str) -> ContactList:
        check_list_name(name)
        with self.db.snapshot() as conn:
            return self._list_row(conn, name)[1]

    def update_list(
        self, name: str, *, topics: Sequence[Topic] | None = None, description: str | None = None
    ) -> ContactList:
        check_list_name(name)
        if topics is not None:
            check_topics(topics)
        check_description(description)
        with self.db.write() as conn:
            list_id, current = self._list_row(conn, name)
            if topics is not None:
                self._write_topics(conn, list_id, topics)
                kept = {t.name for t in topics}
                for removed in (t.name for t in current.topics if t.name not in kept):
                    conn.execute(
                        "UPDATE contacts SET topics = nullif(json_remove(topics, ?), '{}') "
                        "WHERE list_id = ? AND topics IS NOT NULL",
                        (_json_path(removed), list_id),
                    )
            conn.execute(
                "UPDATE contact_lists SET description = coalesce(?, description), updated = ?, "
                "generation = generation + 1 WHERE id = ?",
                (description, self._now(), list_id),
            )
            return self._list_row(conn, name)[1]

    def delete_list(self, name: str) -> None:
        check_list_name(name)
        with self.db.write() as conn:
            list_id = self._list_id(conn, name)
            conn.execute("DELETE FROM contacts WHERE list_id = ?", (list_id,))
            conn.execute("DELETE FROM list_daily WHERE list_id = ?", (list_id,))
            conn.execute("DELETE FROM contact_lists WHERE id = ?", (list_id,))
        with self._stats_lock:
            self._stats_cache.pop(list_id, None)

    def list_lists(self, *, page_size: int | None = None, token: str | None = None) -> Page[ContactList]:
        size = self._page_size(page_size)
        after = str(self._tokens.decode("lists", token)[0]) if token else ""
        with self.db.snapshot() as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM contact_lists WHERE name > ? ORDER BY name LIMIT ?", (after, size + 1)
                )
            ]
            lists = [self._list_row(conn, n)[1] for n in names[:size]]
        next_token = self._tokens.encode("lists", [names[size - 1]]) if len(names) > size else None
        return Page(lists, next_token)

    def _set_tags(self, name: str, change: object) -> None:
        with self.db.write() as conn:
            row = conn.execute("SELECT id, tags FROM contact_lists WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"No ContactList present with name: {name}", field="ResourceArn")
            tags = dict(orjson.loads(row[1]))
            if isinstance(change, dict):
                tags.update(change)
            else:
                for key in change:  # type: ignore[attr-defined]
                    tags.pop(key, None)
            check_tags(list(tags.items()))
            conn.execute(
                "UPDATE contact_lists SET tags = ? WHERE id = ?",
                (orjson.dumps(list(tags.items())).decode(), row[0]),
            )

    def tag_list(self, name: str, tags: Sequence[tuple[str, str]]) -> None:
        self._set_tags(name, dict(tags))

    def untag_list(self, name: str, keys: Sequence[str]) -> None:
        self._set_tags(name, list(keys))

    def list_arn(self, name: str) -> str:
        return f"arn:aws:ses:{self.region}:{self.account_id}:contact-list/{name}"

    # -- single contacts -------------------------------------------------------------------------------

    def _fetch(self, conn: sqlite3.Connection, list_id: int, email: str) -> Contact | None:
        row = conn.execute(
            f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE list_id = ? AND email_key = ?",
            (list_id, email_key(email)),
        ).fetchone()
        return _contact(row) if row else None

    @staticmethod
    def _check_attributes(contact: Contact) -> None:
        check_attributes_data(contact.attributes_data)  # size and nesting caps, as every surface applies them

    def create_contact(self, list_name: str, contact: Contact) -> Contact:
        check_preference_statuses(contact.topic_preferences)  # SES: enums, then formats, then existence
        check_list_name(list_name)  # SES: name format (400) before list existence (404)
        check_email(contact.email)
        self._check_attributes(contact)
        now = self._now()
        with self.db.write() as conn:
            list_id, contact_list = self._list_row(conn, list_name)
            check_topic_preferences(contact_list, dict(contact.topic_preferences))
            existing = self._fetch(conn, list_id, contact.email)
            if existing is not None:
                raise AlreadyExists(f"{contact.email} already exists in List.", field="EmailAddress")
            created = Contact(
                email=contact.email,
                unsubscribe_all=contact.unsubscribe_all,
                topic_preferences=dict(contact.topic_preferences),
                attributes_data=contact.attributes_data,
                created=now,
                updated=now,
            )
            self._write(conn, list_id, [(None, created)], now)
            return created

    def get_contact(self, list_name: str, email: str) -> Contact:
        check_list_name(list_name)
        with self.db.snapshot() as conn:
            list_id = self._list_id(conn, list_name)
            contact = self._fetch(conn, list_id, email)
        if contact is None:
            raise NotFound(f"{email} doesn't exist in List.", field="EmailAddress")
        return contact

    def update_contact(self, list_name: str, contact: Contact, *, merge_topic_preferences: bool = False) -> Contact:
        check_preference_statuses(contact.topic_preferences)
        check_list_name(list_name)
        now = self._now()
        with self.db.write() as conn:
            list_id, contact_list = self._list_row(conn, list_name)
            check_topic_preferences(contact_list, dict(contact.topic_preferences))
            existing = self._fetch(conn, list_id, contact.email)
            if existing is None:
                raise NotFound(f"{contact.email} doesn't exist in List.", field="EmailAddress")
            check_attributes_data(contact.attributes_data, stored=existing.attributes_data)
            preferences = dict(existing.topic_preferences) if merge_topic_preferences else {}
            preferences.update(contact.topic_preferences)
            updated = Contact(
                email=existing.email,
                unsubscribe_all=contact.unsubscribe_all,
                topic_preferences=preferences,
                attributes_data=contact.attributes_data,
                created=existing.created,
                updated=now,
            )
            self._write(conn, list_id, [(existing, updated)], now)
            return updated

    def delete_contact(self, list_name: str, email: str) -> None:
        check_list_name(list_name)
        with self.db.write() as conn:
            list_id = self._list_id(conn, list_name)
            existing = self._fetch(conn, list_id, email)
            if existing is None:
                raise NotFound(f"{email} doesn't exist in List.", field="EmailAddress")
            self._remove(conn, list_id, [existing])

    # -- writes shared by single and bulk operations ----------------------------------------------------

    def _write(
        self,
        conn: sqlite3.Connection,
        list_id: int,
        changes: Sequence[tuple[Contact | None, Contact]],
        now: float,
        *,
        rows: Sequence[tuple[object, ...]] = (),
        added: int = 0,
        unsubscribed: int = 0,
    ) -> None:
        """Upsert (before, after) pairs and keep the list's counters in step, in the caller's transaction.

        ``rows`` are ready-made (key, email, unsubscribe_all, topics, attributes, created, updated) tuples
        (the bulk fast path) whose effect on the counters the caller passes as ``added`` and ``unsubscribed``."""
        if not changes and not rows and not added and not unsubscribed:
            return
        if changes:
            conn.executemany(_UPSERT, [_row(list_id, email_key(after.email), after) for _, after in changes])
        if rows:
            # In key order: the B-tree cursor then walks forward instead of jumping (measured: about a third
            # less CPU for a 10k-row batch of random addresses). Keys are distinct, so tuples never compare
            # past the key.
            conn.executemany(_bulk_upsert(list_id), sorted(rows))
        added += sum(1 for before, _ in changes if before is None)
        unsubscribed += sum(
            int(after.unsubscribe_all) - (int(before.unsubscribe_all) if before else 0) for before, after in changes
        )
        conn.execute(
            "UPDATE contact_lists SET contact_count = contact_count + ?, "
            "unsubscribed_count = unsubscribed_count + ?, generation = generation + 1 WHERE id = ?",
            (added, unsubscribed, list_id),
        )
        if added:
            conn.execute(
                "INSERT INTO list_daily (list_id, day, added) VALUES (?, ?, ?) "
                "ON CONFLICT (list_id, day) DO UPDATE SET added = added + excluded.added",
                (list_id, _day(now), added),
            )

    def _remove(self, conn: sqlite3.Connection, list_id: int, contacts: Sequence[Contact]) -> None:
        if not contacts:
            return
        conn.executemany(
            "DELETE FROM contacts WHERE list_id = ? AND email_key = ?",
            [(list_id, email_key(c.email)) for c in contacts],
        )
        conn.execute(
            "UPDATE contact_lists SET contact_count = contact_count - ?, "
            "unsubscribed_count = unsubscribed_count - ?, generation = generation + 1 WHERE id = ?",
            (len(contacts), sum(c.unsubscribe_all for c in contacts), list_id),
        )

    def _existing(self, conn: sqlite3.Connection, list_id: int, keys: Sequence[str]) -> dict[str, Contact]:
        rows = conn.execute(
            f"SELECT email_key, {_CONTACT_COLUMNS} FROM contacts "
            "WHERE list_id = ? AND email_key IN (SELECT value FROM json_each(?))",
            (list_id, orjson.dumps(list(keys)).decode()),
        )
        return {row[0]: _contact(row[1:]) for row in rows}

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
            list_id, contact_list = self._list_row(conn, list_name)
            topic_names = set(contact_list.topic_names)
            for patch in patches:
                for topic in patch.topic_preferences:
                    if topic not in topic_names:
                        raise NotFound(f"List: {list_name} doesn't contain Topic: {topic}")
            keys = [email_key(p.email) for p in patches]
            if len(set(keys)) == len(keys):
                # The bulk importer's common case (no address twice in the batch): rows built straight
                # from the patches, no Contact objects. Same rule as model.apply_patch (checked by tests).
                if not dry_run and self._bulk_all_new:
                    created = self._insert_all_new(conn, list_id, keys, patches, now)
                    if created is not None:
                        return created
                results, rows, added, unsubscribed = self._upsert_rows(conn, list_id, keys, patches, policy, now)
                # Optimism pays off again once a batch turns out to hold only new addresses.
                self._bulk_all_new = added == len(keys)
                if not dry_run:
                    self._write(conn, list_id, [], now, rows=rows, added=added, unsubscribed=unsubscribed)
                return results
            current: dict[str, Contact | None] = dict(self._existing(conn, list_id, keys))
            before = dict(current)
            results = []
            for key, patch in zip(keys, patches, strict=True):
                after, result = apply_patch(current.get(key), patch, policy, now)
                current[key] = after
                results.append(result)
            if not dry_run:
                changes = [
                    (before.get(key), after)
                    for key, after in current.items()
                    if after is not None and after is not before.get(key)
                ]
                self._write(conn, list_id, changes, now)
        return results

    def _insert_all_new(
        self, conn: sqlite3.Connection, list_id: int, keys: Sequence[str], patches: Sequence[ContactPatch], now: float
    ) -> list[RowResult] | None:
        """Insert a batch assuming none of its addresses exists yet (an import into an empty or growing list):
        a plain INSERT skips the lookup of existing rows, which walks the same B-tree a second time. If any
        address exists the INSERT fails, is rolled back to its savepoint, and None sends the caller the
        regular way (and off this path until a batch is all new again)."""
        rows = self._new_rows(keys, patches, now)
        conn.execute("SAVEPOINT sescontacts_bulk_insert")
        try:
            conn.executemany(_bulk_insert(list_id), sorted(rows))
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK TO sescontacts_bulk_insert")
            conn.execute("RELEASE sescontacts_bulk_insert")
            self._bulk_all_new = False
            return None
        conn.execute("RELEASE sescontacts_bulk_insert")
        self._write(conn, list_id, [], now, added=len(rows), unsubscribed=sum(1 for r in rows if r[2]))
        return [_CREATED] * len(rows)

    @staticmethod
    def _new_rows(keys: Sequence[str], patches: Sequence[ContactPatch], now: float) -> list[tuple[object, ...]]:
        """Rows for addresses that do not exist yet: apply_patch's rule for a new contact (MISSING
        unsubscribe -> False, MISSING/None attributes -> none)."""
        dumps = orjson.dumps
        return [
            (
                key,
                patch.email,
                False if (u := patch.unsubscribe_all) is MISSING else bool(u),
                dumps(t).decode() if (t := patch.topic_preferences) else None,
                None if (a := patch.attributes) is MISSING or a is None else dumps(a).decode(),
                now,
                now,
            )
            for key, patch in zip(keys, patches, strict=True)
        ]

    def _upsert_rows(
        self,
        conn: sqlite3.Connection,
        list_id: int,
        keys: Sequence[str],
        patches: Sequence[ContactPatch],
        policy: UpsertPolicy,
        now: float,
    ) -> tuple[list[RowResult], list[tuple[object, ...]], int, int]:
        """apply_patch for a batch of distinct addresses, on raw rows: (results, rows to upsert, contacts
        added, change in unsubscribed). Falls back to apply_patch for the rare cases (merged attributes)."""
        # The batch's existing rows as ONE JSON value: one step instead of one per row (measured: a re-import
        # of unchanged rows took half the time), and no per-row Python objects until they are needed.
        (found,) = conn.execute(
            f"SELECT json_group_array(json_array(email_key, {_CONTACT_COLUMNS})) FROM contacts "
            "WHERE list_id = ? AND email_key IN (SELECT value FROM json_each(?))",
            (list_id, orjson.dumps(list(keys)).decode()),
        ).fetchone()
        existing = {row[0]: tuple(row[1:]) for row in orjson.loads(found)}
        dumps = orjson.dumps
        if not existing:  # every address is new: one comprehension instead of the loop below
            new_rows = self._new_rows(keys, patches, now)
            return [_CREATED] * len(new_rows), new_rows, len(new_rows), sum(1 for r in new_rows if r[2])
        results: list[RowResult] = []
        append = results.append
        rows: list[tuple[object, ...]] = []
        added = unsubscribed = 0
        for key, patch in zip(keys, patches, strict=True):
            old = existing.get(key)
            unsubscribe = patch.unsubscribe_all
            attributes = patch.attributes
            if old is None:
                unsubscribe = False if unsubscribe is MISSING else bool(unsubscribe)
                data = None if attributes is MISSING or attributes is None else dumps(attributes).decode()
                topics = _topics_json(patch.topic_preferences)
                rows.append((key, patch.email, unsubscribe, topics, data, now, now))
                added += 1
                unsubscribed += unsubscribe
                append(_CREATED)
                continue
            if policy.merge_attributes and attributes is not MISSING and attributes is not None:
                contact = _contact(old)
                after, result = apply_patch(contact, patch, policy, now)
                if after is not contact:
                    rows.append(_row(list_id, key, after)[1:])
                    unsubscribed += int(after.unsubscribe_all) - int(contact.unsubscribe_all)
                append(result)
                continue
            email, old_unsubscribe, old_topics, old_data, created, _updated = old
            was_unsubscribed = bool(old_unsubscribe)
            new_unsubscribe = was_unsubscribed
            kept = False
            if unsubscribe is not MISSING:
                if was_unsubscribed and not unsubscribe and not policy.resubscribe:
                    kept = True
                else:
                    new_unsubscribe = bool(unsubscribe)
            data = old_data
            if attributes is not MISSING:
                text = None if attributes is None else dumps(attributes).decode()
                if text != old_data and not _same_object(attributes, text, old_data):
                    data = text
            topics = old_topics
            if patch.topic_preferences:
                preferences = orjson.loads(old_topics) if old_topics else {}
                merged = {**preferences, **patch.topic_preferences}
                if merged != preferences:
                    topics = _topics_json(merged)
            if new_unsubscribe == was_unsubscribed and data is old_data and topics is old_topics:
                append(_KEPT_UNCHANGED if kept else _UNCHANGED)
                continue
            rows.append((key, email, new_unsubscribe, topics, data, created, now))
            unsubscribed += int(new_unsubscribe) - int(was_unsubscribed)
            append(_KEPT_UPDATED if kept else _UPDATED)
        return results, rows, added, unsubscribed

    def delete_contacts(self, list_name: str, emails: Sequence[str], *, dry_run: bool = False) -> list[RowResult]:
        with self.db.snapshot() if dry_run else self.db.write() as conn:
            list_id = self._list_id(conn, list_name)
            keys = [email_key(e) for e in emails]
            # Only what the counters need (address and unsubscribe flag), not whole contacts.
            (found,) = conn.execute(  # one JSON value, not one fetched row each (see _upsert_rows)
                "SELECT json_group_object(email_key, unsubscribe_all) FROM contacts "
                "WHERE list_id = ? AND email_key IN (SELECT value FROM json_each(?))",
                (list_id, orjson.dumps(keys).decode()),
            ).fetchone()
            existing: dict[str, int] = orjson.loads(found)
            results: list[RowResult] = []
            seen: set[str] = set()
            for key in keys:
                found = key in existing and key not in seen
                seen.add(key)
                results.append(_DELETED if found else _NOT_FOUND)
            if not dry_run and existing:
                # One statement for the batch, in key order.
                conn.execute(
                    "DELETE FROM contacts WHERE list_id = ? AND email_key IN (SELECT value FROM json_each(?))",
                    (list_id, orjson.dumps(sorted(existing)).decode()),
                )
                conn.execute(
                    "UPDATE contact_lists SET contact_count = contact_count - ?, "
                    "unsubscribed_count = unsubscribed_count - ?, generation = generation + 1 WHERE id = ?",
                    (len(existing), sum(1 for v in existing.values() if v), list_id),
                )
        return results

    # -- export ----------------------------------------------------------------------------------------

    @contextmanager
    def export_rows(
        self, list_name: str, query: ContactQuery, fmt: Literal["csv", "json"], *, neutralise: str = ""
    ) -> Iterator[ExportRows | None]:
        """Rows rendered by SQLite itself in one read transaction (a consistent snapshot), so a million rows
        cost about what the ``sqlite3`` shell's own CSV export costs: Python only moves finished rows."""
        with self.db.snapshot() as conn:
            list_id, contact_list = self._list_row(conn, list_name)
            where, params = self._where(list_id, contact_list, query)
            order = "updated DESC, email_key DESC" if query.sort == "updated" else "email_key"
            if fmt == "csv":
                columns, column_params = _csv_columns(contact_list, neutralise)
                sql = f"SELECT {', '.join(columns)} FROM contacts WHERE {where} ORDER BY {order}"
                cursor = conn.execute(sql, (*column_params, *params))
            else:
                cursor = conn.execute(f"SELECT {_JSON_LINE} FROM contacts WHERE {where} ORDER BY {order}", params)
            yield ExportRows(contact_list, _chunks(cursor))

    # -- the ses backend's mirror: SES's state written as-is --------------------------------------------

    def mirror_list(self, contact_list: ContactList) -> None:
        """Store a list exactly as SES returned it (its timestamps included), creating it when new.

        Topics replace the stored ones; preferences for removed topics are dropped, as on ``update_list``.
        """
        with self.db.write() as conn:
            row = conn.execute("SELECT id FROM contact_lists WHERE name = ?", (contact_list.name,)).fetchone()
            tags = orjson.dumps(list(contact_list.tags)).decode()
            if row is None:
                cursor = conn.execute(
                    "INSERT INTO contact_lists (name, description, tags, created, updated) VALUES (?, ?, ?, ?, ?)",
                    (contact_list.name, contact_list.description, tags, contact_list.created, contact_list.updated),
                )
                assert cursor.lastrowid is not None
                self._write_topics(conn, cursor.lastrowid, contact_list.topics)
                return
            list_id, current = self._list_row(conn, contact_list.name)
            if current == contact_list:
                return
            self._write_topics(conn, list_id, contact_list.topics)
            kept = set(contact_list.topic_names)
            for removed in (t.name for t in current.topics if t.name not in kept):
                conn.execute(
                    "UPDATE contacts SET topics = nullif(json_remove(topics, ?), '{}') "
                    "WHERE list_id = ? AND topics IS NOT NULL",
                    (_json_path(removed), list_id),
                )
            conn.execute(
                "UPDATE contact_lists SET description = ?, tags = ?, created = ?, updated = ?, "
                "generation = generation + 1 WHERE id = ?",
                (contact_list.description, tags, contact_list.created, contact_list.updated, list_id),
            )

    def mirror_contacts(self, list_name: str, contacts: Sequence[Contact], *, force: bool = False) -> None:
        """Upsert contacts with the timestamps they carry (SES's), keeping counters and daily additions right.

        A copy older than the mirror's is skipped (a sync page read before a write), unless ``force``."""
        if not contacts:
            return
        with self.db.write() as conn:
            list_id = self._list_id(conn, list_name)
            latest = {email_key(c.email): c for c in contacts}
            existing = self._existing(conn, list_id, list(latest))
            by_day: dict[str, list[tuple[Contact | None, Contact]]] = {}
            for key, after in latest.items():
                before = existing.get(key)
                if before is not None and (
                    (before.updated > after.updated and not force)
                    or (before.same_state(after) and before.updated == after.updated)
                ):
                    continue  # already current, or newer than this copy (a sync page read before a write)
                if before is not None:  # the address keeps the spelling first written, as in _write
                    after = dataclasses.replace(after, email=before.email)
                by_day.setdefault(_day(after.created), []).append((before, after))
            for changes in by_day.values():
                # _write counts additions on the day it is given: the contact's creation day in SES.
                self._write(conn, list_id, changes, changes[0][1].created)

    def mirror_existing(self, list_name: str, emails: Sequence[str]) -> dict[str, Contact]:
        """The mirrored contacts among ``emails``, by email key; an unknown list has none."""
        with self.db.snapshot() as conn:
            row = conn.execute("SELECT id FROM contact_lists WHERE name = ?", (list_name,)).fetchone()
            if row is None:
                return {}
            return self._existing(conn, row[0], [email_key(e) for e in emails])

    def mirror_remove(self, list_name: str, emails: Sequence[str]) -> int:
        """Drop contacts SES no longer has; unknown ones are ignored. Returns how many were removed."""
        with self.db.write() as conn:
            row = conn.execute("SELECT id FROM contact_lists WHERE name = ?", (list_name,)).fetchone()
            if row is None:
                return 0
            existing = list(self._existing(conn, row[0], [email_key(e) for e in emails]).values())
            self._remove(conn, row[0], existing)
            return len(existing)

    # -- pages, counts and stats -----------------------------------------------------------------------

    @staticmethod
    def _page_size(page_size: int | None) -> int:
        if page_size is None:
            return DEFAULT_PAGE_SIZE
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise BadRequest(f"PageSize must be between 1 and {MAX_PAGE_SIZE}.", field="PageSize")
        return page_size

    @staticmethod
    def _where(list_id: int, contact_list: ContactList, query: ContactQuery) -> tuple[str, list[object]]:
        clauses = ["list_id = ?"]
        params: list[object] = [list_id]
        if query.topic is not None:
            topic = contact_list.topic(query.topic.topic)
            if topic is None:
                raise NotFound(
                    f"List: {contact_list.name} doesn't contain Topic: {query.topic.topic}",
                    field="TopicFilter",
                )
            default = topic.default_status if query.topic.use_default else None
            effective = "(CASE WHEN unsubscribe_all THEN 'OPT_OUT' ELSE coalesce(json_extract(topics, ?), ?) END)"
            params += [_json_path(topic.name), default]
            if query.status is not None:
                clauses.append(f"{effective} = ?")
                params.append(query.status)
            else:
                clauses.append(f"{effective} IS NOT NULL")
        elif query.status is not None:
            clauses.append("unsubscribe_all = ?")
            params.append(1 if query.status == OPT_OUT else 0)
        if query.email_contains:
            clauses.append("email_key LIKE ? ESCAPE '\\'")
            params.append(f"%{_like_escape(email_key(query.email_contains))}%")
        if query.domain:
            clauses.append("email_key LIKE ? ESCAPE '\\'")
            params.append(f"%@{_like_escape(email_key(query.domain).lstrip('@'))}")
        if query.attribute_key:
            # The model's own predicate, run inside SQLite: JSON paths cannot address every key (a '"' in it),
            # and SQLite's JSON differs from the model's on duplicate keys and number spellings. Measured at
            # about 0.8 us a row, against 0.5 us for json_type: exactness is worth it.
            prefilter = _attribute_prefilter(query.attribute_key, query.attribute_value)
            if prefilter is not None:  # a necessary condition an index serves; the exact test follows
                clauses.append(f"{prefilter} IN (?, ?)")
                params += [query.attribute_value, _UNSURE]
            clauses.append("attributes IS NOT NULL AND sescontacts_attributes_match(attributes, ?, ?)")
            params += [query.attribute_key, query.attribute_value]
        return " AND ".join(clauses), params

    def _ensure_attribute_index(self, query: ContactQuery) -> None:
        """Build, on the first ``key = value`` search for a key, an index that turns it into a range scan.

        One index per searched key (at most ``MAX_ATTRIBUTE_INDEXES``; later keys are scanned). Building it
        reads the list once (about a second per million contacts) under the write lock; after that a search
        costs an index range, and every write pays a little to keep the index current.
        """
        expression = _attribute_prefilter(query.attribute_key or "", query.attribute_value)
        if expression is None:
            return
        name = _attribute_index_name(query.attribute_key or "")
        if name in self._attribute_indexes:
            return
        reader = self.db.reader()
        if reader.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone():
            self._attribute_indexes.add(name)
            return
        (existing,) = reader.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'contacts!_attr!_%' ESCAPE '!'"
        ).fetchone()
        if existing >= MAX_ATTRIBUTE_INDEXES:
            return
        with self.db.write() as conn:
            conn.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON contacts (list_id, {expression}, email_key)')
        self._attribute_indexes.add(name)

    def _index_hint(self, query: ContactQuery) -> str:
        """``INDEXED BY`` the key's attribute index when it exists. Without statistics (no ANALYZE) SQLite
        prefers the primary key, which satisfies ORDER BY, and would scan the list to find a rare value."""
        if _attribute_prefilter(query.attribute_key or "", query.attribute_value) is None:
            return ""
        name = _attribute_index_name(query.attribute_key or "")
        return f' INDEXED BY "{name}"' if name in self._attribute_indexes else ""

    def _scope(self, list_name: str, query: ContactQuery) -> str:
        return f"contacts:{list_name}:{query!r}"

    def list_contacts(
        self,
        list_name: str,
        query: ContactQuery = ContactQuery(),  # noqa: B008
        *,
        page_size: int | None = None,
        token: str | None = None,
    ) -> Page[Contact]:
        check_list_name(list_name)
        _check_filter_status(query)
        size = self._page_size(page_size)
        scope = self._scope(list_name, query)
        position = self._tokens.decode(scope, token) if token else None
        self._ensure_attribute_index(query)
        with self.db.snapshot() as conn:
            list_id, contact_list = self._list_row(conn, list_name)
            where, params = self._where(list_id, contact_list, query)
            if query.sort == "updated":
                if position:
                    where += " AND (updated, email_key) < (?, ?)"
                    params += position
                order = "updated DESC, email_key DESC"
                columns = f"{_CONTACT_COLUMNS}, email_key"
            else:
                if position:
                    where += " AND email_key > ?"
                    params += position
                order = "email_key"
                columns = f"{_CONTACT_COLUMNS}, email_key"
            rows = self._address_search(conn, list_id, query, where, params, columns, size + 1, position)
            if rows is None:
                rows = conn.execute(
                    f"SELECT {columns} FROM contacts{self._index_hint(query)} WHERE {where} ORDER BY {order} LIMIT ?",
                    (*params, size + 1),
                ).fetchall()
        contacts = [_contact(r[:6]) for r in rows[:size]]
        next_token = None
        if len(rows) > size:
            last = rows[size - 1]
            key_position: list[object] = [last[5], last[6]] if query.sort == "updated" else [last[6]]
            next_token = self._tokens.encode(scope, key_position)
        return Page(contacts, next_token)

    @staticmethod
    def _address_only(query: ContactQuery) -> bool:
        """A search on the address alone: every column it reads is in the narrow ``contacts_by_updated``."""
        return bool(query.email_contains or query.domain) and not (query.status or query.topic or query.attribute_key)

    def _address_search(
        self,
        conn: sqlite3.Connection,
        list_id: int,
        query: ContactQuery,
        where: str,
        params: list[object],
        columns: str,
        limit: int,
        position: list[object] | None,
    ) -> list[Any] | None:
        """A substring search on addresses, run over ``contacts_by_updated`` instead of the table.

        ``LIKE '%x%'`` can only be answered by reading every address; the index holds just (list, updated,
        address), several times fewer pages than rows with their attributes, so the unavoidable scan is
        shorter. In ``updated`` order the index order is the page order. In address order, a probe of the
        next ADDRESS_PROBE addresses answers a dense search at once; otherwise the matching addresses are
        collected (up to ADDRESS_CANDIDATES) and sorted; more than that gets None (the plain scan in address
        order, which such a search fills early).
        """
        if not self._address_only(query):
            return None
        narrow = "FROM contacts INDEXED BY contacts_by_updated"
        if query.sort != "updated":
            after = " AND email_key > ?" if position else ""
            window = f"SELECT * FROM contacts WHERE list_id = ?{after} ORDER BY email_key LIMIT {ADDRESS_PROBE}"
            # No ORDER BY outside: it would sort the whole window; the window comes in address order, and the
            # few rows kept are sorted here to be sure of it.
            probe = conn.execute(
                f"SELECT {columns} FROM ({window}) WHERE {where} LIMIT ?",
                (list_id, *(position or ()), *params, limit),
            ).fetchall()
            if len(probe) >= limit:
                return sorted(probe, key=lambda row: row[-1])  # the first matches lie in the window: the page
        if query.sort == "updated":
            keys = [
                r[0]
                for r in conn.execute(
                    f"SELECT email_key {narrow} WHERE {where} ORDER BY updated DESC, email_key DESC LIMIT ?",
                    (*params, limit),
                )
            ]
            order = "updated DESC, email_key DESC"
        else:
            keys = [
                r[0]
                for r in conn.execute(
                    f"SELECT email_key {narrow} WHERE {where} LIMIT ?", (*params, ADDRESS_CANDIDATES + 1)
                )
            ]
            if len(keys) > ADDRESS_CANDIDATES:
                return None
            keys = sorted(keys)[:limit]
            order = "email_key"
        if not keys:
            return []
        return conn.execute(
            f"SELECT {columns} FROM contacts WHERE list_id = ? AND email_key IN (SELECT value FROM json_each(?)) "
            f"ORDER BY {order}",
            (list_id, orjson.dumps(keys).decode()),
        ).fetchall()

    def count_contacts(self, list_name: str, query: ContactQuery, *, cap: int | None = None) -> Count:
        _check_filter_status(query)
        self._ensure_attribute_index(query)
        with self.db.snapshot() as conn:
            row = conn.execute(
                "SELECT id, contact_count, unsubscribed_count FROM contact_lists WHERE name = ?", (list_name,)
            ).fetchone()
            if row is None:
                raise ListNotFound(f"List with name: {list_name} doesn't exist.", field="ContactListName")
            list_id, total, unsubscribed = row
            plain = ContactQuery(status=query.status)
            if query == plain or query == ContactQuery(status=query.status, sort="updated"):
                if query.status is None:
                    return Count(total)
                return Count(unsubscribed if query.status == OPT_OUT else total - unsubscribed)
            contact_list = self._list_row(conn, list_name)[1]
            where, params = self._where(list_id, contact_list, query)
            # An address search counts over the narrow index: the same scan, over fewer pages.
            hint = " INDEXED BY contacts_by_updated" if self._address_only(query) else self._index_hint(query)
            if cap is None:
                (n,) = conn.execute(f"SELECT count(*) FROM contacts{hint} WHERE {where}", params).fetchone()
                return Count(n)
            (n,) = conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM contacts{hint} WHERE {where} LIMIT ?)",
                (*params, cap + 1),
            ).fetchone()
        return Count(min(n, cap), exact=n <= cap)

    def list_stats(self, list_name: str) -> ListStats:
        with self.db.snapshot() as conn:
            row = conn.execute(
                "SELECT id, contact_count, unsubscribed_count, generation FROM contact_lists WHERE name = ?",
                (list_name,),
            ).fetchone()
            if row is None:
                raise ListNotFound(f"List with name: {list_name} doesn't exist.", field="ContactListName")
            list_id, total, unsubscribed, generation = row
            contact_list = self._list_row(conn, list_name)[1]
            days = tuple(
                (d, n)
                for d, n in conn.execute(
                    "SELECT day, added FROM list_daily WHERE list_id = ? ORDER BY day DESC LIMIT 90",
                    (list_id,),
                )
            )[::-1]
            version = (generation, contact_list.created)
            with self._stats_lock:
                cached = self._stats_cache.get(list_id)
            if cached is not None and cached[0] == version:
                topic_counts = cached[1]
            else:
                topic_counts = self._topic_counts(conn, list_id, contact_list, total, unsubscribed)
                with self._stats_lock:
                    self._stats_cache[list_id] = (version, topic_counts)
        return ListStats(total, unsubscribed, topic_counts, days)

    @staticmethod
    def _topic_counts(
        conn: sqlite3.Connection, list_id: int, contact_list: ContactList, total: int, unsubscribed: int
    ) -> tuple[TopicCounts, ...]:
        """Effective opt-in/opt-out per topic, defaults included, as SES would send to them."""
        if not contact_list.topics:
            return ()
        explicit: dict[tuple[str, str], int] = {}
        for topic, status, n in conn.execute(
            "SELECT j.key, j.value, count(*) FROM contacts, json_each(contacts.topics) AS j "
            "WHERE list_id = ? AND topics IS NOT NULL AND unsubscribe_all = 0 GROUP BY j.key, j.value",
            (list_id,),
        ):
            explicit[(topic, status)] = n
        subscribed = total - unsubscribed
        counts = []
        for topic in contact_list.topics:
            opt_in = explicit.get((topic.name, OPT_IN), 0)
            opt_out = explicit.get((topic.name, OPT_OUT), 0)
            undecided = subscribed - opt_in - opt_out
            if topic.default_status == OPT_IN:
                opt_in += undecided
            else:
                opt_out += undecided
            counts.append(TopicCounts(topic.name, opt_in, opt_out + unsubscribed))
        return tuple(counts)
