"""boto3 drives every contact-list operation against the running server, success and error paths.

Tests named ``test_row_*`` each check one row of the behaviour tables in ``shared/docs/ses-v2-contract.md`` §7
(and its list of real error messages); the rest cover the operations themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.server import RunningServer, run_server

from .api_http import signed_request
from .conftest import TOPICS, error_of, make_client, unique_name


def emails(page: dict[str, Any]) -> list[str]:
    return [c["EmailAddress"] for c in page["Contacts"]]


# -- operations ------------------------------------------------------------------------------------------


def test_create_get_update_delete_contact_list(ses: Any) -> None:
    name = unique_name()
    assert (
        ses.create_contact_list(
            ContactListName=name, Topics=TOPICS, Description="d", Tags=[{"Key": "team", "Value": "growth"}]
        )["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )
    got = ses.get_contact_list(ContactListName=name)
    assert got["ContactListName"] == name
    assert got["Topics"] == TOPICS
    assert got["Description"] == "d"
    assert got["Tags"] == [{"Key": "team", "Value": "growth"}]
    assert isinstance(got["CreatedTimestamp"], dt.datetime)
    assert got["ResponseMetadata"]["RequestId"]

    ses.update_contact_list(ContactListName=name, Description="new", Topics=TOPICS[:1])
    updated = ses.get_contact_list(ContactListName=name)
    assert (updated["Description"], updated["Topics"]) == ("new", TOPICS[:1])
    assert updated["LastUpdatedTimestamp"] >= got["LastUpdatedTimestamp"]

    listed = ses.list_contact_lists()
    assert name in [item["ContactListName"] for item in listed["ContactLists"]]
    ses.delete_contact_list(ContactListName=name)
    assert error_of(ses.get_contact_list, ContactListName=name) == (
        "NotFoundException",
        f"List with name: {name} doesn't exist.",
        404,
    )


def test_contact_lifecycle(ses: Any, contact_list: str) -> None:
    ses.create_contact(
        ContactListName=contact_list,
        EmailAddress="ann@example.com",
        TopicPreferences=[{"TopicName": "offers", "SubscriptionStatus": "OPT_IN"}],
        AttributesData='{"name": "Ann"}',
    )
    got = ses.get_contact(ContactListName=contact_list, EmailAddress="ann@example.com")
    assert got["ContactListName"] == contact_list
    assert got["TopicPreferences"] == [{"TopicName": "offers", "SubscriptionStatus": "OPT_IN"}]
    assert got["TopicDefaultPreferences"] == [{"TopicName": "news", "SubscriptionStatus": "OPT_IN"}]
    assert got["UnsubscribeAll"] is False
    assert got["AttributesData"] == '{"name": "Ann"}'
    assert got["CreatedTimestamp"] == got["LastUpdatedTimestamp"]

    ses.update_contact(ContactListName=contact_list, EmailAddress="ann@example.com", UnsubscribeAll=True)
    after = ses.get_contact(ContactListName=contact_list, EmailAddress="ann@example.com")
    assert after["UnsubscribeAll"] is True
    assert after["LastUpdatedTimestamp"] >= got["LastUpdatedTimestamp"]

    ses.delete_contact(ContactListName=contact_list, EmailAddress="ann@example.com")
    assert error_of(ses.get_contact, ContactListName=contact_list, EmailAddress="ann@example.com")[0] == (
        "NotFoundException"
    )
    assert error_of(ses.delete_contact, ContactListName=contact_list, EmailAddress="ann@example.com") == (
        "NotFoundException",
        "ann@example.com doesn't exist in List.",
        404,
    )


def test_get_contact_omits_unset_attributes(ses: Any, contact_list: str) -> None:
    ses.create_contact(ContactListName=contact_list, EmailAddress="bare@example.com")
    assert "AttributesData" not in ses.get_contact(ContactListName=contact_list, EmailAddress="bare@example.com")


def test_list_contacts_items_have_no_attributes_or_created(ses: Any, contact_list: str) -> None:
    ses.create_contact(ContactListName=contact_list, EmailAddress="x@example.com", AttributesData='{"a": 1}')
    (item,) = ses.list_contacts(ContactListName=contact_list)["Contacts"]
    assert set(item) == {
        "EmailAddress",
        "TopicPreferences",
        "TopicDefaultPreferences",
        "UnsubscribeAll",
        "LastUpdatedTimestamp",
    }


def test_tags_on_the_list_arn(ses: Any, contact_list: str) -> None:
    arn = f"arn:aws:ses:us-east-1:000000000000:contact-list/{contact_list}"
    assert ses.list_tags_for_resource(ResourceArn=arn)["Tags"] == []
    ses.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    ses.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "3"}])
    assert ses.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "a", "Value": "3"},
        {"Key": "b", "Value": "2"},
    ]
    ses.untag_resource(ResourceArn=arn, TagKeys=["a", "missing"])
    assert ses.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    assert ses.get_contact_list(ContactListName=contact_list)["Tags"] == [{"Key": "b", "Value": "2"}]


def test_legacy_get_list_contacts_binding(api_server: RunningServer, ses: Any, contact_list: str) -> None:
    """botocore <= 1.34.95 sent ListContacts as GET .../contacts?PageSize=&NextToken= with the Filter as body."""
    for address in ("a@example.com", "b@example.com", "c@example.com"):
        ses.create_contact(
            ContactListName=contact_list, EmailAddress=address, UnsubscribeAll=address != "b@example.com"
        )
    path = f"/v2/email/contact-lists/{contact_list}/contacts"
    body = b'{"Filter": {"FilteredStatus": "OPT_OUT"}}'
    status, _, first = signed_request(api_server.url, "GET", f"{path}?PageSize=1", body)
    assert status == 200 and emails(first) == ["a@example.com"]
    status, _, second = signed_request(api_server.url, "GET", f"{path}?PageSize=1&NextToken={first['NextToken']}", body)
    assert status == 200 and emails(second) == ["c@example.com"] and "NextToken" not in second


# -- error paths of each operation -----------------------------------------------------------------------


def test_operations_on_a_missing_list(ses: Any) -> None:
    message = ("NotFoundException", "List with name: nope doesn't exist.", 404)
    assert error_of(ses.get_contact_list, ContactListName="nope") == message
    assert error_of(ses.update_contact_list, ContactListName="nope", Description="x") == message
    assert error_of(ses.delete_contact_list, ContactListName="nope") == message
    assert error_of(ses.create_contact, ContactListName="nope", EmailAddress="a@example.com") == message
    assert error_of(ses.get_contact, ContactListName="nope", EmailAddress="a@example.com") == message
    assert error_of(ses.update_contact, ContactListName="nope", EmailAddress="a@example.com") == message
    assert error_of(ses.delete_contact, ContactListName="nope", EmailAddress="a@example.com") == message
    assert error_of(ses.list_contacts, ContactListName="nope") == message


def test_update_missing_contact(ses: Any, contact_list: str) -> None:
    assert error_of(ses.update_contact, ContactListName=contact_list, EmailAddress="ghost@example.com") == (
        "NotFoundException",
        "ghost@example.com doesn't exist in List.",
        404,
    )


def test_duplicate_list_name(ses: Any, contact_list: str) -> None:
    code, message, status = error_of(ses.create_contact_list, ContactListName=contact_list)
    assert (code, status) == ("AlreadyExistsException", 400)
    assert contact_list in message


def test_bad_page_size_and_token(ses: Any, contact_list: str) -> None:
    assert error_of(ses.list_contacts, ContactListName=contact_list, PageSize=0)[::2] == ("BadRequestException", 400)
    assert error_of(ses.list_contacts, ContactListName=contact_list, PageSize=1001)[::2] == (
        "BadRequestException",
        400,
    )
    assert error_of(ses.list_contacts, ContactListName=contact_list, NextToken="garbage")[::2] == (
        "BadRequestException",
        400,
    )
    assert error_of(ses.list_contact_lists, NextToken="garbage")[::2] == ("BadRequestException", 400)


def test_token_from_another_filter_is_refused(ses: Any, contact_list: str) -> None:
    for i in range(3):
        ses.create_contact(ContactListName=contact_list, EmailAddress=f"t{i}@example.com")
    token = ses.list_contacts(ContactListName=contact_list, PageSize=1)["NextToken"]
    code, _, status = error_of(
        ses.list_contacts, ContactListName=contact_list, NextToken=token, Filter={"FilteredStatus": "OPT_OUT"}
    )
    assert (code, status) == ("BadRequestException", 400)


def test_tag_errors(ses: Any) -> None:
    assert error_of(
        ses.tag_resource,
        ResourceArn="arn:aws:ses:us-east-1:000000000000:contact-list/nope",
        Tags=[{"Key": "a", "Value": "b"}],
    ) == ("NotFoundException", "No ContactList present with name: nope", 404)
    assert error_of(ses.list_tags_for_resource, ResourceArn="arn:aws:ses:us-east-1:000000000000:contact-list/nope") == (
        "NotFoundException",
        "No ContactList present with name: nope",
        404,
    )
    assert error_of(
        ses.untag_resource, ResourceArn="arn:aws:ses:us-east-1:000000000000:contact-list/nope", TagKeys=["a"]
    ) == ("NotFoundException", "No ContactList present with name: nope", 404)
    assert error_of(ses.list_tags_for_resource, ResourceArn="not-an-arn")[::2] == ("BadRequestException", 400)


# -- contract §7 rows ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quota_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with SES's default quota (one list, created on first start as ``contacts``)."""
    with run_server(tmp_path_factory.mktemp("quota") / "data") as server:
        yield server


