"""Import jobs: persisted records in the same SQLite file, one background worker, resume and cancel.

Bulk actions on "all N matching" contacts (:mod:`.actions`) are jobs of this engine too, of another ``kind``:
the same records, worker, cancel and resume; their progress is counted in contacts instead of bytes.

Why jobs at all: a million-row import takes seconds to minutes, the console must show progress and survive
a page reload, and a killed process must not leave a half-known state. So every job is a row in
``bulk_jobs``; the importer commits each batch of contacts *and* the job's progress (rows done, counts,
rejects-file length) in one transaction. After a kill the job row says exactly which rows are in; on the
next start it is marked ``interrupted`` and ``resume`` continues from that row (imports are idempotent, so
re-running the whole file reaches the same state too).

One worker thread runs queued jobs one at a time (so at most one job per contact list runs at once), in the
one process that owns the data dir's background work (``background.py``). The CLI runs its own job in its
own process through :meth:`JobManager.run`; a job's ``owner`` (host:pid) tells a starting server whether a
``running`` job still has a live process behind it.

The workers of one ``serve --workers N`` share a ``group``, written in the owner of the jobs they run. When
the worker running a job is killed, uvicorn's supervisor starts another and a worker of the same group takes
the background work over: that job was not given up by anyone, so it is queued again and continues from its
last committed batch. A job of any other dead process (a CLI, a server that was stopped) is ``interrupted``,
for its user to resume.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from ..db import Database
from ..errors import NotFound
from ..history import STARTED_BY, acting_as, current_actor, job_actor, started_by
from ..model import ContactQuery
from ..private_files import make_private_dir
from ..store.base import BulkAction, ContactStore, check_bulk_action
from .actions import ACTION_BATCH_ROWS, ACTION_KIND, ActionProgress, query_from_json, query_to_json, run_action
from .job_records import (
    ACTIVE_STATES,
    COLUMNS,
    FINAL_STATES,
    RESUMABLE_STATES,
    Job,
    JobState,
    current_owner,
    job_from_row,
    owner_alive,
    owner_group,
)
from .parse import remove_seen
from .report import (
    COUNT_KEYS,
    FileError,
    ImportOptions,
    ImportReport,
    Preview,
    Reject,
    empty_counts,
)
from .saved_mappings import SavedMappings

__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "FileError",
    "ImportOptions",
    "ImportReport",
    "Job",
    "JobManager",
    "JobState",
    "Preview",
    "Reject",
]

ProgressCallback = Callable[[Job], None]


class JobManager:
    """Creates, runs, lists, cancels and resumes import jobs. Attached to ``Services`` as ``jobs``.

    ``submit`` queues a job for the background worker (started by :meth:`start`, i.e. ``services.on_start``);
    ``run`` runs a queued or resumed job in the calling thread (the CLI). Uploaded files are not copied:
    the caller keeps ``path`` until the job is final (the console stores uploads under
    ``<data dir>/uploads/``).
    """

    def __init__(self, db: Database, store: ContactStore, data_dir: Path, *, group: str | None = None) -> None:
        self.db = db
        self.store = store
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.group = group
        self._owner = current_owner(group)
        self._changed = threading.Condition()
        # Rows per parsed batch, and per commit (= per progress step and resume point; None: 5 batches); parse
        # in a child process (None: files of at least parse.CHILD_PROCESS_BYTES).
        self.batch_rows = 10_000
        self.commit_rows: int | None = None
        # Contacts per bulk-action batch (= commit) on a store without a batch size of its own.
        self.action_batch_rows = ACTION_BATCH_ROWS
        self.parse_in_child: bool | None = None
        self.mappings = SavedMappings(db)  # the console's remembered column mappings
        # Runners of other kinds of job (kind -> run(job, should_stop) -> (state or "stopped", error)).
        self.runners: dict[str, Callable[[Job, Callable[[], bool]], tuple[str, str | None]]] = {}

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Mark jobs whose process died as interrupted, then start the worker thread."""
        self.recover()
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(target=self._work, name="sescontacts-import-jobs", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current batch; a job cut short is left ``interrupted`` (resumable)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def recover(self) -> list[Job]:
        """Running jobs whose owner process is gone become ``interrupted``, and so do queued jobs a CLI
        process created for itself and never ran; a running job of a dead worker of this ``group`` is queued
        again instead (see the module's docstring). Returns the jobs changed."""
        changed = []
        with self.db.write() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM bulk_jobs WHERE state = 'running' OR (state = 'queued' AND owner IS NOT NULL)"
            ).fetchall()
            for row in rows:
                job = job_from_row(row)
                if job.owner == self._owner or owner_alive(job.owner):
                    continue
                requeue = job.state == "running" and self.group is not None and owner_group(job.owner) == self.group
                conn.execute(
                    "UPDATE bulk_jobs SET state = ?, owner = NULL WHERE id = ?",
                    ("queued" if requeue else "interrupted", job.id),
                )
                changed.append(job)
        return changed

    def mark_interrupted(self, job_id: str) -> None:
        """This process is giving up on a running job (Ctrl-C in the CLI): leave it resumable."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE bulk_jobs SET state = 'interrupted', owner = NULL WHERE id = ? AND state = 'running'",
                (job_id,),
            )

    # -- records ---------------------------------------------------------------------------------------

    def submit(
        self,
        path: Path,
        options: ImportOptions,
        *,
        file_name: str,
        meta: dict[str, Any] | None = None,
        run_here: bool = False,
        kind: str = "import",
    ) -> Job:
        """Record a queued job (of ``kind``: one of :attr:`runners`, else a contact import); the worker picks
        it up. ``run_here`` keeps it for :meth:`run` in this process instead (it is created already owned, so a
        server's worker never takes it)."""
        path = Path(path)
        job_id = str(uuid.uuid4())
        now = time.time()
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        rejects_path = self.jobs_dir / f"{job_id}.rejects.csv"
        with self.db.write() as conn:
            (seq,) = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM bulk_jobs").fetchone()
            conn.execute(
                "INSERT INTO bulk_jobs (id, seq, file_name, path, contact_list, action, options, format, state, "
                "owner, bytes_total, counts, created, rejects_path, meta, kind) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    seq,
                    file_name,
                    str(path),
                    options.contact_list,
                    options.action,
                    orjson.dumps(asdict(options)).decode(),
                    options.format,
                    self._owner if run_here else None,
                    size,
                    orjson.dumps(empty_counts()).decode(),
                    now,
                    str(rejects_path),
                    orjson.dumps({STARTED_BY: started_by(current_actor()), **(meta or {})}).decode(),
                    kind,
                ),
            )
        if not run_here:
            self._wake.set()
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        row = self.db.reader().execute(f"SELECT {COLUMNS} FROM bulk_jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"Job {job_id} doesn't exist.", field="JobId")
        return job_from_row(row)

    def list(
        self, limit: int = 50, *, before_seq: int | None = None, kind: str | tuple[str, ...] | None = "import"
    ) -> list[Job]:
        """Newest first; imports only unless ``kind`` says otherwise (a kind, several, or None: every kind)."""
        kinds = (kind,) if isinstance(kind, str) else kind or ()
        sql = f"SELECT {COLUMNS} FROM bulk_jobs WHERE " + (f"kind IN ({', '.join('?' * len(kinds))})" if kinds else "1")
        params: list[object] = list(kinds)
        if before_seq is not None:
            sql += " AND seq < ?"
            params.append(before_seq)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        return [job_from_row(r) for r in self.db.reader().execute(sql, params)]

    def seq(self, job_id: str) -> int:
        row = self.db.reader().execute("SELECT seq FROM bulk_jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"Job {job_id} doesn't exist.", field="JobId")
        return int(row[0])

    def cancel(self, job_id: str) -> Job:
        """A queued job is cancelled at once; a running one stops after its current batch (committed
        batches stay: an import is not rolled back)."""
        with self.db.write() as conn:
            job = self._get_in(conn, job_id)
            if job.state in ("queued", "interrupted"):
                conn.execute(
                    "UPDATE bulk_jobs SET state = 'cancelled', finished = ?, owner = NULL WHERE id = ?",
                    (time.time(), job_id),
                )
            elif job.state == "running":
                conn.execute("UPDATE bulk_jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        return self.get(job_id)

    def resume(self, job_id: str, *, run_here: bool = False) -> Job:
        """Queue an interrupted (or failed, or cancelled) job again; it continues after its last committed
        row. A completed job is returned as it is."""
        with self.db.write() as conn:
            job = self._get_in(conn, job_id)
            if job.state == "running" and owner_alive(job.owner) and job.owner != self._owner:
                return job
            if job.state in RESUMABLE_STATES or job.state == "running":
                conn.execute(
                    "UPDATE bulk_jobs SET state = 'queued', cancel_requested = 0, error = NULL, finished = NULL, "
                    "owner = ? WHERE id = ?",
                    (self._owner if run_here else None, job_id),
                )
        if not run_here:
            self._wake.set()
        return self.get(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job is final or interrupted (tests, and the CLI following a server's job)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.state not in ACTIVE_STATES:
                return job
            if deadline is not None and time.monotonic() > deadline:
                return job
            with self._changed:  # woken when a job of this process ends; polls for other processes' jobs
                self._changed.wait(0.05)

    def delete(self, job_id: str) -> None:
        """Forget a final job and its rejects file."""
        job = self.get(job_id)
        with self.db.write() as conn:
            conn.execute("DELETE FROM bulk_jobs WHERE id = ? AND state NOT IN ('queued', 'running')", (job_id,))
        remove_seen(self._seen_path(job_id))
        if job.rejects_path is not None:
            with contextlib.suppress(OSError):
                job.rejects_path.unlink()

    @staticmethod
    def _get_in(conn: sqlite3.Connection, job_id: str) -> Job:
        row = conn.execute(f"SELECT {COLUMNS} FROM bulk_jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"Job {job_id} doesn't exist.", field="JobId")
        return job_from_row(row)

    def _seen_path(self, job_id: str) -> Path:
        return self.jobs_dir / f"{job_id}.seen.db"

    # -- synchronous helpers for the dialog and the CLI --------------------------------------------------

    def dry_run(self, path: Path, options: ImportOptions) -> ImportReport:
        """Validate the whole file and count what would happen, writing nothing."""
        from .importer import run_import

        return run_import(self.store, Path(path), options, dry_run=True)

    def preview(self, path: Path, options: ImportOptions, rows: int = 10) -> Preview:
        from .importer import preview

        return preview(Path(path), options, rows=rows, store=self.store)

    # -- running ---------------------------------------------------------------------------------------

    def run(self, job_id: str, progress: ProgressCallback | None = None) -> Job:
        """Run a queued job (or one queued again by ``resume``) in the calling thread, to its end."""
        with self.db.write() as conn:
            job = self._get_in(conn, job_id)
            if job.state != "queued" or (job.owner not in (None, self._owner)):
                return job
            conn.execute(
                "UPDATE bulk_jobs SET state = 'running', owner = ?, started = coalesce(started, ?) WHERE id = ?",
                (self._owner, time.time(), job_id),
            )
        return self._execute(self.get(job_id), progress)

    def _execute(self, job: Job, progress: ProgressCallback | None) -> Job:
        # What the job changes is recorded as the job's; WAL checkpoints run off the writer's thread for every
        # kind of job (inline, an import's commits waited ~1 s per million rows).
        with acting_as(job_actor(job.id, job.meta)), self.db.checkpoints_on_the_side():
            return self._execute_kind(job, progress)

    def _execute_kind(self, job: Job, progress: ProgressCallback | None) -> Job:
        if job.kind == ACTION_KIND:
            return self._execute_action(job, progress)
        if (runner := self.runners.get(job.kind)) is not None:
            try:
                outcome = runner(job, lambda: self._should_stop(job.id))
            except Exception as exc:  # the job must end in a state, whatever went wrong
                outcome = ("failed", f"{type(exc).__name__}: {exc}")
            return self._finish(job.id, *outcome, progress)
        from .importer import Progress, ResumePoint, run_import

        make_private_dir(self.jobs_dir)
        resume = None
        if job.rows_done or job.batches_done:  # what the job committed, in ResumePoint's order
            resume = ResumePoint(
                job.rows_done, job.batches_done, dict(job.counts), job.rejects_bytes, list(job.warnings), job.sha256
            )
        job_id = job.id

        def on_commit(p: Progress) -> None:
            # Inside the batch's store.atomic(): on a transactional store (the local one, on this database) this
            # write joins the batch's transaction; on the ses backend it commits on its own, after the batch.
            with self.db.write() as conn:
                conn.execute(
                    "UPDATE bulk_jobs SET rows_done = ?, bytes_done = ?, batches_done = ?, counts = ?, warnings = ?, "
                    "rejects_bytes = ?, format = ?, sha256 = ?, bytes_total = ? WHERE id = ?",
                    (
                        p.rows_done,
                        p.bytes_done,
                        p.batches_done,
                        orjson.dumps(p.counts).decode(),
                        orjson.dumps(p.warnings).decode(),
                        p.rejects_bytes,
                        p.format,
                        p.sha256,
                        p.bytes_total,
                        job_id,
                    ),
                )

        def after_commit(p: Progress) -> None:
            if progress is not None:
                progress(self.get(job_id))

        state: str
        error: str | None = None
        report: ImportReport | None = None
        try:
            finished = run_import(
                self.store,
                job.path,
                job.options,
                file_name=job.file_name,
                rejects_path=job.rejects_path,
                seen_path=self._seen_path(job_id),
                resume=resume,
                on_commit=on_commit,
                after_commit=after_commit,
                should_stop=lambda: self._should_stop(job_id),
                batch_rows=self.batch_rows,
                commit_rows=self.commit_rows or 5 * self.batch_rows,
                parse_in_child=self.parse_in_child,
            )
        except Exception as exc:  # the job must end in a state, whatever went wrong
            state, error = "failed", f"{type(exc).__name__}: {exc}"
        else:
            report = finished
            if report.error is not None:
                state, error = "failed", str(report.error)
            elif report.cancelled:
                cancelled = self.get(job_id).cancel_requested
                state = "cancelled" if cancelled else "interrupted"
            else:
                state = "completed"
        with self.db.write() as conn:
            conn.execute(
                "UPDATE bulk_jobs SET state = ?, error = ?, finished = ?, owner = NULL, cancel_requested = 0 "
                "WHERE id = ?",
                (state, error, None if state == "interrupted" else time.time(), job_id),
            )
            if report is not None and report.format:
                conn.execute("UPDATE bulk_jobs SET format = ? WHERE id = ?", (report.format, job_id))
        if state == "completed":  # a cancelled or failed job may resume: its keys count its duplicates
            remove_seen(self._seen_path(job_id))
        final = self.get(job_id)
        if final.rejects_path is not None and not final.rejected and state == "completed":
            with contextlib.suppress(OSError):
                final.rejects_path.unlink()
            with self.db.write() as conn:
                conn.execute("UPDATE bulk_jobs SET rejects_path = NULL WHERE id = ?", (job_id,))
            final = self.get(job_id)
        with self._changed:
            self._changed.notify_all()
        if progress is not None:
            progress(final)
        return final

    # -- bulk actions on "all N matching" (see .actions) --------------------------------------------------

    def submit_action(
        self,
        list_name: str,
        query: ContactQuery,
        action: BulkAction,
        *,
        topic: str | None = None,
        description: str,
        meta: dict[str, Any] | None = None,
        run_here: bool = False,
    ) -> Job:
        """Record a queued bulk action (on ``topic``, for a topic action) on the contacts ``query`` matches now
        (see :mod:`.actions` for what "now" means while contacts change); ``description`` names them for the
        job's page, ``meta`` keeps what the caller wants back (the console: the view to return to). ``run_here``
        as for :meth:`submit`. The topic is kept in ``meta`` (``"topic"``): a job recorded before topic actions
        existed has none, and runs as it always did."""
        check_bulk_action(action, topic)
        job_id = str(uuid.uuid4())
        now = time.time()
        record = {STARTED_BY: started_by(current_actor()), **(meta or {}), "query": query_to_json(query)}
        record["created_before"] = now
        if topic is not None:
            record["topic"] = topic
        with self.db.write() as conn:
            (seq,) = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM bulk_jobs").fetchone()
            conn.execute(
                "INSERT INTO bulk_jobs (id, seq, kind, file_name, path, contact_list, action, options, state, owner, "
                "counts, created, meta) VALUES (?, ?, ?, ?, '', ?, ?, ?, 'queued', ?, ?, ?, ?)",
                (
                    job_id,
                    seq,
                    ACTION_KIND,
                    description,
                    list_name,
                    action,
                    orjson.dumps(asdict(ImportOptions(list_name))).decode(),
                    self._owner if run_here else None,
                    orjson.dumps(empty_counts()).decode(),
                    now,
                    orjson.dumps(record).decode(),
                ),
            )
        if not run_here:
            self._wake.set()
        return self.get(job_id)

    def _execute_action(self, job: Job, progress: ProgressCallback | None) -> Job:
        meta = dict(job.meta)
        action: BulkAction = job.action  # type: ignore[assignment]  # written by submit_action
        resume = ActionProgress(
            after=meta.get("after"),
            finished=bool(meta.get("finished")),
            matched=job.rows_done,
            batches=job.batches_done,
            estimate=meta.get("estimate"),
            counts=dict(job.counts),
        )
        job_id = job.id

        def on_commit(p: ActionProgress) -> None:
            # As for imports: inside the batch's store.atomic(), so on the local store it commits with the batch.
            meta.update(after=p.after, finished=p.finished, estimate=p.estimate)
            with self.db.write() as conn:
                conn.execute(
                    "UPDATE bulk_jobs SET rows_done = ?, bytes_done = ?, bytes_total = ?, batches_done = ?, "
                    "counts = ?, meta = ? WHERE id = ?",
                    (
                        p.matched,
                        p.matched,
                        max(p.estimate or 0, p.matched),
                        p.batches,
                        orjson.dumps(p.counts).decode(),
                        orjson.dumps(meta).decode(),
                        job_id,
                    ),
                )

        def after_commit(_: ActionProgress) -> None:
            if progress is not None:
                progress(self.get(job_id))

        error: str | None = None
        try:
            _, finished = run_action(
                self.store,
                job.contact_list,
                query_from_json(meta["query"]),
                action,
                topic=meta.get("topic"),
                created_before=float(meta["created_before"]),
                resume=resume,
                on_commit=on_commit,
                after_commit=after_commit,
                should_stop=lambda: self._should_stop(job_id),
                batch_rows=self.action_batch_rows,
            )
        except Exception as exc:  # the job must end in a state, whatever went wrong
            state, error = "failed", getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        else:
            state = "completed" if finished else "stopped"
        return self._finish(job_id, state, error, progress)

    def _should_stop(self, job_id: str) -> bool:
        """Asked before every batch: the process is stopping, or someone (maybe another process) cancelled."""
        if self._stopping.is_set():
            return True
        row = self.db.reader().execute("SELECT cancel_requested FROM bulk_jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    def _finish(self, job_id: str, state: str, error: str | None, progress: ProgressCallback | None) -> Job:
        if state == "stopped":  # by should_stop: a cancel, or this process stopping
            state = "cancelled" if self.get(job_id).cancel_requested else "interrupted"
        with self.db.write() as conn:
            conn.execute(
                "UPDATE bulk_jobs SET state = ?, error = ?, finished = ?, owner = NULL, cancel_requested = 0 "
                "WHERE id = ?",
                (state, error, None if state == "interrupted" else time.time(), job_id),
            )
        final = self.get(job_id)
        with self._changed:
            self._changed.notify_all()
        if progress is not None:
            progress(final)
        return final

    def _next_queued(self) -> Job | None:
        """Claim the oldest queued job nobody owns, skipping lists that already have a running job."""
        with self.db.write() as conn:
            busy = {r[0] for r in conn.execute("SELECT contact_list FROM bulk_jobs WHERE state = 'running'")}
            for row in conn.execute(
                f"SELECT {COLUMNS} FROM bulk_jobs WHERE state = 'queued' AND owner IS NULL ORDER BY seq"
            ).fetchall():
                job = job_from_row(row)
                if job.contact_list in busy:
                    continue
                conn.execute(
                    "UPDATE bulk_jobs SET state = 'running', owner = ?, started = coalesce(started, ?) WHERE id = ?",
                    (self._owner, time.time(), job.id),
                )
                return self._get_in(conn, job.id)
        return None

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self._next_queued()
            except sqlite3.Error:
                job = None
            if job is None:
                self._wake.wait(1.0)  # another process may queue jobs too: look again now and then
                self._wake.clear()
                continue
            try:
                self._execute(job, None)
            except Exception:  # the worker must outlive any one job (the job row says what happened)
                logging.getLogger("sescontacts.bulk").exception("import job %s", job.id)


def counts_summary(counts: dict[str, int]) -> str:
    """``created 3, updated 1, rejected 2`` with only the non-zero outcomes, in report order."""
    parts = [f"{key.replace('_', ' ')} {counts[key]:,}" for key in COUNT_KEYS if counts.get(key)]
    return ", ".join(parts) or "nothing to do"
