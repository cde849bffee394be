"""The console's deliverability parts that read the suppression list: the Suppression page (search, paging,
add, remove after a warning) and, on the contacts page, the "Suppressed" badge and the deliverability filter."""

from __future__ import annotations

import html
import re
from pathlib import Path

from sescontacts.events.parse import parse_text
from sescontacts.model import Contact
from sescontacts.suppression import SuppressionQuery

from .support.console import Console, TestClient, console_fixture, fast_kdf_fixture  # noqa: F401
from .test_console_contacts import job_page_when_done, worker_fixture  # noqa: F401


def rows(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'name="email" value="([^"]+)" aria-label="Select', page)]


def test_the_page_needs_a_login(console: Console) -> None:
    anonymous = TestClient(console.gate, base_url="http://testserver")
    response = anonymous.get("/suppression", follow_redirects=False)
    assert response.status_code in (302, 303) and "/login" in response.headers["location"]


def test_add_search_and_page_through_the_suppression_list(console: Console) -> None:
    console.login()
    for n in range(60):
        console.services.suppression.put_suppressed(f"user{n:02}@example.com", "BOUNCE" if n % 2 else "COMPLAINT")
    page = console.client.get("/suppression").text
    assert "60" in re.sub(r"\s+", " ", page) and len(rows(page)) == 50
    assert "Showing 1\u201350 of 60" in page
    next_url = html.unescape(re.search(r'rel="next" href="([^"]+)"', page).group(1))
    second = console.client.get(next_url).text
    assert rows(second) == [f"user{n}@example.com" for n in range(50, 60)] and "Showing 51\u201360 of 60" in second
    previous = html.unescape(re.search(r'rel="prev" href="([^"]+)"', second).group(1))
    assert rows(console.client.get(previous).text)[0] == "user00@example.com"
    found = console.client.get("/suppression", params={"q": "USER1", "reason": "COMPLAINT"}).text
    assert rows(found) == [f"user{n}@example.com" for n in range(10, 20, 2)]
    none = console.client.get("/suppression", params={"q": "nobody"}).text
    assert "No suppressed address matches this search." in none and "suppression-table" not in none
    bad = console.client.get("/suppression", params={"page": "forged"}).text
    assert "This page link is not valid" in bad


def test_suppressing_an_address_by_hand(console: Console) -> None:
    console.login()
    done = console.post("/suppression", {"email": "Ann@Example.com", "reason": "COMPLAINT"})
    assert done.status_code == 303
    assert "Added Ann@Example.com to the suppression list." in console.client.get("/suppression").text
    assert console.services.suppression.get_suppressed("ann@example.com").reason == "COMPLAINT"
    refused = console.post("/suppression", {"email": "not an address", "reason": "BOUNCE"})
    assert refused.status_code == 400 and 'id="email-error"' in refused.text
    wrong = console.post("/suppression", {"email": "b@example.com", "reason": "SPAM"})
    assert wrong.status_code == 400 and "BOUNCE, COMPLAINT" in wrong.text


def test_removing_warns_first_and_removes_only_when_confirmed(console: Console) -> None:
    console.login()
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        console.services.suppression.put_suppressed(email, "BOUNCE")
    asked = console.post("/suppression/remove", {"email": ["a@example.com", "B@example.com"]})
    assert asked.status_code == 200 and 'data-testid="suppression-warning"' in asked.text
    assert "Let SES deliver to 2 addresses again?" in asked.text and "5% bounces or 0.1% complaints" in asked.text
    assert console.services.suppression.suppressed_among(["a@example.com", "b@example.com"]).keys() == {
        "a@example.com",
        "b@example.com",
    }
    done = console.post(
        "/suppression/remove", {"email": ["a@example.com", "b@example.com"], "confirm": "1", "back": "/suppression"}
    )
    assert done.status_code == 303
    left = console.services.suppression.suppressed_among(["a@example.com", "b@example.com", "c@example.com"])
    assert list(left) == ["c@example.com"]
    assert "Removed 2 addresses from the suppression list." in console.client.get("/suppression").text


def test_removal_needs_the_csrf_token(console: Console) -> None:
    console.login()
    console.services.suppression.put_suppressed("a@example.com", "BOUNCE")
    response = console.client.post(
        "/suppression/remove", data={"email": "a@example.com", "confirm": "1"}, follow_redirects=False
    )
    assert response.status_code in (400, 403) or "session" in response.text.lower()
    assert console.services.suppression.get_suppressed("a@example.com")


def test_the_contacts_page_marks_and_filters_suppressed_contacts(console: Console) -> None:
    console.login()
    for n in range(5):
        console.store.create_contact(console.list_name, Contact(f"c{n}@example.com"))
    console.services.suppression.put_suppressed("C3@example.com", "COMPLAINT")
    page = console.client.get("/").text
    assert page.count("Suppressed: complaint") == 1 and "SES will not deliver: COMPLAINT since" in page
    filtered = console.client.get("/", params={"delivery": "suppressed"}).text
    assert rows(filtered) == ["c3@example.com"]
    assert '<option value="suppressed" selected>' in filtered
    everyone = [f"c{n}@example.com" for n in range(5)]
    assert rows(console.client.get("/", params={"delivery": "nonsense"}).text) == everyone


