"""The search index (store/sqlite/search_index.py): whatever wrote the contacts and however far the index has
got, a search answers exactly what the model's predicate selects, in order; writes never build it, and
searches never write."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sescontacts.db import Database
from sescontacts.model import (
    EXACT,
    FOLDED,
    MISSING,
    OPT_IN,
    OPT_OUT,
    AddressIdentity,
    AttributeCondition,
    Contact,
    ContactPatch,
    ContactQuery,
    Count,
    Topic,
    TopicFilter,
    UpsertPolicy,
)
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.store.sqlite import (
    SearchIndexer,
    SqliteContactStore,
    mirror_contacts,
    mirror_remove,
    search,
    search_index,
    search_indexer,
    writes,
)

from .support.stores import all_pages, emails, sqlite_store, vm_steps


def _state(store: SqliteContactStore, name: str = "contacts") -> tuple[Any, ...] | None:
    row = (
        store.db.reader()
        .execute(
            "SELECT s.through, s.orphan FROM search_state AS s JOIN contact_lists AS l ON l.id = s.list_id "
            "WHERE l.name = ?",
            (name,),
        )
        .fetchone()
    )
    return None if row is None else tuple(row)


def _build(store: SqliteContactStore, indexer: SearchIndexer) -> int:
    """Run the indexer until the list's index is built (its segments not yet merged); the steps taken."""
    steps = 0
    while (_state(store) or (None,))[0] is not None and indexer.step(ignore_pauses=True):
        steps += 1
    return steps


def _segments(store: SqliteContactStore) -> int:
    """How many segments FTS5 holds the trigram index in (each has rows in its ``_idx`` table)."""
    return int(store.db.reader().execute("SELECT count(DISTINCT segid) FROM search_addresses_idx").fetchone()[0])


def _triggers(store: SqliteContactStore) -> list[str]:
    return [
        r[0]
        for r in store.db.reader().execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'search%' ORDER BY name"
        )
    ]


def _pending(store: SqliteContactStore) -> int:
    return int(store.db.reader().execute("SELECT count(*) FROM search_pending").fetchone()[0])


def _numbers_out_of_order(store: SqliteContactStore) -> list[tuple[str, int]]:
    """Addresses of a list's built range whose number is not above the one before: address searches read the
    numbers in order and stop after a page of matches, so one out of place is a contact a search pages past
    or shows twice. (Past ``through`` a build is under way: searches scan there, and leftovers wait.)"""
    reader = store.db.reader()
    wrong = []
    for list_id, through in reader.execute("SELECT list_id, through FROM search_state").fetchall():
        previous = -1
        for address, number in reader.execute(
            "SELECT address, id FROM search_address_ids WHERE collection = ? AND (? IS NULL OR address <= ?) "
            "ORDER BY address",
            (list_id, through, through),
        ):
            if number <= previous:
                wrong.append((str(address), int(number)))
            previous = int(number)
    return wrong


# -- property: the index agrees with the model's predicate, through every write path and every index state ----

_KEYS = ("plan", "n", "prénom", "", 'q"uote', "back\\slash", "a.b", "line\nbreak", "VIP")
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([799308, 2**63, 2**64 - 1, -(2**63)]),
    st.sampled_from([0.5, 1.0, -0.0, 1e16, 1e20, 0.1 + 0.2, 100.0, 5e-324]),
    st.sampled_from(
        [
            "pro",
            "PRO",
            "Pro",
            "",
            "1",
            "1.0",
            "true",
            "TRUE",
            "null",
            "é",
            "É",
            "e\u0301",
            'q"',
            "a\\b",
            "\u0000x",
            "😀",
            "[1,2]",
            "Straße",
            "STRASSE",
            "ǅ",
            "ﬁ",
            "FI",
            "İ",
            "i\u0307",
            "ΣΑΣ",
            "σας",
        ]
    ),
)
_VALUES = st.one_of(
    _SCALARS, st.lists(_SCALARS, max_size=2), st.dictionaries(st.sampled_from("ab"), _SCALARS, max_size=1)
)
_RAW = st.sampled_from(
    [
        '{"plan": "free", "plan": "pro"}',  # a key twice: the last one counts
        '{"pr\\u00e9nom": "pro", "pl\\u0061n": "pro"}',  # escaped keys
        '{"n": 1e2}',
        '{"n": 1E+2, "plan": "pr\\u006f"}',
        '{ "n" : 3 , "plan" : [1,2] }',
        '{"n": "\\ud83d\\ude00"}',
        '{"n": "\\u0000x"}',
        '{"n": 1e400}',  # not JSON the model reads (infinity): never matches
        "[1, 2]",
        '"plan"',
        "not json",
        "{}",
        "null",
    ]
)


# Values the stored ones differ from only in case (folded alike, or not: ß folds to ss, İ to i̇).
_CASE_VARIANTS = ["pro", "PRO", "Pro", "strasse", "STRASSE", "straße", "É", "é", "TRUE", "σας", "i\u0307"]


@st.composite
def _attributes(draw: st.DrawFn) -> str | None:
    kind = draw(st.sampled_from(["cased", "none", "object", "cased", "escaped", "raw", "object"]))
    if kind == "none":
        return None
    if kind == "raw":
        return draw(_RAW)
    if kind == "cased":  # a value that case-insensitive and exact searches tell apart
        return orjson.dumps({draw(st.sampled_from(_KEYS[:2])): draw(st.sampled_from(_CASE_VARIANTS))}).decode()
    value = draw(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=3))
    if kind == "escaped":  # what boto3 users send: json.dumps escapes every non-ASCII character
        return json.dumps(value)
    return orjson.dumps(value).decode()


