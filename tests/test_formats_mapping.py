"""Column mapping (bulk/formats/mapping.py and the CSV reader's header plan): header spellings recognised, map
specs parsed, and mapped files read through the same per-row rules, with rejects naming the file's column."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sescontacts.bulk.formats import ReadOptions
from sescontacts.bulk.formats.mapping import (
    ColumnField,
    MappingError,
    header_key,
    is_page_header,
    parse_field,
    parse_map_option,
    recognise_header,
    suggest_mapping,
    topic_status,
)
from sescontacts.bulk.report import FileError, Reject
from tests.test_formats import FIXTURES, read_file

MAILCHIMP = FIXTURES / "mailchimp-export.csv"
MAILCHIMP_MAP = {
    "Email Address": "email",
    "First Name": "attribute:FirstName",
    "Last Name": "attribute:LastName:string",
    "Address": "attribute:Address",
    "Phone Number": "skip",
    "MEMBER_RATING": "attribute:Rating:number",
    "OPTIN_TIME": "skip",
    "Newsletter": "topic:Sports",
    "TAGS": "attribute:Tags",
}


@pytest.mark.parametrize(
    "spelling",
    ["email", "Email", "EMAIL", "Email Address", "E-mail", "e-mail address", "mail", "email_address", " Email "],
)
def test_common_spellings_of_the_address_are_recognised(spelling: str) -> None:
    assert recognise_header([spelling, "Name"]) == [ColumnField("email"), None]


@pytest.mark.parametrize("spelling", ["unsubscribeAll", "Unsubscribed", "unsubscribe", "Opt-out", "opted out"])
def test_common_spellings_of_unsubscribe_all_are_recognised(spelling: str) -> None:
    assert recognise_header(["email", spelling]) == [ColumnField("email"), ColumnField("unsubscribeAll")]


def test_a_spelling_gives_way_to_the_page_s_own_name() -> None:
    """A file that has emailAddress keeps it as the address: its `Email` column is not a second one."""
    assert recognise_header(["emailAddress", "Email", "unsubscribeAll", "Unsubscribed"]) == [
        ColumnField("email"),
        None,
        ColumnField("unsubscribeAll"),
        None,
    ]


def test_the_page_s_header_needs_no_mapping_and_others_do() -> None:
    assert is_page_header(["emailAddress", "unsubscribeAll", "attributesData", "topicPreferences.Sports"])
    assert is_page_header(["EmailAddress"])
    assert not is_page_header(["Email Address", "First Name"])
    assert not is_page_header(["emailAddress", "Name"])
    assert not is_page_header(["unsubscribeAll"])


def test_suggestions_name_an_attribute_after_every_other_column() -> None:
    header = ["Email Address", "First Name", "topicPreferences.Sports", "attributesData", ""]
    assert [f.spec for f in suggest_mapping(header)] == [
        "email",
        "attribute:First Name:string",
        "topic:Sports",
        "attributesData",
        "skip",
    ]


def test_the_header_key_is_the_set_of_names() -> None:
    assert header_key(["Email", "Name"]) == header_key(["name ", "EMAIL"])
    assert header_key(["Email", "Name"]) != header_key(["Email", "Names"])


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("email", ColumnField("email")),
        ("UnsubscribeAll", ColumnField("unsubscribeAll")),
        ("attributesData", ColumnField("attributesData")),
        ("skip", ColumnField("skip")),
        ("topic:Sports", ColumnField("topic", "Sports")),
        ("attribute:First Name", ColumnField("attribute", "First Name", "string")),
        ("attribute:Age:number", ColumnField("attribute", "Age", "number")),
        ("attribute:VIP:Boolean", ColumnField("attribute", "VIP", "boolean")),
        ("attribute:a:b", ColumnField("attribute", "a:b", "string")),
    ],
)
def test_field_specs(text: str, field: ColumnField) -> None:
    assert parse_field(text, "C") == field
    assert parse_field(field.spec, "C") == field


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("First Name=attribut:x", "column 'First Name': 'attribut:x' is not a field; use email, unsubscribeAll"),
        ("Age=attribute:", "column 'Age': attribute:NAME needs a name, as in attribute:Age"),
        ("News=topic", "column 'News': topic:NAME needs a name"),
        ("Mail=email:x", "column 'Mail': email takes no name"),
        ("First Name", "'First Name' is not COLUMN=FIELD"),
        ("=email", "'=email' is not COLUMN=FIELD"),
    ],
)
def test_a_bad_map_spec_says_which_column(text: str, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_map_option(text)
    assert caught.value.message.startswith(message)


def test_map_option_splits_at_the_last_equals_sign() -> None:
    assert parse_map_option("a=b=attribute:ab") == ("a=b", ColumnField("attribute", "ab"))


@pytest.mark.parametrize(
    ("value", "status"),
    [("OPT_IN", "OPT_IN"), ("opt-out", "OPT_OUT"), ("Opt in", "OPT_IN"), ("yes", "OPT_IN"), ("0", "OPT_OUT")],
)
def test_topic_values(value: str, status: str) -> None:
    assert topic_status(value) == status
    assert topic_status("maybe") is None


def test_a_mailchimp_export_reads_through_a_mapping() -> None:
    """Several columns, quoted cells with commas, a non-ASCII name, yes/no topic values, a typed number, a bad
    address rejected with the file's column name; read one by one and a block at a time alike."""
    read = read_file(MAILCHIMP, mapping=MAILCHIMP_MAP)
    assert [(p.email, p.attributes, dict(p.topic_preferences)) for p in read.patches] == [  # type: ignore[union-attr]
        (
            "ann.lee@example.com",
            {
                "FirstName": "Ann",
                "LastName": "Lee",
                "Address": "12 High St, Leeds, LS1 1AA",
                "Rating": 4,
                "Tags": "vip,early",
            },
            {"Sports": "OPT_IN"},
        ),
        ("bob.stone@example.org", {"FirstName": "Bob", "LastName": "Stone, Jr.", "Rating": 2}, {"Sports": "OPT_OUT"}),
        (
            "carla.diaz@example.net",
            {"FirstName": "Carla", "LastName": "Díaz", "Address": "5 Rue de Rivoli, Paris", "Rating": 5, "Tags": "vip"},
            {"Sports": "OPT_IN"},
        ),
    ]
    assert read.rejects == [Reject(5, "not-an-address", "Email Address", "there is no @")]


