"""The two SES updates whose sources disagree, and a ses backend that is right under either reading.

UpdateContact's TopicPreferences: the current API reference says omitted preferences are removed; the older
reference and a probe of real SES say they merge by topic name. UpdateContactList without Topics or
Description: the model calls it "a complete replacement"; the probe saw both kept. The local SES API applies
the probe's reading by default and the reference's with ``--ses-semantics documented``.

The ses backend must not depend on which one real SES follows: it sends the whole contact and the whole list
definition every time. It runs here against our server in both modes and against moto (whose UpdateContact
replaces the preferences it is given, and whose UpdateContactList clears what it is not given).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from sescontacts.errors import BadRequest
from sescontacts.model import OPT_IN, OPT_OUT, Contact, ContactQuery, Topic
from sescontacts.settings import DOCUMENTED, OBSERVED, SES_SEMANTICS
from sescontacts.store.ses import SesContactStore

from .support.console import Console
from .support.server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, RunningServer
from .support.ses import MOTO_KEY, run_moto
from .support.sesapi_client import InProcessClient, open_services
from .support.stores import local_ses_store, moto_store, run_ses_server

LIST = "/v2/email/contact-lists/contacts"
CONTACT = LIST + "/contacts/ann%40example.com"
TOPICS = [
    {"TopicName": "news", "DisplayName": "News", "DefaultSubscriptionStatus": "OPT_OUT"},
    {"TopicName": "offers", "DisplayName": "Offers", "DefaultSubscriptionStatus": "OPT_IN"},
]
BOTH = [{"TopicName": "news", "SubscriptionStatus": "OPT_IN"}, {"TopicName": "offers", "SubscriptionStatus": "OPT_OUT"}]
ATTRIBUTES = '{"Name": "Ann"}'


def preferences(items: list[dict[str, str]]) -> dict[str, str]:
    return {p["TopicName"]: p["SubscriptionStatus"] for p in items}


# -- the local SES API in each mode (in process, signed requests) -------------------------------------------


@pytest.fixture(params=SES_SEMANTICS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InProcessClient]:
    """The local SES API under ``--ses-semantics <param>``, holding list ``contacts`` with two topics, a
    description and ann@example.com with a preference for each topic and attributes."""
    services = open_services(tmp_path / "data", ses_semantics=request.param)
    services.ensure_default_list()
    client = InProcessClient(services)
    assert client.call("PUT", LIST, {"Topics": TOPICS, "Description": "Weekly"}).status == 200
    created = client.call(
        "POST",
        LIST + "/contacts",
        {"EmailAddress": "ann@example.com", "TopicPreferences": BOTH, "AttributesData": ATTRIBUTES},
    )
    assert created.status == 200
    yield client
    services.close()


def mode(api: InProcessClient) -> str:
    return api.services.settings.ses_semantics


def test_update_contact_without_a_topic_merges_or_removes_it(api: InProcessClient) -> None:
    update = {"TopicPreferences": [{"TopicName": "offers", "SubscriptionStatus": "OPT_IN"}], "AttributesData": "{}"}
    assert api.call("PUT", CONTACT, update).status == 200
    got = api.call("GET", CONTACT).json
    if mode(api) == OBSERVED:
        assert preferences(got["TopicPreferences"]) == {"news": "OPT_IN", "offers": "OPT_IN"}
        assert got["TopicDefaultPreferences"] == []
    else:
        assert preferences(got["TopicPreferences"]) == {"offers": "OPT_IN"}
        assert preferences(got["TopicDefaultPreferences"]) == {"news": "OPT_OUT"}  # the topic's default again


def test_update_contact_without_topic_preferences(api: InProcessClient) -> None:
    assert api.call("PUT", CONTACT, {"UnsubscribeAll": True}).status == 200
    got = api.call("GET", CONTACT).json
    expected = {"news": "OPT_IN", "offers": "OPT_OUT"} if mode(api) == OBSERVED else {}
    assert preferences(got["TopicPreferences"]) == expected
    assert got["UnsubscribeAll"] is True
    assert "AttributesData" not in got  # replaced in both readings: omitted clears it


def test_update_contact_list_without_topics(api: InProcessClient) -> None:
    assert api.call("PUT", LIST, {"Description": "Monthly"}).status == 200
    got = api.call("GET", LIST).json
    assert got["Description"] == "Monthly"
    if mode(api) == OBSERVED:
        assert got["Topics"] == TOPICS
        assert preferences(api.call("GET", CONTACT).json["TopicPreferences"]) == preferences(BOTH)
    else:
        assert got["Topics"] == []
        # A topic that leaves the list takes the contacts' preferences for it along, as a Topics change does.
        assert api.call("GET", CONTACT).json["TopicPreferences"] == []


def test_update_contact_list_without_description(api: InProcessClient) -> None:
    assert api.call("PUT", LIST, {"Topics": TOPICS[:1]}).status == 200
    got = api.call("GET", LIST).json
    assert got["Topics"] == TOPICS[:1]
    if mode(api) == OBSERVED:
        assert got["Description"] == "Weekly"
    else:
        assert "Description" not in got


def test_update_contact_list_with_an_empty_body(api: InProcessClient) -> None:
    assert api.call("PUT", LIST, {}).status == 200
    got = api.call("GET", LIST).json
    if mode(api) == OBSERVED:
        assert (got["Topics"], got["Description"]) == (TOPICS, "Weekly")
    else:
        assert got["Topics"] == [] and "Description" not in got


# -- the ses backend, against SES under either reading (our server in each mode) and moto --------------------


@dataclass
class Upstream:
    """An SES endpoint for the ses backend: our server in one mode, or moto."""

    name: str
    url: str
    key: tuple[str, str]
    server: RunningServer | None = None

    def client(self) -> Any:
        """A plain boto3 client on it: what SES itself holds, read behind the store's back."""
        return boto3.client(
            "sesv2",
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=self.key[0],
            aws_secret_access_key=self.key[1],
        )


