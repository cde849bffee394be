"""Column mapping: which contact field each CSV column fills, for files not written in the page's format.

A Mailchimp export (``Email Address,First Name,Last Name,...``) or a spreadsheet's ``email,name`` has no
``emailAddress`` column. A mapping says, per column, one of: the address (``email``), unsubscribe-all
(``unsubscribeAll``), the attributes as a JSON object (``attributesData``), a topic (``topic:NAME``, values
opt in/out), one attribute (``attribute:NAME[:string|number|boolean]``), or ``skip``. The CLI takes it as
``--map COLUMN=FIELD``; the console builds the same specs from its mapping step and stores them with the job.

Without a mapping, the header's columns are recognised: the page's names exactly as before, and the common
spellings of the address and of unsubscribe-all (case, spaces and punctuation ignored: ``E-mail``, ``Email
Address``, ``email_address``). A spelling stands for a field only when the header has no column of the page's
own name for it, so every file that imported before imports the same. The mapping changes only how the header
is planned (``csv_reader``): rows then go through the same per-row rules, batches, resume and rejects.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from .fields import ATTRIBUTES, EMAIL, TOPIC_PREFIX, UNSUBSCRIBE_ALL, parse_bool

FieldKind = Literal["email", "unsubscribeAll", "attributesData", "topic", "attribute", "skip"]
ATTRIBUTE_TYPES: Final = ("string", "number", "boolean")
FIELD_HELP: Final = "email, unsubscribeAll, attributesData, topic:NAME, attribute:NAME[:string|number|boolean] or skip"
_KINDS: Final[dict[str, FieldKind]] = {
    "email": "email",
    "unsubscribeall": "unsubscribeAll",
    "attributesdata": "attributesData",
    "topic": "topic",
    "attribute": "attribute",
    "skip": "skip",
}
# Normalised spellings (see normalised) that mean the address or unsubscribe-all.
ADDRESS_SPELLINGS: Final = frozenset(
    {"emailaddress", "email", "mail", "emailaddr", "mailaddress", "emails", "emailid", "emailaddresses"}
)
UNSUBSCRIBE_SPELLINGS: Final = frozenset(
    {"unsubscribeall", "unsubscribe", "unsubscribed", "optout", "optedout", "optoutall", "unsubscribedall"}
)
# A topic column's values, besides OPT_IN / OPT_OUT (a mapped topic column; the page's own columns stay strict).
_TOPIC_WORDS: Final = {"optin": "OPT_IN", "optout": "OPT_OUT", "subscribed": "OPT_IN", "unsubscribed": "OPT_OUT"}
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_DIGITS: Final = 15  # past this a number may not survive a JSON reader unchanged


class MappingError(ValueError):
    """A map spec that means nothing; ``column`` is the column it was given for."""

    def __init__(self, message: str, column: str) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


@dataclass(frozen=True)
class ColumnField:
    """What one column fills. ``name``: the topic's or attribute's name; ``type``: an attribute's value type."""

    kind: FieldKind
    name: str = ""
    type: str = "string"

    @property
    def spec(self) -> str:
        """The field as ``--map`` spells it (what the job record and the console's links keep)."""
        if self.kind == "topic":
            return f"topic:{self.name}"
        if self.kind == "attribute":
            return f"attribute:{self.name}:{self.type}"
        return self.kind


def normalised(name: str) -> str:
    """A header name with case, spaces and punctuation dropped: ``E-mail Address`` is ``emailaddress``."""
    return re.sub(r"[\W_]+", "", name.casefold())


def parse_field(text: str, column: str) -> ColumnField:
    """``FIELD`` of ``--map COLUMN=FIELD`` as a ColumnField; MappingError (naming ``column``) if it means nothing."""
    kind_text, _, rest = text.strip().partition(":")
    kind = _KINDS.get(kind_text.strip().lower())
    if kind is None:
        raise MappingError(f"column {column!r}: {text.strip()!r} is not a field; use {FIELD_HELP}", column)
    if kind in ("topic", "attribute"):
        name, value_type = rest.strip(), "string"
        if kind == "attribute":
            head, sep, tail = name.rpartition(":")
            if sep and tail.strip().lower() in ATTRIBUTE_TYPES:
                name, value_type = head.strip(), tail.strip().lower()
        if not name:
            raise MappingError(f"column {column!r}: {kind}:NAME needs a name, as in {kind}:{column}", column)
        return ColumnField(kind, name, value_type)
    if rest.strip():
        raise MappingError(f"column {column!r}: {kind} takes no name (got {text.strip()!r})", column)
    return ColumnField(kind)


