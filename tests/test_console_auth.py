"""Login, sessions, users and the deny-by-default gate, in process."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from starlette.routing import Mount, Route

from sescontacts.accounts import users as auth
from sescontacts.cli import main as cli
from sescontacts.console.gate import is_public

from .support.console import (  # noqa: F401
    PASSWORD,
    Console,
    TestClient,
    anonymous_fixture,
    console_fixture,
    csrf_of,
    fast_kdf_fixture,
    login,
)


def routes(console: Console) -> list[tuple[str, str]]:
    """Every (method, path) of the console, from its routing table: a new page is covered automatically."""
    found = []
    for route in console.app.routes:
        if isinstance(route, Route):
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            found += [(m, path) for m in sorted(route.methods or ()) if m != "HEAD"]
        elif isinstance(route, Mount):
            found.append(("GET", route.path + "/console.css"))
    assert len(found) > 20
    return found


def test_password_hash_is_slow_kdf_with_stored_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "SCRYPT_N", 2**15)
    encoded = auth.hash_password("s3cret-password")
    scheme, n, r, p, _salt, _digest = encoded.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**15, 8, 1)
    assert auth.verify_password("s3cret-password", encoded)
    assert not auth.verify_password("s3cret-passworD", encoded)
    assert auth.hash_password("s3cret-password") != encoded  # salted
    assert not auth.verify_password("x", "garbage")


def test_every_route_refuses_anonymous_requests(anonymous: Console) -> None:
    client = anonymous.client
    public = []
    for method, path in routes(anonymous):
        if is_public(path):
            public.append(path)
            continue
        response = client.request(method, path, follow_redirects=False)
        if method == "GET":
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/login?next="), path
        else:
            assert response.status_code in (401, 403), (method, path, response.status_code)
        assert "Contacts" not in response.text
    assert set(public) == {"/login", "/static/console.css"}
    # htmx gets told to navigate rather than swapping the login page into a table
    response = client.get("/", headers={"HX-Request": "true"}, follow_redirects=False)
    assert response.status_code == 401 and response.headers["hx-redirect"].startswith("/login")


def test_login_sets_a_signed_httponly_samesite_cookie(anonymous: Console) -> None:
    page = anonymous.client.get("/login")
    response = anonymous.client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": "/topics"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/topics"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert PASSWORD not in cookie
    assert anonymous.client.get("/").status_code == 200
    # a forged cookie is an anonymous session
    anonymous.client.cookies.set(auth.SESSION_COOKIE, cookie.split(";")[0].split("=", 1)[1][:-3] + "AAA")
    assert anonymous.client.get("/", follow_redirects=False).status_code == 303


def test_wrong_password_and_unknown_user_look_the_same(anonymous: Console) -> None:
    token = csrf_of(anonymous.client.get("/login").text)
    a = anonymous.client.post("/login", data={"username": "admin", "password": "nope", "csrf_token": token})
    b = anonymous.client.post("/login", data={"username": "ghost", "password": "nope", "csrf_token": token})
    assert a.status_code == b.status_code == 401
    assert "do not match" in a.text and "do not match" in b.text


def test_login_attempts_are_rate_limited(anonymous: Console) -> None:
    token = csrf_of(anonymous.client.get("/login").text)
    statuses = [
        anonymous.client.post(
            "/login", data={"username": "admin", "password": f"bad{i}", "csrf_token": token}
        ).status_code
        for i in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    # even the right password is refused while limited
    blocked = anonymous.client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert blocked.status_code == 429 and "Too many failed attempts" in blocked.text


def test_a_spray_of_names_hits_the_per_address_limit_and_a_reset_lifts_it(anonymous: Console) -> None:
    token = csrf_of(anonymous.client.get("/login").text)

    def attempt(name: str, password: str = "wrong password") -> int:
        form = {"username": name, "password": password, "csrf_token": token}
        return anonymous.client.post("/login", data=form, follow_redirects=False).status_code

    assert [attempt(f"user{i}") for i in range(auth.ADDRESS_ATTEMPTS)] == [401] * auth.ADDRESS_ATTEMPTS
    blocked = anonymous.client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert blocked.status_code == 429 and 0 < int(blocked.headers["retry-after"]) <= auth.LOGIN_WINDOW + 1
    # the operator resets the admin's password (the CLI does exactly this): every lockout is lifted
    auth.Users(anonymous.services.db).set_password("admin", "a new password")
    assert attempt("admin", "a new password") == 303


def test_open_redirect_through_next_is_refused(anonymous: Console) -> None:
    token = csrf_of(anonymous.client.get("/login").text)
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = anonymous.client.post(
            "/login",
            data={"username": "admin", "password": PASSWORD, "csrf_token": token, "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/", target
        anonymous.client.cookies.clear()
        token = csrf_of(anonymous.client.get("/login").text)


def test_logout_ends_the_session(console: Console) -> None:
    response = console.post("/logout")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert console.client.get("/", follow_redirects=False).status_code == 303


def second_browser(console: Console) -> Console:
    """Another browser on the same server (same app and database), logged in as admin."""
    other = object.__new__(Console)
    other.__dict__.update(console.__dict__)
    other.client = TestClient(console.gate, base_url="http://testserver")
    return other.login()


def test_a_copied_cookie_stops_working_at_logout(console: Console) -> None:
    copied = console.client.cookies[auth.SESSION_COOKIE]
    assert console.post("/logout").status_code == 303
    thief = TestClient(console.gate, base_url="http://testserver", cookies={auth.SESSION_COOKIE: copied})
    page = thief.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    write = thief.post("/contacts/new", data={"csrf_token": console.csrf, "email": "a@example.com"})
    assert write.status_code == 401


def test_log_out_everywhere_ends_every_browser_of_that_user(console: Console) -> None:
    other = second_browser(console)
    assert other.client.get("/").status_code == 200
    account = console.client.get("/account")
    assert account.status_code == 200 and "Log out everywhere" in account.text and "2 browsers" in account.text
    response = console.post("/account/logout-everywhere")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    for browser in (console, other):
        assert browser.client.get("/", follow_redirects=False).status_code == 303
    login_page = console.client.get("/login")
    assert "Logged out on every browser" in login_page.text


def test_a_session_older_than_its_lifetime_is_refused_and_pruned(console: Console) -> None:
    with console.services.db.write() as conn:  # as if this login happened SESSION_MAX_AGE + 1 s ago
        conn.execute("UPDATE console_sessions SET created = created - ?", (auth.SESSION_MAX_AGE + 1,))
    assert console.client.get("/", follow_redirects=False).status_code == 303
    second_browser(console)  # a new login prunes what has expired
    rows = console.services.db.reader().execute("SELECT count(*) FROM console_sessions").fetchone()[0]
    assert rows == 1


def test_password_change_and_removal_end_sessions(console: Console) -> None:
    users = auth.Users(console.services.db)
    users.set_password("admin", "another password")
    assert console.client.get("/", follow_redirects=False).status_code == 303
    login(console.client, password="another password")
    assert console.client.get("/").status_code == 200
    users.add("second", "second password")
    users.remove("admin")
    assert console.client.get("/", follow_redirects=False).status_code == 303


def test_a_login_whose_password_check_overlapped_a_password_change_gets_no_session(anonymous: Console) -> None:
    """A login checks the password (~100 ms of scrypt), then starts its session. A password change (or removal)
    in between ends every session *before* that one exists: it must not begin, or someone who keeps logging
    in with the old password keeps a session past the change (a real server gave 3 of 26 such logins one)."""
    users, sessions = auth.Users(anonymous.services.db), auth.Sessions(anonymous.services.db)
    checked = users.authenticate("admin", PASSWORD)
    assert checked is not None
    users.set_password("admin", "another password")
    assert sessions.start(checked) is None
    assert sessions.count("admin") == 0
    users.remove("admin")
    users.add("admin", PASSWORD)  # the same name again, even with the same password: another account
    assert sessions.start(checked) is None
    fresh = users.authenticate("admin", PASSWORD)
    assert fresh is not None and sessions.start(fresh) is not None


def test_ensure_admin_uses_the_given_password_or_generates_one(tmp_path) -> None:
    from .support.console import open_services

    services = open_services(tmp_path / "a")
    users = auth.Users(services.db)
    generated = users.ensure_admin(None)
    assert generated and len(generated) >= 16
    assert users.authenticate("admin", generated) is not None
    assert users.ensure_admin("whatever") is None  # only on first start
    services.close()
    services = open_services(tmp_path / "b")
    users = auth.Users(services.db)
    assert users.ensure_admin("from the environment") is None
    assert users.authenticate("admin", "from the environment") is not None
    services.close()


def test_users_cli(tmp_path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "d")]
    result = runner.invoke(cli, ["users", "add", "carol", "--password-stdin", *data], input="carol password\n")
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["users", "add", "carol", "--password-stdin", *data], input="carol password\n")
    assert result.exit_code == 1 and "already exists" in result.output
    result = runner.invoke(cli, ["users", "add", "dave", "--password-stdin", *data], input="short\n")
    assert result.exit_code == 1 and "at least 8" in result.output
    result = runner.invoke(cli, ["users", "set-password", "carol", *data], input="new password 1\nnew password 1\n")
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["users", "list", *data])
    assert result.output.startswith("carol\t")
    result = runner.invoke(cli, ["users", "remove", "carol", "--yes", *data])
    assert result.exit_code == 0
    result = runner.invoke(cli, ["users", "remove", "carol", "--yes", *data])
    assert result.exit_code == 1 and "No user named carol" in result.output
