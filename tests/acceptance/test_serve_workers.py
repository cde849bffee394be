"""``sescontacts serve --workers 2`` as a user runs it: one port, two worker processes, one data dir.

What is observed, and how, without asking the server about itself:
- which worker answered a request: the kernel's view of the connection (the server end of our socket is a
  file descriptor of exactly one worker process: ``/proc/net/tcp`` and ``/proc/<pid>/fd``);
- which process runs the background work: the holder of the ``flock`` on ``sescontacts.db-background``, as
  ``/proc/locks`` lists it;
- the workers: the serve process's children that multiprocessing spawned.
State is polled for with a deadline, never slept for.
"""

from __future__ import annotations

import contextlib
import functools
import html
import http.client
import operator
import os
import re
import signal
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import pytest

from sescontacts.services import Services
from sescontacts.settings import Settings
from tests.support.server import ADMIN_PASSWORD, LIST_NAME, RunningServer, run_server

from .conftest import make_client

WORKERS = ["--workers", "2"]
T = TypeVar("T")


def poll(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    """``check()``'s first true value; fails naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.02)  # the polling interval, not a synchronisation sleep


# -- what the kernel says ------------------------------------------------------------------------------------


def worker_pids(server: RunningServer) -> set[int]:
    """The serve process's live worker processes (multiprocessing's spawned children; not its resource tracker)."""
    pids: set[int] = set()
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{server.process.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                pids.update(int(pid) for pid in (task / "children").read_text().split())
    workers = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if status != "Z":
                    workers.add(pid)
    return workers


def background_owners(server: RunningServer) -> list[int]:
    """The pids holding the exclusive flock on the data dir's background-work lock, per /proc/locks."""
    path = server.data_dir / "sescontacts.db-background"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return []
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    owners = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields:  # a waiter, not a holder
            continue
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "WRITE" and fields[5] == device:
            owners.append(int(fields[4]))
    return owners


def serving_pid(sock: socket.socket, pids: set[int]) -> int | None:
    """Which of ``pids`` holds the server end of our connection ``sock``."""
    ours = sock.getsockname()[1]
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == ours and fields[3] == "01":  # the remote end is us, ESTABLISHED
            inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return pid
    return None


def one_owner(server: RunningServer) -> int | None:
    """The background work's owner once exactly one worker holds it and two workers run."""
    workers, owners = worker_pids(server), background_owners(server)
    return owners[0] if len(workers) == 2 and len(owners) == 1 and owners[0] in workers else None


# -- a browser that opens a new connection for every request -------------------------------------------------


