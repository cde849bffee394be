"""The import's Map columns step in a real browser: a Mailchimp export mapped, previewed, dry-run and
imported, at desktop and phone widths, with and without JavaScript; the contacts found with their attributes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.server import RunningServer

from .conftest import shot, tab_without_javascript

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def mailchimp_file(tmp_path: Path, domain: str) -> Path:
    """The Mailchimp fixture with its addresses moved to this test's own domain (the server is shared)."""
    text = (FIXTURES / "mailchimp-export.csv").read_text()
    path = tmp_path / "members.csv"
    path.write_text(re.sub(r"@example\.\w+", f"@{domain}", text))
    return path


@pytest.fixture
def news_topic(ses: Any) -> Any:
    topic = {"TopicName": "news", "DisplayName": "News", "DefaultSubscriptionStatus": "OPT_OUT"}
    ses.update_contact_list(ContactListName="contacts", Topics=[topic])
    yield
    ses.update_contact_list(ContactListName="contacts", Topics=[])


def page_fits(page: Any, width: int) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, f"the page is {overflow} px wide at {width} px"


def test_map_a_mailchimp_export_preview_import_and_find_the_contacts(
    page: Any, tmp_path: Path, news_topic: Any
) -> None:
    file = mailchimp_file(tmp_path, "mapped.test")
    page.goto("/")
    page.get_by_role("link", name="Import Contacts").click()
    dialog = page.locator("dialog#dialog")
    dialog.wait_for(state="visible")
    dialog.get_by_label("CSV or JSON file").set_input_files(str(file))
    dialog.get_by_role("button", name="Upload and check").click()
    columns = dialog.locator("li.map-column")
    columns.first.wait_for()
    assert columns.count() == 9
    assert dialog.locator('[aria-current="step"]').inner_text() == "Map columns"
    shot(page, "19-import-map-desktop", full_page=False)

    def column(name: str) -> Any:
        return dialog.locator(f'li.map-column[data-column="{name}"]')

    # Filled in from the names: the address recognised, every other column a string attribute.
    assert column("Email Address").get_by_label("Goes to").input_value() == "email"
    assert column("First Name").get_by_label("Goes to").input_value() == "attribute"
    assert "12 High St, Leeds, LS1 1AA" in column("Address").inner_text()  # a quoted value with commas, whole
    # Name and type show only for a column that goes to an attribute (CSS, no script).
    assert column("First Name").get_by_label("Attribute name").is_visible()
    column("Address").get_by_label("Goes to").select_option("skip")
    assert not column("Address").get_by_label("Attribute name").is_visible()
    column("First Name").get_by_label("Attribute name").fill("FirstName")
    column("Last Name").get_by_label("Attribute name").fill("LastName")
    column("MEMBER_RATING").get_by_label("Attribute name").fill("Rating")
    column("MEMBER_RATING").get_by_label("Type").select_option("number")
    column("Newsletter").get_by_label("Goes to").select_option("topic:news")
    for skipped in ("Phone Number", "OPTIN_TIME", "TAGS"):
        column(skipped).get_by_label("Goes to").select_option("skip")
    dialog.get_by_role("button", name="Preview").click()
    preview = dialog.locator('[data-testid="mapping-preview"]')
    # The new preview: "FirstName" is the mapped attribute (the old one showed the column "First Name"; waiting
    # for "Rating" also matched its "MEMBER_RATING" and raced the swap).
    expect(preview).to_contain_text("FirstName")
    first_row = preview.locator("tbody tr").first.inner_text()
    assert "ann.lee@mapped.test" in first_row and "FirstName" in first_row and "OPTIN_TIME" not in first_row
    assert "opted in" in first_row
    assert column("MEMBER_RATING").get_by_label("Type").input_value() == "number"  # the form kept the choices
    shot(page, "20-import-map-preview-desktop", full_page=False)
    page_fits(page, 1360)

    dialog.get_by_role("button", name="Continue to the dry run").click()
    dialog.get_by_text("Dry run: what importing would do").wait_for()
    summary = dialog.locator(".counts-list").inner_text()
    assert re.search(r"Created\s+3", summary) and re.search(r"Rejected\s+1", summary), summary
    rejects = dialog.locator("table.rejects").inner_text()
    assert "5" in rejects and "Email Address" in rejects and "there is no @" in rejects
    assert "MEMBER_RATING=attribute:Rating:number" in dialog.locator('[data-testid="mapping-summary"]').inner_text()
    shot(page, "21-import-map-dry-run-desktop", full_page=False)
    dialog.get_by_role("button", name="Import 4 rows").click()
    dialog.locator('#job-progress[data-state="completed"]').wait_for()

    page.goto("/?q=mapped.test&field=domain")
    rows = page.locator("tbody tr")
    assert page.locator("td.email a").all_inner_texts() == [
        "ann.lee@mapped.test",
        "bob.stone@mapped.test",
        "carla.diaz@mapped.test",
    ]
    bob = rows.filter(has_text="bob.stone@mapped.test").inner_text()
    assert "Bob" in bob and "Stone, Jr." in bob and "Rating" in bob
    page.goto("/?q=Rating+%3D+5&field=attribute")
    assert "carla.diaz@mapped.test" in page.locator("td.email a").all_inner_texts()

    # At phone width the step fits the screen, and the same columns open with the mapping just used.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/import")
    page.get_by_label("CSV or JSON file").set_input_files(str(file))
    page.get_by_role("button", name="Upload and check").click()
    page.locator('[data-testid="saved-mapping"]').wait_for()
    assert page.locator('li.map-column[data-column="Newsletter"]').get_by_label("Goes to").input_value() == "topic:news"
    page_fits(page, 390)
    shot(page, "22-import-map-phone")
    page.get_by_role("button", name="Continue to the dry run").click()
    page.get_by_text("Dry run: what importing would do").wait_for()
    assert re.search(r"Unchanged\s+3", page.locator(".counts-list").inner_text())  # the same rows again
    page_fits(page, 390)
    shot(page, "23-import-map-dry-run-phone")


def test_map_columns_without_javascript(browser: Any, console_server: RunningServer, tmp_path: Path) -> None:
    page = tab_without_javascript(browser, console_server, viewport={"width": 1280, "height": 900})
    page.goto("/import")
    page.get_by_role("link", name="download a template CSV").wait_for()
    page.get_by_label("CSV or JSON file").set_input_files(
        files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": b"email,name\nann@nojs-map.test,Ann\n"}]
    )
    page.get_by_role("button", name="Upload and check").click()
    page.wait_for_url("**/import/map?**")
    column = page.locator('li.map-column[data-column="name"]')
    column.get_by_label("Attribute name").fill("Name")
    page.get_by_role("button", name="Preview").click()
    page.locator('[data-testid="mapping-preview"]').get_by_text("ann@nojs-map.test").wait_for()
    page.get_by_role("button", name="Continue to the dry run").click()
    page.wait_for_url("**/import/preview?**")
    page.get_by_role("button", name="Import 1 row").click()
    page.wait_for_url("**/import/jobs/**")
    page.locator('#job-progress[data-state="completed"]').wait_for(timeout=15_000)  # meta refresh polls
    page.goto("/?q=nojs-map.test&field=domain")
    assert "Ann" in page.locator("tbody tr").first.inner_text()
    page.context.close()
