"""What only the ses backend against ``moto_server`` shows (an SES implementation we did not write).

The shared ContactStore contract runs on moto in test_store_contract.py (``ses-moto``); moto's known
deviations, each a named skip there, are listed in tests/support/stores.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sescontacts.bulk.importer import run_import
from sescontacts.bulk.report import ImportOptions
from sescontacts.db import Database, Migrations
from sescontacts.errors import NotFound
from sescontacts.model import Contact, ContactQuery, Outcome
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.store.ses import SesContactStore
from sescontacts.store.sqlite import SqliteContactStore

from .support.ses import MOTO_KEY, boto_session, clean_env, reset_moto, run_moto, ses_store
from .support.stores import all_pages


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    clean_env()
    with run_moto() as url:
        yield url


def test_assume_role_with_external_id_through_sts(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """--role-arn/--external-id: credentials are the assumed role's (moto's STS stands in for AWS's)."""
    from sescontacts.store.ses.client import make_session

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASOURCE0000000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "source-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_url)
    session = make_session(
        region="us-east-1", role_arn="arn:aws:iam::123456789012:role/sescontacts", external_id="ext-123"
    )
    frozen = session.get_credentials().get_frozen_credentials()
    assert frozen.access_key != "AKIASOURCE0000000000" and frozen.token  # temporary credentials of the role
    client = session.client("sesv2", region_name="us-east-1", endpoint_url=moto_url)
    assert "ContactLists" in client.list_contact_lists()  # the assumed credentials sign requests


# -- addresses that differ only in case: moto keys contacts by the exact string, as SES may -----------------

LIST = "contacts"
ANN, ann = "Ann@example.com", "ann@example.com"


@pytest.fixture
def upstream(moto_url: str) -> Any:
    """A plain boto3 client on a fresh moto: another program holding the list, seeded behind the store's back."""
    reset_moto(moto_url)
    client = boto_session(MOTO_KEY).client("sesv2", endpoint_url=moto_url)  # type: ignore[attr-defined]
    client.create_contact_list(ContactListName=LIST)
    return client


@pytest.fixture
def store(tmp_path: Path, moto_url: str, upstream: Any) -> Iterator[SesContactStore]:
    contact_store = ses_store(tmp_path / "mirror.db", moto_url, key=MOTO_KEY)
    yield contact_store
    contact_store.close()


def seed_both(upstream: Any) -> None:
    upstream.create_contact(ContactListName=LIST, EmailAddress=ANN, AttributesData='{"who": "Ann"}')
    upstream.create_contact(
        ContactListName=LIST, EmailAddress=ann, AttributesData='{"who": "ann"}', UnsubscribeAll=True
    )


def upstream_state(upstream: Any) -> dict[str, tuple[bool, str | None]]:
    """Every contact as SES has it (GetContact: attributes included), by the address as SES spells it."""
    listed = upstream.list_contacts(ContactListName=LIST)["Contacts"]
    state = {}
    for item in listed:
        full = upstream.get_contact(ContactListName=LIST, EmailAddress=item["EmailAddress"])
        state[item["EmailAddress"]] = (full["UnsubscribeAll"], full.get("AttributesData"))
    return state


def mirror_state(store: SesContactStore) -> dict[str, tuple[bool, str | None]]:
    return {c.email: (c.unsubscribe_all, c.attributes_data) for c in all_pages(store, LIST)}


def test_full_sync_keeps_apart_what_ses_keeps_apart(store: SesContactStore, upstream: Any) -> None:
    seed_both(upstream)
    (result,) = store.sync_now(full=True)
    assert (result.seen, result.fetched) == (2, 2)
    assert (
        mirror_state(store)
        == upstream_state(upstream)
        == {ANN: (False, '{"who": "Ann"}'), ann: (True, '{"who": "ann"}')}
    )
    assert store.count_contacts(LIST, ContactQuery()).value == 2
    stats = store.list_stats(LIST)
    assert (stats.total, stats.unsubscribed) == (2, 1)
    assert [c.email for c in all_pages(store, LIST, ContactQuery(email_contains="ANN"))] == [ANN, ann]
    assert store.get_contact(LIST, ANN).attributes() == {"who": "Ann"}
    assert store.get_contact(LIST, ann).attributes() == {"who": "ann"}
    store.calls.clear()
    store.sync_now(full=True)
    assert store.calls["get_contact"] == 0  # nothing left to read again


