"""Records a block at a time, as columns: how the importer reads a big file at C speed.

A block of raw rows (CSV cells, JSON Lines objects) is checked column by column with C-level calls (``map``
over a compiled regex, ``orjson`` over every attributes text, one byte scan for long digit runs), not row by
row in Python. A row that any fast check does not plainly accept goes through the reader's own per-row
function, which stays the one authority on what a row means: the fast checks only ever accept what it
accepts, and produce what it produces (a test reads files both ways and compares). The output is the
:class:`Rows` of the block: accepted rows as the columns of a :class:`~sescontacts.model.PatchBatch`, and the
rejects with their lines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any, Final, cast

import orjson

from ...model import ATTRIBUTES_MISSING, MISSING, UNSUBSCRIBE_MISSING, ContactPatch, dump_attributes
from ...validation import MAX_ATTRIBUTES_BYTES, MAX_ATTRIBUTES_DEPTH
from ..report import Reject
from .fields import BOOLS_FAST, FAST_EMAIL_LINES, fast_email_match

# Below this many characters, attributes text cannot exceed MAX_ATTRIBUTES_BYTES even at 4 bytes a character.
_SMALL_ATTRIBUTES: Final = MAX_ATTRIBUTES_BYTES // 4
# Digits become "0", everything else a space: a run of 19 digits is then one substring search away.
_DIGIT_MAP: Final = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN: Final = b"0" * 19
# Value types that cannot stand for a rounded integer.
_PLAIN_VALUES: Final = frozenset({str, int, bool, type(None)})
_loads = orjson.loads
_dumps = orjson.dumps
_decode = bytes.decode


@dataclass
class Rows:
    """One block's records in file order: accepted rows as columns, rejected rows as Rejects.

    ``records`` counts the records read (accepted and rejected; blank lines are not records). For a delete,
    only ``emails`` is filled (the addresses to delete).
    """

    emails: list[str] = field(default_factory=list)
    unsubscribe: list[int] = field(default_factory=list)
    attributes: list[str | None] = field(default_factory=list)
    topics: list[dict[str, str]] | None = None
    rejects: list[Reject] = field(default_factory=list)
    records: int = 0
    delete: bool = False

    def add(self, record: ContactPatch | str | Reject) -> None:
        """One record from a reader's per-row path."""
        self.records += 1
        if type(record) is ContactPatch:
            self.emails.append(record.email)
            unsubscribe = record.unsubscribe_all
            self.unsubscribe.append(UNSUBSCRIBE_MISSING if unsubscribe is MISSING else int(bool(unsubscribe)))
            attributes = record.attributes
            self.attributes.append(ATTRIBUTES_MISSING if attributes is MISSING else dump_attributes(attributes))
            preferences = dict(record.topic_preferences)
            if preferences and self.topics is None:
                self.topics = [{} for _ in range(len(self.emails) - 1)]
            if self.topics is not None:
                self.topics.append(preferences)
        elif type(record) is str:
            self.emails.append(record)
        else:
            assert isinstance(record, Reject)
            self.rejects.append(record)

    def extend(self, emails: list[str], unsubscribe: list[int] | None, attributes: list[str | None] | None) -> None:
        """Rows the fast checks accepted (None: the column is absent, so every row leaves it unchanged)."""
        n = len(emails)
        self.records += n
        self.emails += emails
        if not self.delete:
            self.unsubscribe += unsubscribe if unsubscribe is not None else [UNSUBSCRIBE_MISSING] * n
            self.attributes += attributes if attributes is not None else [ATTRIBUTES_MISSING] * n
            if self.topics is not None:
                self.topics += [{} for _ in range(n)]


def merge_rows(
    rows: Rows,
    count: int,
    slow: set[int],
    per_row: Callable[[int], ContactPatch | str | Reject | None],
    emails: list[str],
    unsubscribe: list[int] | None,
    attributes: list[str | None] | None,
) -> None:
    """Add a block of ``count`` raw rows to ``rows``: the fast columns for every row not in ``slow``, and
    ``per_row(i)`` (None: a blank line) for the others, in file order."""
    if not slow:
        rows.extend(emails, unsubscribe, attributes)
        return
    start = 0
    for i in sorted(slow):
        if i > start:
            rows.extend(
                emails[start:i],
                None if unsubscribe is None else unsubscribe[start:i],
                None if attributes is None else attributes[start:i],
            )
        record = per_row(i)
        if record is not None:
            rows.add(record)
        start = i + 1
    if start < count:
        rows.extend(
            emails[start:],
            None if unsubscribe is None else unsubscribe[start:],
            None if attributes is None else attributes[start:],
        )


def plain_addresses(emails: Sequence[str], slow: set[int], *, quoted: bool = False) -> None:
    """Add to ``slow`` the index of every address the fast pattern does not plainly accept (the reader's
    full check decides those). ``emails`` are already stripped where the reader strips. ``quoted``: a cell
    starting with ``'`` may carry the formula guard, so it goes to the reader too."""
    if not emails:
        return
    joined = "\n".join(emails) + "\n"
    if not joined.isascii():  # the pattern takes ASCII only: blank the others out, and keep the text one byte wide
        plain = list(emails)
        for i in falses(list(map(str.isascii, emails))):
            plain[i] = ""
        joined = "\n".join(plain) + "\n"
    if quoted and (joined[0] == "'" or "\n'" in joined):
        starting_with(emails, "'", slow)
    if joined.count("\n") != len(emails):  # a newline inside a cell: one address at a time
        slow.update(i for i, e in enumerate(emails) if fast_email_match(e) is None)
    else:
        end = len(joined)
        pos = _plain_lines_end(joined, 0)
        index = counted = 0
        while pos < end:  # the address starting at pos is not a plain one: mark it, go on after it
            index += joined.count("\n", counted, pos)
            slow.add(index)
            counted = joined.index("\n", pos) + 1
            index += 1
            pos = _plain_lines_end(joined, counted)
    if max(map(len, emails)) > 254:
        slow.update(i for i, e in enumerate(emails) if len(e) > 254)


