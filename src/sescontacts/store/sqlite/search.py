"""Queries on one list: a ``ContactQuery`` as a WHERE clause, keyset pages, address and attribute search,
and counts.

Attribute and address searches read candidates from the search index (:mod:`.search_index`) when the list
has one: the attribute rows of one condition's key (and value) in address order, or the addresses holding a
substring of three characters or more, from whichever condition of the query is rarest. An address prefix
is a range of the address keys, which the table's own key answers. Whichever way they are found, every row
shown passes the plain WHERE clause, including the model's own attribute predicate, and comes in its order:
candidates are a necessary condition, never the answer. Contacts changed since they were indexed, and
addresses beyond the built range of a list still being built, are searched by that clause directly; without
a usable index a search scans, as it did before there was one.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, groupby
from typing import Any, Literal, TypeVar

import orjson

from ...errors import NotFound
from ...model import (
    OPT_OUT,
    SPELLING_SEPARATOR,
    AddressIdentity,
    AttributeCondition,
    Contact,
    ContactList,
    ContactQuery,
    Count,
    ListedContact,
    email_key,
)
from ...validation import check_status
from . import delivery_search, search_index
from .rows import CONTACT_COLUMNS, LISTED_COLUMNS, contact_from_row, json_path, listed_from_row

# An address search first tries the next ADDRESS_PROBE addresses in order, then collects at most
# ADDRESS_CANDIDATES matching addresses to sort (see _address_search). Read at each call (tests shrink them).
ADDRESS_PROBE = 20_000
ADDRESS_CANDIDATES = 5000
FETCH = 1000  # candidate addresses looked up per statement when filling a page or counting
RACE = 200  # candidates read from each indexed condition of a query to find its rarest (see _candidates)
COUNT_CANDIDATES = 50_000  # a capped count checks at most this many candidates' rows, then shows a bound ("4,210+")
_SCAN: Literal["scan"] = "scan"  # the index found too many candidates: the ordered scan fills a page sooner


def check_filter_status(query: ContactQuery) -> None:
    """An unknown status would silently select on "not unsubscribed"; SES answers it with an enum error."""
    if query.status is not None:
        check_status("filter.filteredStatus", query.status)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
            if _choices_only(query, contact_list):
                clauses.append("topics IS NOT NULL")  # implied; the predicate of contacts_topic_choices
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
    if query.email_prefix:
        clause, bounds = _prefix_clause("email_key", email_key(query.email_prefix), identity)
        clauses.append(clause)
        params += bounds
    for condition in query.attributes:
        # The model's own predicate, run inside SQLite: JSON paths cannot address every key (a '"' in it),
        # and SQLite's JSON differs from the model's on duplicate keys and number spellings. Measured at
        # about 0.8 us a row, against 0.5 us for json_type: exactness is worth it.
        clauses.append("attributes IS NOT NULL AND sescontacts_attributes_match(attributes, ?, ?, ?)")
        params += [condition.key, condition.value, int(condition.exact)]
    delivery, extra = delivery_search.clause(query, identity)
    return " AND ".join(clauses) + delivery, params + extra


def _after(text: str) -> str | None:
    """The least string above every string that starts with ``text`` (code point order, which is SQLite's
    byte order of UTF-8), None when there is none."""
    while text:
        last = ord(text[-1]) + 1
        if last == 0xD800:
            last = 0xE000  # surrogates are no characters of a stored string
        if last <= 0x10FFFF:
            return text[:-1] + chr(last)
        text = text[:-1]
    return None


def _prefix_clause(column: str, prefix: str, identity: AddressIdentity) -> tuple[str, list[object]]:
    """Keys whose folded address starts with ``prefix``, as a range of ``column`` (an index seek). In an exact
    key the folded address comes first, so the range is the same, unless the prefix runs into the separator,
    which no address holds."""
    if identity.name != "folded" and SPELLING_SEPARATOR in prefix:
        return "0", []
    upper = _after(prefix)
    if upper is None:
        return f"{column} >= ?", [prefix]
    return f"{column} >= ? AND {column} < ?", [prefix, upper]


def _choices_only(query: ContactQuery, contact_list: ContactList) -> bool:
    """Whether only a contact's explicit topic choice can match the query's topic filter: a status other than
    OPT_OUT (unsubscribe-all makes every topic OPT_OUT) that the topic's default, when applied, is not."""
    if query.topic is None or query.status is None or query.status == OPT_OUT:
        return False
    topic = contact_list.topic(query.topic.topic)
    return topic is not None and not (query.topic.use_default and topic.default_status == query.status)