def test_edit_and_delete_reach_the_contact_spelled_so(store: SesContactStore, upstream: Any) -> None:
    seed_both(upstream)
    store.sync_now(full=True)
    store.update_contact(LIST, Contact(ANN, attributes_data='{"who": "Ann", "v": 2}'))
    expected = {ANN: (False, '{"who": "Ann", "v": 2}'), ann: (True, '{"who": "ann"}')}
    assert upstream_state(upstream) == mirror_state(store) == expected
    store.delete_contact(LIST, ann)
    assert upstream_state(upstream) == mirror_state(store) == {ANN: (False, '{"who": "Ann", "v": 2}')}
    assert store.count_contacts(LIST, ContactQuery()).value == 1


def test_incremental_sync_adds_a_new_spelling_of_a_mirrored_address(store: SesContactStore, upstream: Any) -> None:
    upstream.create_contact(ContactListName=LIST, EmailAddress=ANN, AttributesData='{"who": "Ann"}')
    store.sync_now(full=True)
    upstream.create_contact(ContactListName=LIST, EmailAddress=ann, AttributesData='{"who": "ann"}')
    store.sync_now(full=False)
    assert (
        mirror_state(store)
        == upstream_state(upstream)
        == {ANN: (False, '{"who": "Ann"}'), ann: (False, '{"who": "ann"}')}
    )


def test_create_leaves_identity_to_ses(store: SesContactStore, upstream: Any) -> None:
    """The ses backend files contacts as SES does: a new spelling is a new contact when SES says so."""
    store.create_contact(LIST, Contact(ANN, attributes_data='{"who": "Ann"}'))
    store.create_contact(LIST, Contact(ann, attributes_data='{"who": "ann"}'))
    assert (
        mirror_state(store)
        == upstream_state(upstream)
        == {ANN: (False, '{"who": "Ann"}'), ann: (False, '{"who": "ann"}')}
    )


def test_an_address_read_in_another_case_finds_the_one_contact_it_can_mean(
    store: SesContactStore, upstream: Any
) -> None:
    upstream.create_contact(ContactListName=LIST, EmailAddress=ANN, AttributesData='{"who": "Ann"}')
    store.sync_now(full=True)
    assert store.get_contact(LIST, "ANN@EXAMPLE.COM").email == ANN
    # Two spellings: a third one is neither, and the exact spelling always wins.
    upstream.create_contact(ContactListName=LIST, EmailAddress=ann, AttributesData='{"who": "ann"}')
    store.sync_now(full=True)
    with pytest.raises(NotFound):
        store.get_contact(LIST, "ANN@example.com")
    assert store.get_contact(LIST, ann).attributes() == {"who": "ann"}
    assert store.get_contact(LIST, ANN).attributes() == {"who": "Ann"}


def test_writes_name_the_contact_exactly_so_a_repeated_delete_spares_the_other_spelling(
    store: SesContactStore, upstream: Any
) -> None:
    seed_both(upstream)
    store.sync_now(full=True)
    with pytest.raises(NotFound):
        store.update_contact(LIST, Contact("ANN@example.com", attributes_data='{"who": "nobody"}'))
    assert [r.outcome for r in store.delete_contacts(LIST, ["ANN@example.com"])] == [Outcome.NOT_FOUND]
    store.delete_contact(LIST, ann)
    with pytest.raises(NotFound):
        store.delete_contact(LIST, ann)  # sent twice (a double click): ann@ is gone, Ann@ is not ann@
    assert store.get_contact(LIST, ann).email == ANN  # reading it now finds the one contact it can mean
    assert upstream_state(upstream) == mirror_state(store) == {ANN: (False, '{"who": "Ann"}')}


def test_import_rows_spelled_differently_are_two_contacts(
    store: SesContactStore, upstream: Any, tmp_path: Path
) -> None:
    """The importer's last-row-wins dedupe follows the store's identity: on the ses backend, SES's."""
    path = tmp_path / "in.csv"
    path.write_text(f'emailAddress,attributesData\n{ANN},"{{""who"": ""Ann""}}"\n{ann},"{{""who"": ""ann""}}"\n')
    report = run_import(store, path, ImportOptions(LIST))
    assert (report.counts["created"], report.counts["duplicates"]) == (2, 0)
    assert (
        mirror_state(store)
        == upstream_state(upstream)
        == {ANN: (False, '{"who":"Ann"}'), ann: (False, '{"who":"ann"}')}
    )
    report = run_import(store, path, ImportOptions(LIST, action="delete"))
    assert report.counts["deleted"] == 2
    assert mirror_state(store) == upstream_state(upstream) == {}


