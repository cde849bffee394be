"""The pure rules in model.py: defaults, effective status, filters, and how an import row changes a contact."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sescontacts.model import (
    MAX_ATTRIBUTES_DEPTH,
    MISSING,
    OPT_IN,
    OPT_OUT,
    AttributeCondition,
    Contact,
    ContactList,
    ContactPatch,
    ContactQuery,
    ListStats,
    Missing,
    Outcome,
    RowResult,
    Topic,
    TopicFilter,
    UpsertPolicy,
    apply_patch,
    attribute_text,
    attributes_match,
    attributes_object,
    nesting_exceeds,
    same_attributes,
    value_nesting_exceeds,
)

NEWS = Topic("news", "News", default_status=OPT_IN)
OFFERS = Topic("offers", "Offers", default_status=OPT_OUT)
LIST = ContactList("contacts", topics=(NEWS, OFFERS))


def test_default_preferences_cover_topics_without_a_choice() -> None:
    assert Contact("a@x.com").default_preferences(LIST) == {"news": OPT_IN, "offers": OPT_OUT}
    assert Contact("a@x.com", topic_preferences={"news": OPT_OUT}).default_preferences(LIST) == {"offers": OPT_OUT}
    both = Contact("a@x.com", topic_preferences={"news": OPT_OUT, "offers": OPT_IN})
    assert both.default_preferences(LIST) == {}


def test_effective_status_unsubscribe_all_wins_then_choice_then_default() -> None:
    chose_in = Contact("a@x.com", topic_preferences={"offers": OPT_IN})
    assert chose_in.effective_status(OFFERS) == OPT_IN
    assert chose_in.effective_status(NEWS) == OPT_IN  # the default
    assert chose_in.effective_status(NEWS, use_default=False) is None
    gone = Contact("a@x.com", unsubscribe_all=True, topic_preferences={"offers": OPT_IN})
    assert gone.effective_status(OFFERS) == OPT_OUT
    assert gone.effective_status(NEWS, use_default=False) == OPT_OUT


def test_attributes_object_or_none() -> None:
    assert Contact("a@x.com", attributes_data='{"a": [1]}').attributes() == {"a": [1]}
    for text in (None, "", "[1]", '"s"', "not json", "null"):
        assert Contact("a@x.com", attributes_data=text).attributes() is None


def test_same_state_compares_attributes_as_json() -> None:
    a = Contact("a@x.com", attributes_data='{"a": 1, "b": [1, 2]}')
    assert a.same_state(Contact("a@x.com", attributes_data='{"b":[1,2],"a":1}'))
    assert not a.same_state(Contact("a@x.com", attributes_data='{"a": 1.0, "b": [1, 2]}'))
    assert not a.same_state(Contact("a@x.com", attributes_data='{"a": true, "b": [1, 2]}'))
    assert not a.same_state(Contact("a@x.com", attributes_data='{"a": 1, "b": [2, 1]}'))
    assert Contact("a@x.com", attributes_data="").same_state(Contact("a@x.com"))
    assert not Contact("a@x.com", attributes_data="x").same_state(Contact("a@x.com", attributes_data="y"))
    assert not a.same_state(Contact("a@x.com", attributes_data='{"a": 1, "b": [1, 2]}', unsubscribe_all=True))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("pro", "pro"),
        ("", ""),
        (3, "3"),
        (1.5, "1.5"),
        (True, "true"),
        (None, "null"),
        ([1, "a"], '[1,"a"]'),
        ({"k": "é"}, '{"k":"é"}'),
    ],
)
def test_attribute_text(value: object, text: str) -> None:
    assert attribute_text(value) == text


def test_attributes_match() -> None:
    text = '{"plan": "pro", "n": 2, "none": null, "plan2": "pro", "dup": 1, "dup": 2}'
    assert attributes_match(text, "plan", None)
    assert attributes_match(text, "plan", "pro")
    assert attributes_match(text, "plan", "PRO") and not attributes_match(text, "plan", "PRO", exact=True)
    assert attributes_match(text, "plan", "pro", exact=True)
    assert attributes_match(text, "n", "2")
    assert attributes_match(text, "none", None) and attributes_match(text, "none", "null")
    assert attributes_match(text, "dup", "2") and not attributes_match(text, "dup", "1")  # last one wins, as parsed
    assert not attributes_match(text, "missing", None)
    assert not attributes_match(None, "plan", None)
    assert not attributes_match('["plan"]', "plan", None)


def test_query_status_without_topic_is_unsubscribe_all() -> None:
    gone = Contact("a@x.com", unsubscribe_all=True)
    here = Contact("b@x.com")
    assert ContactQuery(status=OPT_OUT).matches(gone, LIST) and not ContactQuery(status=OPT_OUT).matches(here, LIST)
    assert ContactQuery(status=OPT_IN).matches(here, LIST) and not ContactQuery(status=OPT_IN).matches(gone, LIST)


def test_query_topic_filter() -> None:
    undecided = Contact("a@x.com")
    with_default = ContactQuery(status=OPT_IN, topic=TopicFilter("news", use_default=True))
    explicit_only = ContactQuery(status=OPT_IN, topic=TopicFilter("news"))
    assert with_default.matches(undecided, LIST)
    assert not explicit_only.matches(undecided, LIST)
    assert explicit_only.matches(Contact("a@x.com", topic_preferences={"news": OPT_IN}), LIST)
    # Without a status: any contact with a status for the topic.
    assert ContactQuery(topic=TopicFilter("news", use_default=True)).matches(undecided, LIST)
    assert not ContactQuery(topic=TopicFilter("news")).matches(undecided, LIST)
    assert not ContactQuery(topic=TopicFilter("sports")).matches(undecided, LIST)


def test_query_search_fields() -> None:
    contact = Contact("Ann.Lee+x@Example.COM", attributes_data='{"plan": "pro"}')
    assert ContactQuery(email_contains="lee+X").matches(contact, LIST)
    assert ContactQuery(domain="example.com").matches(contact, LIST)
    assert ContactQuery(domain="@EXAMPLE.com").matches(contact, LIST)
    assert not ContactQuery(domain="ample.com").matches(contact, LIST)
    assert ContactQuery(attributes=(AttributeCondition("plan", "pro"),)).matches(contact, LIST)
    assert not ContactQuery(attributes=(AttributeCondition("plan", "free"),)).matches(contact, LIST)
    assert ContactQuery(email_prefix="ANN.l").matches(contact, LIST)
    assert not ContactQuery(email_prefix="lee").matches(contact, LIST)
    # Every condition must hold.
    both = ContactQuery(
        domain="example.com", attributes=(AttributeCondition("plan"), AttributeCondition("plan", "pro"))
    )
    assert both.matches(contact, LIST)
    assert not ContactQuery(domain="other.com", attributes=(AttributeCondition("plan"),)).matches(contact, LIST)
    assert not ContactQuery(attributes=(AttributeCondition("plan"), AttributeCondition("x"))).matches(contact, LIST)
    assert not ContactQuery(email_prefix="a", attributes=(AttributeCondition("plan"),)).is_ses_filter_only


def test_attribute_values_fold_case_unless_exact() -> None:
    """Strings compare case-folded (Unicode-aware: ß is ss); numbers, booleans, null and nested values as
    their JSON text, as before."""
    text = '{"Company": "ACME Straße", "n": 1.5, "ok": true, "none": null, "tags": ["A"]}'
    assert attributes_match(text, "Company", "acme STRASSE")
    assert not attributes_match(text, "Company", "acme strasse", exact=True)
    assert attributes_match(text, "Company", "ACME Straße", exact=True)
    assert not attributes_match(text, "company", "acme straße")  # keys stay exact
    assert attributes_match(text, "n", "1.5") and attributes_match(text, "ok", "true")
    assert not attributes_match(text, "ok", "TRUE") and not attributes_match(text, "none", "NULL")
    assert attributes_match(text, "tags", '["A"]') and not attributes_match(text, "tags", '["a"]')
    assert ContactQuery().is_ses_filter_only and ContactQuery(status=OPT_IN).is_ses_filter_only
    assert not ContactQuery(domain="x.com").is_ses_filter_only
    assert not ContactQuery(sort="updated").is_ses_filter_only


# -- apply_patch: one import row ----------------------------------------------------------------------------

OLD = Contact(
    "Old@x.com",
    unsubscribe_all=False,
    topic_preferences={"news": OPT_OUT},
    attributes_data='{"a": 1}',
    created=10.0,
    updated=20.0,
)


def test_patch_creates_with_what_the_row_gives() -> None:
    contact, result = apply_patch(None, ContactPatch("new@x.com", attributes={"b": 2}), UpsertPolicy(), 99.0)
    assert result.outcome == Outcome.CREATED
    assert contact == Contact("new@x.com", False, {}, '{"b":2}', created=99.0, updated=99.0)


def test_patch_missing_fields_keep_stored_values() -> None:
    contact, result = apply_patch(
        OLD, ContactPatch("old@x.com", topic_preferences={"offers": OPT_IN}), UpsertPolicy(), 99.0
    )
    assert result.outcome == Outcome.UPDATED
    assert contact.email == "Old@x.com"  # the first spelling stays
    assert dict(contact.topic_preferences) == {"news": OPT_OUT, "offers": OPT_IN}
    assert contact.attributes_data == OLD.attributes_data
    assert (contact.created, contact.updated) == (10.0, 99.0)


def test_patch_with_nothing_new_is_unchanged_and_keeps_the_timestamp() -> None:
    contact, result = apply_patch(
        OLD, ContactPatch("old@x.com", attributes={"a": 1}, unsubscribe_all=False), UpsertPolicy(), 99.0
    )
    assert result.outcome == Outcome.UNCHANGED
    assert contact is OLD


def test_patch_never_resubscribes_unless_the_policy_says_so() -> None:
    gone = Contact("g@x.com", unsubscribe_all=True, updated=5.0)
    contact, result = apply_patch(gone, ContactPatch("g@x.com", unsubscribe_all=False), UpsertPolicy(), 9.0)
    assert (result.outcome, result.kept_unsubscribed, contact.unsubscribe_all) == (Outcome.UNCHANGED, True, True)
    contact, result = apply_patch(
        gone, ContactPatch("g@x.com", unsubscribe_all=False), UpsertPolicy(resubscribe=True), 9.0
    )
    assert (result.outcome, result.kept_unsubscribed, contact.unsubscribe_all) == (Outcome.UPDATED, False, False)
    # Unsubscribing is always allowed.
    contact, result = apply_patch(OLD, ContactPatch("old@x.com", unsubscribe_all=True), UpsertPolicy(), 9.0)
    assert (result.outcome, contact.unsubscribe_all) == (Outcome.UPDATED, True)


def test_patch_attributes_replace_merge_or_clear() -> None:
    patch = ContactPatch("old@x.com", attributes={"b": 2})
    assert apply_patch(OLD, patch, UpsertPolicy(), 9.0)[0].attributes() == {"b": 2}
    assert apply_patch(OLD, patch, UpsertPolicy(merge_attributes=True), 9.0)[0].attributes() == {"a": 1, "b": 2}
    cleared, result = apply_patch(OLD, ContactPatch("old@x.com", attributes=None), UpsertPolicy(), 9.0)
    assert cleared.attributes_data is None and result.outcome == Outcome.UPDATED
    kept, _ = apply_patch(OLD, ContactPatch("old@x.com", attributes=MISSING), UpsertPolicy(), 9.0)
    assert kept.attributes_data == OLD.attributes_data


def test_patch_keeps_an_explicit_topic_opt_out_unless_the_policy_says_so() -> None:
    """The never-re-subscribe rule covers a topic's explicit OPT_OUT as it covers unsubscribe-all; a topic the
    contact never chose (the list default applies) is not "opted out" and takes the row's OPT_IN."""
    patch = ContactPatch("old@x.com", topic_preferences={"news": OPT_IN, "offers": OPT_IN})
    contact, result = apply_patch(OLD, patch, UpsertPolicy(), 9.0)
    assert dict(contact.topic_preferences) == {"news": OPT_OUT, "offers": OPT_IN}
    assert (result.outcome, result.kept_opted_out, result.kept_unsubscribed) == (Outcome.UPDATED, True, False)
    only_news = ContactPatch("old@x.com", topic_preferences={"news": OPT_IN})
    contact, result = apply_patch(OLD, only_news, UpsertPolicy(), 9.0)
    assert (contact, result.outcome, result.kept_opted_out) == (OLD, Outcome.UNCHANGED, True)
    contact, result = apply_patch(OLD, only_news, UpsertPolicy(resubscribe=True), 9.0)
    assert dict(contact.topic_preferences) == {"news": OPT_IN} and not result.kept_opted_out
    # Opting out is always allowed, and a row that repeats the opt-out keeps nothing back.
    contact, result = apply_patch(
        OLD, ContactPatch("old@x.com", topic_preferences={"news": OPT_OUT}), UpsertPolicy(), 9.0
    )
    assert (result.outcome, result.kept_opted_out) == (Outcome.UNCHANGED, False)


