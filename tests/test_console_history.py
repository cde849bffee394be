"""The contact history in the console (issue 13): a contact's timeline (newest first, who, what, the fields
before and after, attributes key by key, a deleted contact's page), the Activity page (filters in the URL,
paging, a bad filter said plainly), and the Undo button's page frame (the confirmation, the undo job's
conflicts to restore or keep)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from sescontacts.bulk.job_records import Job
from sescontacts.bulk.report import ImportOptions
from sescontacts.console.app import relative_time
from sescontacts.history import Actor, acting_as
from sescontacts.model import OPT_IN, OPT_OUT, Contact, ContactQuery, Page, Topic

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


# -- the Undo button's page frame ----------------------------------------------------------------------


@dataclass
class Conflict:
    email: str
    current: Contact | None
    restore: Contact | None


@dataclass
class RecordingUndo:
    """The undo engine's interface (sescontacts.bulk.undo_jobs.UndoJobs) as the console calls it; the engine itself
    is built and tested on its own (bulk/undo.py). ``job``: the job record ``start`` answers with."""

    console: Console
    job_id: str
    conflict_list: list[Conflict] = field(default_factory=list)
    started: list[tuple[str, str, str]] = field(default_factory=list)
    resolved: list[tuple[str, list[str] | None, str]] = field(default_factory=list)

    def start(self, job_id: str, policy: Literal["keep", "restore"], started_by: str) -> Job:
        self.started.append((job_id, policy, started_by))
        return self.console.services.jobs.get(self.job_id)

    def conflicts(self, undo_job_id: str, *, page_size: int, token: str | None) -> Page[Conflict]:
        start = int(token or 0)
        items = self.conflict_list[start : start + page_size]
        more = start + page_size < len(self.conflict_list)
        return Page(items, str(start + page_size) if more else None)  # type: ignore[arg-type]

    def resolve(self, undo_job_id: str, emails: Sequence[str] | None, action: Literal["restore", "keep"]) -> int:
        self.resolved.append((undo_job_id, None if emails is None else list(emails), action))
        return len(emails) if emails is not None else len(self.conflict_list)


def test_without_the_undo_engine_the_button_is_not_offered(console: Console, tmp_path: Path) -> None:
    assert not hasattr(console.services, "undo")
    job_id = run_import(console, tmp_path, "emailAddress\na@example.com\n")
    assert 'data-testid="undo-button"' not in console.client.get(f"/import/jobs/{job_id}").text
    page = console.client.get(f"/jobs/{job_id}/undo")
    assert page.status_code == 404 and "Undo is not available" in page.text


def test_undo_asks_first_then_starts_with_the_chosen_policy(console: Console, tmp_path: Path) -> None:
    job_id = run_import(console, tmp_path, "emailAddress\na@example.com\n")
    undo = RecordingUndo(console, job_id)
    console.services.undo = undo  # type: ignore[attr-defined]
    job_page = console.client.get(f"/import/jobs/{job_id}").text
    assert 'data-testid="undo-button"' in job_page and "Undo this import…" in job_page
    action = console.services.jobs.submit_action(
        console.list_name, ContactQuery(), "unsubscribe", description="all contacts", run_here=True
    )
    console.services.jobs.run(action.id)
    assert "Undo this action…" in console.client.get(f"/contacts/bulk/jobs/{action.id}").text
    polled = console.client.get(f"/import/jobs/{job_id}", headers={"HX-Request": "true", "HX-Target": "job-progress"})
    assert 'data-testid="undo-button"' in polled.text  # the progress block's last swap shows it too
    asked = console.post(f"/jobs/{job_id}/undo")
    assert asked.status_code == 200 and undo.started == []
    explained = text(asked.text.split('data-testid="undo-explained"')[1])
    assert "every contact it created is removed" in explained and "gets its previous state back" in explained
    assert "restored, with its attributes, topics and unsubscribe state" in explained
    assert "Restore anyway" in text(asked.text)
    refused = console.client.post(f"/jobs/{job_id}/undo", data={"confirm": "1"}, follow_redirects=False)
    assert refused.status_code != 303 and undo.started == []  # no CSRF token: nothing starts
    started = console.post(f"/jobs/{job_id}/undo", {"confirm": "1", "policy": "restore"})
    assert started.status_code == 303 and started.headers["location"] == f"/undo/jobs/{job_id}"
    assert undo.started == [(job_id, "restore", "admin")]


def test_the_undo_jobs_conflicts_are_restored_or_kept(console: Console, tmp_path: Path) -> None:
    job_id = run_import(console, tmp_path, "emailAddress\na@example.com\n")
    undo = RecordingUndo(console, job_id)
    undo.conflict_list = [
        Conflict(
            f"c{n:02}@example.com",
            Contact(f"c{n:02}@example.com", attributes_data=f'{{"Plan": "{HOSTILE}"}}'),
            Contact(f"c{n:02}@example.com", attributes_data='{"Plan": "basic"}'),
        )
        for n in range(52)
    ]
    undo.conflict_list[1] = Conflict("c01@example.com", None, Contact("c01@example.com", True))
    console.services.undo = undo  # type: ignore[attr-defined]
    page = console.client.get(f"/undo/jobs/{job_id}").text
    assert HOSTILE not in page
    shown = [
        text(part.split(">", 1)[1].split("</ul>\n    <div")[0]) for part in page.split('data-testid="conflict"')[1:]
    ]
    assert len(shown) == 50
    assert f"c00@example.com Now → after restoring: Attribute Plan {HOSTILE} → became basic" == shown[0]
    assert (
        shown[1].startswith("c01@example.com Deleted since") and "Unsubscribed from all (none) → became yes" in shown[1]
    )
    assert 'aria-label="Select c00@example.com"' in page
    for label in ("Restore checked", "Restore all", "Keep all as they are"):
        assert f">{label}</button>" in page
    second = html.unescape(re.search(r'rel="next" href="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    assert len(re.findall(r'data-testid="conflict"', console.client.get(second).text)) == 2
    done = console.post(
        f"/undo/jobs/{job_id}/resolve", {"choice": "restore", "email": ["c00@example.com", "c03@example.com"]}
    )
    assert done.status_code == 303
    assert "Restored 2 contacts." in console.client.get(done.headers["location"]).text
    console.post(f"/undo/jobs/{job_id}/resolve", {"choice": "keep-all"})
    console.post(f"/undo/jobs/{job_id}/resolve", {"choice": "restore-all"})
    nothing = console.post(f"/undo/jobs/{job_id}/resolve", {"choice": "restore"})
    assert "Check at least one contact first." in console.client.get(nothing.headers["location"]).text
    assert undo.resolved == [
        (job_id, ["c00@example.com", "c03@example.com"], "restore"),
        (job_id, None, "keep"),
        (job_id, None, "restore"),
    ]
    assert console.store.count_contacts(console.list_name, ContactQuery()).value == 1


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