def test_a_mirror_keyed_by_the_old_rule_is_rekeyed_and_the_next_full_sync_splits_what_it_merged(
    tmp_path: Path, moto_url: str, upstream: Any
) -> None:
    """A mirror written before it keyed contacts by SES's exact address: its rows merged by the lower-cased
    address cannot be split locally, so the first full sync after the upgrade reads them again from SES."""
    seed_both(upstream)
    for name in ("Bob", "Cat"):
        upstream.create_contact(
            ContactListName=LIST, EmailAddress=f"{name}@example.com", AttributesData=f'{{"who": "{name}"}}'
        )
    listed = {
        item["EmailAddress"]: round(item["LastUpdatedTimestamp"].timestamp(), 3)
        for item in upstream.list_contacts(ContactListName=LIST)["Contacts"]
    }
    path = tmp_path / "mirror.db"
    # The schema the old code had (the sync's tables at version 3) and its rule: every key the lower-cased address.
    old_schema = tuple(
        Migrations(m.owner, m.steps[:3], m.functions) if m.owner == "ses_sync" else m for m in PRODUCT_SCHEMA
    )
    clock = [0.0]
    old = SqliteContactStore(Database(path, old_schema), max_lists=None, clock=lambda: clock[0])
    old.create_list(LIST)
    # What the old sync left of Ann@ and ann@: one row, ann@'s listed state and time, neither's attributes.
    clock[0] = listed[ann]
    old.create_contact(LIST, Contact(ann, unsubscribe_all=True))
    # Cat: listed by a walk, its attributes still queued for GetContact when the process stopped.
    clock[0] = listed["Cat@example.com"]
    old.create_contact(LIST, Contact("Cat@example.com"))
    # Bob: written through the store just now (our clock), waiting for a walk to adopt SES's timestamp.
    clock[0] = written = time.time()
    old.create_contact(LIST, Contact("Bob@example.com", attributes_data='{"who": "Bob"}'))
    with old.db.write() as conn:
        conn.execute("INSERT INTO ses_pending VALUES (?, 'bob@example.com', ?)", (LIST, written))
        conn.execute("INSERT INTO ses_unfetched VALUES (?, 'cat@example.com', 'Cat@example.com')", (LIST,))
        conn.execute(
            "INSERT INTO ses_sync (list_name, state, kind, started, phase) VALUES (?, 'running', 'full', ?, 'fetch')",
            (LIST, written),
        )
    old.close()

    store = ses_store(path, moto_url, key=MOTO_KEY)
    try:
        store.sync_now(full=True)
        expected = {
            ANN: (False, '{"who": "Ann"}'),
            ann: (True, '{"who": "ann"}'),
            "Bob@example.com": (False, '{"who": "Bob"}'),
            "Cat@example.com": (False, '{"who": "Cat"}'),
        }
        assert mirror_state(store) == upstream_state(upstream) == expected
        stats = store.list_stats(LIST)
        assert (stats.total, stats.unsubscribed) == (4, 1)
        store.calls.clear()
        store.sync_now(full=True)
        assert store.calls["get_contact"] == 0  # every contact now holds SES's timestamp: nothing to read again
        assert mirror_state(store) == expected
    finally:
        store.close()


def test_an_ses_without_the_suppression_operations_leaves_the_lists_sync_standing(
    store: SesContactStore, upstream: Any
) -> None:
    """moto implements no sesv2 suppression operation (nor GetAccount): the walk is refused, the lists are
    synced all the same, and the refusal is in the suppression walk's own status (the console shows it apart
    from the list's)."""
    seed_both(upstream)
    results = store.sync_now(full=True)
    assert [r.list_name for r in results] == [LIST]
    status = store.sync_status(LIST)
    assert status is not None and status.last_error is None and status.last_synced is not None
    assert status.suppression is not None and status.suppression.last_error