_ADDRESSES = st.sampled_from(
    [
        f"{local}@{domain}"
        for local in ("ann", "Ann", "bob.lee", "cé", "ce\u0301", "zoë+x", "q_%")
        for domain in ("ex.com", "mail.ex.org")
    ]
)
_QUERY_VALUES = [
    "pro",
    "PRO",
    "pRo",
    "strasse",
    "STRASSE",
    "straße",
    "fi",
    "ǆ",
    "i\u0307",
    "σας",
    "É",
    "TRUE",
    "Null",
    '{"A":1}',
    '["PRO"]',
    "1",
    "1.0",
    "100.0",
    "1e2",
    "1e+20",
    "-0.0",
    "0.0",
    "0.5",
    "true",
    "false",
    "null",
    "",
    "é",
    "e\u0301",
    "a\\b",
    'q"',
    "\u0000x",
    "😀",
    "[1,2]",
    "799308",
    "9223372036854775808",
    "18446744073709551615",
    "5e-324",
    "0.30000000000000004",
    '{"a":1}',
]


@st.composite
def _conditions(draw: st.DrawFn, kind: str) -> tuple[AttributeCondition, ...]:
    """The attribute conditions of a query of ``kind``: one, or (``several``) up to three, each a key alone or
    key = value, case-insensitive or exact."""
    count = {"attribute": 1, "present": 1, "both": 1, "several": draw(st.integers(2, 3))}.get(kind, 0)
    return tuple(
        AttributeCondition(
            draw(st.sampled_from(_KEYS[:2])) if draw(st.booleans()) else draw(st.sampled_from(_KEYS)),
            None
            if kind == "present" or (kind == "several" and draw(st.booleans()))
            else draw(st.sampled_from(_CASE_VARIANTS if draw(st.booleans()) else _QUERY_VALUES)),
            exact=draw(st.booleans()),
        )
        for _ in range(count)
    )


@st.composite
def _queries(draw: st.DrawFn) -> ContactQuery:
    kinds = [
        "attribute",
        "attribute",
        "present",
        "several",
        "several",
        "address",
        "domain",
        "prefix",
        "both",
        "prefixed",
    ]
    kind = draw(st.sampled_from(kinds))
    topic = draw(st.sampled_from([None, None, TopicFilter("t"), TopicFilter("t", True), TopicFilter("u", True)]))
    return ContactQuery(
        status=draw(st.sampled_from([None, None, OPT_OUT] + ([OPT_IN, OPT_IN] if topic else []))),
        topic=topic,
        email_contains=draw(st.sampled_from(["ann", "bob.l", "ex.c", "ée", "cé@", "q_%", "an", "%", "*x?", "zzz"]))
        if kind in ("address", "both", "prefixed")
        else None,
        domain=draw(st.sampled_from(["ex.com", "EX.COM", "mail.ex.org", "x.org"]))
        if kind in ("domain", "several")
        else None,
        email_prefix=draw(
            st.sampled_from(["a", "ANN@", "bob", "c", "cé", "ce\u0301", "zoë+x@mail", "q_%", "\U0010ffff"])
        )
        if kind in ("prefix", "several", "prefixed")
        else None,
        attributes=draw(_conditions(kind)),
        sort=draw(st.sampled_from(["email", "updated"])),
    )


_OPERATIONS = st.one_of(
    st.tuples(st.just("create"), _ADDRESSES, _attributes(), st.booleans()),
    st.tuples(st.just("update"), _ADDRESSES, _attributes()),
    st.tuples(st.just("delete"), _ADDRESSES),
    st.tuples(
        st.just("upsert"),
        st.lists(
            st.builds(
                ContactPatch,
                email=_ADDRESSES,
                unsubscribe_all=st.sampled_from([MISSING, True, False]),
                attributes=st.one_of(
                    st.just(MISSING), st.none(), st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=2)
                ),
                topic_preferences=st.dictionaries(
                    st.sampled_from("tu"), st.sampled_from([OPT_IN, OPT_OUT]), max_size=2
                ),
            ),
            max_size=5,
        ),
        st.booleans(),
        st.booleans(),
    ),
    st.tuples(st.just("delete_many"), st.lists(_ADDRESSES, max_size=4)),
    st.tuples(st.just("mirror"), st.lists(st.tuples(_ADDRESSES, _attributes()), max_size=4)),
    st.tuples(st.just("mirror_remove"), st.lists(_ADDRESSES, max_size=3)),
    st.tuples(st.just("index"), st.integers(0, 4)),
    st.tuples(st.just("index"), st.just(-1)),  # catch up
    # Consecutive new addresses next to one (as senders' user1001@, user1002@, ...), each applied as it comes
    # (they exhaust one gap of numbers, so their neighbours are renumbered: a window, or the bucket), or all
    # applied at once (their bucket is built anew, or the last one grows to take them).
    st.tuples(st.just("run"), _ADDRESSES, st.integers(1, 8), st.booleans(), st.booleans()),
)
# Index sizes shrunk so a handful of contacts spans several buckets, bulk writes reset small lists or log
# their rows, pending changes overflow into the plain scan, buckets are renumbered (a window of neighbours, or
# whole) and cut (or cannot be).
# Topic filters: only an explicit choice matches "t opted in" (default OPT_OUT), nearly everyone "u" (OPT_IN).
_TOPICS = [Topic("t", "T", OPT_OUT), Topic("u", "U", OPT_IN)]
_SMALL = {"PENDING_LIMIT": 1, "SMALL_LIST": 2}
_SMALL_BUILD = {"CHUNK": 2, "DRAIN": 3, "SPLIT": 3, "POS_STEP": 1, "RANK_STEP": 2, "WINDOW": 1}


@contextmanager
def _scratch(identity: AddressIdentity) -> Iterator[SqliteContactStore]:
    """One file per identity for every example (a new file costs more than the example); each starts with no list."""
    store = _SCRATCH.get(identity.name)
    if store is None:
        folder = tempfile.mkdtemp(prefix="sescontacts-index-")
        atexit.register(shutil.rmtree, folder, True)
        store = SqliteContactStore(Database(Path(folder) / "i.db", PRODUCT_SCHEMA), max_lists=None, identity=identity)
        _SCRATCH[identity.name] = store
    for contact_list in store.list_lists().items:
        store.delete_list(contact_list.name)
    SearchIndexer(store.db).catch_up()  # the deleted lists' index cleared
    yield store


