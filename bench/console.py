"""Console page speed at 1,000,000 contacts: server-side time per page view, next to bare SQL baselines.

The list is seeded once in the bulk bench's seed format (``bench/bulk.py``: realistic names, ~1% IDN
domains, plus-addresses and upper case; Company (null for 1 in 6), City, Plan, SignupYear), plus the values
users search for as often as common ones: a unique numeric ID ``k2``, a unique string ``Account``, a boolean
``Verified`` and a key only 1 in 5,000 contacts has (``VIP``). It goes through ``store.upsert_contacts`` (the
path an import takes) and is cached under ``bench/out/console-*/``; later runs reuse it. Each page is
requested through the real console app in-process (login, gate, store, templates) and timed by the
``Server-Timing`` header the gate adds, i.e. from the request entering the app to the response starting,
without the HTTP client's own overhead.

Goal (issue 10): p95 <= 50 ms for every view at 1M contacts, whatever is searched; needles shorter than three
characters may scan, with their own figure. Counts are exact or shown as a bound.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import statistics
import time
import urllib.parse
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sescontacts.model import OPT_IN, OPT_OUT, ContactPatch, ContactQuery, Topic, UpsertPolicy

from .bulk import CITIES, COMPANIES, DOMAINS, FIRST, IDN, LAST

OUT = Path(os.environ.get("SESCONTACTS_BENCH_OUT") or Path(__file__).parent / "out")
N = int(os.environ.get("SESCONTACTS_BENCH_CONTACTS", "1000000"))
DATA_DIR = OUT / (f"console-seed2-{N // 1_000_000}m" if N % 1_000_000 == 0 else f"console-seed2-{N}")
BATCH = 10_000
RUNS = int(os.environ.get("SESCONTACTS_BENCH_RUNS", "40"))
PASSWORD = "bench password 1"
SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")
K2_MODULUS = 10_000_019  # prime: k2 = n * 7919 mod it is unique for every contact of a list this size


def k2(n: int) -> int:
    return n * 7919 % K2_MODULUS


def _row(n: int) -> tuple[str, dict[str, object], bool]:
    """Contact n as the bulk bench's generator would make it (its own random stream, so any n is known)."""
    rnd = random.Random(f"contact-{n}")  # integer seeds correlate across neighbours: one IDN domain never came up
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    r = rnd.random()
    domain = rnd.choice(IDN) if r < 0.01 else rnd.choice(DOMAINS)
    local = f"{first}.{last}{n}"
    if 0.01 <= r < 0.02:
        local += f"+news{n % 7}"
    email = f"{local}@{domain}"
    if 0.02 <= r < 0.03:
        email = email.upper() if domain.isascii() else local.upper() + "@" + domain
    attributes: dict[str, object] = {
        "Name": f"{first.title()} {last.title()}",
        "Company": rnd.choice(COMPANIES),
        "City": rnd.choice(CITIES),
        "Plan": rnd.choice(["free", "pro", "team"]),
        "SignupYear": 2015 + n % 10,
        "k2": k2(n),
        "Account": f"AC-{k2(n):08d}",
        "Verified": n % 3 != 0,
    }
    if n % 5000 == 17:
        attributes["VIP"] = True
    return email, attributes, rnd.random() < 0.05


def _patch(n: int) -> ContactPatch:
    email, attributes, unsubscribed = _row(n)
    preferences = {}
    if n % 7 == 0:
        preferences["offers"] = OPT_IN
    if n % 11 == 0:
        preferences["news"] = OPT_OUT
    return ContactPatch(email=email, unsubscribe_all=unsubscribed, attributes=attributes, topic_preferences=preferences)


def _open(data_dir: Path) -> Any:
    from sescontacts.services import Services
    from sescontacts.settings import Settings

    services = Services.open(Settings(data_dir=data_dir))
    services.ensure_default_list()
    return services


def seed(report: Callable[[str], None]) -> Any:
    services = _open(DATA_DIR)
    store, name = services.store, services.settings.contact_list
    have = store.count_contacts(name, ContactQuery()).value
    if have >= N:
        report(f"- reusing the seeded list in {DATA_DIR} ({have:,} contacts)")
        return services
    store.update_list(name, topics=[Topic("news", "News", OPT_IN), Topic("offers", "Offers", OPT_OUT)])
    started = time.perf_counter()
    for start in range(have, N, BATCH):
        store.upsert_contacts(name, [_patch(i) for i in range(start, min(N, start + BATCH))], UpsertPolicy())
    elapsed = time.perf_counter() - started
    report(f"- seeded {N - have:,} contacts through store.upsert_contacts in {elapsed:.1f} s")
    return services