def test_row_one_contact_list_per_account(quota_server: RunningServer) -> None:
    client = make_client(quota_server.url)
    assert [item["ContactListName"] for item in client.list_contact_lists()["ContactLists"]] == ["contacts"]
    expected = ("BadRequestException", "A maximum of 1 Lists allowed per account.", 400)
    assert error_of(client.create_contact_list, ContactListName="second") == expected
    # "even same name": never AlreadyExists
    assert error_of(client.create_contact_list, ContactListName="contacts") == expected


def test_row_quota_scope_is_the_region_the_server_serves(quota_server: RunningServer) -> None:
    """SES quotas are per region; one server serves one region, so a request signed for another is refused."""
    client = make_client(quota_server.url, region_name="us-west-2")
    code, message, status = error_of(client.list_contact_lists)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert "us-west-2" in message


def test_row_topics_per_list_max_20(ses: Any) -> None:
    topics = [{"TopicName": f"t{i}", "DisplayName": f"T{i}", "DefaultSubscriptionStatus": "OPT_IN"} for i in range(21)]
    name = unique_name()
    assert error_of(ses.create_contact_list, ContactListName=name, Topics=topics) == (
        "BadRequestException",  # not LimitExceeded, which the model lists too: what the probe of real SES saw
        "Maximum of <20> topics allowed per ContactList",
        400,
    )
    ses.create_contact_list(ContactListName=name, Topics=topics[:20])
    assert len(ses.get_contact_list(ContactListName=name)["Topics"]) == 20
    ses.delete_contact_list(ContactListName=name)


