"""Forms refused for want of a session (item 3) or for a stale CSRF token (item 4) come back filled in, with a
fresh token and a notice; nothing is written until the user sends them again."""

from __future__ import annotations

import html
import re

import orjson

from sescontacts.accounts.sessions import SESSION_MAX_AGE
from sescontacts.model import OPT_IN, OPT_OUT, Contact, ContactQuery, Topic

from .support.console import PASSWORD, Console, console_fixture, csrf_of, fast_kdf_fixture, login  # noqa: F401

SAME_SITE = {"Origin": "http://testserver"}


def end_session(console: Console) -> None:
    """As if this login happened longer ago than a session lives (the 12-hour expiry)."""
    with console.services.db.write() as conn:
        conn.execute("UPDATE console_sessions SET created = created - ?", (SESSION_MAX_AGE + 1,))


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden {name}"
    return html.unescape(match.group(1))


def text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def count(console: Console) -> int:
    return console.store.count_contacts(console.list_name, ContactQuery()).value


NEW_CONTACT = {
    "email": "late@example.com",
    "unsubscribe_all": "1",
    "attr_mode": "rows",
    "attr_key": ["Name"],
    "attr_value": ["Late O'Neil"],
    "attr_json": ["0"],
    "password": "not kept",
}


def test_a_form_sent_after_the_session_ended_comes_back_filled_in_after_the_login(console: Console) -> None:
    end_session(console)
    referer = {"Referer": "http://testserver/contacts/new", **SAME_SITE}
    refused = console.post("/contacts/new", NEW_CONTACT, headers=referer)
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("text/html")
    assert "Your session has ended. Log in to continue: the form you were sending comes back filled in" in text_of(
        refused.text
    )
    assert hidden(refused.text, "next") == "/contacts/new"
    pending = orjson.loads(hidden(refused.text, "pending"))
    assert pending["p"] == "/contacts/new" and ["email", "late@example.com"] in pending["f"]
    assert not any(k in ("csrf_token", "password") for k, _ in pending["f"])  # never tokens or passwords
    assert count(console) == 0
    login_form = {"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(refused.text), "next": "/"}
    typo = console.client.post(
        "/login", data={**login_form, "password": "typo", "pending": hidden(refused.text, "pending")}
    )
    assert typo.status_code == 401 and hidden(typo.text, "pending") == hidden(refused.text, "pending")  # kept
    shown = console.client.post("/login", data={**login_form, "pending": hidden(typo.text, "pending")})
    # the form again, filled in, with the new session's token: not sent for the user
    assert shown.status_code == 200 and "Your session had ended, so nothing was saved" in text_of(shown.text)
    assert 'value="late@example.com"' in shown.text and 'value="Late O&#39;Neil"' in shown.text
    assert 'action="/logout"' in shown.text  # the page of a logged-in user, top bar and all
    assert re.search(r'name="unsubscribe_all" value="1" checked', shown.text)
    assert count(console) == 0
    console.csrf = csrf_of(shown.text)
    assert console.post("/contacts/new", {k: v for k, v in NEW_CONTACT.items() if k != "password"}).status_code == 303
    stored = console.store.get_contact(console.list_name, "late@example.com")
    assert stored.unsubscribe_all and orjson.loads(stored.attributes_data or "") == {"Name": "Late O'Neil"}


def test_a_bulk_action_or_an_upload_sent_without_a_session(console: Console) -> None:
    """The bulk form comes back as its confirmation (a dry run), never done; an upload's file is not kept."""
    console.store.create_contact(console.list_name, Contact("keep@example.com"))
    end_session(console)
    bulk = {"action": "delete", "email": ["keep@example.com"], "confirm": "1"}
    refused = console.post("/contacts/bulk", bulk, headers={"Referer": "http://testserver/?q=keep", **SAME_SITE})
    assert refused.status_code == 401 and hidden(refused.text, "next") == "/?q=keep"
    login_form = {"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(refused.text), "next": "/"}
    shown = console.client.post("/login", data={**login_form, "pending": hidden(refused.text, "pending")})
    assert shown.status_code == 200 and "Delete: 1 contact will change" in text_of(shown.text)
    assert '<input type="hidden" name="confirm" value="1">' in shown.text  # the confirmation's own form
    assert count(console) == 1
    end_session(console)
    upload = console.client.post(
        "/import/upload",
        files={"file": ("a.csv", b"emailAddress\na@example.com\n", "text/csv")},
        data={"csrf_token": console.csrf},
        headers=SAME_SITE,
    )
    assert upload.status_code == 401 and "neither are files: you will choose the file again" in text_of(upload.text)


def test_what_comes_back_after_a_login_stays_on_this_site(console: Console) -> None:
    """next= and the carried form's path are same-site paths only; a form from another site is not carried."""
    end_session(console)
    for referer in ("https://evil.example/", "http://evil.example/contacts/new", "http://testserver\\@evil"):
        page = console.post("/contacts/new", NEW_CONTACT, headers={"Referer": referer, **SAME_SITE})
        assert page.status_code == 401 and hidden(page.text, "next") == "/", referer
    cross = console.post("/contacts/new", NEW_CONTACT, headers={"Origin": "https://evil.example"})
    assert (cross.status_code, cross.text) == (401, "Log in to continue.")
    fetched = console.post("/contacts/new", NEW_CONTACT, headers={"Sec-Fetch-Site": "cross-site"})
    assert (fetched.status_code, fetched.text) == (401, "Log in to continue.")
    token = csrf_of(console.client.get("/login").text)
    for path in ("//evil.example/", "https://evil.example/contacts/new", "/\\evil.example", "/\t/evil.example"):
        forged = orjson.dumps({"p": path, "f": [["email", "x@example.com"]], "d": False}).decode()
        form = {"username": "admin", "password": PASSWORD, "csrf_token": token, "next": "/topics", "pending": forged}
        response = console.client.post("/login", data=form, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/topics"), path
        token = csrf_of(console.client.get("/").text)
        console.post("/logout")
        token = csrf_of(console.client.get("/login").text)


def test_htmx_without_a_session_goes_to_the_login_and_back_to_the_page(console: Console) -> None:
    end_session(console)
    headers = {"HX-Request": "true", "HX-Current-URL": "http://testserver/?q=acme&field=domain"}
    fragment = console.client.get("/?q=acme&field=domain", headers={**headers, "HX-Target": "results"})
    assert (
        fragment.status_code == 401 and fragment.headers["hx-redirect"] == "/login?next=%2F%3Fq%3Dacme%26field%3Ddomain"
    )
    posted = console.client.post("/import/start", data={"upload": "x"}, headers={**headers, **SAME_SITE})
    assert posted.headers["hx-redirect"] == "/login?next=%2F%3Fq%3Dacme%26field%3Ddomain"
    elsewhere = console.client.get("/count", headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example/"})
    assert elsewhere.headers["hx-redirect"] == "/login?next=%2F"


def stale(console: Console) -> str:
    """Log out and in again (another tab of the same browser): the token the open pages hold is stale."""
    old = console.csrf
    console.post("/logout")
    console.csrf = login(console.client)
    assert console.csrf != old
    return old


def test_a_stale_token_shows_the_form_again_with_the_input_and_a_fresh_token(console: Console) -> None:
    old = stale(console)
    refused = console.client.post("/contacts/new", data={**NEW_CONTACT, "csrf_token": old}, headers=SAME_SITE)
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    words = text_of(refused.text)
    assert "This form's security token was out of date, so nothing was saved" in words
    assert "What you entered is below with a fresh token" in words
    assert 'value="late@example.com"' in refused.text and 'value="Late O&#39;Neil"' in refused.text
    assert hidden(refused.text, "csrf_token") == console.csrf and old not in refused.text
    assert count(console) == 0
    # the same form sent again is done
    assert console.post("/contacts/new", {k: v for k, v in NEW_CONTACT.items() if k != "password"}).status_code == 303
    assert count(console) == 1


def test_every_form_refused_for_a_stale_token_comes_back_as_its_own_page(console: Console) -> None:
    name = console.list_name
    console.store.update_list(name, topics=[Topic("news", "News", OPT_OUT)])
    console.store.create_contact(name, Contact("a@example.com", attributes_data='{"k": "v"}'))
    original = hidden(console.client.get("/contacts/edit", params={"email": "a@example.com"}).text, "original")
    old = stale(console)

    def send(path: str, data: dict[str, object]) -> str:
        response = console.client.post(path, data={**data, "csrf_token": old}, headers=SAME_SITE)
        assert response.status_code == 403 and "security token was out of date" in response.text, path
        assert hidden(response.text, "csrf_token") == console.csrf, path
        return response.text

    edit = {"email": "a@example.com", "original": original, "unsubscribe_all": "1", "attr_mode": "rows"}
    edited = send("/contacts/edit", {**edit, "attr_key": ["k"], "attr_value": ["changed"], "attr_json": ["0"]})
    assert "Edit contact" in edited and 'value="changed"' in edited and hidden(edited, "original") == original
    topic = send("/topics", {"original": "news", "name": "news", "display_name": "Renamed", "default_status": OPT_IN})
    assert 'value="Renamed"' in topic and re.search(r'value="OPT_IN" checked', topic)
    bulk = send("/contacts/bulk", {"action": "unsubscribe", "email": ["a@example.com"], "confirm": "1"})
    assert "Unsubscribe from all: 1 contact will change" in text_of(bulk)
    assert "a@example.com" in send("/contacts/delete", {"email": "a@example.com"})
    assert "Delete the topic news?" in send("/topics/delete", {"name": "news"})
    assert "Log out everywhere" in send("/account/logout-everywhere", {})
    upload = console.client.post(
        "/import/upload",
        data={"csrf_token": old},
        files={"file": ("a.csv", b"emailAddress\na@example.com\n", "text/csv")},
        headers=SAME_SITE,
    )
    assert upload.status_code == 403 and "Files are never kept: choose the file again." in text_of(upload.text)
    assert 'action="/import/upload"' in upload.text
    # nothing was done
    contact = console.store.get_contact(name, "a@example.com")
    assert not contact.unsubscribe_all and contact.attributes_data == '{"k": "v"}'
    assert console.store.get_list(name).topics == (Topic("news", "News", OPT_OUT),)


def test_a_stale_token_in_an_htmx_request_reloads_the_page_with_a_note(console: Console) -> None:
    old = stale(console)
    headers = {"HX-Request": "true", "X-CSRF-Token": old, "HX-Current-URL": "http://testserver/import", **SAME_SITE}
    response = console.client.post("/import/start", data={"upload": "x"}, headers=headers)
    assert response.status_code == 204 and response.headers["hx-redirect"] == "/import"
    assert "security token was out of date" in console.client.get("/import").text


def test_every_form_of_the_console_has_its_page_to_come_back_to(console: Console) -> None:
    """The sweep: every POST route is shown again as its own page (a new one must be added to REDISPLAYS), and
    without a session every one of them leads to the login page, not a bare 401."""
    from starlette.routing import Route

    from sescontacts.console.views.resubmit import REDISPLAYS

    posts = {r.path for r in console.app.routes if isinstance(r, Route) and "POST" in (r.methods or ())}
    assert posts - set(REDISPLAYS) == {"/logout"}  # logging out needs no form shown again
    end_session(console)
    for path in sorted(posts - {"/login"}):
        response = console.post(path.replace("{job_id}", "x"), {"email": "a@example.com"}, headers=SAME_SITE)
        assert response.status_code == 401 and 'action="/login"' in response.text, path
