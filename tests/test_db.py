"""The SQLite file: WAL, busy timeout, versioned migrations applied once, reopening."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import sescontacts.store.sqlite  # noqa: F401 - registers the contacts schema
from sescontacts import db as dbmod
from sescontacts.db import BUSY_TIMEOUT_MS, Database
from tests.support.modes import mode, usual_umask


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "data" / "t.db")
    yield database
    database.close()


def test_creates_the_folder_and_uses_wal(database: Database) -> None:
    assert database.path.exists()
    assert database.reader().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with database.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    assert Path(str(database.path) + "-wal").exists()


def test_busy_timeout_on_every_connection(database: Database) -> None:
    assert database.reader().execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
    with database.write() as conn:
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_a_second_process_waits_for_the_writer_instead_of_failing(database: Database) -> None:
    """Like a CLI import next to a running server: the second writer waits for the lock, then succeeds."""
    other = Database(database.path)
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


def test_contacts_schema_version_is_recorded(database: Database) -> None:
    assert database.schema_version("contacts") == len(dbmod._MIGRATIONS["contacts"]) >= 1
    tables = {r[0] for r in database.reader().execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"contact_lists", "topics", "contacts", "list_daily", "schema_versions"} <= tables


def test_migrations_are_versioned_and_applied_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def v1(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("CREATE TABLE gadgets (id INTEGER PRIMARY KEY)")

    def v2(conn: sqlite3.Connection) -> None:
        calls.append(2)
        conn.execute("ALTER TABLE gadgets ADD COLUMN colour TEXT")

    monkeypatch.setitem(dbmod._MIGRATIONS, "gadgets", [v1])
    path = tmp_path / "m.db"
    Database(path).close()
    Database(path).close()
    assert calls == [1]
    monkeypatch.setitem(dbmod._MIGRATIONS, "gadgets", [v1, v2])
    database = Database(path)
    assert calls == [1, 2]
    assert database.schema_version("gadgets") == 2
    with database.write() as conn:
        conn.execute("INSERT INTO gadgets (colour) VALUES ('red')")
    database.close()
    Database(path).close()
    assert calls == [1, 2]


def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def v1(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE gadgets (id INTEGER PRIMARY KEY)")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (id INTEGER)")
        raise sqlite3.OperationalError("disk on fire")

    path = tmp_path / "m.db"
    monkeypatch.setitem(dbmod._MIGRATIONS, "gadgets", [v1])
    Database(path).close()
    monkeypatch.setitem(dbmod._MIGRATIONS, "gadgets", [v1, broken])
    with pytest.raises(sqlite3.OperationalError):
        Database(path)
    monkeypatch.setitem(dbmod._MIGRATIONS, "gadgets", [v1])
    database = Database(path)
    assert database.schema_version("gadgets") == 1
    tables = {r[0] for r in database.reader().execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "half_done" not in tables
    database.close()


def test_reopening_keeps_data_and_the_token_secret(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    first = Database(path)
    secret = first.meta("token_secret")
    with first.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    first.close()
    second = Database(path)
    assert second.meta("k") == "v"
    assert second.meta("token_secret") == secret and secret and len(secret) == 64
    assert Database(tmp_path / "other.db").meta("token_secret") != secret
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
        database = Database(tmp_path / "data" / "sescontacts.db")
        try:
            with database.write() as conn:
                conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
            database.reader().execute("SELECT * FROM meta").fetchall()
            files = {p.name: mode(p) for p in (tmp_path / "data").iterdir()}
        finally:
            database.close()
    assert files == {"sescontacts.db": 0o600, "sescontacts.db-wal": 0o600, "sescontacts.db-shm": 0o600}
    assert mode(tmp_path / "data") == 0o700


def test_a_loose_database_left_by_an_older_version_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Database(path).close()
    os.chmod(path, 0o644)
    Database(path).close()
    assert mode(path) == 0o600


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts open files through /proc")
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
