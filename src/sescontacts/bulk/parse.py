"""The importer's parser: a file's records as batches of columns in key order, read in a process of its own.

Why a process: parsing and validating a row costs about what writing it costs, and two Python threads share
one interpreter lock, so a parser *thread* only made SQLite's writer wait (measured; see importer.py). A
child process reads, checks and sorts the next batches on the other core while this one writes, and hands
them over as pickled columns (a :class:`ParsedBatch`, a few MB for 10,000 rows). Small files are parsed in
this process (starting a process costs ~0.1 s, more than they take).

What stays exact: batches are numbered from the file's start and carry the records consumed so far (their
rows and rejects, in file order), so the importer's commit after a batch records exactly how far the file is
applied, whichever process parsed it. Within a batch, rows are sorted by key (rows with one key keep their
file order: the last row still wins), which the store's B-tree takes faster.

Duplicates (the rows whose address an earlier row of the file already had) are counted from the keys of
every batch, kept in a scratch SQLite file next to the job as one sorted run per batch (appending a run is
nearly free) and counted once, at the end, by SQLite's sorter: recording each key as it came in a B-tree cost
~2 us a row, as much as writing the contact. A resume drops the runs of batches that never committed. The
importer skips the count when every row made a new contact (or deleted one): no address then came twice.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import queue
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import orjson

from ..model import FOLDED, IDENTITIES, AddressBatch, AddressIdentity, PatchBatch, email_key
from ..private_files import ensure_private_file, make_private_dir
from .formats import Reader
from .formats.columns import Rows, falses
from .report import FileError, Reject

# Files at least this large are parsed in a child process.
CHILD_PROCESS_BYTES: Final = 4 << 20
# Parsed rows waiting for the writer (~1.5 MB pickled per 10,000): the parser works ahead while this process
# scans the file and commits, so its own tail (counting duplicates) overlaps the writer's.
_QUEUE_ROWS: Final = 80_000
_FRAME = struct.Struct("<Q")


@dataclass
class ParsedBatch:
    """One batch of a file's records: ``items`` (a :class:`PatchBatch`, or the addresses of a delete, in key
    order) with their ``keys``, and the rejected rows; ``rows_done`` and ``bytes_done`` say how far the file
    is read once this batch is applied, ``number`` which batch it is (1 is the file's first)."""

    number: int
    items: PatchBatch | AddressBatch
    keys: list[str]
    rejects: list[Reject]
    rows_done: int
    bytes_done: int
    warnings: list[str]
    more_warnings: int


def parse_batches(
    reader: Reader, *, skip: int, batch_rows: int, identity: AddressIdentity, first_number: int
) -> Iterator[ParsedBatch]:
    """The file's batches after its first ``skip`` records, numbered from ``first_number``."""
    rows_done = skip
    number = first_number
    warnings_seen = 0
    for rows, bytes_done in reader.blocks(skip=skip, size=batch_rows):
        rows_done += rows.records
        warnings = reader.warnings[warnings_seen:]
        warnings_seen += len(warnings)
        items, keys = _in_key_order(rows, identity)
        yield ParsedBatch(number, items, keys, rows.rejects, rows_done, bytes_done, warnings, reader.more_warnings)
        number += 1


def _in_key_order(rows: Rows, identity: AddressIdentity) -> tuple[PatchBatch | AddressBatch, list[str]]:
    emails = rows.emails
    if identity is FOLDED:
        keys = list(map(str.lower, emails))
        for i in falses(list(map(str.isascii, emails))):  # lower-casing is the whole rule for an ASCII address
            keys[i] = email_key(emails[i])
    else:
        keys = list(map(identity.key, emails))
    order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: one key's rows keep their order
    keys = list(map(keys.__getitem__, order))
    emails = list(map(emails.__getitem__, order))
    if identity is FOLDED:  # most addresses are their own key: one string object for both pickles once
        same = list(map(str.__eq__, emails, keys))
        if False in same:
            shared = list(keys)
            for i in falses(same):
                shared[i] = emails[i]
            emails = shared
        else:
            emails = keys
    if rows.delete:
        return AddressBatch(identity.name, keys, emails), keys
    topics = rows.topics
    batch = PatchBatch(
        identity.name,
        keys,
        emails,
        list(map(rows.unsubscribe.__getitem__, order)),
        list(map(rows.attributes.__getitem__, order)),
        None if topics is None else list(map(topics.__getitem__, order)),
        distinct=len(set(keys)) == len(keys),
        ordered=True,
    )
    return batch, keys


class SeenRuns:
    """The keys of a file's batches, one sorted run a batch, in a scratch SQLite file (0600: addresses)."""

    def __init__(self, path: Path) -> None:
        make_private_dir(path.parent)
        ensure_private_file(path)
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")  # a killed process leaves it whole
        self.conn.execute("PRAGMA synchronous = OFF")  # losing it on power loss is harmless
        self.conn.execute("PRAGMA temp_store = FILE")  # the final count's sort spills to disk, not to RSS
        self.conn.execute("CREATE TABLE IF NOT EXISTS seen_runs (b INTEGER PRIMARY KEY, keys TEXT NOT NULL)")
        # A job interrupted before runs kept one row a key: read them as runs.
        if self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'seen'").fetchone():
            self.conn.execute("BEGIN")
            self.conn.execute(
                "INSERT OR IGNORE INTO seen_runs (b, keys) SELECT b, json_group_array(k) FROM seen GROUP BY b"
            )
            self.conn.execute("DROP TABLE seen")
            self.conn.execute("COMMIT")

    def forget_after(self, batches_done: int) -> None:
        self.conn.execute("DELETE FROM seen_runs WHERE b > ?", (batches_done,))

    def record(self, number: int, keys: list[str]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO seen_runs (b, keys) VALUES (?, ?)", (number, orjson.dumps(keys).decode())
        )

    def duplicates(self, upto: int | None = None) -> int:
        """Rows of batches up to ``upto`` (all: None) whose key an earlier row had."""
        (found,) = self.conn.execute(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM seen_runs, json_each(seen_runs.keys) "
            "WHERE seen_runs.b <= ? GROUP BY json_each.value HAVING n > 1)",
            (upto if upto is not None else 2**62,),
        ).fetchone()
        return int(found)

    def close(self) -> None:
        self.conn.close()


@dataclass
class ParseSpec:
    """What the child process needs to read the file as the importer would."""

    reader: Reader
    skip: int
    batch_rows: int
    identity: str
    first_number: int
    seen_path: Path


class BatchSource:
    """A file's batches, parsed here or by a child process, then (:meth:`duplicates`) their duplicate count.

    Iterate it for the batches; ``close`` stops the parser wherever it is (the importer's commits say how
    far the file is applied). A child process starts at once, so that it parses while the caller still checks
    the file, and counts the duplicates as soon as it sent the last batch, while the caller still writes.
    """

    def __init__(self, spec: ParseSpec, *, child: bool) -> None:
        self.spec = spec
        self._counted: int | None = None
        self._read_all = False
        self._process: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        self._frames: queue.Queue[bytes | None] = queue.Queue(max(1, _QUEUE_ROWS // spec.batch_rows))
        self._errors: list[bytes] = []
        if child:
            self._start()
        self._batches: Iterator[ParsedBatch] = self._from_child() if child else self._here()

    def __iter__(self) -> Iterator[ParsedBatch]:
        return self._batches

    def duplicates(self, upto: int) -> int:
        """Rows of the batches up to number ``upto`` whose key an earlier row had: the child's count when it
        read the whole file and ``upto`` is its last batch, else counted here (the parser stopped first)."""
        if self._process is not None and self._read_all:
            frame = self._frames.get()
            if frame is not None:
                kind, payload = pickle.loads(frame)
                if kind == "end":
                    self._counted = payload
            self._finish()
        self.close()
        if self._counted is not None and self._read_all:
            return self._counted
        seen = SeenRuns(self.spec.seen_path)
        try:
            return seen.duplicates(upto)
        finally:
            seen.close()

    def _here(self) -> Iterator[ParsedBatch]:
        seen = SeenRuns(self.spec.seen_path)
        try:
            yield from _recorded_batches(self.spec, seen)
        finally:
            seen.close()

    def _start(self) -> None:
        """Start the child, hand it the spec, and read its output (frames, errors) on threads of their own."""
        # The child imports this very package, wherever this process found it.
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        process = subprocess.Popen(
            [sys.executable, "-c", "from sescontacts.bulk.parse import child_main; child_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")},
        )
        self._process = process
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        spec = pickle.dumps(self.spec, pickle.HIGHEST_PROTOCOL)
        stdin = process.stdin

        def hand_over() -> None:  # the pipe holds 64 KiB: the caller does not wait for the child to start
            with contextlib.suppress(OSError), stdin:
                stdin.write(spec)

        self._threads = [
            threading.Thread(target=hand_over, name="sescontacts-parse-in", daemon=True),
            threading.Thread(
                target=_pump, args=(process.stdout, self._frames), name="sescontacts-parse-out", daemon=True
            ),
            threading.Thread(
                target=_drain, args=(process.stderr, self._errors), name="sescontacts-parse-err", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def _from_child(self) -> Iterator[ParsedBatch]:
        process = self._process
        assert process is not None
        while True:
            frame = self._frames.get()
            if frame is None:
                self._finish()
                detail = b"".join(self._errors).decode("utf-8", "replace").strip().splitlines()
                raise RuntimeError(
                    f"the file's parser stopped (exit status {process.returncode})"
                    + (f": {detail[-1]}" if detail else "")
                )
            kind, payload = pickle.loads(frame)
            if kind == "batch":
                yield payload
            elif kind == "error":
                message, file, line, column = payload
                raise FileError(message, file=file, line=line, column=column)
            else:  # "done": the count follows (see duplicates)
                self._read_all = True
                return

    def close(self) -> None:
        """Stop the parser (a child process is terminated; its batches past the last commit are dropped)."""
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
        self._finish()

    def _finish(self) -> None:
        """Reap the child, its pipes and the threads that read them."""
        process = self._process
        if process is None:
            return
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for thread in self._threads:
            while thread.is_alive():  # the pump may wait on a full queue nobody reads any more
                with contextlib.suppress(queue.Empty):
                    self._frames.get(timeout=0.05)
            thread.join()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        self._process = None


def _recorded_batches(spec: ParseSpec, seen: SeenRuns) -> Iterator[ParsedBatch]:
    """The spec's batches, each one's keys recorded in ``seen`` (for the duplicate count) as it goes: what the
    parser does, in this process or in the child."""
    for batch in parse_batches(
        spec.reader,
        skip=spec.skip,
        batch_rows=spec.batch_rows,
        identity=IDENTITIES[spec.identity],
        first_number=spec.first_number,
    ):
        seen.record(batch.number, batch.keys)
        yield batch


def _pump(out: IO[bytes], frames: queue.Queue[bytes | None]) -> None:
    """Move the child's frames into the queue as they come (the child then parses ahead while this process
    writes); None at the end of its output."""
    try:
        while True:
            header = out.read(_FRAME.size)
            if len(header) < _FRAME.size:
                break
            (size,) = _FRAME.unpack(header)
            frame = out.read(size)
            if len(frame) < size:
                break
            frames.put(frame)
    finally:
        frames.put(None)


def _drain(pipe: IO[bytes], into: list[bytes]) -> None:
    into.append(pipe.read())


def child_main() -> None:
    """The child: read the spec on stdin, write frames on stdout until the file ends or the parent goes."""
    gc.disable()  # the parser makes no reference cycles; collections only walked its live batches
    spec: ParseSpec = pickle.load(sys.stdin.buffer)
    out = sys.stdout.buffer

    def send(kind: str, payload: Any) -> None:
        data = pickle.dumps((kind, payload), pickle.HIGHEST_PROTOCOL)
        out.write(_FRAME.pack(len(data)))
        out.write(data)
        out.flush()

    seen = SeenRuns(spec.seen_path)
    try:
        for batch in _recorded_batches(spec, seen):
            send("batch", batch)
        send("done", None)
        send("end", seen.duplicates())  # the importer may not wait for it (see importer.run_import)
    except FileError as exc:
        send("error", (exc.message, exc.file, exc.line, exc.column))
    except BrokenPipeError:  # the importer stopped reading (cancelled, or gone)
        with contextlib.suppress(OSError):
            os.close(1)
    finally:
        seen.close()


def temporary_seen_path() -> Path:
    """A scratch file for a dry run's runs (removed by :func:`remove_seen`)."""
    fd, name = tempfile.mkstemp(prefix="sescontacts-seen-", suffix=".db")
    os.close(fd)
    return Path(name)


def remove_seen(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.unlink(f"{path}{suffix}")
