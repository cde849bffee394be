"""The contacts page: table, search, filters, pages, counts, add/edit/delete and bulk actions."""

from __future__ import annotations

import dataclasses
import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sescontacts.console.views import contacts as contacts_view
from sescontacts.errors import NotFound
from sescontacts.history import Actor
from sescontacts.model import OPT_IN, OPT_OUT, Contact, ContactQuery, Topic

from .support.console import Console, console_fixture, fast_kdf_fixture  # noqa: F401
from .support.server import REGION
from .support.ses import MOTO_KEY, boto_session, clean_env, reset_moto, run_moto


def emails_on(page: str) -> list[str]:
    return [html.unescape(e) for e in re.findall(r'name="email" value="([^"]+)" aria-label', page)]


def seed(console: Console, n: int = 12) -> None:
    store, name = console.store, console.list_name
    store.update_list(
        name,
        topics=[Topic("news", "News", OPT_IN), Topic("offers", "Offers", OPT_OUT)],
    )
    for i in range(n):
        store.create_contact(
            name,
            Contact(
                f"user{i:02d}@{'acme.com' if i % 2 else 'example.org'}",
                unsubscribe_all=(i % 5 == 0),
                topic_preferences={"offers": OPT_IN} if i % 3 == 0 else {},
                attributes_data=orjson.dumps({"Name": f"User {i}", "Company": "ACM" if i < 4 else "Other"}).decode(),
            ),
        )


def test_table_shows_contacts_counts_and_topic_preferences(console: Console) -> None:
    seed(console)
    page = console.client.get("/").text
    assert emails_on(page) == sorted(f"user{i:02d}@{'acme.com' if i % 2 else 'example.org'}" for i in range(12))
    assert 'data-testid="matching">12<' in page
    assert "Unsubscribed from all" in page and "Subscribed" in page
    assert "Company" in page and "User 1" in page
    overview = console.client.get("/overview", headers={"HX-Request": "true"}).text
    assert "<svg" in overview and 'data-testid="total">12<' in overview


def test_the_overview_shows_each_days_additions_removals_and_unsubscribes(console: Console) -> None:
    """Readable without JavaScript: every day's three numbers in the bar group's hover title and in the table
    under the chart, the thirty days' sums in the legend."""
    seed(console)
    store, name = console.services.store, console.list_name
    store.delete_contact(name, "user01@acme.com")
    store.update_contact(name, Contact("user02@example.org", unsubscribe_all=True))
    overview = console.client.get("/overview", headers={"HX-Request": "true"}).text
    today = store.list_stats(name).per_day[-1].day  # the UTC day the writes were counted on
    assert today in (time.strftime("%Y-%m-%d", time.gmtime(time.time() - 60)), time.strftime("%Y-%m-%d", time.gmtime()))
    assert f"<title>{today}: 12 added, 1 removed, 1 unsubscribed</title>" in overview
    assert "12 added" in overview and "1 removed" in overview and "1 unsubscribed" in overview  # the legend
    row = re.search(rf"<tr><th scope=\"row\">{today}</th>(.*?)</tr>", overview)
    assert row is not None and re.findall(r">(\d+)<", row.group(1)) == ["12", "1", "1"]
    assert overview.count('<g class="day">') == 30  # quiet days are part of the story
    # A change a second later shows at once: the per-topic counts are reused for a few seconds, the days not.
    store.delete_contact(name, "user03@acme.com")
    overview = console.client.get("/overview", headers={"HX-Request": "true"}).text
    assert f"<title>{today}: 12 added, 2 removed, 1 unsubscribed</title>" in overview


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "user1"}, {"user10@example.org", "user11@acme.com"}),
        ({"q": "ACME.com", "field": "domain"}, {f"user{i:02d}@acme.com" for i in range(1, 12, 2)}),
        ({"q": "Name = User 3", "field": "attribute"}, {"user03@acme.com"}),
        (
            {"q": "Company=ACM", "field": "attribute"},
            {"user00@example.org", "user01@acme.com", "user02@example.org", "user03@acme.com"},
        ),
        ({"q": "Missing", "field": "attribute"}, set()),
        ({"status": OPT_OUT}, {"user00@example.org", "user05@acme.com", "user10@example.org"}),
        ({"topic": "offers", "status": OPT_IN}, {"user03@acme.com", "user06@example.org", "user09@acme.com"}),
    ],
)
def test_search_and_filters(console: Console, params: dict[str, str], expected: set[str]) -> None:
    seed(console)
    page = console.client.get("/", params=params).text
    assert set(emails_on(page)) == expected
    assert f'data-testid="matching">{len(expected)}<' in page


