"""SES API figures, each next to its peers measured in the same run (figures drift on a shared 2-core box).

1. boto3 ``create_contact``, one client, one thread, 2,000 calls against: a do-nothing HTTP server (the
   client's own ceiling), ``moto_server``, and ``sescontacts serve``.
2. ``list_contacts`` paging through 100,000 contacts at PageSize 1000, against the same three. The do-nothing
   server answers canned 1000-contact pages (the client's parse ceiling); moto ignores PageSize and
   NextToken, so it is seeded with 10,000 contacts and answers them in one response.
3. 30 s of 32 concurrent clients on loopback (an asyncio load generator with its own SigV4 signer, keep-alive
   connections) mixing GetContact / ListContacts / CreateContact / UpdateContact: errors, req/s, p50/p99,
   then the final state is read back from the database to prove no write was lost. The same generator
   against a hello-world endpoint of the same stack (uvicorn[standard], one worker) gives the ceiling. Then
   the same 32 clients against `sescontacts serve --workers 2` on the same data dir, beside the one process.

``python -m bench api``. ``SESCONTACTS_BENCH_LOAD_SECONDS`` shortens the load test for a quick look.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.server import (  # noqa: E402 - the repo root must be importable first
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    free_port,
    run_server,
)

from bench import index_drain  # noqa: E402

if TYPE_CHECKING:
    from sescontacts.model import Topic

CREATE_CALLS = 2000
LIST_CONTACTS = 100_000
MOTO_LIST_CONTACTS = int(os.environ.get("SESCONTACTS_BENCH_MOTO_CONTACTS", "10000"))
PAGE_SIZE = 1000
LOAD_CLIENTS = 32
LOAD_SECONDS = float(os.environ.get("SESCONTACTS_BENCH_LOAD_SECONDS", "30"))
LIST_NAME = "contacts"
IMPORT_ROWS = int(os.environ.get("SESCONTACTS_BENCH_IMPORT_ROWS", "1000000"))
IMPORT_WRITERS = 8

Report = Callable[[str], None]


def client(url: str) -> Any:
    return boto3.session.Session().client(
        "sesv2",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 0}),
    )


# -- peers ---------------------------------------------------------------------------------------------------


def _canned_page(n: int, last: bool, defaults: list[dict[str, str]]) -> bytes:
    contacts = [
        {
            "EmailAddress": f"user{n * PAGE_SIZE + i:06d}@example.com",
            "TopicPreferences": [],
            "TopicDefaultPreferences": defaults,
            "UnsubscribeAll": False,
            "LastUpdatedTimestamp": 1764150000.123,
        }
        for i in range(PAGE_SIZE)
    ]
    page: dict[str, Any] = {"Contacts": contacts}
    if not last:
        page["NextToken"] = f"p{n + 1}"
    return json.dumps(page).encode()


def noop_app(defaults: list[dict[str, str]] | None = None) -> Any:
    """A do-nothing SES: ``{}`` for everything, canned pages for ListContacts. Raw ASGI, no framework.
    ``defaults``: each canned contact's TopicDefaultPreferences, the listed list's (boto3 parses a topic's
    default ~3.5 ms a 1000-contact page: a canned page without them would be a ceiling no server could reach)."""
    pages = LIST_CONTACTS // PAGE_SIZE
    canned = [_canned_page(n, n == pages - 1, defaults or []) for n in range(pages)]
    empty = b"{}"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        reply = empty
        if scope["path"].endswith("/contacts/list"):
            token = json.loads(body or b"{}").get("NextToken")
            reply = canned[int(token[1:]) if token else 0]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(reply)).encode()),
                    (b"x-amzn-requestid", b"noop"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": reply})

    return app


@dataclass(frozen=True)
class Peer:
    url: str
    pid: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far: cost per request that contention on a shared box distorts less
    than wall-clock rates do."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def subprocess_server(args: list[str], port: int) -> Iterator[Peer]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_port(port, process)
        yield Peer(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)  # polling while the port opens
    raise TimeoutError(f"port {port} not open after {timeout}s")


@contextmanager
def noop_server(topics: Sequence[Topic] = ()) -> Iterator[Peer]:
    """The do-nothing server, its canned contacts defaulted to ``topics`` as the listed list's contacts are."""
    port = free_port()
    defaults = json.dumps([{"TopicName": t.name, "SubscriptionStatus": t.default_status} for t in topics])
    with subprocess_server([sys.executable, "-m", "bench.api", "noop", str(port), defaults], port) as url:
        yield url