def build_index(db: Any, db_path: Path, report: Callable[[str], None]) -> None:
    """Run the search indexer (the server's background thread) to the end, as the server would after the
    seeding import, and say what it cost: time, CPU, the longest write transaction, the file's growth."""
    from sescontacts.store.sqlite import SearchIndexer

    size = db_path.stat().st_size
    indexer = SearchIndexer(db)
    started, cpu = time.perf_counter(), time.process_time()
    steps, longest = 0, 0.0
    while True:
        t = time.perf_counter()
        if not indexer.step(ignore_pauses=True):
            break
        longest = max(longest, time.perf_counter() - t)
        steps += 1
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    db.reader().execute(
        "PRAGMA wal_checkpoint(TRUNCATE)"
    ).fetchall()  # the WAL folded in: the file's size is the data's
    grown = db_path.stat().st_size
    if steps:
        report(
            f"- search index built by the indexer in {wall:.1f} s (CPU {cpu:.1f} s, {steps} steps, longest write "
            f"transaction {longest * 1000:.0f} ms); database file {size / 2**20:,.0f} -> {grown / 2**20:,.0f} MiB"
        )
    else:
        report(f"- search index current; database file {grown / 2**20:,.0f} MiB")


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def _scan_floor(db_path: Path) -> tuple[float, float]:
    """One bare substring scan of the whole list: what any unindexed substring search costs on this box."""
    conn = sqlite3.connect(db_path)
    samples = []
    for i in range(5):
        t = time.perf_counter()
        conn.execute("SELECT count(*) FROM contacts WHERE email_key LIKE ?", (f"%nobody{i}%",)).fetchall()
        samples.append((time.perf_counter() - t) * 1000)
    conn.close()
    return _percentiles(samples)


def _baseline(db_path: Path) -> tuple[float, float]:
    """A bare keyset SELECT of one 50-row page on the same file: the floor any page view stands on."""
    conn = sqlite3.connect(db_path)
    (list_id,) = conn.execute("SELECT id FROM contact_lists LIMIT 1").fetchone()
    samples = []
    rng = random.Random(1)
    for _ in range(RUNS * 5):
        after = _row(rng.randrange(N))[0].lower()
        t = time.perf_counter()
        conn.execute(
            "SELECT email, unsubscribe_all, topics, attributes, created, updated FROM contacts "
            "WHERE list_id = ? AND email_key > ? ORDER BY email_key LIMIT 51",
            (list_id, after),
        ).fetchall()
        samples.append((time.perf_counter() - t) * 1000)
    conn.close()
    return _percentiles(samples)


def _search(q: str, field: str = "email") -> str:
    return "/?" + urllib.parse.urlencode({"q": q, **({"field": field} if field != "email" else {})})


def _scenarios(next_url: str) -> list[tuple[str, Callable[[int], str], float | None, bool]]:
    """(label, url for request i, goal p95 in ms or None, htmx fragment)."""
    rng = random.Random(7)

    def someone() -> int:
        return rng.randrange(N)

    def local_part(n: int) -> str:
        return _row(n)[0].rpartition("@")[0]

    return [
        ("first page", lambda i: "/", 50, False),
        ("next page (htmx fragment)", lambda i: next_url, 50, True),
        ("status filter: unsubscribed from all", lambda i: "/?status=OPT_OUT", 50, True),
        ("topic filter: offers opted in (defaults applied)", lambda i: "/?topic=offers&status=OPT_IN", 50, True),
        ("topic filter: news opted out (defaults applied)", lambda i: "/?topic=news&status=OPT_OUT", 50, True),
        ("attribute Company = Globex (string, 1 in 6)", lambda i: _search("Company = Globex", "attribute"), 50, True),
        (
            "attribute Account = AC-… (string, 1 contact)",
            lambda i: _search(f"Account = AC-{k2(someone()):08d}", "attribute"),
            50,
            True,
        ),
        ("attribute k2 = … (number, 1 contact)", lambda i: _search(f"k2 = {k2(someone())}", "attribute"), 50, True),
        (
            "attribute SignupYear = 2020 (number, 1 in 10)",
            lambda i: _search("SignupYear = 2020", "attribute"),
            50,
            True,
        ),
        ("attribute Verified = false (boolean, 1 in 3)", lambda i: _search("Verified = false", "attribute"), 50, True),
        ("attribute Company = null (null, 1 in 6)", lambda i: _search("Company = null", "attribute"), 50, True),
        ("attribute Company = Nobody (no match)", lambda i: _search(f"Company = Nobody{i}", "attribute"), 50, True),
        ("attribute key present: Plan (all)", lambda i: _search("Plan", "attribute"), 50, True),
        ("attribute key present: VIP (1 in 5,000)", lambda i: _search("VIP", "attribute"), 50, True),
        ("domain, common (example.com)", lambda i: _search("example.com", "domain"), 50, True),
        ("domain, rare (пример.рф, 1 in 400)", lambda i: _search("пример.рф", "domain"), 50, True),
        ("email substring, common (a.s…, 1 in 40)", lambda i: _search(("a.sm", "a.si")[i % 2]), 50, True),
        ("email substring, some (an1…, 1 in 1,000)", lambda i: _search(f"an1{i % 10}"), 50, True),
        ("email substring, few (silva99…, ~100)", lambda i: _search(f"silva99{i % 10}"), 50, True),
        ("email substring, rare (1 match)", lambda i: _search(f"{local_part(someone())}@"), 50, True),
        ("email substring, none", lambda i: _search(f"nobody{i}"), 50, True),
        ("email substring, 2 characters, none (scans)", lambda i: _search("qx"), None, True),
    ]


