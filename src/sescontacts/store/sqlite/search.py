"""Queries on one list: a ``ContactQuery`` as a WHERE clause, keyset pages, address and attribute search,
and counts.

Address and attribute searches have their own ways to read less than the whole list (see
:func:`_address_search` and :class:`AttributeIndexes`); whichever is taken, the rows and their order are
those of the plain WHERE clause.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from ...db import Database
from ...errors import NotFound
from ...model import OPT_OUT, SPELLING_SEPARATOR, AddressIdentity, Contact, ContactList, ContactQuery, Count, email_key
from ...validation import check_status
from .rows import CONTACT_COLUMNS, contact_from_row, json_path

MAX_ATTRIBUTE_INDEXES = 16
# An address search first tries the next ADDRESS_PROBE addresses in order, then collects at most
# ADDRESS_CANDIDATES matching addresses to sort (see _address_search). Read at each call (tests shrink them).
ADDRESS_PROBE = 20_000
ADDRESS_CANDIDATES = 5000
_UNSURE = "(sescontacts: unsure)"  # any value works: candidates still go through the exact predicate


def check_filter_status(query: ContactQuery) -> None:
    """An unknown status would silently select on "not unsubscribed"; SES answers it with an enum error."""
    if query.status is not None:
        check_status("filter.filteredStatus", query.status)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
    path = "'" + json_path(key).replace("'", "''") + "'"
    quoted = "'" + f'"{key}"'.replace("'", "''") + "'"
    # SQLite 3.40 matches a path against a key's raw JSON text, so a key written with escapes (Python's
    # json.dumps writes "pr\u00e9nom" for "prénom") is invisible to it. Any text with a backslash is
    # therefore always a candidate (UNSURE), and the exact predicate decides.
    return (
        f"(CASE WHEN instr(attributes, '\\') THEN '{_UNSURE}' "
        f"WHEN instr(substr(attributes, instr(attributes, {quoted}) + {len(key) + 2}), {quoted}) THEN '{_UNSURE}' "
        f"WHEN json_valid(attributes) AND json_type(attributes, {path}) = 'text' THEN attributes ->> {path} END)"
    )


def _attribute_index_name(key: str) -> str:
    """One index per searched key; the "v3" changes the name whenever the indexed expression changes, since
    ``INDEXED BY`` an index on a different expression fails the query."""
    return "contacts_attr_" + hashlib.sha256(("v3:" + key).encode()).hexdigest()[:16]


def _after_folded(identity: AddressIdentity) -> str:
    """What follows the folded address in a key, as a LIKE pattern: an address search matches the folded
    address whatever the identity (nothing follows it in a folded key; the exact spelling, in an exact one)."""
    return "" if identity.name == "folded" else f"{SPELLING_SEPARATOR}%"


def where(
    list_id: int, contact_list: ContactList, query: ContactQuery, identity: AddressIdentity
) -> tuple[str, list[object]]:
    """The query as a WHERE clause over ``contacts`` and its parameters (the same rows whatever index or
    search path then reads them). :class:`NotFound` for a topic filter on a topic the list lacks."""
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
        params += [json_path(topic.name), default]
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
        params.append(f"%{_like_escape(email_key(query.email_contains))}%{_after_folded(identity)}")
    if query.domain:
        clauses.append("email_key LIKE ? ESCAPE '\\'")
        params.append(f"%@{_like_escape(email_key(query.domain).lstrip('@'))}{_after_folded(identity)}")
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


def order_by(query: ContactQuery) -> str:
    """The ORDER BY of the query's sort, newest first for ``updated`` (email key breaks ties)."""
    return "updated DESC, email_key DESC" if query.sort == "updated" else "email_key"


class AttributeIndexes:
    """The on-demand expression indexes that turn an attribute ``key = value`` search into a range scan.

    One index per searched key (at most ``MAX_ATTRIBUTE_INDEXES``; later keys are scanned). Building one
    reads the list once (about a second per million contacts) under the write lock; after that a search
    costs an index range, and every write pays a little to keep the index current.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._known: set[str] = set()  # indexes known to exist

    def ensure(self, query: ContactQuery) -> None:
        """Build, on the first ``key = value`` search for a key, the key's index (outside any snapshot)."""
        expression = _attribute_prefilter(query.attribute_key or "", query.attribute_value)
        if expression is None:
            return
        name = _attribute_index_name(query.attribute_key or "")
        if name in self._known:
            return
        reader = self._db.reader()
        if reader.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone():
            self._known.add(name)
            return
        (existing,) = reader.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'contacts!_attr!_%' ESCAPE '!'"
        ).fetchone()
        if existing >= MAX_ATTRIBUTE_INDEXES:
            return
        with self._db.write() as conn:
            conn.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON contacts (list_id, {expression}, email_key)')
        self._known.add(name)

    def hint(self, query: ContactQuery) -> str:
        """``INDEXED BY`` the key's attribute index when it exists. Without statistics (no ANALYZE) SQLite
        prefers the primary key, which satisfies ORDER BY, and would scan the list to find a rare value."""
        if _attribute_prefilter(query.attribute_key or "", query.attribute_value) is None:
            return ""
        name = _attribute_index_name(query.attribute_key or "")
        return f' INDEXED BY "{name}"' if name in self._known else ""