def parse_map_option(text: str) -> tuple[str, ColumnField]:
    """``COLUMN=FIELD`` (the CLI's ``--map``; the last ``=`` splits) as the column and its field."""
    column, sep, spec = text.rpartition("=")
    column = column.strip()
    if not sep or not column:
        raise MappingError(f"{text!r} is not COLUMN=FIELD (FIELD is {FIELD_HELP})", column or text)
    return column, parse_field(spec, column)


def recognise_header(header: Sequence[str]) -> list[ColumnField | None]:
    """Each column's field as the header's names say, or None (a column nobody named): the page's names, the
    common spellings of the address and unsubscribe-all (only when the page's own name is not there too),
    ``attributesData`` and ``topicPreferences.<Topic>``."""
    names = [column.strip() for column in header]
    lowered = {name.lower() for name in names}
    has_email, has_unsubscribe = EMAIL.lower() in lowered, UNSUBSCRIBE_ALL.lower() in lowered
    found: list[ColumnField | None] = []
    for name in names:
        low, norm = name.lower(), normalised(name)
        if low == EMAIL.lower() or (not has_email and norm in ADDRESS_SPELLINGS):
            found.append(ColumnField("email"))
        elif low == UNSUBSCRIBE_ALL.lower() or (not has_unsubscribe and norm in UNSUBSCRIBE_SPELLINGS):
            found.append(ColumnField("unsubscribeAll"))
        elif low == ATTRIBUTES.lower():
            found.append(ColumnField("attributesData"))
        elif low.startswith(TOPIC_PREFIX.lower()) and len(name) > len(TOPIC_PREFIX):
            found.append(ColumnField("topic", name[len(TOPIC_PREFIX) :]))
        else:
            found.append(None)
    return found


def suggest_mapping(header: Sequence[str]) -> list[ColumnField]:
    """The console's first guess: the recognised fields, and a string attribute named after any other column."""
    return [
        known or (ColumnField("attribute", column.strip()) if column.strip() else ColumnField("skip"))
        for column, known in zip(header, recognise_header(header), strict=True)
    ]


def is_page_header(header: Sequence[str]) -> bool:
    """Whether the header is the page's own (every column one of its names, the address among them): such a
    file imports with no mapping step."""
    lowered = [column.strip().lower() for column in header]
    known = {EMAIL.lower(), UNSUBSCRIBE_ALL.lower(), ATTRIBUTES.lower()}
    prefix = TOPIC_PREFIX.lower()
    return EMAIL.lower() in lowered and all(
        low in known or (low.startswith(prefix) and len(low) > len(prefix)) for low in lowered
    )


def header_key(header: Sequence[str]) -> str:
    """The header as a set of names (case and order ignored): the key a remembered mapping is kept under."""
    names = sorted({column.strip().lower() for column in header})
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def topic_status(value: str) -> str | None:
    """A mapped topic cell as OPT_IN / OPT_OUT: those words (any case, ``opt in``, ``opt-in``), subscribed /
    unsubscribed, or a boolean (true, yes, 1 opt in). None: it says neither."""
    word = _TOPIC_WORDS.get(normalised(value))
    if word is not None:
        return word
    flag = parse_bool(value)
    if flag is None:
        return None
    return "OPT_IN" if flag else "OPT_OUT"


def typed_value(cell: str, value_type: str) -> tuple[object, str | None]:
    """A mapped attribute cell as its type's value, or the reason it is not one (the cell is not empty)."""
    text = cell.strip()
    if value_type == "number":
        digits = sum(ch.isdigit() for ch in text)
        if _INTEGER.fullmatch(text) and digits <= _MAX_DIGITS:
            return int(text), None
        if _DECIMAL.fullmatch(text) and digits <= _MAX_DIGITS:
            return float(text), None
        if digits > _MAX_DIGITS and _DECIMAL.fullmatch(text):
            return None, f"{text!r} has more than {_MAX_DIGITS} digits; map the column as a string"
        return None, f"must be a number, not {text!r}"
    flag = parse_bool(text)
    if flag is None:
        return None, f"must be true or false, not {text!r}"
    return flag, None


def column_map_from(values: Sequence[str]) -> dict[str, str] | None:
    """``COLUMN=FIELD`` values (the CLI's ``--map``, the console's ``map`` parameters) as column -> field spec;
    None when there are none. MappingError for a value that means nothing or a column mapped twice."""
    if not values:
        return None
    mapping: dict[str, str] = {}
    for value in values:
        column, found = parse_map_option(value)
        if column.lower() in {c.lower() for c in mapping}:
            raise MappingError(f"column {column!r} is mapped twice", column)
        mapping[column] = found.spec
    return mapping


def map_values(mapping: dict[str, str] | None) -> list[str]:
    """:func:`column_map_from` undone: the ``COLUMN=FIELD`` values of a mapping."""
    return [f"{column}={spec}" for column, spec in (mapping or {}).items()]
