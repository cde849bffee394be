"""The import pipeline: read records, group them in batches, apply each batch in one transaction, report.

The file is read as a stream, 10,000 records at a time, so memory stays flat whatever the file size. A big
file is parsed by a child process (:mod:`.parse`) while this one writes: the two cores overlap parsing and
writing. (A parser *thread* was measured and dropped: a second Python thread only made SQLite's executemany
wait for the interpreter lock on every row.) Batches arrive as columns in key order (a
:class:`~sescontacts.model.PatchBatch`), which the local store writes without a patch object per row.

Each batch goes through ``ContactStore.upsert_contacts`` / ``delete_contacts`` (so the upsert rule, the
never-resubscribe guards and the list's counters live in one place) inside one ``store.atomic()`` block that
also records the job's progress (``on_commit``), so a killed process leaves exactly the committed batches and
a job that says how far it got. (A store that is not ``transactional``, the ses backend, commits each write
on SES as it goes; the progress is then recorded right after the batch, and re-running a batch is safe.)

Duplicate addresses in one file: the last row wins (batches are applied in order; within a batch, rows with
one key keep their order). Which rows name one contact is the store's rule (``ContactStore.identity``): on the
local backend ``A@x.com`` and ``a@x.com`` are one, on the ses backend two, as SES may keep them. Duplicates
are *counted* once the batches are applied, from the keys of every batch kept next to the job
(:class:`~.parse.SeenRuns`), so a resume drops the keys of batches that never committed.
"""

from __future__ import annotations

import contextlib
import csv
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from ..model import AddressBatch, ContactPatch, Outcome, PatchBatch, RowResult, UpsertPolicy
from ..private_files import make_private_dir, open_private
from ..store.base import ContactStore
from .formats import ReadOptions, SafeCsvWriter, decode_cell, open_reader, validate_structure
from .formats.detect import peek, scan
from .parse import CHILD_PROCESS_BYTES, BatchSource, ParseSpec, SeenRuns, remove_seen, temporary_seen_path
from .report import FileError, ImportOptions, ImportReport, Preview, PreviewRow, Reject, empty_counts

BATCH_ROWS: Final = 10_000
COMMIT_ROWS: Final = 50_000
# A commit is also due once its transaction has held the write lock this long: a 50k-row commit held it
# ~250-700 ms, and every API or console write waited that long behind it (bench api, writes next to an
# import of 1M rows: p99 741 ms, worst 927 ms; with this bound p99 130 ms, worst 151 ms, the import ~4% slower).
COMMIT_SECONDS: Final = 0.05
KEEP_REJECTS: Final = 100
REJECTS_HEADER: Final = ["line", "emailAddress", "column", "reason"]


@dataclass
class Progress:
    """Where an import stands after a committed batch (what the job row records)."""

    rows_done: int
    bytes_done: int
    bytes_total: int
    batches_done: int
    counts: dict[str, int]
    warnings: list[str]
    rejects_bytes: int
    format: str
    sha256: str


@dataclass
class ResumePoint:
    """What a job had committed when it stopped; the import continues from there."""

    rows_done: int = 0
    batches_done: int = 0
    counts: dict[str, int] = field(default_factory=empty_counts)
    rejects_bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    sha256: str | None = None


class _Rollback(Exception):
    """Raised inside a dry run's outer ``store.atomic()`` block to undo everything it did."""


class _RejectsFile:
    """The rejects CSV (line, emailAddress, column, reason), appended batch by batch; ``tell`` after each
    flush is what the job records, so a resume can cut off rows written after the last commit."""

    def __init__(self, path: Path, keep_bytes: int) -> None:
        make_private_dir(path.parent)
        mode: Literal["r+b", "w+b"] = "r+b" if keep_bytes and path.exists() else "w+b"
        self._file = open_private(path, mode, new=False)  # closed by close()
        if keep_bytes:
            self._file.truncate(keep_bytes)
            self._file.seek(keep_bytes)
        self._text = _TextSink(self._file)
        self._writer = SafeCsvWriter(self._text)  # a rejected line's cells are the file's: neutralised
        if not keep_bytes:
            self._writer.writerow(REJECTS_HEADER)
            self.flush()

    def write(self, rejects: list[Reject]) -> None:
        self._writer.writerows((r.line, r.email, r.column, r.reason) for r in rejects)

    def flush(self) -> int:
        self._file.flush()
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


