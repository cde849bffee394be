"""The mirror sync against a running ``sescontacts serve``: what it fetches, what it removes, resuming after a
kill, and the status the console shows."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from sescontacts.history import Actor, acting_as
from sescontacts.model import EXACT, Contact
from sescontacts.store.base import SyncStatus
from sescontacts.store.ses import SesContactStore
from sescontacts.store.ses.pacer import Pacer
from sescontacts.store.ses.suppression_sync import SUPPRESSION_PART
from sescontacts.store.sqlite.history import SqliteContactHistory

from .support.server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, RunningServer, run_server
from .support.ses import clean_env, ses_store

LIST = "contacts"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    clean_env()
    with run_server(tmp_path_factory.mktemp("sync-server")) as running:
        yield running


@pytest.fixture
def ses(server: RunningServer) -> Any:
    """A plain boto3 client: 'another program' changing the list behind the store's back."""
    client = boto3.client(
        "sesv2",
        region_name=REGION,
        endpoint_url=server.url,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    for item in client.list_contact_lists()["ContactLists"]:
        client.delete_contact_list(ContactListName=item["ContactListName"])
    news = {"TopicName": "news", "DisplayName": "News", "DefaultSubscriptionStatus": "OPT_IN"}
    client.create_contact_list(ContactListName=LIST, Topics=[news])
    return client


@pytest.fixture
def store(tmp_path: Path, server: RunningServer, ses: Any) -> Iterator[SesContactStore]:
    contact_store = ses_store(tmp_path / "mirror.db", server.url, pacer=Pacer(1000, 100))
    yield contact_store
    contact_store.close()


def seed(ses: Any, count: int, prefix: str = "c") -> list[str]:
    addresses = [f"{prefix}{i:04d}@example.com" for i in range(count)]
    for i, address in enumerate(addresses):
        ses.create_contact(
            ContactListName=LIST,
            EmailAddress=address,
            AttributesData=f'{{"i": {i}}}',
            UnsubscribeAll=i % 5 == 0,
            TopicPreferences=[{"TopicName": "news", "SubscriptionStatus": "OPT_OUT"}] if i % 3 == 0 else [],
        )
    return addresses


def ses_state(ses: Any) -> dict[str, tuple[bool, dict[str, str], str | None]]:
    """Every contact as SES has it, through GetContact (attributes included)."""
    state = {}
    token = None
    while True:
        page = ses.list_contacts(ContactListName=LIST, PageSize=100, **({"NextToken": token} if token else {}))
        for item in page["Contacts"]:
            full = ses.get_contact(ContactListName=LIST, EmailAddress=item["EmailAddress"])
            prefs = {p["TopicName"]: p["SubscriptionStatus"] for p in full.get("TopicPreferences", [])}
            state[item["EmailAddress"]] = (full["UnsubscribeAll"], prefs, full.get("AttributesData"))
        token = page.get("NextToken")
        if not token:
            return state


def mirror_state(store: SesContactStore) -> dict[str, tuple[bool, dict[str, str], str | None]]:
    state = {}
    token = None
    while True:
        page = store.mirror.list_contacts(LIST, page_size=1000, token=token)
        for c in page.items:
            state[c.email] = (c.unsubscribe_all, dict(c.topic_preferences), c.attributes_data)
        token = page.next_token
        if token is None:
            return state


def test_full_sync_copies_everything_then_costs_only_pages(store: SesContactStore, ses: Any) -> None:
    seed(ses, 45)
    sync = store.new_sync(page_size=10)
    first = sync.sync(LIST, full=True)
    assert (first.seen, first.fetched, first.pages) == (45, 45, 5)
    assert mirror_state(store) == ses_state(ses)
    stats = store.list_stats(LIST)
    assert (stats.total, stats.unsubscribed) == (45, 9)

    store.calls.clear()
    again = sync.sync(LIST, full=True)
    assert again.fetched == 0
    assert store.calls["get_contact"] == 0  # unchanged contacts cost no GetContact
    assert store.calls["list_contacts"] == 5


def test_sync_fetches_changes_and_removes_what_ses_lost(store: SesContactStore, ses: Any) -> None:
    seed(ses, 20)
    sync = store.new_sync(page_size=6)
    sync.sync(LIST, full=True)
    time.sleep(0.01)  # LastUpdatedTimestamp has millisecond resolution
    ses.update_contact(ContactListName=LIST, EmailAddress="c0001@example.com", UnsubscribeAll=True)
    ses.update_contact(ContactListName=LIST, EmailAddress="c0002@example.com", AttributesData='{"new": true}')
    ses.delete_contact(ContactListName=LIST, EmailAddress="c0003@example.com")
    ses.create_contact(ContactListName=LIST, EmailAddress="late@example.com")
    store.calls.clear()
    result = sync.sync(LIST, full=True)
    assert (result.fetched, result.removed) == (3, 1)
    assert store.calls["get_contact"] == 3
    assert mirror_state(store) == ses_state(ses)


def test_writes_during_a_walk_are_not_removed(store: SesContactStore, ses: Any) -> None:
    """A contact created through the store while a walk runs is not 'gone' just because the walk missed it."""
    seed(ses, 12)
    sync = store.new_sync(page_size=5)
    created = []

    def during(status: Any) -> None:
        if status.pages == 1 and not created:
            created.append(store.create_contact(LIST, Contact("a-early@example.com")))  # sorts before the cursor

    sync.on_progress = during
    sync.sync(LIST, full=True)
    assert store.mirror.get_contact(LIST, "a-early@example.com").email == "a-early@example.com"


def test_status_shows_last_sync_and_progress(store: SesContactStore, ses: Any) -> None:
    seed(ses, 15)
    sync = store.new_sync(page_size=5)
    store.sync = sync
    seen: list[Any] = []
    sync.on_progress = seen.append
    before = time.time()
    sync.sync(LIST, full=True)
    status = store.sync_status()
    assert status is not None and not status.running
    assert status.last_synced is not None and status.last_synced >= before
    assert status.last_full == status.last_synced
    walk = [s for s in seen if s.running and s.phase == "walk"]
    fetch = [s for s in seen if s.running and s.phase == "fetch"]
    assert [s.seen for s in walk] == [5, 10, 15]
    assert [s.to_fetch for s in walk] == [5, 10, 15]  # listed at once, details read afterwards
    # A first sync into an empty mirror cannot know the total: no made-up ETA while pages remain.
    assert all(s.eta_seconds is None for s in walk[:-1])
    # Reading the details: the number left is exact, and so is the ETA but for the rate.
    assert fetch and all(s.eta_seconds is not None for s in fetch)
    assert [s.to_fetch for s in fetch] == sorted((s.to_fetch for s in fetch), reverse=True)
    assert fetch[-1].to_fetch == 0
    # The next sync knows the total (the mirror's count) and gives an ETA that falls as pages are listed.
    seen.clear()
    sync.sync(LIST, full=True)
    etas = [s.eta_seconds for s in seen if s.running]
    assert all(e is not None for e in etas) and etas == sorted(etas, reverse=True)


def test_the_walk_shows_every_contact_before_the_details_are_read(store: SesContactStore, ses: Any) -> None:
    """After the pages alone, the console has every contact with its subscription state (and counts)."""
    seed(ses, 12)
    sync = store.new_sync(page_size=5)
    snapshots: list[tuple[int, int]] = []

    def watch(status: Any) -> None:
        if status.running and status.phase == "walk" and status.seen == 12:  # last page in, no GetContact yet
            stats = store.list_stats(LIST)
            snapshots.append((stats.total, stats.unsubscribed))

    sync.on_progress = watch
    sync.sync(LIST, full=True)
    assert snapshots == [(12, 3)]  # all 12 there, the 3 unsubscribed known, from the pages alone
    assert store.calls["get_contact"] == 12  # the details came after
    assert mirror_state(store) == ses_state(ses)


def test_list_deleted_in_ses_leaves_the_mirror(store: SesContactStore, ses: Any) -> None:
    seed(ses, 3)
    sync = store.new_sync()
    sync.sync_all(full=True)
    assert store.mirror.list_lists().items
    ses.delete_contact_list(ContactListName=LIST)
    # No list synced any more; the account's suppression list still is (it is not a list's).
    assert [result.list_name for result in sync.sync_all(full=True)] == [SUPPRESSION_PART]
    assert store.mirror.list_lists().items == []


def test_background_schedule_starts_and_stops(store: SesContactStore, ses: Any) -> None:
    seed(ses, 4)
    sync = store.new_sync(interval=0.2)
    sync.start()
    deadline = time.monotonic() + 10
    while sync.status(LIST).last_synced is None and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the database for the background thread's first result
    sync.stop()
    assert len(mirror_state(store)) == 4


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sescontacts.store.ses.pacer import Pacer
    from tests.support.ses import ses_store
    store = ses_store(Path(sys.argv[1]), sys.argv[2], pacer=Pacer(150, 1))
    store.new_sync(page_size=20).sync("contacts", full=True)
    print("finished", flush=True)
    """
)


@pytest.mark.slow
def test_killed_sync_resumes_and_loses_nothing(tmp_path: Path, server: RunningServer, ses: Any) -> None:
    seed(ses, 200)
    db_path = tmp_path / "mirror.db"
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(db_path), server.url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},  # this checkout's src
        stdout=subprocess.DEVNULL,  # nothing reads it: a pipe would be left open (ResourceWarning)
    )
    deadline = time.monotonic() + 60
    fetched = 0
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)  # polling the killed process's database for progress
        try:
            with sqlite3.connect(db_path, timeout=1) as conn:
                row = conn.execute("SELECT fetched, pages FROM ses_sync").fetchone()
        except sqlite3.Error:
            continue
        if row and row[0] >= 60:
            fetched = row[0]
            break
    assert process.poll() is None, "the sync finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert fetched >= 60

    store = ses_store(db_path, server.url, pacer=Pacer(1000, 100))
    try:
        sync = store.new_sync(page_size=20)
        assert sync.status(LIST).running  # the interrupted walk is still on record
        store.calls.clear()
        result = sync.sync(LIST)  # incremental: resume
        # Contacts fetched before the kill are not fetched again.
        assert store.calls["get_contact"] <= 200 - fetched + 25
        assert result.seen == 200
        assert mirror_state(store) == ses_state(ses)
        assert store.list_stats(LIST).total == 200
        assert not sync.status(LIST).running
    finally:
        store.close()


IMPORT_KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sescontacts.bulk.job_manager import JobManager
    from sescontacts.bulk.report import ImportOptions
    from sescontacts.store.ses.pacer import Pacer
    from tests.support.ses import ses_store
    db_path, url, csv_path = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    store = ses_store(db_path, url, pacer=Pacer(300, 1))
    jobs = JobManager(store.mirror.db, store, db_path.parent / "data")
    job = jobs.submit(csv_path, ImportOptions(contact_list="contacts"), file_name="people.csv", run_here=True)
    jobs.run(job.id)
    print("finished", flush=True)
    """
)


