"""The bulk file readers and writers: the page's examples byte for byte, a corpus of malformed files each
with its exact outcome, and properties (round trips, garbage never raises anything but FileError)."""

from __future__ import annotations

import codecs
import io
import string
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sescontacts.bulk.formats import CsvWriter, JsonLinesWriter, ReadOptions, open_reader, validate_structure
from sescontacts.bulk.formats.columns import Rows
from sescontacts.bulk.formats.fields import check_address, decode_cell, encode_cell, make_patch
from sescontacts.bulk.formats.json_syntax import json_values as _json_values
from sescontacts.bulk.report import FileError, Reject
from sescontacts.model import MISSING, OPT_IN, OPT_OUT, ContactPatch, PatchBatch, value_nesting_exceeds
from sescontacts.validation import MAX_ATTRIBUTES_DEPTH, email_problem

FIXTURES = Path(__file__).parent / "fixtures"
TOPICS = frozenset({"Sports", "Cycling"})


@dataclass
class Read:
    patches: list[ContactPatch]
    rejects: list[Reject]
    warnings: list[str]
    format: str


def read_file(path: Path, *, name: str | None = None, fmt: str | None = None, **options: object) -> Read:
    """The file's records, read one by one (``records``); read again a block at a time (``blocks``, the
    importer's way, in blocks of 3 to cross their edges), which must give the same records, rejects,
    warnings, or the same error."""
    opts = ReadOptions(topics=TOPICS, **options)  # type: ignore[arg-type]
    reader = open_reader(path, name=name or path.name, fmt=fmt, options=opts)
    patches: list[ContactPatch] = []
    rejects: list[Reject] = []
    one_by_one = Rows(delete=opts.action == "delete")
    try:
        validate_structure(reader)
        for _line, record in reader.records():
            one_by_one.add(record)
            if isinstance(record, Reject):
                rejects.append(record)
            else:
                assert isinstance(record, ContactPatch | str)
                patches.append(record)  # type: ignore[arg-type]
    except FileError as exc:
        with pytest.raises(FileError) as caught:
            read_blocks(path, name=name or path.name, fmt=fmt, options=opts)
        assert (caught.value.message, caught.value.line, caught.value.column) == (exc.message, exc.line, exc.column)
        raise
    blocks, warnings = read_blocks(path, name=name or path.name, fmt=fmt, options=opts)
    assert blocks == one_by_one
    assert warnings == reader.warnings
    return Read(patches, rejects, reader.warnings, reader.format)


def read_blocks(
    path: Path, *, name: str, fmt: str | None, options: ReadOptions, size: int = 3, skip: int = 0
) -> tuple[Rows, list[str]]:
    """The file's records as the importer reads them, blocks joined into one."""
    reader = open_reader(path, name=name, fmt=fmt, options=options)
    validate_structure(reader)
    joined = Rows(delete=options.action == "delete")
    for rows, _position in reader.blocks(skip=skip, size=size):
        assert rows.records <= size
        for i in range(len(rows.emails)):
            if rows.delete:
                joined.add(rows.emails[i])
            else:
                joined.add(PatchBatch("folded", [], rows.emails, rows.unsubscribe, rows.attributes, rows.topics)[i])
        for reject in rows.rejects:
            joined.add(reject)
        joined.records += rows.records - len(rows.emails) - len(rows.rejects)
    return joined, reader.warnings


def read_bytes(tmp_path: Path, data: bytes, name: str = "contacts.csv", **options: object) -> Read:
    path = tmp_path / name
    path.write_bytes(data)
    return read_file(path, **options)


# -- the page's examples, byte for byte ------------------------------------------------------------------


def test_page_csv_example_reads_to_exactly_the_contacts_it_shows() -> None:
    read = read_file(FIXTURES / "page-example.csv")
    assert read.format == "csv"
    assert read.rejects == [] and read.warnings == []
    assert read.patches == [
        ContactPatch("john.doe@example.com", False, {"Name": "John", "Company": "ACM Inc"}, {}),
        ContactPatch("jane.smith@example.com", True, {"Name": "Jane", "Company": None}, {}),
    ]