def test_row_contact_list_name_pattern(ses: Any) -> None:
    pattern_message = (
        "ContactListName can contain up to 64 characters. Only alphanumeric characters, underscores(_) and "
        "hyphens(-) are allowed."
    )
    for bad in ("has space", "dot.name", "x" * 65, "../etc"):
        assert error_of(ses.create_contact_list, ContactListName=bad) == ("BadRequestException", pattern_message, 400)
    assert error_of(ses.create_contact_list, ContactListName="") == (
        "BadRequestException",
        "ContactListName can't be blank.",
        400,
    )
    # Also 400 (not 404) on GET/DELETE with an invalid name.
    assert error_of(ses.get_contact_list, ContactListName="bad name") == ("BadRequestException", pattern_message, 400)
    assert error_of(ses.delete_contact_list, ContactListName="bad name") == (
        "BadRequestException",
        pattern_message,
        400,
    )
    good = "A" * 32 + "_-" + "9" * 30
    ses.create_contact_list(ContactListName=good)
    ses.delete_contact_list(ContactListName=good)


def test_row_list_description_max_500(ses: Any) -> None:
    name = unique_name()
    assert error_of(ses.create_contact_list, ContactListName=name, Description="d" * 501) == (
        "BadRequestException",
        "List description can contain up to 500 characters.",
        400,
    )
    ses.create_contact_list(ContactListName=name, Description="d" * 500)
    assert error_of(ses.update_contact_list, ContactListName=name, Description="d" * 501)[0] == "BadRequestException"
    ses.delete_contact_list(ContactListName=name)


