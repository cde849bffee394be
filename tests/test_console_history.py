"""The contact history in the console (issue 13): a contact's timeline (newest first, who, what, the fields
before and after, attributes key by key, a deleted contact's page), the Activity page (filters in the URL,
paging, a bad filter said plainly), and undo on the real engine (the confirmation, the undo job, its
conflicts to restore or keep, the engine's refusals said on the page)."""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import pytest

from sescontacts.bulk.report import ImportOptions
from sescontacts.console.app import relative_time
from sescontacts.errors import NotFound
from sescontacts.history import Actor, acting_as
from sescontacts.model import OPT_IN, OPT_OUT, Contact, ContactQuery, Topic

from .support.console import Console, TestClient, console_fixture, fast_kdf_fixture  # noqa: F401

ALICE = Actor("console", "alice")
KEY = Actor("api", "AKIAEXAMPLEKEY")
HOSTILE = "<script>alert(1)</script>"


def text(page: str) -> str:
    """The page as a person reads it: tags gone, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<wbr>|<li [^>]*$", "", page))).split())


def changes(page: str) -> list[str]:
    """Each history entry's text, in page order."""
    return [text(part.split(">", 1)[1].split("</ol>")[0]) for part in page.split('data-testid="change"')[1:]]


def run_import(console: Console, tmp_path: Path, csv: str, actor: str = "admin") -> str:
    """A real import job started by the console user ``actor``, run here: its writes are recorded as the job's,
    started by that user (the job manager's own doing)."""
    path = tmp_path / "people.csv"
    path.write_text(csv)
    jobs = console.services.jobs
    with acting_as(Actor("console", actor)):
        job = jobs.submit(path, ImportOptions(contact_list=console.list_name), file_name="people.csv", run_here=True)
    assert jobs.run(job.id).state == "completed"
    return job.id


def test_the_timeline_shows_who_changed_what_newest_first(console: Console) -> None:
    name = console.list_name
    console.store.update_list(name, topics=[Topic("news", "Newsletter", OPT_OUT)])
    with acting_as(ALICE):
        console.store.create_contact(name, Contact("Ann@Example.com", attributes_data='{"Company": "ACME", "n": 1}'))
    with acting_as(KEY):
        console.store.update_contact(
            name,
            Contact(
                "ann@example.com",
                unsubscribe_all=True,
                topic_preferences={"news": OPT_IN},
                attributes_data='{"Company": "Initech", "Plan": "pro"}',
            ),
            merge_topic_preferences=False,
        )
    page = console.client.get("/contacts/edit", params={"email": "ann@example.com"}).text
    timeline = page.split('data-testid="timeline"')[1]
    entries = changes(timeline)
    assert len(entries) == 2
    updated, created = entries
    assert updated.startswith("Updated by api AKIAEXAMPLEKEY just now")
    assert "Unsubscribed from all no → became yes" in updated
    assert "Topic Newsletter (news) topic default → became opted in" in updated
    assert "Attribute Company ACME → became Initech" in updated
    assert "Attribute n 1 → became (none)" in updated and "Attribute Plan (none) → became pro" in updated
    assert created == "Created by console alice just now"
    # the exact time on hover, the relative one shown
    assert re.search(
        r'<time datetime="\d{4}-\d\d-\d\dT[\d:]+\+00:00" title="\d{4}-\d\d-\d\d \d\d:\d\d UTC">just now', page
    )


def test_hostile_values_are_escaped_and_raw_attributes_shown_whole(console: Console) -> None:
    name = console.list_name
    with acting_as(Actor("console", HOSTILE)):
        console.store.create_contact(name, Contact("x@example.com", attributes_data='{"k": "plain"}'))
        console.store.update_contact(name, Contact("x@example.com", attributes_data=f'{{"k": "{HOSTILE}"}}'))
        console.store.update_contact(name, Contact("x@example.com", attributes_data=f'["{HOSTILE}"]'))
    page = console.client.get("/contacts/edit", params={"email": "x@example.com"}).text
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    raw, keyed, _created = changes(page.split('data-testid="timeline"')[1])
    assert f"Attribute k plain → became {HOSTILE}" in keyed
    assert f'Attributes (not a JSON object, shown whole) before {{"k": "{HOSTILE}"}} after ["{HOSTILE}"]' in raw
    assert f"by console {HOSTILE}" in raw


