"""Search with several conditions in a real browser: rows added through the filter form (with htmx, and as
plain form submits without JavaScript), the table, the URL and the exported file agreeing."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from playwright.sync_api import expect

from tests.support.server import RunningServer

from .conftest import shot, tab_without_javascript
from .test_console_browser import table_emails

COMPANIES = ["ACME Inc", "acme inc", "Acme Inc", "Globex"]


def _seed(ses: Any, domain: str, key: str) -> set[str]:
    """Contacts at ``domain`` and at another domain, companies (under ``key``, one for each test) in several
    cases; returns the addresses with ``key = acme inc`` (any case) at ``domain``."""
    expected = set()
    for i in range(12):
        email = f"s{i:02d}@{domain if i % 2 else 'other.' + domain}"
        company = COMPANIES[i % len(COMPANIES)]
        ses.create_contact(ContactListName="contacts", EmailAddress=email, AttributesData=json.dumps({key: company}))
        if i % 2 and company != "Globex":
            expected.add(email)
    return expected


def _conditions(url: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in parse_qsl(urlsplit(url).query) if k in ("q", "field")]


def test_two_conditions_added_through_the_form_show_and_export_the_same_contacts(
    page: Any, ses: Any, tmp_path: Path
) -> None:
    expected = _seed(ses, "cond.test", "Company")
    page.goto("/")
    page.get_by_label("In", exact=True).select_option("attribute")
    page.get_by_label("Search", exact=True).fill("Company = ACME INC")
    page.get_by_role("button", name="Add condition").click()
    second = page.get_by_label("Search 2", exact=True)
    expect(second).to_be_visible()
    expect(second).to_have_value("")
    assert page.get_by_label("Search", exact=True).input_value() == "Company = ACME INC"  # the first row kept
    page.get_by_label("In 2", exact=True).select_option("domain")
    second.fill("cond.test")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(lambda url: ("q", "cond.test") in _conditions(url))
    expect(page.locator("#results.htmx-settling, #results.htmx-swapping")).to_have_count(0)
    expect(page.locator("td.email")).to_have_count(len(expected))
    assert set(table_emails(page)) == expected
    assert _conditions(page.url) == [
        ("q", "Company = ACME INC"),
        ("field", "attribute"),
        ("q", "cond.test"),
        ("field", "domain"),
    ]
    shot(page, "search-two-conditions")
    page.set_viewport_size({"width": 390, "height": 844})
    # The form's rows fit the phone's width (the page's own width is item 2's, with the table).
    widest = page.evaluate(
        "Math.max(...[...document.querySelectorAll('form.filters, form.filters *')]"
        ".map(e => e.getBoundingClientRect().right))"
    )
    assert widest <= 390
    shot(page, "search-two-conditions-390")
    page.set_viewport_size({"width": 1360, "height": 900})

    # The view's URL, loaded again: Export links that follow the live view without a reload are item 1's.
    page.goto(page.url)
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    path = tmp_path / "export.csv"
    download.value.save_as(path)
    with path.open(newline="") as file:
        assert {row["emailAddress"] for row in csv.DictReader(file)} == expected

    # Exact: only the spelling typed; removing the domain row widens to every domain.
    page.get_by_label("Attribute values exactly as typed (case-sensitive)").check()
    page.wait_for_url(lambda url: "exact=1" in url)
    expect(page.locator("td.email")).to_have_count(0)  # nobody's company is "ACME INC"
    page.get_by_role("button", name="Remove condition 2").click()
    expect(page.get_by_label("Search 2", exact=True)).to_have_count(0)
    page.get_by_label("Search", exact=True).fill("Company = ACME Inc")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(lambda url: ("q", "Company = ACME Inc") in _conditions(url))
    expect(page.locator("td.email")).to_have_count(3)  # s00, s04, s08: ACME Inc exactly, at any domain
    assert set(table_emails(page)) == {"s00@other.cond.test", "s04@other.cond.test", "s08@other.cond.test"}


def test_conditions_are_added_without_javascript(browser: Any, ses: Any, console_server: RunningServer) -> None:
    expected = _seed(ses, "nojs-cond.test", "Firm")
    page = tab_without_javascript(browser, console_server, viewport={"width": 1360, "height": 900})
    page.goto("/?q=Firm+%3D+acme+inc&field=attribute")
    page.get_by_role("button", name="Add condition").click()
    page.get_by_label("In 2", exact=True).select_option("domain")
    page.get_by_label("Search 2", exact=True).fill("nojs-cond.test")
    page.get_by_label("Search 2", exact=True).press("Enter")  # Enter is the Search button, not Remove
    page.wait_for_url(lambda url: ("q", "nojs-cond.test") in _conditions(url))
    assert set(table_emails(page)) == expected
    assert page.get_by_label("Search 2", exact=True).input_value() == "nojs-cond.test"
    page.context.close()