def test_row_tags_per_list_0_to_50(ses: Any) -> None:
    name = unique_name()
    tags = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    assert error_of(ses.create_contact_list, ContactListName=name, Tags=tags)[::2] == ("BadRequestException", 400)
    ses.create_contact_list(ContactListName=name, Tags=tags[:50])
    arn = f"arn:aws:ses:us-east-1:000000000000:contact-list/{name}"
    assert error_of(ses.tag_resource, ResourceArn=arn, Tags=[{"Key": "one-more", "Value": "v"}])[::2] == (
        "BadRequestException",
        400,
    )
    assert len(ses.list_tags_for_resource(ResourceArn=arn)["Tags"]) == 50
    ses.delete_contact_list(ContactListName=name)


def test_row_topic_name_display_name_and_description_limits(ses: Any) -> None:
    name = unique_name()

    def topic(**overrides: str) -> list[dict[str, str]]:
        return [{"TopicName": "t", "DisplayName": "T", "DefaultSubscriptionStatus": "OPT_IN", **overrides}]

    assert error_of(ses.create_contact_list, ContactListName=name, Topics=topic(TopicName="bad topic")) == (
        "BadRequestException",
        "TopicName can contain up to 64 characters. Only alphanumeric characters, underscores(_) and hyphens(-) "
        "are allowed.",
        400,
    )
    assert error_of(ses.create_contact_list, ContactListName=name, Topics=topic(DisplayName="D" * 129)) == (
        "BadRequestException",
        "Topic DisplayName can contain up to <128> characters.",
        400,
    )
    assert error_of(ses.create_contact_list, ContactListName=name, Topics=topic(Description="d" * 501))[::2] == (
        "BadRequestException",
        400,
    )
    ses.create_contact_list(ContactListName=name, Topics=topic(DisplayName="D" * 128, Description="d" * 500))
    ses.delete_contact_list(ContactListName=name)


def test_row_duplicate_topic_names(ses: Any) -> None:
    topics = [
        {"TopicName": "t", "DisplayName": "A", "DefaultSubscriptionStatus": "OPT_IN"},
        {"TopicName": "t", "DisplayName": "B", "DefaultSubscriptionStatus": "OPT_OUT"},
    ]
    assert error_of(ses.create_contact_list, ContactListName=unique_name(), Topics=topics) == (
        "BadRequestException",
        "Duplicate topic names are not allowed within a List.",
        400,
    )


def test_row_attributes_data_round_trips(ses: Any, contact_list: str) -> None:
    data = '{"Name": "Zoë", "Company": null, "n": [1, 2.5]}'
    ses.create_contact(ContactListName=contact_list, EmailAddress="attr@example.com", AttributesData=data)
    assert ses.get_contact(ContactListName=contact_list, EmailAddress="attr@example.com")["AttributesData"] == data


