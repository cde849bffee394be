"""The attributes nesting limit on every surface that writes attributes (SES API, import, console form), and
every page, search and export on a value past it that was stored before the limit existed.

orjson writes at most 254 levels and reads at most 1024; past those a contact page, its edit page and
attribute search answered 500, and one such row failed a whole import.
"""

from __future__ import annotations

import html
import re
import sqlite3
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from sescontacts.bulk.importer import iter_rejects, run_import
from sescontacts.bulk.report import ImportOptions
from sescontacts.cli import main
from sescontacts.model import Contact, ContactQuery
from sescontacts.validation import MAX_ATTRIBUTES_DEPTH

from .support.console import Console, console_fixture, fast_kdf_fixture  # noqa: F401
from .support.sesapi_client import InProcessClient
from .support.sesapi_client import open_services as open_api_services

LIST = "/v2/email/contact-lists"
OVER_MESSAGE = f"nested more than {MAX_ATTRIBUTES_DEPTH} levels deep"


def nested(depth: int, leaf: str = "1") -> str:
    """An attributes object ``depth`` levels deep, the outer object being level 1."""
    return '{"a":' * depth + leaf + "}" * depth


def test_nested_builds_the_depth_it_says() -> None:
    assert orjson.loads(nested(1)) == {"a": 1} and orjson.loads(nested(2)) == {"a": {"a": 1}}


# -- the SES API -------------------------------------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path):
    services = open_api_services(tmp_path / "api")
    services.store.create_list("L")
    yield InProcessClient(services)
    services.close()


@pytest.mark.parametrize("operation", ["CreateContact", "UpdateContact"])
def test_api_refuses_attributes_past_the_limit_with_a_bad_request(api: InProcessClient, operation: str) -> None:
    api.call("POST", f"{LIST}/L/contacts", {"EmailAddress": "b@x.com"})
    for depth in (MAX_ATTRIBUTES_DEPTH + 1, 300, 2000):
        body = {"AttributesData": nested(depth)}
        if operation == "CreateContact":
            reply = api.call("POST", f"{LIST}/L/contacts", {"EmailAddress": "a@x.com", **body})
        else:
            reply = api.call("PUT", f"{LIST}/L/contacts/b%40x.com", body)
        assert (reply.status, reply.error_type) == (400, "BadRequestException"), (depth, reply.body)
        assert reply.json == {
            "__type": "BadRequestException",
            "message": f"AttributesData is {OVER_MESSAGE}.",
        }
    assert api.call("GET", f"{LIST}/L/contacts/a%40x.com").status == 404
    assert "AttributesData" not in api.call("GET", f"{LIST}/L/contacts/b%40x.com").json


def test_api_accepts_attributes_at_the_limit(api: InProcessClient) -> None:
    deepest = nested(MAX_ATTRIBUTES_DEPTH)
    assert api.call("POST", f"{LIST}/L/contacts", {"EmailAddress": "a@x.com", "AttributesData": deepest}).status == 200
    assert api.call("GET", f"{LIST}/L/contacts/a%40x.com").json["AttributesData"] == deepest
    # brackets inside strings are text, not nesting
    text = orjson.dumps({"a": "[" * 100, "b": "{" * 100}).decode()
    assert api.call("PUT", f"{LIST}/L/contacts/a%40x.com", {"AttributesData": text}).status == 200


def test_api_counts_nesting_in_attributes_that_are_not_an_object(api: InProcessClient) -> None:
    """Through the API AttributesData may be any text (as SES allows); a deep array is refused all the same."""
    deep_array = "[" * (MAX_ATTRIBUTES_DEPTH + 1) + "]" * (MAX_ATTRIBUTES_DEPTH + 1)
    reply = api.call("POST", f"{LIST}/L/contacts", {"EmailAddress": "a@x.com", "AttributesData": deep_array})
    assert (reply.status, reply.error_type) == (400, "BadRequestException")
    reply = api.call("POST", f"{LIST}/L/contacts", {"EmailAddress": "a@x.com", "AttributesData": "plain text"})
    assert reply.status == 200


# -- the importer and ``sescontacts import`` --------------------------------------------------------------


def _rows(store, name: str = "contacts") -> dict[str, str | None]:
    return {c.email: c.attributes_data for c in store.list_contacts(name, page_size=1000).items}


@pytest.fixture
def store(tmp_path: Path):
    services = open_api_services(tmp_path / "imp")
    services.store.create_list("contacts")
    yield services.store
    services.close()


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