@contextmanager
def moto_server() -> Iterator[Peer]:
    port = free_port()
    moto = Path(sys.executable).parent / "moto_server"
    with subprocess_server([str(moto), "-H", "127.0.0.1", "-p", str(port)], port) as url:
        yield url


def seed_store(data_dir: Path, count: int) -> None:
    """Seed contacts straight through the store (the server is not running yet)."""
    from sescontacts.model import ContactPatch, UpsertPolicy
    from sescontacts.services import Services
    from sescontacts.settings import Settings
    from sescontacts.store.sqlite import SearchIndexer

    services = Services.open(Settings(data_dir=data_dir))
    try:
        services.ensure_default_list()
        for start in range(0, count, 10_000):
            patches = [
                ContactPatch(email=f"user{i:06d}@example.com", attributes={"n": i})
                for i in range(start, min(count, start + 10_000))
            ]
            services.store.upsert_contacts(LIST_NAME, patches, UpsertPolicy())
        # The search index built now, as a server that has run a while has it: otherwise the server's indexer
        # builds it for 100,000 contacts during the first figures (~3 s of CPU, and write-lock turns of ~35 ms).
        SearchIndexer(services.db).catch_up()
    finally:
        services.close()


# -- 1 and 2: one boto3 client ------------------------------------------------------------------------------


def time_creates(ses: Any, prefix: str, pid: int, calls: int = CREATE_CALLS) -> tuple[float, list[float], float]:
    """Calls per second, latencies, and the server's CPU seconds per call."""
    for i in range(50):  # warm up the connection and both sides' caches
        ses.create_contact(ContactListName=LIST_NAME, EmailAddress=f"warm{i}-{prefix}@example.com")
    latencies = []
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    for i in range(calls):
        t = time.perf_counter()
        ses.create_contact(ContactListName=LIST_NAME, EmailAddress=f"{prefix}{i:05d}@example.com")
        latencies.append(time.perf_counter() - t)
    rate = calls / (time.perf_counter() - start)
    return rate, latencies, (cpu_seconds(pid) - cpu) / calls


def time_listing(ses: Any, max_pages: int | None = None) -> tuple[float, int, int]:
    """Page through the list (or its first ``max_pages`` pages): seconds, contacts, pages."""
    start = time.perf_counter()
    seen = pages = 0
    kwargs: dict[str, Any] = {"ContactListName": LIST_NAME, "PageSize": PAGE_SIZE}
    while True:
        page = ses.list_contacts(**kwargs)
        pages += 1
        seen += len(page["Contacts"])
        if not page.get("NextToken") or pages == max_pages:
            break
        kwargs["NextToken"] = page["NextToken"]
    return time.perf_counter() - start, seen, pages


def seed_moto(ses: Any, count: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def create(chunk: range) -> None:
        own = client(ses.meta.endpoint_url)
        for i in chunk:
            own.create_contact(ContactListName=LIST_NAME, EmailAddress=f"user{i:06d}@example.com")

    step = count // 4
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, [range(k, min(count, k + step)) for k in range(0, count, step)]))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


# -- 3: the load generator ------------------------------------------------------------------------------------


