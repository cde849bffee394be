"""The suppression list on the ses backend, against a running ``sescontacts serve`` as SES (moto does not
implement the sesv2 suppression operations): writes reach SES before the mirror, reads come from the mirror,
and the mirror's walks of ListSuppressedDestinations (full, incremental by StartDate, resumed after a kill).

Runs twice, as test_store_ses.py does: unthrottled, and with the server throttled while the client's pacer
asks for twice the allowed rate, so throttles really happen and must never reach a test.
"""

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

import pytest

from sescontacts.errors import BadRequest, NotFound
from sescontacts.store.ses import SesContactStore
from sescontacts.store.ses.pacer import Pacer
from sescontacts.store.ses.suppression_sync import SUPPRESSION_PART, SuppressionSync
from sescontacts.suppression import BOUNCE, COMPLAINT, SuppressedDestination, SuppressionQuery

from .support.server import RunningServer
from .support.ses import ses_store
from .support.stores import local_ses_store, run_ses_server
from .support.suppression import clear_suppressed, seed_suppressed, suppressed_address

ROOT = Path(__file__).resolve().parent.parent
DAY = 86_400.0


@pytest.fixture(scope="module", params=["unthrottled", "throttled"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_ses_server(tmp_path_factory, throttled=request.param == "throttled") as running:
        yield running


@pytest.fixture
def ses(server: RunningServer) -> Any:
    """A plain boto3 client on the server: SES as another program (or SES itself) changes it. Emptied first."""
    clear_suppressed(server.data_dir)
    client = server.sesv2()
    client.put_account_suppression_attributes(SuppressedReasons=["BOUNCE", "COMPLAINT"])
    return client


@pytest.fixture
def store(tmp_path: Path, server: RunningServer, ses: Any) -> Iterator[SesContactStore]:
    throttled = server.env.get("throttled") == "throttled"
    with local_ses_store(tmp_path, server, "contacts", throttled=throttled) as contact_store:
        yield contact_store


def ses_entries(ses: Any) -> dict[str, tuple[str, float]]:
    """Every entry SES has: address -> (reason, LastUpdateTime), paged to the end."""
    entries: dict[str, tuple[str, float]] = {}
    token = None
    while True:
        page = ses.list_suppressed_destinations(PageSize=1000, **({"NextToken": token} if token else {}))
        for item in page["SuppressedDestinationSummaries"]:
            entries[item["EmailAddress"]] = (item["Reason"], round(item["LastUpdateTime"].timestamp(), 3))
        token = page.get("NextToken")
        if not token:
            return entries


def mirror_entries(store: SesContactStore) -> dict[str, tuple[str, float]]:
    """Every entry of the mirror, asserting that no address is there twice."""
    items: list[SuppressedDestination] = []
    token = None
    while True:
        page = store.suppression.list_suppressed(SuppressionQuery(), page_size=1000, token=token)
        items += page.items
        token = page.next_token
        if token is None:
            break
    assert len({e.email.lower() for e in items}) == len(items), "an address is mirrored twice"
    assert store.suppression.count_suppressed(SuppressionQuery()) == len(items)
    return {e.email: (e.reason, e.last_update_time) for e in items}


def test_writes_reach_ses_before_the_mirror(store: SesContactStore, ses: Any) -> None:
    suppression = store.suppression
    entry = suppression.put_suppressed("Bounced@example.com", BOUNCE, message_id="m-1")
    got = ses.get_suppressed_destination(EmailAddress="bounced@example.com")["SuppressedDestination"]
    assert (got["EmailAddress"], got["Reason"]) == ("Bounced@example.com", BOUNCE)
    assert (entry.reason, entry.message_id) == (BOUNCE, "m-1")
    assert suppression.get_suppressed("BOUNCED@example.com").email == "Bounced@example.com"  # from the mirror
    assert store.calls["get_suppressed_destination"] == 0

    suppression.delete_suppressed("bounced@example.com")
    with pytest.raises(ses.exceptions.NotFoundException):
        ses.get_suppressed_destination(EmailAddress="bounced@example.com")
    with pytest.raises(NotFound):
        suppression.get_suppressed("bounced@example.com")


def test_a_refused_write_leaves_the_mirror_as_it_was(store: SesContactStore, ses: Any) -> None:
    """SES's errors come back as the contact operations' do; the mirror changes only after SES said yes."""
    with pytest.raises(BadRequest):
        store.suppression.put_suppressed("a@example.com", "SPAM")
    assert store.calls["put_suppressed_destination"] == 0  # the reason is checked before any call
    with pytest.raises(BadRequest):
        store.suppression.put_suppressed("not an address", BOUNCE)
    assert store.suppression.count_suppressed(SuppressionQuery()) == 0


def test_deleting_what_ses_no_longer_has_is_not_found_and_leaves_the_mirror(store: SesContactStore) -> None:
    """An entry removed from SES by another program since the last walk: NotFound, and gone from the mirror."""
    store.suppression.mirror.store_entries([SuppressedDestination("stale@example.com", COMPLAINT, time.time())])
    with pytest.raises(NotFound, match="does not exist on your suppression list"):
        store.suppression.delete_suppressed("stale@example.com")
    assert store.suppression.count_suppressed(SuppressionQuery()) == 0


def test_suppressed_reasons_are_written_through_and_refreshed_by_a_sync(store: SesContactStore, ses: Any) -> None:
    store.suppression.set_suppressed_reasons([COMPLAINT])
    assert ses.get_account()["SuppressionAttributes"]["SuppressedReasons"] == [COMPLAINT]
    assert store.suppression.suppressed_reasons() == (COMPLAINT,)
    ses.put_account_suppression_attributes(SuppressedReasons=[BOUNCE])  # changed in the SES console
    store.calls.clear()
    assert store.suppression.suppressed_reasons() == (COMPLAINT,)  # the cached copy, no call
    assert sum(store.calls.values()) == 0
    store.suppression.sync.sync()
    assert store.suppression.suppressed_reasons() == (BOUNCE,)


def test_first_walk_full_then_incremental_then_full_removes(
    store: SesContactStore, ses: Any, server: RunningServer
) -> None:
    """The first walk lists everything, a page per ``page_size`` entries; the next ones list only what changed
    since (StartDate), a page or so; a deletion in SES is seen by the next full walk only."""
    seed_suppressed(server.data_dir, 250, at=time.time() - 2 * DAY)
    walker = SuppressionSync(store.ses, store.suppression.mirror, page_size=100)
    store.calls.clear()
    first = walker.sync()
    assert (first.list_name, first.kind, first.pages, first.seen, first.removed) == (
        SUPPRESSION_PART,
        "full",
        3,
        250,
        0,
    )
    assert (store.calls["get_account"], store.calls["list_suppressed_destinations"]) == (1, 3)
    assert first.calls == 4
    assert mirror_entries(store) == ses_entries(ses)

    ses.put_suppressed_destination(EmailAddress="new@example.com", Reason=COMPLAINT)
    ses.put_suppressed_destination(EmailAddress=suppressed_address(3), Reason=COMPLAINT)  # was BOUNCE
    ses.delete_suppressed_destination(EmailAddress=suppressed_address(4))
    store.calls.clear()
    second = walker.sync()
    assert (second.kind, second.pages, second.seen, second.fetched) == ("incremental", 1, 2, 2)
    assert second.calls == 2
    mirrored = mirror_entries(store)
    assert mirrored["new@example.com"][0] == mirrored[suppressed_address(3)][0] == COMPLAINT
    assert suppressed_address(4) in mirrored  # an incremental walk cannot see a deletion

    third = walker.sync(full=True)
    assert (third.kind, third.pages, third.seen, third.removed) == ("full", 3, 250, 1)
    assert mirror_entries(store) == ses_entries(ses)
    status = walker.status()
    assert not status.running and status.last_full is not None and status.last_error is None


def test_the_store_sync_walks_the_suppression_list_with_the_lists(store: SesContactStore, ses: Any) -> None:
    """``sescontacts sync`` (sync_now): the lists, then the suppression list, on the same client and pacer;
    the console's status carries the suppression walk's."""
    ses.put_suppressed_destination(EmailAddress="x@example.com", Reason=BOUNCE)
    heard: list[str] = []
    results = store.sync_now(full=True, on_progress=lambda status: heard.append(status.list_name))
    assert [r.list_name for r in results] == ["contacts", SUPPRESSION_PART]
    assert results[-1].kind == "full" and results[-1].seen == 1
    assert SUPPRESSION_PART in heard
    assert list(mirror_entries(store)) == ["x@example.com"]
    status = store.sync_status("contacts")
    assert status is not None and status.suppression is not None
    assert status.suppression.last_synced is not None and not status.suppression.running
    assert store.pacer.stats.surfaced == 0
    again = store.sync_now(full=False)
    assert again[-1].kind == "incremental"


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sescontacts.store.ses.pacer import Pacer
    from sescontacts.store.ses.suppression_sync import SuppressionSync
    from tests.support.ses import ses_store
    store = ses_store(Path(sys.argv[1]), sys.argv[2], pacer=Pacer(20, 1))
    SuppressionSync(store.ses, store.suppression.mirror, page_size=20).sync(full=True)
    print("finished", flush=True)
    """
)


@pytest.mark.slow
def test_killed_walk_resumes_and_ends_complete_without_duplicates(
    tmp_path: Path, server: RunningServer, ses: Any
) -> None:
    """A full walk killed between pages resumes from its checkpoint (NextToken and kind): the pages already
    mirrored are not listed again, the mirror ends equal to SES with each address once, and the entry SES no
    longer has is removed at the resumed walk's end."""
    entries = 400
    seed_suppressed(server.data_dir, entries, at=time.time() - DAY)
    db_path = tmp_path / "mirror.db"
    process = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(db_path), server.url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    pages_before = 0
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)  # polling the killed process's database for progress
        try:
            with sqlite3.connect(db_path, timeout=1) as conn:
                row = conn.execute("SELECT pages FROM suppression_sync WHERE state = 'running'").fetchone()
        except sqlite3.Error:
            continue
        if row and row[0] >= 5:
            break
    assert process.poll() is None, "the walk finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()

    throttled = server.env.get("throttled") == "throttled"
    pacer = Pacer(200, 10, base_backoff=0.02, max_backoff=0.2) if throttled else Pacer(1000, 100)
    store = ses_store(db_path, server.url, pacer=pacer)
    try:
        with sqlite3.connect(db_path) as conn:
            pages_before, seen_before = conn.execute("SELECT pages, seen FROM suppression_sync").fetchone()
        assert pages_before >= 5 and seen_before == 20 * pages_before
        # An entry SES does not have, mirrored long ago: the resumed full walk must still remove it.
        store.suppression.mirror.store_entries([SuppressedDestination("gone@example.com", BOUNCE, time.time() - DAY)])
        walker = SuppressionSync(store.ses, store.suppression.mirror, page_size=20)
        assert walker.status().running and walker.status().kind == "full"
        store.calls.clear()
        result = walker.sync()  # resumes: not a new walk
        pages_left = entries // 20 - pages_before
        assert store.calls["list_suppressed_destinations"] == pages_left  # no page listed twice
        assert result.calls == pages_left + 1  # and one GetAccount
        assert (result.kind, result.pages, result.seen, result.removed) == ("full", entries // 20, entries, 1)
        assert mirror_entries(store) == ses_entries(ses)
        assert len(ses_entries(ses)) == entries
        assert pacer.stats.surfaced == 0
    finally:
        store.close()
