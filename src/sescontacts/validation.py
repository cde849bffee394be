"""The rules SES applies to names, topics, addresses and attributes, with SES's own messages.

Shared by the SES API, the importer and the console so that a value one surface accepts, every surface
accepts. The messages are the ones SES sends (see ``shared/docs/ses-v2-contract.md``); the reasons returned
by :func:`email_problem` are ours, for reports where "is invalid" alone would not help anyone fix a row.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Final

import orjson

from .errors import BadRequest
from .model import (
    MAX_ATTRIBUTES_DEPTH,
    SUBSCRIPTION_STATUSES,
    Contact,
    ContactList,
    Topic,
    email_key,
    nesting_exceeds,
    value_nesting_exceeds,
)

# Defined in model (the query semantics need them); imported from here by the surfaces.
__all__ = ["MAX_ATTRIBUTES_DEPTH", "email_key"]

MAX_TOPICS = 20
MAX_LIST_DESCRIPTION = 500
MAX_TOPIC_DESCRIPTION = 500
MAX_DISPLAY_NAME = 128
MAX_TAGS = 50
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART = 64
# SES does not document a cap on AttributesData; ours keeps a runaway value out of every page and export.
MAX_ATTRIBUTES_BYTES = 65_536

# Control, format (zero-width), surrogate, private-use and unassigned characters: never part of an address a
# person can type, yet they arrive from copy-pasted spreadsheets and would make two "identical" addresses.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LOCAL_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_LOCAL = re.compile(rf"{_LOCAL_ATOM}(?:\.{_LOCAL_ATOM})*")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9\-\u0080-\U0010ffff]{1,63}(?<!-)")


def check_name(kind: str, name: str | None) -> str:
    """ContactListName and TopicName share one pattern and one pair of messages."""
    if name is None or name == "":
        raise BadRequest(f"{kind} can't be blank.", field=kind)
    if not _NAME.fullmatch(name):
        raise BadRequest(
            f"{kind} can contain up to 64 characters. Only alphanumeric characters, underscores(_) "
            "and hyphens(-) are allowed.",
            field=kind,
        )
    return name


def check_list_name(name: str | None) -> str:
    return check_name("ContactListName", name)


def check_description(description: str | None) -> None:
    if description is not None and len(description) > MAX_LIST_DESCRIPTION:
        raise BadRequest(f"List description can contain up to {MAX_LIST_DESCRIPTION} characters.", field="Description")


def check_topics(topics: Sequence[Topic]) -> None:
    """SES's order: enums first (a protocol check), then the count, then each topic's fields, then duplicates.

    Too many topics is a BadRequestException, not the LimitExceededException the model also lists for
    CreateContactList: the probe of real SES (floci's SesContactService) saw BadRequest with this message.
    """
    for index, topic in enumerate(topics, start=1):
        check_status(f"topics.{index}.member.defaultSubscriptionStatus", topic.default_status)
    if len(topics) > MAX_TOPICS:
        raise BadRequest(f"Maximum of <{MAX_TOPICS}> topics allowed per ContactList", field="Topics")
    for topic in topics:
        check_name("TopicName", topic.name)
        if len(topic.display_name) > MAX_DISPLAY_NAME:
            raise BadRequest(
                f"Topic DisplayName can contain up to <{MAX_DISPLAY_NAME}> characters.", field="DisplayName"
            )
        if topic.description is not None and len(topic.description) > MAX_TOPIC_DESCRIPTION:
            raise BadRequest(
                f"Topic Description can contain up to <{MAX_TOPIC_DESCRIPTION}> characters.",
                field="Description",
            )
    names = [t.name for t in topics]
    if len(set(names)) != len(names):
        raise BadRequest("Duplicate topic names are not allowed within a List.", field="TopicName")


def check_new_list(
    name: str | None, topics: Sequence[Topic], description: str | None, tags: Sequence[tuple[str, str]]
) -> None:
    """Everything CreateContactList checks before it looks at what exists, in SES's order; both stores call it."""
    check_list_name(name)
    check_topics(topics)
    check_description(description)
    check_tags(tags)


def check_tags(tags: Sequence[tuple[str, str]]) -> None:
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"A list can have at most {MAX_TAGS} tags.", field="Tags")
    for key, value in tags:
        if not key or len(key) > 128:
            raise BadRequest("Tag keys must be 1 to 128 characters long.", field="Tags")
        if len(value) > 256:
            raise BadRequest("Tag values can be at most 256 characters long.", field="Tags")
    if len({key for key, _ in tags}) != len(tags):  # AWS refuses them rather than picking one
        raise BadRequest("Duplicate tag keys are not allowed.", field="Tags")