def test_row_email_address_identity_and_syntax(ses: Any, contact_list: str) -> None:
    """Case handling is undocumented; ours: one person per address whatever its case (documented choice)."""
    ses.create_contact(ContactListName=contact_list, EmailAddress="Mixed.Case@Example.com")
    assert error_of(ses.create_contact, ContactListName=contact_list, EmailAddress="mixed.case@example.com") == (
        "AlreadyExistsException",
        "mixed.case@example.com already exists in List.",
        400,
    )
    got = ses.get_contact(ContactListName=contact_list, EmailAddress="MIXED.CASE@EXAMPLE.COM")
    assert got["EmailAddress"] == "Mixed.Case@Example.com"
    for bad in ("plain", "two@@example.com", "sp ace@example.com", "a@nodot"):
        assert error_of(ses.create_contact, ContactListName=contact_list, EmailAddress=bad) == (
            "BadRequestException",
            f"EmailAddress <{bad}> is invalid",
            400,
        )
    assert error_of(ses.create_contact, ContactListName=contact_list, EmailAddress="") == (
        "BadRequestException",
        "EmailAddress can't be blank.",
        400,
    )


def test_row_list_contacts_page_size_1000(ses: Any, contact_list: str) -> None:
    for i in range(5):
        ses.create_contact(ContactListName=contact_list, EmailAddress=f"p{i}@example.com")
    page = ses.list_contacts(ContactListName=contact_list, PageSize=1000)
    assert len(page["Contacts"]) == 5 and "NextToken" not in page


def test_row_list_contact_lists(ses: Any, contact_list: str) -> None:
    names = []
    token: str | None = None
    while True:
        page = ses.list_contact_lists(PageSize=1, **({"NextToken": token} if token else {}))
        assert len(page["ContactLists"]) <= 1
        names += [item["ContactListName"] for item in page["ContactLists"]]
        assert all(isinstance(item["LastUpdatedTimestamp"], dt.datetime) for item in page["ContactLists"])
        token = page.get("NextToken")
        if not token:
            break
    assert contact_list in names and len(names) == len(set(names))


def test_row_next_token_semantics(ses: Any, contact_list: str) -> None:
    for i in range(5):
        ses.create_contact(ContactListName=contact_list, EmailAddress=f"n{i}@example.com", UnsubscribeAll=i % 2 == 0)
    seen: list[str] = []
    kwargs: dict[str, Any] = {"ContactListName": contact_list, "PageSize": 2, "Filter": {"FilteredStatus": "OPT_OUT"}}
    while True:
        page = ses.list_contacts(**kwargs)
        seen += emails(page)
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert seen == ["n0@example.com", "n2@example.com", "n4@example.com"]


def test_row_unsubscribe_all(ses: Any, contact_list: str) -> None:
    ses.create_contact(ContactListName=contact_list, EmailAddress="out@example.com", UnsubscribeAll=True)
    ses.create_contact(ContactListName=contact_list, EmailAddress="in@example.com", UnsubscribeAll=False)
    assert ses.get_contact(ContactListName=contact_list, EmailAddress="out@example.com")["UnsubscribeAll"] is True
    assert ses.get_contact(ContactListName=contact_list, EmailAddress="in@example.com")["UnsubscribeAll"] is False
    unsubscribed = ses.list_contacts(ContactListName=contact_list, Filter={"FilteredStatus": "OPT_OUT"})
    assert emails(unsubscribed) == ["out@example.com"]
    subscribed = ses.list_contacts(ContactListName=contact_list, Filter={"FilteredStatus": "OPT_IN"})
    assert emails(subscribed) == ["in@example.com"]


