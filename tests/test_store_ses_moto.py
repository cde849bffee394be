"""What only the ses backend against ``moto_server`` shows (an SES implementation we did not write).

The shared ContactStore contract runs on moto in test_store_contract.py (``ses-moto``); moto's known
deviations, each a named skip there, are listed in tests/support/stores.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support.ses import clean_env, run_moto


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
