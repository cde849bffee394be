"""What only the local SQLite store does (the shared ContactStore contract runs on it in test_store_contract.py)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sescontacts.db import Database
from sescontacts.errors import AlreadyExists, BadRequest, NotFound, SesContactsError
from sescontacts.model import (
    EXACT,
    FOLDED,
    MISSING,
    OPT_IN,
    OPT_OUT,
    AddressIdentity,
    AttributeCondition,
    Contact,
    ContactList,
    ContactPatch,
    ContactQuery,
    Count,
    DayCounts,
    Outcome,
    Topic,
    TopicFilter,
    UpsertPolicy,
    apply_patch,
    email_key,
)
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.store.sqlite import MIGRATIONS, SqliteContactStore, search

from .support.stores import all_pages, emails, sqlite_store


@pytest.fixture
def list_name() -> str:
    return "contacts"


@pytest.fixture
def store(tmp_path: Path, list_name: str) -> Iterator[SqliteContactStore]:
    with sqlite_store(tmp_path / "store.db", list_name) as contact_store:
        yield contact_store


@contextmanager
def _scratch_store(
    clock: Callable[[], float] = time.time, identity: AddressIdentity = FOLDED
) -> Iterator[SqliteContactStore]:
    """One SQLite file per worker and identity for every example of the property tests (a new file and its
    migrations cost more than the example itself); each example starts with no list at all."""
    store = _SCRATCH.get(identity.name)
    if store is None:
        folder = tempfile.mkdtemp(prefix="sescontacts-property-")
        atexit.register(shutil.rmtree, folder, True)
        store = SqliteContactStore(
            Database(Path(folder) / "p.db", PRODUCT_SCHEMA),
            max_lists=None,
            clock=lambda: _SCRATCH["clock"](),
            identity=identity,
        )
        _SCRATCH[identity.name] = store
    for contact_list in store.list_lists().items:
        store.delete_list(contact_list.name)
    _SCRATCH["clock"] = clock
    yield store


_SCRATCH: dict[str, Any] = {}


# -- property: the SQL agrees with ContactQuery.matches, the reference semantics ----------------------------

_TOPIC_NAMES = ("t0", "t1", "t2")
_DOMAINS = ("example.com", "Example.COM", "sub.example.com", "x.org", "exämple.com", "ex-ample.com")
_LOCAL_CHARS = "aAbBzZ09+_%.'-éÜİK\u0301"
_ATTRIBUTE_KEYS = (
    "prénom",
    "plan",
    "Plan",
    "n",
    "",
    "a.b",
    'q"uote',
    "back\\slash",
    "$",
    "é",
    "with space",
    "line\nbreak",
)
_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([0.5, 1.0, -0.0, 1e16, 0.1 + 0.2]),
    st.sampled_from(
        ["pro", "PRO", "Pro", "", "1", "true", "TRUE", "null", "é", "É", "Straße", "strasse", 'q"', "a\\b"]
    ),
)
_JSON_VALUES = st.one_of(
    _JSON_SCALARS,
    st.lists(_JSON_SCALARS, max_size=2),
    st.dictionaries(st.sampled_from("ab"), _JSON_SCALARS, max_size=2),
)


@st.composite
def _local_parts(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.text(_LOCAL_CHARS.replace(".", ""), min_size=1, max_size=4), min_size=1, max_size=2))
    return ".".join(words)


@st.composite
def _attributes_text(draw: st.DrawFn) -> str | None:
    kind = draw(st.sampled_from(["cased", "none", "object", "object", "cased", "raw"]))
    if kind == "none":
        return None
    if kind == "cased":  # values that case-insensitive and exact searches tell apart
        return orjson.dumps({"plan": draw(st.sampled_from(["pro", "PRO", "Pro", "Straße", "STRASSE", "É"]))}).decode()
    if kind == "raw":  # what the SES API may store: any text, JSON or not, object or not
        return draw(
            st.sampled_from(
                [
                    "[1, 2]",
                    '"plan"',
                    "not json",
                    "{}",
                    '{"pr\\u00e9nom": "pro", "pl\\u0061n": "pro"}',
                    '{"n": 1e2}',
                    '{"n": 1E+2}',
                    '{"pl\\u0061n": "pro"}',
                    '{"plan": "pr\\u006f"}',
                    '{ "n" : 3 , "plan" : [1,2] }',
                    "null",
                ]
            )
        )
    value = draw(st.dictionaries(st.sampled_from(_ATTRIBUTE_KEYS), _JSON_VALUES, max_size=3))
    return orjson.dumps(value).decode()


@st.composite
def _queries(draw: st.DrawFn, topics: Sequence[Topic]) -> ContactQuery:
    topic = None
    if topics and draw(st.booleans()):
        topic = TopicFilter(draw(st.sampled_from([t.name for t in topics])), use_default=draw(st.booleans()))
    values = st.sampled_from(["pro", "PRO", "Pro", "1", "1.0", "true", "TRUE", "null", "", "100.0", "1e2", '"pro"'])
    conditions = st.builds(
        AttributeCondition,
        st.sampled_from(["plan", *_ATTRIBUTE_KEYS]),
        st.none() | values | st.sampled_from(["[1,2]", '{"A":1}', "straße", "STRASSE", "é", "É"]),
        exact=st.booleans(),
    )
    if draw(st.booleans()):  # attribute conditions alone, which the other filters would mostly hide
        return ContactQuery(attributes=tuple(draw(st.lists(conditions, min_size=1, max_size=3))))
    return ContactQuery(
        status=draw(st.sampled_from([None, OPT_IN, OPT_OUT])),
        topic=topic,
        email_contains=draw(st.none() | st.text("aAbZ09+_%.@-éÜİKk\\\u0301", max_size=3)),
        domain=draw(
            st.none() | st.sampled_from(_DOMAINS) | st.sampled_from(["@EXAMPLE.com", "ample.com", "x.org", "%"])
        ),
        email_prefix=draw(st.none() | st.text("aAbZ09+_%.@-éÜİKk\\\u0301", max_size=3)),
        attributes=tuple(draw(st.lists(conditions, max_size=3))),
        sort=draw(st.sampled_from(["email", "updated"])),
    )


@st.composite
def _scenarios(draw: st.DrawFn) -> tuple[tuple[Topic, ...], list[Contact], list[ContactQuery]]:
    names = draw(st.lists(st.sampled_from(_TOPIC_NAMES), unique=True, max_size=3))
    topics = tuple(Topic(n, n.upper(), default_status=draw(st.sampled_from([OPT_IN, OPT_OUT]))) for n in names)
    contacts: dict[str, Contact] = {}  # distinct spellings: a test keyed by the folded rule drops its duplicates
    for _ in range(draw(st.integers(0, 14))):
        email = f"{draw(_local_parts())}@{draw(st.sampled_from(_DOMAINS))}"
        if email in contacts:
            continue
        preferences = draw(st.dictionaries(st.sampled_from(names), st.sampled_from([OPT_IN, OPT_OUT]))) if names else {}
        contacts[email] = Contact(
            email=email,
            unsubscribe_all=draw(st.booleans()),
            topic_preferences=preferences,
            attributes_data=draw(_attributes_text()),
            updated=float(draw(st.sampled_from([100, 200, 300]))),  # ties exercise the tie-break
        )
    queries = draw(st.lists(_queries(topics), min_size=1, max_size=6))
    return topics, list(contacts.values()), queries


def _reference(
    contacts: Sequence[Contact], contact_list: ContactList, query: ContactQuery, key: Callable[[str], str]
) -> list[str]:
    matching = [c for c in contacts if query.matches(c, contact_list)]
    if query.sort == "updated":
        matching.sort(key=lambda c: (c.updated, key(c.email)), reverse=True)
    else:
        matching.sort(key=lambda c: key(c.email))
    return [c.email for c in matching]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=_scenarios(),
    page_size=st.integers(1, 6),
    # The address search's probe window and candidate cap, shrunk so small lists take every path it has.
    search_limits=st.sampled_from([(20_000, 5000), (1, 1), (2, 3), (4, 1), (3, 100)]),
)
@pytest.mark.parametrize("identity", [FOLDED, EXACT], ids=lambda i: i.name)
def test_pages_and_counts_agree_with_the_reference_semantics(
    identity: AddressIdentity,
    scenario: tuple[tuple[Topic, ...], list[Contact], list[ContactQuery]],
    page_size: int,
    search_limits: tuple[int, int],
) -> None:
    """Whatever the identity (the ses backend's mirror keeps each spelling), searches ignore case, pages
    list addresses case-insensitively (spellings of one address side by side), and counts agree."""
    topics, spelled, queries = scenario
    contacts = list({identity.key(c.email): c for c in reversed(spelled)}.values())  # one per contact
    now = [0.0]
    probe, candidates = search_limits
    with (
        _scratch_store(clock=lambda: now[0], identity=identity) as store,
        mock.patch.multiple(search, ADDRESS_PROBE=probe, ADDRESS_CANDIDATES=candidates),
    ):
        contact_list = store.create_list("p", topics=topics)
        for contact in contacts:
            now[0] = contact.updated
            store.create_contact("p", contact)
        for query in queries:
            expected = _reference(contacts, contact_list, query, identity.key)
            assert emails(all_pages(store, "p", query, page_size=page_size)) == expected, query
            assert store.count_contacts("p", query) == Count(len(expected)), query
            # A capped count is exact, or stops at the cap when more match (counts kept in the list's
            # row are exact for free).
            capped = store.count_contacts("p", query, cap=2)
            assert capped == Count(len(expected)) or (len(expected) > 2 and capped == Count(2, exact=False))
        stats = store.list_stats("p")
        assert stats.total == len(contacts)
        assert stats.unsubscribed == sum(c.unsubscribe_all for c in contacts)
        for counts, topic in zip(stats.topics, topics, strict=True):
            statuses = [c.effective_status(topic) for c in contacts]
            assert (counts.topic, counts.opt_in, counts.opt_out) == (
                topic.name,
                statuses.count(OPT_IN),
                statuses.count(OPT_OUT),
            )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    original=st.lists(_local_parts(), min_size=1, max_size=20, unique_by=email_key),
    inserts=st.lists(st.lists(_local_parts(), max_size=3), max_size=8),
    page_size=st.integers(1, 5),
    sort=st.sampled_from(["email", "updated"]),
)
def test_pages_stay_stable_while_contacts_are_added_between_them(
    original: list[str], inserts: list[list[str]], page_size: int, sort: str
) -> None:
    """Every contact present from the start is seen exactly once, in order, whatever is added between pages."""
    now = [1000.0]

    def tick() -> float:
        now[0] += 1
        return now[0]

    query = ContactQuery(sort=sort)  # type: ignore[arg-type]
    with _scratch_store(clock=tick) as store:
        store.create_list("p")
        present = {email_key(f"{local}@example.com"): f"{local}@example.com" for local in original}
        for email in present.values():
            store.create_contact("p", Contact(email))
        seen: list[Contact] = []
        token: str | None = None
        batches = iter(inserts)
        while True:
            page = store.list_contacts("p", query, page_size=page_size, token=token)
            seen += page.items
            token = page.next_token
            if token is None:
                break
            for local in next(batches, []):
                email = f"{local}@example.com"
                if email_key(email) not in present:
                    present[email_key(email)] = email
                    store.create_contact("p", Contact(email))
        keys = [email_key(c.email) for c in seen]
        assert len(keys) == len(set(keys))
        assert {email_key(f"{local}@example.com") for local in original} <= set(keys)
        if sort == "email":
            assert keys == sorted(keys)
        else:
            assert [(c.updated, email_key(c.email)) for c in seen] == sorted(
                ((c.updated, email_key(c.email)) for c in seen), reverse=True
            )


# -- property: counters kept in the list's row agree with the contacts, whatever the sequence of writes -----

_OPS_EMAILS = st.sampled_from(["a@x.com", "A@x.com", "b@x.com", "c@x.com", "C@X.COM", "d@x.com"])
_PATCHES = st.builds(
    ContactPatch,
    email=_OPS_EMAILS,
    unsubscribe_all=st.sampled_from([MISSING, True, False]),
    attributes=st.sampled_from([MISSING, None, {"a": 1}, {"b": 2}]),
    topic_preferences=st.dictionaries(st.sampled_from(["t0", "t1"]), st.sampled_from([OPT_IN, OPT_OUT]), max_size=2),
)
_OPERATIONS = st.one_of(
    st.tuples(st.just("create"), _OPS_EMAILS, st.booleans()),
    st.tuples(st.just("update"), _OPS_EMAILS, st.booleans()),
    st.tuples(st.just("delete"), _OPS_EMAILS),
    st.tuples(st.just("upsert"), st.lists(_PATCHES, max_size=5), st.booleans(), st.booleans(), st.booleans()),
    st.tuples(st.just("delete_many"), st.lists(_OPS_EMAILS, max_size=4), st.booleans()),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=st.lists(_OPERATIONS, max_size=12))
def test_counts_and_stats_follow_any_sequence_of_writes(operations: list[tuple[object, ...]]) -> None:
    """A reference dict replays every write with the model's rules; the store must agree, counters included."""
    topics = (Topic("t0", "T0", default_status=OPT_IN), Topic("t1", "T1", default_status=OPT_OUT))
    reference: dict[str, Contact] = {}
    turned_unsubscribed = 0  # existing contacts that turned unsubscribe-all on, as the overview counts them
    with _scratch_store() as store:
        contact_list = store.create_list("p", topics=topics)
        for operation in operations:
            before = dict(reference)
            kind, *args = operation
            if kind == "create":
                email, unsubscribed = args
                if str(email).lower() in reference:
                    with pytest.raises(AlreadyExists):
                        store.create_contact("p", Contact(str(email)))
                else:
                    reference[str(email).lower()] = store.create_contact(
                        "p", Contact(str(email), unsubscribe_all=bool(unsubscribed))
                    )
            elif kind == "update":
                email, unsubscribed = args
                if str(email).lower() in reference:
                    reference[str(email).lower()] = store.update_contact(
                        "p",
                        Contact(str(email), unsubscribe_all=bool(unsubscribed), topic_preferences={"t1": OPT_IN}),
                    )
                else:
                    with pytest.raises(NotFound):
                        store.update_contact("p", Contact(str(email)))
            elif kind == "delete":
                if reference.pop(str(args[0]).lower(), None) is None:
                    with pytest.raises(NotFound):
                        store.delete_contact("p", str(args[0]))
                else:
                    store.delete_contact("p", str(args[0]))
            elif kind == "upsert":
                patches, resubscribe, merge, dry_run = args
                policy = UpsertPolicy(resubscribe=bool(resubscribe), merge_attributes=bool(merge))
                results = store.upsert_contacts("p", patches, policy, dry_run=bool(dry_run))  # type: ignore[arg-type]
                replay = dict(reference)
                expected = []
                for patch in patches:  # type: ignore[attr-defined]
                    after, result = apply_patch(replay.get(patch.email.lower()), patch, policy, 0.0)
                    replay[patch.email.lower()] = after
                    expected.append(result)
                assert results == expected
                if not dry_run:
                    reference = {k: store.get_contact("p", k) for k in replay}
                    for key, contact in replay.items():
                        assert reference[key].same_state(contact)
            else:
                targets, dry_run = args
                results = store.delete_contacts("p", targets, dry_run=bool(dry_run))  # type: ignore[arg-type]
                gone: set[str] = set()
                for target, result in zip(targets, results, strict=True):  # type: ignore[call-overload]
                    key = str(target).lower()
                    found = key in reference and key not in gone
                    gone.add(key)
                    assert result.outcome == (Outcome.DELETED if found else Outcome.NOT_FOUND)
                if not dry_run:
                    for key in gone:
                        reference.pop(key, None)
            listed = all_pages(store, "p")
            assert [c.email.lower() for c in listed] == sorted(reference)
            for contact in listed:
                assert contact.same_state(reference[contact.email.lower()])
            stats = store.list_stats("p")
            assert (stats.total, stats.unsubscribed) == (
                len(reference),
                sum(c.unsubscribe_all for c in reference.values()),
            )
            assert store.count_contacts("p", ContactQuery(status=OPT_OUT)) == Count(stats.unsubscribed)
            for counts, topic in zip(stats.topics, contact_list.topics, strict=True):
                statuses = [c.effective_status(topic) for c in reference.values()]
                assert (counts.opt_in, counts.opt_out) == (statuses.count(OPT_IN), statuses.count(OPT_OUT))
            turned_unsubscribed += sum(
                1 for k, c in reference.items() if k in before and c.unsubscribe_all and not before[k].unsubscribe_all
            )
            assert sum(d.added for d in stats.per_day) - sum(d.removed for d in stats.per_day) == stats.total
            assert sum(d.unsubscribed for d in stats.per_day) == turned_unsubscribed


# -- what only the local store does ------------------------------------------------------------------------


def test_upsert_is_all_or_nothing(store: SqliteContactStore, list_name: str) -> None:
    with pytest.raises(BadRequest, match=f"List: {list_name} doesn't contain Topic: sports"):
        store.upsert_contacts(
            list_name,
            [ContactPatch("a@example.com"), ContactPatch("b@example.com", topic_preferences={"sports": OPT_IN})],
            UpsertPolicy(),
        )
    assert all_pages(store, list_name) == []
    assert store.list_stats(list_name).total == 0


def test_bulk_deletes_report_each_address_after_a_batch_that_found_all(
    store: SqliteContactStore, list_name: str
) -> None:
    """A batch of present addresses takes the plain DELETE; the next, with a missing address and one written
    twice, is rolled back from it and still says which were deleted, and the counters agree."""
    store.upsert_contacts(
        list_name,
        [ContactPatch(f"u{i}@example.com", unsubscribe_all=i % 2 == 0) for i in range(6)],
        UpsertPolicy(),
    )
    assert [r.outcome for r in store.delete_contacts(list_name, ["u0@example.com", "U1@example.com"])] == [
        Outcome.DELETED,
        Outcome.DELETED,
    ]
    assert (store.list_stats(list_name).total, store.list_stats(list_name).unsubscribed) == (4, 2)
    results = store.delete_contacts(
        list_name, ["u2@example.com", "nobody@example.com", "u2@example.com", "u3@example.com"]
    )
    assert [r.outcome for r in results] == [Outcome.DELETED, Outcome.NOT_FOUND, Outcome.NOT_FOUND, Outcome.DELETED]
    assert [c.email for c in all_pages(store, list_name)] == ["u4@example.com", "u5@example.com"]
    assert (store.list_stats(list_name).total, store.list_stats(list_name).unsubscribed) == (2, 1)
    assert [r.outcome for r in store.delete_contacts(list_name, ["u4@example.com", "u5@example.com"])] == [
        Outcome.DELETED,
        Outcome.DELETED,
    ]
    assert (store.list_stats(list_name).total, store.list_stats(list_name).unsubscribed) == (0, 0)


def test_removing_a_topic_drops_its_preferences_and_counts(store: SqliteContactStore, list_name: str) -> None:
    store.update_list(list_name, topics=[Topic("t0", "T0"), Topic("t1", "T1")])
    store.create_contact(list_name, Contact("a@example.com", topic_preferences={"t0": OPT_IN, "t1": OPT_IN}))
    assert [t.topic for t in store.list_stats(list_name).topics] == ["t0", "t1"]
    store.update_list(list_name, topics=[Topic("t1", "T1")])
    assert dict(store.get_contact(list_name, "a@example.com").topic_preferences) == {"t1": OPT_IN}
    assert [(t.topic, t.opt_in) for t in store.list_stats(list_name).topics] == [("t1", 1)]
    # Re-adding the topic does not bring back the old choice.
    store.update_list(list_name, topics=[Topic("t0", "T0"), Topic("t1", "T1")])
    assert dict(store.get_contact(list_name, "a@example.com").topic_preferences) == {"t1": OPT_IN}


@pytest.mark.parametrize("page_size", [0, -1, 1001])
def test_page_size_out_of_range_is_bad_request(store: SqliteContactStore, list_name: str, page_size: int) -> None:
    with pytest.raises(BadRequest) as exc:
        store.list_contacts(list_name, page_size=page_size)
    assert exc.value.message == "The page size must be between 1 and 1000"


def test_per_day_counts_use_utc_days_and_every_write_path(tmp_path: Path) -> None:
    """What the overview's chart shows: each day's additions, removals and unsubscribes, from single writes,
    imports and bulk actions alike, on the UTC day they happened; later writes never rewrite a past day."""
    day = 86_400.0
    now = [19_000 * day + 100]  # 2022-01-08 00:01:40 UTC
    store = SqliteContactStore(Database(tmp_path / "d.db", PRODUCT_SCHEMA), clock=lambda: now[0])
    store.create_list("p")
    store.upsert_contacts("p", [ContactPatch(f"a{i}@x.com") for i in range(6)], UpsertPolicy())
    store.create_contact("p", Contact("gone@x.com", unsubscribe_all=True))  # added unsubscribed: added only
    now[0] += day
    store.create_contact("p", Contact("b@x.com"))
    store.delete_contact("p", "a0@x.com")
    store.update_contact("p", Contact("a1@x.com", unsubscribe_all=True))
    store.upsert_contacts("p", [ContactPatch("a2@x.com", unsubscribe_all=True)], UpsertPolicy())  # an import row
    store.delete_contacts("p", ["a3@x.com", "nobody@x.com"])
    store.apply_to_matching("p", ContactQuery(email_contains="a4@"), "unsubscribe")
    store.apply_to_matching("p", ContactQuery(email_contains="gone@"), "delete")
    store.update_contact("p", Contact("a1@x.com"))  # resubscribed: not an unsubscribe, and a1 stays counted
    assert store.list_stats("p").per_day == (
        DayCounts("2022-01-08", added=7),
        DayCounts("2022-01-09", added=1, removed=3, unsubscribed=3),
    )
    store.close()


def test_data_survives_reopening(tmp_path: Path) -> None:
    first = SqliteContactStore(Database(tmp_path / "r.db", PRODUCT_SCHEMA))
    first.create_list("p", topics=[Topic("t0", "T0")], tags=[("k", "v")])
    first.create_contact("p", Contact("a@example.com", topic_preferences={"t0": OPT_IN}, attributes_data='{"a":1}'))
    first.create_contact("p", Contact("b@example.com"))
    token = first.list_contacts("p", page_size=1).next_token
    first.close()
    second = SqliteContactStore(Database(tmp_path / "r.db", PRODUCT_SCHEMA))
    assert second.get_list("p").tags == (("k", "v"),)
    assert second.get_contact("p", "a@example.com").attributes_data == '{"a":1}'
    # Page tokens outlive a restart (the signing secret is in the database)...
    assert emails(second.list_contacts("p", page_size=1, token=token).items) == ["b@example.com"]
    second.close()
    # ...but a token from another database is refused.
    other = SqliteContactStore(Database(tmp_path / "other.db", PRODUCT_SCHEMA))
    other.create_list("p")
    with pytest.raises(BadRequest):
        other.list_contacts("p", page_size=1, token=token)
    other.close()


def test_stats_are_recomputed_after_any_write(store: SqliteContactStore, list_name: str) -> None:
    store.update_list(list_name, topics=[Topic("t0", "T0", default_status=OPT_OUT)])
    store.create_contact(list_name, Contact("a@example.com"))
    assert store.list_stats(list_name).topics[0].opt_in == 0
    store.update_list(list_name, topics=[Topic("t0", "T0", default_status=OPT_IN)])
    assert store.list_stats(list_name).topics[0].opt_in == 1
    store.update_contact(list_name, Contact("a@example.com", topic_preferences={"t0": OPT_OUT}))
    assert store.list_stats(list_name).topics[0].opt_in == 0


def test_stats_never_stale_when_another_process_recreates_the_list(tmp_path: Path) -> None:
    """A server and a CLI command share the file: a list deleted and re-created elsewhere is not the cached one."""
    clock = [1000.0]
    server = SqliteContactStore(Database(tmp_path / "s.db", PRODUCT_SCHEMA), clock=lambda: clock[0])
    cli = SqliteContactStore(Database(tmp_path / "s.db", PRODUCT_SCHEMA), clock=lambda: clock[0])
    topics = [Topic("t0", "T0", default_status=OPT_OUT)]
    server.create_list("p", topics=topics)
    server.create_contact("p", Contact("a@example.com", topic_preferences={"t0": OPT_IN}))
    server.create_contact("p", Contact("b@example.com", topic_preferences={"t0": OPT_IN}))
    assert server.list_stats("p").topics[0].opt_in == 2
    clock[0] += 1
    cli.delete_list("p")
    cli.create_list("p", topics=topics)
    cli.create_contact("p", Contact("c@example.com"))
    cli.create_contact("p", Contact("d@example.com"))
    assert (server.list_stats("p").topics[0].opt_in, server.list_stats("p").topics[0].opt_out) == (0, 2)
    server.close()
    cli.close()


def test_composed_and_decomposed_spellings_are_one_person(store: SqliteContactStore, list_name: str) -> None:
    composed, decomposed = "Ren\u00e9@example.com", "rene\u0301@EXAMPLE.com"
    store.create_contact(list_name, Contact(composed))
    with pytest.raises(AlreadyExists):
        store.create_contact(list_name, Contact(decomposed))
    assert store.get_contact(list_name, decomposed).email == composed
    assert emails(all_pages(store, list_name, ContactQuery(email_contains="rene\u0301"))) == [composed]


def test_upgrade_rekeys_decomposed_addresses(tmp_path: Path) -> None:
    """A database written before keys were NFC-normalised finds its contacts by either spelling afterwards."""
    from sescontacts.db import Migrations

    contacts_v1 = Migrations("contacts", MIGRATIONS.steps[:1], MIGRATIONS.functions)
    old = Database(tmp_path / "old.db", (contacts_v1,))
    decomposed = "rene\u0301@example.com"
    with old.write() as conn:  # what the old code stored: the key lower-cased only
        conn.execute("INSERT INTO contact_lists (name, created, updated) VALUES ('p', 1, 1)")
        conn.execute(
            "INSERT INTO contacts (list_id, email_key, email, created, updated) VALUES (1, ?, ?, 1, 1)",
            (decomposed, decomposed),
        )
    old.close()
    upgraded = SqliteContactStore(Database(tmp_path / "old.db", PRODUCT_SCHEMA))
    assert upgraded.db.schema_version("contacts") == MIGRATIONS.version
    assert upgraded.get_contact("p", "Ren\u00e9@example.com").email == decomposed
    upgraded.close()


def test_the_exact_identity_keeps_spellings_apart_yet_sorts_and_searches_like_the_folded_one(tmp_path: Path) -> None:
    """The ses backend's mirror (``EXACT``): each spelling its own contact, as SES may keep them, while pages
    still list addresses case-insensitively and searches still ignore case and Unicode composition."""
    store = SqliteContactStore(Database(tmp_path / "m.db", PRODUCT_SCHEMA), identity=EXACT)
    store.create_list("m")
    for address in ("ann@example.com", "Zoe@example.com", "Ann@example.com", "e\u0301@x.org"):
        store.create_contact("m", Contact(address))
    results = store.upsert_contacts(
        "m", [ContactPatch("\u00e9mile@ex\u00e4mple.com"), ContactPatch("\u00c9mile@ex\u00c4mple.com")], UpsertPolicy()
    )
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.CREATED]
    with pytest.raises(AlreadyExists):
        store.create_contact("m", Contact("Ann@example.com"))
    in_order = [
        "Ann@example.com",
        "ann@example.com",
        "Zoe@example.com",
        "e\u0301@x.org",
        "\u00c9mile@ex\u00c4mple.com",
        "\u00e9mile@ex\u00e4mple.com",
    ]
    assert emails(all_pages(store, "m", page_size=2)) == in_order
    assert store.count_contacts("m", ContactQuery()).value == 6
    # Searches match the folded address only, never the spelling filed after it.
    assert emails(all_pages(store, "m", ContactQuery(email_contains="E"))) == [
        "Ann@example.com",
        "ann@example.com",
        "Zoe@example.com",
        "\u00c9mile@ex\u00c4mple.com",
        "\u00e9mile@ex\u00e4mple.com",
    ]
    assert emails(all_pages(store, "m", ContactQuery(domain="EX\u00c4MPLE.COM"))) == in_order[-2:]
    # Newest first; the two written in one batch tie, and their keys break it (descending).
    assert emails(all_pages(store, "m", ContactQuery(email_contains="\u00c9", sort="updated"))) == [
        "\u00e9mile@ex\u00e4mple.com",
        "\u00c9mile@ex\u00c4mple.com",
        "e\u0301@x.org",
    ]
    assert store.get_contact("m", "ann@example.com").email == "ann@example.com"
    with pytest.raises(NotFound):
        store.get_contact("m", "ANN@example.com")
    store.delete_contact("m", "Ann@example.com")
    assert [r.outcome for r in store.delete_contacts("m", ["ann@example.com", "ANN@example.com"])] == [
        Outcome.DELETED,
        Outcome.NOT_FOUND,
    ]
    assert emails(all_pages(store, "m")) == in_order[2:]
    store.close()


