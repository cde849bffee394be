"""The console in a real browser against a real ``sescontacts serve``.

Each test works on its own addresses (its own domain), so tests share one server and stay order-free.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from sescontacts.console.app import console_routes
from sescontacts.console.gate import is_public
from tests.support.server import RunningServer

from .conftest import ARTIFACTS, log_in, shot, tab_without_javascript

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BIN = Path(sys.executable).parent


def table_emails(page: Any) -> list[str]:
    return page.locator("td.email a").all_inner_texts()


def search(page: Any, text: str, field: str = "email") -> None:
    """Type a search the way a user does; htmx swaps the results and pushes the view's URL."""
    page.get_by_label("In", exact=True).select_option(field)
    page.get_by_label("Search", exact=True).fill(text)
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(lambda url: parse_qs(urlsplit(url).query).get("q") == [text])
    expect(page.locator("#results.htmx-settling, #results.htmx-swapping")).to_have_count(0)


def test_add_edit_search_filter_paginate_and_bulk_delete(page: Any, ses: Any) -> None:
    for i in range(12):
        ses.create_contact(
            ContactListName="contacts",
            EmailAddress=f"p{i:02d}@pages.test",
            UnsubscribeAll=i % 4 == 0,
            AttributesData=json.dumps({"Plan": "pro" if i % 3 == 0 else "free", "Seq": str(i)}),
        )
    page.goto("/")
    shot(page, "01-contacts")

    # add, with attribute rows
    page.get_by_role("link", name="Add contact").click()
    page.get_by_label("Email address").fill("new.person@flow.test")
    page.get_by_label("Attribute 1 key").fill("Name")
    page.get_by_label("Attribute 1 value").fill("New Person")
    shot(page, "02-add-contact")
    page.get_by_role("button", name="Add contact").click()
    page.wait_for_url("**/")
    assert "Added new.person@flow.test" in page.locator(".flash").inner_text()

    # an inline error at the field, then edit as raw JSON
    page.goto("/contacts/new")
    page.get_by_label("Email address").fill("no-at-sign")
    page.get_by_role("button", name="Add contact").click()
    assert "there is no @" in page.locator("#email-error").inner_text()
    shot(page, "03-add-contact-error")
    page.goto("/contacts/edit?email=new.person%40flow.test")
    page.get_by_label("Raw JSON").check()
    page.get_by_label("AttributesData (a JSON object)").fill('{"Name": "Renamed", "Tier": 2}')
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url("**/")
    search(page, "flow.test", "domain")
    assert table_emails(page) == ["new.person@flow.test"]
    assert "Renamed" in page.locator("td.attrs").inner_text()

    # search by attribute and filter by status; the URL reflects the view
    page.goto("/")
    search(page, "Plan = pro", "attribute")
    assert set(table_emails(page)) == {"p00@pages.test", "p03@pages.test", "p06@pages.test", "p09@pages.test"}
    assert "field=attribute" in page.url and "Plan" in page.url
    page.get_by_label("Status").select_option("OPT_OUT")
    expect(page).to_have_url(re.compile("status=OPT_OUT"))
    expect(page.locator("td.email")).to_have_count(1)
    assert table_emails(page) == ["p00@pages.test"]  # p00 is the only "pro" unsubscribed from all
    bookmarked = page.url
    page.goto(bookmarked)
    assert table_emails(page) == ["p00@pages.test"]

    # keyset pages of 5
    page.goto("/?q=pages.test&field=domain&size=5")
    seen = table_emails(page)
    while page.get_by_role("link", name="Next page »").count():
        page.get_by_role("link", name="Next page »").click()
        expect(page.get_by_text(seen[-1], exact=True)).to_have_count(0)
        seen += table_emails(page)
    assert seen == [f"p{i:02d}@pages.test" for i in range(12)]
    assert "page=" in page.url

    # select two rows, bulk delete with a confirmation that says how many
    page.goto("/?q=pages.test&field=domain")
    page.get_by_label("Select p01@pages.test").check()
    page.get_by_label("Select p02@pages.test").check()
    page.get_by_role("button", name="Delete", exact=True).click()
    assert "2 contacts will change" in page.locator("h1").inner_text()
    shot(page, "04-bulk-confirm")
    page.get_by_role("button", name="Delete 2").click()
    page.wait_for_url("**/?**")
    assert "2 contacts deleted" in page.locator(".flash").inner_text()
    assert "p01@pages.test" not in table_emails(page) and len(table_emails(page)) == 10
    # "all N matching" unsubscribes exactly the filter, as a job with its own page
    page.goto("/?q=Plan%3Dfree&field=attribute")
    page.get_by_label(re.compile(r"All [\d,]* ?matching")).check()
    page.get_by_role("button", name="Unsubscribe", exact=True).click()
    assert "will change" in page.locator("h1").inner_text()
    page.get_by_role("button", name=re.compile(r"Unsubscribe from all \d+")).click()
    page.wait_for_url("**/contacts/bulk/jobs/**")
    page.locator('#job-progress[data-state="completed"]').wait_for()
    page.get_by_role("link", name="Back to the contacts").click()
    page.wait_for_url("**/?**")
    assert "Plan" in page.url and page.locator(".badge.on").count() == 0


