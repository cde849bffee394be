"""Suppression-list import jobs: CreateImportJob with a ``SuppressionListDestination``, run by the job engine.

A job of kind ``"suppression"`` in ``bulk_jobs`` (the same records, states, cancel and resume as a contact
import); :class:`SuppressionImport` is the runner the job manager calls for that kind. Each record is applied
to the account's suppression list through the ``SuppressionList`` Protocol, so it works on either backend.

The file, as SES's guide shows it ("Adding email addresses in bulk", sending-email-suppression-list):
- CSV: one ``address,REASON`` a line, no header (a first line ``email,reason`` or ``emailAddress,reason`` is
  taken as a header and skipped); spaces around a cell are ignored (the guide's own example has one).
- JSON: one object a line, ``{"emailAddress": "...", "reason": "BOUNCE"}``.
PUT adds or replaces each address (its reason required); DELETE removes it (a reason, if any, is ignored; an
address not on the list counts as ``not_found``). A bad record is rejected with its line and why, into the
same rejects CSV as contact imports (served as ``FailedRecordsS3Url``), and the job still completes.

Progress (records read, bytes, counts, rejects) is written after every batch; a resumed job skips the records
its last batch had reached. Writes to the list are idempotent, except that a DELETE batch cut short and run
again counts its already-removed addresses as ``not_found``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import orjson

from ..db import Database
from ..model import email_key
from ..store.base import SuppressionList
from ..suppression import SUPPRESSION_REASONS
from ..validation import email_problem
from .importer import _RejectsFile
from .job_records import Job
from .report import FileError, Reject, empty_counts

#: ``bulk_jobs.kind`` of a suppression-list import job.
SUPPRESSION_KIND: Final = "suppression"
#: Its ``contact_list``: not a list name SES allows, so it never clashes with one, and two such jobs never run
#: at the same time (the worker runs one job a list at a time).
SUPPRESSION_LIST: Final = ":suppression-list"
BATCH_RECORDS: Final = 1000
_HEADER_CELLS: Final = frozenset({"email", "emailaddress", "email_address", "address"})


@dataclass(frozen=True, slots=True)
class _Record:
    line: int
    email: str
    reason: str | None
    end: int  # byte offset just past the record's line
    problem: tuple[str, str] | None = None  # (column, why) when rejected


def _parse(line: bytes, number: int, end: int, data_format: str) -> _Record | None:
    text = line.decode("utf-8", "replace").strip()
    if not text:
        return None
    if data_format == "json":
        try:
            item = orjson.loads(text)
        except orjson.JSONDecodeError:
            return _Record(number, "", None, end, ("", "not a JSON object"))
        if not isinstance(item, dict):
            return _Record(number, "", None, end, ("", "not a JSON object"))
        email, reason = item.get("emailAddress"), item.get("reason")
        if not isinstance(email, str) or (reason is not None and not isinstance(reason, str)):
            return _Record(number, str(email or ""), None, end, ("emailAddress", "emailAddress must be a string"))
    else:
        cells = [c.strip() for c in next(csv.reader(io.StringIO(text)), [])]
        email, reason = (cells[0] if cells else ""), (cells[1] if len(cells) > 1 and cells[1] else None)
    return _Record(number, email.strip(), reason.strip() if reason else None, end)


def _records(data: Iterator[bytes], data_format: str, skip: int) -> Iterator[_Record]:
    """The file's records after the first ``skip`` ones (a resume), each with the byte offset past it."""
    offset = 0
    seen = 0
    for number, line in enumerate(data, start=1):
        offset += len(line)
        record = _parse(line, number, offset, data_format)
        if record is None:
            continue
        if number == 1 and data_format == "csv" and record.email.lower() in _HEADER_CELLS:
            continue
        seen += 1
        if seen > skip:
            yield record


class SuppressionImport:
    """Runs suppression-list import jobs for the job manager (``JobManager.runners[SUPPRESSION_KIND]``)."""

    def __init__(self, db: Database, suppression: SuppressionList, *, batch_records: int = BATCH_RECORDS) -> None:
        self.db = db
        self.suppression = suppression
        self.batch_records = batch_records

    def __call__(self, job: Job, should_stop: Callable[[], bool]) -> tuple[str, str | None]:
        """Run ``job`` from where it stopped; its final state (``completed``, ``cancelled``/``interrupted`` via
        ``should_stop``, ``failed``) and error."""
        counts = {**empty_counts(), **job.counts}
        rows = job.rows_done
        rejects = _RejectsFile(job.rejects_path, job.rejects_bytes) if job.rejects_path is not None else None
        try:
            with open(job.path, "rb") as source:
                size = source.seek(0, io.SEEK_END)
                source.seek(0)
                batch: list[_Record] = []
                for record in _records(iter(source), job.format or "csv", job.rows_done):
                    batch.append(record)
                    if len(batch) >= self.batch_records:
                        if should_stop():
                            return "stopped", None
                        rows = self._apply(job, batch, counts, rejects, rows, size)
                        batch = []
                if batch:
                    rows = self._apply(job, batch, counts, rejects, rows, size)
        except OSError as error:
            return "failed", str(
                FileError(f"cannot read the file: {error.strerror or error}", file=job.file_name, line=0)
            )
        finally:
            if rejects is not None:
                rejects.close()
        return "completed", None

    def _apply(
        self, job: Job, batch: list[_Record], counts: dict[str, int], rejects: _RejectsFile | None, rows: int, size: int
    ) -> int:
        """Apply one batch, then record the job's progress: the records read so far."""
        refused: list[Reject] = []
        put = job.action == "add"
        known = set(self.suppression.suppressed_among([r.email for r in batch if r.problem is None]))
        for record in batch:
            problem = record.problem or self._problem(record, put)
            if problem is not None:
                refused.append(Reject(record.line, record.email, *problem))
                continue
            key = email_key(record.email)
            if put:
                self.suppression.put_suppressed(record.email, record.reason or "")
                counts["updated" if key in known else "created"] += 1
                known.add(key)
            elif key in known:
                self.suppression.delete_suppressed(record.email)
                counts["deleted"] += 1
                known.discard(key)
            else:
                counts["not_found"] += 1
        counts["rejected"] += len(refused)
        rejects_bytes = job.rejects_bytes
        if rejects is not None:
            rejects.write(refused)
            rejects_bytes = rejects.flush()
        rows += len(batch)
        done = batch[-1].end
        with self.db.write() as conn:
            conn.execute(
                "UPDATE bulk_jobs SET rows_done = ?, bytes_done = ?, bytes_total = ?, batches_done = batches_done + 1, "
                "counts = ?, rejects_bytes = ? WHERE id = ?",
                (rows, done, size, orjson.dumps(counts).decode(), rejects_bytes, job.id),
            )
        return rows

    @staticmethod
    def _problem(record: _Record, put: bool) -> tuple[str, str] | None:
        """Why SES would refuse the record (column, reason), or None."""
        if not record.email:
            return "emailAddress", "The email address is missing."
        if email_problem(record.email) is not None:
            return "emailAddress", f"EmailAddress <{record.email}> is invalid"
        if put and record.reason not in SUPPRESSION_REASONS:
            return "reason", f"The reason must be one of {', '.join(SUPPRESSION_REASONS)}."
        return None