def test_page_json_example_reads_with_a_warning_naming_the_trailing_comma_line() -> None:
    raw = (FIXTURES / "page-example.json").read_bytes()
    assert raw.count(b"true,\n}") == 1  # the fixture really is the page's text, trailing comma included
    read = read_file(FIXTURES / "page-example.json")
    assert read.format == "json"
    assert read.rejects == []
    assert read.warnings == ["line 8: trailing comma before '}' ignored"]
    assert read.patches == [
        ContactPatch("john.deo@example.com", False, {"Name": "John"}, {}),
        ContactPatch("jane.smith@example.com", True, MISSING, {}),
    ]


# -- the malformed-file corpus ----------------------------------------------------------------------------

HEADER = b"emailAddress,unsubscribeAll,attributesData\n"


@dataclass(frozen=True)
class Err:
    """A file-level error at ``line``:``column`` (0 = not given) whose message contains ``text``."""

    line: int
    column: int
    text: str


@dataclass(frozen=True)
class Ok:
    """Read through: ``patches`` accepted rows; ``rejects`` as (line, column, text in the reason)."""

    patches: int
    rejects: tuple[tuple[int, str, str], ...] = ()
    warnings: tuple[str, ...] = ()


def _deep(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _csv_attr(text: str) -> bytes:
    return ('"' + text.replace('"', '""') + '"').encode()


CORPUS: list[tuple[str, str, bytes, Err | Ok]] = [
    ("empty file", "c.csv", b"", Err(1, 0, "the file is empty")),
    ("whitespace only", "c.csv", b"\n \r\n\t\n", Err(1, 0, "the file is empty")),
    ("BOM only", "c.csv", codecs.BOM_UTF8, Err(1, 0, "the file is empty")),
    ("header only", "c.csv", HEADER, Ok(0)),
    ("no emailAddress column", "c.csv", b"name,company\nx,y\n", Err(1, 0, "no emailAddress column (the header has")),
    ("no header at all", "c.csv", b"a@example.com,true\n", Err(1, 0, "the first line must be a header")),
    ("unknown column", "c.csv", b"emailAddress,Name\na@example.com,Ann\n", Err(1, 2, "unknown column 'Name'")),
    ("duplicate column", "c.csv", b"emailAddress,EMAILADDRESS\n", Err(1, 2, "appears twice")),
    ("NUL byte mid-file", "c.csv", HEADER + b"a@example.com,,\nb@ex\x00ample.com,,\n", Err(3, 5, "NUL byte")),
    ("binary (PNG)", "c.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, Err(1, 1, "binary data")),
    ("UTF-16 with BOM", "c.csv", codecs.BOM_UTF16_LE + HEADER.decode().encode("utf-16-le"), Err(1, 1, "UTF-16")),
    ("UTF-16 without BOM", "c.csv", HEADER.decode().encode("utf-16-le"), Err(1, 1, "UTF-16")),
    ("Latin-1 text", "c.csv", HEADER + "josé@example.com,,\n".encode("latin-1"), Err(2, 4, "not UTF-8")),
    ("truncated UTF-8 at the end", "c.csv", HEADER + "a@é".encode()[:-1], Err(2, 3, "middle of a character")),
    (
        "unterminated quote",
        "c.csv",
        HEADER + b"a@example.com,false,\n" + b'b@example.com,false,"{""x"": 1}\n' + b"c@example.com,false,\n",
        Err(3, 0, "unterminated quote"),
    ),
    (
        "stray quote in an unquoted field",
        "c.csv",
        HEADER + b'a"b@example.com,,\n',
        Ok(0, ((2, "emailAddress", "a character addresses cannot contain"),)),
    ),
    (
        "mixed line endings",
        "c.csv",
        HEADER.rstrip() + b"\r\na@example.com,,\nb@example.com,,\rc@example.com,,\r\n",
        Ok(3),
    ),
    ("BOM and CRLF", "c.csv", codecs.BOM_UTF8 + HEADER.replace(b"\n", b"\r\n") + b"a@example.com,TRUE,\r\n", Ok(1)),
    ("semicolon delimiter", "c.csv", b"emailAddress;unsubscribeAll\na@example.com;yes\nb@example.com;0\n", Ok(2)),
    ("tab delimiter", "c.tsv", b"emailAddress\tunsubscribeAll\na@example.com\tno\n", Ok(1)),
    ("bad boolean", "c.csv", HEADER + b"a@example.com,maybe,\n", Ok(0, ((2, "unsubscribeAll", "not 'maybe'"),))),
    (
        "attributes not JSON",
        "c.csv",
        HEADER + b"a@example.com,false,{Name: Ann}\n",
        Ok(0, ((2, "attributesData", "not valid JSON"),)),
    ),
    (
        "attributes an array",
        "c.csv",
        HEADER + b'a@example.com,false,"[1,2]"\n',
        Ok(0, ((2, "attributesData", "must be a JSON object, not an array"),)),
    ),
    (
        "deeply nested attributes (past the parser's depth limit)",
        "c.csv",
        HEADER + b"a@example.com,false," + _csv_attr(_deep(2000)) + b"\n",
        Ok(0, ((2, "attributesData", f"nested more than {MAX_ATTRIBUTES_DEPTH} levels deep"),)),
    ),
    (
        "nested attributes one level past the limit",
        "c.csv",
        HEADER + b"a@example.com,false," + _csv_attr(_deep(MAX_ATTRIBUTES_DEPTH + 1)) + b"\n",
        Ok(0, ((2, "attributesData", f"nested more than {MAX_ATTRIBUTES_DEPTH} levels deep"),)),
    ),
    (
        "nested attributes at the limit",
        "c.csv",
        HEADER + b"a@example.com,false," + _csv_attr(_deep(MAX_ATTRIBUTES_DEPTH)) + b"\n",
        Ok(1),
    ),
    (
        "10 MB attribute value",
        "c.csv",
        HEADER + b"a@example.com,false," + _csv_attr('{"big": "' + "x" * 10_000_000 + '"}') + b"\nb@example.com,,\n",
        Ok(1, ((2, "attributesData", "larger than 65,536 bytes"),)),
    ),
    (
        "huge field past the size limit",
        "c.csv",
        HEADER + b'a@example.com,false,"' + b"x" * (33 * 1024 * 1024) + b'"\n',
        Err(2, 0, "field larger than field limit"),
    ),
    (
        "1 MB address",
        "c.csv",
        HEADER + b"a" * 1_000_000 + b"@example.com,,\n",
        Ok(0, ((2, "emailAddress", "longer than 254"),)),
    ),
    (
        "too many fields",
        "c.csv",
        HEADER + b"a@example.com,false,,extra\n",
        Ok(0, ((2, "", "the row has 4 fields but the header has 3"),)),
    ),
    ("too few fields (trailing cells dropped)", "c.csv", HEADER + b"a@example.com\n", Ok(1)),
    ("invalid address", "c.csv", HEADER + b"not-an-address,,\n", Ok(0, ((2, "emailAddress", "there is no @"),))),
    (
        "unknown topic",
        "c.csv",
        b"emailAddress,topicPreferences.Golf\na@example.com,OPT_IN\nb@example.com,\n",
        Ok(1, ((2, "topicPreferences.Golf", "no topic 'Golf'"),)),
    ),
    (
        "unknown status",
        "c.csv",
        b"emailAddress,topicPreferences.Sports\na@example.com,MAYBE\n",
        Ok(0, ((2, "topicPreferences.Sports", "OPT_IN or OPT_OUT, not 'MAYBE'"),)),
    ),
    ("JSON top-level number", "c.json", b"42\n", Err(1, 1, "the file is a JSON number")),
    ("JSON top-level string", "c.json", b'  "hello"', Err(1, 1, "the file is a JSON string")),
    ("JSON top-level null", "c.json", b"null", Err(1, 1, "the file is a JSON null")),
    ("not JSON at all", "c.json", b"emailAddress\na@example.com\n", Err(1, 1, "the file is not JSON")),
    (
        "JSON array with a scalar item",
        "c.json",
        b'[{"emailAddress": "a@example.com"}, 7]',
        Ok(1, ((2, "", "expected a JSON object, found a number"),)),
    ),
    (
        "JSON array cut short",
        "c.json",
        b'[{"emailAddress": "a@example.com"},\n{"emailAd',
        Err(2, 9, "not valid JSON near here"),
    ),
    (
        "JSON objects, the second broken",
        "c.json",
        b'{\n "emailAddress": "a@example.com"\n}\n{\n "emailAddress": "b@example.com" "x": 1\n}\n',
        Err(5, 34, "not valid JSON"),
    ),
    (
        "JSON object never closed",
        "c.json",
        b'{\n "emailAddress": "a@example.com"\n}\n{\n "emailAddress": "b',
        Err(4, 1, "not closed"),
    ),
    (
        "JSON Lines with a broken line",
        "c.jsonl",
        b'{"emailAddress": "a@example.com"}\n{"emailAddress": "b@example.com"\n{"emailAddress": "c@example.com"}\n',
        Ok(2, ((2, "", "not valid JSON"),)),
    ),
    (
        "JSON Lines with a trailing comma",
        "c.jsonl",
        b'{"emailAddress": "a@example.com", "unsubscribeAll": true,}\n',
        Ok(1, (), ("line 1: trailing comma before '}' ignored",)),
    ),
    (
        "JSON unknown field",
        "c.jsonl",
        b'{"emailAddress": "a@example.com", "name": "Ann"}\n',
        Ok(0, ((1, "name", "unknown field 'name'"),)),
    ),
    ("JSON without emailAddress", "c.jsonl", b'{"unsubscribeAll": true}\n', Ok(0, ((1, "emailAddress", "missing"),))),
    (
        "JSON emailAddress a number",
        "c.jsonl",
        b'{"emailAddress": 12}\n',
        Ok(0, ((1, "emailAddress", "must be a string, not a number"),)),
    ),
    (
        "JSON attributesData a list",
        "c.jsonl",
        b'{"emailAddress": "a@example.com", "attributesData": [1]}\n',
        Ok(0, ((1, "attributesData", "must be a JSON object, not an array"),)),
    ),
    (
        "JSON unsubscribeAll a number",
        "c.jsonl",
        b'{"emailAddress": "a@example.com", "unsubscribeAll": 7}\n',
        Ok(0, ((1, "unsubscribeAll", "not 7"),)),
    ),
    ("JSON parsed as CSV by --format", "c.txt", b'{"emailAddress": "a@example.com"}\n', Err(1, 0, "no emailAddress")),
]


@pytest.mark.parametrize(("name", "file_name", "data", "expected"), CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_corpus(tmp_path: Path, name: str, file_name: str, data: bytes, expected: Err | Ok) -> None:
    path = tmp_path / file_name
    path.write_bytes(data)
    if isinstance(expected, Err):
        with pytest.raises(FileError) as caught:
            read_file(path)
        error = caught.value
        assert expected.text in error.message, error.message
        assert (error.line, error.column) == (expected.line, expected.column), str(error)
        assert error.file == file_name
        assert str(error).startswith(f"{file_name}:{expected.line}")
        return
    read = read_file(path)
    assert len(read.patches) == expected.patches, read
    assert len(read.rejects) == len(expected.rejects), read.rejects
    for reject, (line, column, text) in zip(read.rejects, expected.rejects, strict=True):
        assert (reject.line, reject.column) == (line, column), reject
        assert text in reject.reason, reject
    assert tuple(read.warnings) == expected.warnings


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 30


def test_rejects_name_the_address(tmp_path: Path) -> None:
    read = read_bytes(tmp_path, HEADER + b"a@example.com,maybe,\n")
    assert read.rejects == [
        Reject(2, "a@example.com", "unsubscribeAll", "unsubscribeAll must be true or false, not 'maybe'")
    ]


# -- reading rules ---------------------------------------------------------------------------------------


def test_headers_match_case_insensitively_and_values_are_normalised(tmp_path: Path) -> None:
    data = b"EMAILADDRESS ; UnsubscribeALL;ATTRIBUTESDATA;topicpreferences.Sports\n a@example.com ;Yes;;opt_out\n"
    read = read_bytes(tmp_path, data)
    assert read.patches == [ContactPatch("a@example.com", True, None, {"Sports": OPT_OUT})]


def test_empty_unsubscribe_means_false_and_a_missing_column_means_unchanged(tmp_path: Path) -> None:
    read = read_bytes(tmp_path, b"emailAddress,unsubscribeAll\na@example.com,\n")
    assert read.patches[0].unsubscribe_all is False
    read = read_bytes(tmp_path, b"emailAddress\na@example.com\n")
    assert read.patches[0].unsubscribe_all is MISSING and read.patches[0].attributes is MISSING


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("FALSE", False), ("1", True), ("0", False), ("Yes", True), ("no", False), (" True ", True)],
)
def test_boolean_forms(tmp_path: Path, text: str, value: bool) -> None:
    read = read_bytes(tmp_path, f"emailAddress,unsubscribeAll\na@example.com,{text}\n".encode())
    assert read.patches[0].unsubscribe_all is value


def test_extra_columns_become_string_attributes_when_asked(tmp_path: Path) -> None:
    data = b'emailAddress,attributesData,Name,City\na@example.com,"{""Plan"": ""pro""}",Ann,\n'
    read = read_bytes(tmp_path, data, extra_columns_as_attributes=True)
    assert read.patches[0].attributes == {"Name": "Ann", "Plan": "pro"}


def test_delete_reads_addresses_and_ignores_other_columns(tmp_path: Path) -> None:
    read = read_bytes(tmp_path, b"emailAddress,Whatever\na@example.com,x\nbad,y\n", action="delete")
    assert read.patches == ["a@example.com"]  # type: ignore[comparison-overlap]
    assert [r.line for r in read.rejects] == [3]


def test_merge_attributes_reads_an_empty_value_as_no_change(tmp_path: Path) -> None:
    read = read_bytes(tmp_path, HEADER + b"a@example.com,false,\n", merge_attributes=True)
    assert read.patches[0].attributes is MISSING


def test_json_forms_all_read_the_same(tmp_path: Path) -> None:
    lines = (
        b'{"emailAddress":"a@example.com","attributesData":"{\\"N\\":1}",'
        b'"topicPreferences":[{"topicName":"Sports","subscriptionStatus":"OPT_IN"}]}\n'
    )
    array = b'[{"EmailAddress":"a@example.com","attributesData":{"N":1},"topicPreferences":{"Sports":"OPT_IN"}}]'
    pretty = (
        b'{\n  "emailAddress": "a@example.com",\n  "attributesData": {"N": 1},\n'
        b'  "topicPreferences": {"Sports": "opt_in"}\n}\n'
    )
    expected = [ContactPatch("a@example.com", MISSING, {"N": 1}, {"Sports": OPT_IN})]
    for data in (lines, array, pretty):
        assert read_bytes(tmp_path, data, name="c.json").patches == expected


def test_format_from_content_when_the_extension_says_nothing(tmp_path: Path) -> None:
    assert read_bytes(tmp_path, b'{"emailAddress":"a@example.com"}\n', name="upload").format == "json"
    assert read_bytes(tmp_path, b"emailAddress\na@example.com\n", name="upload").format == "csv"
    assert read_bytes(tmp_path, b"emailAddress\na@example.com\n", name="x.json", fmt="csv").format == "csv"


def test_resume_skips_records(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(HEADER + b"".join(f"u{i}@example.com,,\n".encode() for i in range(10)))
    reader = open_reader(path, options=ReadOptions())
    assert [r.email for _, r in reader.records(skip=7)] == ["u7@example.com", "u8@example.com", "u9@example.com"]  # type: ignore[union-attr]


# -- properties ------------------------------------------------------------------------------------------

_json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
_attributes = st.dictionaries(
    st.text(max_size=10),
    st.recursive(
        _json_scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=6,
    ),
    max_size=4,
)
_local = st.text(alphabet=string.ascii_letters + string.digits + "+_-='", min_size=1, max_size=20)
_domain = st.sampled_from(["example.com", "EXAMPLE.org", "bücher.example", "例え.jp", "mail.example.co.uk"])
_emails = st.builds(lambda local, domain: f"{local}@{domain}", _local, _domain).filter(
    lambda e: email_problem(e) is None
)
_contacts = st.builds(
    lambda email, unsub, attrs, prefs: (email, unsub, attrs, prefs),
    _emails,
    st.booleans(),
    st.none() | _attributes,
    st.dictionaries(st.sampled_from(sorted(TOPICS)), st.sampled_from([OPT_IN, OPT_OUT]), max_size=2),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    contacts=st.lists(_contacts, min_size=1, max_size=8),
    fmt=st.sampled_from(["csv", "json"]),
    lead=st.sampled_from(["", "\t", "\r", " \n"]),  # AttributesData written through the SES API may start so
)
def test_any_contact_round_trips_through_write_then_read(
    tmp_path: Path,
    contacts: list[tuple],  # type: ignore[type-arg]
    fmt: str,
    lead: str,
) -> None:
    """Addresses may start with a character a spreadsheet runs (``-2+3@example.com``) or a quote."""
    out = io.BytesIO()
    writer = CsvWriter(out, sorted(TOPICS)) if fmt == "csv" else JsonLinesWriter(out)
    for email, unsub, attrs, prefs in contacts:
        writer.write_row(email, unsub, None if attrs is None else lead + orjson.dumps(attrs).decode(), prefs)
    writer.close()
    path = tmp_path / f"round.{fmt}"
    path.write_bytes(out.getvalue())
    read = read_file(path)
    assert read.rejects == []
    # JSON Lines leaves attributesData out when there is none: that reads as "not given" (None for a new contact)
    assert [
        (p.email, p.unsubscribe_all, None if p.attributes is MISSING else p.attributes, dict(p.topic_preferences))
        for p in read.patches
    ] == [(email, unsub, attrs, prefs) for email, unsub, attrs, prefs in contacts]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), name=st.sampled_from(["g.csv", "g.json", "g.jsonl", "g"]))