def _import_through_the_api(ses: Any, server: RunningServer, name: str, rows: int, domain: str) -> str:
    """Start an SES import job of ``rows`` new contacts at ``domain`` (the local backend reads s3:// from its data
    dir); returns its id without waiting."""
    folder = server.data_dir / "s3" / "bulk-test"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("emailAddress\n" + "".join(f"c{i:06d}@{domain}\n" for i in range(rows)))
    return str(
        ses.create_import_job(
            ImportDestination={
                "ContactListDestination": {"ContactListName": "contacts", "ContactListImportAction": "PUT"}
            },
            ImportDataSource={"S3Url": f"s3://bulk-test/{name}", "DataFormat": "CSV"},
        )["JobId"]
    )


def _wait_for_import(ses: Any, job_id: str) -> None:
    for _ in range(1200):
        if ses.get_import_job(JobId=job_id)["JobStatus"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return
        time.sleep(0.05)  # polling the job's status, as an SES client does
    raise AssertionError("the import job did not finish")


def _all_matching(page: Any, view: str, action: str, label: str) -> None:
    """Select "All N matching" on a view, press the action, confirm: the job's page opens."""
    page.goto(view)
    page.get_by_label(re.compile(r"All [\d,]* ?matching")).check()
    page.get_by_role("button", name=action, exact=True).click()
    page.get_by_role("button", name=re.compile(rf"{label} [\d,]+")).click()
    page.wait_for_url("**/contacts/bulk/jobs/**")


def test_bulk_action_on_all_matching_shows_live_progress(page: Any, ses: Any, console_server: RunningServer) -> None:
    """20,000 matching contacts unsubscribed as a job while an import keeps the worker busy: the job's page shows
    it queued, then follows it to the end by itself (htmx, no reload); the contacts page links to it meanwhile.

    The busy import is two million rows, far more than the steps below take, and it is cancelled from a second
    tab once they are done: the bulk job stays queued until the test lets it run, however fast imports get."""
    _wait_for_import(ses, _import_through_the_api(ses, console_server, "progress.csv", 20_000, "progress.test"))
    busy = _import_through_the_api(ses, console_server, "filler.csv", 2_000_000, "filler.test")
    try:
        _all_matching(page, "/?q=progress.test&field=domain", "Unsubscribe", "Unsubscribe from all")
        progress = page.locator("#job-progress")
        assert progress.get_attribute("data-state") == "queued"  # behind the import
        expect(progress).to_contain_text("progress.test")
        shot(page, "08-bulk-job-waiting", full_page=False)
        job_url = page.url
        page.goto("/")
        banner = page.locator(".alert.info", has_text="Unsubscribing")
        expect(banner).to_contain_text("progress.test")
        banner.get_by_role("link", name="Show progress").click()
        page.wait_for_url(job_url)
        assert progress.get_attribute("data-state") == "queued"
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        other_tab = page.context.new_page()
        other_tab.goto(f"/import/jobs/{busy}")
        other_tab.get_by_role("button", name="Cancel import").click()
        other_tab.locator('#job-progress[data-state="cancelled"]').wait_for(timeout=60_000)
        other_tab.close()
        page.locator('#job-progress[data-state="completed"]').wait_for(timeout=60_000)
        assert page.evaluate("window.__sameDocument") is True  # swapped in place by htmx polling
        assert page.locator('[data-count="changed"]').inner_text() == "20,000"
        assert page.locator('[data-testid="rows-done"]').inner_text() == "20,000"
        shot(page, "09-bulk-job-completed", full_page=False)
        page.get_by_role("link", name="Back to the contacts").click()
        page.wait_for_url("**/?q=progress.test**")
        assert page.locator(".badge.on").count() == 0
    finally:
        # leave the shared list as it was, even after a failure: delete both domains, the same way
        _wait_for_import(ses, busy)
        for domain in ("progress.test", "filler.test"):
            _all_matching(page, f"/?q={domain}&field=domain", "Delete", "Delete")
            page.locator('#job-progress[data-state="completed"]').wait_for(timeout=60_000)
    page.goto("/?q=filler.test&field=domain")
    assert table_emails(page) == []


def _run_import(page: Any, file: Path, action: str) -> str:
    page.goto("/")
    page.get_by_role("link", name="Import Contacts").click()
    dialog = page.locator("dialog#dialog")
    dialog.wait_for(state="visible")
    dialog.get_by_label("CSV or JSON file").set_input_files(str(file))
    dialog.get_by_label(re.compile("Add contacts" if action == "add" else "Delete contacts")).check()
    dialog.get_by_role("button", name="Upload and check").click()
    dialog.get_by_text("Dry run: what importing would do").wait_for()
    summary = dialog.locator(".counts-list").inner_text()
    shot(page, f"05-import-preview-{file.suffix[1:]}-{action}", full_page=False)
    dialog.get_by_role("button", name=re.compile(r"^(Import|Delete) \d+ rows?$")).click()
    dialog.locator('#job-progress[data-state="completed"]').wait_for()
    shot(page, f"06-import-done-{file.suffix[1:]}-{action}", full_page=False)
    # the job page survives a reload: its URL is in the bar
    assert "/import/jobs/" in page.url
    page.reload()
    assert page.locator('#job-progress[data-state="completed"]').count() == 1
    return summary


def test_import_page_examples_csv_and_json_add_then_delete(page: Any) -> None:
    summary = _run_import(page, FIXTURES / "page-example.csv", "add")
    assert re.search(r"Created\s+2", summary), summary
    page.goto("/?q=example.com&field=domain")
    assert {"john.doe@example.com", "jane.smith@example.com"} <= set(table_emails(page))
    row = page.locator("tr", has=page.locator("a", has_text="jane.smith@example.com"))
    assert "Unsubscribed from all" in row.inner_text()

    summary = _run_import(page, FIXTURES / "page-example.json", "add")
    page.goto("/?q=john.deo&field=email")
    assert table_emails(page) == ["john.deo@example.com"]

    _run_import(page, FIXTURES / "page-example.csv", "delete")
    _run_import(page, FIXTURES / "page-example.json", "delete")
    page.goto("/?q=example.com&field=domain")
    remaining = set(table_emails(page))
    assert not remaining & {"john.doe@example.com", "jane.smith@example.com", "john.deo@example.com"}
    page.goto("/import")
    assert page.locator("table.history tbody tr").count() >= 4
    shot(page, "07-import-history")


def test_upload_over_the_cap_gets_a_clear_message(page: Any, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    line = "emailAddress,unsubscribeAll,attributesData\n" + "someone@big.test,false,\n" * 80_000
    big.write_text(line)  # ~2 MB, the test server caps uploads at 1 MiB
    page.goto("/import")
    page.get_by_label("CSV or JSON file").set_input_files(str(big))
    page.get_by_role("button", name="Upload and check").click()
    error = page.locator("#upload-error")
    error.wait_for()
    assert "larger than the 1.0 MiB limit" in error.inner_text()
    shot(page, "08-upload-too-large", full_page=False)


def paste_into_a_shell(server: RunningServer, credentials: str, command: str) -> dict[str, Any]:
    """What a user gets who pastes the page's credentials line and ``command`` into bash: the aws CLI's JSON
    (``{}`` when it prints nothing), with no AWS profile or keys of their own to help."""
    env = {k: v for k, v in server.env.items() if not k.startswith("AWS_")}
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '')}", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null"
    )
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_PAGER="")
    script = f"set -e\n{credentials}\n{command} --output json"
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (command, done.stderr)
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_aws_dialog_commands_work_in_the_aws_cli(page: Any, console_server: RunningServer, ses: Any) -> None:
    page.goto("/")
    page.locator("#main").get_by_role("link", name="AWS API").click()
    dialog = page.locator("dialog#dialog")
    dialog.wait_for(state="visible")
    shot(page, "09-aws-dialog", full_page=False)
    assert dialog.get_by_test_id("region").inner_text() == "us-east-1"
    assert dialog.get_by_test_id("list-name").inner_text() == "contacts"
    assert dialog.get_by_test_id("endpoint").inner_text() == console_server.url
    html = dialog.inner_html()
    assert "test-secret-key" not in html  # the secret never reaches the page
    credentials = dialog.get_by_test_id("credentials-command").inner_text()
    commands = [dialog.locator(f'[data-command="{i}"]').inner_text() for i in range(5)]
    copy_values = dialog.locator(".command [data-copy]").evaluate_all("els => els.map(e => e.dataset.copy)")
    assert copy_values[:5] == commands  # what the copy buttons copy is what is shown
    list_cmd, get_cmd, create_cmd, update_cmd, delete_cmd = commands

    def aws(command: str) -> dict[str, Any]:
        return paste_into_a_shell(console_server, credentials, command)

    aws(create_cmd)
    got = aws(get_cmd)
    assert got["EmailAddress"] == "jane.doe@example.com" and json.loads(got["AttributesData"])["Name"] == "Jane"
    aws(update_cmd)
    listed = aws(list_cmd)
    assert "jane.doe@example.com" in [c["EmailAddress"] for c in listed["Contacts"]]
    aws(delete_cmd)
    # the commands are shell-safe as shown: each argument survives shlex
    assert shlex.split(create_cmd.replace("\\\n", " "))[:3] == ["aws", "sesv2", "create-contact"]

    # An unsubscribed contact with attributes and a topic choice, chosen from its edit page: the pasted update
    # command keeps it as it is (SES's UpdateContact replaces the whole contact).
    email, attributes = "o'neil@aws.test", '{"Name": "O\'Neil", "Plan": "pro"}'
    ses.update_contact_list(
        ContactListName="contacts",
        Topics=[{"TopicName": "aws-news", "DisplayName": "News", "DefaultSubscriptionStatus": "OPT_IN"}],
    )
    preferences = [{"TopicName": "aws-news", "SubscriptionStatus": "OPT_OUT"}]
    ses.create_contact(
        ContactListName="contacts",
        EmailAddress=email,
        UnsubscribeAll=True,
        TopicPreferences=preferences,
        AttributesData=attributes,
    )
    try:
        page.goto("/contacts/edit?email=o%27neil%40aws.test")
        page.get_by_role("link", name="AWS CLI commands for this contact").click()
        page.wait_for_url("**/aws?email=**")
        assert "filled in from o'neil@aws.test" in page.get_by_test_id("update-note").inner_text()
        shot(page, "09b-aws-page-for-a-contact")
        aws(page.locator('[data-command="3"]').inner_text())
        after = ses.get_contact(ContactListName="contacts", EmailAddress=email)
        assert after["UnsubscribeAll"] is True and after["TopicPreferences"] == preferences
        assert json.loads(after["AttributesData"]) == json.loads(attributes)
    finally:
        ses.delete_contact(ContactListName="contacts", EmailAddress=email)