_SCRATCH: dict[str, SqliteContactStore] = {}


def _apply(store: SqliteContactStore, indexer: SearchIndexer, operation: tuple[Any, ...], clock: list[float]) -> None:
    kind, *args = operation
    clock[0] += kind in ("create", "mirror")  # other writes share a time: sorting by it needs the tie-break
    if kind == "create":
        email, attributes, unsubscribed = args
        try:
            store.create_contact("p", Contact(email, unsubscribe_all=unsubscribed, attributes_data=attributes))
        except Exception as exc:  # AlreadyExists (or the cap on attributes): nothing written
            assert type(exc).__name__ in ("AlreadyExists", "BadRequest"), exc
    elif kind == "update":
        email, attributes = args
        try:
            store.update_contact("p", Contact(email, attributes_data=attributes))
        except Exception as exc:
            assert type(exc).__name__ in ("NotFound", "BadRequest"), exc
    elif kind == "delete":
        try:
            store.delete_contact("p", args[0])
        except Exception as exc:
            assert type(exc).__name__ == "NotFound", exc
    elif kind == "upsert":
        patches, merge, replace = args
        store.upsert_contacts("p", patches, UpsertPolicy(merge_attributes=merge, replace_record=replace))
    elif kind == "delete_many":
        store.delete_contacts("p", args[0])
    elif kind == "mirror":
        mirror_contacts(
            store,
            "p",
            [Contact(email, attributes_data=a, created=clock[0], updated=clock[0]) for email, a in args[0]],
            force=True,
        )
    elif kind == "mirror_remove":
        mirror_remove(store, "p", args[0])
    elif kind == "run":
        address, count, descending, at_once = args
        local, domain = address.split("@")
        for i in sorted(range(count), reverse=descending):
            try:
                store.create_contact("p", Contact(f"{local}.{i}@{domain}", attributes_data=json.dumps({"run": i})))
            except Exception as exc:  # the run met an earlier one
                assert type(exc).__name__ == "AlreadyExists", exc
            if not at_once:
                indexer.catch_up()
        indexer.catch_up()
    elif args[0] < 0:
        indexer.catch_up()
    else:
        for _ in range(args[0]):
            indexer.step(ignore_pauses=True)


def _expected(store: SqliteContactStore, query: ContactQuery) -> list[str]:
    """The model's answer over what the store holds (read by a plain page walk, which no index serves)."""
    contact_list = store.get_list("p")
    stored = all_pages(store, "p")
    matching = [c for c in stored if query.matches(c, contact_list)]
    if query.sort == "updated":
        matching.sort(key=lambda c: (c.updated, store.email_key(c.email)), reverse=True)
    else:
        matching.sort(key=lambda c: store.email_key(c.email))
    return emails(matching)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    operations=st.lists(_OPERATIONS, min_size=1, max_size=14),
    queries=st.lists(_queries(), min_size=1, max_size=4),
    page_size=st.integers(1, 4),
    # The address probe window and the candidate cap, shrunk so that small lists take every path.
    search_limits=st.sampled_from([(20_000, 5000), (1, 1), (2, 3), (4, 1)]),
)
@pytest.mark.parametrize("identity", [FOLDED, EXACT], ids=lambda i: i.name)
def test_indexed_search_equals_the_model_predicate_through_every_write_path(
    identity: AddressIdentity,
    operations: list[tuple[Any, ...]],
    queries: list[ContactQuery],
    page_size: int,
    search_limits: tuple[int, int],
) -> None:
    clock = [1000.0]
    probe, candidates = search_limits
    with (
        _scratch(identity) as store,
        mock.patch.multiple(search_index, **_SMALL),
        mock.patch.multiple(search_indexer, **_SMALL_BUILD),
        mock.patch.multiple(search, ADDRESS_PROBE=probe, ADDRESS_CANDIDATES=candidates, FETCH=2),
        mock.patch.object(writes, "BULK_ROWS", 2),
        mock.patch.object(store, "_now", lambda: clock[0]),
    ):
        store.create_list("p", topics=_TOPICS)
        indexer = SearchIndexer(store.db)
        for operation in operations:
            _apply(store, indexer, operation, clock)
            assert _numbers_out_of_order(store) == [], operation
            for query in queries:
                expected = _expected(store, query)
                assert emails(all_pages(store, "p", query, page_size=page_size)) == expected, (operation, query)
                assert store.count_contacts("p", query) == Count(len(expected)), (operation, query)
                capped = store.count_contacts("p", query, cap=2)
                assert capped == Count(len(expected)) or (len(expected) > 2 and capped == Count(2, exact=False))
        indexer.catch_up()
        assert _pending(store) == 0
        for query in queries:
            expected = _expected(store, query)
            assert emails(all_pages(store, "p", query, page_size=page_size)) == expected, query
            assert store.count_contacts("p", query) == Count(len(expected)), query


# -- what writes and searches do to the index ------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteContactStore]:
    with sqlite_store(tmp_path / "store.db", "contacts") as contact_store:
        yield contact_store


def _patches(n: int, start: int = 0) -> list[ContactPatch]:
    return [
        ContactPatch(
            f"user{i:05d}@example.com", attributes={"k2": i * 7919 % 100_003, "plan": "pro" if i % 3 else "free"}
        )
        for i in range(start, start + n)
    ]


