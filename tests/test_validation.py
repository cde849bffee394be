"""SES's rules and messages (shared/docs/ses-v2-contract.md §7), as every surface applies them."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sescontacts.errors import BadRequest
from sescontacts.model import OPT_IN, OPT_OUT, ContactList, Topic
from sescontacts.validation import (
    MAX_ATTRIBUTES_BYTES,
    attributes_problem,
    check_description,
    check_email,
    check_list_name,
    check_name,
    check_tags,
    check_topic_preferences,
    check_topics,
    email_key,
    email_problem,
    enum_message,
    enum_violation,
    has_long_digit_run,
    parse_attributes,
)

NAME_MESSAGE = (
    "{} can contain up to 64 characters. Only alphanumeric characters, underscores(_) and hyphens(-) are allowed."
)
ENUM_MESSAGE = (
    "1 validation error detected: Value at '{}' failed to satisfy constraint: "
    "Member must satisfy enum value set: [OPT_OUT, OPT_IN]"
)


# -- names -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "contacts", "My_List-2", "x" * 64, "0", "_-_"])
def test_valid_names(name: str) -> None:
    assert check_list_name(name) == name
    assert check_name("TopicName", name) == name


@pytest.mark.parametrize("name", ["x" * 65, "has space", "dot.ted", "slash/ed", "ünï", "a+b", "../etc", "tab\t"])
def test_invalid_names_have_ses_message(name: str) -> None:
    with pytest.raises(BadRequest) as exc:
        check_list_name(name)
    assert exc.value.message == NAME_MESSAGE.format("ContactListName")
    with pytest.raises(BadRequest) as exc:
        check_name("TopicName", name)
    assert exc.value.message == NAME_MESSAGE.format("TopicName")


@pytest.mark.parametrize("name", ["", None])
def test_blank_names(name: str | None) -> None:
    with pytest.raises(BadRequest) as exc:
        check_list_name(name)
    assert exc.value.message == "ContactListName can't be blank."
    with pytest.raises(BadRequest) as exc:
        check_name("TopicName", name)
    assert exc.value.message == "TopicName can't be blank."


def test_a_trailing_newline_is_not_a_valid_name() -> None:
    """``$`` in a regex would accept ``name\\n``; a full match must not."""
    with pytest.raises(BadRequest):
        check_list_name("contacts\n")


# -- topics, descriptions, tags ---------------------------------------------------------------------------


def _topics(n: int) -> list[Topic]:
    return [Topic(f"t{i}", f"Topic {i}") for i in range(n)]


def test_twenty_topics_allowed_twenty_one_refused() -> None:
    """A BadRequestException, as the probe of real SES saw (the model also lists LimitExceeded)."""
    check_topics(_topics(20))
    with pytest.raises(BadRequest) as exc:
        check_topics(_topics(21))
    assert (exc.value.code, exc.value.message) == (
        "BadRequestException",
        "Maximum of <20> topics allowed per ContactList",
    )


def test_duplicate_topics_refused() -> None:
    with pytest.raises(BadRequest) as exc:
        check_topics([Topic("a", "A"), Topic("b", "B"), Topic("a", "A again")])
    assert exc.value.message == "Duplicate topic names are not allowed within a List."


def test_topic_names_are_case_sensitive_so_not_duplicates() -> None:
    check_topics([Topic("news", "News"), Topic("News", "News")])


def test_display_name_length() -> None:
    check_topics([Topic("a", "x" * 128)])
    check_topics([Topic("a", "")])
    with pytest.raises(BadRequest) as exc:
        check_topics([Topic("a", "x" * 129)])
    assert exc.value.message == "Topic DisplayName can contain up to <128> characters."


def test_topic_description_length() -> None:
    check_topics([Topic("a", "A", description="d" * 500)])
    with pytest.raises(BadRequest) as exc:
        check_topics([Topic("a", "A", description="d" * 501)])
    assert exc.value.message == "Topic Description can contain up to <500> characters."


def test_list_description_length() -> None:
    check_description(None)
    check_description("d" * 500)
    with pytest.raises(BadRequest) as exc:
        check_description("d" * 501)
    assert exc.value.message == "List description can contain up to 500 characters."


def test_default_status_enum_with_ses_member_path() -> None:
    with pytest.raises(BadRequest) as exc:
        check_topics([Topic("a", "A", default_status=OPT_IN), Topic("b", "B", default_status="MAYBE")])
    assert exc.value.message == ENUM_MESSAGE.format("topics.2.member.defaultSubscriptionStatus")


def test_topic_name_checked_in_topics() -> None:
    with pytest.raises(BadRequest) as exc:
        check_topics([Topic("bad name", "A")])
    assert exc.value.message == NAME_MESSAGE.format("TopicName")


def test_topic_validation_order() -> None:
    """Enums (protocol) first, then the count, then each topic's fields, then duplicates."""
    bad_everything = [Topic("bad name", "x" * 200, default_status="MAYBE"), *_topics(21), Topic("t0", "again")]
    with pytest.raises(BadRequest, match="enum value set"):
        check_topics(bad_everything)
    with pytest.raises(BadRequest, match="Maximum of <20> topics"):
        check_topics([Topic("bad name", "x" * 200), *_topics(21)])
    with pytest.raises(BadRequest, match="TopicName can contain"):
        check_topics([Topic("t0", "A"), Topic("t0", "B"), Topic("bad name", "C")])