def test_suppressed_addresses_are_escaped(console: Console) -> None:
    console.login()
    console.services.suppression.put_suppressed('"<script>alert(1)</script>"@example.com', "BOUNCE")
    page = console.client.get("/suppression").text
    assert "<script>alert(1)" not in page


def test_a_contacts_page_says_ses_will_not_deliver(console: Console) -> None:
    console.login()
    console.store.create_contact(console.list_name, Contact("ann@example.com"))
    page = console.client.get("/contacts/edit", params={"email": "ann@example.com"}).text
    assert 'data-testid="suppressed-notice"' not in page
    console.services.suppression.put_suppressed("ANN@example.com", "BOUNCE", feedback_id="fb-1")
    page = console.client.get("/contacts/edit", params={"email": "ann@example.com"}).text
    assert "SES will not deliver: BOUNCE since" in page and "fb-1" in page


def test_checked_contacts_are_removed_from_the_suppression_list_from_the_contacts_page(console: Console) -> None:
    console.login()
    for n in range(3):
        console.store.create_contact(console.list_name, Contact(f"c{n}@example.com"))
    page = console.client.get("/").text
    assert 'formaction="/suppression/remove"' not in page  # nothing shown is suppressed
    console.services.suppression.put_suppressed("c1@example.com", "BOUNCE")
    page = console.client.get("/", params={"delivery": "suppressed"}).text
    assert 'formaction="/suppression/remove"' in page
    asked = console.post("/suppression/remove", {"email": ["c1@example.com", "c2@example.com"], "back": "/?x=1"})
    assert "Let SES deliver to 1 address again?" in asked.text and 'name="back" value="/?x=1"' in asked.text
    nothing = console.post("/suppression/remove", {"all": "1", "q": "c0@", "back": "/"})
    assert nothing.status_code == 303
    assert "None of the matching contacts is on the suppression list." in console.client.get("/").text


FIXTURES = Path(__file__).parent / "fixtures" / "ses-events"


def ingest_fixture(console: Console, name: str) -> None:
    parsed = parse_text((FIXTURES / name).read_text())
    console.services.events.ingest(parsed.events, source="file")


def test_events_show_on_the_contact_the_rows_and_the_overview(console: Console) -> None:
    console.login()
    console.store.create_contact(console.list_name, Contact("gone@example.com"))
    console.store.create_contact(console.list_name, Contact("kept@example.com"))
    page = console.client.get("/contacts/edit", params={"email": "gone@example.com"}).text
    assert "No bounce or complaint received for this address." in page
    ingest_fixture(console, "bounce-event.json")
    page = console.client.get("/contacts/edit", params={"email": "gone@example.com"}).text
    history = page[page.index('data-testid="delivery-history"') :]
    assert "Permanent bounce" in history and "550 5.1.1 user unknown" in history
    assert "0100018c1f000001-aaaa-bbbb-cccc-000000000001-000000" in history and "via file" in history
    rows = console.client.get("/").text
    assert rows.count(">Bounced</span>") == 1
    assert [html.unescape(e) for e in re.findall(r'value="([^"]+)" aria-label="Select', rows)] == [
        "gone@example.com",
        "kept@example.com",
    ]
    bounced = console.client.get("/", params={"delivery": "bounced"}).text
    assert re.findall(r'value="([^"]+)" aria-label="Select', bounced) == ["gone@example.com"]
    overview = console.client.get("/overview").text
    assert "2 bounced" in overview  # both recipients of the event, one of them in no list
    assert "No sends received" in overview


def test_the_overview_gives_rates_next_to_ses_review_levels(console: Console) -> None:
    console.login()
    ingest_fixture(console, "send-event.json")
    ingest_fixture(console, "complaint-event.json")
    rates = console.client.get("/overview").text
    rates = rates[rates.index('data-testid="rates"') :]
    assert "Complaint rate" in rates and "SES reviews at 0.1%: <strong>over</strong>" in rates
    assert "SES reviews at 5%" in rates


def test_all_matching_are_removed_from_the_suppression_list_by_a_job(worker: Console) -> None:
    """ "All N matching" ticked: the confirmation counts the view's suppressed contacts (not the view), then a
    suppression-list DELETE job removes exactly those; other suppressed addresses stay."""
    console = worker
    for n in range(12):
        console.store.create_contact(console.list_name, Contact(f"m{n:02}@{'acme' if n < 8 else 'other'}.example"))
    for n in (1, 3, 5, 9):
        console.services.suppression.put_suppressed(f"m{n:02}@{'acme' if n < 8 else 'other'}.example", "BOUNCE")
    console.services.suppression.put_suppressed('"odd,one"@acme.example', "COMPLAINT")  # in no list: stays
    form = {"all": "1", "q": "acme.example", "field": "domain", "back": "/?q=acme.example&field=domain"}
    asked = console.post("/suppression/remove", form)
    assert asked.status_code == 200 and "Let SES deliver to 3 addresses again?" in asked.text
    assert 'data-testid="suppression-warning"' in asked.text and "domain is “acme.example”" in html.unescape(asked.text)
    started = console.post("/suppression/remove", {**form, "confirm": "1"})
    assert started.status_code == 303 and started.headers["location"].startswith("/import/jobs/")
    page = job_page_when_done(console, started.headers["location"])
    assert 'data-state="completed"' in page
    left = console.services.suppression.list_suppressed(SuppressionQuery()).items
    assert sorted(e.email for e in left) == ['"odd,one"@acme.example', "m09@other.example"]
