"""Login, logout, the session cookie and the deny-by-default gate over HTTP, in process (the stored accounts
themselves: tests/test_accounts_*.py)."""

from __future__ import annotations

import re

from starlette.routing import Mount, Route

from sescontacts.accounts.login_limit import ADDRESS_ATTEMPTS, LOGIN_WINDOW
from sescontacts.accounts.sessions import SESSION_MAX_AGE
from sescontacts.accounts.users import Users
from sescontacts.console.auth import SESSION_COOKIE
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
    anonymous.client.cookies.set(SESSION_COOKIE, cookie.split(";")[0].split("=", 1)[1][:-3] + "AAA")
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

    assert [attempt(f"user{i}") for i in range(ADDRESS_ATTEMPTS)] == [401] * ADDRESS_ATTEMPTS
    blocked = anonymous.client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert blocked.status_code == 429 and 0 < int(blocked.headers["retry-after"]) <= LOGIN_WINDOW + 1
    # the operator resets the admin's password (the CLI does exactly this): every lockout is lifted
    Users(anonymous.services.db).set_password("admin", "a new password")
    assert attempt("admin", "a new password") == 303


def test_open_redirect_through_next_is_refused(anonymous: Console) -> None:
    token = csrf_of(anonymous.client.get("/login").text)
    for target in (
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
    ):
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
    copied = console.client.cookies[SESSION_COOKIE]
    assert console.post("/logout").status_code == 303
    thief = TestClient(console.gate, base_url="http://testserver", cookies={SESSION_COOKIE: copied})
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
        conn.execute("UPDATE console_sessions SET created = created - ?", (SESSION_MAX_AGE + 1,))
    assert console.client.get("/", follow_redirects=False).status_code == 303
    second_browser(console)  # a new login prunes what has expired
    rows = console.services.db.reader().execute("SELECT count(*) FROM console_sessions").fetchone()[0]
    assert rows == 1


def test_password_change_and_removal_end_sessions(console: Console) -> None:
    users = Users(console.services.db)
    users.set_password("admin", "another password")
    assert console.client.get("/", follow_redirects=False).status_code == 303
    login(console.client, password="another password")
    assert console.client.get("/").status_code == 200
    users.add("second", "second password")
    users.remove("admin")
    assert console.client.get("/", follow_redirects=False).status_code == 303
