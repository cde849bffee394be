"""Raw-path routing (sesapi/routing.py) and the operation table against botocore's own sesv2 model."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.utils import normalize_url_path, percent_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from sescontacts.errors import BadRequest
from sescontacts.sesapi.app import load_handlers
from sescontacts.sesapi.routing import TABLE, OperationTable


def _noop(request: object) -> dict[str, object]:
    return {}


@pytest.fixture(scope="module")
def table() -> OperationTable:
    load_handlers()
    return TABLE


@pytest.mark.parametrize(
    ("method", "path", "operation", "labels"),
    [
        ("POST", "/v2/email/contact-lists", "CreateContactList", {}),
        ("GET", "/v2/email/contact-lists", "ListContactLists", {}),
        ("GET", "/v2/email/contact-lists/", "GetContactList", {"ContactListName": ""}),
        ("GET", "/v2/email/contact-lists/L/contacts/", "GetContact", {"ContactListName": "L", "EmailAddress": ""}),
        ("GET", "/v2/email/contact-lists/L", "GetContactList", {"ContactListName": "L"}),
        ("PUT", "/v2/email/contact-lists/L", "UpdateContactList", {"ContactListName": "L"}),
        ("DELETE", "/v2/email/contact-lists/L", "DeleteContactList", {"ContactListName": "L"}),
        ("POST", "/v2/email/contact-lists/L/contacts", "CreateContact", {"ContactListName": "L"}),
        ("POST", "/v2/email/contact-lists/L/contacts/list", "ListContacts", {"ContactListName": "L"}),
        ("GET", "/v2/email/contact-lists/L/contacts", "ListContactsLegacy", {"ContactListName": "L"}),
        # "list" as an address is GetContact: only POST binds the literal.
        (
            "GET",
            "/v2/email/contact-lists/L/contacts/list",
            "GetContact",
            {"ContactListName": "L", "EmailAddress": "list"},
        ),
        (
            "GET",
            "/v2/email/contact-lists/L/contacts/a%2Bb%40x.com",
            "GetContact",
            {"ContactListName": "L", "EmailAddress": "a+b@x.com"},
        ),
        (
            "GET",
            "/v2/email/contact-lists/L/contacts/a+b%40x.com",
            "GetContact",
            {"ContactListName": "L", "EmailAddress": "a+b@x.com"},
        ),
        (
            "PUT",
            "/v2/email/contact-lists/L/contacts/a%2Fb%40x.com",
            "UpdateContact",
            {"ContactListName": "L", "EmailAddress": "a/b@x.com"},
        ),
        (
            "DELETE",
            "/v2/email/contact-lists/L/contacts/%C3%BC%40ex%C3%A4mple.com",
            "DeleteContact",
            {"ContactListName": "L", "EmailAddress": "ü@exämple.com"},
        ),
        ("GET", "/v2/email/contact-lists/%2E%2E", "GetContactList", {"ContactListName": ".."}),
        ("POST", "/v2/email/tags", "TagResource", {}),
        ("DELETE", "/v2/email/tags", "UntagResource", {}),
        ("GET", "/v2/email/tags", "ListTagsForResource", {}),
    ],
)
def test_routes(table: OperationTable, method: str, path: str, operation: str, labels: dict[str, str]) -> None:
    match = table.match(method, path.encode())
    assert match is not None
    op, got = match
    assert (op.name, got) == (operation, labels)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/v2/email/contact-lists"),
        ("GET", "/v2/email"),
        ("GET", "/v2/email/contact-lists/L/contacts/a/b"),  # a raw "/" separates segments
        ("POST", "/v2/email/contact-lists/L/contacts/a%40b.co"),
        ("GET", "v2/email/contact-lists"),
        ("GET", "/v2/email/contact-lists/L/x"),
    ],
)
def test_no_route(table: OperationTable, method: str, path: str) -> None:
    assert table.match(method, path.encode()) is None


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v2/email/contact-lists//contacts/x%40y.z", "ContactListName can't be blank."),
        ("/v2/email/contact-lists/../contacts/x%40y.z", "ContactListName can't be '..'"),
        ("/v2/email/contact-lists/L/contacts/.", "EmailAddress can't be '.'"),
        ("/v2/email/contact-lists/contacts/contacts/..", "EmailAddress can't be '..'"),
        ("/v2/email/./contact-lists", "The request path has a '.' segment"),
        ("/v2/email/contact-lists/L/../..", "The request path has a '..' segment"),
        ("//v2/email/contact-lists", "The request path has an empty segment"),
        ("/v2/email/contact-lists//", "The request path has an empty segment"),
    ],
)
def test_paths_sigv4_would_sign_normalised_are_refused(table: OperationTable, path: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        table.match("GET", path.encode())
    assert caught.value.message.startswith(message)
    assert (caught.value.code, caught.value.status) == ("BadRequestException", 400)


@settings(max_examples=500, deadline=None)
@given(
    segments=st.lists(st.sampled_from(["", ".", "..", "a", "contacts", "%2E", "%2F", "list", "x%40y.z"]), max_size=8),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
)
def test_a_routed_path_is_exactly_the_path_sigv4_signed(segments: list[str], method: str) -> None:
    """The invariant behind the refusals: whatever routes is what botocore's path normalisation signs."""
    load_handlers()
    path = "/" + "/".join(["v2", "email", "contact-lists", *segments])
    try:
        TABLE.match(method, path.encode())
    except BadRequest:
        return
    assert normalize_url_path(path) == path  # what SigV4Auth.canonical_request signs (before quoting)