class _TextSink:
    """Lets csv.writer write into a binary file without a TextIOWrapper's buffering (exact ``tell``)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        return int(self.raw.write(text.encode("utf-8")))


def run_import(
    store: ContactStore,
    path: Path,
    options: ImportOptions,
    *,
    file_name: str = "",
    dry_run: bool = False,
    rejects_path: Path | None = None,
    seen_path: Path | None = None,
    resume: ResumePoint | None = None,
    on_commit: Callable[[Progress], None] | None = None,
    after_commit: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    batch_rows: int = BATCH_ROWS,
    commit_rows: int = COMMIT_ROWS,
    parse_in_child: bool | None = None,
) -> ImportReport:
    """Import (or, with ``dry_run``, only count) one file into ``options.contact_list``.

    A file-level problem comes back as ``report.error`` with nothing written. ``on_commit(progress)`` runs
    inside each batch's ``store.atomic()`` block (the job row update: on a transactional store its writes to
    the store's database commit with the batch); ``after_commit`` after it. ``should_stop`` is polled
    between batches; stopping leaves ``report.cancelled`` set and every committed batch in place. A dry run
    on a transactional store applies the batches inside one ``atomic()`` block that is rolled back, so its
    counts are exactly what the import would do, duplicates across batches included; any other store gets
    ``dry_run=True`` on each call.
    """
    name = file_name or Path(path).name
    resume = resume or ResumePoint()
    report = ImportReport()
    report.counts = empty_counts()
    report.counts.update(resume.counts)
    report.warnings = list(resume.warnings)
    contact_list = store.get_list(options.contact_list)  # NotFound before anything else
    read_options = ReadOptions(
        action=options.action,
        extra_columns_as_attributes=options.extra_columns_as_attributes,
        merge_attributes=options.merge_attributes,
        topics=frozenset(contact_list.topic_names),
        mapping=options.column_map,
    )
    batch_rows = store.bulk_batch_rows or batch_rows  # a remote store knows the batch size that suits its API
    temporary_seen = dry_run or seen_path is None
    seen_path = temporary_seen_path() if dry_run or seen_path is None else seen_path
    if resume.batches_done:
        seen = SeenRuns(seen_path)
        seen.forget_after(resume.batches_done)
        seen.close()
    source: BatchSource | None = None
    try:
        path = Path(path)
        if parse_in_child is None:
            parse_in_child = path.stat().st_size >= CHILD_PROCESS_BYTES
        # A child process starts parsing from the first bytes while this one checks and hashes the whole file
        # (nothing is applied before that passed).
        reader = open_reader(
            path,
            name=name,
            fmt=options.format,
            options=read_options,
            scanned=peek(path, name=name) if parse_in_child else None,
        )
        spec = ParseSpec(reader, resume.rows_done, batch_rows, store.identity.name, resume.batches_done + 1, seen_path)
        if parse_in_child:
            source = BatchSource(spec, child=True)
            reader.scanned = scan(path, name=name)
        report.format = reader.format
        if resume.sha256 and reader.scanned.sha256 != resume.sha256:
            raise FileError("the file has changed since this job started; import it as a new job", file=name)
        validate_structure(reader)
    except (FileError, OSError) as exc:
        if source is not None:
            source.close()
        if temporary_seen:
            remove_seen(seen_path)
        if isinstance(exc, OSError):
            exc = FileError(f"cannot read the file: {exc.strerror or exc}", file=name, line=0)
        report.error = exc
        return report
    if source is None:
        source = BatchSource(spec, child=False)

    # A transactional store (the local one) carries the job's progress in its batches' transactions, and a
    # dry run applies everything and rolls back. Any other store (the ses backend, which talks to AWS) gets
    # its own dry_run flag and per-batch calls.
    transactional = store.transactional
    store_dry_run = dry_run and not transactional
    outer: AbstractContextManager[object] = store.atomic() if (dry_run and transactional) else contextlib.nullcontext()
    rejects_file = _RejectsFile(rejects_path, resume.rejects_bytes) if rejects_path is not None else None
    policy = UpsertPolicy(
        resubscribe=options.resubscribe,
        merge_attributes=options.merge_attributes,
        replace_record=options.replace_record,
    )
    counts = report.counts
    kept_rejects = report.rejects
    batches = iter(source)
    if not transactional:
        commit_rows = batch_rows  # its writes are for good as they are made: record progress per batch
    batches_done = resume.batches_done
    applied = batches_done  # the last batch applied (committed once the open transaction commits)
    rows_done = resume.rows_done
    rejects_bytes = resume.rejects_bytes
    more_warnings = 0
    # The open write transaction: several parsed batches go into one commit (fewer commits rewrite far fewer
    # B-tree pages: measured ~30% less CPU at 50k rows per commit than at 10k), while parsing stays batch-sized.
    txn: AbstractContextManager[object] | None = None
    rows_in_txn = 0
    txn_started = 0.0
    bytes_done = 0
    format_ = reader.format
    sha256 = reader.scanned.sha256
    bytes_total = reader.scanned.size

    def commit() -> None:
        nonlocal txn, batches_done, rejects_bytes, rows_in_txn
        assert txn is not None
        batches_done = applied
        rejects_bytes = rejects_file.flush() if rejects_file is not None else 0
        progress = Progress(
            rows_done=rows_done,
            bytes_done=bytes_done,
            bytes_total=bytes_total,
            batches_done=batches_done,
            counts=dict(counts),
            warnings=list(report.warnings),
            rejects_bytes=rejects_bytes,
            format=format_,
            sha256=sha256,
        )
        if on_commit is not None and not dry_run:
            on_commit(progress)
        done, txn, rows_in_txn = txn, None, 0
        done.__exit__(None, None, None)
        if after_commit is not None:
            after_commit(progress)

    try:
        with outer:
            while True:
                stopping = should_stop is not None and should_stop()
                batch = None if stopping else next(batches, None)
                if batch is None:
                    # Duplicates are counted once, over the runs of every batch applied (see parse.py), unless
                    # every row read made a new contact (or deleted one): no row then named an address an earlier
                    # row had (only another writer removing or adding that contact in between could hide one).
                    if counts["created"] + counts["deleted"] + counts["rejected"] == rows_done:
                        source.close()
                        counts["duplicates"] = 0
                    else:
                        counts["duplicates"] = source.duplicates(applied)
                    if txn is None and not dry_run and counts["duplicates"] != resume.counts.get("duplicates", 0):
                        txn = store.atomic()  # the count's own commit, with the job's progress
                        txn.__enter__()
                    if txn is not None:
                        commit()
                    report.cancelled = stopping
                    break
                if txn is None:
                    txn = store.atomic()
                    txn.__enter__()
                    txn_started = time.monotonic()
                counts["rejected"] += len(batch.rejects)
                if batch.rejects:
                    if len(kept_rejects) < KEEP_REJECTS:
                        kept_rejects.extend(batch.rejects[: KEEP_REJECTS - len(kept_rejects)])
                    if rejects_file is not None:
                        rejects_file.write(batch.rejects)
                report.warnings.extend(batch.warnings)
                more_warnings = batch.more_warnings
                if batch.items:
                    if options.action == "delete":
                        assert isinstance(batch.items, AddressBatch)
                        results = store.delete_contacts(options.contact_list, batch.items, dry_run=store_dry_run)
                    else:
                        assert isinstance(batch.items, PatchBatch)
                        results = store.upsert_contacts(
                            options.contact_list, batch.items, policy, dry_run=store_dry_run
                        )
                    if _tally(results, counts):
                        rejects_bytes = _refused(batch.items, results, kept_rejects, rejects_file, rejects_bytes)
                rows_in_txn += batch.rows_done - rows_done
                rows_done, bytes_done, applied = batch.rows_done, batch.bytes_done, batch.number
                if rows_in_txn >= commit_rows or time.monotonic() - txn_started >= COMMIT_SECONDS:
                    commit()
            if dry_run and transactional:
                raise _Rollback
    except BaseException as exc:
        if txn is not None:  # the batches since the last commit are undone
            txn.__exit__(type(exc), exc, exc.__traceback__)
        if isinstance(exc, _Rollback):
            pass
        elif isinstance(exc, FileError):
            # Found mid-file only when the first pass could not see it (e.g. a field past the size limit).
            report.error = exc
            counts["duplicates"] = source.duplicates(batches_done)
        else:
            raise
    finally:
        source.close()
        if rejects_file is not None:
            rejects_file.close()
        if temporary_seen:
            remove_seen(seen_path)
    if more_warnings:
        report.warnings.append(f"... and {more_warnings:,} more warnings like these")
    report.rows = rows_done
    if rows_done == 0 and report.error is None and not report.cancelled:
        report.warnings.append("the file has no contacts")
    return report


def _refused(
    items: Sequence[Any],
    results: list[RowResult],
    kept: list[Reject],
    rejects_file: _RejectsFile | None,
    rejects_bytes: int,
) -> int:
    """Rows the store refused after all (the ses backend's import job refuses some) go to the rejects, with
    the store's reason. Their line is not known at this point (0). Returns the rejects file's new length."""
    rejects = [
        Reject(0, item.email if isinstance(item, ContactPatch) else str(item), "", result.reason or "refused")
        for item, result in zip(items, results, strict=True)
        if result.outcome is Outcome.REFUSED
    ]
    if len(kept) < KEEP_REJECTS:
        kept.extend(rejects[: KEEP_REJECTS - len(kept)])
    if rejects_file is None:
        return rejects_bytes
    rejects_file.write(rejects)
    return rejects_file.flush()


def _tally(results: list[RowResult], counts: dict[str, int]) -> int:
    """Count outcomes (a refused row counts as rejected); return how many rows were refused. The store shares
    one RowResult per outcome, so count distinct objects first (C-speed ``Counter`` over ids) and read each
    one's fields once, rather than a million enum lookups."""
    if results and results.count(results[0]) == len(results):  # one outcome for the batch: one C loop
        groups = {id(results[0]): len(results)}
        by_id = {id(results[0]): results[0]}
    else:
        groups = Counter(map(id, results))
        by_id = dict(zip(map(id, results), results, strict=True))
    refused = 0
    for result_id, n in groups.items():
        result = by_id[result_id]
        if result.outcome is Outcome.REFUSED:
            counts["rejected"] += n
            refused += n
        else:
            counts[result.outcome.value] += n
        if result.kept_unsubscribed:
            counts["kept_unsubscribed"] += n
        if result.kept_opted_out:
            counts["kept_opted_out"] += n
    return refused


def iter_rejects(path: Path) -> Iterator[Reject]:
    """Read a rejects CSV back (the console's report page, tests)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader, None)
        for line, email, column, reason in reader:
            yield Reject(int(line), decode_cell(email), decode_cell(column), decode_cell(reason))


def preview(path: Path, options: ImportOptions, *, rows: int = 10, store: ContactStore | None = None) -> Preview:
    """The first ``rows`` records as the importer reads them, the detected format and columns, or the
    file-level error. Reads only as much of the file as that needs (after the byte-level scan)."""
    topics: frozenset[str] | None = None
    if store is not None:
        with contextlib.suppress(Exception):
            topics = frozenset(store.get_list(options.contact_list).topic_names)
    read_options = ReadOptions(
        action=options.action,
        extra_columns_as_attributes=options.extra_columns_as_attributes,
        merge_attributes=options.merge_attributes,
        topics=topics,
        mapping=options.column_map,
    )
    try:
        reader = open_reader(Path(path), fmt=options.format, options=read_options)
    except FileError as exc:
        return Preview(format=None, rows=[], columns=[], warnings=[], error=exc)
    shown: list[PreviewRow] = []
    error: FileError | None = None
    try:
        for line, record in reader.records():
            if isinstance(record, Reject):
                shown.append(PreviewRow(line, record.email, None, None, {}, reject=record))
            elif isinstance(record, str):
                shown.append(PreviewRow(line, record, None, None, {}))
            else:
                unsubscribe = record.unsubscribe_all if isinstance(record.unsubscribe_all, bool) else None
                attributes = record.attributes if isinstance(record.attributes, dict) else None
                shown.append(PreviewRow(line, record.email, unsubscribe, attributes, dict(record.topic_preferences)))
            if len(shown) >= rows:
                break
    except FileError as exc:
        error = exc
    columns = reader.columns if reader.format == "csv" else []
    return Preview(format=reader.format, rows=shown, columns=columns, warnings=list(reader.warnings), error=error)
