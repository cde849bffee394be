"""Getting back on track in a real browser: the list deleted under the console, an ended session, a stale token.

These tests delete the shared list or end sessions, so they sit in their own module and leave the server as
they found it (the list exists, with no topics).
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from .conftest import shot


def _restore_list(ses: Any) -> None:
    try:
        ses.get_contact_list(ContactListName="contacts")
    except ses.exceptions.NotFoundException:
        ses.create_contact_list(ContactListName="contacts")
    ses.update_contact_list(ContactListName="contacts", Topics=[])


def test_a_list_deleted_through_the_api_is_created_again_from_the_console(page: Any, ses: Any) -> None:
    """Item 5: `aws sesv2 delete-contact-list` under a running console (on the ses backend, through the
    console server's SES API to its SES); every page offers to create it, and then the console works again."""
    ses.delete_contact_list(ContactListName="contacts")
    try:
        page.goto("/topics")
        missing = page.get_by_test_id("list-missing")
        expect(missing).to_be_visible()
        assert "The contact list contacts does not exist" in missing.inner_text()
        shot(page, "20-list-missing")
        page.set_viewport_size({"width": 390, "height": 844})
        shot(page, "20-list-missing-390")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.set_viewport_size({"width": 1360, "height": 900})
        page.get_by_label("Topics").fill("newsletter, Monthly newsletter")
        page.get_by_role("button", name="Create the list contacts").click()
        page.wait_for_url("**/")
        expect(page.locator(".flash")).to_have_text("Created the list contacts.")
        expect(page.get_by_test_id("total")).to_have_text("0")
        page.goto("/topics")
        expect(page.locator(".topics-table")).to_contain_text("Monthly newsletter")
        assert ses.get_contact_list(ContactListName="contacts")["Topics"][0]["TopicName"] == "newsletter"
    finally:
        _restore_list(ses)