def test_non_ascii_raw_bytes_and_bad_escapes_do_not_crash(table: OperationTable) -> None:
    # uvicorn hands raw bytes; invalid UTF-8 decodes with replacement characters, never an exception.
    match = table.match("GET", "/v2/email/contact-lists/L/contacts/ü@x.com".encode())
    assert match is not None and match[1]["EmailAddress"] == "ü@x.com"
    for raw in (b"/v2/email/contact-lists/L/contacts/%C3%28", b"/v2/email/contact-lists/L/contacts/%ZZ", b"/v2/\xff"):
        table.match("GET", raw)


def test_literal_segments_win_over_labels() -> None:
    t = OperationTable()
    t.add("ByLabel", "POST", "/a/{X}", _noop)
    t.add("ByLiteral", "POST", "/a/list", _noop)
    assert t.match("POST", b"/a/list")[0].name == "ByLiteral"  # type: ignore[index]
    assert t.match("POST", b"/a/other")[0].name == "ByLabel"  # type: ignore[index]


def test_an_operation_registers_once() -> None:
    t = OperationTable()
    t.add("Op", "GET", "/a", _noop)
    with pytest.raises(ValueError, match="registered twice"):
        t.add("Op", "GET", "/b", _noop)


def test_bindings_match_botocores_sesv2_model(table: OperationTable) -> None:
    """Every operation we serve binds the method and URI botocore sends (legacy bindings of old botocores and the
    failed-records download, a pre-signed URL rather than an SES operation, aside)."""
    model = botocore.session.get_session().get_service_model("sesv2")
    for name, op in table.operations.items():
        if name.endswith("Legacy") or op.presigned:
            continue
        http = model.operation_model(name).http
        assert (op.method, op.template) == (http["method"], http["requestUri"].split("?")[0]), name


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(min_size=0, max_size=30).filter(lambda s: "\x00" not in s),
    email=st.text(min_size=0, max_size=40).filter(lambda s: "\x00" not in s),
)
def test_any_label_round_trips_through_botocores_encoding(name: str, email: str) -> None:
    """Whatever botocore puts in a URI label (percent_encode, safe '-._~'), routing decodes back exactly, except
    the labels botocore would sign as another path ("", "." and ".." raw): those are refused, naming the label."""
    load_handlers()
    path = f"/v2/email/contact-lists/{percent_encode(name)}/contacts/{percent_encode(email)}"
    if name in ("", ".", "..") or email in (".", ".."):
        with pytest.raises(BadRequest, match=r"^(ContactListName|EmailAddress) can't be"):
            TABLE.match("GET", path.encode("ascii"))
        return
    match = TABLE.match("GET", path.encode("ascii"))
    assert match is not None
    assert (match[0].name, match[1]) == ("GetContact", {"ContactListName": name, "EmailAddress": email})
