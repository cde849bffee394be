"""Bulk import/export figures next to their raw floors, measured in the same run.

Generates 1,000,000 rows in the page's CSV format (realistic attributes, ~1% plus-addresses, ~1% upper
case, some IDN domains) and the same rows as JSON Lines, then measures, each in a fresh child process (so
peak RSS is the step's own):

- the raw floor: the ``sqlite3`` shell's ``.import`` of the CSV into a table with an email primary key;
- import into an empty list (CSV and JSONL), re-import over the full list (all updates), delete of all
  rows, export (CSV) against the ``sqlite3`` shell's own CSV export of the same rows;
- peak RSS at 1M rows and, with ``SESCONTACTS_BENCH_5M=1``, at 5M rows (memory must not grow with size).

``python -m bench bulk``; ``SESCONTACTS_BENCH_ROWS`` changes the size (for a quick look).
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROWS = int(os.environ.get("SESCONTACTS_BENCH_ROWS", "1000000"))
FIVE_M = os.environ.get("SESCONTACTS_BENCH_5M") == "1"

FIRST = ["john", "jane", "maria", "li", "ahmed", "olga", "pierre", "yuki", "sam", "noor", "ana", "kofi"]
LAST = ["doe", "smith", "garcia", "wang", "khan", "ivanova", "martin", "tanaka", "lee", "haddad", "silva"]
DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "example.co.uk", "example.io"]
IDN = ["bücher.example", "münchen.example", "例え.jp", "пример.рф"]
COMPANIES = ["ACM Inc", "Globex", "Initech", "Umbrella", "Hooli", None]
CITIES = ["Berlin", "Lagos", "Lima", "Osaka", "Paris", "Toronto", "Pune"]


CSV_HEADER = "emailAddress,unsubscribeAll,attributesData\n"


def csv_line(email: str, unsubscribed: bool, attributes_text: str) -> str:
    """One seed-format CSV row: the attributes' JSON text in one quoted cell."""
    return f'{email},{"true" if unsubscribed else "false"},"{attributes_text.replace(chr(34), chr(34) * 2)}"\n'


def generate(csv_path: Path, jsonl_path: Path, rows: int, seed: int = 7, *, revision: int = 0) -> None:
    """Write both files, row for row the same contacts. A ``revision`` keeps every address and changes every
    row's attributes (a re-import of it updates every contact)."""
    rnd = random.Random(seed)
    with open(csv_path, "w", encoding="utf-8", newline="") as c, open(jsonl_path, "w", encoding="utf-8") as j:
        c.write(CSV_HEADER)
        for n in range(rows):
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            r = rnd.random()
            domain = rnd.choice(IDN) if r < 0.01 else rnd.choice(DOMAINS)
            local = f"{first}.{last}{n}"
            if 0.01 <= r < 0.02:
                local += f"+news{n % 7}"
            email = f"{local}@{domain}"
            if 0.02 <= r < 0.03:
                email = email.upper() if domain.isascii() else local.upper() + "@" + domain
            unsubscribed = rnd.random() < 0.05
            attrs = {
                "Name": f"{first.title()} {last.title()}",
                "Company": rnd.choice(COMPANIES),
                "City": rnd.choice(CITIES),
                "Plan": rnd.choice(["free", "pro", "team"]),
                "SignupYear": 2015 + n % 10,
            }
            if revision:
                attrs["Revision"] = revision
            text = json.dumps(attrs, ensure_ascii=False)
            c.write(csv_line(email, unsubscribed, text))
            j.write(
                json.dumps(
                    {"emailAddress": email, "unsubscribeAll": unsubscribed, "attributesData": text},
                    ensure_ascii=False,
                )
                + "\n"
            )


