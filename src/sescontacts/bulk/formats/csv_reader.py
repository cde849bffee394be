"""The CSV reader: one record per row, as a patch, an address (for a delete) or a Reject naming the column.

The header is ``emailAddress,unsubscribeAll,attributesData[,topicPreferences.<Topic>...]``, matched
case-insensitively; UTF-8 with or without BOM, CRLF/LF/CR, ``,`` or ``;`` or tab (``detect.detect_delimiter``).
Cells we wrote may carry ``fields.encode_cell``'s quote, which is undone here.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from ...model import ATTRIBUTES_MISSING, MISSING, ContactPatch, Missing
from ...validation import MAX_ATTRIBUTES_BYTES, attributes_problem
from ..report import FileError, Reject
from .columns import Rows, merge_rows, plain_addresses, plain_attributes, plain_booleans
from .detect import Scan, detect_delimiter, detect_format, peek, utf8_text
from .fields import (
    ATTRIBUTES,
    BOOLS_FAST,
    EMAIL,
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
from .mapping import (
    ColumnField,
    MappingError,
    is_page_header,
    parse_field,
    recognise_header,
    topic_status,
    typed_value,
)

# A field may hold a large attributes value (rejected per row above MAX_ATTRIBUTES_BYTES); beyond this
# the file is almost certainly broken (an unterminated quote swallowing the rest), and memory must stay flat.
MAX_FIELD_BYTES: Final = 32 * 1024 * 1024
csv.field_size_limit(MAX_FIELD_BYTES)


@dataclass
class _CsvPlan:
    """Where each field is in a row. ``*_column``: the names rejects give (the page's names, else the file's);
    ``topics``: (index, topic, column, lenient: a mapped column, which also takes yes/no values);
    ``extra``: attribute columns (index, key, column, type)."""

    width: int
    email: int = -1
    unsubscribe: int = -1
    attributes: int = -1
    email_column: str = EMAIL
    unsubscribe_column: str = UNSUBSCRIBE_ALL
    attributes_column: str = ATTRIBUTES
    topics: list[tuple[int, str, str, bool]] = field(default_factory=list)
    extra: list[tuple[int, str, str, str]] = field(default_factory=list)


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
    """Each field's column, from the mapping (``options.mapping``) where it names the column, else from the
    header's names (``mapping.recognise_header``); FileError for a header that cannot be read."""
    plan = _CsvPlan(width=len(header))
    mapped = _mapped_fields(options.mapping, name) if options.mapping is not None else {}
    recognised = recognise_header(header)
    seen: dict[str, int] = {}
    unknown: list[tuple[int, str]] = []
    for index, raw_name in enumerate(header):
        column = raw_name.strip()
        lowered = column.lower()
        if lowered in seen:
            raise FileError(f"the column {column!r} appears twice in the header", file=name, line=1, column=index + 1)
        seen[lowered] = index
        if not column and options.mapping is not None:
            continue  # a mapping cannot name a column without a name (a spreadsheet's trailing comma): skipped
        entry = mapped.pop(lowered, None)
        chosen = entry[1] if entry is not None else None
        found = chosen or recognised[index]
        if found is None:
            if options.action == "delete":
                continue  # a delete reads addresses only; other columns are ignored
            if options.extra_columns_as_attributes and column:
                found = ColumnField("attribute", column)
            else:
                unknown.append((index, column))
                continue
        _place(plan, found, index, column, explicit=chosen is not None, name=name, options=options, columns=columns)
    if mapped:
        missing = next(iter(mapped.values()))[0]
        raise FileError(
            f"the mapping names a column the file does not have: {missing!r} (the header has "
            + ", ".join(h.strip() for h in header)
            + ")",
            file=name,
            line=1,
        )
    if plan.email < 0:
        looks_like_data = any("@" in h for h in header)
        hint = (
            "the first line must be a header such as emailAddress,unsubscribeAll,attributesData"
            if looks_like_data
            else "the header has " + ", ".join(h.strip() for h in header) + "; map the address column to email"
        )
        raise FileError(f"no emailAddress column ({hint})", file=name, line=1)
    if unknown:
        index, column = unknown[0]
        shown = column or f"(empty name, column {index + 1})"
        raise FileError(
            f"unknown column {shown!r}: the header may have emailAddress, unsubscribeAll, "
            "attributesData and topicPreferences.<Topic> columns (or import other columns as "
            "attributes, or map each column to a field)",
            file=name,
            line=1,
            column=index + 1,
        )
    return plan


