"""The SQLite file: one writer connection behind a lock, one reader connection per thread, the schema.

Every store and job record lives in one file in the data directory. WAL mode lets readers (the console,
ListContacts) go on while an import commits batches; ``synchronous=NORMAL`` loses nothing on a process kill.
Writes from several processes (a CLI import next to a running server) take turns fairly: see :meth:`Database.write`.

The tables are declared, not registered: each module that owns tables declares a :class:`Migrations` value,
and whoever opens a :class:`Database` passes the whole schema (the product's is ``schema.PRODUCT_SCHEMA``).
The tables a file has therefore never depend on which modules happened to be imported first. This module
sits below every owner and imports none of them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .private_files import ensure_private_file, make_private_dir, tighten

BUSY_TIMEOUT_MS = 10_000
# A writer waiting for another process's write lock tries again this often (SQLite's own busy handler sleeps
# up to 100 ms between tries, so a waiter missed every short gap between an import's commits: p99 1.2 s).
LOCK_POLL_S = 0.001
# A write transaction that held the lock this long then lets queued writers (this process's threads, other
# processes') go first, for at most YIELD_MAX_S; writes shorter than that (every API call) never wait here.
YIELD_AFTER_S = 0.015
YIELD_MAX_S = 0.03  # bounds what the yield costs an import: 100 ms cost it 2.1x next to 8 busy writers

Migration = Callable[[sqlite3.Connection], None]
# What a Python function called from SQL may return (sqlite3 turns it into a SQL value).
SqlValue = str | bytes | int | float | None


class WriteWouldWait(Exception):
    """A write under :meth:`Database.without_waiting` found the write lock taken; nothing was written."""


@dataclass(frozen=True)
class SqlFunction:
    """A function written in Python that SQL calls, registered on every connection (writer and readers).

    It must be deterministic and never raise (an exception inside SQLite fails the whole query)."""

    name: str
    arity: int
    func: Callable[..., SqlValue]


@dataclass(frozen=True)
class Migrations:
    """One owner's tables: its migrations in order, and the SQL functions its queries call.

    Versions count per owner (``schema_versions``): version n means the first n steps ran. Steps are only
    ever appended, and an owner's name never changes, so a file written by any earlier version migrates.
    """

    owner: str
    steps: tuple[Migration, ...]
    functions: tuple[SqlFunction, ...] = ()
    # Run at the start of every write transaction, inside it, and again by every write nested in it (the contact
    # history records who writes: the writes read what this left in its one-row table, whichever process writes
    # next; a nested write may act for someone else than the outer one).
    on_begin: tuple[Migration, ...] = ()

    @property
    def version(self) -> int:
        """The version a database has once these migrations ran."""
        return len(self.steps)


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run several statements inside the current transaction (``executescript`` would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _connect(path: Path, functions: Sequence[SqlFunction]) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32000")
    for function in functions:
        conn.create_function(function.name, function.arity, function.func, deterministic=True)
    return conn


class Database:
    """Opens one SQLite file and brings it to ``schema`` (creating or migrating it). Safe to share across threads.

    ``schema`` is every owner whose tables the file holds, in the order they are created; the file is
    migrated once, here, so every table exists before any other code runs a query.
    """

    def __init__(self, path: Path | str, schema: Sequence[Migrations]) -> None:
        owners = [part.owner for part in schema]
        if len(set(owners)) != len(owners):
            raise ValueError(f"an owner appears twice in the schema: {owners}")
        self.path = Path(path)
        self.schema = tuple(schema)
        self._functions = tuple(function for part in self.schema for function in part.functions)
        self._on_begin: tuple[Migration, ...] = ()  # set once the schema exists (the hooks write to it)
        make_private_dir(self.path.parent)
        # SQLite creates the file with the umask's mode and gives -wal/-shm the database file's mode: create
        # it 0600 first. Companions left by an older version are tightened here too.
        ensure_private_file(self.path)
        for suffix in ("-wal", "-shm", "-journal"):
            tighten(Path(f"{self.path}{suffix}"))
        self._write_lock = threading.RLock()
        self.yield_after_s = YIELD_AFTER_S  # how long a transaction holds the lock before it yields after
        self._write_owner: int | None = None  # the thread inside write(), whose nested writes join it
        self._no_wait = threading.local()  # .on: this thread is inside without_waiting()
        self._writer = _connect(self.path, self._functions)
        self._writer.execute("PRAGMA journal_mode = WAL")
        # BEGIN IMMEDIATE waits in _begin's own loop; in WAL mode nothing inside a transaction waits on a lock.
        self._writer.execute("PRAGMA busy_timeout = 0")
        self._turns = _WriterTurns(Path(f"{self.path}-writers"))
        self._local = threading.local()
        # Each thread's read connection, by thread: one whose thread ended is closed when the next is opened.
        self._readers: dict[threading.Thread, sqlite3.Connection] = {}
        self._readers_lock = threading.Lock()
        self._checkpointer: tuple[threading.Thread, threading.Event] | None = None
        with self.write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions (owner TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('token_secret', ?)", (secrets.token_hex(32),))
        for part in self.schema:
            self._migrate(part)
        self._on_begin = tuple(hook for part in self.schema for hook in part.on_begin)

    def _migrate(self, part: Migrations) -> None:
        """Apply the owner's steps not yet applied, in one transaction (a failing step leaves its version)."""
        with self.write() as conn:
            row = conn.execute("SELECT version FROM schema_versions WHERE owner = ?", (part.owner,)).fetchone()
            current = row[0] if row else 0
            for version, migration in enumerate(part.steps[current:], start=current + 1):
                migration(conn)
                conn.execute(
                    "INSERT INTO schema_versions (owner, version) VALUES (?, ?) "
                    "ON CONFLICT(owner) DO UPDATE SET version = excluded.version",
                    (part.owner, version),
                )

    def schema_version(self, owner: str) -> int:
        row = self.reader().execute("SELECT version FROM schema_versions WHERE owner = ?", (owner,)).fetchone()
        return row[0] if row else 0

    def meta(self, key: str) -> str | None:
        row = self.reader().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE, so it never fails half-way on a lock upgrade).

        Writers take turns: one waiting for the lock announces itself (:class:`_WriterTurns`) and polls for it
        every millisecond, and a transaction that held the lock for long (an import's or bulk job's batch)
        lets every announced writer, in any process, go before its next one. An API write next to an import
        therefore waits for at most the one batch in progress, not for a run of them.

        Under :meth:`without_waiting` the first write raises :class:`WriteWouldWait` instead of waiting.
        """
        if self._write_owner == threading.get_ident():  # nested use joins the outer transaction
            for hook in self._on_begin:  # (its actor may differ from the outer one's: a rule acting per event)
                hook(self._writer)
            yield self._writer
            return
        waits = not getattr(self._no_wait, "on", False)
        if not waits:
            self._no_wait.on = False  # only the first write may be refused: a later one follows a commit
        self._turns.enter()
        held = 0.0
        try:
            if not self._write_lock.acquire(blocking=waits):
                raise WriteWouldWait
            try:
                conn = self._writer
                self._begin(conn, waits=waits)
                self._write_owner = threading.get_ident()
                started = time.perf_counter()
                try:
                    for hook in self._on_begin:
                        hook(conn)
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                else:
                    conn.execute("COMMIT")
                finally:
                    self._write_owner = None
                held = time.perf_counter() - started
            finally:
                self._write_lock.release()
        finally:
            self._turns.leave()
        if held >= self.yield_after_s and waits:
            self._turns.let_others_go(YIELD_MAX_S)

    def writers_waiting(self) -> bool:
        """From inside :meth:`write`: whether another writer (a thread of this process, or another process)
        waits for the lock. A transaction that may stop early, as the search indexer's, then gives the lock
        back instead of running to its own end."""
        return self._turns.others_waiting(mine=1)

    @contextmanager
    def without_waiting(self) -> Iterator[None]:
        """In this thread, the block's first :meth:`write` raises :class:`WriteWouldWait`, having written
        nothing, when the write lock is taken (by this process's other threads or another process) instead
        of waiting for it. The SES API runs short operations on its event loop this way and hands only
        those that would wait to a worker thread (sesapi/app.py)."""
        self._no_wait.on = True
        try:
            yield
        finally:
            self._no_wait.on = False

    def _begin(self, conn: sqlite3.Connection, *, waits: bool = True) -> None:
        """BEGIN IMMEDIATE; while another connection holds the write lock, announce this one and try every
        LOCK_POLL_S (the uncontended path makes no system call for the announcement). ``waits=False``: one
        try, then :class:`WriteWouldWait`."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if not waits:
                    raise WriteWouldWait from None
                if time.monotonic() >= deadline:
                    raise
            self._turns.announce()
            time.sleep(LOCK_POLL_S)

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (autocommit: each statement sees the latest commit).

        The server's worker threads come and go (anyio ends one that idled 10 s), so opening a connection
        for a new thread also closes those of threads that ended: kept, each leaked two file descriptors
        until the process had none left.
        """
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, self._functions)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._readers_lock:
                for thread in [t for t in self._readers if not t.is_alive()]:
                    self._readers.pop(thread).close()
                self._readers[threading.current_thread()] = conn
        return conn

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that must agree with each other (a page and its list) in one read transaction."""
        conn = self.reader()
        if conn.in_transaction:  # nested use joins the outer snapshot ("BEGIN" inside one is an error)
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def start_checkpointer(self, interval: float = 0.5) -> None:
        """Checkpoint the WAL from a background thread instead of inside whichever commit crosses SQLite's
        auto-checkpoint threshold. A checkpoint flushes to disk; inline, it stalled one request in ~200 by
        milliseconds (measured: ~15-20% of single-contact write throughput), and an import's commits by a
        second per million rows. For the long-running server and import jobs; other CLI commands keep the
        auto-checkpoint. PASSIVE never blocks writers or readers."""
        if self._checkpointer is not None:
            return
        stop = threading.Event()

        def run() -> None:
            conn = _connect(self.path, ())
            try:
                while not stop.wait(interval):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                conn.close()

        with self._write_lock:
            self._writer.execute("PRAGMA wal_autocheckpoint = 0")
        thread = threading.Thread(target=run, name="sqlite-checkpointer", daemon=True)
        self._checkpointer = (thread, stop)
        thread.start()

    @contextmanager
    def checkpoints_on_the_side(self) -> Iterator[None]:
        """:meth:`start_checkpointer` for the block (an import job's batches), unless it runs already."""
        started = self._checkpointer is None
        if started:
            self.start_checkpointer()
        try:
            yield
        finally:
            if started:
                self.stop_checkpointer()

    def stop_checkpointer(self) -> None:
        if self._checkpointer is None:
            return
        thread, stop = self._checkpointer
        stop.set()
        thread.join()
        self._checkpointer = None
        with self._write_lock:
            self._writer.execute("PRAGMA wal_autocheckpoint = 1000")

    def close(self) -> None:
        self.stop_checkpointer()
        with self._readers_lock:
            for conn in self._readers.values():
                conn.close()
            self._readers.clear()
        with self._write_lock:
            self._writer.close()
        self._turns.close()


class _WriterTurns:
    """Who is waiting to write, across connections: a shared ``flock`` on a companion file, taken by a
    :class:`Database` whose BEGIN found the lock taken and held until none of its threads is inside
    :meth:`Database.write` (counted per thread here). One
    that just committed a long transaction probes for another's shared lock (a non-blocking exclusive one,
    dropped at once) and for its own queued threads, and waits while either is there. ``flock`` locks belong
    to the open file, so two Databases in one process see each other too; the kernel drops a dead process's
    lock, so a crash never leaves anyone waiting.
    """

    def __init__(self, path: Path) -> None:
        ensure_private_file(path)
        self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._inside = 0  # threads in write(), waiting or writing
        self._announced = False

    def enter(self) -> None:
        with self._lock:
            self._inside += 1

    def announce(self) -> None:
        """Another connection holds the lock: hold the shared lock until this Database's queue drains."""
        with self._lock:
            if not self._announced:
                fcntl.flock(self._fd, fcntl.LOCK_SH)
                self._announced = True

    def leave(self) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0 and self._announced:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                self._announced = False

    def others_waiting(self, mine: int = 0) -> bool:
        """Whether a writer other than this Database's ``mine`` threads (1 from inside a transaction) waits or
        writes."""
        with self._lock:
            if self._inside > mine:
                return True
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return True
                raise
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            return False

    def let_others_go(self, limit: float) -> None:
        """Wait (at most ``limit`` seconds) until no other writer is waiting or writing."""
        deadline = time.monotonic() + limit
        while self.others_waiting() and time.monotonic() < deadline:
            time.sleep(LOCK_POLL_S)

    def close(self) -> None:
        os.close(self._fd)