@pytest.mark.slow
def test_killed_paced_import_resumes_and_loses_nothing(tmp_path: Path, server: RunningServer, ses: Any) -> None:
    from sescontacts.bulk.job_manager import JobManager

    rows = 240
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(
        "emailAddress,unsubscribeAll,attributesData\n"
        + "".join(f'p{i:04d}@example.com,{"true" if i % 4 == 0 else "false"},"{{""i"": {i}}}"\n' for i in range(rows))
    )
    db_path = tmp_path / "mirror.db"
    process = subprocess.Popen(
        [sys.executable, "-c", IMPORT_KILL_SCRIPT, str(db_path), server.url, str(csv_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},  # this checkout's src
        stdout=subprocess.DEVNULL,  # nothing reads it: a pipe would be left open (ResourceWarning)
    )
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)  # polling the killed process's job record for progress
        try:
            with sqlite3.connect(db_path, timeout=1) as conn:
                row = conn.execute("SELECT rows_done FROM bulk_jobs").fetchone()
        except sqlite3.Error:
            continue
        if row and row[0] >= 100:
            done = row[0]
            break
    assert process.poll() is None, "the import finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 100 <= done < rows

    store = ses_store(db_path, server.url, pacer=Pacer(1000, 100))
    try:
        jobs = JobManager(store.mirror.db, store, tmp_path / "data")
        [interrupted] = jobs.recover()
        jobs.resume(interrupted.id, run_here=True)
        job = jobs.run(interrupted.id)
        assert job.state == "completed", job.error
        assert job.rows_done == rows
        assert job.counts["created"] + job.counts["unchanged"] == rows  # a re-applied batch counts 'unchanged'
        expected = {f"p{i:04d}@example.com": (i % 4 == 0, {}, f'{{"i":{i}}}') for i in range(rows)}
        assert ses_state(ses) == expected  # nothing lost, nothing doubled in SES
        assert mirror_state(store) == expected  # and the mirror agrees with SES
        assert store.list_stats(LIST).total == rows
    finally:
        store.close()