class Browser:
    """One cookie jar, talking raw HTTP. Each request goes on a new connection (which the kernel hands to
    either worker) unless it is given one of :meth:`connection_to`; every answer says which worker gave it."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.cookie = ""
        self.token = ""

    def connect(self) -> http.client.HTTPConnection:
        parts = urlsplit(self.server.url)
        return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)

    def connection_to(self, wanted: Callable[[int], bool]) -> http.client.HTTPConnection:
        """An open keep-alive connection that a worker ``wanted`` accepted (new ones until one is)."""

        def attempt() -> http.client.HTTPConnection | None:
            conn = self.connect()
            status, _, _, pid = self.request("GET", "/login", conn=conn)
            if status == 200 and pid is not None and wanted(pid):
                return conn
            conn.close()
            return None

        return poll("a connection accepted by the wanted worker", attempt)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        conn: http.client.HTTPConnection | None = None,
    ) -> tuple[int, dict[str, str], str, int | None]:
        sent = dict(headers or {})
        if self.cookie:
            sent["Cookie"] = self.cookie
        own = conn is None
        conn = conn or self.connect()
        try:
            conn.request(method, path, body=body, headers=sent)
            with conn.getresponse() as response:
                text = response.read().decode()
                assert conn.sock is not None, "the server closed the connection"
                pid = serving_pid(conn.sock, worker_pids(self.server))
                cookie = response.getheader("set-cookie")
                if cookie:
                    self.cookie = cookie.split(";")[0]
                return response.status, {k.lower(): v for k, v in response.getheaders()}, text, pid
        finally:
            if own:
                conn.close()

    def form(
        self, path: str, fields: dict[str, str], conn: http.client.HTTPConnection | None = None
    ) -> tuple[int, dict[str, str], str, int | None]:
        body = urlencode({"csrf_token": self.token, **fields}).encode()
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"}, conn)

    def page_token(self, path: str) -> None:
        text = self.request("GET", path)[2]
        match = re.search(r'name="csrf_token" value="([^"]+)"', text)
        assert match, text[:500]
        self.token = match.group(1)

    def login(self, password: str = ADMIN_PASSWORD, conn: http.client.HTTPConnection | None = None) -> None:
        self.page_token("/login")
        form = {"username": "admin", "password": password, "next": "/"}
        status, _, text, _ = self.form("/login", form, conn)
        assert status == 303, text[:500]
        self.page_token("/contacts/new")  # the session's token after login

    def upload(self, name: str, content: bytes) -> str:
        """Upload a CSV in the import dialog and start its import (no preview: a dry run of a big file is slow)."""
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="action"\r\n\r\nadd\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: text/csv\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "X-CSRF-Token": self.token}
        status, answer, text, _ = self.request("POST", "/import/upload", body, headers)
        assert status == 303, text[:500]
        match = re.search(r"upload=([0-9a-f]{32})", answer["location"])
        assert match, answer["location"]
        status, answer, text, _ = self.form("/import/start", {"upload": match.group(1), "action": "add"})
        assert status == 303 and answer["location"].startswith("/import/jobs/"), text[:500]
        return answer["location"]

    def job(self, job_url: str) -> tuple[str, int, int | None]:
        """The job's state and rows done as its page shows them, and the worker that showed it."""
        status, _, text, pid = self.request("GET", job_url)
        assert status == 200, text[:500]
        state = re.search(r'data-state="([a-z]+)"', text)
        rows = re.search(r'data-testid="rows-done">([0-9,]+)<', text)
        assert state and rows, text[:500]
        return state.group(1), int(rows.group(1).replace(",", "")), pid