def test_a_deleted_contact_keeps_its_timeline(console: Console) -> None:
    name = console.list_name
    with acting_as(ALICE):
        console.store.create_contact(name, Contact("gone@example.com", True, {}, '{"City": "Oslo"}'))
    assert console.post("/contacts/delete", {"email": "gone@example.com"}).status_code == 303
    page = console.client.get("/contacts/edit", params={"email": "GONE@example.com"})
    assert page.status_code == 200
    assert 'data-testid="deleted-badge">Deleted<' in page.text and 'name="attr_key"' not in page.text
    assert "This address is not in the list: deleted just now by" in text(page.text)
    deleted, created = changes(page.text)
    assert deleted.startswith("Deleted by") and "What it had when deleted" in deleted
    assert deleted.endswith("What it had when deleted: Unsubscribed from all yes Attribute City Oslo")
    assert created == "Created by console alice just now"
    never = console.client.get("/contacts/edit", params={"email": "never@example.com"})
    assert never.status_code == 404 and "timeline" not in never.text


def test_a_jobs_changes_link_to_the_jobs_page(console: Console, tmp_path: Path) -> None:
    job_id = run_import(console, tmp_path, 'emailAddress,attributesData\nj@example.com,"{""a"": 1}"\n')
    page = console.client.get("/contacts/edit", params={"email": "j@example.com"}).text
    assert f'<a href="/jobs/{job_id}">job {job_id} (admin)</a>' in page
    assert console.client.get(f"/jobs/{job_id}", follow_redirects=False).headers["location"] == f"/import/jobs/{job_id}"
    missing = console.client.get("/jobs/nope")
    assert missing.status_code == 404 and "There is no job nope any more." in missing.text


def test_the_activity_page_filters_and_pages(console: Console, tmp_path: Path) -> None:
    name = console.list_name
    with acting_as(ALICE):
        for n in range(55):
            console.store.create_contact(name, Contact(f"u{n:02}@example.com"))
    with acting_as(KEY):
        console.store.update_contact(name, Contact("u01@example.com", attributes_data='{"a": "b"}'))
        console.store.delete_contact(name, "u02@example.com")
    job_id = run_import(console, tmp_path, "emailAddress\nimported@example.com\n")
    home = console.client.get("/").text
    assert '<a href="/activity" >Activity</a>' in home or 'href="/activity"' in home
    first = console.client.get("/activity").text
    assert 'aria-current="page">Activity</a>' in first
    shown = changes(first)
    assert len(shown) == 50 and shown[0].startswith("Created imported@example.com by job")
    assert shown[1].startswith("Deleted u02@example.com by api AKIAEXAMPLEKEY")
    assert shown[2].startswith("Updated u01@example.com by api AKIAEXAMPLEKEY")
    assert 'href="/contacts/edit?email=u02%40example.com"' in first  # a deleted contact links to its timeline
    second_url = html.unescape(re.search(r'rel="next" href="([^"]+)"', first).group(1))  # type: ignore[union-attr]
    second = console.client.get(second_url).text
    assert [c.split(" by ")[0] for c in changes(second)] == [f"Created u{n:02}@example.com" for n in range(7, -1, -1)]
    back = html.unescape(re.search(r'rel="prev" href="([^"]+)"', second).group(1))  # type: ignore[union-attr]
    assert changes(console.client.get(back).text) == shown
    by_key = changes(console.client.get("/activity", params={"who": "api", "name": "AKIAEXAMPLEKEY"}).text)
    assert [c.split(" by ")[0] for c in by_key] == ["Deleted u02@example.com", "Updated u01@example.com"]
    deletions = console.client.get("/activity", params={"what": "deleted"}).text
    assert [c.split(" by ")[0] for c in changes(deletions)] == ["Deleted u02@example.com"]
    assert 'value="deleted" checked' in deletions  # the form shows the filter applied
    by_job = changes(console.client.get("/activity", params={"job": job_id}).text)
    assert [c.split(" by ")[0] for c in by_job] == ["Created imported@example.com"]
    one = changes(console.client.get("/activity", params={"email": "U01@example.com"}).text)
    assert [c.split(" by ")[0] for c in one] == ["Updated u01@example.com", "Created u01@example.com"]
    future = console.client.get("/activity", params={"since": "2999-01-01"}).text
    assert "No change matches these filters." in future
    today = console.client.get("/activity", params={"until": "2999-01-01", "since": "2000-01-01", "what": "updated"})
    assert len(changes(today.text)) == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"who": "robot"}, "“robot” is not a kind of actor: choose one of console, api, job"),
        ({"what": "renamed"}, "“renamed” is not a kind of change: choose created, updated or deleted."),
        ({"since": "2026-13-01"}, "“2026-13-01” is not a date for “from”: write it as YYYY-MM-DD"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "“From” (2026-02-01) is after “until” (2026-01-01)"),
        ({"page": "forged"}, "This page link is not valid for these filters."),
        ({"page": "1.x"}, "This page link is not valid for these filters."),
    ],
)
def test_a_bad_filter_value_is_said_plainly(console: Console, params: dict[str, str], message: str) -> None:
    page = console.client.get("/activity", params=params)
    assert page.status_code == 400
    assert message in text(page.text.split('data-testid="activity-error"')[1])