def test_a_file_moving_between_identities_is_rekeyed_and_never_loses_a_contact(tmp_path: Path) -> None:
    path = tmp_path / "s.db"

    def open_store(identity: AddressIdentity) -> SqliteContactStore:
        return SqliteContactStore(Database(path, PRODUCT_SCHEMA), identity=identity)

    local = open_store(FOLDED)
    local.create_list("l")
    local.create_contact("l", Contact("Ann@example.com", attributes_data='{"n": 1}'))
    local.close()
    mirror = open_store(EXACT)
    assert mirror.get_contact("l", "Ann@example.com").attributes() == {"n": 1}
    mirror.create_contact("l", Contact("ann@example.com"))
    mirror.close()
    db = Database(path, PRODUCT_SCHEMA)
    with pytest.raises(SesContactsError, match=r"\(Ann@example\.com, ann@example\.com\)"):
        SqliteContactStore(db)  # the folded rule would merge them: refused, nothing changed
    db.close()
    mirror = open_store(EXACT)
    assert emails(all_pages(mirror, "l")) == ["Ann@example.com", "ann@example.com"]
    mirror.delete_contact("l", "ann@example.com")
    mirror.close()
    local = open_store(FOLDED)
    assert local.get_contact("l", "ANN@EXAMPLE.COM").attributes() == {"n": 1}
    with pytest.raises(AlreadyExists):
        local.create_contact("l", Contact("ann@example.com"))
    local.close()