def test_a_bulk_load_into_an_empty_list_logs_nothing_and_the_indexer_builds_it_after(store: SqliteContactStore) -> None:
    """The import path pays nothing for the index: no trigger exists while no list is kept, and the load's rows
    are not logged; searches meanwhile scan (exact), and use the index once the indexer has built it."""
    SearchIndexer(store.db).catch_up()  # the empty list is complete: its triggers exist
    assert _triggers(store) == ["search_log_delete", "search_log_insert", "search_log_update"]
    for start in range(0, 30_000, 10_000):
        store.upsert_contacts("contacts", _patches(10_000, start), UpsertPolicy())
        assert _triggers(store) == [] and _pending(store) == 0
    query = ContactQuery(attributes=(AttributeCondition("k2", str(12345 * 7919 % 100_003)),))
    assert emails(all_pages(store, "contacts", query)) == ["user12345@example.com"]
    assert _state(store) == ("", 0)
    steps = _build(store, SearchIndexer(store.db))
    assert steps == 30_000 // search_indexer.CHUNK + 1
    assert _state(store) == (None, 0)
    assert emails(all_pages(store, "contacts", query)) == ["user12345@example.com"]
    assert store.count_contacts("contacts", ContactQuery(attributes=(AttributeCondition("plan", "free"),))) == Count(
        10_000
    )


def test_searches_never_write_nor_build(store: SqliteContactStore) -> None:
    """A search on a list whose index is not built scans; it creates no index and takes no write lock (the
    previous design built an expression index on a key's first search: 44 s under the write lock at 10M)."""
    store.upsert_contacts("contacts", _patches(50), UpsertPolicy())
    schema = store.db.reader().execute("SELECT name FROM sqlite_master ORDER BY name").fetchall()
    with mock.patch.object(store.db, "write", side_effect=AssertionError("a search took the write lock")):
        for query in (
            ContactQuery(attributes=(AttributeCondition("plan", "pro"),)),
            ContactQuery(attributes=(AttributeCondition("k2", "7919"),)),
            ContactQuery(attributes=(AttributeCondition("plan"),)),
            ContactQuery(email_contains="user0004"),
        ):
            all_pages(store, "contacts", query)
            store.count_contacts("contacts", query, cap=10)
    assert store.db.reader().execute("SELECT name FROM sqlite_master ORDER BY name").fetchall() == schema
    assert _state(store) == ("", 0)


def test_single_writes_are_logged_then_applied(store: SqliteContactStore) -> None:
    """Once built, a single write costs one pending row; the search sees it at once (exact predicate on the
    pending contact), and the indexer applies it."""
    store.upsert_contacts("contacts", _patches(100), UpsertPolicy())
    indexer = SearchIndexer(store.db)
    indexer.catch_up()
    store.update_contact("contacts", Contact("user00007@example.com", attributes_data='{"plan": "vip", "n": 1.5}'))
    store.create_contact("contacts", Contact("new@example.com", attributes_data='{"plan": "vip"}'))
    store.delete_contact("contacts", "user00008@example.com")
    assert _pending(store) == 3
    vip = ContactQuery(attributes=(AttributeCondition("plan", "vip"),))
    assert emails(all_pages(store, "contacts", vip)) == ["new@example.com", "user00007@example.com"]
    assert emails(all_pages(store, "contacts", ContactQuery(email_contains="r00008"))) == []
    indexer.catch_up()
    assert _pending(store) == 0
    assert emails(all_pages(store, "contacts", vip)) == ["new@example.com", "user00007@example.com"]
    assert emails(all_pages(store, "contacts", ContactQuery(attributes=(AttributeCondition("n", "1.5"),)))) == [
        "user00007@example.com"
    ]
    assert emails(all_pages(store, "contacts", ContactQuery(email_contains="ew@ex"))) == ["new@example.com"]


def test_any_scalar_type_and_key_present_are_answered_from_the_index(store: SqliteContactStore) -> None:
    """``key = value`` compares the value as the console shows it: a string as it is, anything else as JSON
    (so "1" finds the number 1 and the string "1"); ``key`` alone finds every value, null included."""
    values: dict[str, object] = {
        "s@x.com": "1",
        "n@x.com": 1,
        "f@x.com": 1.0,
        "t@x.com": True,
        "z@x.com": None,
        "l@x.com": [1, 2],
        "u@x.com": "Zoë",
    }
    for email, value in values.items():
        store.create_contact("contacts", Contact(email, attributes_data=json.dumps({"v": value})))
    store.create_contact("contacts", Contact("none@x.com", attributes_data='{"w": 1}'))
    SearchIndexer(store.db).catch_up()

    def find(value: str | None) -> list[str]:
        return emails(all_pages(store, "contacts", ContactQuery(attributes=(AttributeCondition("v", value),))))

    assert find("1") == ["n@x.com", "s@x.com"]
    assert find("1.0") == ["f@x.com"]
    assert find("true") == ["t@x.com"]
    assert find("null") == ["z@x.com"]
    assert find("[1,2]") == ["l@x.com"]
    assert find("Zoë") == ["u@x.com"]
    assert find(None) == sorted(values)
    with mock.patch.object(store.db, "write", side_effect=AssertionError("a search took the write lock")):
        assert store.count_contacts("contacts", ContactQuery(attributes=(AttributeCondition("v"),)), cap=3) == Count(
            3, exact=False
        )


def test_values_are_found_case_insensitively_from_the_index_and_exactly_on_request(
    store: SqliteContactStore,
) -> None:
    """The index files strings case-folded: ``acme inc`` finds ``ACME Inc`` (and ``strasse`` ``Straße``) from
    the index, counted from its rows alone; an exact search reads the same rows and checks each contact."""
    values = {"a@x.com": "ACME Inc", "b@x.com": "Acme Inc", "c@x.com": "acme inc", "d@x.com": "Straße", "e@x.com": 1}
    for email, value in values.items():
        store.create_contact("contacts", Contact(email, attributes_data=json.dumps({"Company": value})))
    SearchIndexer(store.db).catch_up()
    assert (search_index.view(store.db.reader(), 1) or pytest.fail("not built")).pending == []

    def find(value: str, *, exact: bool = False) -> tuple[list[str], Count]:
        query = ContactQuery(attributes=(AttributeCondition("Company", value, exact=exact),))
        return emails(all_pages(store, "contacts", query)), store.count_contacts("contacts", query)

    assert find("acme inc") == (["a@x.com", "b@x.com", "c@x.com"], Count(3))
    assert find("ACME INC") == (["a@x.com", "b@x.com", "c@x.com"], Count(3))
    assert find("ACME Inc", exact=True) == (["a@x.com"], Count(1))
    assert find("acme inc", exact=True) == (["c@x.com"], Count(1))
    assert find("STRASSE") == (["d@x.com"], Count(1))
    assert find("strasse", exact=True) == ([], Count(0))
    assert find("1") == (["e@x.com"], Count(1))
    folded = store.db.reader().execute("SELECT DISTINCT value FROM search_attributes ORDER BY value").fetchall()
    assert folded == [("1",), ("acme inc",), ("strasse",)]