def test_the_activity_page_needs_a_login(console: Console) -> None:
    anonymous = TestClient(console.gate, base_url="http://testserver")
    response = anonymous.get("/activity", follow_redirects=False)
    assert response.status_code in (302, 303) and "/login" in response.headers["location"]


def test_relative_times() -> None:
    assert relative_time(1000.0, now=1030.0) == "just now"
    assert relative_time(1000.0, now=1000.0 + 61) == "1 minute ago"
    assert relative_time(1000.0, now=1000.0 + 3 * 3600 + 5) == "3 hours ago"
    assert relative_time(1000.0, now=1000.0 + 40 * 86400) == "1 month ago"


# -- undo from the console, on the real engine (bulk/undo.py) --------------------------------------------


def conflicts_shown(page: str) -> list[str]:
    """Each conflict's text on an undo job's page, in page order."""
    parts = page.split('data-testid="conflict"')[1:]
    if parts:
        parts[-1] = parts[-1].split('<div class="actions">')[0]
    return [text(part.split(">", 1)[1]) for part in parts]


def flash(console: Console, response: object) -> str:
    """The page a redirect leads to, as read (its flash message included)."""
    return text(console.client.get(response.headers["location"]).text)  # type: ignore[attr-defined]


def stored(console: Console, email: str) -> Contact | None:
    try:
        return console.store.get_contact(console.list_name, email)
    except NotFound:
        return None


def attributes(console: Console, email: str) -> object:
    """The stored contact's attributes as an object (None: not there)."""
    contact = stored(console, email)
    return None if contact is None else json.loads(contact.attributes_data or "null")


def undo_jobs(console: Console) -> list[str]:
    return [job.id for job in console.services.jobs.list(kind="undo")]