def _signing_key(day: str) -> bytes:
    key = f"AWS4{SECRET_ACCESS_KEY}".encode()
    for part in (day, REGION, "ses", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class Signer:
    """A lean SigV4 signer for the load generator (the server verifies it with botocore's canonical form)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._keys: dict[str, bytes] = {}

    def headers(self, method: str, path: str, body: bytes) -> bytes:
        now = dt.datetime.now(dt.UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        key = self._keys.get(day) or self._keys.setdefault(day, _signing_key(day))
        signed = "host;x-amz-date" + (";content-type" if body else "")
        signed = ";".join(sorted(signed.split(";")))
        canonical_headers = ("content-type:application/json\n" if body else "") + (
            f"host:{self.host}\nx-amz-date:{amz_date}\n"
        )
        canonical = "\n".join(
            [method, quote(path, safe="/~"), "", canonical_headers, signed, hashlib.sha256(body).hexdigest()]
        )
        scope = f"{day}/{REGION}/ses/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}",
            f"X-Amz-Date: {amz_date}",
            f"Authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{scope}, SignedHeaders={signed}, "
            f"Signature={signature}",
            f"Content-Length: {len(body)}",
        ]
        if body:
            lines.append("Content-Type: application/json")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    created: dict[str, None] = field(default_factory=dict)  # acknowledged creates
    last_update: dict[str, str] = field(default_factory=dict)  # email -> last acknowledged AttributesData
    seconds: float = 0.0


async def _ses_worker(url: str, n: int, deadline: float, result: LoadResult, seeded: int) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    conn = Connection(reader, writer)
    signer = Signer(parts.netloc)
    rnd = random.Random(n)
    mine: list[str] = []
    base = f"/v2/email/contact-lists/{LIST_NAME}/contacts"
    k = 0
    while time.perf_counter() < deadline:
        r = rnd.random()
        if r < 0.25 or not mine:
            op, email = "CreateContact", f"load-c{n:02d}-{k:06d}@example.com"
            method, path, body = "POST", base, json.dumps({"EmailAddress": email}).encode()
        elif r < 0.5:
            op, email = "UpdateContact", rnd.choice(mine)
            attributes = json.dumps({"worker": n, "seq": k})
            method, path = "PUT", f"{base}/{quote(email, safe='')}"
            body = json.dumps({"AttributesData": attributes}).encode()
        elif r < 0.9:
            op = "GetContact"
            email = rnd.choice(mine) if rnd.random() < 0.5 else f"user{rnd.randrange(seeded):06d}@example.com"
            method, path, body = "GET", f"{base}/{quote(email, safe='')}", b""
        else:
            op, email = "ListContacts", ""
            method, path, body = "POST", f"{base}/list", b'{"PageSize": 100}'
        k += 1
        start = time.perf_counter()
        status, reply = await conn.request(signer.headers(method, path, body), body)
        result.latencies.append(time.perf_counter() - start)
        result.counts[op] = result.counts.get(op, 0) + 1
        if status != 200:
            key = f"{op} {status} {reply[:120]!r}"
            result.errors[key] = result.errors.get(key, 0) + 1
            continue
        if op == "CreateContact":
            mine.append(email)
            result.created[email] = None
        elif op == "UpdateContact":
            result.last_update[email] = attributes
    writer.close()


async def _hello_worker(url: str, deadline: float, result: LoadResult) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    conn = Connection(reader, writer)
    head = f"GET /hello HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 0\r\n\r\n".encode()
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        status, _ = await conn.request(head, b"")
        result.latencies.append(time.perf_counter() - start)
        result.counts["hello"] = result.counts.get("hello", 0) + 1
        if status != 200:
            result.errors[str(status)] = result.errors.get(str(status), 0) + 1
    writer.close()


def run_load(worker: Callable[[float, LoadResult, int], Any]) -> LoadResult:
    async def main() -> LoadResult:
        result = LoadResult()
        start = time.perf_counter()
        deadline = start + LOAD_SECONDS
        await asyncio.gather(*(worker(deadline, result, n) for n in range(LOAD_CLIENTS)))
        result.seconds = time.perf_counter() - start
        return result

    try:
        import uvloop

        return uvloop.run(main())
    except ImportError:
        return asyncio.run(main())


def describe(result: LoadResult) -> str:
    total = len(result.latencies)
    cuts = statistics.quantiles(result.latencies, n=100) if total > 1 else [0.0] * 99
    return (
        f"{total / result.seconds:,.0f} req/s, p50 {ms(cuts[49])}, p99 {ms(cuts[98])}, "
        f"{sum(result.errors.values())} errors ({total:,} requests in {result.seconds:.1f} s)"
    )


def check_final_state(data_dir: Path, result: LoadResult) -> tuple[int, int]:
    """Lost writes after the server stopped: acknowledged creates missing, acknowledged updates not the last."""
    from sescontacts.services import Services
    from sescontacts.settings import Settings

    services = Services.open(Settings(data_dir=data_dir))
    try:
        stored: dict[str, str | None] = {}
        token = None
        while True:
            page = services.store.list_contacts(LIST_NAME, page_size=1000, token=token)
            stored.update((c.email, c.attributes_data) for c in page.items)
            token = page.next_token
            if not token:
                break
    finally:
        services.close()
    missing = sum(1 for email in result.created if email not in stored)
    stale = sum(1 for email, value in result.last_update.items() if stored.get(email) != value)
    return missing, stale


# -- the suite ------------------------------------------------------------------------------------------------


def run(report: Report) -> None:
    if os.environ.get("SESCONTACTS_BENCH_API_ONLY") == "import":
        run_import_contention(report)
        return
    _run_single_and_load(report)
    index_drain.run(report, seed_store, LIST_NAME)
    run_import_contention(report)


def _run_single_and_load(report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="sescontacts-bench-api-") as tmp:
        data_dir = Path(tmp) / "data"
        report(f"seeding {LIST_CONTACTS:,} contacts through the store ...")
        t = time.perf_counter()
        seed_store(data_dir, LIST_CONTACTS)
        report(f"  seeded in {time.perf_counter() - t:.1f} s")

        report(f"load average before: {os.getloadavg()[0]:.2f} (2 cores; other work on the box distorts rates)")
        with noop_server() as noop_peer, moto_server() as moto_peer, run_server(data_dir) as server:
            noop_url = noop_peer.url
            noop, moto, ours = client(noop_url), client(moto_peer.url), client(server.url)
            moto.create_contact_list(ContactListName=LIST_NAME)

            report(f"\n### boto3 create_contact, one client, one thread, {CREATE_CALLS:,} calls")
            rates = {}
            peers = (("do-nothing server", noop, noop_peer.pid), ("moto_server", moto, moto_peer.pid))
            for label, ses, pid in (*peers, ("sescontacts", ours, server.process.pid)):
                rate, latencies, cpu = time_creates(ses, f"bench-{label[:4]}-", pid)
                rates[label] = rate
                report(
                    f"- {label}: {rate:,.0f} calls/s (p50 {ms(statistics.median(latencies))}; "
                    f"server CPU {cpu * 1e6:,.0f} us/call)"
                )
            report(
                f"- sescontacts = {rates['sescontacts'] / rates['moto_server']:.1f}x moto, "
                f"{rates['sescontacts'] / rates['do-nothing server']:.0%} of the client ceiling "
                "(goal: >= 85% of the do-nothing server's rate in the same run, >= 4x moto)"
            )

            report(f"\n### list_contacts through {LIST_CONTACTS:,} contacts at PageSize {PAGE_SIZE}")
            seconds, seen, pages = time_listing(noop)
            report(f"- do-nothing server (canned pages): {seconds:.2f} s, {seen:,} contacts in {pages} pages")
            ours_seconds, seen, pages = time_listing(ours)
            report(f"- sescontacts: {ours_seconds:.2f} s, {seen:,} contacts in {pages} pages")
            report(f"  = {seconds / ours_seconds:.0%} of the client ceiling")
            t = time.perf_counter()
            seed_moto(moto, MOTO_LIST_CONTACTS)
            report(
                f"- moto_server: seeded {MOTO_LIST_CONTACTS:,} contacts over HTTP in {time.perf_counter() - t:.1f} s"
            )
            moto_seconds, seen, pages = time_listing(moto)
            report(
                f"  listing them: {moto_seconds:.2f} s, {seen:,} contacts in {pages} response(s) "
                "(moto ignores PageSize and NextToken)"
            )

            report(f"\n### load: {LOAD_CLIENTS} clients, {LOAD_SECONDS:.0f} s, loopback")
            result = run_load(lambda deadline, res, n: _ses_worker(server.url, n, deadline, res, LIST_CONTACTS))
            report(f"- sescontacts SES API (40% Get, 25% Create, 25% Update, 10% List): {describe(result)}")
            report("  (goal: 0 errors, 0 lost writes, p99 <= 40 ms)")
            report("  mix: " + ", ".join(f"{op} {n:,}" for op, n in sorted(result.counts.items())))
            for error, n in sorted(result.errors.items()):
                report(f"  error x{n}: {error}")
            hello = run_load(lambda deadline, res, n: _hello_worker(noop_url, deadline, res))
            report(f"- hello-world endpoint, same stack (uvicorn[standard], raw ASGI, 1 worker): {describe(hello)}")

        # The question: is one process the limit? `serve --workers 2` on the same data dir (SQLite in WAL,
        # the write lock shared through the file, the background work in one worker), after the one-process
        # server stopped: the same 32 clients on its one port.
        with run_server(data_dir, extra_args=["--workers", "2"]) as workers:
            pair = run_load(lambda deadline, res, n: _ses_worker(workers.url, n + 100, deadline, res, LIST_CONTACTS))
        report(f"- `serve --workers 2`, the same {LOAD_CLIENTS} clients: {describe(pair)}")
        report(
            f"  = {len(pair.latencies) / pair.seconds / (len(result.latencies) / result.seconds):.2f}x the one "
            "process's req/s"
        )
        for error, n in sorted(pair.errors.items()):
            report(f"  error x{n}: {error}")

        report(f"- load average after: {os.getloadavg()[0]:.2f}")
        for label, run in (("one process", result), ("--workers 2", pair)):
            missing, stale = check_final_state(data_dir, run)
            report(
                f"- final state after shutdown ({label}): {len(run.created):,} acknowledged creates, {missing} "
                f"missing; {len(run.last_update):,} contacts with acknowledged updates, {stale} not at their "
                "last value"
            )


# -- 4: writes while a bulk import runs in another process --------------------------------------------------


def _import_process(data_dir: Path, csv_path: Path) -> subprocess.Popen[bytes]:
    from tests.support.server import sescontacts_command

    return subprocess.Popen(
        [*sescontacts_command(), "import", "--data-dir", str(data_dir), "--contact-list", LIST_NAME, str(csv_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _writers_during(url: str, running: Callable[[], bool], tag: str) -> tuple[list[float], list[str], list[str]]:
    """IMPORT_WRITERS boto3 clients create contacts while ``running()``: latencies, errors, emails."""
    import threading

    latencies: list[float] = []
    errors: list[str] = []
    created: list[str] = []

    def writer(n: int) -> None:
        ses = client(url)
        i = 0
        while running():
            email = f"{tag}-{n}-{i:06d}@example.com"
            t = time.perf_counter()
            try:
                ses.create_contact(ContactListName=LIST_NAME, EmailAddress=email)
            except Exception as exc:
                errors.append(type(exc).__name__)
            else:
                created.append(email)
            latencies.append(time.perf_counter() - t)
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(IMPORT_WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, created


def _p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


def run_import_contention(report: Report) -> None:
    """API writes next to ``sescontacts import`` on the same data directory (goal: p99 <= 100 ms, worst <= 500 ms)."""
    from bench.bulk import generate

    with tempfile.TemporaryDirectory(prefix="sescontacts-bench-api-import-") as tmp:
        work = Path(tmp)
        csv_path = work / "contacts.csv"
        generate(csv_path, work / "contacts.jsonl", IMPORT_ROWS)
        report(f"\n### writes while `sescontacts import` of {IMPORT_ROWS:,} rows runs next to the server")
        alone_dir = work / "alone"
        seed_store(alone_dir, 0)
        t = time.perf_counter()
        process = _import_process(alone_dir, csv_path)
        process.wait()
        alone = time.perf_counter() - t
        report(f"- import alone: {alone:.1f} s (exit {process.returncode})")
        data_dir = work / "data"
        seed_store(data_dir, 0)
        with run_server(data_dir) as server:
            client(server.url).create_contact(ContactListName=LIST_NAME, EmailAddress="warm@example.com")
            until = time.perf_counter() + min(5.0, alone)
            quiet, _, _ = _writers_during(server.url, lambda: time.perf_counter() < until, "quiet")
            quiet.sort()
            report(
                f"- the same {IMPORT_WRITERS} writers without an import ({min(5.0, alone):.0f} s): p50 "
                f"{ms(statistics.median(quiet) if quiet else 0)}, p99 {ms(_p99(quiet))}, "
                f"worst {ms(quiet[-1] if quiet else 0)}"
            )
            t = time.perf_counter()
            process = _import_process(data_dir, csv_path)
            latencies, errors, created = _writers_during(server.url, lambda: process.poll() is None, "during")
            process.wait()
            during = time.perf_counter() - t
        latencies.sort()
        p99 = _p99(latencies)
        report(
            f"- import next to {IMPORT_WRITERS} writers: {during:.1f} s (exit {process.returncode}) "
            f"= {during / alone:.2f}x alone"
        )
        report(
            f"- {len(latencies):,} CreateContact calls: p50 {ms(statistics.median(latencies) if latencies else 0)}, "
            f"p99 {ms(p99)}, worst {ms(latencies[-1] if latencies else 0)}, {len(errors)} errors "
            "(goal: p99 <= 100 ms, worst <= 500 ms)"
        )
        from sescontacts.errors import NotFound
        from sescontacts.services import Services
        from sescontacts.settings import Settings

        services = Services.open(Settings(data_dir=data_dir))
        try:
            missing = 0
            for email in created:
                try:
                    services.store.get_contact(LIST_NAME, email)
                except NotFound:
                    missing += 1
        finally:
            services.close()
        report(
            f"- {len(created):,} acknowledged creates, {missing} missing after the import; load average "
            f"{os.getloadavg()[0]:.2f}"
        )


def _serve_noop(port: int, defaults: str = "[]") -> None:
    import uvicorn

    uvicorn.run(noop_app(json.loads(defaults)), host="127.0.0.1", port=port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    if sys.argv[1:2] == ["noop"]:
        _serve_noop(int(sys.argv[2]), *sys.argv[3:4])
    else:
        from bench.__main__ import Report as _Report

        run(_Report())
