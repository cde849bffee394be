"""The console's login against a real ``sescontacts serve``: the rate limit holds under parallel guesses,
trusts forwarded addresses only from named proxies, and an operator's password reset lifts a lockout."""

from __future__ import annotations

import contextlib
import http.client
import re
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from sescontacts.accounts.login_limit import ADDRESS_ATTEMPTS
from tests.support.server import ADMIN_PASSWORD, RunningServer, run_server, sescontacts_command


class Browser:
    """One cookie jar talking raw HTTP to the server (so headers such as X-Forwarded-For go out as given)."""

    def __init__(self, server: RunningServer, headers: dict[str, str] | None = None) -> None:
        self.server = server
        self.headers = headers or {}
        self.cookie = ""
        page = self.request("GET", "/login")[2]
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert match, page
        self.token = match.group(1)

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(self.server.url)
        sent = {**self.headers, **(headers or {})}
        if self.cookie:
            sent["Cookie"] = self.cookie
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        # Both closed on every path: on an answer with "Connection: close" the response alone holds the socket
        # (conn.close() no longer reaches it), so a read that fails would leave it to the garbage collector.
        with contextlib.closing(http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)) as conn:
            conn.request(method, path, body=body, headers=sent)
            with conn.getresponse() as response:
                text = response.read().decode()
                cookie = response.getheader("set-cookie")
                if cookie:
                    self.cookie = cookie.split(";")[0]
                return response.status, {k.lower(): v for k, v in response.getheaders()}, text

    def login(self, password: str, name: str = "admin", headers: dict[str, str] | None = None) -> int:
        form = {"username": name, "password": password, "csrf_token": self.token, "next": "/"}
        return self.request("POST", "/login", form, headers)[0]


def test_parallel_wrong_passwords_are_counted_before_hashing(tmp_path: Path) -> None:
    with run_server(tmp_path / "data") as server:
        browser = Browser(server)
        start = threading.Barrier(20)
        statuses: list[int] = []

        def guess(i: int) -> None:
            start.wait()
            statuses.append(browser.login(f"wrong password {i}"))

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(set(statuses)) == [401, 429], statuses
        assert statuses.count(401) <= 5 and statuses.count(429) >= 15, statuses
        # the real password is refused too while the pair is locked: no oracle through the limit
        assert browser.login(ADMIN_PASSWORD) == 429


def test_forwarded_for_counts_only_from_a_named_proxy(tmp_path: Path) -> None:
    with run_server(tmp_path / "direct") as server:
        browser = Browser(server)
        # a spray of user names, each guess claiming another client address: all come from the loopback client
        for i in range(ADDRESS_ATTEMPTS):
            assert browser.login("bad", name=f"user{i}", headers={"X-Forwarded-For": f"203.0.113.{i}"}) == 401
        assert browser.login("bad", name="user-last", headers={"X-Forwarded-For": "198.51.100.7"}) == 429

    with run_server(tmp_path / "proxied", extra_args=["--forwarded-allow-ips", "127.0.0.1"]) as server:
        browser = Browser(server)
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        for i in range(5):
            assert browser.login(f"bad {i}", headers=attacker) == 401
        assert browser.login(ADMIN_PASSWORD, headers=attacker) == 429
        # the proxy names another client: the admin there is not locked out by the attacker's guesses
        assert browser.login(ADMIN_PASSWORD, headers={"X-Forwarded-For": "198.51.100.7"}) == 303


def test_set_password_lifts_a_lockout_at_once(tmp_path: Path) -> None:
    with run_server(tmp_path / "data") as server:
        browser = Browser(server)
        for i in range(5):
            assert browser.login(f"bad {i}") == 401
        assert browser.login(ADMIN_PASSWORD) == 429
        reset = subprocess.run(
            [*sescontacts_command(), "users", "set-password", "admin", "--password-stdin"],
            input="a brand new password\n",
            env={**server.env, "SESCONTACTS_DATA_DIR": str(server.data_dir)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert reset.returncode == 0, reset.stderr
        assert browser.login("a brand new password") == 303
        assert browser.request("GET", "/")[0] == 200