class EmptyPagesClient:
    """An SES stub whose ListContacts answers empty pages that still carry a NextToken (as real SES does when it
    filters after paging), then the contacts."""

    def __init__(self) -> None:
        self.tokens: list[str | None] = []
        stamp = 1_700_000_000.123
        self.contact = {
            "ContactListName": LIST,
            "EmailAddress": "last@example.com",
            "UnsubscribeAll": False,
            "TopicPreferences": [],
            "CreatedTimestamp": stamp,
            "LastUpdatedTimestamp": stamp,
        }

    def get_contact_list(self, **params: Any) -> dict[str, Any]:
        return {"ContactListName": LIST, "Topics": [], "CreatedTimestamp": 1.0, "LastUpdatedTimestamp": 1.0}

    def list_contacts(self, **params: Any) -> dict[str, Any]:
        token = params.get("NextToken")
        self.tokens.append(token)
        pages: dict[str | None, dict[str, Any]] = {
            None: {"Contacts": [], "NextToken": "t1"},
            "t1": {"Contacts": [], "NextToken": "t2"},
            "t2": {"Contacts": [], "NextToken": "t3"},
            "t3": {"Contacts": [self.contact]},
        }
        return pages[token]

    def get_contact(self, **params: Any) -> dict[str, Any]:
        return dict(self.contact, AttributesData='{"x": 1}')