@pytest.fixture(scope="module", params=[OBSERVED, DOCUMENTED, "moto"])
def upstream(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    if request.param == "moto":
        with run_moto() as url:
            yield Upstream("moto", url, MOTO_KEY)
        return
    with run_ses_server(tmp_path_factory, throttled=False, semantics=request.param) as server:
        yield Upstream(request.param, server.url, (ACCESS_KEY_ID, SECRET_ACCESS_KEY), server)


@pytest.mark.parametrize("upstream", [OBSERVED, DOCUMENTED], indirect=True)
def test_the_server_says_which_reading_it_applies(upstream: Upstream) -> None:
    assert upstream.server is not None
    assert f"SES updates:  {upstream.name} (UpdateContact, UpdateContactList" in upstream.server.log()


@pytest.fixture
def store(tmp_path: Path, upstream: Upstream) -> Iterator[SesContactStore]:
    """A ses store on ``upstream`` holding list ``contacts`` (two topics, a description) and ann@example.com
    with an explicit preference for each topic and attributes, all written to SES directly."""
    opened = (
        moto_store(tmp_path, upstream.url, "contacts")
        if upstream.server is None
        else local_ses_store(tmp_path, upstream.server, "contacts", throttled=False)
    )
    with opened as contact_store:
        ses = upstream.client()
        ses.update_contact_list(ContactListName="contacts", Topics=TOPICS, Description="Weekly")
        ses.create_contact(
            ContactListName="contacts", EmailAddress="ann@example.com", TopicPreferences=BOTH, AttributesData=ATTRIBUTES
        )
        yield contact_store


def held(upstream: Upstream) -> dict[str, Any]:
    return dict(upstream.client().get_contact(ContactListName="contacts", EmailAddress="ann@example.com"))


def test_editing_one_topic_keeps_the_other_preference_and_the_attributes(
    store: SesContactStore, upstream: Upstream
) -> None:
    current = store.get_contact("contacts", "ann@example.com")
    # The console's way: the whole new state, one topic changed.
    changed = {**current.topic_preferences, "news": OPT_OUT}
    store.update_contact("contacts", Contact("ann@example.com", False, changed, current.attributes_data))
    ses = held(upstream)
    assert preferences(ses["TopicPreferences"]) == {"news": OPT_OUT, "offers": OPT_OUT}
    assert ses["AttributesData"] == ATTRIBUTES
    # The SES API's way (the local backend's handler on a ses store): only the topic that changes.
    store.update_contact(
        "contacts",
        Contact("ann@example.com", False, {"offers": OPT_IN}, ATTRIBUTES),
        merge_topic_preferences=True,
    )
    ses = held(upstream)
    assert preferences(ses["TopicPreferences"]) == {"news": OPT_OUT, "offers": OPT_IN}
    assert ses["AttributesData"] == ATTRIBUTES
    assert dict(store.mirror.get_contact("contacts", "ann@example.com").topic_preferences) == {
        "news": OPT_OUT,
        "offers": OPT_IN,
    }


def test_changing_the_description_keeps_the_topics(store: SesContactStore, upstream: Upstream) -> None:
    store.update_list("contacts", description="Monthly")
    ses = upstream.client().get_contact_list(ContactListName="contacts")
    assert [t["TopicName"] for t in ses["Topics"]] == ["news", "offers"]
    assert ses["Description"] == "Monthly"
    assert preferences(held(upstream)["TopicPreferences"]) == preferences(BOTH)


def test_changing_the_topics_keeps_the_description(store: SesContactStore, upstream: Upstream) -> None:
    topics = [Topic("news", "News", OPT_OUT), Topic("offers", "Offers", OPT_IN), Topic("events", "Events", OPT_OUT)]
    store.update_list("contacts", topics=topics)
    ses = upstream.client().get_contact_list(ContactListName="contacts")
    assert [t["TopicName"] for t in ses["Topics"]] == ["news", "offers", "events"]
    assert ses["Description"] == "Weekly"


def test_resetting_a_preference_to_the_topic_default(store: SesContactStore, upstream: Upstream) -> None:
    """Only an SES that removes omitted preferences can do it; on one that merges, the rest is saved and the
    user is told, never a silent success."""
    reset = Contact("ann@example.com", False, {"offers": OPT_IN}, ATTRIBUTES)  # news: back to its default
    if upstream.name == OBSERVED:
        with pytest.raises(BadRequest, match="SES kept the explicit preference for news: it merges"):
            store.update_contact("contacts", reset)
        expected = {"news": OPT_IN, "offers": OPT_IN}
    else:
        store.update_contact("contacts", reset)
        expected = {"offers": OPT_IN}
    assert preferences(held(upstream)["TopicPreferences"]) == expected
    assert dict(store.mirror.get_contact("contacts", "ann@example.com").topic_preferences) == expected


def test_a_bulk_topic_change_sends_the_whole_contact(store: SesContactStore, upstream: Upstream) -> None:
    """Opting in to one topic in bulk, then out of the other once unsubscribed: whichever reading of
    UpdateContact SES applies, it ends holding the other preference, the attributes and unsubscribe-all."""
    store.get_contact("contacts", "ann@example.com")  # written to SES behind the store's back: mirrored now
    step = store.apply_to_matching("contacts", ContactQuery(), "topic_opt_in", topic="offers")
    assert (step.matched, step.changed) == (1, 1)
    ses = held(upstream)
    assert preferences(ses["TopicPreferences"]) == {"news": OPT_IN, "offers": OPT_IN}
    assert ses["AttributesData"] == ATTRIBUTES and not ses.get("UnsubscribeAll")
    store.apply_to_matching("contacts", ContactQuery(), "unsubscribe")
    step = store.apply_to_matching("contacts", ContactQuery(), "topic_opt_out", topic="news")
    assert (step.matched, step.changed) == (1, 1)
    ses = held(upstream)
    assert preferences(ses["TopicPreferences"]) == {"news": OPT_OUT, "offers": OPT_IN}
    assert ses["AttributesData"] == ATTRIBUTES and ses.get("UnsubscribeAll") is True
    mirrored = store.mirror.get_contact("contacts", "ann@example.com")
    assert dict(mirrored.topic_preferences) == {"news": OPT_OUT, "offers": OPT_IN} and mirrored.unsubscribe_all


# -- the console's edit forms on the ses backend: the same store calls --------------------------------------


@pytest.fixture
def console(
    tmp_path: Path, upstream: Upstream, store: SesContactStore, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Console]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", upstream.key[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", upstream.key[1])
    opened = Console(
        tmp_path / "console-data",
        backend="ses",
        ses_endpoint_url=upstream.url,
        ses_rate=500.0,
        ses_burst=50,
    )
    yield opened.login()
    opened.services.close()