def test_several_conditions_read_one_from_the_index_and_check_the_rest(store: SqliteContactStore) -> None:
    """Conditions are AND-ed: the index's candidates for one, every other checked on the row; an address prefix
    is a range of the keys."""
    rows = [("ann@ex.com", {"Company": "ACM Inc", "Plan": "pro"}), ("anna@ex.org", {"Company": "acm inc"})]
    rows += [("bob@ex.com", {"Company": "ACM Inc", "Plan": "free"}), ("annie@ex.com", {"Plan": "pro"})]
    for email, attributes in rows:
        store.create_contact("contacts", Contact(email, attributes_data=json.dumps(attributes)))
    SearchIndexer(store.db).catch_up()
    query = ContactQuery(
        domain="ex.com",
        email_prefix="AN",
        attributes=(AttributeCondition("Company", "acm inc"), AttributeCondition("Plan")),
    )
    assert emails(all_pages(store, "contacts", query)) == ["ann@ex.com"]
    assert store.count_contacts("contacts", query) == Count(1)
    assert store.count_contacts("contacts", ContactQuery(email_prefix="ann")) == Count(3)
    short = ContactQuery(email_contains="bo", attributes=(AttributeCondition("Company", "ACM INC"),))
    assert store.count_contacts("contacts", short) == Count(1)  # a needle too short for the index still counts


def test_a_bulk_write_into_a_big_kept_list_logs_its_rows_until_rebuilding_is_cheaper(store: SqliteContactStore) -> None:
    store.upsert_contacts("contacts", _patches(1000), UpsertPolicy())
    indexer = SearchIndexer(store.db)
    indexer.catch_up()
    with mock.patch.multiple(search_index, SMALL_LIST=100, PENDING_LIMIT=60):
        store.upsert_contacts("contacts", _patches(40, 2000), UpsertPolicy())  # logged: 40 pending
        assert _state(store) == (None, 0) and _pending(store) == 40
        store.upsert_contacts("contacts", _patches(40, 3000), UpsertPolicy())  # 80 > max(60, 1040 // 20): rebuild
        assert _state(store) == ("", 0) and _triggers(store) == []
        query = ContactQuery(attributes=(AttributeCondition("plan", "free"),))
        expected = [
            f"user{i:05d}@example.com" for i in [*range(1000), *range(2000, 2040), *range(3000, 3040)] if i % 3 == 0
        ]
        assert emails(all_pages(store, "contacts", query)) == expected
        indexer.catch_up()
        assert _pending(store) == 0 and _state(store) == (None, 0)
        assert emails(all_pages(store, "contacts", query)) == expected


def test_the_indexer_waits_while_bulk_writes_go_on(store: SqliteContactStore) -> None:
    store.upsert_contacts("contacts", _patches(200), UpsertPolicy())
    indexer = SearchIndexer(store.db)
    assert not indexer.step()  # the list is paused for PAUSE_SECONDS after the batch
    with mock.patch.object(search_index.time, "time", return_value=search_index.time.time() + 60):
        assert indexer.step()


def test_deleting_a_list_leaves_its_index_to_the_indexer(tmp_path: Path) -> None:
    with sqlite_store(tmp_path / "s.db", max_lists=None) as store:
        store.create_list("a")
        store.upsert_contacts("a", _patches(5000), UpsertPolicy())
        indexer = SearchIndexer(store.db)
        indexer.catch_up()
        store.delete_list("a")
        assert store.db.reader().execute("SELECT through, orphan FROM search_state").fetchall() == [("", 1)]
        assert _triggers(store) == []
        store.create_list("b")  # may take the deleted list's id: its leftovers are cleared as b is built
        store.create_contact("b", Contact("user00001@example.com", attributes_data='{"plan": "x"}'))
        indexer.catch_up()
        reader = store.db.reader()
        assert reader.execute("SELECT count(*) FROM search_attributes").fetchone() == (1,)
        assert reader.execute("SELECT count(*) FROM search_address_ids").fetchone() == (1,)
        assert reader.execute("SELECT count(*) FROM search_addresses").fetchone() == (1,)
        assert emails(all_pages(store, "b", ContactQuery(attributes=(AttributeCondition("plan"),)))) == [
            "user00001@example.com"
        ]


def test_a_bucket_grown_by_single_writes_is_cut(store: SqliteContactStore) -> None:
    """Contacts added one by one to a list built empty all go to its last bucket, which is cut as it grows
    (always: there is room for ranks above the last bucket), and renumbered when one place runs out of numbers."""
    indexer = SearchIndexer(store.db)
    indexer.catch_up()
    with mock.patch.multiple(search_indexer, SPLIT=10, POS_STEP=4):
        for i in range(80):
            store.create_contact("contacts", Contact(f"c{i:02d}@x.com", attributes_data=json.dumps({"i": i})))
            store.create_contact("contacts", Contact(f"c{i:02d}.{i}@x.com"))  # just after the one before
            indexer.catch_up()
        sizes = [r[0] for r in store.db.reader().execute("SELECT size FROM search_buckets ORDER BY upper")]
        assert sum(sizes) == 160 and max(sizes) <= 11 and len(sizes) >= 16
        for i in (0, 42, 79):
            assert emails(
                all_pages(store, "contacts", ContactQuery(attributes=(AttributeCondition("i", str(i)),)))
            ) == [f"c{i:02d}@x.com"]
        assert len(all_pages(store, "contacts", ContactQuery(attributes=(AttributeCondition("i"),)), page_size=7)) == 80
        assert emails(all_pages(store, "contacts", ContactQuery(email_contains=".4"), page_size=3)) == [
            f"c{i:02d}.{i}@x.com" for i in range(80) if ".4" in f"c{i:02d}.{i}@x.com"
        ]


