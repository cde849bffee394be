"""Every operation the SES API serves, fed generated input through the ASGI app, signed as boto3 signs it:
the answer is always SES-shaped (JSON, ``x-amzn-ErrorType`` = ``__type``) and never a 5xx. Bad input is the
client's error, a 4xx; an InternalFailure means a handler did not check what it was given.

Requests are built by botocore's own rest-json serializer from values generated per member of botocore's sesv2
model (any string, NUL bytes, dots, huge numbers, wrong enums...), then some bodies are swapped for arbitrary
JSON or bytes. The legacy GET bindings and the failed-records download get their own generators.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore import serialize
from botocore.model import Shape
from botocore.utils import percent_encode, percent_encode_sequence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sescontacts.model import Topic
from sescontacts.sesapi.app import load_handlers
from sescontacts.sesapi.routing import TABLE
from sescontacts.settings import LOCAL_ACCOUNT_ID
from tests.support.sesapi_client import InProcessClient, Reply, open_services

MODEL = botocore.session.get_session().get_service_model("sesv2")
JOB_ID: list[str] = []  # set by the fixture
SERIALIZER = serialize.create_serializer("rest-json", include_validation=False)
LIST = "contacts"

NASTY = [
    "",
    ".",
    "..",
    "\x00",
    "a\x00b",
    " ",
    "%",
    "%00",
    "/",
    "a/b",
    "9" * 40,
    "-1",
    "é" * 70,
    "\ud7ff",
    LIST,
    "news",
    "a@x.com",
    "OPT_IN",
    "PUT",
    "CSV",
    "s3://bucket/contacts.csv",
    "s3://bucket/a\x00b.csv",
    "s3://bucket/../../etc/passwd",
    "s3://" + "b" * 300 + "/k",
    "arn:aws:ses:us-east-1:000000000000:contact-list/contacts",
    '{"a": 1}',
    "[" * 400,
    "x" * 5000,
]
texts = st.one_of(st.sampled_from(NASTY), st.text(max_size=40))
# Integers past 64 bits (SQLite's range), floats, and the ordinary.
integers = st.one_of(st.integers(-5, 2000), st.integers(min_value=-(2**80), max_value=2**80))
any_json = st.recursive(
    st.one_of(st.none(), st.booleans(), integers, st.floats(allow_nan=False, allow_infinity=False), texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


# Values that pass validation, per member name, so generated requests also reach the store and the job
# runner (a member drawn from NASTY, or a body swapped for any JSON, then fails at every depth in turn).
VALID: dict[str, st.SearchStrategy[Any]] = {
    "ContactListName": st.sampled_from([LIST, LIST, LIST, "second"]),
    "EmailAddress": st.one_of(
        st.just("ann@example.com"), st.from_regex(r"[a-z0-9.+_-]{1,12}@[a-z]{1,8}\.(com|org)", fullmatch=True)
    ),
    "TopicName": st.just("news"),
    "S3Url": st.one_of(
        st.just("s3://bucket/contacts.csv"), texts.map(lambda key: f"s3://bucket/{key}"), st.just("s3://bucket/\x00")
    ),
    "ResourceArn": st.just(f"arn:aws:ses:us-east-1:{LOCAL_ACCOUNT_ID}:contact-list/{LIST}"),
    "AttributesData": st.dictionaries(st.text(max_size=8), any_json, max_size=3).map(json.dumps),
    "PageSize": st.one_of(st.integers(1, 20), integers),
    "JobId": st.deferred(lambda: st.sampled_from(JOB_ID)),  # the job the fixture ran
    "Description": st.text(max_size=40),
    "DisplayName": st.text(max_size=40),
    "Key": st.text(min_size=1, max_size=10),
    "Value": st.text(max_size=10),
}


def _mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Nine draws in ten from ``valid`` (hypothesis' one_of leans to its later branches: this does not)."""
    return st.sampled_from([True] * 9 + [False]).flatmap(lambda keep: valid if keep else other)


