"""The console on a phone, the view after an htmx search, and what needs the script, in a real browser.

Every page is walked at 360 and 390 px wide: the page itself never scrolls sideways (a wide table scrolls in its
own box) and no visible element sticks out of the viewport. The same walk fails on any Content-Security-Policy
violation the browser reports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.server import RunningServer

from .conftest import log_in, shot, tab_without_javascript

# The document's width, and each visible element whose box leaves [0, width]. An element inside a box that
# clips or scrolls sideways (a table's wrapper, a code block) is that box's business: the box itself is checked.
OUTSIDE_VIEWPORT = """(width) => {
  const clipped = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      if (["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(p).overflowX)) return true;
    }
    return false;
  };
  const outside = [];
  for (const el of document.querySelectorAll("body *")) {
    const style = getComputedStyle(el);
    if (style.display === "none" || style.visibility === "hidden") continue;
    const box = el.getBoundingClientRect();
    if (!box.width || !box.height || clipped(el)) continue;
    if (box.left < -0.5 || box.right > width + 0.5) {
      const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className ? "." + el.className : "");
      outside.push(name + " " + Math.round(box.left) + ".." + Math.round(box.right));
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, outside: outside};
}"""

PHONE_DOMAIN = "phone-layout.example-company.test"
LONG_TOPIC = "newsletter-monthly-digest-for-everyone"


def csp_violations(tab: Any) -> list[str]:
    """Console messages about the Content-Security-Policy, collected from now on."""
    found: list[str] = []
    tab.on("console", lambda m: found.append(m.text) if "Content Security Policy" in m.text else None)
    return found


def assert_fits(tab: Any, width: int, what: str) -> None:
    result = tab.evaluate(OUTSIDE_VIEWPORT, width)
    assert result["scrollWidth"] <= width and not result["outside"], (what, result)


def _seed(ses: Any) -> None:
    ses.update_contact_list(
        ContactListName="contacts",
        Topics=[
            {
                "TopicName": LONG_TOPIC,
                "DisplayName": "The monthly newsletter digest, for everyone who signed up",
                "Description": "Once a month: what changed, what is coming, and a long description to wrap.",
                "DefaultSubscriptionStatus": "OPT_IN",
            },
            {"TopicName": "product-updates", "DisplayName": "Product updates", "DefaultSubscriptionStatus": "OPT_OUT"},
        ],
    )
    for i in range(6):
        ses.create_contact(
            ContactListName="contacts",
            EmailAddress=f"someone.with.a.rather.long.name{i}@{PHONE_DOMAIN}",
            UnsubscribeAll=i == 0,
            TopicPreferences=[{"TopicName": "product-updates", "SubscriptionStatus": "OPT_IN"}] if i % 2 else [],
            AttributesData=json.dumps({"Name": f"Person {i}", "Company": "A Company With A Long Name Incorporated"}),
        )


@pytest.fixture(scope="module")
def phone_urls(browser: Any, console_server: RunningServer) -> Iterator[dict[str, str]]:
    """Contacts, topics, a finished import and a finished bulk job to look at: name -> URL."""
    ses = console_server.sesv2()
    _seed(ses)
    tab = tab_without_javascript(browser, console_server, timeout=15_000)
    tab.goto("/import")
    rows = "".join(f"imported{i}@{PHONE_DOMAIN}\n" for i in range(3))
    tab.get_by_label("CSV or JSON file").set_input_files(
        files=[{"name": "phone.csv", "mimeType": "text/csv", "buffer": f"emailAddress\n{rows}".encode()}]
    )
    tab.get_by_role("button", name="Upload and check").click()
    tab.get_by_role("button", name="Import 3 rows").click()
    tab.wait_for_url("**/import/jobs/**")
    tab.locator('#job-progress[data-state="completed"]').wait_for()  # its page refreshes itself
    import_job = tab.url
    tab.goto("/?q=imported&field=email")
    tab.get_by_label(re.compile(r"All [\d,]* ?matching")).check()
    tab.get_by_role("button", name="Unsubscribe", exact=True).click()
    tab.get_by_role("button", name=re.compile(r"Unsubscribe from all \d+")).click()
    tab.wait_for_url("**/contacts/bulk/jobs/**")
    tab.locator('#job-progress[data-state="completed"]').wait_for()
    bulk_job = tab.url
    tab.context.close()
    email = f"someone.with.a.rather.long.name1%40{PHONE_DOMAIN}"
    yield {
        "contacts": "/",
        "contacts-search": f"/?q={PHONE_DOMAIN}&field=domain&size=5",
        "contact-new": "/contacts/new",
        "contact-edit": f"/contacts/edit?email={email}",
        "contact-delete": f"/contacts/delete?email={email}",
        "topics": "/topics",
        "topic-edit": f"/topics?edit={LONG_TOPIC}",
        "topic-delete": f"/topics/delete?name={LONG_TOPIC}",
        "import": "/import",
        "import-job": import_job,
        "bulk-job": bulk_job,
        "aws": "/aws",
        "suppression": "/suppression",
        "account": "/account",
        "overview": "/overview",
        "count": f"/count?q={PHONE_DOMAIN}&field=domain",
        "not-found": "/no-such-page",
    }
    ses.update_contact_list(ContactListName="contacts", Topics=[])
    seeded = [f"someone.with.a.rather.long.name{i}@{PHONE_DOMAIN}" for i in range(6)]
    for email in [*seeded, *(f"imported{i}@{PHONE_DOMAIN}" for i in range(3))]:
        ses.delete_contact(ContactListName="contacts", EmailAddress=email)


@pytest.mark.parametrize(("width", "height"), [(360, 740), (390, 844)])
def test_every_page_fits_a_phone(
    browser: Any, console_server: RunningServer, phone_urls: dict[str, str], width: int, height: int
) -> None:
    context = browser.new_context(base_url=console_server.url, viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    violations = csp_violations(tab)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto("/login")
    assert_fits(tab, width, "login")
    shot(tab, f"phone-{width}-login")
    log_in(tab)
    for name, url in phone_urls.items():
        tab.goto(url)
        tab.wait_for_load_state("networkidle")  # the overview and counts arrive after the page
        assert_fits(tab, width, name)
        shot(tab, f"phone-{width}-{name}")
    # a bulk confirmation: check two rows, press Delete (the confirmation is not accepted)
    tab.goto(phone_urls["contacts-search"])
    for box in tab.locator("input[name=email]").all()[:2]:
        box.check()
    tab.get_by_role("button", name="Delete", exact=True).click()
    expect(tab.locator("h1")).to_contain_text("will change")
    assert_fits(tab, width, "bulk-confirm")
    shot(tab, f"phone-{width}-bulk-confirm")
    # the dialogs over the contacts page, and the import dialog's second step
    for link, dialog_name in (("AWS API", "aws-dialog"), ("Import Contacts", "import-dialog")):
        tab.goto("/")
        tab.locator("#main").get_by_role("link", name=link).click()
        dialog = tab.locator("dialog#dialog")
        dialog.wait_for(state="visible")
        assert_fits(tab, width, dialog_name)
        shot(tab, f"phone-{width}-{dialog_name}", full_page=False)
    dialog.get_by_label("CSV or JSON file").set_input_files(
        files=[{"name": "p.csv", "mimeType": "text/csv", "buffer": f"emailAddress\nnew@{PHONE_DOMAIN}\n".encode()}]
    )
    dialog.get_by_role("button", name="Upload and check").click()
    dialog.get_by_text("Dry run: what importing would do").wait_for()
    assert_fits(tab, width, "import-preview-dialog")
    shot(tab, f"phone-{width}-import-preview-dialog", full_page=False)
    context.close()
    assert not violations, violations
    assert not errors, errors


def _emails_in(download: Any, fmt: str) -> list[str]:
    text = Path(download.path()).read_text()
    if fmt == "json":
        return sorted(json.loads(line)["emailAddress"] for line in text.splitlines() if line.strip())
    return sorted(line.split(",")[0] for line in text.splitlines()[1:] if line.strip())


def _export(tab: Any, fmt: str) -> list[str]:
    with tab.expect_download() as info:
        tab.locator("#main").get_by_role("link", name=f"Export {fmt.upper()}").click()
    return _emails_in(info.value, fmt)


EXPORT_MATCHING = ["xpmatch1@view-state.test", "xpmatch2@view-state.test"]


@pytest.fixture
def view_state_contacts(ses: Any) -> Iterator[None]:
    for email in [*EXPORT_MATCHING, "other@view-state.test"]:
        ses.create_contact(ContactListName="contacts", EmailAddress=email)
    yield
    for email in [*EXPORT_MATCHING, "other@view-state.test"]:
        ses.delete_contact(ContactListName="contacts", EmailAddress=email)


def test_export_clear_and_bulk_follow_a_search_typed_on_the_page(page: Any, view_state_contacts: None) -> None:
    violations = csp_violations(page)
    page.goto("/")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    page.get_by_label("Search", exact=True).fill("xpmatch")
    page.keyboard.press("Enter")
    page.wait_for_url("**/?q=xpmatch")
    expect(page.locator("td.email")).to_have_count(2)
    assert page.evaluate("window.__sameDocument") is True  # htmx swapped the results in place
    assert _export(page, "csv") == EXPORT_MATCHING
    assert _export(page, "json") == EXPORT_MATCHING
    # the sort link and the bulk bar carry the same view
    assert "q=xpmatch" in (page.get_by_role("link", name="Last updated").get_attribute("href") or "")
    page.get_by_label(re.compile(r"All 2 matching")).check()
    page.get_by_role("button", name="Unsubscribe", exact=True).click()
    assert "2 contacts will change" in page.locator("h1").inner_text()
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url("**/?q=xpmatch")
    # pages of one, turned by htmx: the next page keeps the search, and so do its exports
    page.goto("/?q=xpmatch&size=1")
    page.get_by_role("link", name="Next page »").click()
    page.wait_for_url("**page=**")
    expect(page.locator("td.email")).to_have_text([EXPORT_MATCHING[1]])
    assert _export(page, "csv") == EXPORT_MATCHING
    # a second search typed over the first: the exports follow again; Clear clears
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Search", exact=True).fill("xpmatch2")
    page.keyboard.press("Enter")
    page.wait_for_url("**/?q=xpmatch2&size=1")
    expect(page.locator("td.email")).to_have_count(1)
    assert page.evaluate("window.__sameDocument") is True
    assert _export(page, "csv") == EXPORT_MATCHING[1:]
    page.get_by_test_id("clear").click()
    page.wait_for_url(re.compile(r"/$"))
    expect(page.get_by_label("Search", exact=True)).to_have_value("")
    expect(page.get_by_test_id("clear")).to_have_count(0)
    assert "xpmatch" not in (page.locator("#main").get_by_role("link", name="Export CSV").get_attribute("href") or "")
    assert not violations, violations


def test_export_and_clear_follow_the_search_without_javascript(
    browser: Any, console_server: RunningServer, view_state_contacts: None
) -> None:
    tab = tab_without_javascript(browser, console_server)
    tab.get_by_label("Search", exact=True).fill("xpmatch")
    tab.get_by_role("button", name="Search", exact=True).click()
    tab.wait_for_url("**/?q=xpmatch**")
    assert _export(tab, "csv") == EXPORT_MATCHING
    assert _export(tab, "json") == EXPORT_MATCHING
    tab.get_by_test_id("clear").click()
    tab.wait_for_url(re.compile(r"/$"))
    expect(tab.get_by_label("Search", exact=True)).to_have_value("")
    # what needs the script is not offered without it
    tab.goto("/aws")
    assert tab.locator("[data-copy]").count() >= 3
    expect(tab.locator("[data-copy]:visible")).to_have_count(0)
    tab.context.close()


def test_copy_buttons_show_with_javascript(page: Any) -> None:
    page.goto("/aws")
    assert page.locator("[data-copy]").count() >= 3
    expect(page.locator("[data-copy]").first).to_be_visible()


RECORD_UPLOAD_TEXT = """() => {
  window.__uploadTexts = [];
  new MutationObserver(() => {
    const el = document.querySelector("[data-upload-text]");
    if (el && !el.closest("[hidden]")) window.__uploadTexts.push(el.textContent);
  }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def test_upload_shows_bytes_sent_of_the_total(page: Any, tmp_path: Path) -> None:
    # few rows (the ses backend checks each one against SES at its pace), each with a long attribute: ~300 KB
    note = '"{""Note"": ""' + "x" * 1500 + '""}"'
    rows = "".join(f"uploader{i:03d}@upload-progress.test,false,{note}\n" for i in range(200))
    file = tmp_path / "progress.csv"
    file.write_text("emailAddress,unsubscribeAll,attributesData\n" + rows)
    page.goto("/")
    page.get_by_role("link", name="Import Contacts").click()
    dialog = page.locator("dialog#dialog")
    dialog.wait_for(state="visible")
    expect(dialog.locator("[data-upload-progress]")).to_be_hidden()
    page.evaluate(RECORD_UPLOAD_TEXT)
    dialog.get_by_label("CSV or JSON file").set_input_files(str(file))
    dialog.get_by_role("button", name="Upload and check").click()
    dialog.get_by_text("Dry run: what importing would do").wait_for()
    texts: list[str] = page.evaluate("window.__uploadTexts")
    done = [m for t in texts if (m := re.match(r"Uploaded ([\d,.]+) (KiB|MiB) of ([\d,.]+) (KiB|MiB) \(100%\)", t))]
    assert done, texts
    sent, unit = float(done[-1].group(3).replace(",", "")), done[-1].group(4)
    assert sent * (1024 if unit == "KiB" else 1048576) >= file.stat().st_size  # the whole body, file and form