def test_contact_validation_follows_ses_order(store: SqliteContactStore, list_name: str) -> None:
    """Enums, then name and address format, then the list, then its topics (contract §7)."""
    bad_status = {"sports": "MAYBE"}
    with pytest.raises(BadRequest, match="enum value set"):
        store.create_contact("bad name!", Contact("not-an-address", topic_preferences=bad_status))
    with pytest.raises(BadRequest, match="ContactListName can contain"):
        store.create_contact("bad name!", Contact("not-an-address", topic_preferences={"sports": OPT_IN}))
    with pytest.raises(BadRequest, match="EmailAddress <not-an-address> is invalid"):
        store.create_contact("nosuch", Contact("not-an-address", topic_preferences={"sports": OPT_IN}))
    with pytest.raises(NotFound, match="List with name: nosuch doesn't exist"):
        store.create_contact("nosuch", Contact("a@example.com", topic_preferences={"sports": OPT_IN}))
    with pytest.raises(BadRequest, match=f"List: {list_name} doesn't contain Topic: sports"):
        store.create_contact(list_name, Contact("a@example.com", topic_preferences={"sports": OPT_IN}))
    with pytest.raises(BadRequest, match="enum value set"):
        store.update_contact("nosuch", Contact("a@example.com", topic_preferences=bad_status))