DEPTHS = {  # address -> nesting of its attributes
    "under@x.com": MAX_ATTRIBUTES_DEPTH,
    "over@x.com": MAX_ATTRIBUTES_DEPTH + 1,
    "orjson-write-limit@x.com": 300,
    "orjson-read-limit@x.com": 10_000,
}


def _import_file(tmp_path: Path, kind: str) -> Path:
    """A file of: a plain row, then one row per DEPTHS entry, then another plain row."""
    objects = [{"emailAddress": "first@x.com"}]
    objects += [{"emailAddress": email, "attributesData": nested(depth)} for email, depth in DEPTHS.items()]
    objects += [{"emailAddress": "last@x.com", "attributesData": '{"b":2}'}]
    if kind == "csv":
        lines = ["emailAddress,attributesData"]
        lines += [f"{o['emailAddress']},{_csv_cell(o.get('attributesData', ''))}" for o in objects]
        return _write(tmp_path / "in.csv", "\n".join(lines) + "\n")
    if kind == "jsonl":
        return _write(tmp_path / "in.jsonl", "".join(orjson.dumps(o).decode() + "\n" for o in objects))
    if kind in ("array-object", "stream-object"):  # attributesData as a nested object, not a string
        texts = [_object_text(o) for o in objects]
        if kind == "array-object":
            return _write(tmp_path / "in.json", "[\n" + ",\n".join(texts) + "\n]\n")
        # pretty-printed objects one after another, as on the product page
        return _write(tmp_path / "in.json", "\n".join("{\n" + t[1:] for t in texts) + "\n")
    if kind == "array-string":
        return _write(tmp_path / "in.json", "[\n" + ",\n".join(orjson.dumps(o).decode() for o in objects) + "\n]\n")
    raise AssertionError(kind)


def _object_text(row: dict[str, str]) -> str:
    """One JSON object with attributesData written as a nested object (spliced as text)."""
    text = '{"emailAddress": ' + orjson.dumps(row["emailAddress"]).decode()
    if "attributesData" in row:
        text += ', "attributesData": ' + row["attributesData"]
    return text + "}"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["csv", "jsonl", "array-string", "array-object", "stream-object"])
def test_import_rejects_only_the_rows_past_the_limit(store, tmp_path: Path, kind: str) -> None:
    path = _import_file(tmp_path, kind)
    rejects_path = tmp_path / "rejects.csv"
    report = run_import(store, path, ImportOptions("contacts"), rejects_path=rejects_path)
    assert report.error is None, report.error
    assert report.counts["created"] == 3 and report.counts["rejected"] == 3 and report.exit_status == 1
    assert _rows(store) == {"first@x.com": None, "under@x.com": nested(MAX_ATTRIBUTES_DEPTH), "last@x.com": '{"b":2}'}
    rejects = list(iter_rejects(rejects_path))
    assert [r.email for r in rejects] == ["over@x.com", "orjson-write-limit@x.com", "orjson-read-limit@x.com"]
    lines = [r.line for r in rejects]
    assert lines == sorted(lines) and all(line > 1 for line in lines)
    for reject in rejects:
        assert reject.column == "attributesData" and reject.reason == f"attributesData is {OVER_MESSAGE}"


def test_import_rejects_other_deep_fields_without_failing_the_file(store, tmp_path: Path) -> None:
    """Every field of a JSON row may hold a deep value; the reason quotes it without writing 10,000 levels."""
    deep = "[" * 10_000 + "]" * 10_000
    lines = [
        '{"emailAddress": "a@x.com", "unsubscribeAll": ' + deep + "}",
        '{"emailAddress": ' + deep + "}",
        '{"emailAddress": "b@x.com", "topicPreferences": {"t": ' + deep + "}}",
        '{"emailAddress": "c@x.com", "attributesData": "{}", "Extra": ' + nested(300) + "}",
        '{"emailAddress": "ok@x.com"}',
    ]
    path = _write(tmp_path / "in.json", "[" + ",\n".join(lines) + "]\n")
    report = run_import(store, path, ImportOptions("contacts", extra_columns_as_attributes=True))
    assert report.error is None and report.counts["created"] == 1 and report.counts["rejected"] == 4
    assert [r.line for r in report.rejects] == [1, 2, 3, 4]
    assert "unsubscribeAll must be true or false, not an array nested" in report.rejects[0].reason
    assert report.rejects[3].column == "Extra" and OVER_MESSAGE in report.rejects[3].reason


