"""The JSON reader: JSON Lines (SES's import format), a JSON array of objects (streamed with ijson), or
concatenated (pretty-printed) objects like the page's example, whose trailing comma is tolerated with a
warning naming its line, because users paste that example as it is.

Which of the three a file is, ``detect.detect_json_kind`` decides; each object becomes a record through
``json_object.contact_from_object``.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from itertools import repeat
from pathlib import Path
from typing import IO, Any, BinaryIO, Final

import orjson

from ...model import ATTRIBUTES_MISSING, UNSUBSCRIBE_MISSING, ContactPatch
from ...validation import inexact_number_problem, json_type_name
from ..report import FileError, Reject
from .columns import Rows, json_objects, long_digit_run, merge_rows, plain_addresses, plain_attributes
from .detect import line_col, utf8_text
from .fields import ATTRIBUTES, EMAIL, UNSUBSCRIBE_ALL, ReadOptions, Record
from .json_object import contact_from_object
from .json_syntax import (
    CountingReader,
    closer,
    drop_trailing_commas,
    guess_email,
    json_values,
    load_deep,
    position,
    reason,
    split_objects,
    too_deep_for_orjson,
)


def read_json(
    raw: BinaryIO,
    *,
    path: Path,
    name: str,
    kind: str,
    options: ReadOptions,
    warn: Callable[[str], None],
    skip: int,
) -> Iterator[Record]:
    """The records of the JSON file open as ``raw`` (``kind`` from ``detect_json_kind``), past the first
    ``skip`` (resume). ``warn`` receives each tolerated trailing comma."""
    if kind == "array":
        yield from _array(raw, path, name, options, skip)
    elif kind == "lines":
        yield from _lines(raw, options, warn, skip)
    else:
        with utf8_text(raw) as text:
            yield from _stream(text, name, options, warn, skip)


def _lines(raw: BinaryIO, options: ReadOptions, warn: Callable[[str], None], skip: int) -> Iterator[Record]:
    """Lines as bytes, straight to orjson (the scan already proved the file is UTF-8): no text decoding."""
    record = _LineReader(options, warn).record
    seen = 0
    for number, line_bytes in enumerate(raw, start=1):
        if number == 1:
            line_bytes = line_bytes.removeprefix(codecs.BOM_UTF8)
        if not line_bytes or line_bytes.isspace():
            continue
        seen += 1
        if seen <= skip:
            continue
        yield number, record(number, line_bytes)


class _LineReader:
    """One JSON Lines line (not blank) to its record: the authority the block reader's fast checks follow."""

    def __init__(self, options: ReadOptions, warn: Callable[[str], None]) -> None:
        self.options = options
        self.warn = warn

    def record(self, number: int, line_bytes: bytes) -> ContactPatch | str | Reject:
        try:
            obj = orjson.loads(line_bytes)
        except orjson.JSONDecodeError as exc:
            line_text = line_bytes.decode("utf-8")
            repaired, commas = drop_trailing_commas(line_text)
            try:
                obj = orjson.loads(repaired) if commas else None
            except orjson.JSONDecodeError:
                obj = None
            if obj is None and too_deep_for_orjson(exc):
                obj = load_deep(repaired)
            if obj is None:
                return Reject(number, guess_email(line_text), "", f"not valid JSON: {reason(exc)}")
            for pos in commas:
                self.warn(f"line {number}: trailing comma before {closer(line_text, pos)!r} ignored")
        if type(obj) is not dict:
            return Reject(number, "", "", f"expected a JSON object, found {json_type_name(obj)}")
        if (problem := inexact_number_problem(line_bytes)) is not None:  # orjson rounded a number in it
            return Reject(number, guess_email(line_bytes.decode("utf-8")), "", problem)
        return contact_from_object(obj, number, self.options)


# The members a JSON Lines record holds in the usual case (SES's spelling, no topics): read column by column.
_FAST_KEYS: Final = frozenset({EMAIL, UNSUBSCRIBE_ALL, ATTRIBUTES})
_ABSENT: Final = object()
_UNSUBSCRIBE_CODES: Final = {True: 1, False: 0, None: 0, _ABSENT: UNSUBSCRIBE_MISSING}
_FAST_UNSUBSCRIBE_TYPES: Final = frozenset({bool, type(None), object})


def read_json_lines_blocks(
    raw: BinaryIO,
    *,
    options: ReadOptions,
    warn: Callable[[str], None],
    skip: int,
    block_rows: int,
) -> Iterator[tuple[Rows, int]]:
    """The records of a JSON Lines file past the first ``skip``, ``block_rows`` records at a time, as (block,
    bytes read so far): the same records as :func:`read_json` gives, with the same lines."""
    line_reader = _LineReader(options, warn)
    number = 0  # lines read before ``pending``
    pending: list[bytes] = []
    ended = False
    while True:
        # A block is ``block_rows`` records (blank lines are none): lines are read ahead a MiB at a time.
        lines: list[bytes] = []
        records = 0
        while records < block_rows:
            if not pending:
                if ended:
                    break
                pending = raw.readlines(1 << 20)
                if not pending:
                    ended = True
                    break
                if number == 0 and not lines:
                    pending[0] = pending[0].removeprefix(codecs.BOM_UTF8)
            take = min(len(pending), block_rows - records)
            if True in map(bytes.isspace, pending[:take]):  # blank lines are no records: count line by line
                take = 0
                while take < len(pending) and records < block_rows:
                    if not pending[take].isspace():
                        records += 1
                    take += 1
            else:
                records += take
            lines += pending[:take]
            del pending[:take]
        if not lines:
            return
        first = number + 1
        number += len(lines)
        if skip:
            taken = 0
            while taken < len(lines) and skip:
                if lines[taken] and not lines[taken].isspace():
                    skip -= 1
                taken += 1
            lines, first = lines[taken:], first + taken
            if not lines:
                continue
        yield _block(lines, first, line_reader), raw.tell() - sum(map(len, pending))


