"""Every state-changing request needs this session's CSRF token; other sites' requests are refused."""

from __future__ import annotations

from starlette.routing import Route

from sescontacts.console import csrf
from sescontacts.model import ContactQuery

from .support.console import Console, console_fixture, fast_kdf_fixture  # noqa: F401


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


CSV = b"emailAddress\na@example.com\n"


def upload(
    console: Console, url: str = "/import/upload", *, fields: list[tuple[str, str]], headers=None, file_first=False
):
    """A multipart upload with ``fields`` before the file (as a browser sends a form whose hidden field is
    first), or after it with ``file_first``."""
    boundary = "sescontactsboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    ]
    file_part = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + CSV
        + b"\r\n"
    )
    body = b"".join([file_part, *parts] if file_first else [*parts, file_part]) + f"--{boundary}--\r\n".encode()
    return console.client.post(
        url,
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})},
        follow_redirects=False,
    )


def test_multipart_upload_takes_the_token_from_a_header_or_the_first_form_field(console: Console) -> None:
    console.services.start()  # the import worker, which the upload step needs
    assert upload(console, fields=[("csrf_token", console.csrf)]).status_code == 303  # a form, no JavaScript
    assert upload(console, fields=[], headers={"X-CSRF-Token": console.csrf}).status_code == 303  # htmx
    for refused in (
        upload(console, fields=[]),
        upload(console, fields=[("csrf_token", "forged")]),
        # the token must come before the file: it is checked before a byte of the file is stored
        upload(console, fields=[("csrf_token", console.csrf)], file_first=True),
    ):
        assert refused.status_code == 403 and "security token" in refused.text


def test_a_token_in_the_query_string_is_refused(console: Console) -> None:
    """Query strings end up in access logs and Referer headers: a token there is refused, not just ignored."""
    query = f"?csrf_token={console.csrf}"
    for response in (
        upload(console, "/import/upload" + query, fields=[("csrf_token", console.csrf)]),
        upload(console, "/import/upload" + query, fields=[], headers={"X-CSRF-Token": console.csrf}),
        console.post("/contacts/new" + query, {"email": "a@example.com"}),
    ):
        assert response.status_code == 400 and "must not be in the address" in response.text


def test_the_upload_form_sends_its_token_in_the_body_first(console: Console) -> None:
    page = console.client.get("/import").text
    form = page[page.index('<form method="post" action="/import/upload') :]
    form = form[: form.index("</form>")]
    assert "csrf_token=" not in form.split(">", 1)[0]  # not in the action or hx-post URL
    first_field = form.index("<input")
    assert form[first_field:].startswith(f'<input type="hidden" name="csrf_token" value="{console.csrf}">')


def test_the_token_changes_at_login(console: Console) -> None:
    from .support.console import login

    before = console.csrf
    console.post("/logout")
    assert login(console.client) != before


def test_the_form_size_limit_holds_with_the_token_in_a_header(console: Console) -> None:
    """htmx sends the token as a header: the body is still a form, and still bounded (2 MiB)."""
    big = "x" * (csrf.MAX_FORM_BYTES + 1)
    for headers in ({"X-CSRF-Token": console.csrf, "HX-Request": "true"}, {}):
        data = {"email": "big@example.com", "attributes_json": big} | ({} if headers else {"csrf_token": console.csrf})
        response = console.client.post("/contacts/new", data=data, headers=headers, follow_redirects=False)
        assert (response.status_code, response.text) == (413, "The form is too large."), headers
    assert console.store.count_contacts(console.list_name, ContactQuery()).value == 0
    small = console.client.post(
        "/contacts/new", data={"email": "a@example.com"}, headers={"X-CSRF-Token": console.csrf, "HX-Request": "true"}
    )
    assert small.status_code == 204


def test_a_multipart_form_is_bounded_like_any_form_outside_the_upload(console: Console) -> None:
    """Only the import upload streams a file (to its own cap); a multipart body to any other route, /login
    included, was parsed whole, its file parts spooled to the temp dir: an anonymous client wrote 800 MiB
    there through one POST /login. Past MAX_FORM_BYTES it is 413, with the token in a header or first."""
    from .support.console import TestClient, csrf_of

    big = ("big.bin", b"x" * (csrf.MAX_FORM_BYTES + 1), "application/octet-stream")
    anonymous = TestClient(console.gate, base_url="http://testserver")
    login_token = csrf_of(anonymous.get("/login").text)
    for client, path, token in (
        (anonymous, "/login", login_token),
        (console.client, "/contacts/new", console.csrf),
        (console.client, "/topics", console.csrf),
    ):
        fields = {"username": "admin", "password": "wrong password", "email": "a@example.com", "name": "news"}
        in_header = client.post(
            path, data=fields, files={"f": big}, headers={"X-CSRF-Token": token}, follow_redirects=False
        )
        first_part = client.post(path, data={"csrf_token": token, **fields}, files={"f": big}, follow_redirects=False)
        for response in (in_header, first_part):
            assert (response.status_code, response.text) == (413, "The form is too large."), path
    assert console.store.count_contacts(console.list_name, ContactQuery()).value == 0
    small = console.client.post(
        "/contacts/new",
        data={"email": "a@example.com"},
        files={"note": (None, b"a field, sent as multipart")},
        headers={"X-CSRF-Token": console.csrf},
        follow_redirects=False,
    )
    assert small.status_code == 303