def test_a_run_of_consecutive_new_addresses_renumbers_only_its_neighbours(store: SqliteContactStore) -> None:
    """New addresses one after another (user1001@, user1002@, ... as the API creates them) fill one gap of
    numbers again and again: only a window of neighbours around the gap is renumbered, never the whole bucket,
    so the indexer's write transactions stay short; searches stay exact."""
    store.upsert_contacts("contacts", _patches(400), UpsertPolicy())
    indexer = SearchIndexer(store.db)
    indexer.catch_up()

    def numbers() -> dict[str, int]:
        return dict(store.db.reader().execute("SELECT address, id FROM search_address_ids").fetchall())

    before = numbers()
    assert len({n >> search_index.POS_BITS for n in before.values()}) == 1  # one bucket
    for i in range(60):  # five times the insertions one gap holds
        store.create_contact("contacts", Contact(f"user00200.{i:02d}@example.com", attributes_data='{"run": 1}'))
        indexer.catch_up()
    after = numbers()
    moved = {key for key, number in before.items() if after[key] != number}
    assert 0 < len(moved) < 100  # of the bucket's 400
    assert all(int(key[4:9]) in range(150, 250) for key in moved)  # its neighbours, around user00200
    assert len(all_pages(store, "contacts", ContactQuery(attributes=(AttributeCondition("run", "1"),)))) == 60
    assert emails(all_pages(store, "contacts", ContactQuery(email_contains="00200."), page_size=7)) == [
        f"user00200.{i:02d}@example.com" for i in range(60)
    ]
    assert emails(all_pages(store, "contacts", ContactQuery(attributes=(AttributeCondition("plan", "free"),)))) == [
        f"user{i:05d}@example.com" for i in range(400) if i % 3 == 0
    ]


def test_new_addresses_drained_together_share_their_gap_and_keep_address_order(store: SqliteContactStore) -> None:
    """A run the indexer finds waiting all at once (an API client creating user00200.00@ to .59@ between two of
    its steps) is numbered in one go: its gap, or one window around it, renumbered once. New addresses on both
    sides of an indexed one are numbered apart, so an address search pages through them in order."""
    store.upsert_contacts("contacts", _patches(400), UpsertPolicy())
    indexer = SearchIndexer(store.db)
    indexer.catch_up()
    before = dict(store.db.reader().execute("SELECT address, id FROM search_address_ids").fetchall())
    run = [f"user00200.{i:02d}@example.com" for i in range(60)]
    for email in run:
        store.create_contact("contacts", Contact(email, attributes_data='{"run": 1}'))
    around = ["user00009.5@example.com", "user00010.1@example.com", "user00010.2@example.com"]
    for email in around:  # two sides of user00010@, drained in the same step
        store.create_contact("contacts", Contact(email, attributes_data='{"run": 2}'))
    with mock.patch.multiple(search_indexer, DRAIN_SECONDS=60, DRAIN_MAX_SECONDS=60):  # one step, however slow
        assert indexer.step(ignore_pauses=True) and _pending(store) == 0
    after = dict(store.db.reader().execute("SELECT address, id FROM search_address_ids").fetchall())
    assert len([key for key, number in before.items() if after[key] != number]) < 100  # a window, not the bucket
    assert _numbers_out_of_order(store) == []
    assert emails(all_pages(store, "contacts", ContactQuery(email_contains="00200."), page_size=7)) == run
    assert emails(all_pages(store, "contacts", ContactQuery(email_contains="user0001"), page_size=3))[:3] == [
        "user00010.1@example.com",
        "user00010.2@example.com",
        "user00010@example.com",
    ]
    assert emails(all_pages(store, "contacts", ContactQuery(attributes=(AttributeCondition("run", "2"),)))) == around


def test_a_drain_step_gives_the_lock_to_a_waiting_writer(store: SqliteContactStore) -> None:
    """Past DRAIN_SECONDS a drain step stops as soon as another writer waits (one contact at least, so it always
    gets somewhere), and otherwise goes on: the API's writes wait for the index about that long, not for 500."""
    store.upsert_contacts("contacts", _patches(100), UpsertPolicy())
    SearchIndexer(store.db).catch_up()
    for i in range(0, 100, 20):  # five new contacts in five gaps
        store.create_contact("contacts", Contact(f"user{i:05d}.new@example.com", attributes_data='{"new": 1}'))
    list_id = store.db.reader().execute("SELECT id FROM contact_lists").fetchone()[0]
    with mock.patch.object(search_indexer, "DRAIN_SECONDS", 0), store.db.write() as conn:
        search_indexer.drain_step(conn, list_id, None, 0, lambda: True)
    assert _pending(store) == 4
    with mock.patch.object(search_indexer, "DRAIN_SECONDS", 0), store.db.write() as conn:
        search_indexer.drain_step(conn, list_id, None, 0, lambda: False)
    assert _pending(store) == 0
    assert len(all_pages(store, "contacts", ContactQuery(attributes=(AttributeCondition("new", "1"),)))) == 5