def test_cli_import_of_a_deep_row_imports_the_rest(tmp_path: Path) -> None:
    source = _write(
        tmp_path / "in.csv",
        f"emailAddress,attributesData\nok@x.com,{_csv_cell(nested(2))}\ndeep@x.com,{_csv_cell(nested(300))}\n",
    )
    result = CliRunner().invoke(main, ["import", str(source), "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 1, result.output
    assert f"line 3: deep@x.com: attributesData: attributesData is {OVER_MESSAGE}" in result.stderr
    conn = sqlite3.connect(tmp_path / "d" / "sescontacts.db")
    try:
        assert conn.execute("SELECT email FROM contacts").fetchall() == [("ok@x.com",)]
    finally:
        conn.close()


# -- the console form ------------------------------------------------------------------------------------


def _textarea(page: str) -> str:
    found = re.search(r'<textarea id="attributes_json"[^>]*>([^<]*)</textarea>', page)
    assert found, "no attributes textarea"
    return html.unescape(found.group(1))


def _field_error(page: str, field: str) -> str:
    error = re.search(rf'<p class="field-error" id="{field}-error" role="alert">([^<]*)</p>', page)
    assert error, "no inline error"
    return html.unescape(error.group(1))


@pytest.mark.parametrize("depth", [MAX_ATTRIBUTES_DEPTH + 1, 300, 10_000])
def test_console_form_shows_the_limit_inline(console: Console, depth: int) -> None:
    raw = {"email": "a@example.com", "attr_mode": "json", "attributes_json": nested(depth)}
    response = console.post("/contacts/new", raw)
    assert response.status_code == 400
    assert _field_error(response.text, "attributes") == f"AttributesData is {OVER_MESSAGE}."
    row = {"email": "a@example.com", "attr_key": ["k"], "attr_value": [nested(depth - 1)], "attr_json": ["1"]}
    response = console.post("/contacts/new", row)
    assert response.status_code == 400
    assert _field_error(response.text, "attributes") == f"AttributesData is {OVER_MESSAGE}."
    assert console.store.count_contacts(console.list_name, ContactQuery()).value == 0


def test_console_form_accepts_the_limit(console: Console) -> None:
    row = {"email": "a@example.com", "attr_key": ["k"], "attr_value": [nested(MAX_ATTRIBUTES_DEPTH - 1)]}
    assert console.post("/contacts/new", {**row, "attr_json": ["1"]}).status_code == 303
    raw = {"email": "b@example.com", "attr_mode": "json", "attributes_json": nested(MAX_ATTRIBUTES_DEPTH)}
    assert console.post("/contacts/new", raw).status_code == 303
    for email in ("a@example.com", "b@example.com"):
        assert console.client.get("/contacts/edit", params={"email": email}).status_code == 200


# -- values stored before the limit -------------------------------------------------------------------------

LEGACY = {
    "over@example.com": '{"Company":"ACM","deep":' + nested(MAX_ATTRIBUTES_DEPTH) + "}",
    "write-limit@example.com": '{"Company":"ACM","deep":' + nested(300) + "}",
    "read-limit@example.com": '{"Company":"ACM","deep":' + nested(2000) + "}",
    "array@example.com": "[" * 5000 + "]" * 5000,
}


def _store_legacy(console: Console) -> None:
    """Write what a release without the limit accepted, straight into the SQLite file."""
    store, name = console.store, console.list_name
    store.create_contact(name, Contact("plain@example.com", attributes_data='{"Company":"ACM"}'))
    for email in LEGACY:
        store.create_contact(name, Contact(email, attributes_data='{"Company":"ACM"}'))
    conn = sqlite3.connect(console.services.settings.data_dir / "sescontacts.db")
    try:
        with conn:
            for email, text in LEGACY.items():
                conn.execute("UPDATE contacts SET attributes = ? WHERE email = ?", (text, email))
    finally:
        conn.close()
    assert store.get_contact(name, "read-limit@example.com").attributes_data == LEGACY["read-limit@example.com"]


def test_every_page_renders_values_stored_before_the_limit(console: Console) -> None:
    _store_legacy(console)
    page = console.client.get("/")
    assert page.status_code == 200 and all(email in page.text for email in LEGACY)
    for query in ("Company = ACM", "Company", "deep", "deep = x"):
        response = console.client.get("/", params={"q": query, "field": "attribute"})
        assert response.status_code == 200, query
        fragment = console.client.get("/", params={"q": query, "field": "attribute"}, headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        assert console.client.get("/count", params={"q": query, "field": "attribute"}).status_code == 200
    # a value past the limit is raw text to the console (as non-object text from the SES API is)
    found = console.client.get("/", params={"q": "Company = ACM", "field": "attribute"}).text
    assert "plain@example.com" in found and "over@example.com" not in found
    for email, text in LEGACY.items():
        form = console.client.get("/contacts/edit", params={"email": email})
        assert form.status_code == 200 and 'value="json" checked' in form.text
        assert _textarea(form.text) == text
    for fmt in ("csv", "json"):
        export = console.client.get("/export", params={"format": fmt})
        assert export.status_code == 200 and all(email in export.text for email in LEGACY)


def test_saving_a_legacy_contact_keeps_its_untouched_value(console: Console) -> None:
    _store_legacy(console)
    email = "write-limit@example.com"
    form = console.client.get("/contacts/edit", params={"email": email}).text
    original = html.unescape(re.search(r'name="original" value="([^"]+)"', form).group(1))
    response = console.post(
        "/contacts/edit",
        {
            "email": email,
            "original": original,
            "attr_mode": "json",
            "attributes_json": LEGACY[email],
            "unsubscribe_all": "1",
        },
    )
    assert response.status_code == 303
    kept = console.store.get_contact(console.list_name, email)
    assert kept.attributes_data == LEGACY[email] and kept.unsubscribe_all
    response = console.post(
        "/contacts/edit",
        {"email": email, "original": original, "attr_mode": "json", "attributes_json": nested(300)},
    )
    assert response.status_code == 400 and _field_error(response.text, "attributes").endswith(f"{OVER_MESSAGE}.")


def test_imports_over_legacy_values_do_not_fail(console: Console, tmp_path: Path) -> None:
    """An import that leaves, merges into or replaces a legacy value compares it without writing it."""
    _store_legacy(console)
    lines = [f'{{"emailAddress": "{email}", "unsubscribeAll": true}}' for email in LEGACY]
    lines += [f'{{"emailAddress": "{email}", "attributesData": "{{}}"}}' for email in LEGACY]
    path = _write(tmp_path / "in.jsonl", "\n".join(lines) + "\n")
    for merge in (True, False):
        report = run_import(
            console.store, path, ImportOptions(console.list_name, merge_attributes=merge, resubscribe=True)
        )
        assert report.error is None and report.counts["rejected"] == 0, report


def test_api_reads_legacy_values(console: Console) -> None:
    _store_legacy(console)
    client = InProcessClient(console.services)
    access = console.services.access_key
    key = {"key_id": access.access_key_id, "secret": access.secret_access_key}
    for email, text in LEGACY.items():
        reply = client.call("GET", f"{LIST}/{console.list_name}/contacts/{email.replace('@', '%40')}", **key)
        assert reply.status == 200 and reply.json["AttributesData"] == text
    listed = client.call("POST", f"{LIST}/{console.list_name}/contacts/list", {}, **key)
    assert listed.status == 200 and len(listed.json["Contacts"]) == len(LEGACY) + 1
    # UpdateContact may send a stored value back unchanged (its other fields change); a new deep value is refused
    email, text = "write-limit@example.com", LEGACY["write-limit@example.com"]
    target = f"{LIST}/{console.list_name}/contacts/write-limit%40example.com"
    reply = client.call("PUT", target, {"AttributesData": text, "UnsubscribeAll": True}, **key)
    assert reply.status == 200
    assert console.store.get_contact(console.list_name, email).unsubscribe_all
    reply = client.call("PUT", target, {"AttributesData": text.replace("ACM", "Other")}, **key)
    assert (reply.status, reply.json["message"]) == (400, f"AttributesData is {OVER_MESSAGE}.")


@pytest.mark.parametrize(
    "original",
    [
        '{"u":false,"t":{"x":' + "[" * 900 + "]" * 900 + '},"a":null}',
        '{"u":false,"t":{},"a":{"k":1}}',
        '{"u":[],"t":[],"a":1}',
        "[" * 5000 + "]" * 5000,
    ],
)
def test_a_hand_made_original_field_is_ignored_not_a_500(console: Console, original: str) -> None:
    """The edit form's hidden ``original`` comes back from the browser; anything but what the form wrote
    means "no original" (the form's values are saved as they are)."""
    console.store.create_contact(console.list_name, Contact("a@example.com", attributes_data='{"k":1}'))
    response = console.post(
        "/contacts/edit",
        {"email": "a@example.com", "original": original, "attr_key": ["k"], "attr_value": ["2"], "attr_json": ["0"]},
    )
    assert response.status_code == 303
    assert console.store.get_contact(console.list_name, "a@example.com").attributes() == {"k": "2"}
