"""Ten million contacts on one box (issue 10, section 3): the whole way from a CSV to a searched list, at
``SESCONTACTS_BENCH_SCALE_ROWS`` contacts (default 10,000,000; several sizes comma-separated, e.g.
``1000000,10000000``, give the table of what grows with N).

For each size, in a scratch directory (``SESCONTACTS_BENCH_SCALE_DIR``, default the system's temp dir; a
10M run needs ~2.2 GB of CSV and ~10 GB of database at its peak, removed at the end):

1. the console bench's contacts 0..N-1 as a seed-format CSV (``console.write_seed_csv``, the bulk bench's
   rows plus the values the console's scenarios search for; kept in ``SESCONTACTS_BENCH_SCALE_CSV_DIR`` if
   set, and reused from there);
2. the raw floor: the ``sqlite3`` shell's ``.import`` of that file (``bulk._sqlite_floor``);
3. ``sescontacts import`` of it into an empty list, its wall and CPU time, the peak RSS of the writer and of
   its parser process (polled from /proc), the database's size next to the CSV's;
4. a few searches before the search index is built (they scan: what a user sees until the indexer catches
   up), then the indexer run to the end (``console.build_index``: how long the scans last);
5. every console view server-side (``console.server_views``), goal p95 <= 100 ms;
6. against ``sescontacts serve`` on the same data: boto3 ListContacts at PageSize 1000 over the first
   ``SESCONTACTS_BENCH_SCALE_PAGES`` pages, against the api bench's canned-page do-nothing server, its
   contacts carrying the list's two topic defaults as ours do (goal >= 70% of its rate); and 4 boto3
   writers (a child process) creating contacts, next to a probe process that takes the write lock every
   5 ms and times each wait for it, alone and then while the views run again: a search must not hold the
   write lock longer than a write would.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import api, bulk, console

SIZES = [int(n) for n in os.environ.get("SESCONTACTS_BENCH_SCALE_ROWS", "10000000").split(",")]
PAGES = int(os.environ.get("SESCONTACTS_BENCH_SCALE_PAGES", "200"))
SCAN_RUNS = int(os.environ.get("SESCONTACTS_BENCH_SCALE_SCAN_RUNS", "3"))
WRITE_RUNS = int(os.environ.get("SESCONTACTS_BENCH_SCALE_WRITE_RUNS", "10"))
QUIET_SECONDS = float(os.environ.get("SESCONTACTS_BENCH_SCALE_QUIET_SECONDS", "5"))
WRITERS = 4
SCRATCH = os.environ.get("SESCONTACTS_BENCH_SCALE_DIR") or None
CSV_DIR = os.environ.get("SESCONTACTS_BENCH_SCALE_CSV_DIR")
# Searches before the index is built: each scans the list (seconds at 10M), so a few, few times.
SCAN_VIEWS = (
    "attribute Company = Globex (string, 1 in 6)",
    "attribute k2 = … (number, 1 contact)",
    "email substring, rare (1 match)",
    "email substring, none",
)
Report = Callable[[str], None]


def run(report: Report) -> None:
    if shutil.which("sqlite3") is None:
        report("sqlite3 shell not installed: `make install-test` installs it")
        return
    root = Path(SCRATCH or tempfile.gettempdir())
    free = shutil.disk_usage(root).free
    report(f"sizes {', '.join(f'{n:,}' for n in SIZES)}; scratch in {root} ({free / 2**30:,.0f} GiB free)")
    report(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    results = {}
    for n in SIZES:
        work = Path(tempfile.mkdtemp(prefix="sescontacts-bench-scale-", dir=root))
        try:
            results[n] = _one_size(n, work, report)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    _grows(results, report)


def _csv(n: int, work: Path, report: Report) -> Path:
    path = Path(CSV_DIR or work) / f"scale-{n}.csv"
    if path.exists():
        report(f"- reusing {path} ({path.stat().st_size / 2**20:,.0f} MiB)")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    console.write_seed_csv(path, n)
    report(f"- generated {path.name} in {time.perf_counter() - started:.1f} s")
    return path


def _proc_children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):  # the task ended between listing and reading
            found += [int(child) for child in task.read_text().split()]
    return found


def _peak_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass  # the process ended
    return 0


def _import(data_dir: Path, csv_path: Path, log: Path) -> dict[str, float]:
    """``sescontacts import`` as a user runs it: wall, CPU (its parser process included), and the peak RSS of
    the writer and of its parser process, polled from /proc (a peak is never lower than the last poll)."""
    from tests.support.server import sescontacts_command

    command = [*sescontacts_command(), "import", "--data-dir", str(data_dir), "--contact-list", "contacts"]
    with open(log, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen([*command, str(csv_path)], stdout=out, stderr=subprocess.STDOUT)
    writer = parser = 0
    while True:
        writer = max(writer, _peak_rss_kib(process.pid))
        for child in _proc_children(process.pid):
            parser = max(parser, _peak_rss_kib(child))
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.2)  # polling the child's peak RSS
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"sescontacts import exited {process.returncode}: {log.read_text()[-2000:]}")
    return {
        "seconds": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,
        "writer_mib": writer / 1024,
        "parser_mib": parser / 1024,
    }


def _db_bytes(db_path: Path) -> int:
    wal = db_path.with_name(db_path.name + "-wal")
    return db_path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


Children = tuple[list[subprocess.Popen[bytes]], Path, Path, Path]


def _writers(url: str, db_path: Path, tag: str, work: Path) -> Children:
    """The boto3 writers and the lock probe, each a child process (own GIL, away from the views timed here)."""
    stop, out, probe = work / f"stop-{tag}", work / f"writers-{tag}.json", work / f"lock-{tag}.json"
    command = [sys.executable, "-m", "bench.scale"]
    processes = [
        subprocess.Popen([*command, "writers", url, tag, str(stop), str(out)]),
        subprocess.Popen([*command, "lock", str(db_path), str(stop), str(probe)]),
    ]
    return processes, stop, out, probe


def _writers_result(children: Children) -> dict[str, Any]:
    processes, stop, out, probe = children
    stop.touch()
    for process in processes:
        process.wait()
    return {**json.loads(out.read_text()), "lock": sorted(json.loads(probe.read_text()))}


def _describe(result: dict[str, Any]) -> str:
    latencies = sorted(result["latencies"])
    if not latencies:
        return "no calls"
    lock = result["lock"]
    return (
        f"{len(latencies):,} CreateContact calls, p50 {api.ms(latencies[len(latencies) // 2])}, "
        f"p99 {api.ms(api._p99(latencies))}, worst {api.ms(latencies[-1])}, {len(result['errors'])} errors; "
        f"write lock taken {len(lock):,} times by the probe, waited p99 {api.ms(api._p99(lock))}, "
        f"worst {api.ms(lock[-1] if lock else 0)}"
    )


def _one_size(n: int, work: Path, report: Report) -> dict[str, Any]:
    report(f"\n### {n:,} contacts")
    figures: dict[str, Any] = {}
    csv_path = _csv(n, work, report)
    figures["csv"] = csv_path.stat().st_size
    floor, _, floor_db = bulk._sqlite_floor(csv_path, work, export=False)
    floor_db.unlink()
    figures["floor"], figures["floor_cpu"] = floor, bulk.FLOOR_CPU["import"]
    report(f"- raw floor, sqlite3 shell .import: {floor:.1f} s (CPU {figures['floor_cpu']:.1f} s)")

    data_dir = work / "data"
    services = console._open(data_dir)
    services.store.update_list("contacts", topics=console.TOPICS)
    services.close()
    load = os.getloadavg()[0]
    imported = _import(data_dir, csv_path, work / "import.log")
    figures["import"] = imported
    db_path = data_dir / "sescontacts.db"
    figures["db_import"] = _db_bytes(db_path)
    report(
        f"- `sescontacts import`: {imported['seconds']:.1f} s = {imported['seconds'] / floor:.2f}x floor "
        "(goal <= 2.2x); "
        f"CPU {imported['cpu']:.1f} s = {imported['cpu'] / figures['floor_cpu']:.2f}x the floor's; peak RSS writer "
        f"{imported['writer_mib']:.0f} MiB, parser {imported['parser_mib']:.0f} MiB (goal <= 150 MiB); "
        f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    report(
        f"- database {figures['db_import'] / 2**20:,.0f} MiB (with its WAL) for a "
        f"{figures['csv'] / 2**20:,.0f} MiB CSV ({figures['db_import'] / figures['csv']:.2f}x), before the search index"
    )

    services = console._open(data_dir)
    report(f"- searches before the search index is built (they scan), {SCAN_RUNS} requests each, ms:")
    scans = console.server_views(services, n, report, runs=SCAN_RUNS, goals=False, only=SCAN_VIEWS.__contains__)
    figures["scans"] = scans
    figures["index"] = console.build_index(services.db, db_path, report)
    figures["db"] = _db_bytes(db_path)
    report(
        f"- database {figures['db'] / 2**20:,.0f} MiB with the search index = {figures['db'] / figures['csv']:.2f}x "
        f"the CSV's {figures['csv'] / 2**20:,.0f} MiB"
    )
    report(f"- every console view, server side, {console.RUNS} requests each, ms (load {os.getloadavg()[0]:.1f}):")
    figures["views"] = console.server_views(services, n, report, goal=100)
    services.close()

    from tests.support.server import run_server

    # The canned pages carry the list's topic defaults, as ours do: the same answer for boto3 to parse.
    with api.noop_server(console.TOPICS) as noop, run_server(data_dir) as server:
        cpu = time.process_time()
        canned_seconds, canned_seen, _ = api.time_listing(api.client(noop.url))
        client_cpu = (time.process_time() - cpu) / canned_seen  # boto3's own parse, per contact
        server_cpu = api.cpu_seconds(server.process.pid)
        ours_seconds, ours_seen, pages = api.time_listing(api.client(server.url), max_pages=PAGES)
        server_cpu = (api.cpu_seconds(server.process.pid) - server_cpu) / ours_seen
        share = (ours_seen / ours_seconds) / (canned_seen / canned_seconds)
        figures["listing"] = share
        report(
            f"- ListContacts, PageSize {api.PAGE_SIZE}: {ours_seen:,} contacts in {pages} pages in "
            f"{ours_seconds:.2f} s = {ours_seen / ours_seconds:,.0f}/s; "
            f"canned-page server {canned_seen / canned_seconds:,.0f}/s; "
            f"{share:.0%} of it (goal >= 70%); by CPU (what a quiet box would give, the calls being in turn): "
            f"client {client_cpu * 1e6:.1f} us + server {server_cpu * 1e6:.1f} us a contact = "
            f"{client_cpu / (client_cpu + server_cpu):.0%}"
        )
        api.client(server.url).create_contact(ContactListName="contacts", EmailAddress="warm@example.com")
        children = _writers(server.url, db_path, f"quiet{n}", work)
        time.sleep(QUIET_SECONDS)  # the writers alone for this long
        quiet = _writers_result(children)
        report(f"- {WRITERS} boto3 writers alone ({QUIET_SECONDS:.0f} s): {_describe(quiet)}")
        children = _writers(server.url, db_path, f"during{n}", work)
        services = console._open(data_dir)
        report(f"- the views again, {WRITE_RUNS} requests each, while the writers write:")
        console.server_views(services, n, lambda line: None, runs=WRITE_RUNS, goal=100)
        services.close()
        during = _writers_result(children)
        report(
            f"- {WRITERS} boto3 writers while the views ran: {_describe(during)} "
            f"(a search must not hold the write lock longer than a write would); load {os.getloadavg()[0]:.1f}"
        )
        figures["writes"] = {"quiet": sorted(quiet["latencies"]), "during": sorted(during["latencies"])}
        figures["lock"] = {"quiet": quiet["lock"], "during": during["lock"]}
    return figures


def _grows(results: dict[int, dict[str, Any]], report: Report) -> None:
    sizes = sorted(results)
    earlier = console.LAST_RUN if console.LAST_RUN.get("n") not in results else {}
    report("\n### what grows with N")
    heads = [f"{n:,}" for n in sizes]
    if earlier:
        heads.insert(0, f"{earlier['n']:,} (console suite, views only)")
    report("| figure | " + " | ".join(heads) + " |")
    report("|---|" + "---:|" * len(heads))

    def row(label: str, cell: Callable[[dict[str, Any]], str], views_only: str | None = None) -> None:
        cells = [cell(results[n]) for n in sizes]
        if earlier:
            cells.insert(0, views_only or "")
        report(f"| {label} | " + " | ".join(cells) + " |")

    row("CSV, MiB", lambda r: f"{r['csv'] / 2**20:,.0f}")
    row("sqlite3 .import floor, s", lambda r: f"{r['floor']:.1f}")
    row("import, s (x floor)", lambda r: f"{r['import']['seconds']:.1f} ({r['import']['seconds'] / r['floor']:.2f}x)")
    row(
        "import peak RSS writer / parser, MiB",
        lambda r: f"{r['import']['writer_mib']:.0f} / {r['import']['parser_mib']:.0f}",
    )
    row(
        "database after import, MiB (x CSV)",
        lambda r: f"{r['db_import'] / 2**20:,.0f} ({r['db_import'] / r['csv']:.2f}x)",
    )
    row(
        "search index build, s (longest step, ms)",
        lambda r: f"{r['index']['seconds']:.0f} ({r['index']['longest_ms']:.0f})",
    )
    row("database with the index, MiB (x CSV)", lambda r: f"{r['db'] / 2**20:,.0f} ({r['db'] / r['csv']:.2f}x)")
    for label in SCAN_VIEWS:
        row(f"before the index: {label}, p95 ms", lambda r, label=label: f"{r['scans'][label][1]:.0f}")
    for label in results[sizes[0]]["views"]:
        past = earlier.get("views", {}).get(label) if earlier else None
        row(
            f"{label}, p95 ms",
            lambda r, label=label: f"{r['views'][label][1]:.1f}",
            f"{past[1]:.1f}" if past else "",
        )
    row("ListContacts, % of a canned-page server", lambda r: f"{r['listing']:.0%}")

    def tail(samples: list[float]) -> str:
        return f"{api._p99(samples) * 1000:.0f} / {(samples or [0.0])[-1] * 1000:.0f}"

    row("API write p99 / worst, alone, ms", lambda r: tail(r["writes"]["quiet"]))
    row("API write p99 / worst, while the views run, ms", lambda r: tail(r["writes"]["during"]))
    row("write lock wait p99 / worst (probe), alone, ms", lambda r: tail(r["lock"]["quiet"]))
    row("write lock wait p99 / worst (probe), while the views run, ms", lambda r: tail(r["lock"]["during"]))


def _writers_main(url: str, tag: str, stop: Path, out: Path) -> None:
    """A child process of boto3 writers (own GIL, away from the views timed in the bench's process)."""
    api.IMPORT_WRITERS = WRITERS
    latencies, errors, created = api._writers_during(url, lambda: not stop.exists(), tag)
    out.write_text(json.dumps({"latencies": latencies, "errors": errors, "created": len(created)}))


def _lock_main(db_path: Path, stop: Path, out: Path) -> None:
    """Take the write lock every 5 ms (an empty write transaction, the product's own turn-taking) and keep how
    long each wait for it took: what any write waits for whatever holds the lock (searches never should)."""
    from sescontacts.db import Database
    from sescontacts.schema import PRODUCT_SCHEMA

    db = Database(db_path, PRODUCT_SCHEMA)
    waits = []
    while not stop.exists():
        started = time.perf_counter()
        with db.write():
            waits.append(time.perf_counter() - started)
        time.sleep(0.005)  # the probe's own pace
    db.close()
    out.write_text(json.dumps(waits))


if __name__ == "__main__":
    if sys.argv[1:2] == ["writers"]:
        _writers_main(sys.argv[2], sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5]))
    elif sys.argv[1:2] == ["lock"]:
        _lock_main(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