def test_attribute_search_finds_keys_written_with_escapes(store: SqliteContactStore, list_name: str) -> None:
    """boto3 users build AttributesData with json.dumps, which escapes non-ASCII: the search must still find it."""
    import json

    store.create_contact(list_name, Contact("a@example.com", attributes_data=json.dumps({"prénom": "Zoë"})))
    store.create_contact(list_name, Contact("b@example.com", attributes_data='{"prénom": "Zoë"}'))
    query = ContactQuery(attributes=(AttributeCondition("prénom", "Zoë"),))
    for _ in range(2):  # before and after the search built its index
        assert emails(all_pages(store, list_name, query)) == ["a@example.com", "b@example.com"]
        assert store.count_contacts(list_name, query) == Count(2)


def test_attribute_search_with_duplicate_keys_in_raw_text(store: SqliteContactStore, list_name: str) -> None:
    """A key written twice (possible through the SES API) matches its last value, as the console shows it,
    before and after the search built its index."""
    store.create_contact(list_name, Contact("a@example.com", attributes_data='{"plan": "free", "plan": "pro"}'))
    for _ in range(2):
        assert emails(all_pages(store, list_name, ContactQuery(attributes=(AttributeCondition("plan", "pro"),)))) == [
            "a@example.com"
        ]
        assert emails(all_pages(store, list_name, ContactQuery(attributes=(AttributeCondition("plan", "free"),)))) == []