def test_row_topic_preferences_are_explicit_choices(ses: Any, contact_list: str) -> None:
    prefs = [
        {"TopicName": "news", "SubscriptionStatus": "OPT_OUT"},
        {"TopicName": "offers", "SubscriptionStatus": "OPT_IN"},
    ]
    ses.create_contact(ContactListName=contact_list, EmailAddress="tp@example.com", TopicPreferences=prefs)
    got = ses.get_contact(ContactListName=contact_list, EmailAddress="tp@example.com")
    assert got["TopicPreferences"] == prefs
    assert got["TopicDefaultPreferences"] == []


def test_row_topic_default_preferences_derived(ses: Any, contact_list: str) -> None:
    ses.create_contact(
        ContactListName=contact_list,
        EmailAddress="d@example.com",
        TopicPreferences=[{"TopicName": "news", "SubscriptionStatus": "OPT_OUT"}],
    )
    got = ses.get_contact(ContactListName=contact_list, EmailAddress="d@example.com")
    assert got["TopicDefaultPreferences"] == [{"TopicName": "offers", "SubscriptionStatus": "OPT_OUT"}]
    (item,) = ses.list_contacts(ContactListName=contact_list)["Contacts"]
    assert item["TopicDefaultPreferences"] == [{"TopicName": "offers", "SubscriptionStatus": "OPT_OUT"}]


def test_row_list_contacts_filter(ses: Any, contact_list: str) -> None:
    ses.create_contact(
        ContactListName=contact_list,
        EmailAddress="explicit-in@example.com",
        TopicPreferences=[{"TopicName": "offers", "SubscriptionStatus": "OPT_IN"}],
    )
    ses.create_contact(
        ContactListName=contact_list,
        EmailAddress="explicit-out@example.com",
        TopicPreferences=[{"TopicName": "offers", "SubscriptionStatus": "OPT_OUT"}],
    )
    ses.create_contact(ContactListName=contact_list, EmailAddress="default@example.com")
    ses.create_contact(
        ContactListName=contact_list,
        EmailAddress="unsub@example.com",
        UnsubscribeAll=True,
        TopicPreferences=[{"TopicName": "offers", "SubscriptionStatus": "OPT_IN"}],
    )

    def filtered(status: str, topic: str, use_default: bool) -> list[str]:
        flt = {
            "FilteredStatus": status,
            "TopicFilter": {"TopicName": topic, "UseDefaultIfPreferenceUnavailable": use_default},
        }
        return emails(ses.list_contacts(ContactListName=contact_list, Filter=flt))

    assert filtered("OPT_IN", "offers", False) == ["explicit-in@example.com"]
    assert filtered("OPT_OUT", "offers", False) == ["explicit-out@example.com", "unsub@example.com"]
    # offers defaults to OPT_OUT: with the default, the undecided contact counts as opted out.
    assert filtered("OPT_OUT", "offers", True) == [
        "default@example.com",
        "explicit-out@example.com",
        "unsub@example.com",
    ]
    # news defaults to OPT_IN; nobody chose explicitly.
    assert filtered("OPT_IN", "news", True) == [
        "default@example.com",
        "explicit-in@example.com",
        "explicit-out@example.com",
    ]
    assert filtered("OPT_IN", "news", False) == []
    unknown = {"FilteredStatus": "OPT_IN", "TopicFilter": {"TopicName": "nope"}}
    assert error_of(ses.list_contacts, ContactListName=contact_list, Filter=unknown) == (
        "NotFoundException",  # 404 here (probed), though a preference for such a topic is a 400
        f"List: {contact_list} doesn't contain Topic: nope",
        404,
    )


def test_row_tag_arn(ses: Any, contact_list: str) -> None:
    arn = f"arn:aws:ses:us-east-1:000000000000:contact-list/{contact_list}"
    ses.tag_resource(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}])
    assert ses.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "v"}]
    other_account = arn.replace("000000000000", "123456789012")
    assert error_of(ses.list_tags_for_resource, ResourceArn=other_account)[::2] == ("NotFoundException", 404)