def test_tags() -> None:
    check_tags([(f"k{i}", "v" * 256) for i in range(50)])
    with pytest.raises(BadRequest, match="at most 50 tags"):
        check_tags([(f"k{i}", "v") for i in range(51)])
    with pytest.raises(BadRequest, match="Tag keys"):
        check_tags([("", "v")])
    with pytest.raises(BadRequest, match="Tag keys"):
        check_tags([("k" * 129, "v")])
    with pytest.raises(BadRequest, match="Tag values"):
        check_tags([("k", "v" * 257)])
    with pytest.raises(BadRequest, match="Duplicate tag keys are not allowed"):
        check_tags([("k", "a"), ("other", "b"), ("k", "b")])


# -- preferences -----------------------------------------------------------------------------------------

LIST = ContactList("news", topics=(Topic("weekly", "Weekly"), Topic("offers", "Offers")))


def test_unknown_topic_in_preferences() -> None:
    check_topic_preferences(LIST, {"weekly": OPT_IN, "offers": OPT_OUT})
    with pytest.raises(BadRequest) as exc:
        check_topic_preferences(LIST, {"weekly": OPT_IN, "sports": OPT_IN})
    assert (exc.value.status, exc.value.message) == (400, "List: news doesn't contain Topic: sports")


def test_preference_status_enum_before_topic_existence() -> None:
    with pytest.raises(BadRequest) as exc:
        check_topic_preferences(LIST, {"sports": OPT_IN, "weekly": "opt_in"})
    assert exc.value.message == ENUM_MESSAGE.format("topicPreferences.2.member.subscriptionStatus")


def test_enum_messages_never_quote_the_value() -> None:
    """SES names the member and the allowed values, never the value sent; enums other than SubscriptionStatus
    list their values in the model's order."""
    assert enum_message("filter.filteredStatus") == (
        "1 validation error detected: Value at 'filter.filteredStatus' failed to satisfy constraint: "
        "Member must satisfy enum value set: [OPT_OUT, OPT_IN]"
    )
    assert enum_violation("importDataSource.dataFormat", ("CSV", "JSON")) == (
        "Value at 'importDataSource.dataFormat' failed to satisfy constraint: Member must satisfy enum value set: "
        "[CSV, JSON]"
    )


# -- email addresses -------------------------------------------------------------------------------------

VALID_EMAILS = [
    "a@example.com",
    "a+b@example.com",
    "first.last+tag-1@sub.example.co.uk",
    "UPPER@EXAMPLE.COM",
    "o'brien@example.ie",
    "weird!#$%&'*/=?^_`{|}~-@example.com",
    "ünï+tag@exämple.com",
    "用户@例子.广告",
    "δοκιμή@παράδειγμα.δοκιμή",
    "a@xn--exmple-cua.com",
    "a@1.2.3.com",
    "a@ex-ample.com",
    "x" * 64 + "@example.com",
]


@pytest.mark.parametrize("email", VALID_EMAILS)
def test_valid_addresses(email: str) -> None:
    assert email_problem(email) is None
    assert check_email(email) == email


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("plainaddress", "there is no @"),
        ("@example.com", "nothing before the @"),
        ("a@", "nothing after the @"),
        ("a@@example.com", "more than one @"),
        ("a@b@example.com", "more than one @"),
        ("a b@example.com", "the address contains a space"),
        (" a@example.com", "the address contains a space"),
        ("a@example.com ", "the address contains a space"),
        ("a\u00a0b@example.com", "the address contains a space"),
        ("a\u200bb@example.com", "the address contains an invisible or control character"),
        ("a\x00@example.com", "the address contains an invisible or control character"),
        (".a@example.com", "dots before the @ must separate words"),
        ("a.@example.com", "dots before the @ must separate words"),
        ("a..b@example.com", "dots before the @ must separate words"),
        ('"quoted"@example.com', "the part before the @ has a character addresses cannot contain"),
        ("a(b)@example.com", "the part before the @ has a character addresses cannot contain"),
        ("a@localhost", "the domain has no dot"),
        ("a@example..com", "the domain part '' is not a valid domain label"),
        ("a@example.com.", "the domain part '' is not a valid domain label"),
        ("a@-example.com", "the domain part '-example' is not a valid domain label"),
        ("a@example-.com", "the domain part 'example-' is not a valid domain label"),
        ("a@exa_mple.com", "the domain part 'exa_mple' is not a valid domain label"),
        ("a@[127.0.0.1]", "the domain part '[127' is not a valid domain label"),
        ("a@example.123", "the top-level domain cannot be all digits"),
        ("a@" + "x" * 64 + ".com", "the domain part '" + "x" * 64 + "' is not a valid domain label"),
        ("x" * 65 + "@example.com", "the part before the @ is longer than 64 bytes"),
        ("é" * 33 + "@example.com", "the part before the @ is longer than 64 bytes"),
        ("a@" + "b" * 60 + "." + "c" * 60 + "." + "d" * 60 + "." + "e" * 60 + ".com", None),
        ("a@" + ("b" * 63 + ".") * 4 + "com", "the address is longer than 254 characters"),
        ("", "the address is empty"),
    ],
)
def test_invalid_addresses_say_why(email: str, reason: str | None) -> None:
    problem = email_problem(email)
    if reason is None:  # 254 characters exactly: still fine
        assert len(email) <= 254 and problem is None
        return
    assert problem == reason
    with pytest.raises(BadRequest) as exc:
        check_email(email)
    assert exc.value.message == (
        "EmailAddress can't be blank." if email == "" else f"EmailAddress <{email}> is invalid"
    )
    assert exc.value.field == "EmailAddress"