@contextlib.contextmanager
def busy(server: RunningServer, clients: int = 2) -> Iterator[None]:
    """SES API reads from ``clients`` threads for the block: with both workers busy now and then, the kernel
    hands new connections to either (an idle pair may favour one)."""
    stop = threading.Event()

    def read() -> None:
        ses = make_client(server.url)
        while not stop.is_set():
            ses.list_contacts(ContactListName=LIST_NAME, PageSize=20)

    threads = [threading.Thread(target=read, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def csv_of(rows: int, prefix: str) -> bytes:
    return ("emailAddress\n" + "".join(f"{prefix}{i:07d}@example.com\n" for i in range(rows))).encode()


def contacts_and_job(data_dir: Path, job_id: str) -> tuple[int, Any]:
    """After the server stopped: the list's contact count and the job's record, read from the data dir."""
    services = Services.open(Settings(data_dir=data_dir))
    try:
        return services.store.list_stats(LIST_NAME).total, services.jobs.get(job_id)
    finally:
        services.close()


# -- the tests -----------------------------------------------------------------------------------------------


def test_two_workers_answer_api_and_console_and_one_runs_the_background_work(tmp_path: Path) -> None:
    # no admin password given: the first start makes one and shows it once (the parent starts up, not each worker)
    no_password = {"SESCONTACTS_ADMIN_PASSWORD": ""}
    args = [*WORKERS, "--keep-alive-timeout", "60"]  # the test holds connections to one worker or the other
    with run_server(tmp_path / "data", extra_args=args, extra_env=no_password) as server:
        owner = poll("two workers, one of them owning the background work", lambda: one_owner(server))
        other = (worker_pids(server) - {owner}).pop()
        log = server.log()
        assert "workers:      2 processes" in log
        assert log.count("sescontacts is running at") == 1 and log.count("Console user created: admin") == 1
        password = re.search(r"  password: (\S+)", log)
        assert password, log

        # boto3 clients in threads, each its own connection: every create answered, none lost
        errors: list[str] = []
        created: list[str] = []

        def creates(n: int) -> None:
            ses = make_client(server.url)
            for i in range(40):
                email = f"w{n}-{i}@example.com"
                try:
                    ses.create_contact(ContactListName=LIST_NAME, EmailAddress=email)
                    created.append(email)
                except Exception as exc:  # collected: the assertion names them all
                    errors.append(f"{email}: {exc}")

        threads = [threading.Thread(target=creates, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and len(created) == 320
        ses = make_client(server.url)
        for email in created:
            assert ses.get_contact(ContactListName=LIST_NAME, EmailAddress=email)["EmailAddress"] == email

        browser = Browser(server)
        with busy(server):
            to_owner = browser.connection_to(lambda pid: pid == owner)
            to_other = browser.connection_to(lambda pid: pid == other)

        # a login answered by one worker holds on the other, and so does the session's CSRF token
        browser.login(password.group(1), conn=to_owner)
        status, _, text, pid = browser.form("/contacts/new", {"email": "console@example.com"}, conn=to_other)
        assert (status, pid) == (303, other), html.unescape(text)[:500]
        assert ses.get_contact(ContactListName=LIST_NAME, EmailAddress="console@example.com")

        # an import started through the console runs in the owner; its progress shows on either worker
        job_url = browser.upload("people.csv", csv_of(2000, "import"))
        poll("the import completed", lambda: browser.job(job_url)[0] == "completed")
        for conn in (to_owner, to_other):
            status, _, text, pid = browser.request("GET", job_url, conn=conn)
            assert status == 200 and 'data-state="completed"' in text and 'rows-done">2,000<' in text, text[:500]

        # a cancel answered by the worker that is not running the job stops it at its next batch
        job_url = browser.upload("big.csv", csv_of(500_000, "cancel"))
        poll("the big import running", lambda: browser.job(job_url)[0] == "running")
        status, _, text, pid = browser.form(job_url + "/cancel", {}, conn=to_other)
        assert (status, pid) == (303, other), text[:500]

        def stopped() -> tuple[str, int] | None:
            state, rows, _ = browser.job(job_url)
            return None if state == "running" else (state, rows)

        state, rows = poll("the job stopped", stopped)
        assert state == "cancelled" and rows < 500_000

        # a cache kept per worker (the overview's topic counts, reused for 5 s) catches up within seconds with a
        # write, whichever process made it
        news = {"TopicName": "news", "DisplayName": "News", "DefaultSubscriptionStatus": "OPT_OUT"}
        ses.update_contact_list(ContactListName=LIST_NAME, Topics=[news])

        def opted_in_on_the_other_worker() -> int:
            status, _, text, pid = browser.request("GET", "/overview", conn=to_other)
            match = re.search(r'topic-name">news</span>.*?class="in"[^>]*>([0-9,]+) in', text, re.S)
            assert status == 200 and pid == other and match, text[:500]
            return int(match.group(1).replace(",", ""))

        assert opted_in_on_the_other_worker() == 0
        preference = [{"TopicName": "news", "SubscriptionStatus": "OPT_IN"}]
        ses.create_contact(ContactListName=LIST_NAME, EmailAddress="reader@example.com", TopicPreferences=preference)
        poll("the opt-in counted on the other worker", lambda: opted_in_on_the_other_worker() == 1, timeout=15)

        # failed logins count together, whichever worker answers them
        guesses = Browser(server)
        guesses.page_token("/login")
        statuses = []
        for n in range(7):
            conn = to_owner if n % 2 else to_other
            form = {"username": "admin", "password": f"wrong {n}", "next": "/"}
            statuses.append(guesses.form("/login", form, conn=conn)[0])
        assert statuses == [401] * 5 + [429] * 2, statuses

        # the one indexer keeps the search index current with every write, whichever worker took it
        def index_caught_up() -> bool:
            with contextlib.closing(sqlite3.connect(server.data_dir / "sescontacts.db")) as conn:
                pending = conn.execute("SELECT count(*) FROM search_pending").fetchone()[0]
                building = conn.execute("SELECT count(*) FROM search_state WHERE through IS NOT NULL").fetchone()[0]
            return pending == 0 and building == 0

        poll("the search index caught up with every write", index_caught_up, timeout=120)
        status, _, text, _ = browser.request("GET", "/?q=import0001999")
        assert status == 200 and "import0001999@" in text  # (the address is shown with <wbr> after its @)
        assert one_owner(server) == owner  # the same one all along
        to_owner.close()
        to_other.close()
        workers = worker_pids(server)
    assert server.process.returncode == 0  # SIGTERM: the workers stopped, then the supervisor, cleanly
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


@pytest.mark.slow
def test_a_killed_owner_is_replaced_and_its_import_job_resumes(tmp_path: Path) -> None:
    rows = 600_000
    data_dir = tmp_path / "data"
    with run_server(data_dir, extra_args=WORKERS) as server:
        owner = poll("two workers, one of them owning the background work", lambda: one_owner(server))
        browser = Browser(server)
        browser.login()
        job_url = browser.upload("big.csv", csv_of(rows, "big"))

        def running_part_way() -> int | None:
            state, done, _ = browser.job(job_url)
            assert state != "completed", "the import ended before the owner could be killed: make it bigger"
            return done if state == "running" and done > 0 else None

        done_before = poll("the import running, with a batch committed", running_part_way)
        os.kill(owner, signal.SIGKILL)

        def another_owner() -> int | None:
            found = one_owner(server)  # (the killed one holds the lock until the kernel has ended it)
            return found if found != owner else None

        poll("another worker owning the background work", another_owner)
        assert owner not in worker_pids(server)  # and the supervisor started a worker in its place

        def finished() -> tuple[str, int] | None:
            with contextlib.suppress(ConnectionError, http.client.HTTPException):
                state, done, _ = browser.job(job_url)
                assert state in ("queued", "running", "completed"), state  # never left interrupted
                return (state, done) if state == "completed" else None
            return None

        _, done_after = poll("the import job resumed and completed", finished, timeout=180)
        assert 0 < done_before < rows and done_after == rows
    total, job = contacts_and_job(data_dir, job_url.rsplit("/", 1)[1])
    assert total == rows and job.counts["created"] == rows and job.rejected == 0


def test_workers_are_refused_where_a_budget_is_per_process(tmp_path: Path) -> None:
    import subprocess

    from tests.support.server import sescontacts_command

    for extra, reason in (
        (["--backend", "ses"], "the ses backend runs one process"),
        (["--throttle", "5"], "--throttle counts requests per process"),
    ):
        result = subprocess.run(
            [*sescontacts_command(), "serve", "--data-dir", str(tmp_path / "d"), "--workers", "2", *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert reason in result.stderr and "--workers" in result.stderr and "Traceback" not in result.stderr


def test_the_connection_limits_hold_in_every_worker(tmp_path: Path) -> None:
    """The protocol class that enforces them is made in each worker (server/processes.py): a request head
    left half-sent is answered 408 after --header-timeout by either worker."""
    args = [*WORKERS, "--header-timeout", "1"]
    with run_server(tmp_path / "data", extra_args=args) as server:
        poll("two workers, one of them owning the background work", lambda: one_owner(server))
        browser = Browser(server)
        for worker in sorted(worker_pids(server)):
            with busy(server):
                conn = browser.connection_to(functools.partial(operator.eq, worker))
                assert conn.sock is not None
                started = time.monotonic()
                conn.sock.sendall(b"GET /log")  # the next request on the kept-alive connection, never finished
            with contextlib.closing(conn):
                received = b""
                while chunk := conn.sock.recv(65536):
                    received += chunk
            assert received.startswith(b"HTTP/1.1 408 "), (worker, received)
            assert time.monotonic() - started < 1 + 5
