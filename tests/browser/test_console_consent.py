"""Consent guards in a real browser without JavaScript (item 7): a topic's default turned to Opted in, and a
bulk Resubscribe, each ask first with the number of contacts they affect."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.server import RunningServer

from .conftest import shot, tab_without_javascript

DOMAIN = "consent.test"


@pytest.fixture
def plain_page(browser: Any, console_server: RunningServer, ses: Any) -> Iterator[Any]:
    """A logged-in page with JavaScript off, and this module's contacts: 3 who never chose, 2 unsubscribed."""
    page = tab_without_javascript(browser, console_server, viewport={"width": 1360, "height": 900})
    ses.update_contact_list(
        ContactListName="contacts",
        Topics=[{"TopicName": "consent-news", "DisplayName": "News", "DefaultSubscriptionStatus": "OPT_OUT"}],
    )
    emails = [f"c{i}@{DOMAIN}" for i in range(5)]
    for i, email in enumerate(emails):
        ses.create_contact(ContactListName="contacts", EmailAddress=email, UnsubscribeAll=i >= 3)
    try:
        yield page
    finally:
        for email in emails:
            ses.delete_contact(ContactListName="contacts", EmailAddress=email)
        ses.update_contact_list(ContactListName="contacts", Topics=[])
        page.context.close()


def _both_sizes(page: Any, name: str) -> None:
    shot(page, name, full_page=False)
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, name + "-390", full_page=False)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
    page.set_viewport_size({"width": 1360, "height": 900})


def test_a_default_of_opted_in_asks_with_the_number_first(plain_page: Any, ses: Any) -> None:
    page = plain_page
    page.goto("/topics?edit=consent-news")
    page.get_by_label("Opted in", exact=True).check()
    page.get_by_role("button", name="Save topic").click()
    heading = page.get_by_role("heading", level=1)
    # other tests' contacts may share the list: the number is every subscribed contact with no choice
    expect(heading).to_contain_text("to consent-news?")
    affected = int(heading.inner_text().split()[2].replace(",", ""))
    assert affected >= 3
    expect(page.get_by_test_id("opt-in-summary")).to_contain_text("never chosen for News")
    _both_sizes(page, "24-topic-opt-in-confirm")
    topics = ses.get_contact_list(ContactListName="contacts")["Topics"]
    assert topics[0]["DefaultSubscriptionStatus"] == "OPT_OUT"  # not yet
    page.get_by_role("button", name=f"Opt in {affected:,} and save").click()
    page.wait_for_url("**/topics")
    expect(page.locator(".flash")).to_have_text("Saved topic consent-news.")
    assert ses.get_contact_list(ContactListName="contacts")["Topics"][0]["DefaultSubscriptionStatus"] == "OPT_IN"


def test_bulk_resubscribe_says_how_many_had_unsubscribed(plain_page: Any, ses: Any) -> None:
    page = plain_page
    page.goto(f"/?q={DOMAIN}&field=domain")
    for i in (0, 3, 4):
        page.get_by_label(f"Select c{i}@{DOMAIN}").check()
    page.get_by_role("button", name="Resubscribe", exact=True).click()
    expect(page.get_by_test_id("resubscribe-warning")).to_contain_text("2 of the 3 selected had unsubscribed from all")
    _both_sizes(page, "25-bulk-resubscribe-confirm")
    assert ses.get_contact(ContactListName="contacts", EmailAddress=f"c3@{DOMAIN}")["UnsubscribeAll"] is True
    page.get_by_role("button", name="Resubscribe 2").click()
    page.wait_for_url("**/?**")
    assert ses.get_contact(ContactListName="contacts", EmailAddress=f"c3@{DOMAIN}")["UnsubscribeAll"] is False