def _mapped_fields(mapping: dict[str, str], name: str) -> dict[str, tuple[str, ColumnField]]:
    """The mapping by lower-case column name: (the column as given, its field). A spec that means nothing is a
    FileError naming the column (the CLI checks specs before this; a stored job's are checked here)."""
    fields: dict[str, tuple[str, ColumnField]] = {}
    for column, spec in mapping.items():
        try:
            fields[column.strip().lower()] = (column.strip(), parse_field(spec, column.strip()))
        except MappingError as exc:
            raise FileError(exc.message, file=name, line=1) from None
    return fields


# The fields one column holds: the plan's slot (index, and its ``_column`` name), the page's name, what to call it.
_ONE_COLUMN_FIELDS: Final = {
    "email": ("email", EMAIL, "the address"),
    "unsubscribeAll": ("unsubscribe", UNSUBSCRIBE_ALL, "unsubscribe-all"),
    "attributesData": ("attributes", ATTRIBUTES, "the attributes object"),
}


def _place(
    plan: _CsvPlan,
    found: ColumnField,
    index: int,
    column: str,
    *,
    explicit: bool,
    name: str,
    options: ReadOptions,
    columns: list[str],
) -> None:
    """Put one column's field into the plan; FileError when two columns claim one field."""
    lowered = column.lower()

    def taken(what: str, other: str) -> FileError:
        return FileError(
            f"the columns {other!r} and {column!r} are both {what}; map one of them to skip",
            file=name,
            line=1,
            column=index + 1,
        )

    kind = found.kind
    single = _ONE_COLUMN_FIELDS.get(kind)
    if single is not None:
        slot, page_name, what = single
        if getattr(plan, slot) >= 0:
            raise taken(what, getattr(plan, slot + "_column"))
        label = page_name if lowered == page_name.lower() else column
        setattr(plan, slot, index)
        setattr(plan, slot + "_column", label)
        columns.append(label)
    elif kind == "skip" or (options.action == "delete" and explicit):
        return
    elif kind == "topic":
        for _i, topic, other, _lenient in plan.topics:
            if topic == found.name:
                raise taken(f"topic {topic!r}", other)
        if explicit and options.topics is not None and found.name not in options.topics:
            known = ", ".join(sorted(options.topics)) or "none"
            raise FileError(
                f"column {column!r} is mapped to topic {found.name!r}, which the list does not have (its topics: "
                f"{known})",
                file=name,
                line=1,
                column=index + 1,
            )
        label = column if explicit else TOPIC_PREFIX + found.name
        plan.topics.append((index, found.name, label, explicit))
        columns.append(label)
    else:
        for _i, key, other, _type in plan.extra:
            if key == found.name:
                raise taken(f"attribute {key!r}", other)
        plan.extra.append((index, found.name, column, found.type))
        columns.append(column)


def _rows(reader: Any, plan: _CsvPlan, name: str, options: ReadOptions, skip: int) -> Iterator[Record]:
    record = _RowReader(plan, name, options).record
    last_line = reader.line_num
    seen = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileError(f"{exc} (an unterminated quote?)", file=name, line=last_line + 1) from None
        line = last_line + 1
        last_line = reader.line_num
        found = record(row, line)
        if found is None:
            continue  # blank line
        seen += 1
        if seen <= skip:
            continue
        yield line, found


