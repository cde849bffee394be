"""The local SQLite store: the shared ContactStore contract, plus what only the local store does."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sescontacts.db import Database
from sescontacts.model import OPT_IN, OPT_OUT, Contact, ContactList, ContactQuery, Count, Topic, TopicFilter
from sescontacts.store.sqlite import SqliteContactStore
from tests.store_contract import *  # noqa: F403 - the contract's tests run here
from tests.store_contract import ContactStore, all_pages, emails


@pytest.fixture
def list_name() -> str:
    return "contacts"


@pytest.fixture
def store(tmp_path: Path, list_name: str) -> Iterator[SqliteContactStore]:
    contact_store = SqliteContactStore(Database(tmp_path / "store.db"))
    contact_store.create_list(list_name)
    yield contact_store
    contact_store.close()


@pytest.fixture
def unlimited_store(tmp_path: Path) -> Iterator[ContactStore]:
    contact_store = SqliteContactStore(Database(tmp_path / "unlimited.db"), max_lists=None)
    yield contact_store
    contact_store.close()


# -- property: the SQL agrees with ContactQuery.matches, the reference semantics ----------------------------

_TOPIC_NAMES = ("t0", "t1", "t2")
_DOMAINS = ("example.com", "Example.COM", "sub.example.com", "x.org", "exämple.com", "ex-ample.com")
_LOCAL_CHARS = "aAbBzZ09+_%.'-éÜİK"
_ATTRIBUTE_KEYS = ("plan", "Plan", "n", "", "a.b", 'q"uote', "back\\slash", "$", "é", "with space", "line\nbreak")
_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from([0.5, 1.0, -0.0, 1e16, 0.1 + 0.2]),
    st.sampled_from(["pro", "PRO", "", "1", "true", "null", "é", 'q"', "a\\b"]),
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
    kind = draw(st.sampled_from(["none", "object", "object", "object", "raw"]))
    if kind == "none":
        return None
    if kind == "raw":  # what the SES API may store: any text, JSON or not, object or not
        return draw(
            st.sampled_from(
                [
                    "[1, 2]",
                    '"plan"',
                    "not json",
                    "{}",
                    '{"plan":"pro","plan":"free"}',
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
    attribute_key = draw(st.none() | st.sampled_from(_ATTRIBUTE_KEYS))
    attribute_value = None
    if attribute_key is not None and draw(st.booleans()):
        attribute_value = draw(
            st.sampled_from(["pro", "PRO", "1", "1.0", "true", "null", "", "100.0", "1e2", '"pro"', "[1,2]"])
        )
    return ContactQuery(
        status=draw(st.sampled_from([None, OPT_IN, OPT_OUT])),
        topic=topic,
        email_contains=draw(st.none() | st.text("aAbZ09+_%.@-éÜİKk\\", max_size=3)),
        domain=draw(
            st.none() | st.sampled_from(_DOMAINS) | st.sampled_from(["@EXAMPLE.com", "ample.com", "x.org", "%"])
        ),
        attribute_key=attribute_key,
        attribute_value=attribute_value,
        sort=draw(st.sampled_from(["email", "updated"])),
    )


@st.composite
def _scenarios(draw: st.DrawFn) -> tuple[tuple[Topic, ...], list[Contact], list[ContactQuery]]:
    names = draw(st.lists(st.sampled_from(_TOPIC_NAMES), unique=True, max_size=3))
    topics = tuple(Topic(n, n.upper(), default_status=draw(st.sampled_from([OPT_IN, OPT_OUT]))) for n in names)
    contacts: dict[str, Contact] = {}
    for _ in range(draw(st.integers(0, 14))):
        email = f"{draw(_local_parts())}@{draw(st.sampled_from(_DOMAINS))}"
        if email.lower() in contacts:
            continue
        preferences = draw(st.dictionaries(st.sampled_from(names), st.sampled_from([OPT_IN, OPT_OUT]))) if names else {}
        contacts[email.lower()] = Contact(
            email=email,
            unsubscribe_all=draw(st.booleans()),
            topic_preferences=preferences,
            attributes_data=draw(_attributes_text()),
            updated=float(draw(st.sampled_from([100, 200, 300]))),  # ties exercise the tie-break
        )
    queries = draw(st.lists(_queries(topics), min_size=1, max_size=6))
    return topics, list(contacts.values()), queries


def _reference(contacts: Sequence[Contact], contact_list: ContactList, query: ContactQuery) -> list[str]:
    matching = [c for c in contacts if query.matches(c, contact_list)]
    if query.sort == "updated":
        matching.sort(key=lambda c: (c.updated, c.email.lower()), reverse=True)
    else:
        matching.sort(key=lambda c: c.email.lower())
    return [c.email for c in matching]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=_scenarios(), page_size=st.integers(1, 6))
def test_pages_and_counts_agree_with_the_reference_semantics(
    scenario: tuple[tuple[Topic, ...], list[Contact], list[ContactQuery]], page_size: int
) -> None:
    topics, contacts, queries = scenario
    now = [0.0]
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteContactStore(Database(Path(folder) / "p.db"), clock=lambda: now[0])
        try:
            contact_list = store.create_list("p", topics=topics)
            for contact in contacts:
                now[0] = contact.updated
                store.create_contact("p", contact)
            for query in queries:
                expected = _reference(contacts, contact_list, query)
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
        finally:
            store.close()