# How SES lists an enum's values in its messages, where that was seen (the probe); other enums in model order.
_ENUM_TEXTS: Final[dict[tuple[str, ...], str]] = {SUBSCRIPTION_STATUSES: "[OPT_OUT, OPT_IN]"}


def enum_violation(member: str, allowed: tuple[str, ...]) -> str:
    """One enum violation as SES words it: the member's path, never the value sent (SES quotes no value, in
    its enum messages as in its missing-member ones)."""
    allowed_text = _ENUM_TEXTS.get(allowed) or "[" + ", ".join(allowed) + "]"
    return f"Value at '{member}' failed to satisfy constraint: Member must satisfy enum value set: {allowed_text}"


def enum_message(member: str, allowed: tuple[str, ...] = SUBSCRIPTION_STATUSES) -> str:
    return "1 validation error detected: " + enum_violation(member, allowed)


def check_status(member: str, value: str) -> str:
    if value not in SUBSCRIPTION_STATUSES:
        raise BadRequest(enum_message(member), field=member)
    return value


def email_problem(address: str) -> str | None:
    """Why ``address`` is not a usable email address, or None when it is.

    A syntax check (RFC 5321/5322 dot-atom, internationalised local parts and IDN domains allowed), no DNS:
    SES itself accepts any syntactically plausible address into a list, and so do we.
    """
    if not address:
        return "the address is empty"
    if len(address) > MAX_EMAIL_LENGTH:
        return f"the address is longer than {MAX_EMAIL_LENGTH} characters"
    # Printable ASCII without a space has neither (the per-character checks cost ~20 us an address).
    if not (address.isascii() and address.isprintable() and " " not in address):
        if any(c.isspace() for c in address):
            return "the address contains a space"
        if any(unicodedata.category(c) in _INVISIBLE for c in address):
            return "the address contains an invisible or control character"
    local, at, domain = address.rpartition("@")
    if not at:
        return "there is no @"
    if not local:
        return "nothing before the @"
    if not domain:
        return "nothing after the @"
    if len(local.encode()) > MAX_LOCAL_PART:
        return f"the part before the @ is longer than {MAX_LOCAL_PART} bytes"
    if not _LOCAL.fullmatch(local):
        if "@" in local:
            return "more than one @"
        if ".." in local or local.startswith(".") or local.endswith("."):
            return "dots before the @ must separate words"
        return "the part before the @ has a character addresses cannot contain"
    if len(domain) > 253:
        return "the domain is longer than 253 characters"
    labels = domain.split(".")
    if len(labels) < 2:
        return "the domain has no dot"
    for label in labels:
        if not _LABEL.fullmatch(label):
            return f"the domain part {label!r} is not a valid domain label"
    if labels[-1].isdigit():
        return "the top-level domain cannot be all digits"
    return None


def check_email(address: str | None) -> str:
    """The SES API's check: blank (empty or only white space), then syntax, with SES's messages (the angle
    brackets are SES's). The reason :func:`email_problem` gives stays out: SES says no more than this."""
    if address is None or not address.strip():
        raise BadRequest("EmailAddress can't be blank.", field="EmailAddress")
    if email_problem(address) is not None:
        raise BadRequest(f"EmailAddress <{address}> is invalid", field="EmailAddress")
    return address


def check_preference_statuses(preferences: Mapping[str, str]) -> None:
    """The enum check SES makes before it looks the list up (paths as SES names them, 1-based)."""
    for index, status in enumerate(preferences.values(), start=1):
        check_status(f"topicPreferences.{index}.member.subscriptionStatus", status)


def unknown_topic(list_name: str, topic_name: str) -> BadRequest:
    """A preference for a topic the list lacks: 400 BadRequestException, as the probe of real SES saw (a
    TopicFilter naming such a topic in ListContacts is a 404 instead, also probed)."""
    return BadRequest(f"List: {list_name} doesn't contain Topic: {topic_name}", field="TopicPreferences")


def check_topic_preferences(contact_list: ContactList, preferences: Mapping[str, str]) -> None:
    """Statuses, then every topic exists in the list."""
    check_preference_statuses(preferences)
    for topic_name in preferences:
        if contact_list.topic(topic_name) is None:
            raise unknown_topic(contact_list.name, topic_name)


TOO_DEEP = f"nested more than {MAX_ATTRIBUTES_DEPTH} levels deep"