def test_aws_page_suppression_commands_work_in_the_aws_cli(page: Any, console_server: RunningServer) -> None:
    """Issue 12: the suppression list's commands on the AWS API page, pasted as shown for a chosen address,
    put it on the account's suppression list, find it, list it and take it off again."""
    email = "bounced@suppression.test"
    page.goto("/aws")
    page.get_by_label("Email address in the examples").fill(email)
    page.get_by_role("button", name="Update commands").click()
    page.wait_for_url("**/aws?email=**")
    intro = page.get_by_test_id("suppression-intro")
    intro.scroll_into_view_if_needed()
    shot(page, "09c-aws-suppression-commands", full_page=False)
    credentials = page.get_by_test_id("credentials-command").inner_text()
    shown = [page.locator(f'[data-suppression-command="{i}"]').inner_text() for i in range(5)]
    copied = page.locator(".command [data-copy]").evaluate_all("els => els.map(e => e.dataset.copy)")
    assert copied[5:10] == shown  # what the copy buttons copy is what is shown
    list_cmd, get_cmd, put_cmd, delete_cmd, account_cmd = shown

    def aws(command: str) -> dict[str, Any]:
        return paste_into_a_shell(console_server, credentials, command)

    assert aws(put_cmd) == {}
    try:
        entry = aws(get_cmd)["SuppressedDestination"]
        assert (entry["EmailAddress"], entry["Reason"]) == (email, "BOUNCE")
        listed = aws(list_cmd)["SuppressedDestinationSummaries"]
        assert email in [e["EmailAddress"] for e in listed]
        assert aws(account_cmd)["SuppressionAttributes"]["SuppressedReasons"] == ["BOUNCE", "COMPLAINT"]
    finally:
        assert aws(delete_cmd) == {}
    assert email not in [e["EmailAddress"] for e in aws(list_cmd)["SuppressedDestinationSummaries"]]


