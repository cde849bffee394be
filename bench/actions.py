"""Bulk actions on "all N matching" (issue 10, section 5): the console's job next to the one SQL UPDATE it stands
for, measured in the same run on copies of the same database.

Seeds N contacts (``bench.bulk.generate``, the bulk bench's rows; imported by an import job), then, each step in
a child process of its own on a fresh copy of that database, alternating baseline and job ``RUNS`` times:

- the baseline: ``UPDATE contacts SET unsubscribe_all = 1, updated = ? WHERE list_id = ? AND unsubscribe_all =
  0`` and the list's counter in one transaction, plain ``sqlite3`` with the product's pragmas, committed and its
  WAL checkpointed into the database file (SQLite's auto-checkpoint at that commit). That is what the job does,
  in one statement: every product write sets ``updated`` ("recently updated" sorts by it, the ses backend's sync
  reads it). The same without ``updated`` is shown for reference;
- the job, as the server runs it (its background WAL checkpointer on): "Unsubscribe" on all N contacts (no
  filter) as the console starts it (``JobManager.submit_action`` then ``run``): the progress total, then keyset
  batches through ``ContactStore.apply_to_matching``, each committed with the job's progress; timed until its
  WAL is checkpointed too;
- the job once more with a thread writing one contact every 10 ms meanwhile (console and API users in the
  server's process): how long those writes wait behind the job's batches;

then checks the list's counters against ``COUNT(*)``. Goal: the job <= 1.5x the UPDATE, its bookkeeping
included (medians of the runs). ``SESCONTACTS_BENCH_ROWS`` sets N (as for the bulk bench),
``SESCONTACTS_BENCH_ACTION_RUNS`` the runs (default 3), ``SESCONTACTS_BENCH_ACTION_BATCH`` the contacts per batch
(default: the job's own).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.bulk import generate

ROWS = int(os.environ.get("SESCONTACTS_BENCH_ROWS", "1000000"))
RUNS = int(os.environ.get("SESCONTACTS_BENCH_ACTION_RUNS", "3"))
BATCH = os.environ.get("SESCONTACTS_BENCH_ACTION_BATCH", "")
GOAL = 1.5

CHILD = r"""
import json, resource, sqlite3, sys, threading, time
from pathlib import Path
step, data_dir, arg = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
result = {}


def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if step in ("update", "update-bare"):  # the baseline: no sescontacts code at all
    conn = sqlite3.connect(data_dir / "sescontacts.db", isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "temp_store = MEMORY", "cache_size = -32000"):
        conn.execute(f"PRAGMA {pragma}")
    (list_id,) = conn.execute("SELECT id FROM contact_lists").fetchone()
    setting = "unsubscribe_all = 1, updated = ?" if step == "update" else "unsubscribe_all = 1"
    params = (time.time(), list_id) if step == "update" else (list_id,)
    cpu0, t = cpu(), time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    changed = conn.execute(f"UPDATE contacts SET {setting} WHERE list_id = ? AND unsubscribe_all = 0", params).rowcount
    conn.execute(
        "UPDATE contact_lists SET unsubscribed_count = unsubscribed_count + ?, generation = generation + 1 "
        "WHERE id = ?",
        (changed, list_id),
    )
    conn.execute("COMMIT")  # its auto-checkpoint copies the WAL into the database file
    result.update(seconds=time.perf_counter() - t, cpu=cpu() - cpu0, changed=changed)
    conn.close()