CHILD = r"""
import resource, sys, time, json
from pathlib import Path
from sescontacts.settings import Settings
from sescontacts.services import Services
from sescontacts.bulk.report import ImportOptions
from sescontacts.bulk.exporter import export
from sescontacts.model import ContactQuery
step, data_dir, path = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
s = Services.open(Settings(data_dir=data_dir, max_contact_lists=None))
s.ensure_default_list()
t = time.perf_counter()
_u = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = _u.ru_utime + _u.ru_stime
if step == "export":
    with open(path, "wb") as out:
        n = export(s.store, "contacts", ContactQuery(), "csv", out)
    result = {"rows": n}
else:
    action = "delete" if step == "delete" else "add"
    job = s.jobs.submit(path, ImportOptions("contacts", action=action), file_name=path.name, run_here=True)
    job = s.jobs.run(job.id)
    assert job.state == "completed", (job.state, job.error)
    result = {"counts": job.counts, "rows": job.rows_done}
result["seconds"] = time.perf_counter() - t
usage = resource.getrusage(resource.RUSAGE_SELF)
# This process's own peak (ru_maxrss would include the parent's, kept across fork and exec).
result["rss_mib"] = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
result["cpu"] = usage.ru_utime + usage.ru_stime - cpu0
# The importer's parser process (bulk/parse.py), reaped by now: its CPU and its own peak RSS.
children = resource.getrusage(resource.RUSAGE_CHILDREN)
result["child_cpu"] = children.ru_utime + children.ru_stime
result["child_rss_mib"] = children.ru_maxrss / 1024
s.close()
print(json.dumps(result))
"""


def _child(step: str, data_dir: Path, path: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, step, str(data_dir), str(path)], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _timed(func: Callable[[], object]) -> float:
    t = time.perf_counter()
    func()
    return time.perf_counter() - t


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


FLOOR_CPU: dict[str, float] = {}


def _sqlite_floor(csv_path: Path, work: Path, *, export: bool = True) -> tuple[float, float, Path]:
    """The sqlite3 shell's .import into an email-keyed table, then (unless not ``export``) its own CSV export
    of that table."""
    db = work / "floor.db"
    db.unlink(missing_ok=True)
    schema = "CREATE TABLE t (emailAddress TEXT PRIMARY KEY, unsubscribeAll TEXT, attributesData TEXT);"
    subprocess.run(["sqlite3", str(db), schema], check=True)
    cpu = _children_cpu()
    t_import = _timed(
        lambda: subprocess.run(
            ["sqlite3", str(db), f".import --csv --skip 1 {csv_path} t"], check=True, capture_output=True
        )
    )
    FLOOR_CPU["import"] = _children_cpu() - cpu
    if not export:
        return t_import, 0.0, db
    out = work / "floor-export.csv"
    cpu = _children_cpu()
    t_export = _timed(
        lambda: subprocess.run(
            ["sqlite3", "-csv", "-header", str(db), f".once {out}", "SELECT * FROM t ORDER BY emailAddress;"],
            check=True,
        )
    )
    FLOOR_CPU["export"] = _children_cpu() - cpu
    return t_import, t_export, db


def _ratio(seconds: float, floor: float) -> str:
    return f"{seconds:6.2f} s  ({seconds / floor:4.2f}x floor, {ROWS / seconds / 1000:5.0f}k rows/s)"