def test_empty_pages_with_a_token_are_followed_to_the_end(tmp_path: Path) -> None:
    from sescontacts.db import Database
    from sescontacts.schema import PRODUCT_SCHEMA
    from sescontacts.store.sqlite import SqliteContactStore

    client = EmptyPagesClient()
    mirror = SqliteContactStore(Database(tmp_path / "mirror.db", PRODUCT_SCHEMA), max_lists=None, identity=EXACT)
    store = SesContactStore(mirror, region=REGION, client=client, pacer=Pacer(1000, 100), account_id="0")
    try:
        result = store.new_sync().sync(LIST, full=True)
        assert client.tokens == [None, "t1", "t2", "t3"]
        assert (result.pages, result.seen, result.fetched) == (4, 1, 1)
        assert store.mirror.get_contact(LIST, "last@example.com").attributes() == {"x": 1}
    finally:
        store.close()


def test_paced_rows_cost_two_calls_and_the_next_sync_adopts_their_timestamps(store: SesContactStore, ses: Any) -> None:
    from sescontacts.model import ContactPatch, UpsertPolicy

    store.upsert_contacts(
        LIST, [ContactPatch(f"r{i}@example.com", attributes={"i": i}) for i in range(10)], UpsertPolicy()
    )
    assert store.calls["get_contact"] == 10 and store.calls["create_contact"] == 10  # no read-back per row
    store.calls.clear()
    store.new_sync(page_size=4).sync(LIST, full=True)
    assert store.calls["get_contact"] == 0  # state known: only SES's timestamps were taken from the pages
    for i in range(10):
        listed = ses.get_contact(ContactListName=LIST, EmailAddress=f"r{i}@example.com")
        mirrored = store.mirror.get_contact(LIST, f"r{i}@example.com")
        assert mirrored.updated == round(listed["LastUpdatedTimestamp"].timestamp(), 3)
        assert mirrored.attributes() == {"i": i}
    # Changed behind our back after the write: the sync fetches it (the state no longer matches).
    store.upsert_contacts(LIST, [ContactPatch("r0@example.com", attributes={"i": 100})], UpsertPolicy())
    ses.update_contact(ContactListName=LIST, EmailAddress="r0@example.com", UnsubscribeAll=True)
    store.calls.clear()
    store.new_sync().sync(LIST, full=True)
    assert store.calls["get_contact"] == 1
    assert store.mirror.get_contact(LIST, "r0@example.com").unsubscribe_all is True