def test_patch_replace_record_is_ses_put_the_row_is_the_whole_contact() -> None:
    """SES's PUT import: what the row omits is cleared, unsubscribeAll false re-subscribes, topic opt-outs
    follow the row; no guard holds anything back."""
    gone = Contact("Gone@x.com", True, {"news": OPT_OUT, "offers": OPT_IN}, '{"a": 1}', created=1.0, updated=2.0)
    put = UpsertPolicy(replace_record=True)
    contact, result = apply_patch(gone, ContactPatch("gone@x.com", topic_preferences={"news": OPT_IN}), put, 9.0)
    assert contact == Contact("Gone@x.com", False, {"news": OPT_IN}, None, created=1.0, updated=9.0)
    assert result == RowResult(Outcome.UPDATED)
    contact, result = apply_patch(gone, ContactPatch("gone@x.com", unsubscribe_all=True), put, 9.0)
    assert (contact.unsubscribe_all, dict(contact.topic_preferences), contact.attributes_data) == (True, {}, None)
    same = ContactPatch("gone@x.com", True, {"a": 1}, {"offers": OPT_IN, "news": OPT_OUT})
    assert apply_patch(gone, same, put, 9.0) == (gone, RowResult(Outcome.UNCHANGED))
    # merge_attributes has no meaning for a whole record: the row's object is the attributes.
    merged = apply_patch(gone, ContactPatch("gone@x.com", attributes={"b": 2}), UpsertPolicy(True, True, True), 9.0)
    assert merged[0].attributes() == {"b": 2}