class _RowReader:
    """One CSV row to its record: the authority on what a row means (the block reader's fast checks only
    take the rows this would accept, and produce what it would)."""

    def __init__(self, plan: _CsvPlan, name: str, options: ReadOptions) -> None:
        self.plan = plan
        self.name = name
        self.delete = options.action == "delete"
        self.merge = options.merge_attributes
        self.known_topics = options.topics
        self.plain = not plan.topics and not plan.extra

    def blank(self, row: list[str]) -> bool:
        return not row or (len(row) == 1 and not row[0].strip() and self.plan.width > 1)

    def record(self, row: list[str], line: int) -> ContactPatch | str | Reject | None:
        """The row's record, or None for a blank line (not a record)."""
        plan = self.plan
        ei, ui, ai, width = plan.email, plan.unsubscribe, plan.attributes, plan.width
        if self.blank(row):
            return None
        n = len(row)
        if n > width:
            return Reject(
                line,
                decode_cell(row[ei]).strip() if ei < n else "",
                "",
                f"the row has {n} fields but the header has {width}",
            )
        if n < width:
            row = row + [""] * (width - n)
        email = row[ei]
        # Cells we wrote may carry encode_cell's quote. Only the address, attributes and extra columns
        # can: no valid boolean or status starts with a quote or a formula character.
        if email[:1] == "'":
            email = decode_cell(email)
        if not (len(email) <= 254 and fast_email_match(email)):
            email = email.strip()
            problem = check_address(email)
            if problem is not None:
                return Reject(line, email, plan.email_column, problem)
        if self.delete:
            return email
        unsubscribe: bool | Missing = MISSING
        if ui >= 0:
            value = BOOLS_FAST.get(row[ui])
            if value is None:
                value = parse_bool(row[ui])
                if value is None:
                    return Reject(
                        line,
                        email,
                        plan.unsubscribe_column,
                        f"{plan.unsubscribe_column} must be true or false, not {row[ui]!r}",
                    )
            unsubscribe = value
        attributes: dict[str, object] | Missing | None = MISSING
        if ai >= 0:
            text = row[ai]
            if text[:1] == "'":
                text = decode_cell(text)
            if not text or text.isspace():
                attributes = MISSING if self.merge else None
            else:
                parsed = None
                if plainly_within_caps(text):  # the common case; anything odd gets the full check
                    try:
                        parsed = orjson.loads(text)
                    except orjson.JSONDecodeError:
                        parsed = None
                    if type(parsed) is not dict:
                        parsed = None
                if parsed is None:
                    parsed, problem = attributes_problem(text)
                    if problem is not None:
                        return Reject(line, email, plan.attributes_column, problem)
                attributes = parsed
        if self.plain:
            return make_patch(email, unsubscribe, attributes, {})
        preferences: dict[str, str] = {}
        for index, topic, column, lenient in plan.topics:
            status = row[index].strip()
            if not status:
                continue
            found = STATUSES.get(status) or STATUSES.get(status.upper())
            if found is None and lenient:
                found = topic_status(status)
            if found is None:
                also = " (or yes/no, true/false, 1/0)" if lenient else ""
                return Reject(line, email, column, f"the status must be OPT_IN or OPT_OUT{also}, not {status!r}")
            if self.known_topics is not None and topic not in self.known_topics:
                return Reject(line, email, column, f"the list has no topic {topic!r}")
            preferences[topic] = found
        if plan.extra:
            values: dict[str, object] = {}
            size = 0
            for index, key, column, value_type in plan.extra:
                cell = row[index]
                if cell == "":
                    continue
                size += len(cell)
                if value_type == "string":
                    values[key] = decode_cell(cell)
                elif cell.strip():
                    typed, problem = typed_value(cell, value_type)
                    if problem is not None:
                        return Reject(line, email, column, f"{column} {problem}")
                    values[key] = typed
            if size > MAX_ATTRIBUTES_BYTES // 4:  # columns long enough together to pass the size cap: check it
                whole = {**values, **(attributes if isinstance(attributes, dict) else {})}
                _parsed, problem = attributes_problem(orjson.dumps(whole).decode())
                if problem is not None:
                    return Reject(line, email, plan.extra[0][2], problem)
            if values:
                base = attributes if isinstance(attributes, dict) else {}
                merged: dict[str, object] = dict(values)
                merged.update(base)
                attributes = merged
        return make_patch(email, unsubscribe, attributes, preferences)


def read_csv_blocks(
    raw: BinaryIO,
    *,
    path: Path,
    name: str,
    scanned: Scan,
    options: ReadOptions,
    columns: list[str],
    skip: int,
    block_rows: int,
    position: Callable[[], int],
) -> Iterator[tuple[Rows, int]]:
    """The records of the CSV file past the first ``skip``, ``block_rows`` raw rows at a time, as (block,
    bytes read so far). The same records as :func:`read_csv`, in the same order, with the same lines. An
    unterminated quote is the caller's to look for first (:func:`find_unterminated_quote`)."""
    delimiter = detect_delimiter(name, scanned.head)
    with utf8_text(raw) as text:
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise FileError("the file is empty", file=name, line=1) from None
        plan = _header_plan(header, name, options, columns)
        row_reader = _RowReader(plan, name, options)
        blank = row_reader.blank
        width = plan.width
        while True:
            start = reader.line_num
            block: list[list[str]] = []
            records = 0
            try:
                while records < block_rows:  # top up past blank lines: a block is block_rows records
                    size = len(block)
                    block.extend(islice(reader, block_rows - records))
                    if len(block) == size:
                        break
                    added = block[size:]
                    if set(map(len, added)) == {width} and width > 1:  # no blank line among them
                        records += len(added)
                    else:
                        records += sum(1 for row in added if not blank(row))
            except csv.Error as exc:
                lines = _start_lines(block, start, None)
                bad = (lines[-1] + _span(block[-1])) if block else start + 1
                raise FileError(f"{exc} (an unterminated quote?)", file=name, line=bad) from None
            if not block:
                return
            lines = _start_lines(block, start, reader.line_num)
            if skip:
                taken = 0
                while taken < len(block) and skip:
                    if not blank(block[taken]):
                        skip -= 1
                    taken += 1
                block, lines = block[taken:], lines[taken:]
                if not block:
                    continue
            yield _block(block, lines, row_reader), position()


