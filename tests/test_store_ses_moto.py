"""The ContactStore contract on the ses backend pointed at ``moto_server``: an SES implementation we did not write.

moto is a second opinion, not an oracle. Its known deviations, each skipped through ``capabilities`` or an
explicit skip with the reason:
- no pagination: ListContacts ignores PageSize/NextToken (the mirror pages instead, but our own paging of SES
  in the sync cannot be exercised here);
- no duplicate check: CreateContact of an existing address silently overwrites it;
- GetContactList returns no Tags, so tags cannot be read back;
- timestamps are ISO strings (botocore parses them; the store rounds to milliseconds either way);
- ListContacts filters are ignored (the store never sends them: filters are answered by the mirror).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sescontacts.store.ses import SesContactStore
from tests.store_contract import *  # noqa: F403 - the contract's tests run here
from tests.store_contract import ALL_CAPABILITIES, _skip_without_capability  # noqa: F401 - autouse fixture

from .support.ses import MOTO_KEY, clean_env, reset_moto, run_moto, ses_store

MOTO_DEVIATIONS = {
    "pagination": "moto returns every contact in one page and ignores NextToken",
    "duplicate_check": "moto overwrites on a duplicate CreateContact instead of AlreadyExistsException",
    "tags": "moto's GetContactList does not return Tags",
}
# Tests that check a behaviour moto does not have, with the reason (skipped on moto only).
MOTO_SKIPS = {
    "test_a_second_list_is_refused_with_ses_quota_message": "moto has no one-list-per-region quota",
    "test_missing_list_is_not_found_for_every_operation": "moto's message lacks SES's final period",
    "test_update_replaces_everything_by_default": "moto keeps AttributesData when UpdateContact omits it",
    "test_upsert_replaces_or_merges_attributes": "moto keeps AttributesData when UpdateContact omits it",
}


@pytest.fixture(autouse=True)
def _skip_moto_deviations(request: pytest.FixtureRequest) -> None:
    reason = MOTO_SKIPS.get(request.node.originalname)
    if reason:
        pytest.skip(f"moto deviation: {reason}")


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    clean_env()
    with run_moto() as url:
        yield url


@pytest.fixture
def capabilities() -> frozenset[str]:
    return ALL_CAPABILITIES - set(MOTO_DEVIATIONS)


@pytest.fixture
def list_name() -> str:
    return "contacts"


@pytest.fixture
def store(tmp_path: Path, moto_url: str, list_name: str) -> Iterator[SesContactStore]:
    reset_moto(moto_url)
    contact_store = ses_store(tmp_path / "mirror.db", moto_url, key=MOTO_KEY)
    contact_store.create_list(list_name)
    yield contact_store
    contact_store.close()


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
