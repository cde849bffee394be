"""Getting back on track in a real browser: the list deleted under the console, an ended session, a stale token.

These tests delete the shared list or end sessions, so they sit in their own module and leave the server as
they found it (the list exists, with no topics).
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.server import ADMIN_PASSWORD

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


def _fits(page: Any, name: str) -> None:
    """A screenshot at 390 px (and back to desktop): the page must not be wider than the phone."""
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, name + "-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
    page.set_viewport_size({"width": 1360, "height": 900})


def test_a_form_sent_after_the_session_ended_comes_back_after_the_login(page: Any, ses: Any) -> None:
    """Item 3: cookies cleared while a form is open; sending it leads to the login page, and the login back to
    the form as it was typed, for the user to send (the session's end did not lose the input)."""
    page.goto("/contacts/new")
    page.get_by_label("Email address").fill("late@session.test")
    page.get_by_label("Attribute 1 key").fill("Name")
    page.get_by_label("Attribute 1 value").fill("Late O'Neil")
    page.context.clear_cookies()  # the session is gone (as 12 hours after login)
    page.get_by_role("button", name="Add contact").click()
    notice = page.get_by_test_id("resubmit-notice")
    expect(notice).to_contain_text("Your session has ended. Log in to continue")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    shot(page, "21-session-ended-login", full_page=False)
    _fits(page, "21-session-ended-login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("resubmit-notice")).to_contain_text("Your session had ended, so nothing was saved")
    expect(page.get_by_label("Email address")).to_have_value("late@session.test")
    expect(page.get_by_label("Attribute 1 value")).to_have_value("Late O'Neil")
    shot(page, "22-session-ended-form-again", full_page=False)
    _fits(page, "22-session-ended-form-again")
    with pytest.raises(ses.exceptions.NotFoundException):  # not sent for the user
        ses.get_contact(ContactListName="contacts", EmailAddress="late@session.test")
    page.get_by_role("button", name="Add contact").click()
    page.wait_for_url("**/")
    expect(page.locator(".flash")).to_have_text("Added late@session.test.")
    got = ses.get_contact(ContactListName="contacts", EmailAddress="late@session.test")
    assert got["AttributesData"] and "Late O'Neil" in got["AttributesData"]
    ses.delete_contact(ContactListName="contacts", EmailAddress="late@session.test")


def test_a_search_after_the_session_ended_goes_to_the_login_and_back(page: Any) -> None:
    """htmx swaps the results: without a session it is sent to the login page, then back to the search."""
    page.goto("/")
    page.context.clear_cookies()
    page.get_by_label("Search", exact=True).fill("nobody.test")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url("**/login?next=*")
    expect(page.locator("#results")).to_have_count(0)  # no login page swapped into the table
    log_in_here(page)
    page.wait_for_url("**/")
    expect(page.locator("#results")).to_be_visible()


def log_in_here(page: Any) -> None:
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_a_stale_token_shows_the_form_again_with_a_fresh_one(page: Any, ses: Any) -> None:
    """Item 4: logged out and in again in another tab; the first tab's edit form, sent with its old token,
    comes back styled, explained, with what was typed and a fresh token; sending it again saves it."""
    email = "stale@token.test"
    ses.create_contact(ContactListName="contacts", EmailAddress=email, AttributesData='{"Plan": "free"}')
    try:
        page.goto("/contacts/edit?email=stale%40token.test")
        page.get_by_label("Attribute 1 value").fill("pro")
        other = page.context.new_page()
        other.goto("/account")
        other.get_by_role("button", name="Log out", exact=True).click()
        other.wait_for_url("**/login")
        log_in_here(other)
        other.wait_for_url("**/")  # logged in again: this browser's session and token are new
        other.close()
        page.get_by_role("button", name="Save changes").click()
        notice = page.get_by_test_id("resubmit-notice")
        expect(notice).to_contain_text("This form's security token was out of date, so nothing was saved")
        expect(page.get_by_label("Attribute 1 value")).to_have_value("pro")
        shot(page, "23-stale-token-form-again", full_page=False)
        _fits(page, "23-stale-token-form-again")
        got = ses.get_contact(ContactListName="contacts", EmailAddress=email)
        assert got["AttributesData"] == '{"Plan": "free"}'  # not saved
        page.get_by_role("button", name="Save changes").click()
        page.wait_for_url("**/")
        expect(page.locator(".flash")).to_have_text(f"Saved {email}.")
        got = ses.get_contact(ContactListName="contacts", EmailAddress=email)
        assert got["AttributesData"].replace(" ", "") == '{"Plan":"pro"}'
    finally:
        ses.delete_contact(ContactListName="contacts", EmailAddress=email)
