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


def _folded_keys(conn: sqlite3.Connection, query: ContactQuery, after: str) -> Iterator[list[str]]:
    """The filter's folded addresses from ``after`` on (inclusive), in order, FETCH at a time."""
    table, condition = _SOURCES[check_delivery(query.delivery or "")]
    while True:
        batch = [
            r[0]
            for r in conn.execute(
                f"SELECT email_key FROM {table} WHERE email_key >= ?{condition} ORDER BY email_key LIMIT ?",
                (after, FETCH),
            )
        ]
        if not batch:
            return
        yield batch
        if len(batch) < FETCH:
            return
        after = batch[-1] + "\x00"


def _keys_sql(identity: AddressIdentity) -> str:
    """Contact keys of a JSON array of folded addresses (parameters: the array, the list id): the same keys
    for a folded list; every spelling's key (folded address, separator, spelling) for an exact one."""
    if identity.name == "folded":
        return "SELECT value FROM json_each(?) WHERE ? IS NOT NULL"  # the list id is not needed: the same slots
    separator = ord(SPELLING_SEPARATOR)
    return (
        "SELECT c.email_key FROM json_each(?) k JOIN contacts c ON c.list_id = ? "
        f"AND c.email_key > k.value || char({separator}) AND c.email_key < k.value || char({separator + 1})"
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
    identity: AddressIdentity,
    order: str,
) -> list[Any] | None:
    """Up to ``limit`` rows of the query (``where`` already holds :func:`clause` and the position) read from
    the filter's candidates; None in newest-first order when there are too many candidates to sort."""
    keys_sql = _keys_sql(identity)
    sql = f"SELECT {columns} FROM contacts WHERE {where} AND email_key IN ({keys_sql}) ORDER BY {order} LIMIT ?"
    if query.sort == "updated":
        everything: list[str] = []
        for batch in _folded_keys(conn, query, ""):
            everything += batch
            if len(everything) > UPDATED_CANDIDATES:
                return None
        return conn.execute(sql, (*params, orjson.dumps(everything).decode(), list_id, limit)).fetchall()
    rows: list[Any] = []
    after = _folded_of(str(position[-1])) if position else ""
    for batch in _folded_keys(conn, query, after):
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
    identity: AddressIdentity,
    budget: int,
) -> Count:
    """How many contacts match, from the filter's candidates; a capped count checks at most ``budget``
    candidates, then shows what it found as a bound."""
    sql = f"SELECT count(*) FROM contacts WHERE {where} AND email_key IN ({_keys_sql(identity)})"
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
