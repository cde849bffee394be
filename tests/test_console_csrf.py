"""Every state-changing request needs this session's CSRF token; other sites' requests are refused."""

from __future__ import annotations

from starlette.routing import Route

from .console_support import Console, console_fixture, fast_kdf_fixture  # noqa: F401


def post_routes(console: Console) -> list[str]:
    paths = [
        r.path.replace("{job_id}", "x")
        for r in console.app.routes
        if isinstance(r, Route) and "POST" in (r.methods or ())
    ]
    assert len(paths) >= 10
    return paths


def test_every_post_without_a_token_is_refused(console: Console) -> None:
    for path in post_routes(console):
        response = console.client.post(path, data={"email": "a@example.com"}, follow_redirects=False)
        assert response.status_code == 403, (path, response.status_code)
        assert "security token" in response.text


def test_a_wrong_token_is_refused_and_nothing_changes(console: Console) -> None:
    response = console.client.post(
        "/contacts/new", data={"csrf_token": "forged", "email": "a@example.com"}, follow_redirects=False
    )
    assert response.status_code == 403
    assert (
        console.store.count_contacts(console.list_name, __import__("sescontacts.model").model.ContactQuery()).value == 0
    )


def test_form_field_and_htmx_header_are_accepted(console: Console) -> None:
    ok = console.post("/contacts/new", {"email": "a@example.com"})
    assert ok.status_code == 303
    header = console.client.post(
        "/contacts/new", data={"email": "b@example.com"}, headers={"X-CSRF-Token": console.csrf, "HX-Request": "true"}
    )
    assert header.status_code == 204 and header.headers["hx-redirect"] == "/"


def test_cross_origin_post_is_refused_even_with_a_token(console: Console) -> None:
    response = console.post("/contacts/new", {"email": "a@example.com"}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    same = console.post("/contacts/new", {"email": "a@example.com"}, headers={"Origin": "http://testserver"})
    assert same.status_code == 303


def test_multipart_upload_needs_the_token_in_the_query(console: Console) -> None:
    files = {"file": ("a.csv", b"emailAddress\na@example.com\n", "text/csv")}
    refused = console.client.post("/import/upload", data={"csrf_token": console.csrf}, files=files)
    assert refused.status_code == 403


def test_the_token_changes_at_login(console: Console) -> None:
    from .console_support import login

    before = console.csrf
    console.post("/logout")
    assert login(console.client) != before
