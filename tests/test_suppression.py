"""The account suppression list (``SqliteSuppressionList``): SES's semantics for put, get, delete and list,
checked against :meth:`SuppressionQuery.matches`."""

from __future__ import annotations

import itertools

import pytest

from sescontacts.db import Database
from sescontacts.errors import BadRequest, NotFound
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.store.sqlite.suppression import SqliteSuppressionList
from sescontacts.suppression import SuppressionQuery


@pytest.fixture
def suppression(tmp_path):
    ticks = itertools.count(1000)
    db = Database(tmp_path / "s.db", PRODUCT_SCHEMA)
    yield SqliteSuppressionList(db, clock=lambda: float(next(ticks)))
    db.close()


def test_put_get_delete_by_folded_address(suppression):
    suppression.put_suppressed("Ann@Example.com", "BOUNCE", message_id="m1", feedback_id="f1")
    entry = suppression.get_suppressed("ann@example.COM")
    assert (entry.email, entry.reason, entry.message_id, entry.feedback_id) == ("Ann@Example.com", "BOUNCE", "m1", "f1")
    suppression.put_suppressed("ann@example.com", "COMPLAINT")
    again = suppression.get_suppressed("ANN@example.com")
    assert (again.email, again.reason) == ("Ann@Example.com", "COMPLAINT")
    assert again.last_update_time > entry.last_update_time
    suppression.delete_suppressed("ann@example.com")
    with pytest.raises(NotFound, match="does not exist on your suppression list"):
        suppression.get_suppressed("ann@example.com")
    with pytest.raises(NotFound):
        suppression.delete_suppressed("ann@example.com")


def test_a_reason_outside_ses_enum_is_refused(suppression):
    with pytest.raises(BadRequest, match="BOUNCE, COMPLAINT"):
        suppression.put_suppressed("a@example.com", "SPAM")
    assert suppression.count_suppressed(SuppressionQuery()) == 0


@pytest.mark.parametrize(
    "query",
    [
        SuppressionQuery(),
        SuppressionQuery(reasons=("BOUNCE",)),
        SuppressionQuery(reasons=("COMPLAINT",), start=1005),
        SuppressionQuery(start=1003, end=1011),
        SuppressionQuery(email_contains="USER1"),
    ],
)
def test_list_pages_match_the_reference_semantics(suppression, query):
    for n in range(25):
        suppression.put_suppressed(f"user{n}@example.com", "BOUNCE" if n % 3 else "COMPLAINT")
    everything = suppression.list_suppressed(SuppressionQuery(), page_size=1000).items
    expected = [e.email for e in everything if query.matches(e)]
    seen: list[str] = []
    token = None
    while True:
        page = suppression.list_suppressed(query, page_size=4, token=token)
        seen.extend(e.email for e in page.items)
        token = page.next_token
        if token is None:
            break
    assert seen == sorted(expected) and seen
    assert suppression.count_suppressed(query) == len(expected)


def test_a_token_from_another_query_is_refused(suppression):
    for n in range(3):
        suppression.put_suppressed(f"u{n}@example.com", "BOUNCE")
    token = suppression.list_suppressed(SuppressionQuery(), page_size=1).next_token
    with pytest.raises(BadRequest, match="NextToken"):
        suppression.list_suppressed(SuppressionQuery(reasons=("BOUNCE",)), page_size=1, token=token)
    with pytest.raises(BadRequest, match="Provided NextToken is invalid"):
        suppression.list_suppressed(SuppressionQuery(), token="garbage")


def test_suppressed_among_finds_a_page_of_contacts_in_one_call(suppression):
    suppression.put_suppressed("B@example.com", "BOUNCE")
    found = suppression.suppressed_among(["a@example.com", "b@EXAMPLE.com"])
    assert list(found) == ["b@example.com"] and found["b@example.com"].email == "B@example.com"


def test_account_reasons_default_to_both_and_can_be_changed(suppression):
    assert suppression.suppressed_reasons() == ("BOUNCE", "COMPLAINT")
    suppression.set_suppressed_reasons(["COMPLAINT"])
    assert suppression.suppressed_reasons() == ("COMPLAINT",)
    suppression.set_suppressed_reasons([])
    assert suppression.suppressed_reasons() == ()
    with pytest.raises(BadRequest):
        suppression.set_suppressed_reasons(["NOPE"])
