"""Deliverability in a real browser (issue 12, console): the Suppression page (suppress by hand, search, the
warning before a removal), the contacts page's Suppressed badge and Deliverability filter, and the removal of
checked contacts from the suppression list, at 1360x900 and 390x844 (nothing wider than a phone's screen)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.support.server import RunningServer

from .conftest import shot, tab_without_javascript
from .test_console_browser import table_emails
from .test_console_phone import assert_fits

DOMAIN = "deliverability.test"


def suppress(tab: Any, email: str, reason: str) -> None:
    tab.goto("/suppression")
    tab.get_by_label("Email", exact=True).fill(email)
    tab.get_by_label("Reason", exact=True).last.select_option(reason)
    tab.get_by_role("button", name="Suppress", exact=True).click()
    expect(tab.get_by_role("status")).to_contain_text(f"Added {email} to the suppression list.")


def test_suppress_filter_and_remove_with_the_warning(page: Any, ses: Any) -> None:
    emails = [f"reader{i}@{DOMAIN}" for i in range(4)]
    for email in emails:
        ses.create_contact(ContactListName="contacts", EmailAddress=email)
    suppress(page, emails[1], "BOUNCE")
    suppress(page, emails[3], "COMPLAINT")
    page.get_by_label("Email contains").fill(DOMAIN)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("table.suppression-table td.email")).to_have_count(2)
    shot(page, "suppression-page")

    page.goto(f"/?q={DOMAIN}&field=domain")
    expect(page.locator("td .badge.warn")).to_have_count(2)
    page.get_by_label("Deliverability", exact=True).select_option("suppressed")
    page.wait_for_url(lambda url: "delivery=suppressed" in url)
    expect(page.locator("td.email a")).to_have_count(2)
    assert table_emails(page) == [emails[1], emails[3]]
    shot(page, "contacts-suppressed-filter")

    page.get_by_label(f"Select {emails[1]}").check()
    page.get_by_role("button", name="Remove from suppression list…").click()
    warning = page.get_by_test_id("suppression-warning")
    expect(warning).to_contain_text("5% bounces or 0.1% complaints")
    expect(page.get_by_role("heading", level=1)).to_have_text("Let SES deliver to 1 address again?")
    shot(page, "suppression-remove-warning")
    page.get_by_role("button", name="Remove from the suppression list").click()
    expect(page.get_by_role("status").first).to_contain_text("Removed 1 address from the suppression list.")
    assert "delivery=suppressed" in page.url  # back to the view the user came from
    expect(page.locator("td.email a")).to_have_count(1)
    assert table_emails(page) == [emails[3]]


def test_the_suppression_page_on_a_phone_without_javascript(browser: Any, console_server: RunningServer) -> None:
    tab = tab_without_javascript(browser, console_server, viewport={"width": 390, "height": 844})
    try:
        long_address = f"someone.with.a.very.long.mailbox.name@{DOMAIN}"
        suppress(tab, long_address, "COMPLAINT")
        tab.goto(f"/suppression?q={DOMAIN}")
        assert_fits(tab, 390, "suppression page")
        shot(tab, "suppression-phone")
        tab.get_by_label(f"Select {long_address}").check()
        tab.get_by_role("button", name="Remove checked from the list…").click()
        expect(tab.get_by_test_id("suppression-warning")).to_be_visible()
        assert_fits(tab, 390, "removal warning")
        shot(tab, "suppression-remove-phone")
        tab.get_by_role("button", name="Remove from the suppression list").click()
        expect(tab.get_by_role("status").first).to_contain_text("Removed 1 address")
    finally:
        tab.context.close()


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ses-events"


def import_events(server: RunningServer, *names: str) -> None:
    """SES's events for the running server's data dir, as a user feeds a Firehose archive to it."""
    lines = "".join(json.dumps(json.loads((FIXTURES / name).read_text())) + "\n" for name in names)
    done = subprocess.run(
        [sys.executable, "-m", "sescontacts", "events", "import", "-", "--data-dir", str(server.data_dir)],
        input=lines.encode(),
        capture_output=True,
        env={**os.environ, **server.env},
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()


def test_a_bounce_shows_on_the_contact_the_table_and_the_overview(
    page: Any, ses: Any, console_server: RunningServer
) -> None:
    ses.create_contact(ContactListName="contacts", EmailAddress="gone@example.com")
    import_events(console_server, "send-event.json", "bounce-event.json", "complaint-event.json")
    page.goto("/contacts/edit?email=gone%40example.com")
    history = page.get_by_test_id("delivery-history")
    expect(history).to_contain_text("Permanent bounce")
    expect(history).to_contain_text("smtp; 550 5.1.1 user unknown")
    shot(page, "contact-bounce-history")
    page.goto("/?delivery=bounced")
    expect(page.locator("td.email a")).to_have_text(["gone@example.com"])
    expect(page.locator("td .badge.warn", has_text="Bounced")).to_have_count(1)
    page.goto("/")
    rates = page.get_by_test_id("rates")
    expect(rates).to_contain_text("Bounce rate")
    expect(page.get_by_test_id("delivery-counts")).to_contain_text("bounced")
    shot(page, "overview-deliverability")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/contacts/edit?email=gone%40example.com")
    expect(page.get_by_test_id("delivery-history")).to_be_visible()
    assert_fits(page, 390, "contact's bounce history")
    shot(page, "contact-bounce-history-phone")
    page.goto("/")
    expect(page.get_by_test_id("rates")).to_be_visible()
    assert_fits(page, 390, "overview with deliverability")
    shot(page, "overview-deliverability-phone")
