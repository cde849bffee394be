"""Bulk actions on "all N matching" (issue 10, section 5): the console's job next to the one SQL UPDATE it stands
for, measured in the same run on copies of the same database.

Seeds N contacts (``bench.bulk.generate``, the bulk bench's rows; imported by an import job), then times:

- the baseline, on a copy: ``UPDATE contacts SET unsubscribe_all = 1, updated = ? WHERE list_id = ? AND
  unsubscribe_all = 0`` and the list's counter, one transaction, plain ``sqlite3`` with the product's pragmas:
  what the job does, in one statement (``updated`` is set by every product write: "recently updated" sorts by
  it and the ses backend's sync reads it). The same without ``updated`` is shown for reference;
- the job, on another copy, in a child process: "Unsubscribe" on all N contacts (no filter) as the console
  starts it (``JobManager.submit_action`` then ``run``): the count for its progress bar, then keyset batches
  through ``ContactStore.apply_to_matching``, each committed with the job's progress;

then checks the list's counters against ``COUNT(*)``. Goal: the job <= 1.5x the UPDATE, its bookkeeping
included. ``SESCONTACTS_BENCH_ROWS`` sets N (as for the bulk bench); ``SESCONTACTS_BENCH_ACTION_BATCH`` the
contacts per batch (default: the job's own).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.bulk import generate

ROWS = int(os.environ.get("SESCONTACTS_BENCH_ROWS", "1000000"))
BATCH = os.environ.get("SESCONTACTS_BENCH_ACTION_BATCH", "")
GOAL = 1.5

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from sescontacts.bulk.report import ImportOptions
from sescontacts.model import ContactQuery
from sescontacts.services import Services
from sescontacts.settings import Settings
step, data_dir = sys.argv[1], Path(sys.argv[2])
s = Services.open(Settings(data_dir=data_dir))
s.ensure_default_list()
if len(sys.argv) > 4 and sys.argv[4]:
    s.jobs.action_batch_rows = int(sys.argv[4])
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = usage.ru_utime + usage.ru_stime
t = time.perf_counter()
result = {}
if step == "seed":
    job = s.jobs.submit(Path(sys.argv[3]), ImportOptions("contacts"), file_name="seed.csv", run_here=True)
    job = s.jobs.run(job.id)
    assert job.state == "completed", (job.state, job.error)
elif step == "job":
    job = s.jobs.submit_action("contacts", ContactQuery(), "unsubscribe", description="all contacts", run_here=True)
    job = s.jobs.run(job.id)
    assert job.state == "completed", (job.state, job.error)
    result.update(matched=job.rows_done, changed=job.counts["updated"], batches=job.batches_done)
else:  # "count": what the job does first, for its progress bar (timed apart, on another copy)
    result.update(matched=s.store.count_contacts("contacts", ContactQuery()).value)
result["seconds"] = time.perf_counter() - t
usage = resource.getrusage(resource.RUSAGE_SELF)
result["cpu"] = usage.ru_utime + usage.ru_stime - cpu0
result["rss_mib"] = usage.ru_maxrss / 1024
s.close()
print(json.dumps(result))
"""