def _scan_hint(query: ContactQuery, contact_list: ContactList, *, counting: bool) -> str:
    """The index a plain scan reads: the contacts who chose a topic, when only a choice can match (SQLite
    would scan the whole list, without statistics on how few chose); for a page only in address order,
    which that index keeps (newest first, the scan of ``contacts_by_updated`` stops at the first page)."""
    if _choices_only(query, contact_list) and (counting or query.sort != "updated"):
        return " INDEXED BY contacts_topic_choices"
    return " INDEXED BY contacts_by_updated" if counting and _address_only(query) else ""


def order_by(query: ContactQuery) -> str:
    """The ORDER BY of the query's sort, newest first for ``updated`` (email key breaks ties)."""
    return "updated DESC, email_key DESC" if query.sort == "updated" else "email_key"


def _address_only(query: ContactQuery) -> bool:
    """A search on the address alone: every column it reads is in the narrow ``contacts_by_updated``."""
    return bool(query.email_contains or query.domain) and not (
        query.status or query.topic or query.attributes or query.email_prefix
    )


def _globs(query: ContactQuery) -> list[str]:
    """GLOBs over address keys that every match of the query's address search also matches, for the trigram
    index: one for a substring, one for a domain, each left out when its needle has no run of three plain
    characters (the index cannot answer it then). GLOB's own special characters become ``?`` (any one
    character), so a pattern only widens."""
    needles = [email_key(query.email_contains)] if query.email_contains else []
    needles += ["@" + email_key(query.domain).lstrip("@")] if query.domain else []
    patterns = ["".join("?" if c in "*?[" else c for c in needle) for needle in needles]
    return [f"*{p}*" for p in patterns if max((len(run) for run in p.split("?")), default=0) >= 3]


# -- candidates from the index ----------------------------------------------------------------------------


def _with_pending(keys: Iterable[str], index: search_index.IndexView, after: str | None) -> Iterator[str]:
    """``keys`` (in address order) with the list's pending keys merged in, each once."""
    pending = [k for k in index.pending if after is None or k > after]
    for key, _ in groupby(heapq.merge(keys, pending)):
        yield key


def _attribute_keys(
    conn: sqlite3.Connection, index: search_index.IndexView, condition: AttributeCondition, after: str | None
) -> Iterator[str]:
    """Addresses whose indexed attributes may match ``condition``, in address order, after ``after``."""
    sql, args = search_index.attribute_candidates(index, condition.key, condition.value, after or "", ordered=True)
    rows = conn.execute(sql, args)
    keys = (k for k in search_index.in_address_order(rows) if after is None or k > after)
    return _with_pending(keys, index, after)


def _address_sql(index: search_index.IndexView, predicate: str = "") -> str:
    """Addresses the trigram index finds for a GLOB, in address order (the order of their numbers): parameters
    (pattern, lowest number, highest number, list id, after, through, through)."""
    return (
        "SELECT address FROM search_addresses WHERE address GLOB ? AND rowid >= ? AND rowid < ? AND collection = ? "
        f"AND address > ? AND (? IS NULL OR address <= ?){predicate} ORDER BY rowid"
    )


def _address_keys(
    conn: sqlite3.Connection, index: search_index.IndexView, pattern: str, after: str | None
) -> Iterator[str]:
    """Addresses the trigram index finds for ``pattern``, with the pending ones, in address order after ``after``."""
    rows = conn.execute(
        _address_sql(index),
        (
            pattern,
            search_index.first_number(conn, index, after),
            index.high,
            index.list_id,
            after or "",
            index.through,
            index.through,
        ),
    )
    return _with_pending((r[0] for r in rows), index, after)


def _take(keys: Iterable[str], limit: int) -> list[str]:
    found = []
    for key in keys:
        found.append(key)
        if len(found) >= limit:
            break
    return found


def _rows_for(
    conn: sqlite3.Connection, columns: str, clause: str, params: Sequence[object], keys: Sequence[str], order: str
) -> list[Any]:
    """The rows among ``keys`` that pass the clause, in ``order``."""
    return conn.execute(
        f"SELECT {columns} FROM contacts WHERE {clause} AND email_key IN (SELECT value FROM json_each(?)) "
        f"ORDER BY {order}",
        (*params, orjson.dumps(list(keys)).decode()),
    ).fetchall()