_STATUS = st.sampled_from([OPT_IN, OPT_OUT])
_PREFS = st.dictionaries(st.sampled_from(["news", "offers"]), _STATUS, max_size=2)
_ATTRS = st.none() | st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 2), max_size=2)


@given(
    existing=st.none()
    | st.builds(
        lambda u, p, a: Contact("P@x.com", u, p, None if a is None else orjson.dumps(a).decode(), 1.0, 2.0),
        st.booleans(),
        _PREFS,
        _ATTRS,
    ),
    unsubscribe=st.sampled_from([MISSING, True, False]),
    attributes=st.sampled_from([MISSING]) | _ATTRS,
    prefs=_PREFS,
    resubscribe=st.booleans(),
)
def test_replace_record_then_get_contact_is_exactly_the_row(
    existing: Contact | None,
    unsubscribe: bool | Missing,
    attributes: dict[str, object] | Missing | None,
    prefs: dict[str, str],
    resubscribe: bool,
) -> None:
    patch = ContactPatch("p@x.com", unsubscribe, attributes, prefs)
    contact, result = apply_patch(existing, patch, UpsertPolicy(resubscribe=resubscribe, replace_record=True), 9.0)
    assert contact.unsubscribe_all is (unsubscribe is True)
    assert dict(contact.topic_preferences) == prefs
    assert contact.attributes() == (None if attributes is MISSING else attributes)
    assert not (result.kept_unsubscribed or result.kept_opted_out)
    assert contact.email == (existing.email if existing is not None else "p@x.com")