else:
    from sescontacts.bulk.report import ImportOptions
    from sescontacts.model import Contact, ContactQuery
    from sescontacts.services import Services
    from sescontacts.settings import Settings

    s = Services.open(Settings(data_dir=data_dir))
    s.ensure_default_list()
    if step == "seed":
        t = time.perf_counter()
        job = s.jobs.submit(Path(arg), ImportOptions("contacts"), file_name="seed.csv", run_here=True)
        job = s.jobs.run(job.id)
        assert job.state == "completed", (job.state, job.error)
        result.update(seconds=time.perf_counter() - t)
    else:  # "job", "writes"
        if arg:
            s.jobs.action_batch_rows = int(arg)
        s.db.start_checkpointer()  # as the server runs (Services.start): WAL checkpoints off the writer's path
        waits, done = [], threading.Event()

        def write():  # a console or API user: one contact at a time, as the server's threads write them
            i = 0
            while not done.is_set():
                started = time.perf_counter()
                s.store.create_contact("contacts", Contact(f"writer{i}@writes.test"))
                waits.append(time.perf_counter() - started)
                i += 1
                time.sleep(0.01)

        writer = threading.Thread(target=write)
        cpu0, t = cpu(), time.perf_counter()
        job = s.jobs.submit_action("contacts", ContactQuery(), "unsubscribe", description="all contacts", run_here=True)
        if step == "writes":
            writer.start()  # after the user confirmed: its contacts are not among "all N matching"
        job = s.jobs.run(job.id)
        done.set()
        s.db.stop_checkpointer()
        ends = sqlite3.connect(data_dir / "sescontacts.db")
        ends.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # what the checkpointer had left to copy
        ends.close()
        result.update(seconds=time.perf_counter() - t, cpu=cpu() - cpu0)
        assert job.state == "completed", (job.state, job.error)
        result.update(matched=job.rows_done, changed=job.counts["updated"], batches=job.batches_done)
        if step == "writes":
            writer.join()
            waits.sort()
            result.update(writes=len(waits), p50=waits[len(waits) // 2], p99=waits[int(len(waits) * 0.99)])
            result.update(worst=waits[-1])
            # Contacts created after the job began are not in "all N matching": none of the writer's is unsubscribed.
            assert not s.store.count_contacts("contacts", ContactQuery(domain="writes.test", status="OPT_OUT")).value
    s.close()
# This process's own peak (ru_maxrss would include the parent's, kept across fork and exec).
result["rss_mib"] = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps(result))
"""


def _child(step: str, data_dir: Path, arg: str = "") -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, step, str(data_dir), arg], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"bench step {step} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _on_copy(seeded: Path, work: Path, step: str, arg: str = "") -> dict[str, float]:
    """``step`` in a child process on a fresh copy of the seeded database (removed afterwards)."""
    copy = work / "copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(seeded, copy)
    try:
        result = _child(step, copy, arg)
        if step == "job":
            result.update(zip(("kept_total", "total", "kept_unsub", "unsub"), _counters(copy), strict=True))
        return result
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def _counters(data_dir: Path) -> tuple[int, int, int, int]:
    import sqlite3

    conn = sqlite3.connect(data_dir / "sescontacts.db")
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


def _median(runs: list[dict[str, float]], key: str) -> float:
    return max(statistics.median(r[key] for r in runs), 1e-6)  # a toy size can measure no CPU at all


def _run(report: Callable[[str], None], work: Path) -> None:
    csv_path, jsonl_path = work / "contacts.csv", work / "contacts.jsonl"
    generate(csv_path, jsonl_path, ROWS)
    jsonl_path.unlink()
    seeded = work / "seeded"
    seed = _child("seed", seeded, str(csv_path))
    csv_path.unlink()
    _, total, _, unsubscribed = _counters(seeded)
    report(
        f"seeded {total:,} contacts (bench/bulk.py's rows, imported as a job) in {seed['seconds']:.1f} s; "
        f"{total - unsubscribed:,} subscribed"
    )
    report(f"load average before: {os.getloadavg()[0]:.2f} (2 cores; other work on the box distorts wall times)")
    updates: list[dict[str, float]] = []
    jobs: list[dict[str, float]] = []
    for _ in range(RUNS):  # paired, so a change in the box's speed moves both
        updates.append(_on_copy(seeded, work, "update"))
        jobs.append(_on_copy(seeded, work, "job", BATCH))
    bare = _on_copy(seeded, work, "update-bare")
    writes = _on_copy(seeded, work, "writes", BATCH)
    base, base_cpu = _median(updates, "seconds"), _median(updates, "cpu")
    job, job_cpu = _median(jobs, "seconds"), _median(jobs, "cpu")
    ratios = sorted(j["seconds"] / max(u["seconds"], 1e-6) for u, j in zip(updates, jobs, strict=True))
    last = jobs[-1]
    report("")
    report(
        f"| unsubscribe all matching (median of {RUNS} paired runs) | wall | CPU | x the UPDATE (wall / CPU) | RSS |"
    )
    report("|---|---|---|---|---|")
    report(
        f"| baseline: one `UPDATE … SET unsubscribe_all = 1, updated = ?` ({int(updates[0]['changed']):,} rows), "
        f"committed and checkpointed | {base:.2f} s | {base_cpu:.2f} s | 1 | {_median(updates, 'rss_mib'):.0f} MiB |"
    )
    report(
        f"| for reference: the same without `updated` | {bare['seconds']:.2f} s | {bare['cpu']:.2f} s "
        f"| {bare['seconds'] / base:.2f}x / {bare['cpu'] / base_cpu:.2f}x | {bare['rss_mib']:.0f} MiB |"
    )
    report(
        f"| the job: {int(last['matched']):,} matching, {int(last['changed']):,} changed, {int(last['batches'])} "
        f"batches (`apply_to_matching`), its progress, checkpointed | {job:.2f} s | {job_cpu:.2f} s "
        f"| **{job / base:.2f}x** / {job_cpu / base_cpu:.2f}x | {_median(jobs, 'rss_mib'):.0f} MiB |"
    )
    verdict = "ok" if job <= GOAL * base else "OVER"
    report(
        f"goal: the job <= {GOAL}x the UPDATE, its bookkeeping included: {verdict} (pair by pair: "
        f"{', '.join(f'{r:.2f}x' for r in ratios)}; load average after: {os.getloadavg()[0]:.2f})"
    )
    report(
        f"single-contact writes from another thread during the job (one every 10 ms): {int(writes['writes']):,} "
        f"writes, p50 {writes['p50'] * 1000:.1f} ms, p99 {writes['p99'] * 1000:.1f} ms, worst "
        f"{writes['worst'] * 1000:.1f} ms (issue goal for writes during a bulk job: p99 <= 100 ms, worst <= 500 ms); "
        f"the job took {writes['seconds']:.2f} s with them, and left every one of them subscribed (created after "
        "it began)"
    )
    exact = last["kept_total"] == last["total"] and last["kept_unsub"] == last["unsub"] == last["total"]
    report(
        f"counters after the job: {int(last['kept_total']):,} contacts, {int(last['kept_unsub']):,} unsubscribed; "
        f"COUNT(*): {int(last['total']):,}, {int(last['unsub']):,}: {'exact' if exact else 'WRONG'}"
    )
    if not exact:
        raise AssertionError("the job left the list's counters wrong")