def test_undo_asks_first_then_the_engine_undoes_and_lists_the_conflicts(console: Console, tmp_path: Path) -> None:
    name = console.list_name
    with acting_as(ALICE):
        console.store.create_contact(name, Contact("old@example.com", attributes_data='{"Plan": "basic"}'))
    job_id = run_import(
        console,
        tmp_path,
        'emailAddress,attributesData\nold@example.com,"{""Plan"": ""pro""}"\na@example.com,\nc@example.com,\n',
    )
    with acting_as(KEY):  # changed again after the import: conflicts
        console.store.update_contact(name, Contact("a@example.com", attributes_data=f'{{"Plan": "{HOSTILE}"}}'))
        console.store.update_contact(name, Contact("old@example.com", attributes_data='{"Plan": "gold"}'))
    job_page = console.client.get(f"/import/jobs/{job_id}").text
    assert 'data-testid="undo-button"' in job_page and "Undo this import…" in job_page
    polled = console.client.get(f"/import/jobs/{job_id}", headers={"HX-Request": "true", "HX-Target": "job-progress"})
    assert 'data-testid="undo-button"' in polled.text  # the progress block's last swap shows it too

    asked = console.post(f"/jobs/{job_id}/undo")
    assert asked.status_code == 200 and undo_jobs(console) == []
    explained = text(asked.text.split('data-testid="undo-explained"')[1])
    assert "every contact it created is removed" in explained and "gets its previous state back" in explained
    assert "restored, with its attributes, topics and unsubscribe state" in explained
    assert "Keep them as they are now" in text(asked.text) and "Restore anyway" in text(asked.text)
    refused = console.client.post(f"/jobs/{job_id}/undo", data={"confirm": "1"}, follow_redirects=False)
    assert refused.status_code != 303 and undo_jobs(console) == []  # no CSRF token: nothing starts
    started = console.post(f"/jobs/{job_id}/undo", {"confirm": "1", "policy": "keep"})
    (undo_id,) = undo_jobs(console)
    assert started.status_code == 303 and started.headers["location"] == f"/undo/jobs/{undo_id}"
    assert console.services.jobs.get(undo_id).meta["started_by"] == "admin"

    # not run yet (no worker in this process): the engine's refusals are said on the page
    queued = console.client.get(f"/undo/jobs/{undo_id}").text
    assert 'data-state="queued"' in queued and "None so far." in text(queued)
    early = console.post(f"/undo/jobs/{undo_id}/resolve", {"choice": "keep-all"})
    assert f"The undo {undo_id} is still queued: its conflicts are not all known yet." in flash(console, early)
    twice = console.post(f"/jobs/{job_id}/undo", {"confirm": "1"})
    assert twice.status_code == 400
    assert f"An undo of job {job_id} is queued (job {undo_id}): resume that one instead." in text(twice.text)

    assert console.services.jobs.run(undo_id).state == "completed"
    assert stored(console, "c@example.com") is None  # created by the import, unchanged since: removed
    page = console.client.get(f"/undo/jobs/{undo_id}").text
    assert HOSTILE not in page
    a, old = sorted(conflicts_shown(page))
    assert a.startswith("a@example.com Restoring removes it changed since by api AKIAEXAMPLEKEY just now")
    assert f"Attribute Plan {HOSTILE} → became (none)" in a
    assert old.startswith("old@example.com changed since by api AKIAEXAMPLEKEY just now")
    assert old.endswith("Now → after restoring: Attribute Plan gold → became basic")

    done = console.post(f"/undo/jobs/{undo_id}/resolve", {"choice": "restore", "email": ["old@example.com"]})
    assert "Restored 1 contact." in flash(console, done)
    assert attributes(console, "old@example.com") == {"Plan": "basic"}
    assert attributes(console, "a@example.com") == {"Plan": HOSTILE}  # not checked: left as it is
    nothing = console.post(f"/undo/jobs/{undo_id}/resolve", {"choice": "restore"})
    assert "Check at least one contact first." in flash(console, nothing)
    kept = console.post(f"/undo/jobs/{undo_id}/resolve", {"choice": "keep-all"})
    after = flash(console, kept)
    assert "Kept 1 contact as they are now." in after and "None: every contact the job changed is back" in after
    assert attributes(console, "a@example.com") == {"Plan": HOSTILE}

    # undone: the job's page links its undo instead of offering it again, and the engine refuses a second one
    job_page = console.client.get(f"/import/jobs/{job_id}").text
    assert 'data-testid="undo-button"' not in job_page
    assert f'Undone by <a href="/undo/jobs/{undo_id}">undo job <code>{undo_id}</code></a>.' in job_page
    again = console.post(f"/jobs/{job_id}/undo", {"confirm": "1"})
    assert again.status_code == 400 and f"was undone by job {undo_id}: undo that one to redo it." in text(again.text)
    assert "Undo this undo (redo)…" in console.client.get(f"/undo/jobs/{undo_id}").text