def test_topic_filter_uses_the_topic_default(console: Console) -> None:
    seed(console)
    page = console.client.get("/", params={"topic": "news", "status": OPT_IN}).text
    # news defaults to OPT_IN: everyone not unsubscribed from all
    assert len(emails_on(page)) == 9


def test_keyset_pages_and_bookmarkable_urls(console: Console) -> None:
    seed(console)
    seen: list[str] = []
    url = "/?size=5&sort=updated"
    for _ in range(5):
        page = console.client.get(url).text
        seen += emails_on(page)
        match = re.search(r'rel="next" href="([^"]+)"', page)
        if not match:
            break
        url = html.unescape(match.group(1))
        assert "size=5" in url and "sort=updated" in url and "page=" in url
    assert len(seen) == 12 and len(set(seen)) == 12
    # an htmx request for the next page gets just the results fragment
    fragment = console.client.get(url, headers={"HX-Request": "true", "HX-Target": "results"}).text
    assert fragment.startswith('<div id="results"') and "<html" not in fragment


def test_bad_page_token_is_a_message_not_a_crash(console: Console) -> None:
    seed(console)
    response = console.client.get("/?page=bogus")
    assert response.status_code == 200 and contacts_view.BAD_PAGE in html.unescape(response.text)


def test_count_is_capped(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(console)
    monkeypatch.setattr(contacts_view, "COUNT_CAP", 3)
    page = console.client.get("/", params={"q": "user", "size": 2}).text
    # the table does not wait for the count: htmx fetches it from /count
    assert 'hx-get="/count?q=user&amp;size=2"' in page
    fragment = console.client.get("/count", params={"q": "user"}, headers={"HX-Request": "true"}).text
    assert fragment.startswith('<span class="matching-count"><strong data-testid="matching">3+</strong>')
    assert "3+ contacts match" in console.client.get("/count", params={"q": "user"}).text


def test_add_contact_with_attribute_rows_and_topics(console: Console) -> None:
    seed(console, 0)
    response = console.post(
        "/contacts/new",
        {
            "email": "New.Person@Example.com",
            "topic:offers": OPT_IN,
            "attr_mode": "rows",
            "attr_key": ["Name", "City", ""],
            "attr_value": ["New", "Oslo", ""],
            "attr_json": ["0", "0", "0"],
        },
    )
    assert response.status_code == 303
    contact = console.store.get_contact(console.list_name, "new.person@example.com")
    assert contact.email == "New.Person@Example.com"
    assert contact.attributes() == {"Name": "New", "City": "Oslo"}
    assert dict(contact.topic_preferences) == {"offers": OPT_IN}
    assert "Added New.Person@Example.com" in console.client.get("/").text  # flash, once
    assert "Added New.Person" not in console.client.get("/").text


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "not-an-address"}, "email", "there is no @"),
        ({"email": ""}, "email", "Enter an email address"),
        (
            {"email": "a@example.com", "attr_mode": "json", "attributes_json": "[1, 2]"},
            "attributes",
            "must be a JSON object",
        ),
        ({"email": "a@example.com", "attr_mode": "json", "attributes_json": "{oops"}, "attributes", "not valid JSON"),
        ({"email": "a@example.com", "attr_key": ["k", "k"], "attr_value": ["1", "2"]}, "attributes", "appears twice"),
    ],
)
def test_form_errors_are_shown_at_the_field(
    console: Console, data: dict[str, object], field: str, message: str
) -> None:
    response = console.post("/contacts/new", data)
    assert response.status_code == 400
    error = re.search(rf'<p class="field-error" id="{field}-error" role="alert">([^<]*)</p>', response.text)
    assert error and message in html.unescape(error.group(1))
    # what the user typed is still in the form
    if data.get("attributes_json"):
        assert html.escape(str(data["attributes_json"]), quote=False) in response.text


def test_duplicate_contact_error_is_inline(console: Console) -> None:
    console.post("/contacts/new", {"email": "a@example.com"})
    response = console.post("/contacts/new", {"email": "A@example.com"})
    assert response.status_code == 400 and "already exists" in response.text and 'id="email-error"' in response.text