def run(report: Callable[[str], None]) -> None:
    if shutil.which("sqlite3") is None:
        report("sqlite3 shell not installed: `make install-test` installs it")
        return
    work = Path(tempfile.mkdtemp(prefix="sescontacts-bench-bulk-"))
    try:
        _run(report, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(report: Callable[[str], None], work: Path) -> None:
    csv_path, jsonl_path = work / "contacts.csv", work / "contacts.jsonl"
    t = _timed(lambda: generate(csv_path, jsonl_path, ROWS))
    report(
        f"generated {ROWS:,} rows in {t:.1f} s: CSV {csv_path.stat().st_size / 2**20:.0f} MiB, "
        f"JSONL {jsonl_path.stat().st_size / 2**20:.0f} MiB"
    )
    report(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores; other work distorts wall times)")
    floor, floor_export, _ = _sqlite_floor(csv_path, work)
    report(f"raw floor, sqlite3 shell .import (email primary key): {floor:.2f} s (CPU {FLOOR_CPU['import']:.2f} s)")
    report(
        f"sqlite3 shell CSV export of the same rows:            {floor_export:.2f} s (CPU {FLOOR_CPU['export']:.2f} s)"
    )
    report("")
    report("CPU time is given next to wall time: on a shared 2-core box the wall ratio moves with the load, the")
    report("CPU ratio much less. An import parses in a child process while this one writes (bulk/parse.py): its")
    report("CPU counts in the step's CPU, and is shown apart, as is its peak RSS (two processes, two cores, so")
    report("the wall time can be below the CPU time).")
    report("")
    report("| step | wall | CPU (x floor's CPU) | peak RSS |")
    report("|---|---|---|---|")

    def step(label: str, name: str, data: Path, path: Path, base: float) -> dict[str, object]:
        r = _child(name, data, path)
        parser = float(r["child_cpu"])  # type: ignore[arg-type]
        cpu = float(r["cpu"]) + parser  # type: ignore[arg-type]
        report(
            f"| {label} | {_ratio(float(r['seconds']), base)} | {cpu:.1f} s ({cpu / FLOOR_CPU['import']:.2f}x; "
            f"parser {parser:.1f} s) | {float(r['rss_mib']):.0f} MiB"  # type: ignore[arg-type]
            + (f" (parser {float(r['child_rss_mib']):.0f} MiB)" if parser else "")  # type: ignore[arg-type]
            + " |"
        )
        return r

    updated_csv, updated_jsonl = work / "contacts-v2.csv", work / "contacts-v2.jsonl"
    generate(updated_csv, updated_jsonl, ROWS, revision=2)
    updated_jsonl.unlink()
    data = work / "data-csv"
    step("import CSV into an empty list", "import", data, csv_path, floor)
    step("re-import the same CSV (all unchanged)", "import", data, csv_path, floor)
    step("re-import CSV with new attributes (all updates)", "import", data, updated_csv, floor)
    exported = work / "export.csv"
    r = _child("export", data, exported)
    cpu = float(r["cpu"])  # type: ignore[arg-type]
    report(
        f"| export CSV | {float(r['seconds']):6.2f} s  ({float(r['seconds']) / floor_export:4.2f}x sqlite3 export) "  # type: ignore[arg-type]
        f"| {cpu:.1f} s ({cpu / FLOOR_CPU['export']:.2f}x) | {float(r['rss_mib']):.0f} MiB |"  # type: ignore[arg-type]
    )
    step("delete all (CSV)", "delete", data, csv_path, floor)
    data_json = work / "data-jsonl"
    step("import JSONL into an empty list", "import", data_json, jsonl_path, floor)
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(data_json, ignore_errors=True)
    report(
        "goals: import CSV and JSONL <= 2.0x floor, re-import unchanged <= 2.0x, re-import all updated <= 3.0x, "
        "delete <= 1.5x, export <= 1.2x sqlite3 export, peak RSS <= 150 MiB"
    )
    report(f"load average after: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    if FIVE_M:
        big_csv, big_jsonl = work / "big.csv", work / "big.jsonl"
        generate(big_csv, big_jsonl, ROWS * 5, seed=11)
        r = _child("import", work / "data-5m", big_csv)
        report(
            f"5x rows ({ROWS * 5:,}) CSV import: {float(r['seconds']):.1f} s, peak RSS {float(r['rss_mib']):.0f} MiB "  # type: ignore[arg-type]
            "(memory must not grow with size)"
        )
    else:
        report("5M-row memory check skipped (set SESCONTACTS_BENCH_5M=1)")
    _ = resource  # peak RSS is read in the child processes
