"""The contact history in a real browser (issue 13): a contact's timeline under its form, the Activity page
with its filters, a deleted contact's page, at 1360x900 with JavaScript and at 390x844 without (nothing wider
than a phone's screen). The history is fed by changes made through the console and the SES API; the
server is another process, so who acts is what its surfaces record (tests/test_console_history.py checks
each actor's label in-process)."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.support.server import RunningServer

from .conftest import shot, tab_without_javascript
from .test_console_phone import assert_fits

DOMAIN = "history.test"
HOSTILE = "<script>alert(1)</script>"


def add_and_edit(tab: Any, email: str) -> None:
    """Add a contact with one attribute, then change it to a hostile value, add another, unsubscribe."""
    tab.goto("/contacts/new")
    tab.get_by_label("Email address").fill(email)
    tab.get_by_label("Attribute 1 key").fill("Company")
    tab.get_by_label("Attribute 1 value").fill("ACME")
    tab.get_by_role("button", name="Add contact").click()
    expect(tab.get_by_role("status").first).to_contain_text(f"Added {email}.")
    tab.goto(f"/contacts/edit?email={email}")
    tab.get_by_label("Attribute 1 value").fill(HOSTILE)
    tab.get_by_label("Attribute 2 key").fill("Plan")
    tab.get_by_label("Attribute 2 value").fill("pro")
    tab.get_by_label("Unsubscribed from all").check()
    tab.get_by_role("button", name="Save changes").click()
    expect(tab.get_by_role("status").first).to_contain_text(f"Saved {email}.")


def test_timeline_activity_and_a_deleted_contact(page: Any, ses: Any) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    email = f"timeline.person@{DOMAIN}"
    add_and_edit(page, email)
    ses.update_contact(ContactListName="contacts", EmailAddress=email, AttributesData='{"Company": "Initech"}')

    page.goto(f"/contacts/edit?email={email}")
    timeline = page.get_by_test_id("timeline")
    entries = timeline.get_by_test_id("change")
    expect(entries).to_have_count(3)
    expect(entries.nth(2)).to_contain_text("Created")
    edited = entries.nth(1)
    expect(edited).to_contain_text("Unsubscribed from all no")
    expect(edited).to_contain_text(f"Attribute Company ACME → became {HOSTILE}")  # shown as text, not run
    expect(edited).to_contain_text("Attribute Plan (none) → became pro")
    expect(entries.nth(0)).to_contain_text(f"Attribute Company {HOSTILE} → became Initech")
    when = entries.nth(0).locator("time")
    expect(when).to_have_text("just now")
    expect(when).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$"))
    timeline.scroll_into_view_if_needed()
    shot(page, "history-timeline")

    page.get_by_role("link", name="Activity", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Activity")
    page.get_by_label("Updated").check()
    page.get_by_label("Address").fill(email)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(lambda url: "what=updated" in url)
    rows = page.get_by_test_id("activity").get_by_test_id("change")
    expect(rows).to_have_count(2)
    for n in range(2):
        expect(rows.nth(n)).to_contain_text(f"Updated {email}")
    shot(page, "history-activity")

    page.goto(f"/contacts/delete?email={email}")
    page.get_by_role("button", name="Delete").last.click()
    page.goto(f"/activity?what=deleted&email={email}")
    page.get_by_test_id("activity").get_by_role("link", name=email).first.click()
    expect(page.get_by_test_id("deleted-badge")).to_have_text("Deleted")
    expect(page.get_by_test_id("timeline").get_by_test_id("change")).to_have_count(4)
    expect(page.get_by_test_id("timeline").get_by_test_id("change").first).to_contain_text("What it had when deleted")
    shot(page, "history-deleted")

    page.goto("/activity?since=2026-13-01")
    expect(page.get_by_test_id("activity-error")).to_contain_text("is not a date for “from”")
    assert dialogs == []


def test_the_history_on_a_phone_without_javascript(browser: Any, console_server: RunningServer) -> None:
    tab = tab_without_javascript(browser, console_server, viewport={"width": 390, "height": 844})
    try:
        email = f"someone.with.a.very.long.mailbox.name@{DOMAIN}"
        add_and_edit(tab, email)
        tab.goto(f"/contacts/edit?email={email}")
        expect(tab.get_by_test_id("timeline").get_by_test_id("change")).to_have_count(2)
        assert_fits(tab, 390, "contact page with its timeline")
        tab.get_by_test_id("timeline").scroll_into_view_if_needed()
        shot(tab, "history-timeline-phone")
        tab.goto("/activity")
        tab.get_by_label("Created").check()
        tab.get_by_role("button", name="Filter").click()
        assert "what=created" in tab.url
        expect(tab.get_by_test_id("activity").get_by_test_id("change").first).to_contain_text("Created")
        assert_fits(tab, 390, "activity page")
        shot(tab, "history-activity-phone")
    finally:
        tab.context.close()