def test_a_topic_removed_while_the_form_was_posted_is_an_inline_error(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store refuses a preference for a topic the list no longer has (SES's 400, with SES's message); the
    form shows it at the topics, not an error page. The stale list stands in for a topic removed meanwhile."""
    seed(console, 0)
    stale = console.store.get_list(console.list_name)
    stale = dataclasses.replace(stale, topics=(*stale.topics, Topic("gone", "Gone", OPT_IN)))
    monkeypatch.setattr(console.store, "get_list", lambda name: stale)
    response = console.post("/contacts/new", {"email": "a@example.com", "topic:gone": OPT_OUT})
    assert response.status_code == 400
    error = re.search(r'<p class="field-error" id="topics-error" role="alert">([^<]*)</p>', response.text)
    assert error and html.unescape(error.group(1)) == f"List: {console.list_name} doesn't contain Topic: gone"


def test_edit_keeps_what_the_form_did_not_show(console: Console) -> None:
    seed(console, 2)
    email = "user01@acme.com"
    form = console.client.get("/contacts/edit", params={"email": email}).text
    original = html.unescape(re.search(r'name="original" value="([^"]+)"', form).group(1))
    # Someone else (the SES API, an import) adds a key and a topic choice while the form is open.
    stored = console.store.get_contact(console.list_name, email)
    console.store.update_contact(
        console.list_name,
        Contact(email, False, {"news": OPT_OUT}, orjson.dumps({**stored.attributes(), "Plan": "pro"}).decode()),
    )
    response = console.post(
        "/contacts/edit",
        {
            "email": email,
            "original": original,
            "attr_mode": "rows",
            "attr_key": ["Name", "Company", "Age"],  # Name changed, Company kept, Age added
            "attr_value": ["Renamed", "ACM", "42"],
            "attr_json": ["0", "0", "0"],
            "topic:offers": OPT_OUT,
        },
    )
    assert response.status_code == 303, response.text
    after = console.store.get_contact(console.list_name, email)
    assert after.attributes() == {"Name": "Renamed", "Company": "ACM", "Plan": "pro", "Age": "42"}
    assert dict(after.topic_preferences) == {"news": OPT_OUT, "offers": OPT_OUT}


def test_edit_keeps_value_types_and_removes_deleted_rows(console: Console) -> None:
    seed(console, 0)
    console.store.create_contact(
        console.list_name, Contact("t@example.com", attributes_data='{"n": 3, "tags": ["a"], "x": "y"}')
    )
    form = console.client.get("/contacts/edit", params={"email": "t@example.com"}).text
    original = html.unescape(re.search(r'name="original" value="([^"]+)"', form).group(1))
    console.post(
        "/contacts/edit",
        {
            "email": "t@example.com",
            "original": original,
            "attr_mode": "rows",
            "attr_key": ["n", "tags", ""],
            "attr_value": ["3", '["a"]', ""],
            "attr_json": ["1", "1", "0"],
        },
    )
    assert console.store.get_contact(console.list_name, "t@example.com").attributes() == {"n": 3, "tags": ["a"]}


def test_delete_with_confirmation(console: Console) -> None:
    seed(console, 2)
    confirm = console.client.get("/contacts/delete", params={"email": "user00@example.org"})
    assert "Delete this contact?" in confirm.text
    assert console.post("/contacts/delete", {"email": "user00@example.org"}).status_code == 303
    assert emails_on(console.client.get("/").text) == ["user01@acme.com"]


def test_bulk_actions_confirm_how_many_change(console: Console) -> None:
    """Checked rows: a confirmation with the number that changes, then applied in the request."""
    seed(console)
    selected = ["user00@example.org", "user01@acme.com", "user02@example.org"]
    confirm = console.post("/contacts/bulk", {"action": "unsubscribe", "email": selected})
    assert confirm.status_code == 200
    # user00 is already unsubscribed from all
    assert "2 contacts will change" in confirm.text and "bulk-job-note" not in confirm.text
    done = console.post("/contacts/bulk", {"action": "unsubscribe", "email": selected, "confirm": "1"})
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert all(console.store.get_contact(console.list_name, e).unsubscribe_all for e in selected)


def test_a_bulk_action_on_checked_rows_never_brings_back_a_contact_deleted_since(console: Console) -> None:
    """The checked rows were listed on a page; one deleted since (in another tab, through the API) is gone
    from the confirmation's number and stays gone: Resubscribe must not create a subscribed contact the
    user removed."""
    seed(console)
    selected = ["user00@example.org", "user05@acme.com"]  # both unsubscribed from all
    console.store.delete_contact(console.list_name, "user05@acme.com")
    confirm = console.post("/contacts/bulk", {"action": "resubscribe", "email": selected})
    assert "1 contact will change" in confirm.text
    done = console.post("/contacts/bulk", {"action": "resubscribe", "email": selected, "confirm": "1"})
    assert done.status_code == 303
    assert not console.store.get_contact(console.list_name, "user00@example.org").unsubscribe_all
    with pytest.raises(NotFound):
        console.store.get_contact(console.list_name, "user05@acme.com")


def test_bulk_resubscribe_says_how_many_had_unsubscribed_and_asks(console: Console) -> None:
    """Item 7b: resubscribing overrides someone's "no more email"; the confirmation says how many that is."""
    seed(console)
    selected = ["user00@example.org", "user01@acme.com", "user05@acme.com"]  # user00 and user05 unsubscribed
    confirm = console.post("/contacts/bulk", {"action": "resubscribe", "email": selected})
    warning = re.search(r'data-testid="resubscribe-warning">(.*?)</p>', confirm.text, re.S)
    assert confirm.status_code == 200 and warning is not None
    words = " ".join(re.sub(r"<[^>]+>", " ", warning.group(1)).split())
    assert "2 of the 3 selected had unsubscribed from all" in words
    assert console.store.get_contact(console.list_name, "user00@example.org").unsubscribe_all  # nothing yet
    everything = console.post("/contacts/bulk", {"action": "resubscribe", "all": "1"})
    assert "3 of them had unsubscribed from all" in " ".join(re.sub(r"<[^>]+>", " ", everything.text).split())
    done = console.post("/contacts/bulk", {"action": "resubscribe", "email": selected, "confirm": "1"})
    assert done.status_code == 303
    assert not console.store.get_contact(console.list_name, "user00@example.org").unsubscribe_all


def job_page_when_done(console: Console, url: str) -> str:
    for _ in range(400):
        page = console.client.get(url).text
        if re.search(r'data-state="(completed|failed|cancelled|interrupted)"', page):
            return page
        time.sleep(0.05)  # polling the job record the worker updates, as the page does
    raise AssertionError("the bulk action did not finish")


@pytest.fixture(name="worker")
def worker_fixture(console: Console) -> Console:
    console.services.jobs.action_batch_rows = 2  # several batches even for a dozen contacts
    console.services.start()  # the job worker (the console fixture closes the services)
    return console


def test_bulk_action_on_all_matching_runs_as_a_job(worker: Console) -> None:
    """All N matching: the same confirmation, then a job page with progress; the result is exactly what the
    filter showed, and the list's counts stay exact."""
    console = worker
    seed(console)
    form = {"action": "delete", "all": "1", "q": "acme.com", "field": "domain"}
    confirm = console.post("/contacts/bulk", form)
    assert "6 contacts will change" in confirm.text and 'data-testid="bulk-job-note"' in confirm.text
    started = console.post("/contacts/bulk", {**form, "confirm": "1"})
    assert started.status_code == 303
    job_url = started.headers["location"]
    assert job_url.startswith("/contacts/bulk/jobs/")
    page = job_page_when_done(console, job_url)
    assert 'data-state="completed"' in page and 'data-count="changed">6<' in page
    assert "Delete: contacts matching domain is “acme.com”" in html.unescape(page)
    assert 'href="/?q=acme.com&amp;field=domain">Back to the contacts' in page
    fragment = console.client.get(job_url, headers={"HX-Request": "true", "HX-Target": "job-progress"}).text
    assert fragment.startswith('<div id="job-progress"') and "every 1s" not in fragment  # polling stops
    remaining = console.store.list_contacts(console.list_name, ContactQuery()).items
    assert {c.email for c in remaining} == {f"user{i:02d}@example.org" for i in range(0, 12, 2)}
    resubscribed = console.post("/contacts/bulk", {"action": "resubscribe", "all": "1", "confirm": "1"})
    page = job_page_when_done(console, resubscribed.headers["location"])
    assert 'data-count="changed">2<' in page and 'data-count="unchanged">4<' in page  # user00 and user10
    stats = console.store.list_stats(console.list_name)
    assert (stats.total, stats.unsubscribed) == (6, 0) == (len(remaining), 0)


def test_a_bulk_job_page_follows_progress_with_and_without_javascript(console: Console) -> None:
    """Queued (no worker here), the page refreshes itself without JavaScript and polls its progress block with
    htmx; the contacts page links to it; Cancel stops it, Resume queues it again where it was."""
    seed(console)
    started = console.post("/contacts/bulk", {"action": "unsubscribe", "all": "1", "status": OPT_IN, "confirm": "1"})
    job_url = started.headers["location"]
    page = console.client.get(job_url).text
    assert 'data-state="queued"' in page and '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page
    assert f'hx-get="{job_url}" hx-trigger="every 1s"' in page
    home = html.unescape(console.client.get("/").text)
    assert "Unsubscribing contacts matching subscribed: 0 contacts" in " ".join(home.split())
    assert f'href="{job_url}"' in home
    cancelled = console.post(job_url + "/cancel")
    assert cancelled.status_code == 303 and cancelled.headers["location"] == job_url
    page = console.client.get(job_url).text
    assert 'data-state="cancelled"' in page and "noscript" not in page and "/resume" in page
    console.post(job_url + "/resume")
    job_id = job_url.rsplit("/", 1)[1]
    assert console.services.jobs.get(job_id).state == "queued"
    done = console.services.jobs.run(job_id)  # what the worker does
    assert (done.state, done.counts["updated"]) == ("completed", 9)
    assert console.store.count_contacts(console.list_name, ContactQuery(status=OPT_OUT)).value == 12


def test_bulk_job_pages_only_show_bulk_jobs(console: Console, tmp_path: Path) -> None:
    from sescontacts.bulk.report import ImportOptions

    assert console.client.get("/contacts/bulk/jobs/nope").status_code == 404
    file = tmp_path / "a.csv"
    file.write_text("emailAddress\na@example.com\n")
    job = console.services.jobs.submit(file, ImportOptions(console.list_name), file_name="a.csv")
    assert console.client.get(f"/contacts/bulk/jobs/{job.id}").status_code == 404
    assert console.post(f"/contacts/bulk/jobs/{job.id}/cancel").status_code == 404


def test_merge_applies_only_the_forms_changes() -> None:
    from sescontacts.console.views.contact_form import merge

    original = {"a": 1, "b": 2, "c": 3}
    edited = {"a": 1, "b": 20, "d": 4}  # b changed, c removed, d added
    current = {"a": 10, "b": 2, "c": 3, "e": 5}  # a and e changed by someone else
    assert merge(original, edited, current) == {"a": 10, "b": 20, "d": 4, "e": 5}


def test_editing_raw_attributes_that_are_not_an_object_keeps_them(console: Console) -> None:
    seed(console, 0)
    console.store.create_contact(console.list_name, Contact("raw@example.com", attributes_data='"just text"'))
    form = console.client.get("/contacts/edit", params={"email": "raw@example.com"}).text
    assert 'value="json" checked' in form  # only raw editing can show it
    original = html.unescape(re.search(r'name="original" value="([^"]+)"', form).group(1))
    response = console.post(
        "/contacts/edit",
        {
            "email": "raw@example.com",
            "original": original,
            "attr_mode": "json",
            "attributes_json": '"just text"',
            "unsubscribe_all": "1",
        },
    )
    assert response.status_code == 303  # untouched raw text is kept; the other change is saved
    kept = console.store.get_contact(console.list_name, "raw@example.com")
    assert kept.attributes_data == '"just text"' and kept.unsubscribe_all
    response = console.post(
        "/contacts/edit",
        {"email": "raw@example.com", "original": original, "attr_mode": "json", "attributes_json": '"changed"'},
    )
    assert response.status_code == 400 and "must be a JSON object" in response.text  # new text must be an object


# -- the ses backend, with moto_server as SES (it keys contacts by the exact address, as SES may) -------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    clean_env()
    with run_moto() as url:
        yield url


def moto_upstream(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """moto, emptied, as the SES of a console on the ses backend; its own client for the test to look with."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", MOTO_KEY[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", MOTO_KEY[1])
    reset_moto(moto_url)
    return boto_session(MOTO_KEY).client("sesv2", endpoint_url=moto_url)  # type: ignore[attr-defined]


def ses_console(tmp_path: Path, moto_url: str) -> Console:
    return Console(tmp_path / "data", backend="ses", ses_endpoint_url=moto_url, region=REGION, ses_rate=500.0)


def test_ses_backend_shows_edits_and_deletes_contacts_ses_keeps_apart(
    tmp_path: Path, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = moto_upstream(moto_url, monkeypatch)
    upstream.create_contact_list(ContactListName="contacts")
    for address, who in (("Ann@example.com", "Ann"), ("ann@example.com", "ann")):
        upstream.create_contact(ContactListName="contacts", EmailAddress=address, AttributesData=f'{{"who": "{who}"}}')
    console = ses_console(tmp_path, moto_url)
    try:
        console.login()
        console.store.sync_now(full=True)
        page = console.client.get("/").text
        assert emails_on(page) == ["Ann@example.com", "ann@example.com"]
        assert 'data-testid="matching">2<' in page
        form = console.client.get("/contacts/edit", params={"email": "ann@example.com"}).text
        original = html.unescape(re.search(r'name="original" value="([^"]+)"', form).group(1))
        assert orjson.loads(original)["a"] == '{"who": "ann"}'
        response = console.post(
            "/contacts/edit",
            {
                "email": "ann@example.com",
                "original": original,
                "attr_mode": "rows",
                "attr_key": ["who"],
                "attr_value": ["ann, edited"],
                "attr_json": ["0"],
            },
        )
        assert response.status_code == 303, response.text
        got = {
            c["EmailAddress"]: upstream.get_contact(ContactListName="contacts", EmailAddress=c["EmailAddress"])
            for c in upstream.list_contacts(ContactListName="contacts")["Contacts"]
        }
        assert {k: v["AttributesData"] for k, v in got.items()} == {
            "Ann@example.com": '{"who": "Ann"}',
            "ann@example.com": '{"who":"ann, edited"}',
        }
        assert console.post("/contacts/delete", {"email": "Ann@example.com"}).status_code == 303
        assert [c["EmailAddress"] for c in upstream.list_contacts(ContactListName="contacts")["Contacts"]] == [
            "ann@example.com"
        ]
        assert emails_on(console.client.get("/").text) == ["ann@example.com"]
    finally:
        console.services.close()


def test_ses_backend_offers_to_create_a_list_deleted_in_ses(
    tmp_path: Path, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 5 on the ses backend: the list deleted in SES (moto here), created again from the console's page."""
    from . import test_console_pages as pages

    upstream = moto_upstream(moto_url, monkeypatch)
    console = ses_console(tmp_path, moto_url)
    try:
        pages._list_deleted_then_created_from_the_console(console.login())
        topics = upstream.get_contact_list(ContactListName="contacts")["Topics"]
        assert [t["TopicName"] for t in topics] == ["news", "offers"]
    finally:
        console.services.close()


def test_console_writes_are_recorded_as_the_logged_in_user(console: Console) -> None:
    """History item 1, the console: add, edit and delete in the console are the logged-in user's."""
    admin = Actor("console", "admin")
    console.post("/contacts/new", {"email": "ann@example.com"})
    form = console.client.get("/contacts/edit", params={"email": "ann@example.com"}).text
    original = html.unescape(re.search(r'name="original" value="([^"]+)"', form).group(1))
    edit = {"email": "ann@example.com", "original": original, "attr_mode": "rows", "attr_key": ["Name"]}
    assert console.post("/contacts/edit", {**edit, "attr_value": ["Ann"], "attr_json": ["0"]}).status_code == 303
    assert console.post("/contacts/delete", {"email": "ann@example.com"}).status_code == 303
    changes = console.services.history.contact_history(console.list_name, "ann@example.com")
    assert [(c.op, c.actor) for c in changes] == [("deleted", admin), ("updated", admin), ("created", admin)]


def test_a_thread_hop_keeps_who_acts() -> None:
    """The console's writes run in anyio's worker threads (views/common.in_thread): the installed anyio copies
    the context to them, so the request's actor reaches the store."""
    import anyio
    from starlette.concurrency import run_in_threadpool

    from sescontacts.history import acting_as, current_actor

    async def hop() -> tuple[Actor, Actor]:
        with acting_as(Actor("console", "bea")):
            return await anyio.to_thread.run_sync(current_actor), await run_in_threadpool(current_actor)

    assert anyio.run(hop) == (Actor("console", "bea"), Actor("console", "bea"))


def test_a_bulk_job_records_who_started_it_and_runs_as_the_job(worker: Console) -> None:
    console = worker
    seed(console, 4)
    started = console.post("/contacts/bulk", {"action": "unsubscribe", "all": "1", "confirm": "1"})
    page = job_page_when_done(console, started.headers["location"])
    job_id = started.headers["location"].rsplit("/", 1)[1]
    assert console.services.jobs.get(job_id).meta["started_by"] == "admin"
    assert 'data-testid="started-by">· started by admin<' in page
    (change,) = console.services.history.contact_history(console.list_name, "user01@acme.com")[:1]
    assert (change.op, change.actor) == ("updated", Actor("job", "admin", job_id))