def test_console_edits_keep_what_they_did_not_change(console: Console, upstream: Upstream) -> None:
    form = console.client.get("/contacts/edit", params={"email": "ann@example.com"}).text
    original = html.unescape(re.search(r'name="original" value="([^"]+)"', form).group(1))  # type: ignore[union-attr]
    response = console.post(
        "/contacts/edit",
        {
            "email": "ann@example.com",
            "original": original,
            "attr_mode": "rows",
            "attr_key": ["Name"],
            "attr_value": ["Ann"],
            "attr_json": ["0"],
            "topic:news": OPT_OUT,  # changed
            "topic:offers": OPT_OUT,  # as it was
        },
    )
    assert response.status_code == 303, response.text
    ses = held(upstream)
    assert preferences(ses["TopicPreferences"]) == {"news": OPT_OUT, "offers": OPT_OUT}
    assert ses["AttributesData"] == ATTRIBUTES
    saved = console.post(
        "/topics",
        {"original": "news", "name": "news", "display_name": "World news", "default_status": OPT_OUT},
    )
    assert saved.status_code == 303, saved.text
    ses_list = upstream.client().get_contact_list(ContactListName="contacts")
    assert [t["DisplayName"] for t in ses_list["Topics"]] == ["World news", "Offers"]
    assert ses_list["Description"] == "Weekly"


@pytest.mark.parametrize("semantics", SES_SEMANTICS)
def test_the_consoles_aws_page_names_the_reading(tmp_path: Path, semantics: str) -> None:
    local = Console(tmp_path / "data", ses_semantics=semantics).login()
    try:
        page = local.client.get("/aws").text
        shown = re.search(r'data-testid="ses-semantics">\s*<code>(\w+)</code>', page)
        assert shown is not None and shown.group(1) == semantics
    finally:
        local.services.close()