# -- the "real error messages" list of §7 ----------------------------------------------------------------


def test_row_missing_required_member(ses: Any, api_server: RunningServer) -> None:
    status, headers, body = signed_request(api_server.url, "POST", "/v2/email/contact-lists", b"{}")
    assert (status, headers["x-amzn-errortype"]) == (400, "BadRequestException")
    assert body["message"] == (
        "1 validation error detected: Value at 'contactListName' failed to satisfy constraint: Member must not be null"
    )
    status, _, body = signed_request(
        api_server.url,
        "POST",
        "/v2/email/contact-lists",
        b'{"ContactListName": "x", "Topics": [{"TopicName": "t", "DisplayName": "T"}]}',
    )
    assert body["message"] == (
        "1 validation error detected: Value at 'topics.1.member.defaultSubscriptionStatus' failed to satisfy "
        "constraint: Member must not be null"
    )


def test_row_bad_enum(ses: Any, contact_list: str) -> None:
    assert error_of(
        ses.create_contact,
        ContactListName=contact_list,
        EmailAddress="e@example.com",
        TopicPreferences=[{"TopicName": "news", "SubscriptionStatus": "MAYBE"}],
    ) == (
        "BadRequestException",
        "1 validation error detected: Value at 'topicPreferences.1.member.subscriptionStatus' failed to "
        "satisfy constraint: Member must satisfy enum value set: [OPT_OUT, OPT_IN]",
        400,
    )
    assert error_of(ses.list_contacts, ContactListName=contact_list, Filter={"FilteredStatus": "MAYBE"})[::2] == (
        "BadRequestException",
        400,
    )


def test_row_unknown_topic_in_preferences(ses: Any, contact_list: str) -> None:
    prefs = [{"TopicName": "sports", "SubscriptionStatus": "OPT_IN"}]
    expected = ("BadRequestException", f"List: {contact_list} doesn't contain Topic: sports", 400)
    assert (
        error_of(ses.create_contact, ContactListName=contact_list, EmailAddress="u@example.com", TopicPreferences=prefs)
        == expected
    )
    ses.create_contact(ContactListName=contact_list, EmailAddress="u@example.com")
    assert (
        error_of(ses.update_contact, ContactListName=contact_list, EmailAddress="u@example.com", TopicPreferences=prefs)
        == expected
    )


def test_row_unsubscribe_all_string_naming_a_boolean(api_server: RunningServer, ses: Any, contact_list: str) -> None:
    """A string that names a boolean is read as one ("no" is false); any other is refused (probed: floci's
    SesBooleanCoercionV2IntegrationTest; the contract's older reading, any string is true, is superseded)."""
    contacts = f"/v2/email/contact-lists/{contact_list}/contacts"
    for address, text, expected in (("s@example.com", "no", False), ("y@example.com", "Yes", True)):
        body = f'{{"EmailAddress": "{address}", "UnsubscribeAll": "{text}"}}'.encode()
        assert signed_request(api_server.url, "POST", contacts, body)[0] == 200
        assert ses.get_contact(ContactListName=contact_list, EmailAddress=address)["UnsubscribeAll"] is expected
    status, _, body = signed_request(
        api_server.url, "POST", contacts, b'{"EmailAddress": "m@example.com", "UnsubscribeAll": "maybe"}'
    )
    assert (status, body) == (
        400,
        {"__type": "SerializationException", "message": "STRING_VALUE can not be converted to an Boolean"},
    )


def test_row_type_errors_are_serialization_exceptions(api_server: RunningServer, contact_list: str) -> None:
    status, headers, body = signed_request(
        api_server.url, "POST", f"/v2/email/contact-lists/{contact_list}/contacts", b'{"EmailAddress": 5}'
    )
    assert (status, headers["x-amzn-errortype"]) == (400, "SerializationException")
    assert body == {"__type": "SerializationException", "message": "NUMBER_VALUE can not be converted to a String"}


