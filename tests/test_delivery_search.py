"""The contacts page's deliverability filter (``ContactQuery.delivery``) on the SQLite store, for both address
identities, against the model's reference semantics (``ContactQuery.matches`` told which addresses are marked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from sescontacts.db import Database
from sescontacts.model import (
    EXACT,
    FOLDED,
    OPT_OUT,
    AddressIdentity,
    AttributeCondition,
    Contact,
    ContactPatch,
    ContactQuery,
    UpsertPolicy,
    email_key,
)
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.store.sqlite import SqliteContactStore
from sescontacts.store.sqlite.suppression import SqliteSuppressionList
from sescontacts.suppression import SuppressionQuery

from .support.stores import all_pages, sqlite_store, vm_steps

LIST = "contacts"


@pytest.fixture(params=[FOLDED, EXACT], ids=["folded", "exact"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteContactStore]:
    identity: AddressIdentity = request.param
    made = SqliteContactStore(Database(tmp_path / "d.db", PRODUCT_SCHEMA), identity=identity)
    made.create_list(LIST)
    # 60 contacts; the exact identity keeps two spellings of one address apart.
    for n in range(60):
        made.create_contact(LIST, Contact(f"user{n:02}@example.com", unsubscribe_all=n % 4 == 0))
    if identity is EXACT:
        made.create_contact(LIST, Contact("USER07@example.com"))
    yield made
    made.close()


def mark(store: SqliteContactStore) -> dict[str, set[str]]:
    """Suppress every third address, mark bounces and complaints on others, and add marks for addresses in
    no list; the folded keys each filter holds."""
    suppression = SqliteSuppressionList(store.db)
    marked: dict[str, set[str]] = {"suppressed": set(), "bounced": set(), "complained": set()}
    for n in range(0, 70, 3):
        suppression.put_suppressed(f"User{n:02}@Example.com", "BOUNCE")
        marked["suppressed"].add(f"user{n:02}@example.com")
    with store.db.write() as conn:
        for n in range(1, 75, 5):
            key = f"user{n:02}@example.com"
            bounced, complained = (1.0, None) if n % 2 else (None, 2.0)
            conn.execute(
                "INSERT INTO address_marks (email_key, email, bounced_at, complained_at, last_event_at, "
                "last_event_kind) VALUES (?, ?, ?, ?, 3.0, 'BOUNCE')",
                (key, key, bounced, complained),
            )
            marked["bounced" if n % 2 else "complained"].add(key)
    return marked


QUERIES = [
    ContactQuery(delivery="suppressed"),
    ContactQuery(delivery="bounced"),
    ContactQuery(delivery="complained"),
    ContactQuery(delivery="suppressed", status=OPT_OUT),
    ContactQuery(delivery="suppressed", email_contains="user1"),
    ContactQuery(delivery="suppressed", sort="updated"),
    ContactQuery(delivery="bounced", sort="updated", email_prefix="user1"),
]


@pytest.mark.parametrize("query", QUERIES, ids=repr)
def test_pages_and_counts_match_the_reference(store, query) -> None:
    marked = mark(store)
    contact_list = store.get_list(LIST)
    everyone = all_pages(store, LIST)
    expected = [c.email for c in everyone if query.matches(c, contact_list, marked=marked[query.delivery or ""])]
    if query.sort == "updated":
        expected = [c.email for c in all_pages(store, LIST, ContactQuery(sort="updated")) if c.email in expected]
    assert expected, "the case must select someone"
    for size in (1, 4, 1000):
        assert [c.email for c in all_pages(store, LIST, query, page_size=size)] == expected
    assert store.count_contacts(LIST, query).value == len(expected)
    capped = store.count_contacts(LIST, query, cap=2)
    assert (capped.value, capped.exact) == ((2, False) if len(expected) > 2 else (len(expected), True))


def test_both_spellings_of_a_suppressed_address_are_shown_in_an_exact_list(store) -> None:
    mark(store)
    shown = [c.email for c in all_pages(store, LIST, ContactQuery(delivery="bounced"))]
    if store.identity is EXACT:
        assert "USER07@example.com" not in shown  # 7 has no mark
    suppressed = [c.email for c in all_pages(store, LIST, ContactQuery(delivery="suppressed"))]
    assert "user06@example.com" in suppressed and "user07@example.com" not in suppressed
    SqliteSuppressionList(store.db).put_suppressed("user07@EXAMPLE.com", "COMPLAINT")
    suppressed = [c.email for c in all_pages(store, LIST, ContactQuery(delivery="suppressed"))]
    spellings = {"user07@example.com", "USER07@example.com"} if store.identity is EXACT else {"user07@example.com"}
    assert spellings <= set(suppressed)
    assert all(email_key(e) != "user08@example.com" for e in suppressed)


def test_an_unknown_filter_is_a_programming_error(store) -> None:
    with pytest.raises(ValueError, match="unknown deliverability filter"):
        store.list_contacts(LIST, ContactQuery(delivery="spam"))


MARKED = [f"m{n:03}@{'rare' if n % 50 == 0 else 'common'}.example" for n in range(0, 300, 7)]


@pytest.mark.parametrize(
    "query",
    [
        ContactQuery(delivery="complained", attributes=(AttributeCondition("Company", "globex"),)),
        ContactQuery(delivery="suppressed", domain="rare.example"),
        ContactQuery(delivery="bounced", email_contains="rare", sort="updated"),
    ],
    ids=repr,
)
def test_with_the_search_index_the_rarest_source_is_read(tmp_path: Path, query: ContactQuery) -> None:
    """Next to an attribute or address condition the filter's keys race the index's candidates; whichever is
    read, the rows are the reference's, and none is read past what the page needs."""
    with sqlite_store(tmp_path / "i.db", LIST, indexed=True) as indexed:
        for n in range(300):
            company = "Globex" if n % 3 == 0 else "Initech"
            domain = "rare.example" if n % 50 == 0 else "common.example"
            attributes = orjson.dumps({"Company": company}).decode()
            indexed.create_contact(LIST, Contact(f"m{n:03}@{domain}", attributes_data=attributes))
        suppression = SqliteSuppressionList(indexed.db)
        for n in range(0, 300, 2):
            suppression.put_suppressed(f"m{n:03}@{'rare' if n % 50 == 0 else 'common'}.example", "BOUNCE")
        with indexed.db.write() as conn:
            conn.executemany(
                "INSERT INTO address_marks (email_key, email, bounced_at, complained_at, last_event_at, "
                "last_event_kind) VALUES (?, ?, 1.0, 2.0, 3.0, 'BOUNCE')",
                [(e, e) for e in MARKED],
            )
        contact_list = indexed.get_list(LIST)
        marked = {
            "suppressed": {e.email for e in suppression.list_suppressed(SuppressionQuery()).items},
            "bounced": set(MARKED),
        }
        marked["complained"] = marked["bounced"]
        everyone = all_pages(indexed, LIST, ContactQuery(sort=query.sort))
        expected = [c.email for c in everyone if query.matches(c, contact_list, marked=marked[query.delivery or ""])]
        assert expected
        for size in (2, 1000):
            assert [c.email for c in all_pages(indexed, LIST, query, page_size=size)] == expected
        assert indexed.count_contacts(LIST, query).value == len(expected)


