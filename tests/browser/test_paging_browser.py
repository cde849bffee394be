"""Pages and counts in a real browser (issue 14 item 8): Next, Previous and First page with htmx and with the
browser's Back button, the page-size control, "Count exactly" beside "10,000+", and the same without JavaScript;
at 1360x900 and at 390x844, where the page is never wider than the screen."""

from __future__ import annotations

import os
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.server import RunningServer

from .conftest import shot, tab_without_javascript
from .test_console_browser import _all_matching, _import_through_the_api, _wait_for_import, table_emails
from .test_console_phone import assert_fits

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1360, "height": 900}


def showing(first: int, last: int) -> str:
    return f"Showing {first:,}\N{EN DASH}{last:,}"


def _seed(ses: Any, domain: str, n: int) -> list[str]:
    """``n`` contacts at ``domain``, in the table's order (by address)."""
    emails = [f"pg{i:03d}@{domain}" for i in range(n)]
    for email in emails:
        ses.create_contact(ContactListName="contacts", EmailAddress=email)
    return emails


def _settled(tab: Any) -> None:
    expect(tab.locator("#results.htmx-settling, #results.htmx-swapping")).to_have_count(0)


def test_previous_next_and_page_size_with_htmx(page: Any, ses: Any) -> None:
    emails = _seed(ses, "paging-js.test", 60)
    position = page.get_by_test_id("position")
    page.goto("/?q=paging-js.test&field=domain")
    # The page size is the filter form's select: on change htmx shows the first page at that size.
    page.get_by_label("Contacts per page").select_option("25")
    page.wait_for_url(lambda url: "size=25" in url)
    _settled(page)
    expect(position).to_have_text(showing(1, 25))
    assert table_emails(page) == emails[:25]
    page.evaluate("window.__sameDocument = true")  # gone if a click loads a whole page
    page.get_by_role("link", name="Next page").click()
    expect(position).to_have_text(showing(26, 50))
    assert table_emails(page) == emails[25:50]
    page.get_by_role("link", name="Next page").click()
    expect(position).to_have_text(showing(51, 60))
    assert table_emails(page) == emails[50:]
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    shot(page, "paging-third-page")
    page.get_by_role("link", name="Previous page").click()
    expect(position).to_have_text(showing(26, 50))
    assert table_emails(page) == emails[25:50]
    assert page.evaluate("window.__sameDocument") is True  # swapped by htmx, not reloaded
    # The browser's Back goes to the page shown before (the third), from the URL htmx pushed.
    page.go_back()
    expect(position).to_have_text(showing(51, 60))
    assert table_emails(page) == emails[50:]
    page.get_by_role("link", name="First page").click()
    expect(position).to_have_text(showing(1, 25))
    assert table_emails(page) == emails[:25]
    # A new size on a later page starts again at the first page, the search kept.
    page.get_by_role("link", name="Next page").click()
    expect(position).to_have_text(showing(26, 50))
    page.get_by_label("Contacts per page").select_option("50")
    # 50 is the default: left out of the URL
    page.wait_for_url(lambda url: "size=" not in url and "page=" not in url and "paging-js.test" in url)
    expect(position).to_have_text(showing(1, 50))
    assert table_emails(page) == emails[:50]

    page.set_viewport_size(PHONE)
    page.get_by_role("link", name="Next page").click()
    expect(position).to_have_text(showing(51, 60))
    _settled(page)
    assert_fits(page, PHONE["width"], "the second page of a search")
    shot(page, "paging-390")
    page.set_viewport_size(DESKTOP)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1360", "390"])
def test_pages_and_page_size_without_javascript(
    browser: Any, ses: Any, console_server: RunningServer, viewport: dict[str, int]
) -> None:
    domain = f"paging-nojs-{viewport['width']}.test"
    emails = _seed(ses, domain, 60)
    tab = tab_without_javascript(browser, console_server, viewport=viewport)
    position = tab.get_by_test_id("position")
    tab.goto(f"/?q={domain}&field=domain")
    tab.get_by_label("Contacts per page").select_option("25")
    tab.get_by_role("button", name="Search", exact=True).click()  # the filter form, as a plain GET
    tab.wait_for_url(lambda url: "size=25" in url)
    assert table_emails(tab) == emails[:25]
    tab.get_by_role("link", name="Next page").click()
    expect(position).to_have_text(showing(26, 50))
    tab.get_by_role("link", name="Next page").click()
    expect(position).to_have_text(showing(51, 60))
    assert table_emails(tab) == emails[50:]
    shot(tab, f"paging-nojs-third-page-{viewport['width']}")
    if viewport == PHONE:
        assert_fits(tab, PHONE["width"], "the third page of a search, without JavaScript")
    tab.get_by_role("link", name="Previous page").click()
    expect(position).to_have_text(showing(26, 50))
    assert table_emails(tab) == emails[25:50]
    tab.go_back()
    expect(position).to_have_text(showing(51, 60))
    tab.get_by_role("link", name="First page").click()
    expect(position).to_have_text(showing(1, 25))
    assert table_emails(tab) == emails[:25] and "page=" not in tab.url and "size=25" in tab.url
    tab.context.close()


def test_count_exactly_beside_a_capped_count(page: Any, browser: Any, ses: Any, console_server: RunningServer) -> None:
    if os.environ.get("SESCONTACTS_BROWSER_BACKEND") == "ses":
        pytest.skip(
            "seeding 10,050 contacts needs the local backend's import jobs (S3 files from its data dir); the ses "
            "backend's exact count is tested in-process on moto (tests/test_console_contacts_paging.py)"
        )
    domain = "count-exactly.test"
    view = f"/?q={domain}&field=domain"
    _wait_for_import(ses, _import_through_the_api(ses, console_server, "count-exactly.csv", 10_050, domain))
    try:
        page.goto(view)
        matching = page.get_by_test_id("matching")
        expect(matching).to_have_text("10,000+")
        shot(page, "count-capped", full_page=False)
        page.evaluate("window.__sameDocument = true")
        page.get_by_role("link", name="Count exactly").click()
        expect(matching).to_have_text("10,050")
        expect(page.get_by_role("link", name="Count exactly")).to_have_count(0)
        assert page.evaluate("window.__sameDocument") is True  # counted in place
        shot(page, "count-exactly", full_page=False)
        page.set_viewport_size(PHONE)
        page.reload()
        expect(matching).to_have_text("10,000+")
        expect(page.get_by_role("link", name="Count exactly")).to_be_visible()
        assert_fits(page, PHONE["width"], "a capped count with its Count exactly link")
        page.locator(".table-toolbar").scroll_into_view_if_needed()
        shot(page, "count-exactly-390", full_page=False)
        page.set_viewport_size(DESKTOP)

        tab = tab_without_javascript(browser, console_server, viewport=PHONE)
        tab.goto(view)
        tab.get_by_role("link", name="Count", exact=True).click()
        expect(tab.locator("h1")).to_have_text("10,000+ contacts match")
        tab.get_by_role("link", name="Count exactly").click()
        expect(tab.locator("h1")).to_have_text("10,050 contacts match")
        assert_fits(tab, PHONE["width"], "the exact count's page, without JavaScript")
        shot(tab, "count-exactly-nojs-390")
        tab.context.close()
    finally:
        _all_matching(page, view, "Delete", "Delete")
        page.locator('#job-progress[data-state="completed"]').wait_for(timeout=60_000)