def test_blank_email() -> None:
    """Only white space is blank too (SES's check is Java's isBlank, probed through floci)."""
    for blank in ("", None, " ", "\t \n"):
        with pytest.raises(BadRequest) as exc:
            check_email(blank)
        assert exc.value.message == "EmailAddress can't be blank."


def test_email_identity_is_case_insensitive_across_scripts() -> None:
    assert email_key("Ann@Example.COM") == email_key("ann@example.com")
    assert email_key("ÜNÏ@EXÄMPLE.COM") == email_key("ünï@exämple.com")
    assert email_key("a+b@example.com") != email_key("a@example.com")  # plus-addresses are distinct people


# -- attributes ------------------------------------------------------------------------------------------


def test_attributes_must_be_a_json_object() -> None:
    assert attributes_problem('{"name": "Ann", "n": [1, {"x": null}]}') == (
        {"name": "Ann", "n": [1, {"x": None}]},
        None,
    )
    assert attributes_problem("[1]") == (None, "attributesData must be a JSON object, not an array")
    assert attributes_problem('"x"') == (None, "attributesData must be a JSON object, not a string")
    assert attributes_problem("3") == (None, "attributesData must be a JSON object, not a number")
    assert attributes_problem("true") == (None, "attributesData must be a JSON object, not a boolean")
    assert attributes_problem("null") == (None, "attributesData must be a JSON object, not null")
    value, problem = attributes_problem("{name: 1}")
    assert value is None and problem is not None and problem.startswith("attributesData is not valid JSON")


def test_attributes_size_cap() -> None:
    just_fits = '{"a": "' + "x" * (MAX_ATTRIBUTES_BYTES - 9) + '"}'
    assert len(just_fits.encode()) == MAX_ATTRIBUTES_BYTES
    assert attributes_problem(just_fits)[1] is None
    # Bytes, not characters: é is two bytes in UTF-8.
    too_big = '{"a": "' + "é" * (MAX_ATTRIBUTES_BYTES // 2) + '"}'
    assert attributes_problem(too_big) == (None, f"attributesData is larger than {MAX_ATTRIBUTES_BYTES:,} bytes")


def test_parse_attributes_blank_means_none_and_bad_raises() -> None:
    assert parse_attributes(None) is None
    assert parse_attributes("  ") is None
    assert parse_attributes('{"a": 1}') == {"a": 1}
    with pytest.raises(BadRequest) as exc:
        parse_attributes("[]")
    assert exc.value.field == "AttributesData"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text())
def test_checks_never_crash_and_identity_is_stable(text: str) -> None:
    """Whatever a file or a request contains, the checks answer (never raise) and a key is its own key."""
    problem = email_problem(text)
    if problem is None:
        assert "@" in text and len(text) <= 254 and check_email(text) == text
    assert email_key(email_key(text)) == email_key(text)
    value, reason = attributes_problem(text)
    assert (value is None) != (reason is None)


_DIGIT_RUNS = st.text(alphabet="0123456789", min_size=15, max_size=25)
_OTHER = st.text(alphabet=st.sampled_from('a"{}:,. \u0663\ud800'), max_size=4) | st.text(max_size=4)


@given(st.lists(_DIGIT_RUNS | _OTHER, max_size=6).map("".join))
def test_long_digit_runs_are_found_exactly_as_a_regex_finds_them(text: str) -> None:
    """The cheap pre-count must never hide a run of 19 ASCII digits (orjson reads only ASCII digits as a number)."""
    expected = re.search(r"[0-9]{19}", text) is not None
    assert has_long_digit_run(text) is expected
    assert has_long_digit_run(text.encode("utf-8", "surrogatepass")) is expected
