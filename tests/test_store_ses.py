"""The ContactStore contract on the ses backend, pointed at a running ``sescontacts serve`` (our SES v2 API).

Twice: unthrottled (fast pacer), and with the server throttled (``--throttle 100:5``) while the client's pacer
asks for twice that (200/s), so throttles really happen and must never reach a test as an error.
Plus what only the ses backend does: SES first then the mirror, full-state updates, throttle accounting.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from sescontacts.errors import NotFound
from sescontacts.model import Contact
from sescontacts.store.pacer import Pacer
from sescontacts.store.ses import SesContactStore
from tests.store_contract import *  # noqa: F403 - the contract's tests run here
from tests.store_contract import _skip_without_capability  # noqa: F401 - autouse fixture

from .ses_support import clean_env, ses_store
from .support.server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, RunningServer, run_server

THROTTLED = "100:5"
# What the SES API cannot express, so the ses backend cannot do it either (skipped here, with the reason).
SES_LIMITS = {
    "test_update_replaces_everything_by_default": "SES's UpdateContact merges topic preferences by topic name: "
    "an explicit preference can only be changed, never removed, without deleting the contact",
}


@pytest.fixture(autouse=True)
def _skip_ses_limits(request: pytest.FixtureRequest) -> None:
    reason = SES_LIMITS.get(request.node.originalname)
    if reason:
        pytest.skip(f"SES limit: {reason}")


@pytest.fixture(scope="module", params=["unthrottled", "throttled"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    clean_env()
    extra = ["--throttle", THROTTLED] if request.param == "throttled" else []
    with run_server(tmp_path_factory.mktemp(f"ses-{request.param}"), extra_args=extra) as running:
        running.env["throttled"] = request.param
        yield running


@pytest.fixture
def list_name() -> str:
    return "contacts"


@pytest.fixture
def store(tmp_path: Path, server: RunningServer, list_name: str) -> Iterator[SesContactStore]:
    throttled = server.env.get("throttled") == "throttled"
    # Against the throttled server the client asks for twice the allowed rate: throttles must be absorbed.
    pacer = Pacer(200, 10, base_backoff=0.02, max_backoff=0.2) if throttled else Pacer(1000, 100)
    contact_store = ses_store(tmp_path / "mirror.db", server.url, pacer=pacer)
    for existing in contact_store.list_lists().items:
        contact_store.delete_list(existing.name)
    contact_store.create_list(list_name)
    yield contact_store
    assert pacer.stats.surfaced == 0
    contact_store.close()


def raw_client(server: RunningServer) -> object:
    """A plain boto3 client on the same server: another program changing SES behind the store's back."""
    return boto3.client(
        "sesv2",
        region_name=REGION,
        endpoint_url=server.url,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def test_writes_reach_ses_before_the_mirror(store: SesContactStore, list_name: str, server: RunningServer) -> None:
    store.create_contact(list_name, Contact("a@example.com", attributes_data='{"n": 1}'))
    ses = raw_client(server).get_contact(ContactListName=list_name, EmailAddress="a@example.com")  # type: ignore[attr-defined]
    assert ses["AttributesData"] == '{"n": 1}'
    mirrored = store.mirror.get_contact(list_name, "a@example.com")
    assert mirrored.updated == round(ses["LastUpdatedTimestamp"].timestamp(), 3)


def test_update_keeps_what_another_program_changed(
    store: SesContactStore, list_name: str, server: RunningServer
) -> None:
    """The update is built on SES's current state, not the mirror's stale copy (merge mode)."""
    store.update_list(list_name, topics=[Topic("news", "News"), Topic("offers", "Offers")])  # noqa: F405
    store.create_contact(list_name, Contact("a@example.com", topic_preferences={"news": "OPT_IN"}))
    raw_client(server).update_contact(  # type: ignore[attr-defined]
        ContactListName=list_name,
        EmailAddress="a@example.com",
        TopicPreferences=[
            {"TopicName": "news", "SubscriptionStatus": "OPT_IN"},
            {"TopicName": "offers", "SubscriptionStatus": "OPT_OUT"},
        ],
    )
    updated = store.update_contact(
        list_name,
        Contact("a@example.com", topic_preferences={"news": "OPT_OUT"}, attributes_data='{"x": 1}'),
        merge_topic_preferences=True,
    )
    assert dict(updated.topic_preferences) == {"news": "OPT_OUT", "offers": "OPT_OUT"}
    assert store.mirror.get_contact(list_name, "a@example.com").same_state(updated)


def test_a_contact_deleted_elsewhere_leaves_the_mirror_on_read(
    store: SesContactStore, list_name: str, server: RunningServer
) -> None:
    store.create_contact(list_name, Contact("gone@example.com"))
    raw_client(server).delete_contact(ContactListName=list_name, EmailAddress="gone@example.com")  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        store.get_contact(list_name, "gone@example.com")
    with pytest.raises(NotFound):
        store.mirror.get_contact(list_name, "gone@example.com")


def test_throttles_are_absorbed_not_surfaced(store: SesContactStore, list_name: str, server: RunningServer) -> None:
    for i in range(30):
        store.create_contact(list_name, Contact(f"t{i}@example.com"))
    assert store.pacer.stats.surfaced == 0
    if server.env.get("throttled") == "throttled":
        assert store.pacer.stats.throttled > 0  # the server really did refuse some calls