def _beyond(
    conn: sqlite3.Connection,
    index: search_index.IndexView,
    query: ContactQuery,
    columns: str,
    clause: str,
    params: Sequence[object],
    limit: int,
) -> list[Any]:
    """The first rows past the built range of a list still being built (scanned with the clause)."""
    if index.through is None or limit <= 0:
        return []
    return conn.execute(
        f"SELECT {columns} FROM contacts WHERE {clause} AND email_key > ? ORDER BY {order_by(query)} LIMIT ?",
        (*params, index.through, limit),
    ).fetchall()


def _candidates(
    conn: sqlite3.Connection, index: search_index.IndexView, query: ContactQuery, after: str | None
) -> Iterator[str]:
    """The index's candidates for the query in address order, from its rarest condition: its substring or its
    domain when they have three characters or more (the trigram index), or any attribute condition.

    No statistics are kept, so the conditions race: RACE candidates are read from each, in address order. One
    that ends first holds the fewest contacts; otherwise the one whose RACE-th candidate lies furthest along
    the addresses is the sparsest. ``Company = Globex AND domain example.com`` then reads Globex's contacts,
    not every address at example.com (a 1M-contact count: all the domain's rows checked, against one in six).
    """
    sources = [_address_keys(conn, index, pattern, after) for pattern in _globs(query)]
    sources += [_attribute_keys(conn, index, condition, after) for condition in query.attributes]
    if query.delivery:  # exact, never pending: the suppression list's or the events' own keys
        sources.append(delivery_search.keys(conn, index.list_id, query, after))
    if len(sources) == 1:
        return sources[0]
    heads = [_take(keys, RACE) for keys in sources]
    ended = [len(head) < RACE for head in heads]  # ended: fewest first; else furthest along the addresses
    rarest = max(range(len(sources)), key=lambda i: (ended[i], -len(heads[i]) * ended[i], (heads[i] or [""])[-1]))
    return chain(heads[rarest], sources[rarest])


def _indexed_page(
    conn: sqlite3.Connection,
    list_id: int,
    query: ContactQuery,
    clause: str,
    params: list[object],
    columns: str,
    limit: int,
    position: Sequence[object] | None,
) -> list[Any] | Literal["scan"] | None:
    """A page from the search index: rows, or None when the index cannot serve the query (not built, too many
    changes pending, no attribute and no usable needle), or "scan" when, in ``updated`` order, it finds so
    many candidates that the plain scan fills a page sooner.

    In address order the candidates come in order, so a page reads only as many as it needs, however many
    match; each is checked against the clause (the rows and order are the plain query's)."""
    if not query.attributes and not _globs(query):
        return None
    index = search_index.view(conn, list_id)
    if index is None:
        return None
    rows: list[Any]
    if query.sort == "updated":
        found = _take(_candidates(conn, index, query, None), ADDRESS_CANDIDATES + 1)
        if len(found) > ADDRESS_CANDIDATES:
            return _SCAN
        rows = _rows_for(conn, columns, clause, params, found, f"{order_by(query)} LIMIT {int(limit)}")
        rows += _beyond(conn, index, query, columns, clause, params, limit)
        return sorted(rows, key=lambda row: (row[5], row[6]), reverse=True)[:limit]  # newest first
    keys = _candidates(conn, index, query, str(position[-1]) if position else None)
    rows = []
    want = limit + 8
    while len(rows) < limit:
        batch = _take(keys, want)
        if not batch:
            break
        rows += _rows_for(conn, columns, clause, params, batch, "email_key")
        want = min(FETCH, want * 2)
    rows = rows[:limit]
    return rows + _beyond(conn, index, query, columns, clause, params, limit - len(rows))


def _address_clauses(query: ContactQuery, identity: AddressIdentity, column: str) -> tuple[str, list[object]]:
    """The query's address predicates on ``column`` (the same patterns as :func:`where`'s)."""
    clauses: list[str] = []
    params: list[object] = []
    if query.email_contains:
        clauses.append(f" AND {column} LIKE ? ESCAPE '\\'")
        params.append(f"%{_like_escape(email_key(query.email_contains))}%{_after_folded(identity)}")
    if query.domain:
        clauses.append(f" AND {column} LIKE ? ESCAPE '\\'")
        params.append(f"%@{_like_escape(email_key(query.domain).lstrip('@'))}{_after_folded(identity)}")
    if query.email_prefix:
        clause, bounds = _prefix_clause(column, email_key(query.email_prefix), identity)
        clauses.append(f" AND {clause}")
        params += bounds
    return "".join(clauses), params