def for_shape(shape: Shape, name: str = "", depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of member ``name`` of ``shape`` as boto3 would send them: types right, required members present,
    contents mostly valid and sometimes anything."""
    kind = shape.type_name
    if kind == "structure":
        if depth > 5:
            return st.just({})
        members = {n: for_shape(member, n, depth + 1) for n, member in shape.members.items()}
        required = set(shape.required_members) | {  # type: ignore[attr-defined]
            n for n, m in shape.members.items() if m.serialization.get("location") == "uri"
        }
        generic = st.fixed_dictionaries(
            {n: s for n, s in members.items() if n in required},
            optional={n: s for n, s in members.items() if n not in required},
        )
        if name == "ImportDestination":  # a union: one member set, as clients send it
            return _mostly(st.one_of(*[st.fixed_dictionaries({n: s}) for n, s in members.items()]), generic)
        return generic
    if kind == "list":
        return st.lists(for_shape(shape.member, name, depth + 1), max_size=3)  # type: ignore[attr-defined]
    if kind == "map":
        return st.dictionaries(texts, for_shape(shape.value, name, depth + 1), max_size=3)  # type: ignore[attr-defined]
    if kind == "string":
        valid = st.sampled_from(shape.enum) if shape.enum else VALID.get(name, texts)
        return _mostly(valid, texts)
    if kind in ("integer", "long"):
        return VALID.get(name, integers)
    if kind == "boolean":
        return st.booleans()
    if kind in ("double", "float"):
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "timestamp":
        return st.datetimes(timezones=st.just(dt.UTC))
    if kind == "blob":
        return st.binary(max_size=20)
    raise AssertionError(f"no strategy for {kind}")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessClient]:
    services = open_services(tmp_path_factory.mktemp("fuzz") / "data", max_contact_lists=None)
    bucket = services.settings.s3_folder / "bucket"
    bucket.mkdir(parents=True)
    (bucket / "contacts.csv").write_text("emailAddress\nann@example.com\nbroken\n")
    client = InProcessClient(services)
    _reset(client)
    body = {
        "ImportDestination": {"ContactListDestination": {"ContactListName": LIST, "ContactListImportAction": "PUT"}},
        "ImportDataSource": {"S3Url": "s3://bucket/contacts.csv", "DataFormat": "CSV"},
    }
    job_id = client.call("POST", "/v2/email/import-jobs", body).json["JobId"]
    services.jobs.run(job_id)  # a finished job with a failed record, for GetImportJob's FailureInfo
    JOB_ID.append(job_id)
    yield client
    services.close()


def _reset(api: InProcessClient) -> None:
    """The list the generated requests aim at exists, with a topic and a contact, whatever the last one did."""
    store = api.services.store
    if LIST not in {c.name for c in store.list_lists(page_size=1000).items}:
        store.create_list(LIST, topics=[Topic("news", "News", "OPT_IN")])
        api.call("POST", f"/v2/email/contact-lists/{LIST}/contacts", {"EmailAddress": "ann@example.com"})


def assert_ses_shaped(reply: Reply, what: str) -> None:
    assert reply.status < 500, f"{what} -> {reply.status} {reply.body[:300]!r}"
    if reply.headers.get("content-type", "").startswith("text/csv"):
        assert reply.status == 200
        return
    assert reply.headers["content-type"] == "application/json", what
    assert reply.headers.get("x-amzn-requestid"), what
    body = json.loads(reply.body)
    assert isinstance(body, dict), what
    if reply.status >= 400:
        assert reply.error_type == body["__type"] and isinstance(body["message"], str), what


def _target(request: dict[str, Any]) -> str:
    query = percent_encode_sequence(request["query_string"]) if request["query_string"] else ""
    return request["url_path"] + (f"?{query}" if query else "")


def _body(request: dict[str, Any]) -> bytes:
    body = request["body"]
    return body.encode() if isinstance(body, str) else bytes(body or b"")


OPERATIONS = sorted(
    name for name, op in (load_handlers() or TABLE.operations).items() if not (op.presigned or name.endswith("Legacy"))
)


@pytest.mark.parametrize("name", OPERATIONS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_generated_request_is_a_server_error(api: InProcessClient, name: str, data: st.DataObject) -> None:
    _reset(api)
    model = MODEL.operation_model(name)
    params = data.draw(for_shape(model.input_shape), label="params")
    request = SERIALIZER.serialize_to_request(params, model)
    body = _body(request)
    swap = data.draw(st.sampled_from(["as serialised"] * 4 + ["any JSON", "bytes"]), label="body")
    if swap == "any JSON":
        body = json.dumps(data.draw(any_json, label="json")).encode()
    elif swap == "bytes":
        body = data.draw(st.binary(max_size=60), label="bytes")
    target = _target(request)
    assert_ses_shaped(api.call(request["method"], target, body), f"{name} {target} {body[:200]!r}")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    legacy=st.sampled_from([f"/v2/email/contact-lists/{LIST}/contacts", "/v2/email/import-jobs"]),
    page_size=st.one_of(st.none(), texts, integers.map(str)),
    token=st.one_of(st.none(), texts),
    body=st.one_of(any_json.map(lambda v: json.dumps(v).encode()), st.binary(max_size=40)),
)
def test_legacy_get_bindings_never_fail(
    api: InProcessClient, legacy: str, page_size: str | None, token: str | None, body: bytes
) -> None:
    _reset(api)
    query = [(k, v) for k, v in (("PageSize", page_size), ("NextToken", token)) if v is not None]
    target = legacy + (f"?{percent_encode_sequence(query)}" if query else "")
    assert_ses_shaped(api.call("GET", target, body), f"{target} {body[:200]!r}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(job_id=texts, token=st.one_of(st.none(), texts))
def test_failed_records_download_never_fails(api: InProcessClient, job_id: str, token: str | None) -> None:
    path = f"/v2/email/import-jobs/{percent_encode(job_id)}/failed-records"
    target = path + (f"?Token={percent_encode(token)}" if token is not None else "")
    reply = api.raw("GET", target)
    assert_ses_shaped(reply, target)
    assert reply.status in (400, 403, 404), target


def test_the_generators_reach_every_served_operation() -> None:
    """A new operation is fuzzed without anyone remembering to add it (legacy and pre-signed ones above)."""
    assert set(OPERATIONS) | {"ListContactsLegacy", "ListImportJobsLegacy", "GetFailedRecords"} == set(TABLE.operations)