class OneContactClient:
    """An SES stub holding one contact whose LastUpdatedTimestamp is a fixed millisecond, so a test can put the
    mirror's local write time as near to it as it likes."""

    STAMP = 1_700_000_000.123

    def __init__(self, *, unsubscribe_all: bool = False) -> None:
        self.contact = {
            "ContactListName": LIST,
            "EmailAddress": "near@example.com",
            "UnsubscribeAll": unsubscribe_all,
            "TopicPreferences": [],
            "CreatedTimestamp": self.STAMP,
            "LastUpdatedTimestamp": self.STAMP,
        }

    def get_contact_list(self, **params: Any) -> dict[str, Any]:
        return {"ContactListName": LIST, "Topics": [], "CreatedTimestamp": 1.0, "LastUpdatedTimestamp": 1.0}

    def list_contacts(self, **params: Any) -> dict[str, Any]:
        return {"Contacts": [{k: v for k, v in self.contact.items() if k != "CreatedTimestamp"}]}

    def get_contact(self, **params: Any) -> dict[str, Any]:
        return dict(self.contact, AttributesData='{"theirs": 1}')


@pytest.mark.parametrize("offset", [-0.0004999, -0.0001, 0.0, 0.0001, 0.0004999])
@pytest.mark.parametrize("changed_behind_our_back", [False, True])
def test_a_write_timed_within_half_a_millisecond_of_ses_is_still_adopted_or_fetched(
    tmp_path: Path, offset: float, changed_behind_our_back: bool
) -> None:
    """Our clock at a write can read within 0.0005 s of SES's millisecond for it. The sync must not take that
    local time for SES's (and skip the contact as unchanged): it adopts SES's timestamp when the listed state is
    ours, and reads the contact when it is not."""
    from sescontacts.db import Database
    from sescontacts.schema import PRODUCT_SCHEMA
    from sescontacts.store.ses.sync import mirror_written
    from sescontacts.store.sqlite import SqliteContactStore

    client = OneContactClient(unsubscribe_all=changed_behind_our_back)
    mirror = SqliteContactStore(Database(tmp_path / "mirror.db", PRODUCT_SCHEMA), max_lists=None, identity=EXACT)
    store = SesContactStore(mirror, region=REGION, client=client, pacer=Pacer(1000, 100), account_id="0")
    try:
        local = OneContactClient.STAMP + offset
        ours = Contact("near@example.com", attributes_data='{"ours":1}', created=local, updated=local)
        mirror_written(store.mirror_lists, LIST, ours, local)  # what an upsert leaves, without a read-back
        store.calls.clear()
        store.new_sync().sync(LIST, full=True)
        mirrored = store.mirror.get_contact(LIST, "near@example.com")
        assert mirrored.updated == OneContactClient.STAMP  # SES's own time, never our clock's
        if changed_behind_our_back:
            assert store.calls["get_contact"] == 1
            assert mirrored.unsubscribe_all is True and mirrored.attributes() == {"theirs": 1}
        else:
            assert store.calls["get_contact"] == 0
            assert mirrored.attributes() == {"ours": 1}
        store.calls.clear()
        store.new_sync().sync(LIST, full=True)  # now unchanged: SES's timestamp is mirrored, nothing to read
        assert store.calls["get_contact"] == 0
    finally:
        store.close()


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (None, "Local copy not synced yet"),
        ({"last_synced": 1.7e9}, "Local copy synced 2023-11-14 22:13 UTC."),
        ({"running": True, "seen": 3000, "eta_seconds": 130.0}, "3,000 contacts listed, about 3 min left."),
        (
            {"running": True, "phase": "fetch", "to_fetch": 5000, "eta_seconds": 5000.0},
            "Reading the details of 5,000 new or changed contacts, about 84 min left.",
        ),
        # The list is synced, the same pass still walks the suppression list: not "synced" alone.
        (
            {"last_synced": 1.7e9, "suppression": SyncStatus("suppression list", running=True, seen=2000)},
            "Local copy synced 2023-11-14 22:13 UTC. <br>Updating the suppression list: 2,000 entries listed.",
        ),
        (
            {
                "last_synced": 1.7e9,
                "suppression": SyncStatus("suppression list", running=True, last_error="Access denied"),
            },
            # a refused walk waits to resume: not "updating"
            "Local copy synced 2023-11-14 22:13 UTC. <br>Last suppression list sync problem: Access denied",
        ),
    ],
)
def test_console_overview_says_how_fresh_the_mirror_is(status: dict[str, Any] | None, shown: str) -> None:
    from types import SimpleNamespace

    from sescontacts.console.app import make_jinja
    from sescontacts.console.views.contacts import MirrorState
    from sescontacts.model import ContactList, ListStats

    sync = SyncStatus(LIST, **status) if status is not None else None
    module = (
        make_jinja()
        .get_template("_partials.html")
        .make_module({"request": SimpleNamespace(), "csrf_token": "x", "list_name": LIST})
    )
    mirror = MirrorState(sync, "eu-west-1")
    html = " ".join(str(module.overview(ListStats(10, 2), ContactList(LIST), mirror)).split())
    assert "Amazon SES · eu-west-1" in html and shown in html


