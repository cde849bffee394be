"""Bulk topic changes in a real browser (item 10): the bulk bar's "Opt in to topic…" / "Opt out of topic…" for
checked rows and for all N matching, with JavaScript and without, at 1360 and 390 px."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.server import RunningServer

from .conftest import shot, tab_without_javascript
from .test_console_consent import _both_sizes

DOMAIN = "topics.test"
TOPIC = "bulk-offers"


@pytest.fixture
def contacts(ses: Any) -> Iterator[list[str]]:
    """This module's contacts on the shared list, which gets a topic for the test: c0 opted out of it, c1 opted
    in, c2 unsubscribed from all, c3 no choice."""
    ses.update_contact_list(
        ContactListName="contacts",
        Topics=[{"TopicName": TOPIC, "DisplayName": "Offers", "DefaultSubscriptionStatus": "OPT_OUT"}],
    )
    emails = [f"c{i}@{DOMAIN}" for i in range(4)]
    for i, email in enumerate(emails):
        choice = {0: "OPT_OUT", 1: "OPT_IN"}.get(i)
        ses.create_contact(
            ContactListName="contacts",
            EmailAddress=email,
            UnsubscribeAll=i == 2,
            TopicPreferences=[{"TopicName": TOPIC, "SubscriptionStatus": choice}] if choice else [],
            AttributesData='{"Plan": "pro"}',
        )
    try:
        yield emails
    finally:
        for email in emails:
            ses.delete_contact(ContactListName="contacts", EmailAddress=email)
        ses.update_contact_list(ContactListName="contacts", Topics=[])


def preference(ses: Any, email: str) -> str | None:
    contact = ses.get_contact(ContactListName="contacts", EmailAddress=email)
    return next((p["SubscriptionStatus"] for p in contact["TopicPreferences"] if p["TopicName"] == TOPIC), None)


def test_checked_rows_opted_in_after_choosing_the_topic(page: Any, ses: Any, contacts: list[str]) -> None:
    page.goto(f"/?q={DOMAIN}&field=domain")
    for email in contacts:
        page.get_by_label(f"Select {email}").check()
    _both_sizes(page, "40-bulk-bar-topics")
    page.get_by_role("button", name="Opt in to topic…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Opt in to a topic")
    page.get_by_role("radio", name=re.compile("Offers")).check()
    _both_sizes(page, "41-bulk-topic-choice")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Opt in to Offers: 3 contacts will change")
    warning = page.get_by_test_id("opt-in-warning")
    expect(warning).to_contain_text("1 of the 4 selected opted out of Offers themselves")
    expect(warning).to_contain_text("1 is unsubscribed from all email from this list")
    _both_sizes(page, "42-bulk-topic-opt-in-confirm")
    assert preference(ses, contacts[0]) == "OPT_OUT"  # asked, not done
    page.get_by_role("button", name="Opt in to Offers 3").click()
    page.wait_for_url("**/?**")
    expect(page.locator(".flash")).to_have_text("3 contacts opted in to Offers.")
    assert [preference(ses, e) for e in contacts] == ["OPT_IN"] * 4
    third = ses.get_contact(ContactListName="contacts", EmailAddress=contacts[2])
    assert third["UnsubscribeAll"] is True and third["AttributesData"] == '{"Plan": "pro"}'


def test_all_matching_opted_out_as_a_job(page: Any, ses: Any, contacts: list[str]) -> None:
    page.goto(f"/?q={DOMAIN}&field=domain")
    page.get_by_label(re.compile(r"All [\d,]* ?matching")).check()
    page.get_by_role("button", name="Opt out of topic…").click()
    page.get_by_role("button", name="Continue").click()  # the list's only topic is chosen already
    expect(page.get_by_role("heading", level=1)).to_have_text("Opt out of Offers: 3 contacts will change")
    expect(page.get_by_test_id("opt-in-warning")).to_have_count(0)
    page.get_by_role("button", name="Opt out of Offers 3").click()
    page.wait_for_url("**/contacts/bulk/jobs/**")
    page.locator('#job-progress[data-state="completed"]').wait_for()
    expect(page.locator('[data-count="changed"]')).to_have_text("3")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Opt out of Offers: contacts matching")
    _both_sizes(page, "43-bulk-topic-job-completed")
    assert [preference(ses, e) for e in contacts] == ["OPT_OUT"] * 4


def test_without_javascript_on_a_phone(
    browser: Any, console_server: RunningServer, ses: Any, contacts: list[str]
) -> None:
    tab = tab_without_javascript(browser, console_server, viewport={"width": 390, "height": 844})
    try:
        tab.goto(f"/?q={DOMAIN}&field=domain")
        tab.get_by_label(f"Select {contacts[0]}").check()
        tab.get_by_label(f"Select {contacts[3]}").check()
        tab.get_by_role("button", name="Opt in to topic…").click()
        tab.get_by_role("button", name="Continue").click()
        expect(tab.get_by_role("heading", level=1)).to_have_text("Opt in to Offers: 2 contacts will change")
        expect(tab.get_by_test_id("opt-in-warning")).to_contain_text("1 of the 2 selected opted out of Offers")
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390
        shot(tab, "44-bulk-topic-confirm-no-js-390", full_page=False)
        tab.get_by_role("button", name="Opt in to Offers 2").click()
        expect(tab.locator(".flash")).to_have_text("2 contacts opted in to Offers.")
        assert [preference(ses, e) for e in contacts] == ["OPT_IN", "OPT_IN", None, "OPT_IN"]
    finally:
        tab.context.close()