def test_recognised_spellings_need_no_mapping(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("E-mail,Unsubscribed\nann@example.com,yes\nbob@example.com,\n")
    read = read_file(path)
    assert [(p.email, p.unsubscribe_all) for p in read.patches] == [  # type: ignore[union-attr]
        ("ann@example.com", True),
        ("bob@example.com", False),
    ]


def test_email_name_file_with_extra_columns_as_attributes(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("email,name\nann@example.com,Ann\n")
    with pytest.raises(FileError, match="unknown column 'name'"):
        read_file(path)
    read = read_file(path, extra_columns_as_attributes=True)
    assert [(p.email, p.attributes) for p in read.patches] == [("ann@example.com", {"name": "Ann"})]  # type: ignore[union-attr]


def test_typed_attributes_reject_values_of_another_type(tmp_path: Path) -> None:
    path = tmp_path / "typed.csv"
    path.write_text("mail,Age,VIP,Note\na@example.com,41,yes,x\nb@example.com,forty,no,\nc@example.com,,maybe,\n")
    mapping = {"Age": "attribute:Age:number", "VIP": "attribute:VIP:boolean", "Note": "attribute:Note"}
    read = read_file(path, mapping=mapping)
    assert [(p.email, p.attributes) for p in read.patches] == [  # type: ignore[union-attr]
        ("a@example.com", {"Age": 41, "VIP": True, "Note": "x"})
    ]
    assert read.rejects == [
        Reject(3, "b@example.com", "Age", "Age must be a number, not 'forty'"),
        Reject(4, "c@example.com", "VIP", "VIP must be true or false, not 'maybe'"),
    ]


def test_the_page_s_file_reads_the_same_with_or_without_a_mapping() -> None:
    plain = read_file(FIXTURES / "page-example.csv")
    mapped = read_file(
        FIXTURES / "page-example.csv",
        mapping={"emailAddress": "email", "unsubscribeAll": "unsubscribeAll", "attributesData": "attributesData"},
    )
    assert plain.patches == mapped.patches and plain.rejects == mapped.rejects == []


@pytest.mark.parametrize(
    ("mapping", "error"),
    [
        ({"Nope": "skip"}, (1, 0, "the mapping names a column the file does not have: 'Nope'")),
        ({"Email Address": "skip"}, (1, 0, "no emailAddress column (the header has Email Address, First Name")),
        ({"First Name": "email"}, (1, 2, "the columns 'Email Address' and 'First Name' are both the address")),
        (
            {"First Name": "attribute:X", "Last Name": "attribute:X"},
            (1, 3, "the columns 'First Name' and 'Last Name' are both attribute 'X'; map one of them to skip"),
        ),
        (
            {"Newsletter": "topic:Chess"},
            (
                1,
                8,
                "column 'Newsletter' is mapped to topic 'Chess', which the list does not have "
                "(its topics: Cycling, Sports)",
            ),
        ),
        ({"TAGS": "bogus"}, (1, 0, "column 'TAGS': 'bogus' is not a field")),
    ],
)
def test_a_mapping_that_cannot_work_is_a_file_level_error(mapping: dict[str, str], error: tuple[int, int, str]) -> None:
    full = {**{c: "skip" for c in MAILCHIMP_MAP if c != "Email Address"}, **mapping}
    with pytest.raises(FileError) as caught:
        read_file(MAILCHIMP, mapping=full)
    assert (caught.value.line, caught.value.column) == error[:2]
    assert caught.value.message.startswith(error[2]), caught.value.message


def test_a_mapping_on_a_json_file_is_refused() -> None:
    with pytest.raises(FileError, match="a column mapping applies to CSV files"):
        read_file(FIXTURES / "page-example.json", mapping={"email": "email"})


def test_a_delete_reads_the_mapped_address_only() -> None:
    read = read_file(MAILCHIMP, action="delete", mapping={"Newsletter": "topic:Chess", "Email Address": "email"})
    assert read.patches == ["ann.lee@example.com", "bob.stone@example.org", "carla.diaz@example.net"]


def test_read_options_carry_the_mapping_to_the_parser_process() -> None:
    """The child parser gets the options pickled: the mapping must survive it."""
    import pickle

    options = ReadOptions(mapping=dict(MAILCHIMP_MAP))
    assert pickle.loads(pickle.dumps(options)) == options


def test_a_column_without_a_name_is_skipped_under_a_mapping(tmp_path: Path) -> None:
    """A spreadsheet's trailing comma makes a nameless column, which no mapping can name; without a mapping it
    stays the error it was."""
    path = tmp_path / "sheet.csv"
    path.write_text("email,name,\nann@example.com,Ann,\n")
    read = read_file(path, mapping={"name": "attribute:Name"})
    assert [(p.email, p.attributes) for p in read.patches] == [("ann@example.com", {"Name": "Ann"})]  # type: ignore[union-attr]
    with pytest.raises(FileError, match=re.escape("unknown column '(empty name, column 3)'")):
        read_file(path, extra_columns_as_attributes=True)