def _address_only(query: ContactQuery) -> bool:
    """A search on the address alone: every column it reads is in the narrow ``contacts_by_updated``."""
    return bool(query.email_contains or query.domain) and not (query.status or query.topic or query.attribute_key)


def contacts_page(
    conn: sqlite3.Connection,
    list_id: int,
    contact_list: ContactList,
    query: ContactQuery,
    size: int,
    position: Sequence[object] | None,
    indexes: AttributeIndexes,
    identity: AddressIdentity,
) -> tuple[list[Contact], list[object] | None]:
    """One keyset page of ``size`` contacts after ``position`` (the last row's sort key, from a token), and
    the position after it, None at the end."""
    clause, params = where(list_id, contact_list, query, identity)
    if position:
        clause += " AND (updated, email_key) < (?, ?)" if query.sort == "updated" else " AND email_key > ?"
        params += position
    columns = f"{CONTACT_COLUMNS}, email_key"
    rows = _address_search(conn, list_id, query, clause, params, columns, size + 1, position)
    if rows is None:
        rows = conn.execute(
            f"SELECT {columns} FROM contacts{indexes.hint(query)} WHERE {clause} ORDER BY {order_by(query)} LIMIT ?",
            (*params, size + 1),
        ).fetchall()
    contacts = [contact_from_row(r[:6]) for r in rows[:size]]
    if len(rows) <= size:
        return contacts, None
    last = rows[size - 1]
    return contacts, ([last[5], last[6]] if query.sort == "updated" else [last[6]])


def _address_search(
    conn: sqlite3.Connection,
    list_id: int,
    query: ContactQuery,
    clause: str,
    params: list[object],
    columns: str,
    limit: int,
    position: Sequence[object] | None,
) -> list[Any] | None:
    """A substring search on addresses, run over ``contacts_by_updated`` instead of the table; None when the
    query is not one (or is better served by the plain scan).

    ``LIKE '%x%'`` can only be answered by reading every address; the index holds just (list, updated,
    address), several times fewer pages than rows with their attributes, so the unavoidable scan is
    shorter. In ``updated`` order the index order is the page order. In address order, a probe of the
    next ADDRESS_PROBE addresses answers a dense search at once; otherwise the matching addresses are
    collected (up to ADDRESS_CANDIDATES) and sorted; more than that gets None (the plain scan in address
    order, which such a search fills early).
    """
    if not _address_only(query):
        return None
    narrow = "FROM contacts INDEXED BY contacts_by_updated"
    if query.sort != "updated":
        after = " AND email_key > ?" if position else ""
        window = f"SELECT * FROM contacts WHERE list_id = ?{after} ORDER BY email_key LIMIT {ADDRESS_PROBE}"
        # No ORDER BY outside: it would sort the whole window; the window comes in address order, and the
        # few rows kept are sorted here to be sure of it.
        probe = conn.execute(
            f"SELECT {columns} FROM ({window}) WHERE {clause} LIMIT ?",
            (list_id, *(position or ()), *params, limit),
        ).fetchall()
        if len(probe) >= limit:
            return sorted(probe, key=lambda row: row[-1])  # the first matches lie in the window: the page
    if query.sort == "updated":
        keys = [
            r[0]
            for r in conn.execute(
                f"SELECT email_key {narrow} WHERE {clause} ORDER BY updated DESC, email_key DESC LIMIT ?",
                (*params, limit),
            )
        ]
    else:
        keys = [
            r[0]
            for r in conn.execute(
                f"SELECT email_key {narrow} WHERE {clause} LIMIT ?", (*params, ADDRESS_CANDIDATES + 1)
            )
        ]
        if len(keys) > ADDRESS_CANDIDATES:
            return None
        keys = sorted(keys)[:limit]
    if not keys:
        return []
    return conn.execute(
        f"SELECT {columns} FROM contacts WHERE list_id = ? AND email_key IN (SELECT value FROM json_each(?)) "
        f"ORDER BY {order_by(query)}",
        (list_id, orjson.dumps(keys).decode()),
    ).fetchall()


def count(
    conn: sqlite3.Connection,
    list_id: int,
    contact_list: ContactList,
    query: ContactQuery,
    cap: int | None,
    indexes: AttributeIndexes,
    identity: AddressIdentity,
) -> Count:
    """How many contacts match a filtering query, stopping at ``cap`` (the list's row answers the plain ones)."""
    clause, params = where(list_id, contact_list, query, identity)
    # An address search counts over the narrow index: the same scan, over fewer pages.
    hint = " INDEXED BY contacts_by_updated" if _address_only(query) else indexes.hint(query)
    if cap is None:
        (n,) = conn.execute(f"SELECT count(*) FROM contacts{hint} WHERE {clause}", params).fetchone()
        return Count(n)
    (n,) = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM contacts{hint} WHERE {clause} LIMIT ?)", (*params, cap + 1)
    ).fetchone()
    return Count(min(n, cap), exact=n <= cap)