XSS = [
    "<script>window.__xss = 1</script>",
    '"onmouseover="window.__xss=2" x="',
    '<img src=x onerror="window.__xss=3">',
    "javascript:window.__xss=4",
]


def test_xss_payloads_stay_inert(page: Any, ses: Any) -> None:
    ses.update_contact_list(
        ContactListName="contacts",
        Topics=[
            {
                "TopicName": "xss-topic",
                "DisplayName": XSS[2],
                "Description": XSS[0],
                "DefaultSubscriptionStatus": "OPT_IN",
            }
        ],
    )
    ses.create_contact(
        ContactListName="contacts",
        EmailAddress="o'neil+xss@xss.test",
        AttributesData=json.dumps({XSS[0]: XSS[1], XSS[2]: XSS[3], "k": XSS[2]}),
    )
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for url in (
        "/?q=xss.test&field=domain",
        "/contacts/edit?email=o%27neil%2Bxss%40xss.test",
        "/topics",
        "/topics?edit=xss-topic",
        "/?q=" + XSS[2],
    ):
        page.goto(url)
        page.locator("td.email a, h1").first.hover()
        page.locator("td.attrs, body").first.hover()
        assert page.evaluate("window.__xss") is None, url
        assert page.locator("script:not([src])").count() == 0
        assert page.locator("img[src=x]").count() == 0
    page.goto("/?q=xss.test&field=domain")
    assert XSS[0] in page.locator("td.attrs").inner_text()  # shown as text
    shot(page, "10-xss-inert")
    assert not dialogs
    ses.update_contact_list(ContactListName="contacts", Topics=[])
    ses.delete_contact(ContactListName="contacts", EmailAddress="o'neil+xss@xss.test")