def _span(row: list[str]) -> int:
    """How many lines a row took: one, plus the line ends inside its quoted cells (as the csv module counts
    them, with universal newlines: CRLF, LF or a lone CR)."""
    breaks = 0
    for cell in row:
        if "\n" in cell or "\r" in cell:
            breaks += cell.count("\n") + cell.count("\r") - cell.count("\r\n")
    return 1 + breaks


def _start_lines(block: list[list[str]], start: int, end: int | None) -> list[int]:
    """Each row's first line, the block having started after line ``start`` (and ended on ``end``)."""
    if end is not None and end - start == len(block):
        return list(range(start + 1, end + 1))
    lines = []
    line = start + 1
    for row in block:
        lines.append(line)
        line += _span(row)
    return lines


def _block(block: list[list[str]], lines: list[int], row_reader: _RowReader) -> Rows:
    """One block of raw rows as Rows: column checks at C speed, the per-row reader for any row they do not
    plainly accept."""
    rows = Rows(delete=row_reader.delete)
    plan = row_reader.plan
    n = len(block)

    def per_row(i: int) -> ContactPatch | str | Reject | None:
        return row_reader.record(block[i], lines[i])

    if not row_reader.plain:
        for i in range(n):
            found = per_row(i)
            if found is not None:
                rows.add(found)
        return rows
    slow: set[int] = set()
    width = plan.width
    if set(map(len, block)) != {width}:
        slow.update(i for i, row in enumerate(block) if len(row) != width)
        block_cells = [row if len(row) == width else [""] * width for row in block]
    else:
        block_cells = block
    emails = list(map(itemgetter(plan.email), block_cells))
    plain_addresses(emails, slow, quoted=True)
    unsubscribe = None
    attributes = None
    if not row_reader.delete:
        if plan.unsubscribe >= 0:
            unsubscribe = plain_booleans(list(map(itemgetter(plan.unsubscribe), block_cells)), slow)
        if plan.attributes >= 0:
            # A text starting with the formula guard's quote is not JSON: the per-row reader gets it anyway.
            texts = list(map(itemgetter(plan.attributes), block_cells))
            attributes = plain_attributes(texts, slow, ATTRIBUTES_MISSING if row_reader.merge else None)
    merge_rows(rows, n, slow, per_row, emails, unsubscribe, attributes)
    return rows


# -- JSON --


def find_unterminated_quote(path: Path, name: str, scanned: Scan) -> None:
    """FileError for a quoted field that never ends, when the scan counted an odd number of quotes."""
    if scanned.odd_quotes:
        _find_unterminated_quote(path, name, detect_delimiter(name, scanned.head))


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


def read_head(path: Path, name: str, rows: int) -> tuple[list[str], list[list[str]]] | None:
    """A CSV file's header and first ``rows`` rows as written (the console's mapping step shows them), or None
    for a file that is not CSV. Reads only the head of the file; FileError for one that cannot be read."""
    scanned = peek(path, name=name)
    if detect_format(name, scanned.head) != "csv":
        return None
    with open(path, "rb") as raw, utf8_text(raw) as text:
        reader = csv.reader(text, delimiter=detect_delimiter(name, scanned.head))
        try:
            header = next(reader, None)
            if header is None:
                raise FileError("the file is empty", file=name, line=1)
            return [column.strip() for column in header], [
                [decode_cell(c) for c in row] for row in islice(reader, rows)
            ]
        except (csv.Error, UnicodeDecodeError) as exc:
            raise FileError(f"the file's first lines cannot be read: {exc}", file=name, line=1) from None


def needs_mapping(path: Path, name: str) -> bool:
    """Whether the file is a CSV whose header is not the page's own: the console then asks for a mapping. A
    file that cannot be read does not (the dry run says what is wrong with it)."""
    try:
        head = read_head(path, name, 0)
    except FileError:
        return False
    return head is not None and not is_page_header(head[0])