def falses(flags: list[bool]) -> Iterator[int]:
    """The indices of the False entries, found by C-level search (a block has few)."""
    i = -1
    with contextlib.suppress(ValueError):
        while True:
            i = flags.index(False, i + 1)
            yield i


def _plain_lines_end(joined: str, pos: int) -> int:
    """Where the run of plain addresses starting at ``pos`` ends (the pattern matches the empty run too)."""
    found = FAST_EMAIL_LINES.match(joined, pos)
    return found.end() if found is not None else pos


def starting_with(cells: Sequence[str], prefix: str, slow: set[int]) -> None:
    """Add the index of every cell starting with ``prefix`` (a cell that may carry the formula guard)."""
    starts = list(map(str.startswith, cells, repeat(prefix)))
    if True in starts:
        slow.update(i for i, s in enumerate(starts) if s)


def plain_booleans(cells: Sequence[str], slow: set[int]) -> list[int]:
    """The unsubscribeAll cells as 0/1 where spelled the usual way; the others go to ``slow``."""
    values: list[bool | None] = list(map(BOOLS_FAST.get, cells))
    if None in values:
        slow.update(i for i, v in enumerate(values) if v is None)
        return [1 if v else 0 for v in values]
    return list(map(int, cast(list[bool], values)))


def plain_attributes(texts: Sequence[Any], slow: set[int], empty: str | None) -> list[str | None]:
    """Attributes texts as the JSON text the store writes, for every text that is plainly an object within
    the caps (short, shallow, no 19-digit number, valid JSON, an object), and ``empty`` for an empty text;
    every other index goes to ``slow`` (its entry is a placeholder)."""
    if not texts:
        return []
    odd: set[int] = set()  # texts not even to be parsed here
    if set(map(type, texts)) != {str}:
        odd.update(i for i, t in enumerate(texts) if type(t) is not str)
        texts = [t if type(t) is str else "" for t in texts]
    if max(map(len, texts)) > _SMALL_ATTRIBUTES:
        odd.update(i for i, t in enumerate(texts) if len(t) > _SMALL_ATTRIBUTES)
    if not odd:  # a text that may nest past the cap is never parsed here (its reader checks it first)
        braces = list(map(str.count, texts, repeat("{")))
        brackets = list(map(str.count, texts, repeat("[")))
        if max(braces) + max(brackets) > MAX_ATTRIBUTES_DEPTH:
            odd.update(i for i, (b, k) in enumerate(zip(braces, brackets, strict=True)) if b + k > MAX_ATTRIBUTES_DEPTH)
    else:
        odd.update(
            i for i, t in enumerate(texts) if i not in odd and t.count("{") + t.count("[") > MAX_ATTRIBUTES_DEPTH
        )
    blank: list[bool] | None = None
    if "" in texts:
        blank = [t == "" for t in texts]
    if odd or blank is not None:
        texts = ["{}" if i in odd or t == "" else t for i, t in enumerate(texts)]
        slow |= odd
    parsed = json_objects(texts, slow)
    # orjson reads an integer past 64 bits as a float, rounded: only a row holding a float (or a container,
    # which may hold one) can have met one, and only one whose text has 19 digits in a row did. The block's
    # text is searched for such a run first (one C pass over the bytes, a fifth of the walk over every value).
    if long_digit_run("\n".join(texts)) and not _PLAIN_VALUES.issuperset(
        map(type, chain.from_iterable(map(dict.values, parsed)))
    ):
        slow.update(
            i
            for i, (p, t) in enumerate(zip(parsed, texts, strict=True))
            if not _PLAIN_VALUES.issuperset(map(type, p.values())) and long_digit_run(t)
        )
    canonical: list[str | None] = list(map(_decode, map(_dumps, parsed)))
    if blank is not None:
        canonical = [empty if b else c for c, b in zip(canonical, blank, strict=True)]
    return canonical


def json_objects(texts: Sequence[str | bytes], slow: set[int]) -> list[Any]:
    """Each text parsed as JSON, one C call for the block when all parse; a text that does not parse, or is
    not an object, becomes ``{}`` and its index is added to ``slow`` (the per-row reader says why)."""
    try:
        parsed: list[Any] = list(map(_loads, texts))
    except orjson.JSONDecodeError:
        parsed = []
        for i, text in enumerate(texts):
            try:
                parsed.append(_loads(text))
            except orjson.JSONDecodeError:
                parsed.append({})
                slow.add(i)
    if set(map(type, parsed)) != {dict}:
        slow.update(i for i, p in enumerate(parsed) if type(p) is not dict)
        parsed = [p if type(p) is dict else {} for p in parsed]
    return parsed


def long_digit_run(text: str | bytes) -> bool:
    """:func:`validation.has_long_digit_run` for a whole block at once: two C calls over the bytes, whatever
    the count of shorter numbers (the regex it falls back on costs ~1 us a row once a block holds 19 digits)."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return _LONG_RUN in data.translate(_DIGIT_MAP)