def attributes_text_problem(text: str) -> str | None:
    """The caps on any AttributesData text, JSON or not: size, then nesting (model.MAX_ATTRIBUTES_DEPTH says
    why there is one). Checked before anything parses the text, so a deep value never reaches a parser."""
    # A character is at most 4 bytes in UTF-8: only texts past a quarter of the cap need encoding to measure.
    if len(text) > MAX_ATTRIBUTES_BYTES // 4 and len(text.encode()) > MAX_ATTRIBUTES_BYTES:
        return f"attributesData is larger than {MAX_ATTRIBUTES_BYTES:,} bytes"
    if nesting_exceeds(text):
        return f"attributesData is {TOO_DEEP}"
    return None


# orjson keeps integers in [-2**63, 2**64) exactly and reads any longer one as a float, rounded. Such a
# literal has at least 19 digits: only texts with a run that long are read again to find it.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_NOT_DIGITS = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)


def has_long_digit_run(text: str | bytes) -> bool:
    """Whether ``text`` holds 19 digits in a row. Run on every imported row, so the usual answer comes cheap:
    a text with fewer than 19 digits in all cannot hold such a run (deleting the other bytes is one C call,
    ~0.4 us on a 200-byte row; the regex alone took ~2 us, measured)."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return len(data.translate(None, _NOT_DIGITS)) >= 19 and _LONG_DIGITS.search(data) is not None


class _Inexact(Exception):
    def __init__(self, literal: str) -> None:
        self.literal = literal


def _exact_int(literal: str) -> int:
    if len(literal) > 21 or not -(2**63) <= (value := int(literal)) < 2**64:
        raise _Inexact(literal)
    return value


def inexact_number_problem(text: str | bytes) -> str | None:
    """The reason JSON ``text`` cannot be stored as written: an integer orjson would round to a float (an ID
    of 20+ digits quietly becoming 1.2345678901234568e+22). None for any other text, JSON or not."""
    if not has_long_digit_run(text):
        return None
    try:
        json.loads(text, parse_int=_exact_int)
    except _Inexact as exc:
        shown = exc.literal if len(exc.literal) <= 40 else exc.literal[:37] + "..."
        return f"the number {shown} does not fit in 64 bits and would not be kept exactly; write it in quotes"
    except ValueError:  # not JSON: the caller says so
        return None
    return None


def check_attributes_data(text: str | None, *, stored: str | None = None) -> None:
    """The SES API's (and both stores') check of AttributesData: the caps only, since SES stores any text.

    ``stored`` is the contact's current value on an update: sent back unchanged it passes, so a contact
    written before a cap existed can still have its other fields changed (the console's edit form, a client
    that sends GetContact's answer back).
    """
    if text is not None and text != stored and (problem := attributes_text_problem(text)) is not None:
        raise BadRequest("A" + problem[1:] + ".", field="AttributesData")


def apply_update(current: Contact, contact: Contact, *, merge_topic_preferences: bool) -> Contact:
    """UpdateContact's rule, for every store: unsubscribe-all and attributes are replaced by ``contact``'s;
    topic preferences are replaced too, or merged by topic name (the SES API's way). The stored spelling of
    the address and its times stay: the store sets the update time when it writes."""
    check_attributes_data(contact.attributes_data, stored=current.attributes_data)
    preferences = dict(current.topic_preferences) if merge_topic_preferences else {}
    preferences.update(contact.topic_preferences)
    return Contact(
        email=current.email,
        unsubscribe_all=contact.unsubscribe_all,
        topic_preferences=preferences,
        attributes_data=contact.attributes_data,
        created=current.created,
        updated=current.updated,
    )


def attributes_value_problem(value: dict[str, object]) -> str | None:
    """The caps for attributesData given as an object (a JSON import file's), without serialising a value
    too deep to serialise."""
    if value_nesting_exceeds(value):
        return f"attributesData is {TOO_DEEP}"
    if len(orjson.dumps(value)) > MAX_ATTRIBUTES_BYTES:
        return f"attributesData is larger than {MAX_ATTRIBUTES_BYTES:,} bytes"
    return None


def attributes_problem(text: str) -> tuple[dict[str, object] | None, str | None]:
    """Parse attributesData as the console and importer require it: a JSON object, within the caps.

    Returns (object, None) or (None, reason). Empty text means "no attributes".
    """
    problem = attributes_text_problem(text)
    if problem is not None:
        return None, problem
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return None, f"attributesData is not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"attributesData must be a JSON object, not {json_type_name(value)}"
    if (problem := inexact_number_problem(text)) is not None:
        return None, f"attributesData: {problem}"
    return value, None


def parse_attributes(text: str | None) -> dict[str, object] | None:
    """Like :func:`attributes_problem`, raising BadRequest (field ``AttributesData``) on a bad value."""
    if text is None or text.strip() == "":
        return None
    value, problem = attributes_problem(text)
    if problem is not None:
        raise BadRequest(problem, field="AttributesData")
    return value


def json_type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
