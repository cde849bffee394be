"""The contact history in a real browser (issue 13): a contact's timeline under its form, the Activity page
with its filters, a deleted contact's page, undoing an import and deciding its conflicts, at 1360x900 with
JavaScript and at 390x844 without (nothing wider than a phone's screen). The history is fed by changes made
through the console and the SES API; the server is another process, so who acts is what its surfaces record
(tests/test_console_history.py checks each actor's label in-process)."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import expect

from tests.support.server import ACCESS_KEY_ID, RunningServer

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


# -- undo from the console ----------------------------------------------------------------------------------
# On the real server (both backends: on ses the undo's writes go through SES): the import through the console,
# later edits through the SES API (the conflicts), the undo started with the job page's button and run by the
# server's worker while its page refreshes itself (htmx with JavaScript, a meta refresh without).

UNDO_WAIT = 60_000  # ms: the worker's undo, paced by SES on the ses backend


def import_through_the_console(browser: Any, server: RunningServer, csv: str) -> str:
    """An import job of ``csv`` started by admin in the console (a tab without JavaScript); its ID."""
    tab = tab_without_javascript(browser, server, timeout=UNDO_WAIT)
    try:
        tab.goto("/import")
        tab.get_by_label("CSV or JSON file").set_input_files(
            files=[{"name": "undo-me.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
        )
        tab.get_by_role("button", name="Upload and check").click()
        tab.get_by_role("button", name=re.compile(r"^Import \d+ rows?$")).click()
        tab.wait_for_url("**/import/jobs/**")
        tab.locator('#job-progress[data-state="completed"]').wait_for()
        return str(tab.url.rsplit("/", 1)[1])
    finally:
        tab.context.close()


def attributes(ses: Any, email: str) -> Any:
    """The contact's attributes as the SES API answers (None: not there)."""
    try:
        found = ses.get_contact(ContactListName="contacts", EmailAddress=email)
    except ses.exceptions.NotFoundException:
        return None
    return json.loads(found.get("AttributesData") or "null")


def start_undo(tab: Any, job_id: str, shot_name: str, width: int) -> None:
    """The job page's Undo button, the confirmation (looked at), "Undo this import" with the default policy."""
    tab.goto(f"/import/jobs/{job_id}")
    tab.get_by_role("button", name="Undo this import…").click()
    expect(tab.get_by_role("heading", level=1)).to_have_text("Undo this import?")
    expect(tab.get_by_test_id("undo-explained")).to_contain_text("every contact it created is removed")
    expect(tab.get_by_label("Keep them as they are now")).to_be_checked()
    assert_fits(tab, width, "undo confirmation")
    shot(tab, shot_name)
    tab.get_by_role("button", name="Undo this import", exact=True).click()
    tab.wait_for_url("**/undo/jobs/**")
    expect(tab.get_by_role("heading", level=1)).to_have_text("Undo of undo-me.csv")
    expect(tab.get_by_test_id("undo-progress")).to_have_attribute("data-state", "completed", timeout=UNDO_WAIT)


def test_undo_asks_then_lists_the_conflicts(page: Any, browser: Any, console_server: RunningServer, ses: Any) -> None:
    domain = "undo-js.test"
    old, edited, plain = f"old@{domain}", f"edited@{domain}", f"plain@{domain}"
    ses.create_contact(ContactListName="contacts", EmailAddress=old, AttributesData='{"Plan": "basic"}')
    job_id = import_through_the_console(
        browser, console_server, f'emailAddress,attributesData\n{old},"{{""Plan"": ""pro""}}"\n{edited},\n{plain},\n'
    )
    # changed again after the import, through the SES API: the undo's conflicts
    ses.update_contact(ContactListName="contacts", EmailAddress=old, AttributesData='{"Plan": "gold"}')
    ses.update_contact(ContactListName="contacts", EmailAddress=edited, AttributesData=f'{{"Plan": "{HOSTILE}"}}')

    start_undo(page, job_id, "undo-confirm", 1360)
    conflicts = page.get_by_test_id("conflict")
    expect(conflicts).to_have_count(2)
    for email in (old, edited):
        one = conflicts.filter(has_text=email)
        expect(one.get_by_test_id("changed-since")).to_have_text(f"changed since by api {ACCESS_KEY_ID}")
    expect(conflicts.filter(has_text=old)).to_contain_text("Attribute Plan gold → became basic")
    expect(conflicts.filter(has_text=edited)).to_contain_text(f"Attribute Plan {HOSTILE} → became (none)")
    expect(conflicts.filter(has_text=edited)).to_contain_text("Restoring removes it")
    assert attributes(ses, plain) is None  # created by the import, unchanged since: removed
    shot(page, "undo-conflicts")

    page.get_by_label(f"Select {old}").check()
    page.get_by_role("button", name="Restore checked").click()
    expect(page.get_by_role("status").first).to_contain_text("Restored 1 contact.")
    expect(conflicts).to_have_count(1)
    assert attributes(ses, old) == {"Plan": "basic"} and attributes(ses, edited) == {"Plan": HOSTILE}
    page.get_by_role("button", name="Keep all as they are").click()
    expect(page.get_by_role("status").first).to_contain_text("Kept 1 contact as they are now.")
    expect(page.get_by_test_id("no-conflicts")).to_contain_text("every contact the job changed is back")
    assert attributes(ses, edited) == {"Plan": HOSTILE}

    page.goto(f"/import/jobs/{job_id}")
    page.get_by_test_id("undone-by").get_by_role("link").click()
    expect(page.get_by_role("button", name="Undo this undo (redo)…")).to_be_visible()


def test_the_undo_pages_on_a_phone_without_javascript(browser: Any, console_server: RunningServer, ses: Any) -> None:
    domain = "undo-phone.test"
    long, changed, new = f"someone.with.a.very.long.mailbox.name@{domain}", f"changed@{domain}", f"new@{domain}"
    job_id = import_through_the_console(browser, console_server, f"emailAddress\n{long}\n{changed}\n{new}\n")
    ses.update_contact(ContactListName="contacts", EmailAddress=long, AttributesData='{"Company": "ACME Inc."}')
    ses.delete_contact(ContactListName="contacts", EmailAddress=changed)
    tab = tab_without_javascript(browser, console_server, viewport={"width": 390, "height": 844}, timeout=UNDO_WAIT)
    try:
        start_undo(tab, job_id, "undo-confirm-phone", 390)
        conflicts = tab.get_by_test_id("conflict")
        expect(conflicts).to_have_count(2)
        expect(conflicts.filter(has_text=changed)).to_contain_text("Deleted since")
        expect(conflicts.filter(has_text=changed)).to_contain_text("Not in the list now, nor after restoring")
        expect(conflicts.filter(has_text=long)).to_contain_text("Attribute Company ACME Inc. → became (none)")
        assert_fits(tab, 390, "undo conflicts")
        shot(tab, "undo-conflicts-phone")
        tab.get_by_role("button", name="Keep all as they are").click()
        expect(tab.get_by_role("status").first).to_contain_text("Kept 2 contacts as they are now.")
        assert attributes(ses, long) == {"Company": "ACME Inc."}
        assert attributes(ses, changed) is None and attributes(ses, new) is None
    finally:
        tab.context.close()