def test_the_upgrade_drops_the_per_key_indexes_and_builds_every_list(tmp_path: Path) -> None:
    from sescontacts.db import Migrations
    from sescontacts.store.sqlite import MIGRATIONS

    contacts_v2 = Migrations("contacts", MIGRATIONS.steps[:2], MIGRATIONS.functions)
    old = Database(tmp_path / "old.db", (contacts_v2,))
    with old.write() as conn:
        conn.execute("INSERT INTO contact_lists (name, created, updated) VALUES ('contacts', 1, 1)")
        conn.execute(
            "INSERT INTO contacts (list_id, email_key, email, attributes, created, updated) "
            "VALUES (1, 'a@x.com', 'a@x.com', '{\"plan\": \"pro\"}', 1, 1)"
        )
        conn.execute("CREATE INDEX contacts_attr_0123456789abcdef ON contacts (list_id, attributes)")
    old.close()
    store = SqliteContactStore(Database(tmp_path / "old.db", PRODUCT_SCHEMA))
    reader = store.db.reader()
    assert reader.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'contacts_attr_%'").fetchone() == (0,)
    assert _state(store) == ("", 0)
    SearchIndexer(store.db).catch_up()
    assert emails(all_pages(store, "contacts", ContactQuery(attributes=(AttributeCondition("plan", "pro"),)))) == [
        "a@x.com"
    ]
    store.close()


def test_the_upgrade_to_folded_values_builds_every_list_again(tmp_path: Path) -> None:
    """An index built before values were filed case-folded holds ``ACME Inc`` as written: the upgrade starts
    every list again (searches scan, exactly, meanwhile) and the indexer files it as ``acme inc``."""
    from sescontacts.db import Migrations
    from sescontacts.store.sqlite import MIGRATIONS

    fold = MIGRATIONS.steps.index(search_index.fold_values)
    previous = Migrations("contacts", MIGRATIONS.steps[:fold], MIGRATIONS.functions)
    old = Database(tmp_path / "old.db", (previous,))
    with old.write() as conn:
        conn.execute("INSERT INTO contact_lists (name, created, updated) VALUES ('contacts', 1, 1)")
        search_index.list_created(conn, 1)
        conn.execute(
            "INSERT INTO contacts (list_id, email_key, email, attributes, created, updated) "
            "VALUES (1, 'a@x.com', 'a@x.com', '{\"Company\": \"ACME Inc\"}', 1, 1)"
        )
    unfolded = [("Company", "ACME Inc")]
    with mock.patch.object(search_indexer, "attribute_entries", lambda text: unfolded if text else []):
        SearchIndexer(old).catch_up()  # as the previous version built it
    assert old.reader().execute("SELECT value FROM search_attributes").fetchall() == [("ACME Inc",)]
    old.close()
    store = SqliteContactStore(Database(tmp_path / "old.db", PRODUCT_SCHEMA))
    query = ContactQuery(attributes=(AttributeCondition("Company", "acme inc"),))
    assert _state(store) == ("", 0)
    assert emails(all_pages(store, "contacts", query)) == ["a@x.com"]  # the scan, while unbuilt
    SearchIndexer(store.db).catch_up()
    assert store.db.reader().execute("SELECT value FROM search_attributes").fetchall() == [("acme inc",)]
    assert emails(all_pages(store, "contacts", query)) == ["a@x.com"] and store.count_contacts(
        "contacts", query
    ) == Count(1)
    store.close()


def test_a_rekey_builds_the_index_again(tmp_path: Path) -> None:
    """The mirror keys contacts by the exact address: a file moving between identities is re-keyed, and every
    key in the index with it."""
    with sqlite_store(tmp_path / "s.db", "contacts") as store:
        store.create_contact("contacts", Contact("Ann@x.com", attributes_data='{"plan": "pro"}'))
        SearchIndexer(store.db).catch_up()
    exact = SqliteContactStore(Database(tmp_path / "s.db", PRODUCT_SCHEMA), identity=EXACT)
    assert _state(exact) == ("", 0)
    SearchIndexer(exact.db).catch_up()
    assert emails(all_pages(exact, "contacts", ContactQuery(attributes=(AttributeCondition("plan", "pro"),)))) == [
        "Ann@x.com"
    ]
    assert emails(all_pages(exact, "contacts", ContactQuery(email_contains="ANN@"))) == ["Ann@x.com"]
    exact.close()


def test_the_logging_triggers_come_back_at_open_when_a_migration_dropped_them(tmp_path: Path) -> None:
    """A kept list's changes must be logged: a migration that rebuilds ``contacts`` drops its triggers, and the
    next open restores them."""
    with sqlite_store(tmp_path / "s.db", "contacts") as store:
        SearchIndexer(store.db).catch_up()
        with store.db.write() as conn:
            for name in _triggers(store):
                conn.execute(f"DROP TRIGGER {name}")
    with sqlite_store(tmp_path / "s.db") as store:
        assert _triggers(store) == ["search_log_delete", "search_log_insert", "search_log_update"]
        store.create_contact("contacts", Contact("a@x.com", attributes_data='{"plan": "pro"}'))
        assert _pending(store) == 1
        assert emails(all_pages(store, "contacts", ContactQuery(attributes=(AttributeCondition("plan"),)))) == [
            "a@x.com"
        ]


def test_a_rare_or_absent_value_reads_only_the_buckets_holding_it(store: SqliteContactStore) -> None:
    """``key = value`` held by one contact, or by none, reads as much in a list of 400 buckets as in one of
    20 (the previous layout sought the value in every bucket: ~8 ms a million contacts)."""
    rare = ContactQuery(attributes=(AttributeCondition("k2", str(3 * 7919 % 100_003)),))
    absent = ContactQuery(attributes=(AttributeCondition("k2", "-1"),))
    with mock.patch.multiple(search_indexer, CHUNK=2):
        store.upsert_contacts("contacts", _patches(40), UpsertPolicy())
        SearchIndexer(store.db).catch_up()
        small = [vm_steps(store, q) for q in (rare, absent)]
        store.upsert_contacts("contacts", _patches(760, start=40), UpsertPolicy())
        SearchIndexer(store.db).catch_up()
        big = [vm_steps(store, q) for q in (rare, absent)]
    assert (search_index.view(store.db.reader(), 1) or pytest.fail("not built")).through is None
    assert emails(all_pages(store, "contacts", rare)) == ["user00003@example.com"]
    assert store.count_contacts("contacts", absent) == Count(0)
    assert big[0] < 2 * small[0] and big[1] < 2 * small[1], (small, big)