def _indexed_count(
    conn: sqlite3.Connection,
    list_id: int,
    query: ContactQuery,
    clause: str,
    params: list[object],
    cap: int | None,
    identity: AddressIdentity,
) -> Count | None:
    """The count from the search index, or None when it cannot serve the query.

    A query the index answers alone (one attribute condition whose index rows are its matches, or address
    conditions with a needle, and nothing else) counts index rows, the pending contacts set aside and checked
    with the clause; any other checks each candidate's row, a capped count at most COUNT_CANDIDATES of them."""
    pattern = next(iter(_globs(query)), None)  # what a query of address conditions alone is counted by
    if not query.attributes and pattern is None:
        return None
    index = search_index.view(conn, list_id)
    if index is None:
        return None
    limit = -1 if cap is None else cap + 1
    pending = orjson.dumps(index.pending).decode()
    address = bool(query.email_contains or query.domain or query.email_prefix)
    alone = pattern is not None and not query.attributes
    if not alone and not address and len(query.attributes) == 1:
        alone = search_index.rows_are_matches(query.attributes[0])
    if alone and not (query.status or query.topic or query.delivery):
        if pattern is not None:
            predicate, extra = _address_clauses(query, identity, "address")
            sql = _address_sql(index, predicate + " AND address NOT IN (SELECT value FROM json_each(?))")
            (n,) = conn.execute(
                f"SELECT count(*) FROM ({sql} LIMIT ?)",
                (pattern, index.low, index.high, list_id, "", index.through, index.through, *extra, pending, limit),
            ).fetchone()
        else:
            condition = query.attributes[0]
            sql, args = search_index.attribute_candidates(
                index, condition.key, condition.value, "", addresses=bool(index.pending)
            )
            if index.pending:
                sql += " AND c.c0 NOT IN (SELECT value FROM json_each(?))"
                args.append(pending)
            (n,) = conn.execute(f"SELECT count(*) FROM ({sql} LIMIT ?)", [*args, limit]).fetchone()
        if index.pending:
            (found,) = conn.execute(
                f"SELECT count(*) FROM contacts WHERE {clause} AND email_key IN (SELECT value FROM json_each(?))",
                (*params, pending),
            ).fetchone()
            n += found
    else:
        keys = _candidates(conn, index, query, None)
        n = checked = 0
        while cap is None or n <= cap:
            if cap is not None and checked >= COUNT_CANDIDATES:
                return Count(n, exact=False)  # at least n: the rest of the candidates are not read
            batch = _take(keys, FETCH)
            if not batch:
                break
            checked += len(batch)
            (found,) = conn.execute(
                f"SELECT count(*) FROM contacts WHERE {clause} AND email_key IN (SELECT value FROM json_each(?))",
                (*params, orjson.dumps(batch).decode()),
            ).fetchone()
            n += found
    if index.through is not None and (cap is None or n <= cap):
        (beyond,) = conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM contacts WHERE {clause} AND email_key > ? LIMIT ?)",
            (*params, index.through, -1 if cap is None else cap + 1 - n),
        ).fetchone()
        n += beyond
    if cap is not None and n > cap:
        return Count(cap, exact=False)
    return Count(n)


# -- pages and counts -------------------------------------------------------------------------------------


T = TypeVar("T")
# A page's items and the position after it (:func:`contacts_page`, :func:`listed_page`).
PageFetch = Callable[
    [sqlite3.Connection, int, ContactList, ContactQuery, int, Sequence[object] | None, AddressIdentity],
    tuple[list[T], list[object] | None],
]


