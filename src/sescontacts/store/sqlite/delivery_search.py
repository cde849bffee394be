"""The contacts page's deliverability filter (``ContactQuery.delivery``) in SQL.

Whether a contact is suppressed, bounced or complained is not in its row: it is in the account-level
``suppressed_destinations`` (schema owner "suppression") and ``address_marks`` (owner "events"), keyed by
the folded address. :func:`clause` adds that condition to every search path's WHERE clause (a primary-key
probe per row). A page and a count read their candidates from those tables instead, in address order, when
the filter is set: usually far fewer addresses than the list holds (100k suppressed next to 1M contacts), and
each candidate is then checked with the whole clause, so the rows are the plain query's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Final

import orjson

from ...model import SPELLING_SEPARATOR, AddressIdentity, ContactQuery, Count

# Per filter: the table holding its addresses, and the condition on its row.
_SOURCES: Final = {
    "suppressed": ("suppressed_destinations", ""),
    "bounced": ("address_marks", " AND bounced_at IS NOT NULL"),
    "complained": ("address_marks", " AND complained_at IS NOT NULL"),
}
FETCH = 1000  # candidates checked per statement
UPDATED_CANDIDATES = 5000  # newest-first: more candidates than this and the plain scan fills a page sooner


def check_delivery(value: str) -> str:
    if value not in _SOURCES:
        raise ValueError(f"unknown deliverability filter {value!r}: one of {', '.join(_SOURCES)}")
    return value


def _folded(identity: AddressIdentity) -> str:
    """The SQL of the folded address of ``contacts.email_key`` (an exact key holds it before the separator)."""
    if identity.name == "folded":
        return "contacts.email_key"
    return "substr(contacts.email_key, 1, instr(contacts.email_key || char(1), char(1)) - 1)"


def clause(query: ContactQuery, identity: AddressIdentity) -> tuple[str, list[object]]:
    """The filter's condition on a ``contacts`` row ("" when the query has none)."""
    if not query.delivery:
        return "", []
    table, condition = _SOURCES[check_delivery(query.delivery)]
    return f" AND EXISTS (SELECT 1 FROM {table} d WHERE d.email_key = {_folded(identity)}{condition})", []


def _folded_keys(conn: sqlite3.Connection, query: ContactQuery, after: str, first: int = FETCH) -> Iterator[list[str]]:
    """The filter's folded addresses from ``after`` on (inclusive), in order: ``first`` of them, then twice as
    many each time up to FETCH (a dense filter fills a page from its first few)."""
    table, condition = _SOURCES[check_delivery(query.delivery or "")]
    size = first
    while True:
        batch = [
            r[0]
            for r in conn.execute(
                f"SELECT email_key FROM {table} WHERE email_key >= ?{condition} ORDER BY email_key LIMIT ?",
                (after, size),
            )
        ]
        if not batch:
            return
        yield batch
        if len(batch) < size:
            return
        after = batch[-1] + "\x00"
        size = min(FETCH, size * 2)


def keys(conn: sqlite3.Connection, list_id: int, query: ContactQuery, after: str | None) -> Iterator[str]:
    """The list's contact keys the filter holds, in address order, after ``after``: a candidate source that
    races the search index's own (``search._candidates``) when the query has other searched conditions."""
    sql = f"SELECT email_key FROM ({_KEYS_SQL}) WHERE email_key > ? ORDER BY email_key"
    for batch in _folded_keys(conn, query, _folded_of(after) if after else "", 64):
        yield from (row[0] for row in conn.execute(sql, (orjson.dumps(batch).decode(), list_id, after or "")))


# The list's contact keys of a JSON array of folded addresses (parameters: the array, the list id): the key
# itself in a folded list, every spelling's key (folded address, separator, spelling) in an exact one; both
# lie from the folded address up to the character after the separator. CROSS JOIN keeps the array outside:
# SQLite otherwise chose to read the whole list and look each key up in the array (15 s a page at 1M).
_KEYS_SQL: Final = (
    "SELECT c.email_key FROM json_each(?) k CROSS JOIN contacts c ON c.list_id = ? "
    f"AND c.email_key >= k.value AND c.email_key < k.value || char({ord(SPELLING_SEPARATOR) + 1})"
)


def _folded_of(key: str) -> str:
    return key.split(SPELLING_SEPARATOR, 1)[0]


def page(
    conn: sqlite3.Connection,
    list_id: int,
    query: ContactQuery,
    where: str,
    params: Sequence[object],
    columns: str,
    limit: int,
    position: Sequence[object] | None,
    order: str,
) -> list[Any] | None:
    """Up to ``limit`` rows of the query (``where`` already holds :func:`clause` and the position) read from
    the filter's candidates; None in newest-first order when there are too many candidates to sort."""
    sql = f"SELECT {columns} FROM contacts WHERE {where} AND email_key IN ({_KEYS_SQL}) ORDER BY {order} LIMIT ?"
    if query.sort == "updated":
        table, condition = _SOURCES[check_delivery(query.delivery or "")]
        (many,) = conn.execute(
            f"SELECT count(*) > ? FROM (SELECT 1 FROM {table} WHERE 1{condition} LIMIT ?)",
            (UPDATED_CANDIDATES, UPDATED_CANDIDATES + 1),
        ).fetchone()
        if many:
            return None  # a dense filter: the scan newest first fills a page sooner than sorting them all
        everything = [key for batch in _folded_keys(conn, query, "") for key in batch]
        return conn.execute(sql, (*params, orjson.dumps(everything).decode(), list_id, limit)).fetchall()
    rows: list[Any] = []
    after = _folded_of(str(position[-1])) if position else ""
    for batch in _folded_keys(conn, query, after, limit + 8):
        rows += conn.execute(sql, (*params, orjson.dumps(batch).decode(), list_id, limit - len(rows))).fetchall()
        if len(rows) >= limit:
            break
    return rows


def count(
    conn: sqlite3.Connection,
    list_id: int,
    query: ContactQuery,
    where: str,
    params: Sequence[object],
    cap: int | None,
    budget: int,
) -> Count:
    """How many contacts match, from the filter's candidates; a capped count checks at most ``budget``
    candidates, then shows what it found as a bound."""
    sql = f"SELECT count(*) FROM contacts WHERE {where} AND email_key IN ({_KEYS_SQL})"
    n = checked = 0
    for batch in _folded_keys(conn, query, ""):
        if cap is not None and (n > cap or checked >= budget):
            return Count(min(n, cap), exact=False)
        checked += len(batch)
        (found,) = conn.execute(sql, (*params, orjson.dumps(batch).decode(), list_id)).fetchone()
        n += found
    if cap is not None and n > cap:
        return Count(cap, exact=False)
    return Count(n)