def test_row_validation_order(ses: Any, contact_list: str) -> None:
    """protocol (null/enum) -> name/email format -> list existence -> topic existence."""
    # email format before list existence
    assert error_of(ses.create_contact, ContactListName="missing-list", EmailAddress="bad")[0:2] == (
        "BadRequestException",
        "EmailAddress <bad> is invalid",
    )
    # enum (protocol) before email format
    code, message, _ = error_of(
        ses.create_contact,
        ContactListName="missing-list",
        EmailAddress="bad",
        TopicPreferences=[{"TopicName": "x", "SubscriptionStatus": "MAYBE"}],
    )
    assert (code, message.startswith("1 validation error detected: Value at 'topicPreferences.1.member")) == (
        "BadRequestException",
        True,
    )
    # list existence before topic existence
    assert error_of(
        ses.create_contact,
        ContactListName="missing-list",
        EmailAddress="ok@example.com",
        TopicPreferences=[{"TopicName": "x", "SubscriptionStatus": "OPT_IN"}],
    )[0:2] == ("NotFoundException", "List with name: missing-list doesn't exist.")


# -- conflicts resolved as floci verified against real SES -------------------------------------------------


def test_update_contact_merges_topics_replaces_attributes_and_unsubscribe_all(ses: Any, contact_list: str) -> None:
    ses.create_contact(
        ContactListName=contact_list,
        EmailAddress="m@example.com",
        TopicPreferences=[{"TopicName": "news", "SubscriptionStatus": "OPT_OUT"}],
        UnsubscribeAll=True,
        AttributesData='{"a": 1}',
    )
    ses.update_contact(
        ContactListName=contact_list,
        EmailAddress="m@example.com",
        TopicPreferences=[{"TopicName": "offers", "SubscriptionStatus": "OPT_IN"}],
    )
    got = ses.get_contact(ContactListName=contact_list, EmailAddress="m@example.com")
    assert got["TopicPreferences"] == [
        {"TopicName": "news", "SubscriptionStatus": "OPT_OUT"},
        {"TopicName": "offers", "SubscriptionStatus": "OPT_IN"},
    ]
    assert got["UnsubscribeAll"] is False  # omitted -> reset
    assert "AttributesData" not in got  # omitted -> cleared
    ses.update_contact(ContactListName=contact_list, EmailAddress="m@example.com", AttributesData='{"b": 2}')
    got = ses.get_contact(ContactListName=contact_list, EmailAddress="m@example.com")
    assert got["AttributesData"] == '{"b": 2}'
    assert len(got["TopicPreferences"]) == 2  # omitted TopicPreferences keep them


def test_update_contact_list_empty_body_is_a_no_op_and_topics_replace(ses: Any, contact_list: str) -> None:
    before = ses.get_contact_list(ContactListName=contact_list)
    ses.update_contact_list(ContactListName=contact_list)
    after = ses.get_contact_list(ContactListName=contact_list)
    assert (after["Topics"], after["Description"]) == (before["Topics"], before["Description"])
    replacement = [{"TopicName": "only", "DisplayName": "Only", "DefaultSubscriptionStatus": "OPT_IN"}]
    ses.update_contact_list(ContactListName=contact_list, Topics=replacement)
    assert ses.get_contact_list(ContactListName=contact_list)["Topics"] == replacement


def test_delete_contact_list_cascades(ses: Any) -> None:
    name = unique_name()
    ses.create_contact_list(ContactListName=name)
    ses.create_contact(ContactListName=name, EmailAddress="gone@example.com")
    ses.delete_contact_list(ContactListName=name)
    ses.create_contact_list(ContactListName=name)
    assert ses.list_contacts(ContactListName=name)["Contacts"] == []
    assert error_of(ses.get_contact, ContactListName=name, EmailAddress="gone@example.com")[0] == "NotFoundException"
    ses.delete_contact_list(ContactListName=name)