def test_random_bytes_never_raise_anything_but_file_error(tmp_path: Path, data: bytes, name: str) -> None:
    try:
        read_bytes(tmp_path, data, name=name)
    except FileError as exc:
        assert exc.message and exc.line >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet='{}[]",:\n \\ae@.tu1', max_size=120), name=st.sampled_from(["t.csv", "t.json", "t.jsonl"]))
def test_structured_garbage_never_raises_anything_but_file_error(tmp_path: Path, text: str, name: str) -> None:
    try:
        read_bytes(tmp_path, text.encode(), name=name)
    except FileError as exc:
        assert exc.message


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40) | st.builds(lambda a, b: f"{a}@{b}", st.text(max_size=15), st.text(max_size=15)))
def test_fast_address_check_never_accepts_what_the_full_rules_reject(address: str) -> None:
    if check_address(address) is None:
        assert email_problem(address) is None


def test_make_patch_is_a_contact_patch() -> None:
    made = make_patch("a@example.com", MISSING, {"k": 1}, {"Sports": OPT_IN})
    assert made == ContactPatch("a@example.com", MISSING, {"k": 1}, {"Sports": OPT_IN})
    assert type(made) is ContactPatch and hash(made.email) == hash("a@example.com")
    with pytest.raises(AttributeError):
        made.email = "b@example.com"  # type: ignore[misc]  # still frozen