def test_schedule_leaves_most_of_the_rate_to_people(tmp_path: Path) -> None:
    from sescontacts.db import Database
    from sescontacts.schema import PRODUCT_SCHEMA
    from sescontacts.store.sqlite import SqliteContactStore

    mirror = SqliteContactStore(Database(tmp_path / "m.db", PRODUCT_SCHEMA), max_lists=None, identity=EXACT)
    store = SesContactStore(mirror, region=REGION, client=object(), pacer=Pacer(1, 2), account_id="0")
    try:
        sync = store.new_sync(interval=300)
        assert sync.next_wait(10) == 300  # a small list: the configured interval
        assert sync.next_wait(1000) == 3000  # a walk of 1,000 s: wait 3,000 s, syncing takes a quarter
    finally:
        store.close()


def test_changes_the_sync_sees_are_recorded_as_ses_and_ours_as_who_made_them(store: SesContactStore, ses: Any) -> None:
    """History item 1, the ses backend: what another program changed in SES is recorded as "SES" when the sync
    brings it into the mirror; our own write, adopted by the walk, stays ours."""
    history = SqliteContactHistory(store.mirror.db, store.identity)
    seed(ses, 2)
    store.new_sync(page_size=10).sync(LIST, full=True)
    bea = Actor("console", "bea")
    with acting_as(bea):
        store.create_contact(LIST, Contact("ours@example.com", attributes_data='{"x": 1}'))
    ses.update_contact(ContactListName=LIST, EmailAddress="c0001@example.com", AttributesData='{"i": 99}')
    ses.delete_contact(ContactListName=LIST, EmailAddress="c0000@example.com")
    ses.create_contact(ContactListName=LIST, EmailAddress="new@example.com")
    store.new_sync(page_size=10).sync(LIST, full=True)
    ses_sync = Actor("sync", "SES")
    updated = history.contact_history(LIST, "c0001@example.com")[0]
    assert (updated.op, updated.actor, updated.after) == ("updated", ses_sync, {"attributes": '{"i": 99}'})
    assert [(c.op, c.actor) for c in history.contact_history(LIST, "c0000@example.com")][:1] == [("deleted", ses_sync)]
    assert [(c.op, c.actor) for c in history.contact_history(LIST, "new@example.com")] == [("created", ses_sync)]
    assert [(c.op, c.actor) for c in history.contact_history(LIST, "ours@example.com")] == [("created", bea)]
