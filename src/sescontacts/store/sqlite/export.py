"""The export fast path: rows rendered by SQLite itself (CSV cells, or finished SES import-format JSON
lines), so a million rows cost about what the ``sqlite3`` shell's own CSV export costs: Python only moves
finished rows (see ``ContactStore.export_rows``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Literal

from ...model import AddressIdentity, ContactList, ContactQuery
from ..base import ExportRows
from .rows import json_path
from .search import order_by, where

EXPORT_CHUNK_ROWS = 10_000

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
        params.append(json_path(topic))
    return columns, params


def _chunks(cursor: sqlite3.Cursor) -> Iterator[list[tuple[str, ...]]]:
    """The cursor's rows, a chunk at a time (one fetch per EXPORT_CHUNK_ROWS rows)."""
    while rows := cursor.fetchmany(EXPORT_CHUNK_ROWS):
        yield rows


def export_rows(
    conn: sqlite3.Connection,
    list_id: int,
    contact_list: ContactList,
    query: ContactQuery,
    fmt: Literal["csv", "json"],
    neutralise: str,
    identity: AddressIdentity,
) -> ExportRows:
    """The query's contacts rendered for ``fmt``, read lazily from ``conn`` (which must stay open, in one
    snapshot, while the chunks are read)."""
    clause, params = where(list_id, contact_list, query, identity)
    if fmt == "csv":
        columns, column_params = _csv_columns(contact_list, neutralise)
        sql = f"SELECT {', '.join(columns)} FROM contacts WHERE {clause} ORDER BY {order_by(query)}"
        cursor = conn.execute(sql, (*column_params, *params))
    else:
        cursor = conn.execute(f"SELECT {_JSON_LINE} FROM contacts WHERE {clause} ORDER BY {order_by(query)}", params)
    return ExportRows(contact_list, _chunks(cursor))
