"""Export a list (or the contacts a query selects) in the import formats, so an export re-imports as it was.

CSV: ``emailAddress,unsubscribeAll,attributesData`` plus one ``topicPreferences.<Topic>`` column per topic of
the list (explicit choices only; an empty cell keeps the topic's default). JSON: JSON Lines in SES's import
format (``attributesData`` as a string, ``topicPreferences`` as a list of {topicName, subscriptionStatus}).

Any ``ContactStore`` works through its keyset pages. On the local SQLite store the rows are rendered by
SQLite itself in one read transaction (a consistent snapshot), so a million rows cost about what the
``sqlite3`` shell's own CSV export costs: Python only moves finished rows to the output.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import BinaryIO, Literal

from ..model import ContactList, ContactQuery
from ..store.base import ContactStore
from .formats import CsvWriter, JsonLinesWriter, csv_writers, encode_cell, sql_encode_cell

PAGE = 1000


def export(
    store: ContactStore,
    list_name: str,
    query: ContactQuery,
    fmt: Literal["csv", "json"],
    out: BinaryIO,
) -> int:
    """Write the contacts ``query`` selects to ``out`` (binary); return how many were written."""
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown export format {fmt!r}: choose csv or json")
    from ..store.sqlite import SqliteContactStore

    if isinstance(store, SqliteContactStore):
        return _export_sqlite(store, list_name, query, fmt, out)
    return _export_pages(store, list_name, query, fmt, out)


def _export_pages(store: ContactStore, list_name: str, query: ContactQuery, fmt: str, out: BinaryIO) -> int:
    contact_list = store.get_list(list_name)
    writer: CsvWriter | JsonLinesWriter = (
        CsvWriter(out, contact_list.topic_names) if fmt == "csv" else JsonLinesWriter(out)
    )
    count = 0
    token: str | None = None
    while True:
        page = store.list_contacts(list_name, query, page_size=PAGE, token=token)
        for contact in page.items:
            writer.write(contact)
            count += 1
        token = page.next_token
        if not token:
            break
    writer.close()
    return count


def _export_sqlite(store: object, list_name: str, query: ContactQuery, fmt: str, out: BinaryIO) -> int:
    from ..store.sqlite import SqliteContactStore, _json_path

    assert isinstance(store, SqliteContactStore)
    with store.db.snapshot() as conn:
        list_id, contact_list = store._list_row(conn, list_name)
        where, params = store._where(list_id, contact_list, query)
        order = "updated DESC, email_key DESC" if query.sort == "updated" else "email_key"
        if fmt == "csv":
            return _csv_rows(conn, contact_list, where, params, order, out, _json_path)
        return _json_rows(conn, where, params, order, out)


def _csv_rows(
    conn: object, contact_list: ContactList, where: str, params: list[object], order: str, out: BinaryIO, path: object
) -> int:
    topics = contact_list.topic_names
    # encode_cell in SQL, for the two columns whose text is not ours (addresses, AttributesData): the rows
    # then go to the csv module without a Python step per cell. Statuses and booleans never need it.
    columns = [
        sql_encode_cell("email"),
        "CASE WHEN unsubscribe_all THEN 'true' ELSE 'false' END",
        sql_encode_cell("coalesce(attributes, '')"),
    ]
    topic_params: list[object] = []
    for topic in topics:
        columns.append("coalesce(json_extract(topics, ?), '')")
        topic_params.append(path(topic))  # type: ignore[operator]
    cursor = conn.execute(  # type: ignore[attr-defined]
        f"SELECT {', '.join(columns)} FROM contacts WHERE {where} ORDER BY {order}", (*topic_params, *params)
    )
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    writer, quoted = csv_writers(text)
    header = ["emailAddress", "unsubscribeAll", "attributesData", *(f"topicPreferences.{t}" for t in topics)]
    writer.writerow([encode_cell(c) for c in header])
    count = 0
    while True:
        rows = cursor.fetchmany(10_000)
        if not rows:
            break
        if any("\r" in row[2] for row in rows):  # a bare CR in AttributesData: that row quoted (csv_writers)
            for row in rows:
                (quoted if "\r" in row[2] else writer).writerow(row)
        else:
            writer.writerows(rows)
        count += len(rows)
    text.flush()
    text.detach()
    return count


_HEAD = "'emailAddress', email, 'unsubscribeAll', json(CASE WHEN unsubscribe_all THEN 'true' ELSE 'false' END)"
_TOPICS = (
    "json((SELECT json_group_array(json_object('topicName', key, 'subscriptionStatus', value)) "
    "FROM json_each(contacts.topics)))"
)
# One finished JSON line per row, built by SQLite: attributesData only when set, topic preferences as SES's
# [{topicName, subscriptionStatus}] list only when there are some.
_JSON_LINE = (
    f"CASE WHEN attributes IS NULL AND topics IS NULL THEN json_object({_HEAD}) "
    f"WHEN topics IS NULL THEN json_object({_HEAD}, 'attributesData', attributes) "
    f"WHEN attributes IS NULL THEN json_object({_HEAD}, 'topicPreferences', {_TOPICS}) "
    f"ELSE json_object({_HEAD}, 'attributesData', attributes, 'topicPreferences', {_TOPICS}) END"
)


def _json_rows(conn: object, where: str, params: list[object], order: str, out: BinaryIO) -> int:
    cursor = conn.execute(  # type: ignore[attr-defined]
        f"SELECT {_JSON_LINE} FROM contacts WHERE {where} ORDER BY {order}", params
    )
    count = 0
    while True:
        rows = cursor.fetchmany(10_000)
        if not rows:
            break
        out.write(_lines(r[0] for r in rows))
        count += len(rows)
    out.flush()
    return count


def _lines(texts: Iterable[str]) -> bytes:
    return ("\n".join(texts) + "\n").encode("utf-8")
