"""The SQLite file: WAL, busy timeout, the declared schema migrated once at open, reopening."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sescontacts.accounts.users import Users
from sescontacts.db import BUSY_TIMEOUT_MS, Database, Migration, Migrations, SqlFunction, WriteWouldWait
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.store.sqlite import SqliteContactStore
from tests.support.modes import mode, usual_umask


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "data" / "t.db", PRODUCT_SCHEMA)
    yield database
    database.close()


def test_creates_the_folder_and_uses_wal(database: Database) -> None:
    assert database.path.exists()
    assert database.reader().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with database.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    assert Path(str(database.path) + "-wal").exists()


def test_busy_timeout_on_every_connection(database: Database) -> None:
    """Readers wait in SQLite's busy handler; the writer waits in write()'s own loop (tests below)."""
    assert database.reader().execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
    with database.write() as conn:
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_a_second_process_waits_for_the_writer_instead_of_failing(database: Database) -> None:
    """Like a CLI import next to a running server: the second writer waits for the lock, then succeeds."""
    other = Database(database.path, PRODUCT_SCHEMA)
    holding = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def hold_the_lock() -> None:
        with database.write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('first', '1')")
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert holding.wait(10)

    def write_too() -> None:
        try:
            with other.write() as conn:
                conn.execute("INSERT INTO meta (key, value) VALUES ('second', '2')")
        except BaseException as exc:  # recorded, asserted below
            errors.append(exc)

    writer = threading.Thread(target=write_too)
    writer.start()
    writer.join(0.3)  # it cannot finish while the lock is held...
    assert writer.is_alive()
    release.set()  # ...and finishes once it is released
    holder.join(10)
    writer.join(10)
    assert errors == []
    assert {database.meta("first"), database.meta("second")} == {"1", "2"}
    other.close()


@pytest.mark.parametrize("where", ["thread", "process"])
def test_a_transaction_sees_a_writer_waiting_for_the_lock(database: Database, where: str) -> None:
    """What lets a transaction that may stop early (the search indexer's) give the lock back: a writer of this
    process or of another one waiting for it shows, and none shows once it has gone."""
    other = Database(database.path, PRODUCT_SCHEMA) if where == "process" else database
    with database.write():
        assert not database.writers_waiting()
        writer = threading.Thread(target=_write_once, args=(other,))
        writer.start()
        deadline = time.monotonic() + 10
        while not database.writers_waiting():  # the writer has announced itself (polling for a state)
            assert time.monotonic() < deadline, "the waiting writer never showed"
            time.sleep(0.001)
    writer.join(10)
    with database.write():
        assert not database.writers_waiting()
    if other is not database:
        other.close()


def _write_once(database: Database) -> None:
    with database.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('waited', '1')")


@pytest.mark.parametrize("other_thread_too", [False, True])
def test_a_writer_is_not_starved_by_back_to_back_long_transactions(database: Database, other_thread_too: bool) -> None:
    """An import commits batch after batch on its own connection; a writer on another one (the server) still
    gets its turn after the batch in progress, not after all of them (SQLite's busy handler alone would
    sleep through every short gap between two commits and give up after the busy timeout)."""
    importer = Database(database.path, PRODUCT_SCHEMA)
    importer.yield_after_s = 0.0  # every transaction counts as a long batch here
    started = threading.Event()
    stop = threading.Event()
    batches = 0

    def import_batches() -> None:
        nonlocal batches
        while not stop.is_set():
            with importer.write() as conn:
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('batch', ?)", (str(batches),))
                time.sleep(0.002)  # the batch's work (it also lets the other threads run: one GIL here)
                batches += 1
            started.set()

    thread = threading.Thread(target=import_batches)
    thread.start()
    try:
        assert started.wait(10)
        writers = 2 if other_thread_too else 1
        batches_seen: list[int] = []

        def write(n: int) -> None:
            for i in range(10):
                before = batches
                with database.write() as conn:
                    conn.execute("INSERT INTO meta (key, value) VALUES (?, 'w')", (f"w{n}-{i}",))
                batches_seen.append(batches - before)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        stop.set()
        thread.join(10)
        importer.close()
    assert len(batches_seen) == 10 * writers
    # Each write waited for about the one batch in progress (a generous bound: starved, it waits for hundreds).
    assert max(batches_seen) <= 10
    assert all(database.meta(f"w{n}-{i}") == "w" for n in range(writers) for i in range(10))


def test_a_writer_that_dies_waiting_leaves_no_one_waiting(database: Database, tmp_path: Path) -> None:
    """The announcement is a lock the kernel drops with its holder: a writer killed while waiting for its
    turn does not hold back the next long transaction's commit."""
    script = (
        "import sys, os, signal\n"
        "from sescontacts.db import Database\n"
        "from sescontacts.schema import PRODUCT_SCHEMA\n"
        "db = Database(sys.argv[1], PRODUCT_SCHEMA)\n"
        "db._turns.enter()\n"
        "db._turns.announce()\n"
        "print('waiting', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    process = subprocess.run([sys.executable, "-c", script, str(database.path)], capture_output=True, text=True)
    assert process.stdout == "waiting\n"
    assert not database._turns.others_waiting()


def test_readers_see_commits_but_not_open_transactions(database: Database) -> None:
    seen: list[str | None] = []
    with database.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        reader = threading.Thread(target=lambda: seen.append(database.meta("k")))
        reader.start()
        reader.join(10)
    assert seen == [None]
    assert database.meta("k") == "v"


def test_a_failed_write_rolls_back(database: Database) -> None:
    with pytest.raises(RuntimeError), database.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        raise RuntimeError("boom")
    assert database.meta("k") is None


def tables(database: Database) -> set[str]:
    return {r[0] for r in database.reader().execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def gadgets(*steps: Migration) -> tuple[Migrations]:
    return (Migrations("gadgets", steps),)


def test_every_owner_of_the_product_schema_is_at_its_version(database: Database) -> None:
    assert [part.owner for part in PRODUCT_SCHEMA] == [
        "contacts",
        "ses_sync",
        "bulk",
        "console",
        "suppression",
        "events",
        "sns",
        "history",
        "undo",
    ]
    for part in PRODUCT_SCHEMA:
        assert database.schema_version(part.owner) == part.version >= 1
    assert {"contact_lists", "topics", "contacts", "list_daily", "schema_versions"} <= tables(database)
    assert {"ses_sync", "ses_pending", "ses_unfetched", "bulk_jobs", "console_users"} <= tables(database)
    assert {"suppressed_destinations", "delivery_events", "address_marks", "event_daily"} <= tables(database)
    assert {"contact_changes", "history_actors", "history_context"} <= tables(database)
    assert {"undo_conflicts"} <= tables(database)


def test_only_the_schema_given_is_created(tmp_path: Path) -> None:
    """The tables are what the opener declares, never what other modules happened to import."""

    def v1(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE gadgets (id INTEGER)")

    database = Database(tmp_path / "g.db", gadgets(v1))
    assert tables(database) == {"schema_versions", "meta", "gadgets"}
    assert database.schema_version("gadgets") == 1 and database.schema_version("contacts") == 0
    database.close()


def test_an_owner_declared_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="twice"):
        Database(tmp_path / "twice.db", gadgets() + gadgets())


def test_sql_functions_come_with_the_schema_on_every_connection(tmp_path: Path) -> None:
    twice = SqlFunction("twice", 1, lambda value: value * 2)
    database = Database(tmp_path / "f.db", (Migrations("maths", (), functions=(twice,)),))
    seen: list[int] = []
    reader = threading.Thread(target=lambda: seen.append(database.reader().execute("SELECT twice(21)").fetchone()[0]))
    reader.start()
    reader.join(10)
    with database.write() as conn:
        seen.append(conn.execute("SELECT twice(2)").fetchone()[0])
    assert seen == [42, 4]
    database.close()
    plain = Database(tmp_path / "plain.db", ())
    with pytest.raises(sqlite3.OperationalError, match="no such function"):
        plain.reader().execute("SELECT twice(1)")
    plain.close()


def test_a_data_dir_made_before_schemas_were_declared_opens_and_migrates(tmp_path: Path) -> None:
    """The dump is a local data dir's database as the previous version made it (tables registered on import:
    contacts, bulk, console, no ses_sync). It opens with every owner at its version and nothing lost: the
    contacts (the non-ASCII one by either spelling), the console user, and the secrets that sign page tokens
    and session cookies, so links and logins made before the upgrade still work."""
    path = tmp_path / "data" / "sescontacts.db"
    path.parent.mkdir()
    dump = (Path(__file__).parent / "fixtures" / "db-8b895aa-local.sql").read_text()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(dump)
        before = dict(conn.execute("SELECT key, value FROM meta"))
    assert set(before) == {"token_secret", "console_session_secret"}

    database = Database(path, PRODUCT_SCHEMA)
    assert {part.owner: database.schema_version(part.owner) for part in PRODUCT_SCHEMA} == {
        part.owner: part.version for part in PRODUCT_SCHEMA
    }
    assert {"ses_sync", "ses_pending", "ses_unfetched"} <= tables(database)  # created for the ses backend
    assert (
        dict(
            database.reader().execute(
                "SELECT key, value FROM meta WHERE key IN ('token_secret', 'console_session_secret')"
            )
        )
        == before
    )
    store = SqliteContactStore(database)
    assert store.get_contact("news", "ZOË@example.com").email == "Zoë@Example.com"
    assert store.get_contact("news", "zoe\u0308@example.com").topic_preferences == {"weekly": "OPT_OUT"}
    assert store.get_list("news").description == "old"
    assert [user.name for user in Users(database).list()] == ["admin"]
    database.close()


def test_owners_at_earlier_versions_migrate_to_the_current_ones(tmp_path: Path) -> None:
    """A file whose owners ran only their first step (an older release) runs the remaining steps at open."""
    path = tmp_path / "older.db"
    Database(path, tuple(Migrations(part.owner, part.steps[:1], part.functions) for part in PRODUCT_SCHEMA)).close()
    database = Database(path, PRODUCT_SCHEMA)
    for part in PRODUCT_SCHEMA:
        assert database.schema_version(part.owner) == part.version
    columns = {r[1] for r in database.reader().execute("PRAGMA table_info(ses_sync)")}
    assert "phase" in columns  # ses_sync's third step
    assert {"console_sessions", "console_login_attempts"} <= tables(database)
    database.close()


def test_migrations_are_versioned_and_applied_once(tmp_path: Path) -> None:
    calls: list[int] = []

    def v1(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("CREATE TABLE gadgets (id INTEGER PRIMARY KEY)")

    def v2(conn: sqlite3.Connection) -> None:
        calls.append(2)
        conn.execute("ALTER TABLE gadgets ADD COLUMN colour TEXT")

    path = tmp_path / "m.db"
    Database(path, gadgets(v1)).close()
    Database(path, gadgets(v1)).close()
    assert calls == [1]
    database = Database(path, gadgets(v1, v2))
    assert calls == [1, 2]
    assert database.schema_version("gadgets") == 2
    with database.write() as conn:
        conn.execute("INSERT INTO gadgets (colour) VALUES ('red')")
    database.close()
    Database(path, gadgets(v1, v2)).close()
    assert calls == [1, 2]


def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    def v1(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE gadgets (id INTEGER PRIMARY KEY)")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (id INTEGER)")
        raise sqlite3.OperationalError("disk on fire")

    path = tmp_path / "m.db"
    Database(path, gadgets(v1)).close()
    with pytest.raises(sqlite3.OperationalError):
        Database(path, gadgets(v1, broken))
    database = Database(path, gadgets(v1))
    assert database.schema_version("gadgets") == 1
    assert "half_done" not in tables(database)
    database.close()


def test_reopening_keeps_data_and_the_token_secret(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    first = Database(path, PRODUCT_SCHEMA)
    secret = first.meta("token_secret")
    with first.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    first.close()
    second = Database(path, PRODUCT_SCHEMA)
    assert second.meta("k") == "v"
    assert second.meta("token_secret") == secret and secret and len(secret) == 64
    assert Database(tmp_path / "other.db", PRODUCT_SCHEMA).meta("token_secret") != secret
    second.close()


def test_snapshots_nest_and_see_one_state(database: Database) -> None:
    with database.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'before')")
    with database.snapshot() as outer:
        assert outer.execute("SELECT value FROM meta WHERE key = 'k'").fetchone()[0] == "before"
        with database.write() as conn:
            conn.execute("UPDATE meta SET value = 'after' WHERE key = 'k'")
        with database.snapshot() as inner:  # joins the outer read transaction: same state
            assert inner.execute("SELECT value FROM meta WHERE key = 'k'").fetchone()[0] == "before"
    assert database.meta("k") == "after"


def test_the_database_and_its_wal_and_shm_are_private_under_the_usual_umask(tmp_path: Path) -> None:
    """The file holds the session-signing secret and password hashes: no other local user may read it."""
    with usual_umask():
        database = Database(tmp_path / "data" / "sescontacts.db", PRODUCT_SCHEMA)
        try:
            with database.write() as conn:
                conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
            database.reader().execute("SELECT * FROM meta").fetchall()
            files = {p.name: mode(p) for p in (tmp_path / "data").iterdir()}
        finally:
            database.close()
    assert files == {
        "sescontacts.db": 0o600,
        "sescontacts.db-wal": 0o600,
        "sescontacts.db-shm": 0o600,
        "sescontacts.db-writers": 0o600,  # empty: writers announce themselves with a lock on it
    }
    assert mode(tmp_path / "data") == 0o700


def test_a_loose_database_left_by_an_older_version_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Database(path, PRODUCT_SCHEMA).close()
    os.chmod(path, 0o644)
    Database(path, PRODUCT_SCHEMA).close()
    assert mode(path) == 0o600


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_finished_threads_read_connection_is_closed(database: Database) -> None:
    """Each thread gets its own read connection; the server's worker threads come and go (anyio ends one idle
    for 10 s), so a connection kept after its thread ended leaked two file descriptors per thread until the
    process ran out and every page failed with 'unable to open database file'."""
    database.reader()
    before = open_files()
    for _ in range(50):
        worker = threading.Thread(target=lambda: database.reader().execute("SELECT 1").fetchone())
        worker.start()
        worker.join()
    reader = threading.Thread(target=lambda: database.reader().execute("SELECT 1").fetchone())
    reader.start()
    reader.join()
    assert open_files() - before <= 4
    assert database.reader().execute("SELECT count(*) FROM meta").fetchone()[0] >= 0  # this thread's still works


@pytest.mark.parametrize("holder", ["this process's other thread", "another connection"])
def test_a_write_without_waiting_is_refused_while_the_lock_is_taken_and_writes_nothing(
    database: Database, tmp_path: Path, holder: str
) -> None:
    """The SES API runs short writes on its event loop this way: a refused one has written nothing, so it
    can run again in a worker thread; once a write went through, the block's later writes wait as usual."""
    other = database if holder.startswith("this") else Database(database.path, PRODUCT_SCHEMA)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with other.write():
            holding.set()
            release.wait(30)

    def put(key: str) -> None:
        with database.write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, 'x')", (key,))

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        holding.wait(10)
        with database.without_waiting(), pytest.raises(WriteWouldWait):
            put("refused")
    finally:
        release.set()
        thread.join()
    assert database.meta("refused") is None
    holding.clear()
    release.clear()
    with database.without_waiting():
        put("first")
        thread = threading.Thread(target=hold)
        thread.start()
        holding.wait(10)
        threading.Timer(0.2, release.set).start()
        put("second")  # waits for the holder instead of raising
    thread.join()
    assert (database.meta("first"), database.meta("second")) == ("x", "x")
    if other is not database:
        other.close()