def test_list_stats_subscribed() -> None:
    assert ListStats(total=10, unsubscribed=3).subscribed == 7


# -- nesting ---------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(alphabet='[]{}"\\ax,:'),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\a'), children, max_size=3)
    ),
    max_leaves=20,
)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@given(JSON_VALUES, st.integers(0, 6))
def test_nesting_is_counted_on_text_and_values_alike(value: object, limit: int) -> None:
    """Brackets inside strings (escaped quotes and backslashes included) are text, not nesting."""
    expected = _depth(value) > limit
    assert value_nesting_exceeds(value, limit) is expected
    assert nesting_exceeds(orjson.dumps(value).decode(), limit) is expected
    assert nesting_exceeds(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode(), limit) is expected


def test_nesting_of_text_that_is_not_json() -> None:
    assert nesting_exceeds("[" * 40, 32) and not nesting_exceeds("plain text with ] and }", 0)
    assert nesting_exceeds('"' + "[" * 100, 32)  # a string never closed holds nothing: its brackets count


def test_attributes_past_the_limit_are_read_as_raw_text() -> None:
    """A value stored before the limit existed: not an object to the console, search or merge, and compared
    as text, since orjson could not write it back (254 levels) or read it at all (1024)."""
    at_limit = '{"a":' * MAX_ATTRIBUTES_DEPTH + "1" + "}" * MAX_ATTRIBUTES_DEPTH
    past = '{"k":"v","a":' + at_limit + "}"
    assert attributes_object(at_limit) is not None and attributes_object(past) is None
    assert not attributes_match(past, "k", "v") and attributes_match(at_limit, "a", None)
    assert same_attributes(past, past) and not same_attributes(past, past.replace('"v"', '"w"'))
    for depth in (300, 2000):
        text = '{"a":' * depth + "1" + "}" * depth
        assert attributes_object(text) is None and same_attributes(text, text)