def run(report: Callable[[str], None]) -> None:
    warnings.simplefilter("ignore")  # Starlette's TestClient prefers httpx2 and says so
    from starlette.testclient import TestClient

    from sescontacts.accounts.users import Users
    from sescontacts.console.app import create_console_app

    report(f"{N:,} contacts, {RUNS} requests per scenario, times in ms (server side, Server-Timing)")
    services = seed(report)
    db_path = services.settings.database_path
    build_index(services.db, db_path, report)
    users = Users(services.db)
    if users.get("bench") is None:
        users.add("bench", PASSWORD)
    client = TestClient(create_console_app(services))
    login = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token})

    def timed(url: str, htmx: bool = False, target: str = "results") -> tuple[float, str]:
        headers = {"HX-Request": "true", "HX-Target": target} if htmx else {}
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        match = SERVER_TIMING.search(response.headers.get("server-timing", ""))
        assert match
        return float(match.group(1)), response.text

    first_html = timed("/")[1]
    next_url = re.search(r'rel="next" href="([^"]+)"', first_html).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    base_p50, base_p95 = _baseline(db_path)
    scan_p50, scan_p95 = _scan_floor(db_path)
    report("")
    report(f"baseline: bare SELECT of one page on the same file: p50 {base_p50:.2f}, p95 {base_p95:.2f}")
    report(f"baseline: bare LIKE '%x%' scan of all {N:,} addresses: p50 {scan_p50:.1f}, p95 {scan_p95:.1f}")
    report(
        f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work on the box inflates p95)"
    )
    report("")
    report("| view | table p50 | table p95 | goal (p95) | count p95 (/count, lazy) | count shown |")
    report("|---|---:|---:|---:|---:|---|")
    for label, url_for, goal, htmx in _scenarios(next_url):
        timed(url_for(0), htmx)  # warm
        samples: list[float] = []
        counts: list[float] = []
        shown = "?"
        for i in range(RUNS):
            ms, html = timed(url_for(i), htmx)
            samples.append(ms)
            inline = re.search(r'data-testid="matching">([^<]+)<', html)
            lazy = re.search(r'hx-get="(/count[^"]*)"', html)
            if inline:
                shown = inline.group(1)
            elif lazy:
                count_ms, fragment = timed(lazy.group(1).replace("&amp;", "&"), True, "matching")
                counts.append(count_ms)
                shown = re.sub(r"<[^>]+>", "", fragment).strip()
        p50, p95 = _percentiles(samples)
        verdict = "—" if goal is None else f"{goal:.0f} {'ok' if p95 <= goal else 'OVER'}"
        count_p95 = f"{_percentiles(counts)[1]:.1f}" if counts else "— (known from the page)"
        report(f"| {label} | {p50:.1f} | {p95:.1f} | {verdict} | {count_p95} | {shown} |")
    overview = [timed("/overview", True)[0] for _ in range(10)]
    report(
        f"| overview (stats, cached per write generation) | {statistics.median(overview):.1f} | "
        f"{_percentiles(overview)[1]:.1f} | — | — | — |"
    )
    services.close()
