"""Console page speed at 1,000,000 contacts: server-side time per page view, next to a bare SELECT.

The list is seeded once through ``store.upsert_contacts`` (the path an import takes) and cached under
``bench/out/console-1m/``; later runs reuse it. Each page is requested through the real console app
in-process (login, gate, store, templates) and timed by the ``Server-Timing`` header the gate adds, i.e.
from the request entering the app to the response starting, without the HTTP client's own overhead.

Goals (issue 4): p95 <= 50 ms for first page, next page, status filter, topic filter and attribute
``key = value``; <= 150 ms for an email substring search; counts shown without a full scan.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sescontacts.model import OPT_IN, OPT_OUT, ContactPatch, ContactQuery, Topic, UpsertPolicy

OUT = Path(os.environ.get("SESCONTACTS_BENCH_OUT") or Path(__file__).parent / "out")
N = int(os.environ.get("SESCONTACTS_BENCH_CONTACTS", "1000000"))
DATA_DIR = OUT / ("console-1m" if N == 1_000_000 else f"console-{N}")
BATCH = 10_000
RUNS = 40
PASSWORD = "bench password 1"
DOMAINS = ("example.com", "mail.example.org", "acme.test", "corp.example.net", "gmail.test")
SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


def _patch(i: int) -> ContactPatch:
    domain = DOMAINS[i % len(DOMAINS)]
    preferences = {}
    if i % 7 == 0:
        preferences["offers"] = OPT_IN
    if i % 11 == 0:
        preferences["news"] = OPT_OUT
    return ContactPatch(
        email=f"user{i:07d}@{domain}",
        unsubscribe_all=i % 10 == 0,
        attributes={"Name": f"User {i}", "Company": f"Company {i % 1000}", "Plan": "pro" if i % 4 == 0 else "free"},
        topic_preferences=preferences,
    )


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
        after = f"user{rng.randrange(N):07d}"
        t = time.perf_counter()
        conn.execute(
            "SELECT email, unsubscribe_all, topics, attributes, created, updated FROM contacts "
            "WHERE list_id = ? AND email_key > ? ORDER BY email_key LIMIT 51",
            (list_id, after),
        ).fetchall()
        samples.append((time.perf_counter() - t) * 1000)
    conn.close()
    return _percentiles(samples)


def run(report: Callable[[str], None]) -> None:
    warnings.simplefilter("ignore")  # Starlette's TestClient prefers httpx2 and says so
    from starlette.testclient import TestClient

    from sescontacts.accounts.users import Users
    from sescontacts.console.app import create_console_app

    report(f"{N:,} contacts, {RUNS} requests per scenario, times in ms (server side, Server-Timing)")
    services = seed(report)
    users = Users(services.db)
    if users.get("bench") is None:
        users.add("bench", PASSWORD)
    client = TestClient(create_console_app(services))
    login = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token})

    def timed(url: str, headers: dict[str, str] | None = None) -> tuple[float, str]:
        response = client.get(url, headers=headers or {})
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        match = SERVER_TIMING.search(response.headers.get("server-timing", ""))
        assert match
        return float(match.group(1)), response.text

    first_html = timed("/")[1]
    next_url = re.search(r'rel="next" href="([^"]+)"', first_html).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    rng = random.Random(7)
    htmx = {"HX-Request": "true", "HX-Target": "results"}
    scenarios: list[tuple[str, Callable[[int], str], float, dict[str, str] | None]] = [
        ("first page", lambda i: "/", 50, None),
        ("next page (htmx fragment)", lambda i: next_url, 50, htmx),
        ("status filter: unsubscribed from all", lambda i: "/?status=OPT_OUT", 50, htmx),
        ("topic filter: offers opted in (defaults applied)", lambda i: "/?topic=offers&status=OPT_IN", 50, htmx),
        ("topic filter: news opted out (defaults applied)", lambda i: "/?topic=news&status=OPT_OUT", 50, htmx),
        (
            "attribute key = value (0.1% match)",
            lambda i: f"/?field=attribute&q=Company+%3D+Company+{rng.randrange(1000)}",
            50,
            htmx,
        ),
        ("attribute key present", lambda i: "/?field=attribute&q=Plan", 50, htmx),
        ("domain", lambda i: f"/?field=domain&q={DOMAINS[i % len(DOMAINS)]}", 50, htmx),
        ("email substring, common (user00)", lambda i: f"/?q=user00{i % 10}", 150, htmx),
        ("email substring, rare (1 match)", lambda i: f"/?q=user{rng.randrange(N):07d}", 150, htmx),
        ("email substring, none", lambda i: f"/?q=nobody{i}", 150, htmx),
    ]
    base_p50, base_p95 = _baseline(services.settings.database_path)
    report("")
    scan_p50, scan_p95 = _scan_floor(services.settings.database_path)
    report(f"baseline: bare SELECT of one page on the same file: p50 {base_p50:.2f}, p95 {base_p95:.2f}")
    report(f"baseline: bare LIKE '%x%' scan of all {N:,} addresses: p50 {scan_p50:.1f}, p95 {scan_p95:.1f}")
    report(
        f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work on the box inflates p95)"
    )
    report("")
    report("| view | table p50 | table p95 | goal (p95) | count p95 (/count, lazy) | count shown |")
    report("|---|---:|---:|---:|---:|---|")
    for label, url_for, goal, headers in scenarios:
        timed(url_for(0), headers)  # warm: the first attribute search builds its index
        samples: list[float] = []
        counts: list[float] = []
        shown = "?"
        for i in range(RUNS):
            ms, html = timed(url_for(i), headers)
            samples.append(ms)
            inline = re.search(r'data-testid="matching">([^<]+)<', html)
            lazy = re.search(r'hx-get="(/count[^"]*)"', html)
            if inline:
                shown = inline.group(1)
            elif lazy:
                count_ms, fragment = timed(lazy.group(1).replace("&amp;", "&"), {"HX-Request": "true"})
                counts.append(count_ms)
                shown = re.sub(r"<[^>]+>", "", fragment)
        p50, p95 = _percentiles(samples)
        verdict = "ok" if p95 <= goal else "OVER"
        count_p95 = f"{_percentiles(counts)[1]:.1f}" if counts else "— (known from the page)"
        report(f"| {label} | {p50:.1f} | {p95:.1f} | {goal:.0f} {verdict} | {count_p95} | {shown} |")
    overview = [timed("/overview", {"HX-Request": "true"})[0] for _ in range(10)]
    report(
        f"| overview (stats, cached per write generation) | {statistics.median(overview):.1f} | "
        f"{_percentiles(overview)[1]:.1f} | — | — | — |"
    )
    services.close()
