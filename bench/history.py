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
REPEATS = int(os.environ.get("SESCONTACTS_BENCH_HISTORY_REPEATS", "2"))

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


def _fastest(runs: list[dict[str, object]]) -> dict[str, object]:
    return min(runs, key=lambda r: float(r["seconds"]))  # type: ignore[arg-type]


def _cpu(r: dict[str, object]) -> float:
    return float(r["cpu"]) + float(r["child_cpu"])  # type: ignore[arg-type]


def _run(report: Callable[[str], None], work: Path) -> None:
    first, updated = work / "contacts.csv", work / "contacts-v2.csv"
    generate(first, work / "contacts.jsonl", ROWS)
    generate(updated, work / "contacts-v2.jsonl", ROWS, revision=2)
    report(f"{ROWS:,} rows; load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    report(f"each figure is the fastest of {REPEATS} runs, off and on alternating (this box's disk makes one run vary")
    report("by up to 2x from the next; the fastest of each is the least disturbed)")
    report("")
    report("| step | history off: wall / CPU | history on: wall / CPU | on / off (wall, CPU) | peak RSS on |")
    report("|---|---|---|---|---|")
    labels = ("import into an empty list", "re-import, every contact updated")
    modes = ("off", "on")
    runs: dict[tuple[str, str], list[dict[str, object]]] = {(m, label): [] for m in modes for label in labels}
    undos: list[tuple[dict[str, object], dict[str, object]]] = []
    for attempt in range(REPEATS):
        for mode in modes:
            data = work / f"data-{mode}-{attempt}"
            for label, source in zip(labels, (first, updated), strict=True):
                runs[mode, label].append(_child(mode, "import", data, str(source)))
            shutil.rmtree(data, ignore_errors=True)
        # The undo of an import of new contacts, against that import's own time, in a fresh data dir.
        data = work / f"data-undo-{attempt}"
        imported = _child("on", "import", data, str(first))
        undos.append((imported, _child("on", "undo", data, str(imported["job"]))))
        shutil.rmtree(data, ignore_errors=True)
    for label in labels:
        off, on = _fastest(runs["off", label]), _fastest(runs["on", label])
        report(
            f"| {label} | {float(off['seconds']):.2f} s / {_cpu(off):.1f} s "  # type: ignore[arg-type]
            f"| {float(on['seconds']):.2f} s / {_cpu(on):.1f} s "  # type: ignore[arg-type]
            f"| **{float(on['seconds']) / float(off['seconds']):.2f}x**, {_cpu(on) / _cpu(off):.2f}x "  # type: ignore[arg-type]
            f"| {float(on['rss_mib']):.0f} MiB (parser {float(on['child_rss_mib']):.0f} MiB) |"  # type: ignore[arg-type]
        )
    label = labels[1]
    sizes: dict[str, int] = _fastest(runs["on", label])["sizes"]  # type: ignore[assignment]
    report("")
    report(
        f"size after both imports (history on): contacts table and indexes {_mib(sizes, 'contacts'):.0f} MiB, "
        f"history {_mib(sizes, 'contact_changes'):.0f} MiB ("
        + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in sorted(sizes.items()) if k.startswith("contact_changes"))
        + ")"
    )
    imported, undone = min(undos, key=lambda pair: float(pair[1]["seconds"]) / float(pair[0]["seconds"]))  # type: ignore[arg-type]
    imported_fastest = min(float(i["seconds"]) for i, _ in undos)  # type: ignore[arg-type]
    undone_fastest = min(float(u["seconds"]) for _, u in undos)  # type: ignore[arg-type]
    report(
        f"undo of the {ROWS:,}-row import: fastest {undone_fastest:.2f} s against the fastest import's "
        f"{imported_fastest:.2f} s = **{undone_fastest / imported_fastest:.2f}x**; best pair "
        f"{float(undone['seconds']):.2f} / {float(imported['seconds']):.2f} s (CPU {float(undone['cpu']):.1f} s); "  # type: ignore[arg-type]
        f"counts {undone['counts']}; peak RSS {float(undone['rss_mib']):.0f} MiB"  # type: ignore[arg-type]
    )
    report("goals: import on <= 1.15x off, re-import all updated <= 1.5x, undo <= 1.5x the import, RSS <= 150 MiB")
    report(f"load average after: {os.getloadavg()[0]:.2f}")
