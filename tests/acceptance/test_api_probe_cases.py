"""The contact cases that a third-party emulator says were checked against real SES, replayed on our server.

floci-io/floci's ``SesContactV2IntegrationTest`` (2026) states each request and SES's answer: status, error
code, the exact message, and the contact's state afterwards. Those are the facts replayed here, as raw signed
requests, so that the status, the headers and the body bytes are what is checked, not a client's reading of
them. Each case starts from the same list: topics ``weekly`` (default OPT_IN) and ``promos`` (default
OPT_OUT), and alice, who chose ``weekly`` OPT_OUT and has attributes ``{"name":"Alice"}``. The rows of
docs/ses-fidelity.md cite these tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.support.server import RunningServer

from .api_http import signed_request
from .conftest import unique_name

ALICE = "alice@example.com"
ALICE_ATTRIBUTES = '{"name":"Alice"}'
ENUM_ERROR = (
    "1 validation error detected: Value at 'topicPreferences.1.member.subscriptionStatus' failed to satisfy "
    "constraint: Member must satisfy enum value set: [OPT_OUT, OPT_IN]"
)
EMAIL_NULL = (
    "1 validation error detected: Value at 'emailAddress' failed to satisfy constraint: Member must not be null"
)


class Api:
    """Signed raw requests on one list of the running server; every answer is (status, headers, JSON)."""

    def __init__(self, server: RunningServer, list_name: str) -> None:
        self.server = server
        self.list_name = list_name
        self.contacts = f"/v2/email/contact-lists/{list_name}/contacts"

    def call(self, method: str, target: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
        data = b"" if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
        return signed_request(self.server.url, method, target, data)

    def create_list(self) -> None:
        topics = [
            {"TopicName": "weekly", "DisplayName": "Weekly", "DefaultSubscriptionStatus": "OPT_IN"},
            {"TopicName": "promos", "DisplayName": "Promos", "DefaultSubscriptionStatus": "OPT_OUT"},
        ]
        body = {"ContactListName": self.list_name, "Topics": topics}
        assert self.call("POST", "/v2/email/contact-lists", body)[0] == 200

    def create(self, body: Any) -> tuple[int, dict[str, str], Any]:
        return self.call("POST", self.contacts, body)

    def get(self, email: str, list_path: str | None = None) -> tuple[int, dict[str, str], Any]:
        return self.call("GET", f"{list_path or self.contacts}/{email}")

    def update(self, email: str, body: Any) -> tuple[int, dict[str, str], Any]:
        return self.call("PUT", f"{self.contacts}/{email}", body)

    def delete(self, email: str) -> tuple[int, dict[str, str], Any]:
        return self.call("DELETE", f"{self.contacts}/{email}")


def error(reply: tuple[int, dict[str, str], Any], status: int, code: str, message: str | None = None) -> None:
    got_status, headers, body = reply
    assert (got_status, headers.get("x-amzn-errortype"), body["__type"]) == (status, code, code), body
    if message is not None:
        assert body["message"] == message


@pytest.fixture
def api(api_server: RunningServer) -> Iterator[Api]:
    api = Api(api_server, unique_name("probe"))
    api.create_list()
    body = {
        "EmailAddress": ALICE,
        "TopicPreferences": [{"TopicName": "weekly", "SubscriptionStatus": "OPT_OUT"}],
        "AttributesData": ALICE_ATTRIBUTES,
        "UnsubscribeAll": False,
    }
    assert api.create(body)[0] == 200
    yield api
    api.call("DELETE", f"/v2/email/contact-lists/{api.list_name}")


def test_get_contact_shape(api: Api) -> None:
    status, _, body = api.get(ALICE)
    assert status == 200
    assert body["EmailAddress"] == ALICE
    assert body["TopicPreferences"] == [{"TopicName": "weekly", "SubscriptionStatus": "OPT_OUT"}]
    assert body["TopicDefaultPreferences"] == [{"TopicName": "promos", "SubscriptionStatus": "OPT_OUT"}]
    assert body["UnsubscribeAll"] is False
    assert body["AttributesData"] == ALICE_ATTRIBUTES
    raw = api.call("GET", f"{api.contacts}/{ALICE}")
    for name in ("CreatedTimestamp", "LastUpdatedTimestamp"):
        assert isinstance(raw[2][name], float)  # epoch seconds with milliseconds
        assert round(raw[2][name], 3) == raw[2][name]


def test_a_duplicate_create_is_already_exists(api: Api) -> None:
    error(api.create({"EmailAddress": ALICE}), 400, "AlreadyExistsException", f"{ALICE} already exists in List.")


def test_an_unknown_contact_and_an_unknown_list_are_not_found(api: Api) -> None:
    error(api.get("ghost@example.com"), 404, "NotFoundException", "ghost@example.com doesn't exist in List.")
    missing = "/v2/email/contact-lists/does-not-exist/contacts"
    error(api.get(ALICE, missing), 404, "NotFoundException", "List with name: does-not-exist doesn't exist.")


def test_an_unknown_topic_is_a_bad_request(api: Api) -> None:
    body = {
        "EmailAddress": "bob@example.com",
        "TopicPreferences": [{"TopicName": "nope", "SubscriptionStatus": "OPT_IN"}],
    }
    error(api.create(body), 400, "BadRequestException", f"List: {api.list_name} doesn't contain Topic: nope")


def test_a_bad_subscription_status_is_a_validation_error_that_quotes_no_value(api: Api) -> None:
    body = {
        "EmailAddress": "bob@example.com",
        "TopicPreferences": [{"TopicName": "weekly", "SubscriptionStatus": "MAYBE"}],
    }
    error(api.create(body), 400, "BadRequestException", ENUM_ERROR)


def test_an_invalid_address_is_named_in_angle_brackets(api: Api) -> None:
    error(
        api.create({"EmailAddress": "not-an-email"}),
        400,
        "BadRequestException",
        "EmailAddress <not-an-email> is invalid",
    )


def test_the_enum_is_checked_before_the_address(api: Api) -> None:
    body = {
        "EmailAddress": "not-an-email",
        "TopicPreferences": [{"TopicName": "weekly", "SubscriptionStatus": "MAYBE"}],
    }
    error(api.create(body), 400, "BadRequestException", ENUM_ERROR)


def test_update_with_only_unsubscribe_all_keeps_preferences_and_clears_attributes(api: Api) -> None:
    assert api.update(ALICE, {"UnsubscribeAll": True})[0] == 200
    body = api.get(ALICE)[2]
    assert body["UnsubscribeAll"] is True
    assert body["TopicPreferences"] == [{"TopicName": "weekly", "SubscriptionStatus": "OPT_OUT"}]
    assert "AttributesData" not in body


def test_update_merges_topic_preferences_by_name(api: Api) -> None:
    assert api.update(ALICE, {"TopicPreferences": [{"TopicName": "promos", "SubscriptionStatus": "OPT_IN"}]})[0] == 200
    body = api.get(ALICE)[2]
    assert sorted(p["TopicName"] for p in body["TopicPreferences"]) == ["promos", "weekly"]
    assert body["TopicDefaultPreferences"] == []


def test_list_contacts_is_a_projection_without_attributes_or_creation_time(api: Api) -> None:
    status, _, body = api.call("POST", f"{api.contacts}/list", {})
    assert status == 200
    (contact,) = body["Contacts"]
    assert contact["EmailAddress"] == ALICE
    assert isinstance(contact["LastUpdatedTimestamp"], float)
    assert "AttributesData" not in contact and "CreatedTimestamp" not in contact


def test_a_deleted_contact_is_gone_and_deleting_it_again_is_not_found(api: Api) -> None:
    assert api.delete(ALICE)[0] == 200
    error(api.get(ALICE), 404, "NotFoundException")
    error(api.delete("ghost@example.com"), 404, "NotFoundException", "ghost@example.com doesn't exist in List.")


def test_deleting_a_list_deletes_its_contacts_and_a_new_list_of_that_name_starts_empty(api: Api) -> None:
    assert api.create({"EmailAddress": "carol@example.com"})[0] == 200
    assert api.call("DELETE", f"/v2/email/contact-lists/{api.list_name}")[0] == 200
    api.create_list()
    assert api.call("POST", f"{api.contacts}/list", {})[2]["Contacts"] == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_malformed_address_in_the_path_is_a_bad_request_before_any_lookup(api: Api, method: str) -> None:
    for list_path in (api.contacts, "/v2/email/contact-lists/does-not-exist/contacts"):
        reply = api.call(method, f"{list_path}/not-an-email", {} if method == "PUT" else None)
        error(reply, 400, "BadRequestException", "EmailAddress <not-an-email> is invalid")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"EmailAddress": "type-a@example.com", "UnsubscribeAll": 1}, "NUMBER_VALUE can not be converted to a Boolean"),
        (
            {"EmailAddress": "type-b@example.com", "AttributesData": 123},
            "NUMBER_VALUE can not be converted to a String",
        ),
        ({"EmailAddress": "type-c@example.com", "AttributesData": True}, "TRUE_VALUE can not be converted to a String"),
        (
            {"EmailAddress": "type-c@example.com", "AttributesData": False},
            "FALSE_VALUE can not be converted to a String",
        ),
    ],
)
def test_a_member_of_the_wrong_type_is_a_serialization_exception(api: Api, body: Any, message: str) -> None:
    error(api.create(body), 400, "SerializationException", message)
    error(
        api.update(ALICE, {k: v for k, v in body.items() if k != "EmailAddress"}),
        400,
        "SerializationException",
        message,
    )


@pytest.mark.parametrize(("text", "unsubscribed"), [("yes", True), ("no", False), ("TRUE", True), ("false", False)])
def test_a_string_naming_a_boolean_sets_unsubscribe_all(api: Api, text: str, unsubscribed: bool) -> None:
    # The one case where this replay departs from the contact file: it says any string is true, while the
    # same project's later boolean probe (SesBooleanCoercionV2IntegrationTest) found that only a string
    # naming a boolean coerces. We follow the later probe (docs/ses-fidelity.md, D4).
    assert api.create({"EmailAddress": "type-d@example.com", "UnsubscribeAll": text})[0] == 200
    assert api.get("type-d@example.com")[2]["UnsubscribeAll"] is unsubscribed


def test_a_string_naming_no_boolean_is_a_serialization_exception(api: Api) -> None:
    reply = api.create({"EmailAddress": "type-e@example.com", "UnsubscribeAll": "abc"})
    error(reply, 400, "SerializationException", "STRING_VALUE can not be converted to an Boolean")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"UnsubscribeAll": False}, EMAIL_NULL),
        ({"EmailAddress": None}, EMAIL_NULL),
        ({"EmailAddress": ""}, "EmailAddress can't be blank."),
    ],
)
def test_a_missing_null_or_blank_address(api: Api, body: Any, message: str) -> None:
    error(api.create(body), 400, "BadRequestException", message)


def test_writes_into_a_deleted_list_are_not_found(api: Api) -> None:
    assert api.call("DELETE", f"/v2/email/contact-lists/{api.list_name}")[0] == 200
    error(api.create({"EmailAddress": "ghost@example.com"}), 404, "NotFoundException")
    error(api.update("bob@example.com", {"UnsubscribeAll": True}), 404, "NotFoundException")