def test_restore_anyway_and_paged_conflicts_restored_all(console: Console, tmp_path: Path) -> None:
    name = console.list_name
    emails = [f"c{n:02}@example.com" for n in range(52)]
    job_id = run_import(console, tmp_path, "emailAddress\n" + "".join(f"{e}\n" for e in emails))
    with acting_as(KEY):
        for email in emails:
            console.store.update_contact(name, Contact(email, attributes_data='{"Plan": "pro"}'))
    started = console.post(f"/jobs/{job_id}/undo", {"confirm": "1", "policy": "restore"})
    undo_id = started.headers["location"].rsplit("/", 1)[1]
    assert console.services.jobs.run(undo_id).state == "completed"
    # "restore anyway": every contact removed, none left to decide
    assert console.store.count_contacts(name, ContactQuery()).value == 0
    assert "None: every contact the job changed is back" in text(console.client.get(f"/undo/jobs/{undo_id}").text)

    # a bulk action's page offers its undo too; with "keep", its 52 conflicts are paged
    with acting_as(ALICE):
        for email in emails:
            console.store.create_contact(name, Contact(email))
    action = console.services.jobs.submit_action(name, ContactQuery(), "unsubscribe", description="all", run_here=True)
    console.services.jobs.run(action.id)
    with acting_as(KEY):
        for email in emails:
            console.store.update_contact(name, Contact(email, True, attributes_data='{"Plan": "pro"}'))
    assert "Undo this action…" in console.client.get(f"/contacts/bulk/jobs/{action.id}").text
    started = console.post(f"/jobs/{action.id}/undo", {"confirm": "1"})
    undo_id = started.headers["location"].rsplit("/", 1)[1]
    console.services.jobs.run(undo_id)
    page = console.client.get(f"/undo/jobs/{undo_id}").text
    assert len(conflicts_shown(page)) == 50 and 'aria-label="Select c51@example.com"' in page  # newest first
    second = html.unescape(re.search(r'rel="next" href="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    assert len(conflicts_shown(console.client.get(second).text)) == 2
    done = console.post(f"/undo/jobs/{undo_id}/resolve", {"choice": "restore-all"})
    assert "Restored 52 contacts." in flash(console, done)
    assert all(stored(console, e).unsubscribe_all is False for e in emails)  # type: ignore[union-attr]


def test_an_imports_batch_of_creations_pages_across_pages(console: Console, tmp_path: Path) -> None:
    """A batch's creations are one recorded row: a page can end inside it and the next goes on from there."""
    job_id = run_import(console, tmp_path, "emailAddress\n" + "".join(f"b{n:02}@example.com\n" for n in range(70)))
    first = console.client.get("/activity", params={"job": job_id}).text
    second_url = html.unescape(re.search(r'rel="next" href="([^"]+)"', first).group(1))  # type: ignore[union-attr]
    second = console.client.get(second_url).text
    emails = [c.split(" ")[1] for c in changes(first) + changes(second)]
    assert len(changes(first)) == 50 and sorted(emails) == [f"b{n:02}@example.com" for n in range(70)]
    assert 'rel="next"' not in second and "Page 2" in text(second)


def test_a_long_timeline_links_to_the_rest_and_a_deletion_shows_its_topics(console: Console) -> None:
    name = console.list_name
    console.store.update_list(name, topics=[Topic("news", "Newsletter", OPT_OUT)])
    console.store.create_contact(name, Contact("busy@example.com", topic_preferences={"news": OPT_IN}))
    for n in range(100):
        console.store.update_contact(
            name, Contact("busy@example.com", topic_preferences={"news": OPT_IN}, attributes_data=f'{{"n": {n}}}')
        )
    page = console.client.get("/contacts/edit", params={"email": "busy@example.com"}).text
    assert len(changes(page)) == 100 and 'data-op="created"' not in page
    assert "The latest 100 changes. All changes to this address" in text(page)
    assert 'href="/activity?email=busy%40example.com"' in page
    console.store.delete_contact(name, "busy@example.com")
    deleted = changes(console.client.get("/contacts/edit", params={"email": "busy@example.com"}).text)[0]
    assert deleted.endswith("Unsubscribed from all no Topic Newsletter (news) opted in Attribute n 99")


def test_an_undo_the_engine_refuses_is_said_on_the_page(console: Console, tmp_path: Path) -> None:
    running = console.services.jobs.submit(tmp_path / "none.csv", ImportOptions(console.list_name), file_name="x.csv")
    asked = console.post(f"/jobs/{running.id}/undo", {"confirm": "1"})
    assert asked.status_code == 303 and asked.headers["location"] == f"/import/jobs/{running.id}"
    assert "The job is still running: cancel it or let it end, then undo it." in flash(console, asked)
    assert 'data-testid="undo-button"' not in console.client.get(f"/import/jobs/{running.id}").text
    console.services.jobs.cancel(running.id)

    job_id = run_import(console, tmp_path, "emailAddress\npruned@example.com\n")
    console.services.history.prune(time.time() + 60)  # its changes older than the history keeps
    refused = console.post(f"/jobs/{job_id}/undo", {"confirm": "1"})
    assert refused.status_code == 400 and undo_jobs(console) == []
    assert "the history holds none of its changes" in text(refused.text.split('role="alert"')[1])
    assert stored(console, "pruned@example.com") is not None