def test_every_route_refuses_anonymous_requests(console_server: RunningServer) -> None:
    """Enumerated from the console's routing table, so a page added later is covered without editing this."""
    opener = urllib.request.build_opener(_NoRedirect())
    checked = 0
    for route in console_routes():
        methods = sorted(getattr(route, "methods", None) or {"GET"})
        path = re.sub(r"\{[^}]+\}", "anything", getattr(route, "path", ""))
        if getattr(route, "name", "") == "static":
            path += "/console.css"
        for method in methods:
            if method == "HEAD":
                continue
            request = urllib.request.Request(
                console_server.url + path, method=method, data=b"" if method == "POST" else None
            )
            try:
                response = opener.open(request, timeout=10)
                status, location = response.status, response.headers.get("location", "")
            except urllib.error.HTTPError as exc:
                status, location = exc.code, exc.headers.get("location", "")
            if is_public(path):
                assert status < 400 or method == "POST", (method, path, status)
                continue
            checked += 1
            if method == "GET":
                assert status == 303 and location.startswith("/login?next="), (method, path, status)
            else:
                assert status in (401, 403), (method, path, status)
    assert checked >= 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_post_without_csrf_token_is_refused(page: Any) -> None:
    response = page.request.post("/contacts/new", form={"email": "csrf@csrf.test"}, max_redirects=0)
    assert response.status == 403
    response = page.request.post(
        "/contacts/bulk", form={"action": "delete", "all": "1", "confirm": "1"}, max_redirects=0
    )
    assert response.status == 403
    page.goto("/?q=csrf.test&field=domain")
    assert table_emails(page) == []