def test_a_bulk_action_on_the_filter_reaches_exactly_its_contacts(store) -> None:
    """ "Unsubscribe all N matching" with the Suppressed filter: the walk and its UPDATE share the clause."""
    marked = mark(store)
    query = ContactQuery(delivery="suppressed")
    contact_list = store.get_list(LIST)
    expected = {c.email for c in all_pages(store, LIST) if query.matches(c, contact_list, marked=marked["suppressed"])}
    step = store.apply_to_matching(LIST, query, "delete")
    assert step.matched == step.changed == len(expected)
    left = {c.email for c in all_pages(store, LIST)}
    assert not (left & expected) and len(left) == 60 + (store.identity is EXACT) - len(expected)


def test_the_filter_reads_its_own_addresses_not_the_list(store) -> None:
    """Two suppressed contacts are found reading as much in a list of 1,060 as in one of 60 (a plan that read
    the list and looked each contact up took 15 s a page at 1M)."""
    suppression = SqliteSuppressionList(store.db)
    for email in ("user03@example.com", "user41@example.com"):
        suppression.put_suppressed(email, "BOUNCE")
    query = ContactQuery(delivery="suppressed")
    small = vm_steps(store, query, LIST)
    store.upsert_contacts(LIST, [ContactPatch(f"zz{n:04}@example.com") for n in range(1000)], UpsertPolicy())
    big = vm_steps(store, query, LIST)
    assert [c.email for c in all_pages(store, LIST, query)] == ["user03@example.com", "user41@example.com"]
    assert big < 1.5 * small, (small, big)
