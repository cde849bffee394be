"""The fields of a bulk record: column names, cell values, and the CSV cells a spreadsheet would run.

Both readers (``csv_reader``, ``json_reader``) parse a row's values with these rules, so a CSV cell and a
JSON member mean the same thing; the writers and the exporter's SQL use the same cell encoding, so an export
re-imports exactly. Every CSV cell we write goes through :func:`encode_cell`, so that a spreadsheet shows it
rather than runs it; the CSV reader undoes that with :func:`decode_cell`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from types import MemberDescriptorType
from typing import Final

from ...model import OPT_IN, OPT_OUT, ContactPatch, Missing
from ...ses_wire import LINE_ATTRIBUTES, LINE_EMAIL, LINE_TOPIC_PREFERENCES, LINE_UNSUBSCRIBE_ALL
from ...validation import MAX_ATTRIBUTES_BYTES, MAX_ATTRIBUTES_DEPTH, email_problem, has_long_digit_run
from ..report import Reject

# The import file's column names are SES's import-job line's field names (ses_wire owns them).
EMAIL: Final = LINE_EMAIL
UNSUBSCRIBE_ALL: Final = LINE_UNSUBSCRIBE_ALL
ATTRIBUTES: Final = LINE_ATTRIBUTES
TOPIC_PREFERENCES: Final = LINE_TOPIC_PREFERENCES
TOPIC_PREFIX: Final = f"{LINE_TOPIC_PREFERENCES}."

_BOOLS: Final = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "": False,
}
# Exact spellings looked up before normalising: the common case costs one dict probe.
BOOLS_FAST: Final = {**_BOOLS, "TRUE": True, "FALSE": False, "True": True, "False": False}
STATUSES: Final = {OPT_IN: OPT_IN, OPT_OUT: OPT_OUT}

# The common ASCII address, checked by one regex; anything it does not accept goes to the full rules
# (validation.email_problem), which stay the authority. The fast path never accepts what those reject.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_FAST_EMAIL = re.compile(
    rf"(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@(?:(?!-)[A-Za-z0-9-]{{1,63}}(?<!-)\.)+[A-Za-z]{{2,63}}"
)
fast_email_match = _FAST_EMAIL.fullmatch
# The same pattern for many addresses at once, each followed by a newline (an address holds none): one regex
# call checks a block of them, instead of one call each (~0.4 us). Possessive: at an address it does not
# accept, the match ends there instead of backtracking into the thousands of lines before it.
FAST_EMAIL_LINES: Final = re.compile(
    rf"(?:(?=[^@\n]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@(?:(?!-)[A-Za-z0-9-]{{1,63}}(?<!-)\.)+[A-Za-z]{{2,63}}\n)*+"
)


def _slot_setter(name: str) -> Callable[[ContactPatch, object], None]:
    """The ``__set__`` of ContactPatch's slot ``name`` (the class's ``__dict__`` holds the slot descriptor)."""
    slot: MemberDescriptorType = vars(ContactPatch)[name]
    return slot.__set__


_new_object = object.__new__
_set_email = _slot_setter("email")
_set_unsubscribe = _slot_setter("unsubscribe_all")
_set_attributes = _slot_setter("attributes")
_set_topics = _slot_setter("topic_preferences")


def make_patch(
    email: str, unsubscribe: bool | Missing, attributes: dict[str, object] | Missing | None, topics: dict[str, str]
) -> ContactPatch:
    """``ContactPatch(email, unsubscribe, attributes, topics)`` at half the cost: the frozen dataclass's
    ``__init__`` goes through ``object.__setattr__`` per field; the slot descriptors set them directly.
    ContactPatch has no ``__post_init__``, so the result is the same object (a test checks equality)."""
    patch = _new_object(ContactPatch)
    _set_email(patch, email)
    _set_unsubscribe(patch, unsubscribe)
    _set_attributes(patch, attributes)
    _set_topics(patch, topics)
    return patch


# Below this many characters, attributes text cannot exceed MAX_ATTRIBUTES_BYTES even at 4 bytes a character.
_SMALL_ATTRIBUTES: Final = MAX_ATTRIBUTES_BYTES // 4


def plainly_within_caps(text: str) -> bool:
    """Whether attributes text is too short to pass the size cap and has too few brackets to nest past the
    depth cap: the usual value, parsed straight away; any other goes through validation.attributes_problem."""
    return (
        len(text) <= _SMALL_ATTRIBUTES
        and text.count("{") + text.count("[") <= MAX_ATTRIBUTES_DEPTH
        and not has_long_digit_run(text)  # a number orjson might round: attributes_problem looks closer
    )


def check_address(address: str) -> str | None:
    """Why ``address`` cannot be imported, or None. Fast for ordinary addresses."""
    if len(address) <= 254 and fast_email_match(address) is not None:
        return None
    return email_problem(address)


def parse_bool(value: str) -> bool | None:
    found = BOOLS_FAST.get(value)
    if found is None:
        found = _BOOLS.get(value.strip().lower())
    return found


# -- CSV cells a spreadsheet would run ------------------------------------------------------------------

# A spreadsheet takes a cell starting with one of these as a formula (tab and CR: as the start of one).
FORMULA_TRIGGERS: Final = "=+-@\t\r"
# Quotes, then a trigger: the cells encode_cell prefixes (and decode_cell, after its quote, strips).
_ESCAPED = re.compile(r"'*[=+\-@\t\r]")
_FIRST_OF_ESCAPED: Final = frozenset(FORMULA_TRIGGERS + "'")


def encode_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text: one ``'`` before a cell that starts with = + - @ tab or CR
    (the usual neutralising quote, which the spreadsheet hides) *or* with quotes followed by one of those.

    The second case makes the rule reversible for every string: :func:`decode_cell` strips one ``'`` from
    exactly the cells that start with one or more quotes and then a trigger, and a cell of that shape can
    only come from here (``'=x`` is written ``''=x``, and reads back as ``'=x``).
    """
    if value and value[0] in _FIRST_OF_ESCAPED and _ESCAPED.match(value):
        return "'" + value
    return value


def decode_cell(value: str) -> str:
    """:func:`encode_cell` undone: ``decode_cell(encode_cell(x)) == x`` for every string."""
    if value[:1] == "'" and _ESCAPED.match(value, 1):
        return value[1:]
    return value


# -- what a read yields and accepts ---------------------------------------------------------------------

Record = tuple[int, "ContactPatch | str | Reject"]


@dataclass
class ReadOptions:
    action: str = "add"
    extra_columns_as_attributes: bool = False
    merge_attributes: bool = False
    # The list's topics; None skips the check (a preview without a list).
    topics: frozenset[str] | None = None
    # A CSV's column mapping, column name -> field spec (see ``mapping``); None: the header's names decide.
    mapping: dict[str, str] | None = None