def test_a_topic_filter_only_explicit_choices_match_reads_only_them(store: SqliteContactStore) -> None:
    """ "Opted in" to a topic whose default is OPT_OUT reads the contacts who chose something, not every
    contact's topics (554 ms at 1M, 7.6 s at 10M when few chose): as much at 800 contacts as at 40."""
    store.update_list("contacts", topics=[Topic("offers", "Offers", OPT_OUT)])
    opted_in = ContactQuery(status=OPT_IN, topic=TopicFilter("offers", use_default=True))
    chooser = ContactPatch("user00003@example.com", topic_preferences={"offers": OPT_IN})
    store.upsert_contacts("contacts", [*_patches(40), chooser], UpsertPolicy())
    small = vm_steps(store, opted_in)
    store.upsert_contacts("contacts", _patches(760, start=40), UpsertPolicy())
    big = vm_steps(store, opted_in)
    assert emails(all_pages(store, "contacts", opted_in)) == ["user00003@example.com"]
    assert store.count_contacts("contacts", opted_in) == Count(1)
    assert big < 2 * small, (small, big)


def test_a_rare_condition_with_a_common_one_reads_the_rare_ones_candidates(store: SqliteContactStore) -> None:
    """``k2 = <one contact's number> AND domain example.com`` (every contact's domain) reads as much in 800
    contacts as in 40: the rarest condition's candidates are read, whichever condition the query names first
    (reading the domain's would check every contact's row, 2.0 s for a count at 1M)."""
    one = str(3 * 7919 % 100_003)
    query = ContactQuery(domain="example.com", attributes=(AttributeCondition("plan"), AttributeCondition("k2", one)))
    with mock.patch.multiple(search, RACE=8), mock.patch.multiple(search_indexer, CHUNK=2):
        store.upsert_contacts("contacts", _patches(40), UpsertPolicy())
        SearchIndexer(store.db).catch_up()
        small = vm_steps(store, query)
        store.upsert_contacts("contacts", _patches(760, start=40), UpsertPolicy())
        SearchIndexer(store.db).catch_up()
        big = vm_steps(store, query)
        assert emails(all_pages(store, "contacts", query)) == ["user00003@example.com"]
        assert store.count_contacts("contacts", query, cap=10) == Count(1)
    assert big < 2 * small, (small, big)


def test_a_capped_count_that_would_read_too_many_rows_shows_a_bound(store: SqliteContactStore) -> None:
    """When even the rarest condition has many candidates, a capped count (the console's "10,000+") checks
    at most COUNT_CANDIDATES of them and shows what it found as a bound; an uncapped one (asked for exactly)
    reads them all."""
    rows = [ContactPatch(f"u{i:03d}@example.com", attributes={"plan": "free" if i % 2 else "Free"}) for i in range(600)]
    store.upsert_contacts("contacts", rows, UpsertPolicy())
    SearchIndexer(store.db).catch_up()
    free = ContactQuery(attributes=(AttributeCondition("plan", "free", exact=True),))  # 600 candidates, 300 match
    with mock.patch.multiple(search, COUNT_CANDIDATES=200, FETCH=100):
        bound = store.count_contacts("contacts", free, cap=10_000)
        exact = store.count_contacts("contacts", free)
    assert bound == Count(100, exact=False)
    assert exact == Count(300)
    assert store.count_contacts("contacts", free, cap=10_000) == Count(300)  # under the default budget


def test_the_trigram_index_is_merged_after_a_build_in_short_steps(store: SqliteContactStore) -> None:
    """Each build step's commit leaves FTS5 a segment; once the build ends the indexer merges them, a few pages
    a step so that writers get the lock in between (a common needle read every segment's doclists: one page
    of ``domain example.com`` took 400 ms at 1M, 0.5 ms merged)."""
    with mock.patch.multiple(search_indexer, CHUNK=4, MERGE_PAGES=1):
        store.upsert_contacts("contacts", _patches(400), UpsertPolicy())
        indexer = SearchIndexer(store.db)
        _build(store, indexer)
        assert _segments(store) > 3
        assert indexer.catch_up() > 2
    assert _segments(store) == 1
    assert not indexer.step()  # nothing left: an idle server does not take the write lock
    domain = ContactQuery(domain="example.com")
    assert store.count_contacts("contacts", domain) == Count(400)
    assert len(emails(all_pages(store, "contacts", domain))) == 400


def test_the_upgrade_merges_an_index_built_before_merging(tmp_path: Path) -> None:
    """An index built by the version before the merge step keeps its segments until the upgrade asks the
    indexer to merge them."""
    from sescontacts.db import Migrations
    from sescontacts.store.sqlite import MIGRATIONS

    before_merging = MIGRATIONS.steps[: MIGRATIONS.steps.index(search_index.merge_built_indexes)]
    old = Database(tmp_path / "old.db", (Migrations("contacts", before_merging, MIGRATIONS.functions),))
    with old.write() as conn:
        conn.execute("INSERT INTO contact_lists (name, created, updated) VALUES ('contacts', 1, 1)")
        search_index.list_created(conn, 1)
        conn.executemany(
            "INSERT INTO contacts (list_id, email_key, email, attributes, created, updated) "
            "VALUES (1, ?, ?, NULL, 1, 1)",
            [(f"u{i:03d}@x.com", f"u{i:03d}@x.com") for i in range(200)],
        )
    with mock.patch.multiple(search_indexer, CHUNK=4, want_merge=lambda conn: None):
        SearchIndexer(old).catch_up()  # as the previous version built it
    old.close()
    store = SqliteContactStore(Database(tmp_path / "old.db", PRODUCT_SCHEMA))
    assert _segments(store) > 3
    SearchIndexer(store.db).catch_up()
    assert _segments(store) == 1
    assert store.count_contacts("contacts", ContactQuery(domain="x.com")) == Count(200)
    store.close()