def _child(step: str, data_dir: Path, path: Path | None = None) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, step, str(data_dir), str(path or ""), BATCH],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _connect(data_dir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(data_dir / "sescontacts.db", isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "temp_store = MEMORY", "cache_size = -32000"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _baseline(data_dir: Path, *, with_updated: bool) -> tuple[float, float, int]:
    """The single UPDATE (and the counter it moves) in one transaction, committed: (wall, CPU, rows changed)."""
    conn = _connect(data_dir)
    (list_id,) = conn.execute("SELECT id FROM contact_lists").fetchone()
    setting = "unsubscribe_all = 1, updated = ?" if with_updated else "unsubscribe_all = 1"
    params: tuple[object, ...] = (time.time(), list_id) if with_updated else (list_id,)
    cpu, t = _cpu(), time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    changed = conn.execute(f"UPDATE contacts SET {setting} WHERE list_id = ? AND unsubscribe_all = 0", params).rowcount
    conn.execute(
        "UPDATE contact_lists SET unsubscribed_count = unsubscribed_count + ?, generation = generation + 1 "
        "WHERE id = ?",
        (changed, list_id),
    )
    conn.execute("COMMIT")
    wall, cpu = time.perf_counter() - t, _cpu() - cpu
    conn.close()
    return wall, cpu, changed


def _counters(data_dir: Path) -> tuple[int, int, int, int]:
    conn = _connect(data_dir)
    kept = conn.execute("SELECT contact_count, unsubscribed_count FROM contact_lists").fetchone()
    (total,) = conn.execute("SELECT count(*) FROM contacts").fetchone()
    (unsubscribed,) = conn.execute("SELECT count(*) FROM contacts WHERE unsubscribe_all").fetchone()
    conn.close()
    return kept[0], total, kept[1], unsubscribed


def run(report: Callable[[str], None]) -> None:
    work = Path(tempfile.mkdtemp(prefix="sescontacts-bench-actions-"))
    try:
        _run(report, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(report: Callable[[str], None], work: Path) -> None:
    csv_path, jsonl_path = work / "contacts.csv", work / "contacts.jsonl"
    generate(csv_path, jsonl_path, ROWS)
    jsonl_path.unlink()
    seeded = work / "seeded"
    seed = _child("seed", seeded, csv_path)
    csv_path.unlink()
    _, total, _, unsubscribed = _counters(seeded)
    report(
        f"seeded {total:,} contacts (bench/bulk.py's rows, imported as a job) in {seed['seconds']:.1f} s; "
        f"{total - unsubscribed:,} subscribed"
    )
    load = os.getloadavg()[0]
    report(f"load average before: {load:.2f} (2 cores; other work on the box distorts wall times)")
    copies = {name: work / name for name in ("baseline", "bare", "count", "job")}
    for copy in copies.values():
        shutil.copytree(seeded, copy)
    shutil.rmtree(seeded)

    base, base_cpu, changed = _baseline(copies["baseline"], with_updated=True)
    base, base_cpu = max(base, 1e-6), max(base_cpu, 1e-6)  # a toy size can measure no CPU at all
    bare, bare_cpu, _ = _baseline(copies["bare"], with_updated=False)
    counted = _child("count", copies["count"])
    job = _child("job", copies["job"])
    report("")
    report("| unsubscribe all matching | wall | CPU | x the UPDATE (wall / CPU) |")
    report("|---|---|---|---|")
    report(
        f"| baseline: one `UPDATE … SET unsubscribe_all = 1, updated = ?` ({changed:,} rows) | {base:.2f} s "
        f"| {base_cpu:.2f} s | 1 |"
    )
    report(
        f"| for reference: the same without `updated` | {bare:.2f} s | {bare_cpu:.2f} s "
        f"| {bare / base:.2f}x / {bare_cpu / base_cpu:.2f}x |"
    )
    report(
        f"| the job: {int(job['matched']):,} matching, {int(job['changed']):,} changed, "
        f"{int(job['batches'])} batches (`apply_to_matching`) | {job['seconds']:.2f} s | {job['cpu']:.2f} s "
        f"| **{job['seconds'] / base:.2f}x** / {job['cpu'] / base_cpu:.2f}x |"
    )
    report(
        f"| of which the job's first count, for its progress bar (timed apart) | {counted['seconds']:.2f} s "
        f"| {counted['cpu']:.2f} s | {counted['seconds'] / base:.2f}x |"
    )
    verdict = "ok" if job["seconds"] <= GOAL * base else "OVER"
    report(
        f"goal: the job <= {GOAL}x the UPDATE, its bookkeeping included: {verdict} "
        f"(job peak RSS {job['rss_mib']:.0f} MiB; load average after: {os.getloadavg()[0]:.2f})"
    )
    kept_total, total, kept_unsub, unsub = _counters(copies["job"])
    exact = kept_total == total and kept_unsub == unsub == total
    report(
        f"counters after the job: {kept_total:,} contacts, {kept_unsub:,} unsubscribed; COUNT(*): {total:,}, "
        f"{unsub:,}: {'exact' if exact else 'WRONG'}"
    )
    if not exact:
        raise AssertionError("the job left the list's counters wrong")