def test_topics_page_and_login_screenshots(page: Any, browser: Any, console_server: RunningServer) -> None:
    page.goto("/topics")
    page.get_by_label("Name", exact=True).fill("newsletter")
    page.get_by_label("Display name").fill("Monthly newsletter")
    page.get_by_role("button", name="Add topic").click()
    page.wait_for_url("**/topics")
    page.get_by_label("Name", exact=True).fill("bad name!")
    page.get_by_label("Display name").fill("Bad")
    page.get_by_role("button", name="Add topic").click()
    assert "alphanumeric" in page.locator("#name-error").inner_text()
    shot(page, "11-topics")
    page.goto("/")
    page.locator("#overview").wait_for()
    shot(page, "12-contacts-overview")
    page.goto("/contacts/edit?email=p00%40pages.test")
    shot(page, "13-edit-contact")
    context = browser.new_context(base_url=console_server.url, viewport={"width": 1280, "height": 800})
    anonymous = context.new_page()
    anonymous.goto("/")
    shot(anonymous, "00-login", full_page=False)
    anonymous.get_by_label("User name").fill("admin")
    anonymous.get_by_label("Password").fill("wrong password")
    anonymous.get_by_role("button", name="Log in").click()
    assert "do not match" in anonymous.locator(".alert").inner_text()
    log_in(anonymous)
    context.close()
    page.goto("/?q=newsletter")
    page.locator('form[action="/logout"] button').click()
    page.wait_for_url("**/login")
    assert list(ARTIFACTS.glob("*.png"))
    # leave the shared list as other tests expect it
    page.close()


@pytest.fixture(autouse=True)
def _clean_topics(ses: Any) -> None:
    ses.update_contact_list(ContactListName="contacts", Topics=[])


def test_basic_flows_work_without_javascript(browser: Any, console_server: RunningServer) -> None:
    page = tab_without_javascript(browser, console_server, viewport={"width": 1280, "height": 900})
    page.get_by_role("link", name="Add contact").click()
    page.get_by_label("Email address").fill("nojs@nojs.test")
    page.get_by_role("button", name="Add contact").click()
    page.wait_for_url("**/")
    page.get_by_label("Search", exact=True).fill("nojs.test")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url("**/?q=nojs.test**")
    assert table_emails(page) == ["nojs@nojs.test"]
    # import through the plain pages (the dialog's steps have their own URLs)
    page.goto("/import")
    page.get_by_label("CSV or JSON file").set_input_files(
        files=[{"name": "nojs.csv", "mimeType": "text/csv", "buffer": b"emailAddress\nsecond@nojs.test\n"}]
    )
    page.get_by_role("button", name="Upload and check").click()
    page.wait_for_url("**/import/preview?**")
    page.get_by_role("button", name="Import 1 row", exact=True).click()
    page.wait_for_url("**/import/jobs/**")
    page.locator('#job-progress[data-state="completed"]').wait_for(timeout=15_000)  # meta refresh polls
    page.goto("/?q=nojs.test&field=domain")
    assert table_emails(page) == ["nojs@nojs.test", "second@nojs.test"]
    # bulk delete with the confirmation page
    page.get_by_label("Select nojs@nojs.test").check()
    page.get_by_label("Select second@nojs.test").check()
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("button", name="Delete 2").click()
    page.wait_for_url("**/?**")
    assert table_emails(page) == []
    # "all N matching" as a job: its page refreshes itself until the job is done
    page.goto("/contacts/new")
    page.get_by_label("Email address").fill("third@nojs.test")
    page.get_by_role("button", name="Add contact").click()
    _all_matching(page, "/?q=nojs.test&field=domain", "Delete", "Delete")
    page.locator('#job-progress[data-state="completed"]').wait_for(timeout=15_000)  # meta refresh polls
    page.goto("/?q=nojs.test&field=domain")
    assert table_emails(page) == []
    page.context.close()