def _block(lines: list[bytes], first: int, line_reader: _LineReader) -> Rows:
    options = line_reader.options
    delete = options.action == "delete"
    rows = Rows(delete=delete)
    n = len(lines)

    def per_row(i: int) -> ContactPatch | str | Reject | None:
        line = lines[i]
        if not line or line.isspace():
            return None
        return line_reader.record(first + i, line)

    slow: set[int] = set()
    objs = json_objects(lines, slow)
    if not all(map(_FAST_KEYS.issuperset, objs)):
        slow.update(i for i, obj in enumerate(objs) if not _FAST_KEYS.issuperset(obj))
    if long_digit_run(b"".join(lines)):  # orjson may have rounded a number: the per-row check looks closer
        slow.update(i for i, line in enumerate(lines) if long_digit_run(line))
    emails: list[Any] = list(map(dict.get, objs, repeat(EMAIL)))
    if set(map(type, emails)) != {str}:
        slow.update(i for i, e in enumerate(emails) if type(e) is not str)
        emails = [e if type(e) is str else "" for e in emails]
    emails = list(map(str.strip, emails))
    plain_addresses(emails, slow)
    unsubscribe = None
    attributes = None
    if not delete:
        values = list(map(dict.get, objs, repeat(UNSUBSCRIBE_ALL), repeat(_ABSENT)))
        if not _FAST_UNSUBSCRIBE_TYPES.issuperset(map(type, values)):
            slow.update(i for i, v in enumerate(values) if type(v) not in _FAST_UNSUBSCRIBE_TYPES)
            values = [v if type(v) in _FAST_UNSUBSCRIBE_TYPES else None for v in values]
        unsubscribe = list(map(_UNSUBSCRIBE_CODES.__getitem__, values))
        given = ATTRIBUTES_MISSING if options.merge_attributes else None
        texts: list[Any] = list(map(dict.get, objs, repeat(ATTRIBUTES), repeat(_ABSENT)))
        unset = [(i, t is _ABSENT) for i, t in enumerate(texts) if t is _ABSENT or t is None]
        for i, _ in unset:
            texts[i] = ""
        attributes = plain_attributes(texts, slow, given)
        for i, absent in unset:
            attributes[i] = ATTRIBUTES_MISSING if absent else given
    merge_rows(rows, n, slow, per_row, emails, unsubscribe, attributes)
    return rows


def _stream(text: IO[str], name: str, options: ReadOptions, warn: Callable[[str], None], skip: int) -> Iterator[Record]:
    seen = 0
    for start_line, start_col, chunk in split_objects(text, name):
        seen += 1
        try:
            obj = orjson.loads(chunk)
        except orjson.JSONDecodeError as exc:
            repaired, commas = drop_trailing_commas(chunk)
            try:
                obj = orjson.loads(repaired) if commas else None
            except orjson.JSONDecodeError:
                obj = None
            if obj is None and too_deep_for_orjson(exc):  # _split_objects found its end: read on past it
                obj = load_deep(repaired)
            if obj is None:
                line, col = position(start_line, start_col, chunk, exc.pos)
                raise FileError(f"not valid JSON: {reason(exc)}", file=name, line=line, column=col) from None
            if seen > skip:
                for pos in commas:
                    line, _ = position(start_line, start_col, chunk, pos)
                    warn(f"line {line}: trailing comma before {closer(chunk, pos)!r} ignored")
        if seen <= skip:
            continue
        if not isinstance(obj, dict):
            yield start_line, Reject(start_line, "", "", f"expected a JSON object, found {json_type_name(obj)}")
            continue
        if (problem := inexact_number_problem(chunk)) is not None:  # orjson rounded a number in it
            yield start_line, Reject(start_line, guess_email(chunk), "", problem)
            continue
        yield start_line, contact_from_object(obj, start_line, options)


def _array(raw: BinaryIO, path: Path, name: str, options: ReadOptions, skip: int) -> Iterator[Record]:
    import ijson

    counter = CountingReader(raw)
    items = json_values(ijson.basic_parse(counter, use_float=True), item_depth=1)
    number = 0
    while True:
        try:
            obj = next(items)
        except StopIteration:
            return
        except ijson.JSONError as exc:
            line, col = line_col(path, max(0, counter.consumed - 1))
            raise FileError(f"not valid JSON near here: {exc}", file=name, line=line, column=col) from None
        number += 1
        if number <= skip:
            continue
        if not isinstance(obj, dict):
            yield number, Reject(number, "", "", f"expected a JSON object, found {json_type_name(obj)}")
            continue
        yield number, contact_from_object(obj, number, options)