def _page_rows(
    conn: sqlite3.Connection,
    list_id: int,
    contact_list: ContactList,
    query: ContactQuery,
    size: int,
    position: Sequence[object] | None,
    identity: AddressIdentity,
    columns: str,
) -> tuple[list[Any], list[object] | None]:
    """The rows of one keyset page of ``size`` contacts after ``position`` (the last row's sort key, from a
    token), ``columns`` then ``email_key`` (``updated`` sixth: the search paths sort on it), and the position
    after it, None at the end."""
    clause, params = where(list_id, contact_list, query, identity)
    if position:
        clause += " AND (updated, email_key) < (?, ?)" if query.sort == "updated" else " AND email_key > ?"
        params += position
    columns = f"{columns}, email_key"
    args = (conn, list_id, query, clause, params, columns, size + 1, position)
    alone = query.delivery and not (query.attributes or _globs(query))  # else it races them (_candidates)
    rows: list[Any] | Literal["scan"] | None = delivery_search.page(*args, order_by(query)) if alone else None
    rows = _indexed_page(*args) if rows is None else rows
    if rows is None:
        rows = _address_search(conn, list_id, query, clause, params, columns, size + 1, position)
    if rows is None or rows == _SCAN:
        hint = _scan_hint(query, contact_list, counting=False)
        rows = conn.execute(
            f"SELECT {columns} FROM contacts{hint} WHERE {clause} ORDER BY {order_by(query)} LIMIT ?",
            (*params, size + 1),
        ).fetchall()
    if len(rows) <= size:
        return rows, None
    last = rows[size - 1]
    return rows[:size], ([last[5], last[6]] if query.sort == "updated" else [last[6]])


def contacts_page(
    conn: sqlite3.Connection,
    list_id: int,
    contact_list: ContactList,
    query: ContactQuery,
    size: int,
    position: Sequence[object] | None,
    identity: AddressIdentity,
) -> tuple[list[Contact], list[object] | None]:
    """One keyset page of contacts (see :func:`_page_rows`) and the position after it."""
    rows, after = _page_rows(conn, list_id, contact_list, query, size, position, identity, CONTACT_COLUMNS)
    return [contact_from_row(r[:6]) for r in rows], after


def listed_page(
    conn: sqlite3.Connection,
    list_id: int,
    contact_list: ContactList,
    query: ContactQuery,
    size: int,
    position: Sequence[object] | None,
    identity: AddressIdentity,
) -> tuple[list[ListedContact], list[object] | None]:
    """:func:`contacts_page`'s page as ListContacts shows it: the attributes are not read, no Contact is built."""
    rows, after = _page_rows(conn, list_id, contact_list, query, size, position, identity, LISTED_COLUMNS)
    return [listed_from_row(r) for r in rows], after


def _probe(
    conn: sqlite3.Connection,
    list_id: int,
    clause: str,
    params: list[object],
    columns: str,
    limit: int,
    position: Sequence[object] | None,
) -> list[Any]:
    """The matches among the next ADDRESS_PROBE addresses in order: a dense search's page, at once."""
    after = " AND email_key > ?" if position else ""
    window = f"SELECT * FROM contacts WHERE list_id = ?{after} ORDER BY email_key LIMIT {ADDRESS_PROBE}"
    # No ORDER BY outside: it would sort the whole window; the window comes in address order, and the
    # few rows kept are sorted here to be sure of it.
    probe = conn.execute(
        f"SELECT {columns} FROM ({window}) AS contacts WHERE {clause} LIMIT ?",  # named: the clause says contacts.
        (list_id, *(position or ()), *params, limit),
    ).fetchall()
    return sorted(probe, key=lambda row: row[-1])


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
    """A substring search on addresses without the trigram index (a needle under three characters, or a
    list whose index is not usable yet), run over ``contacts_by_updated`` instead of the table; None when
    the query is not one (or is better served by the plain scan).

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
        probe = _probe(conn, list_id, clause, params, columns, limit, position)
        if len(probe) >= limit:
            return probe
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
    identity: AddressIdentity,
) -> Count:
    """How many contacts match a filtering query, stopping at ``cap`` (the list's row answers the plain ones)."""
    clause, params = where(list_id, contact_list, query, identity)
    if query.delivery and not (query.attributes or _globs(query)):
        return delivery_search.count(conn, list_id, query, clause, params, cap, COUNT_CANDIDATES)
    indexed = _indexed_count(conn, list_id, query, clause, params, cap, identity)
    if indexed is not None:
        return indexed
    # An address search counts over the narrow index: the same scan, over fewer pages.
    hint = _scan_hint(query, contact_list, counting=True)
    if cap is None:
        (n,) = conn.execute(f"SELECT count(*) FROM contacts{hint} WHERE {clause}", params).fetchone()
        return Count(n)
    (n,) = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM contacts{hint} WHERE {clause} LIMIT ?)", (*params, cap + 1)
    ).fetchone()
    return Count(min(n, cap), exact=n <= cap)
