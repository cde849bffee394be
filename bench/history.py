"""The contact history's cost (issue 13): imports with the history on against the same imports with it off,
measured in the same run, each step in a fresh child process (its own peak RSS), CPU next to wall time.

- a 1,000,000-row import into an empty list, on and off (goal: on <= 1.15x off);
- a re-import of the same addresses with new attributes, which updates every contact (goal: <= 1.5x off);
- the undo of the 1,000,000-row import, against that import's own time (goal: <= 1.5x);
- the history tables' size next to the contacts table's; peak RSS of every step (goal: <= 150 MiB).

``python -m bench history``; ``SESCONTACTS_BENCH_ROWS`` changes the size (for a quick look).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .bulk import generate

ROWS = int(os.environ.get("SESCONTACTS_BENCH_ROWS", "1000000"))

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from sescontacts.services import Services
from sescontacts.settings import Settings
from sescontacts.bulk.report import ImportOptions
from sescontacts.store.sqlite.history import set_recording
mode, step, data_dir, arg = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
s = Services.open(Settings(data_dir=data_dir, max_contact_lists=None))
s.ensure_default_list()
with s.db.write() as conn:
    set_recording(conn, mode != "off")
    if mode == "on-without-contact-index":  # a diagnostic: what the per-contact index costs
        conn.execute("DROP INDEX IF EXISTS contact_changes_by_contact")
t = time.perf_counter()
cpu0 = time.process_time()
result = {}
if step == "import":
    job = s.jobs.submit(Path(arg), ImportOptions("contacts", action="add"), file_name=Path(arg).name, run_here=True)
    job = s.jobs.run(job.id)
    result["job"] = job.id
elif step == "undo":
    job = s.undo.start(arg, "keep", "bench")
    job = s.jobs.run(job.id)
    result["job"] = job.id
assert job.state == "completed", (job.state, job.error)
result["counts"] = {k: v for k, v in job.counts.items() if v}
result["seconds"] = time.perf_counter() - t
result["cpu"] = time.process_time() - cpu0
children = resource.getrusage(resource.RUSAGE_CHILDREN)
result["child_cpu"] = children.ru_utime + children.ru_stime
result["rss_mib"] = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
result["child_rss_mib"] = children.ru_maxrss / 1024
result["sizes"] = s.history.table_sizes()
s.close()
print(json.dumps(result))
"""


def _child(mode: str, step: str, data_dir: Path, arg: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, step, str(data_dir), arg], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _mib(sizes: dict[str, int], prefix: str) -> float:
    return sum(v for k, v in sizes.items() if k.startswith(prefix)) / 2**20


def run(report: Callable[[str], None]) -> None:
    work = Path(tempfile.mkdtemp(prefix="sescontacts-bench-history-"))
    try:
        _run(report, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(report: Callable[[str], None], work: Path) -> None:
    first, updated = work / "contacts.csv", work / "contacts-v2.csv"
    generate(first, work / "contacts.jsonl", ROWS)
    generate(updated, work / "contacts-v2.jsonl", ROWS, revision=2)
    report(f"{ROWS:,} rows; load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    report("")
    report("| step | history off: wall / CPU | history on: wall / CPU | on / off (wall, CPU) | peak RSS on |")
    report("|---|---|---|---|---|")
    results: dict[str, dict[str, dict[str, object]]] = {"off": {}, "on": {}}
    # Off and on alternate step by step, so that a busy moment of the box falls on both alike.
    for label, step, source in (
        ("import into an empty list", "import", first),
        ("re-import, every contact updated", "import", updated),
    ):
        for mode in ("off", "on"):
            results[mode][label] = _child(mode, step, work / f"data-{mode}", str(source))
        off, on = results["off"][label], results["on"][label]
        off_cpu = float(off["cpu"]) + float(off["child_cpu"])  # type: ignore[arg-type]
        on_cpu = float(on["cpu"]) + float(on["child_cpu"])  # type: ignore[arg-type]
        report(
            f"| {label} | {float(off['seconds']):.2f} s / {off_cpu:.1f} s "  # type: ignore[arg-type]
            f"| {float(on['seconds']):.2f} s / {on_cpu:.1f} s "  # type: ignore[arg-type]
            f"| **{float(on['seconds']) / float(off['seconds']):.2f}x**, {on_cpu / off_cpu:.2f}x "  # type: ignore[arg-type]
            f"| {float(on['rss_mib']):.0f} MiB (parser {float(on['child_rss_mib']):.0f} MiB) |"  # type: ignore[arg-type]
        )
    # Where the re-import's extra time goes: the same two imports with the per-contact index dropped.
    bare = work / "data-bare"
    _child("on-without-contact-index", "import", bare, str(first))
    without = _child("on-without-contact-index", "import", bare, str(updated))
    off = results["off"]["re-import, every contact updated"]
    report(
        f"diagnostic: the re-import with the history on but without its per-contact index took "
        f"{float(without['seconds']):.2f} s / CPU {float(without['cpu']) + float(without['child_cpu']):.1f} s "  # type: ignore[arg-type]
        f"= {float(without['seconds']) / float(off['seconds']):.2f}x off"  # type: ignore[arg-type]
    )
    sizes: dict[str, int] = results["on"]["re-import, every contact updated"]["sizes"]  # type: ignore[assignment]
    report("")
    report(
        f"size after both imports (history on): contacts table and indexes {_mib(sizes, 'contacts'):.0f} MiB, "
        f"history {_mib(sizes, 'contact_changes'):.0f} MiB ("
        + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in sorted(sizes.items()) if k.startswith("contact_changes"))
        + ")"
    )
    # The undo of an import of new contacts, against that import's own time, in a fresh data dir.
    data = work / "data-undo"
    imported = _child("on", "import", data, str(first))
    undone = _child("on", "undo", data, str(imported["job"]))
    report(
        f"undo of the {ROWS:,}-row import: {float(undone['seconds']):.2f} s (CPU {float(undone['cpu']):.1f} s) "  # type: ignore[arg-type]
        f"= **{float(undone['seconds']) / float(imported['seconds']):.2f}x** the import's "  # type: ignore[arg-type]
        f"{float(imported['seconds']):.2f} s; counts {undone['counts']}; peak RSS {float(undone['rss_mib']):.0f} MiB"  # type: ignore[arg-type]
    )
    report("goals: import on <= 1.15x off, re-import all updated <= 1.5x, undo <= 1.5x the import, RSS <= 150 MiB")
    report(f"load average after: {os.getloadavg()[0]:.2f}")
