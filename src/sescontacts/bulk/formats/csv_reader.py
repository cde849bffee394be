"""The CSV reader: one record per row, as a patch, an address (for a delete) or a Reject naming the column.

The header is ``emailAddress,unsubscribeAll,attributesData[,topicPreferences.<Topic>...]``, matched
case-insensitively; UTF-8 with or without BOM, CRLF/LF/CR, ``,`` or ``;`` or tab (``detect.detect_delimiter``).
Cells we wrote may carry ``fields.encode_cell``'s quote, which is undone here.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from ...model import MISSING, Missing
from ...validation import attributes_problem
from ..report import FileError, Reject
from .detect import Scan, detect_delimiter, utf8_text
from .fields import (
    ATTRIBUTES,
    BOOLS_FAST,
    EMAIL,
    KNOWN_COLUMNS,
    STATUSES,
    TOPIC_PREFIX,
    UNSUBSCRIBE_ALL,
    ReadOptions,
    Record,
    check_address,
    decode_cell,
    fast_email_match,
    make_patch,
    parse_bool,
    plainly_within_caps,
)

# A field may hold a large attributes value (rejected per row above MAX_ATTRIBUTES_BYTES); beyond this
# the file is almost certainly broken (an unterminated quote swallowing the rest), and memory must stay flat.
MAX_FIELD_BYTES: Final = 32 * 1024 * 1024
csv.field_size_limit(MAX_FIELD_BYTES)


@dataclass
class _CsvPlan:
    width: int
    email: int = -1
    unsubscribe: int = -1
    attributes: int = -1
    topics: list[tuple[int, str, str]] = field(default_factory=list)
    extra: list[tuple[int, str]] = field(default_factory=list)


def read_csv(
    raw: BinaryIO, *, path: Path, name: str, scanned: Scan, options: ReadOptions, columns: list[str], skip: int
) -> Iterator[Record]:
    """The records of the CSV file open as ``raw``, past the first ``skip`` (resume). ``columns`` receives the
    header's names as the product spells them (the preview shows them)."""
    delimiter = detect_delimiter(name, scanned.head)
    if scanned.odd_quotes:
        _find_unterminated_quote(path, name, delimiter)
    with utf8_text(raw) as text:
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise FileError("the file is empty", file=name, line=1) from None
        plan = _header_plan(header, name, options, columns)
        yield from _rows(reader, plan, name, options, skip)


def _header_plan(header: list[str], name: str, options: ReadOptions, columns: list[str]) -> _CsvPlan:
    plan = _CsvPlan(width=len(header))
    seen: dict[str, int] = {}
    unknown: list[tuple[int, str]] = []
    for index, raw_name in enumerate(header):
        column = raw_name.strip()
        lowered = column.lower()
        if lowered in seen:
            raise FileError(f"the column {column!r} appears twice in the header", file=name, line=1, column=index + 1)
        seen[lowered] = index
        known = KNOWN_COLUMNS.get(lowered)
        if known is not None:
            columns.append(known)
            if known == EMAIL:
                plan.email = index
            elif known == UNSUBSCRIBE_ALL:
                plan.unsubscribe = index
            else:
                plan.attributes = index
        elif lowered.startswith(TOPIC_PREFIX.lower()) and len(column) > len(TOPIC_PREFIX):
            topic = column[len(TOPIC_PREFIX) :]
            plan.topics.append((index, topic, TOPIC_PREFIX + topic))
            columns.append(TOPIC_PREFIX + topic)
        elif options.action == "delete":
            continue  # a delete reads addresses only; other columns are ignored
        elif options.extra_columns_as_attributes and column:
            plan.extra.append((index, column))
            columns.append(column)
        else:
            unknown.append((index, column))
    if plan.email < 0:
        looks_like_data = any("@" in h for h in header)
        hint = (
            "the first line must be a header such as emailAddress,unsubscribeAll,attributesData"
            if looks_like_data
            else "the header has " + ", ".join(h.strip() for h in header)
        )
        raise FileError(f"no emailAddress column ({hint})", file=name, line=1)
    if unknown:
        index, column = unknown[0]
        shown = column or f"(empty name, column {index + 1})"
        raise FileError(
            f"unknown column {shown!r}: the header may have emailAddress, unsubscribeAll, "
            "attributesData and topicPreferences.<Topic> columns (or import other columns as "
            "attributes)",
            file=name,
            line=1,
            column=index + 1,
        )
    return plan