@pytest.mark.parametrize("status", ["MAYBE", "opt_out", ""])
def test_unknown_filter_status_is_refused_not_ignored(store: SqliteContactStore, list_name: str, status: str) -> None:
    store.create_contact(list_name, Contact("a@example.com"))
    for call in (
        lambda: store.list_contacts(list_name, ContactQuery(status=status)),
        lambda: store.count_contacts(list_name, ContactQuery(status=status)),
    ):
        with pytest.raises(BadRequest, match="Member must satisfy enum value set"):
            call()


def test_page_view_numbers_do_not_scan_the_contacts(store: SqliteContactStore, list_name: str) -> None:
    """Totals come from counters kept in the list's row, topic counts from a cache: a page view with a million
    contacts must not count them again. Checked on the SQL the store runs (this thread's read connection)."""
    store.update_list(list_name, topics=[Topic("t0", "T0")])
    store.upsert_contacts(list_name, [ContactPatch(f"c{i}@example.com") for i in range(20)], UpsertPolicy())
    store.list_stats(list_name)  # fills the topic-count cache
    statements: list[str] = []
    store.db.reader().set_trace_callback(statements.append)
    try:
        assert store.count_contacts(list_name, ContactQuery()) == Count(20)
        assert store.count_contacts(list_name, ContactQuery(status=OPT_OUT)) == Count(0)
        assert store.list_stats(list_name).total == 20
    finally:
        store.db.reader().set_trace_callback(None)
    assert statements, "the trace saw nothing: is the store reading on another connection?"
    assert not [s for s in statements if "FROM contacts" in s], statements


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Threads of a server and a second process's store write at once: every write lands, counters agree."""
    from concurrent.futures import ThreadPoolExecutor

    server = SqliteContactStore(Database(tmp_path / "c.db", PRODUCT_SCHEMA))
    server.create_list("p", topics=[Topic("t0", "T0")])
    other_process = SqliteContactStore(Database(tmp_path / "c.db", PRODUCT_SCHEMA))

    def work(worker: int) -> None:
        store = server if worker % 2 else other_process
        for i in range(12):
            store.create_contact("p", Contact(f"w{worker}-{i}@example.com", unsubscribe_all=i % 5 == 0))
            if i % 3 == 0:
                store.update_contact("p", Contact(f"w{worker}-{i}@example.com", topic_preferences={"t0": OPT_OUT}))
            if i % 4 == 0:
                store.delete_contact("p", f"w{worker}-{i}@example.com")
        store.upsert_contacts("p", [ContactPatch(f"bulk{worker}-{i}@example.com") for i in range(20)], UpsertPolicy())
        all_pages(store, "p", page_size=50)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(work, range(6)))
    everyone = all_pages(server, "p")
    expected = {f"w{w}-{i}@example.com" for w in range(6) for i in range(12) if i % 4} | {
        f"bulk{w}-{i}@example.com" for w in range(6) for i in range(20)
    }
    assert {c.email for c in everyone} == expected
    for store in (server, other_process):
        stats = store.list_stats("p")
        assert stats.total == len(expected)
        assert stats.unsubscribed == sum(c.unsubscribe_all for c in everyone)
        statuses = [c.effective_status(Topic("t0", "T0")) for c in everyone]
        assert (stats.topics[0].opt_in, stats.topics[0].opt_out) == (statuses.count(OPT_IN), statuses.count(OPT_OUT))
    server.close()
    other_process.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(st.text("abcXYZ09_-", min_size=1, max_size=5), unique=True, max_size=12),
    page_size=st.integers(1, 5),
)
def test_list_pages_return_every_list_once_in_name_order(names: list[str], page_size: int) -> None:
    with _scratch_store() as store:
        for name in names:
            store.create_list(name)
        seen: list[str] = []
        token: str | None = None
        while True:
            page = store.list_lists(page_size=page_size, token=token)
            assert len(page.items) <= page_size
            seen += [lst.name for lst in page.items]
            token = page.next_token
            if token is None:
                break
        assert seen == sorted(names)
