"""Job records: the ``bulk_jobs`` table (owner "bulk"), a row as a :class:`Job`, and whose process runs it.

Kept apart from :mod:`.job_manager`, which runs jobs: the record is what survives a kill, and what every
surface (the console, the CLI, the SES API's import-job operations) reads.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import orjson

from ..db import Migrations, run_script
from .report import ImportOptions, empty_counts
from .saved_mappings import mappings_v3

JobState = Literal["queued", "running", "completed", "failed", "interrupted", "cancelled"]
ACTIVE_STATES: Final = ("queued", "running")
FINAL_STATES: Final = ("completed", "failed", "cancelled")
RESUMABLE_STATES: Final = ("interrupted", "failed", "cancelled")


def _schema_v1(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE bulk_jobs (
            id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            file_name TEXT NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT,
            contact_list TEXT NOT NULL,
            action TEXT NOT NULL,
            options TEXT NOT NULL,
            format TEXT,
            state TEXT NOT NULL,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            owner TEXT,
            bytes_total INTEGER NOT NULL DEFAULT 0,
            bytes_done INTEGER NOT NULL DEFAULT 0,
            rows_done INTEGER NOT NULL DEFAULT 0,
            batches_done INTEGER NOT NULL DEFAULT 0,
            counts TEXT NOT NULL DEFAULT '{}',
            warnings TEXT NOT NULL DEFAULT '[]',
            created REAL NOT NULL,
            started REAL,
            finished REAL,
            rejects_path TEXT,
            rejects_bytes INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            meta TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX bulk_jobs_by_seq ON bulk_jobs (seq);
        CREATE INDEX bulk_jobs_by_state ON bulk_jobs (state, seq);
        """,
    )


def _kind_v2(conn: sqlite3.Connection) -> None:
    """Bulk actions on "all N matching" (``kind = 'action'``) share the records with imports."""
    conn.execute("ALTER TABLE bulk_jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'import'")


# The job records (third step: saved_mappings' remembered column mappings); listed in schema.PRODUCT_SCHEMA.
# Never edit or reorder these steps: versions count by position.
MIGRATIONS = Migrations("bulk", (_schema_v1, _kind_v2, mappings_v3))

COLUMNS = (
    "id, file_name, path, sha256, contact_list, action, options, format, state, cancel_requested, owner, "
    "bytes_total, bytes_done, rows_done, batches_done, counts, warnings, created, started, finished, "
    "rejects_path, rejects_bytes, error, meta, kind"
)


@dataclass(frozen=True)
class Job:
    """A snapshot of one job's row. ``rows_done`` counts file records consumed (applied or rejected).

    A bulk action (``kind == "action"``, see :mod:`.actions`): ``file_name`` says which contacts in words,
    ``action`` is a ``store.base.BulkAction`` (``delete``, ``unsubscribe``, ``resubscribe``, ``topic_opt_in``,
    ``topic_opt_out``), ``rows_done`` and ``bytes_done`` count the matching contacts reached, ``bytes_total`` how
    many matched when it started, and ``meta`` holds the query (and a topic action's ``topic``).
    """

    id: str
    file_name: str
    path: Path
    sha256: str | None
    action: str
    options: ImportOptions
    format: str | None
    state: JobState
    cancel_requested: bool
    owner: str | None
    bytes_total: int
    bytes_done: int
    rows_done: int
    batches_done: int
    counts: dict[str, int]
    warnings: list[str]
    created: float
    started: float | None
    finished: float | None
    rejects_path: Path | None
    rejects_bytes: int
    error: str | None
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = "import"

    @property
    def contact_list(self) -> str:
        return self.options.contact_list

    @property
    def rejected(self) -> int:
        return self.counts.get("rejected", 0)

    @property
    def fraction(self) -> float:
        """Progress between 0 and 1 for a bar, from bytes (the only total known before the end)."""
        if self.state == "completed":
            return 1.0
        return min(1.0, self.bytes_done / self.bytes_total) if self.bytes_total else 0.0


def job_from_row(row: sqlite3.Row | tuple[Any, ...]) -> Job:
    (
        id_,
        file_name,
        path,
        sha256,
        _contact_list,
        action,
        options,
        fmt,
        state,
        cancel_requested,
        owner,
        bytes_total,
        bytes_done,
        rows_done,
        batches_done,
        counts,
        warnings,
        created,
        started,
        finished,
        rejects_path,
        rejects_bytes,
        error,
        meta,
        kind,
    ) = row
    opts = orjson.loads(options)
    merged = empty_counts()
    merged.update(orjson.loads(counts))
    return Job(
        id=id_,
        file_name=file_name,
        path=Path(path),
        sha256=sha256,
        action=action,
        options=ImportOptions(**opts),
        format=fmt,
        state=state,
        cancel_requested=bool(cancel_requested),
        owner=owner,
        bytes_total=bytes_total,
        bytes_done=bytes_done,
        rows_done=rows_done,
        batches_done=batches_done,
        counts=merged,
        warnings=list(orjson.loads(warnings)),
        created=created,
        started=started,
        finished=finished,
        rejects_path=Path(rejects_path) if rejects_path else None,
        rejects_bytes=rejects_bytes,
        error=error,
        meta=orjson.loads(meta),
        kind=kind,
    )


def current_owner(group: str | None = None) -> str:
    """``host:pid``, then `` group`` for a worker of ``serve --workers N`` (see job_manager's docstring)."""
    return f"{socket.gethostname()}:{os.getpid()}" + (f" {group}" if group else "")


def owner_group(owner: str | None) -> str | None:
    """The group an owner string names, if any."""
    _, _, group = (owner or "").partition(" ")
    return group or None


def owner_alive(owner: str | None) -> bool:
    """Whether the process named by ``owner`` still runs. Another host's process is assumed alive."""
    if not owner:
        return False
    host, _, pid = owner.partition(" ")[0].rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return not _ended(int(pid))


def _ended(pid: int) -> bool:
    """Whether ``pid`` has exited but is not yet reaped by its parent (a zombie: ``kill(pid, 0)`` still
    succeeds). A ``serve --workers`` worker killed mid-job stays one until uvicorn's supervisor reaps it, while
    a sibling has already taken the background work over and must see that job's runner as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (or it went in between): the signal's answer stands
    return stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"])