def _rows(reader: Any, plan: _CsvPlan, name: str, options: ReadOptions, skip: int) -> Iterator[Record]:
    delete = options.action == "delete"
    merge = options.merge_attributes
    known_topics = options.topics
    ei, ui, ai, width = plan.email, plan.unsubscribe, plan.attributes, plan.width
    topics, extra = plan.topics, plan.extra
    plain = not topics and not extra
    last_line = reader.line_num
    seen = 0
    fast_bool = BOOLS_FAST
    fast_email = fast_email_match
    patch_new = make_patch
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    plain_attributes = plainly_within_caps
    empty: dict[str, str] = {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileError(f"{exc} (an unterminated quote?)", file=name, line=last_line + 1) from None
        line = last_line + 1
        last_line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip() and width > 1):
            continue  # blank line
        seen += 1
        if seen <= skip:
            continue
        n = len(row)
        if n > width:
            yield (
                line,
                Reject(
                    line,
                    decode_cell(row[ei]).strip() if ei < n else "",
                    "",
                    f"the row has {n} fields but the header has {width}",
                ),
            )
            continue
        if n < width:
            row = row + [""] * (width - n)
        email = row[ei]
        # Cells we wrote may carry encode_cell's quote. Only the address, attributes and extra columns
        # can: no valid boolean or status starts with a quote or a formula character.
        if email[:1] == "'":
            email = decode_cell(email)
        if not (len(email) <= 254 and fast_email(email)):
            email = email.strip()
            problem = check_address(email)
            if problem is not None:
                yield line, Reject(line, email, EMAIL, problem)
                continue
        if delete:
            yield line, email
            continue
        unsubscribe: bool | Missing = MISSING
        if ui >= 0:
            value = fast_bool.get(row[ui])
            if value is None:
                value = parse_bool(row[ui])
                if value is None:
                    yield (
                        line,
                        Reject(line, email, UNSUBSCRIBE_ALL, f"unsubscribeAll must be true or false, not {row[ui]!r}"),
                    )
                    continue
            unsubscribe = value
        attributes: dict[str, object] | Missing | None = MISSING
        if ai >= 0:
            text = row[ai]
            if text[:1] == "'":
                text = decode_cell(text)
            if not text or text.isspace():
                attributes = MISSING if merge else None
            else:
                parsed = None
                if plain_attributes(text):  # the common case; anything odd gets the full check
                    try:
                        parsed = loads(text)
                    except decode_error:
                        parsed = None
                    if type(parsed) is not dict:
                        parsed = None
                if parsed is None:
                    parsed, problem = attributes_problem(text)
                    if problem is not None:
                        yield line, Reject(line, email, ATTRIBUTES, problem)
                        continue
                attributes = parsed
        if plain:
            yield line, patch_new(email, unsubscribe, attributes, empty)
            continue
        preferences: dict[str, str] = {}
        bad: Reject | None = None
        for index, topic, column in topics:
            status = row[index].strip()
            if not status:
                continue
            found = STATUSES.get(status) or STATUSES.get(status.upper())
            if found is None:
                bad = Reject(line, email, column, f"the status must be OPT_IN or OPT_OUT, not {status!r}")
                break
            if known_topics is not None and topic not in known_topics:
                bad = Reject(line, email, column, f"the list has no topic {topic!r}")
                break
            preferences[topic] = found
        if bad is not None:
            yield line, bad
            continue
        if extra:
            values = {col: decode_cell(row[index]) for index, col in extra if row[index] != ""}
            if values:
                base = attributes if isinstance(attributes, dict) else {}
                merged: dict[str, object] = dict(values)
                merged.update(base)
                attributes = merged
        yield line, patch_new(email, unsubscribe, attributes, preferences)


# -- JSON --


def _find_unterminated_quote(path: Path, name: str, delimiter: str) -> None:
    """The file has an odd number of quote characters: find a quoted field that never ends, if any.
    (Stray quotes inside unquoted fields are legal in practice and also make the count odd.)"""
    with open(path, "rb") as raw, utf8_text(raw) as text:
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        last = 0
        while True:
            try:
                next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if "unexpected end of data" in str(exc) or "field larger" in str(exc):
                    raise FileError(
                        "unterminated quote: this field's opening \" is never closed", file=name, line=last + 1
                    ) from None
                last = reader.line_num
                continue
            last = reader.line_num