def test_json_lines_with_a_line_that_is_not_an_object(tmp_path: Path) -> None:
    read = read_bytes(tmp_path, b'{"emailAddress": "a@example.com"}\n[1, 2]\n"x"\n', name="c.jsonl")
    assert len(read.patches) == 1
    assert [(r.line, r.reason) for r in read.rejects] == [
        (2, "expected a JSON object, found an array"),
        (3, "expected a JSON object, found a string"),
    ]


# -- deep nesting ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["array", "lines", "stream"])
def test_a_very_deep_record_is_one_reject_in_flat_memory(tmp_path: Path, shape: str) -> None:
    """A 20,000-deep record (a 40 KB file) is read to its end without building it: ``ijson.items`` kept a path
    string per level, so memory grew with the square of the depth (1 GB here; 100,000 levels killed the
    process), and orjson stops at 1,024 levels."""
    deep = "[" * 20_000 + "]" * 20_000
    records = ['{"emailAddress": "deep@example.com", "attributesData": ' + deep + "}", '{"emailAddress": "b@x.com"}']
    text = {
        "array": "[" + ",\n".join(records) + "]",
        "lines": "\n".join(records),
        "stream": "\n".join("{\n" + r[1:] for r in records),
    }[shape]
    tracemalloc.start()
    try:
        read = read_bytes(tmp_path, text.encode(), name="in.json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024
    assert [p.email for p in read.patches] == ["b@x.com"]  # type: ignore[union-attr]
    assert read.rejects == [Reject(1, "deep@example.com", "attributesData", read.rejects[0].reason)]
    assert read.rejects[0].reason == "attributesData must be a JSON object, not an array"


def test_values_are_built_to_a_bounded_depth_and_stay_past_the_limit() -> None:
    """What _json_values cuts short is still past the limit, so it is rejected for the same reason."""
    import ijson

    for depth in (MAX_ATTRIBUTES_DEPTH, MAX_ATTRIBUTES_DEPTH + 1, MAX_ATTRIBUTES_DEPTH + 2, 5000):
        text = '[{"attributesData": ' + _deep(depth) + "}]"
        (record,) = _json_values(ijson.basic_parse(io.BytesIO(text.encode())), item_depth=1)
        assert value_nesting_exceeds(record["attributesData"]) is (depth > MAX_ATTRIBUTES_DEPTH)  # type: ignore[index]
        if depth <= MAX_ATTRIBUTES_DEPTH + 1:
            assert record == orjson.loads(text)[0]


# -- cells a spreadsheet would run -----------------------------------------------------------------------

TRIGGERS = "=+-@\t\r"
_cells = st.text(st.sampled_from([*TRIGGERS, "'", "a", "1", " ", '"', ","]), max_size=8) | st.text(max_size=8)


@given(_cells)
def test_cell_escaping_is_reversible_and_never_starts_with_a_trigger(value: str) -> None:
    encoded = encode_cell(value)
    assert decode_cell(encoded) == value
    assert encoded[:1] not in set(TRIGGERS)
    # only what needs it changes: a trigger first, or quotes before one (so that those stay reversible)
    assert (encoded != value) is (value.lstrip("'")[:1] in set(TRIGGERS) and value.lstrip("'") != "")


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x.example","y")', '\'=HYPERLINK("http://x.example","y")'),
        ("-2+3@example.com", "'-2+3@example.com"),
        ("+1@example.com", "'+1@example.com"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=x", "''=x"),
        ("''-x", "'''-x"),
        ("'x", "'x"),
        ("'", "'"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_cell_escaping_examples(value: str, written: str) -> None:
    assert encode_cell(value) == written and decode_cell(written) == value


def test_csv_writer_neutralises_cells_and_the_reader_undoes_it(tmp_path: Path) -> None:
    out = io.BytesIO()
    writer = CsvWriter(out, ["Sports"])
    writer.write_row("-2+3@example.com", False, '\t{"a": "=1+1"}', {"Sports": OPT_IN})
    writer.write_row("'-x@example.com", True, None, {})
    writer.close()
    text = out.getvalue().decode()
    assert text.splitlines()[1:] == [
        '\'-2+3@example.com,false,"\'\t{""a"": ""=1+1""}",OPT_IN',
        "''-x@example.com,true,,",
    ]
    read = read_bytes(tmp_path, out.getvalue(), name="x.csv")
    assert read.rejects == []
    assert read.patches == [
        ContactPatch("-2+3@example.com", False, {"a": "=1+1"}, {"Sports": OPT_IN}),
        ContactPatch("'-x@example.com", True, None, {}),
    ]


def test_extra_columns_are_decoded_too(tmp_path: Path) -> None:
    read = read_bytes(
        tmp_path, b"emailAddress,Note\n'=a@example.com,'-5\n", name="x.csv", extra_columns_as_attributes=True
    )
    assert read.patches == [ContactPatch("=a@example.com", MISSING, {"Note": "-5"}, {})]


# -- the block reader (the importer's) against the record reader ----------------------------------------

_cells = st.sampled_from(
    [
        "a@example.com",
        "A@Example.COM",
        "x@bücher.example",
        " b@example.com ",
        "'=c@example.com",
        "not an address",
        "",
        "true",
        "FALSE",
        "maybe",
        '{"n": 1}',
        '{"n":12345678901234567890123}',
        '{"s": "12345678901234567890123"}',
        "[1]",
        "'{}",
        "{}",
        " ",
        '{"a": {"b": [1, 2.5]}}',
        '"x\ny"',
        '{"multi\nline": 1}',
        '{"crlf\r\nline": 1}',
        "lone\rreturn",
        "[" * 40 + "]" * 40,
    ]
)
_csv_rows = st.lists(st.lists(_cells, min_size=0, max_size=4), max_size=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=_csv_rows,
    size=st.integers(1, 5),
    skip=st.integers(0, 4),
    action=st.sampled_from(["add", "delete"]),
    merge=st.booleans(),
    ending=st.sampled_from(["\n", "\r\n"]),
)
def test_blocks_read_what_records_read_at_any_block_size_and_resume_point(
    tmp_path: Path, rows: list[list[str]], size: int, skip: int, action: str, merge: bool, ending: str
) -> None:
    """Quoted cells spanning lines, blank lines, short and long rows, values every fast check refuses: the
    block reader (columns at C speed, the per-row reader for the rest) gives the same records, rejects and
    lines as the record reader, from any resume point, whatever the block size."""
    import csv as csv_module

    out = io.StringIO()
    writer = csv_module.writer(out, lineterminator=ending)
    writer.writerow(["emailAddress", "unsubscribeAll", "attributesData"])
    for row in rows:
        writer.writerow(row) if row else out.write(ending)
    path = tmp_path / "mixed.csv"
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    options = ReadOptions(topics=TOPICS, action=action, merge_attributes=merge)
    reader = open_reader(path, options=options)
    try:
        validate_structure(reader)
        expected = Rows(delete=action == "delete")
        for _line, record in reader.records(skip=skip):
            expected.add(record)
    except FileError as exc:
        with pytest.raises(FileError) as caught:
            read_blocks(path, name=path.name, fmt=None, options=options, size=size, skip=skip)
        assert (caught.value.message, caught.value.line) == (exc.message, exc.line)
        return
    found, _ = read_blocks(path, name=path.name, fmt=None, options=options, size=size, skip=skip)
    assert found == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.sampled_from(
            [
                '{"emailAddress": "a@example.com", "unsubscribeAll": true, "attributesData": "{\\"n\\": 1}"}',
                '{"emailAddress": " B@example.com", "attributesData": {"n": 2}}',
                '{"emailAddress": "c@bücher.example", "unsubscribeAll": null, "attributesData": null}',
                '{"emailAddress": "d@example.com", "unsubscribeAll": 1}',
                '{"emailAddress": "e@example.com", "unsubscribeAll": 1.0}',
                '{"emailAddress": "f@example.com", "attributesData": "{\\"n\\": 12345678901234567890123}"}',
                '{"emailAddress": "g@example.com", "attributesData": ""}',
                '{"emailAddress": "h@example.com", "topicPreferences": {"Sports": "OPT_IN"}}',
                '{"emailaddress": "i@example.com"}',
                '{"emailAddress": "j@example.com",}',
                '{"emailAddress": 5}',
                "[1, 2]",
                "not json",
                "",
                "   ",
            ]
        ),
        max_size=12,
    ),
    size=st.integers(1, 5),
    skip=st.integers(0, 4),
    merge=st.booleans(),
)
def test_json_lines_blocks_read_what_records_read(
    tmp_path: Path, lines: list[str], size: int, skip: int, merge: bool
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(['{"emailAddress": "first@example.com"}', *lines]) + "\n", encoding="utf-8")
    options = ReadOptions(topics=TOPICS, merge_attributes=merge)
    reader = open_reader(path, options=options)
    expected = Rows()
    for _line, record in reader.records(skip=skip):
        expected.add(record)
    found, warnings = read_blocks(path, name=path.name, fmt=None, options=options, size=size, skip=skip)
    assert found == expected
    assert warnings == reader.warnings
