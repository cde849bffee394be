"""Streaming readers and writers for the bulk file formats: CSV and JSON, as the product page shows them.

Reading happens in two passes over the bytes, never holding the file in memory:

1. :func:`scan` (C-speed: hashing, UTF-8 decoding, byte counts) finds what makes a whole file unusable -
   binary content, UTF-16, invalid UTF-8, an unterminated quote - and its line and column, *before* the
   importer writes anything. It also hashes the file (the job record keeps the sha256).
2. :class:`Reader` turns each record into a :class:`~sescontacts.model.ContactPatch` (or, for deletes, an
   address) or a :class:`~sescontacts.bulk.report.Reject` naming line, address, column and reason. A bad row
   never stops the file.

CSV: header ``emailAddress,unsubscribeAll,attributesData[,topicPreferences.<Topic>...]`` matched
case-insensitively, UTF-8 with or without BOM, CRLF/LF/CR, ``,`` or ``;`` or tab (detected from the header).
JSON: JSON Lines (SES's import format), a JSON array of objects (streamed with ijson), or concatenated
(pretty-printed) objects like the page's example - whose trailing comma is tolerated with a warning naming
its line, because users paste that example as it is.

Every CSV cell we write goes through :func:`encode_cell`, so that a spreadsheet shows it rather than runs it;
the CSV reader undoes that with :func:`decode_cell`, so an export re-imports exactly.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, Final

import orjson

from ..model import MISSING, OPT_IN, OPT_OUT, Contact, ContactPatch, Missing, value_nesting_exceeds
from ..validation import (
    LONG_DIGITS,
    MAX_ATTRIBUTES_BYTES,
    MAX_ATTRIBUTES_DEPTH,
    TOO_DEEP,
    attributes_problem,
    attributes_value_problem,
    email_problem,
    inexact_number_problem,
    json_type_name,
)
from .report import FileError, Reject

# A field may hold a large attributes value (rejected per row above MAX_ATTRIBUTES_BYTES); beyond this
# the file is almost certainly broken (an unterminated quote swallowing the rest), and memory must stay flat.
MAX_FIELD_BYTES: Final = 32 * 1024 * 1024
csv.field_size_limit(MAX_FIELD_BYTES)

CHUNK: Final = 1 << 20
MAX_WARNINGS: Final = 100
EMAIL: Final = "emailAddress"
UNSUBSCRIBE_ALL: Final = "unsubscribeAll"
ATTRIBUTES: Final = "attributesData"
TOPIC_PREFIX: Final = "topicPreferences."
TOPIC_PREFERENCES: Final = "topicPreferences"
_KNOWN = {EMAIL.lower(): EMAIL, UNSUBSCRIBE_ALL.lower(): UNSUBSCRIBE_ALL, ATTRIBUTES.lower(): ATTRIBUTES}

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
_BOOLS_FAST: Final = {**_BOOLS, "TRUE": True, "FALSE": False, "True": True, "False": False}
_STATUSES: Final = {OPT_IN: OPT_IN, OPT_OUT: OPT_OUT}

# The common ASCII address, checked by one regex; anything it does not accept goes to the full rules
# (validation.email_problem), which stay the authority. The fast path never accepts what those reject.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_FAST_EMAIL = re.compile(
    rf"(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@(?:(?!-)[A-Za-z0-9-]{{1,63}}(?<!-)\.)+[A-Za-z]{{2,63}}"
)
_fast_email_match = _FAST_EMAIL.fullmatch


_new_object = object.__new__
_set_email = ContactPatch.email.__set__  # type: ignore[attr-defined]
_set_unsubscribe = ContactPatch.unsubscribe_all.__set__  # type: ignore[attr-defined]
_set_attributes = ContactPatch.attributes.__set__  # type: ignore[attr-defined]
_set_topics = ContactPatch.topic_preferences.__set__  # type: ignore[attr-defined]


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


def _plainly_within_caps(text: str) -> bool:
    """Whether attributes text is too short to pass the size cap and has too few brackets to nest past the
    depth cap: the usual value, parsed straight away; any other goes through validation.attributes_problem."""
    return (
        len(text) <= _SMALL_ATTRIBUTES
        and text.count("{") + text.count("[") <= MAX_ATTRIBUTES_DEPTH
        and not LONG_DIGITS.search(text)  # a number orjson might round: attributes_problem looks closer
    )


def check_address(address: str) -> str | None:
    """Why ``address`` cannot be imported, or None. Fast for ordinary addresses."""
    if len(address) <= 254 and _fast_email_match(address) is not None:
        return None
    return email_problem(address)


def parse_bool(value: str) -> bool | None:
    found = _BOOLS_FAST.get(value)
    if found is None:
        found = _BOOLS.get(value.strip().lower())
    return found


# -- CSV cells a spreadsheet would run ------------------------------------------------------------------

# A spreadsheet takes a cell starting with one of these as a formula (tab and CR: as the start of one).
FORMULA_TRIGGERS: Final = "=+-@\t\r"
# Quotes, then a trigger: the cells encode_cell prefixes (and decode_cell, after its quote, strips).
_ESCAPED = re.compile(r"'*[=+\-@\t\r]")
_FIRST_OF_ESCAPED: Final = frozenset(FORMULA_TRIGGERS + "'")
_TRIGGER_CODES: Final = "(" + ", ".join(str(ord(c)) for c in FORMULA_TRIGGERS) + ")"


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


def sql_encode_cell(column: str) -> str:
    """:func:`encode_cell` as an SQLite expression over ``column`` (the exporter's fast path renders rows in
    SQLite). The first character decides alone, but for the rare cell that starts with a quote."""
    first_is_trigger = f"unicode({column}) IN {_TRIGGER_CODES}"
    quotes_then_trigger = f"(unicode({column}) = 39 AND unicode(ltrim({column}, '''')) IN {_TRIGGER_CODES})"
    return f"CASE WHEN {first_is_trigger} OR {quotes_then_trigger} THEN '''' || {column} ELSE {column} END"


def csv_writers(out: Any) -> tuple[Any, Any]:
    """Our CSV dialect ("\\n" line ends, minimal quoting), and the same quoting every cell, for a row with a
    bare CR: Python's csv quotes a cell only for the characters of its own line terminator, and a CR it
    leaves unquoted ends the row for every reader (AttributesData from the SES API may hold one)."""
    return csv.writer(out, lineterminator="\n"), csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)


class SafeCsvWriter:
    """``csv.writer`` for the CSV files we write: every text cell through :func:`encode_cell`, and a row with
    a bare CR quoted (:func:`csv_writers`)."""

    def __init__(self, out: Any) -> None:
        self._minimal, self._quoted = csv_writers(out)

    def writerow(self, row: Iterable[object]) -> None:
        cells = [encode_cell(c) if type(c) is str else c for c in row]
        cr = any(type(c) is str and "\r" in c for c in cells)
        (self._quoted if cr else self._minimal).writerow(cells)

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


# -- pass 1: the bytes ---------------------------------------------------------------------------------


@dataclass
class Scan:
    """What the byte-level pass learned: size, hash, BOM, the first bytes (for sniffing), quote parity."""

    size: int
    sha256: str
    bom: bool
    head: bytes
    odd_quotes: bool


def _line_col(path: Path, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte ``offset``; only called to report an error."""
    line, start, pos = 1, 0, 0
    with open(path, "rb") as f:
        while pos < offset:
            chunk = f.read(min(CHUNK, offset - pos))
            if not chunk:
                break
            count = chunk.count(b"\n")
            if count:
                line += count
                start = pos + chunk.rindex(b"\n") + 1
            pos += len(chunk)
        f.seek(start)
        prefix = f.read(offset - start)
    return line, len(prefix.decode("utf-8", errors="replace")) + 1


def scan(path: Path, *, name: str = "") -> Scan:
    """Check the whole file is UTF-8 text, hash it, and note what the readers need; raise FileError."""
    name = name or path.name
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    size = 0
    quotes = 0
    head = b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            if not size:
                head = chunk[:65536]
                _check_head(head, name)
            digest.update(chunk)
            nul = chunk.find(b"\0")
            if nul >= 0:
                line, col = _line_col(path, size + nul)
                raise FileError(
                    "binary content: a NUL byte, which no CSV or JSON text has", file=name, line=line, column=col
                )
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line, col = _line_col(path, size + exc.start)
                raise FileError(
                    f"not UTF-8 text: byte 0x{chunk[exc.start]:02x} cannot start or continue a character "
                    "(save the file as UTF-8)",
                    file=name,
                    line=line,
                    column=col,
                ) from None
            quotes += chunk.count(b'"')
            size += len(chunk)
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            line, col = _line_col(path, size - pending)
            raise FileError(
                "not UTF-8 text: the file ends in the middle of a character", file=name, line=line, column=col
            ) from None
    if not head.strip().removeprefix(codecs.BOM_UTF8).strip():
        raise FileError("the file is empty", file=name, line=1)
    return Scan(size, digest.hexdigest(), head.startswith(codecs.BOM_UTF8), head, bool(quotes % 2))


def _check_head(head: bytes, name: str) -> None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise FileError("the file is UTF-16 or UTF-32 text; save it as UTF-8", file=name, line=1, column=1)
    sample = head[:512]
    if len(sample) >= 16 and sample.count(b"\0") >= len(sample) // 4:
        raise FileError(
            "the file looks like UTF-16 text or binary data (many NUL bytes); save it as UTF-8 CSV or JSON",
            file=name,
            line=1,
            column=1,
        )


def detect_format(file_name: str, head: bytes) -> str:
    """From the extension, else from the first character of the content."""
    suffix = Path(file_name).suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if suffix in (".json", ".jsonl", ".ndjson"):
        return "json"
    first = head.removeprefix(codecs.BOM_UTF8).lstrip()[:1]
    return "json" if first in (b"{", b"[") else "csv"


def _text(f: BinaryIO) -> io.TextIOWrapper:
    return io.TextIOWrapper(f, encoding="utf-8-sig", newline="", errors="strict")


# -- pass 2: records -----------------------------------------------------------------------------------

Record = tuple[int, "ContactPatch | str | Reject"]


@dataclass
class ReadOptions:
    action: str = "add"
    extra_columns_as_attributes: bool = False
    merge_attributes: bool = False
    # The list's topics; None skips the check (a preview without a list).
    topics: frozenset[str] | None = None


@dataclass
class Reader:
    """Iterates one file's records as ``(line, ContactPatch | address | Reject)``.

    ``line`` is where the record starts (for a JSON array, the item's position). ``records(skip=n)`` skips
    the first ``n`` records cheaply (resume). ``bytes_read`` follows the underlying file for progress.
    """

    path: Path
    name: str
    format: str
    options: ReadOptions
    scanned: Scan
    warnings: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    json_kind: str = ""
    _raw: BinaryIO | None = None

    more_warnings: int = 0

    def warn(self, message: str) -> None:
        """Keep the first MAX_WARNINGS warnings (a file with a trailing comma on every line would otherwise
        carry a million of them into the job record); count the rest."""
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        else:
            self.more_warnings += 1

    @property
    def bytes_read(self) -> int:
        raw = self._raw
        if raw is None or raw.closed:
            return self.scanned.size
        return raw.tell()

    def records(self, skip: int = 0) -> Iterator[Record]:
        with open(self.path, "rb") as raw:
            self._raw = raw
            if self.format == "csv":
                yield from self._csv(raw, skip)
            else:
                yield from self._json(raw, skip)

    # -- CSV --

    def _csv(self, raw: BinaryIO, skip: int) -> Iterator[Record]:
        name = self.name
        if self.scanned.odd_quotes:
            _find_unterminated_quote(self.path, name, self._delimiter())
        text = _text(raw)
        reader = csv.reader(text, delimiter=self._delimiter())
        try:
            header = next(reader)
        except StopIteration:
            raise FileError("the file is empty", file=name, line=1) from None
        plan = self._header_plan(header)
        yield from self._csv_rows(reader, plan, skip)

    def _delimiter(self) -> str:
        if Path(self.name).suffix.lower() == ".tsv":
            return "\t"
        first = self.scanned.head.removeprefix(codecs.BOM_UTF8).split(b"\n", 1)[0]
        # Outside quotes only: a quoted header name could hold any of these.
        unquoted = re.sub(rb'"[^"]*"', b"", first)
        counts = {d: unquoted.count(d.encode()) for d in (",", ";", "\t")}
        best = max(counts, key=lambda d: (counts[d], d == ","))
        return best if counts[best] else ","

    def _header_plan(self, header: list[str]) -> _CsvPlan:
        name = self.name
        plan = _CsvPlan(width=len(header))
        seen: dict[str, int] = {}
        unknown: list[tuple[int, str]] = []
        for index, raw_name in enumerate(header):
            column = raw_name.strip()
            lowered = column.lower()
            if lowered in seen:
                raise FileError(
                    f"the column {column!r} appears twice in the header", file=name, line=1, column=index + 1
                )
            seen[lowered] = index
            known = _KNOWN.get(lowered)
            if known is not None:
                self.columns.append(known)
                if known == EMAIL:
                    plan.email = index
                elif known == UNSUBSCRIBE_ALL:
                    plan.unsubscribe = index
                else:
                    plan.attributes = index
            elif lowered.startswith(TOPIC_PREFIX.lower()) and len(column) > len(TOPIC_PREFIX):
                topic = column[len(TOPIC_PREFIX) :]
                plan.topics.append((index, topic, TOPIC_PREFIX + topic))
                self.columns.append(TOPIC_PREFIX + topic)
            elif self.options.action == "delete":
                continue  # a delete reads addresses only; other columns are ignored
            elif self.options.extra_columns_as_attributes and column:
                plan.extra.append((index, column))
                self.columns.append(column)
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

    def _csv_rows(self, reader: Any, plan: _CsvPlan, skip: int) -> Iterator[Record]:
        name = self.name
        delete = self.options.action == "delete"
        merge = self.options.merge_attributes
        known_topics = self.options.topics
        ei, ui, ai, width = plan.email, plan.unsubscribe, plan.attributes, plan.width
        topics, extra = plan.topics, plan.extra
        plain = not topics and not extra
        last_line = reader.line_num
        seen = 0
        fast_bool = _BOOLS_FAST
        fast_email = _fast_email_match
        patch_new = make_patch
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        plain_attributes = _plainly_within_caps
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
                            Reject(
                                line, email, UNSUBSCRIBE_ALL, f"unsubscribeAll must be true or false, not {row[ui]!r}"
                            ),
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
                found = _STATUSES.get(status) or _STATUSES.get(status.upper())
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

    def _json(self, raw: BinaryIO, skip: int) -> Iterator[Record]:
        kind = self._json_kind()
        if kind == "array":
            yield from self._json_array(raw, skip)
            return
        if kind == "lines":
            yield from self._json_lines(raw, skip)
        else:
            yield from self._json_stream(_text(raw), skip)

    def _json_kind(self) -> str:
        if self.json_kind:
            return self.json_kind
        head = self.scanned.head.removeprefix(codecs.BOM_UTF8)
        stripped = head.lstrip()
        first = stripped[:1]
        if first == b"[":
            kind = "array"
        elif first == b"{":
            # JSON Lines when the extension says so or the first line is a whole object; pretty-printed
            # objects (the page's example) open with a line that is not.
            kind = "stream"
            if Path(self.name).suffix.lower() in (".jsonl", ".ndjson"):
                kind = "lines"
            else:
                first_line, _, rest = stripped.partition(b"\n")
                try:
                    if isinstance(orjson.loads(first_line), dict):
                        kind = "lines"
                except orjson.JSONDecodeError:
                    # A broken first record is still one line when it closes on it and the next line opens
                    # another: JSON Lines, where it is one rejected row (in a stream it would end the file).
                    if first_line.rstrip().endswith(b"}") and rest.lstrip()[:1] in (b"{", b""):
                        kind = "lines"
        else:
            line = head[: len(head) - len(stripped)].count(b"\n") + 1
            try:
                value = orjson.loads(head) if len(head) < 65536 else None
            except orjson.JSONDecodeError:
                value = None
            what = (
                f"a JSON {json_type_name(value).split()[-1]}"
                if value is not None or head.strip() == b"null"
                else ("not JSON")
            )
            raise FileError(
                f"expected JSON objects ({{...}}) or an array of them ([...]); the file is {what}",
                file=self.name,
                line=line,
                column=1,
            )
        self.json_kind = kind
        return kind

    def _json_lines(self, raw: BinaryIO, skip: int) -> Iterator[Record]:
        """Lines as bytes, straight to orjson (the scan already proved the file is UTF-8): no text decoding."""
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        seen = 0
        convert = self._from_object
        for number, line_bytes in enumerate(raw, start=1):
            if number == 1:
                line_bytes = line_bytes.removeprefix(codecs.BOM_UTF8)
            if not line_bytes or line_bytes.isspace():
                continue
            seen += 1
            if seen <= skip:
                continue
            try:
                obj = loads(line_bytes)
            except decode_error as exc:
                line_text = line_bytes.decode("utf-8")
                repaired, commas = _drop_trailing_commas(line_text)
                try:
                    obj = loads(repaired) if commas else None
                except decode_error:
                    obj = None
                if obj is None and _too_deep_for_orjson(exc):
                    obj = _load_deep(repaired)
                if obj is None:
                    yield number, Reject(number, _guess_email(line_text), "", f"not valid JSON: {_reason(exc)}")
                    continue
                for pos in commas:
                    self.warn(f"line {number}: trailing comma before {_closer(line_text, pos)!r} ignored")
            if type(obj) is not dict:
                yield number, Reject(number, "", "", f"expected a JSON object, found {json_type_name(obj)}")
                continue
            if (problem := inexact_number_problem(line_bytes)) is not None:  # orjson rounded a number in it
                yield number, Reject(number, _guess_email(line_bytes.decode("utf-8")), "", problem)
                continue
            yield number, convert(obj, number)

    def _json_stream(self, text: IO[str], skip: int) -> Iterator[Record]:
        seen = 0
        for start_line, start_col, chunk in _split_objects(text, self.name):
            seen += 1
            try:
                obj = orjson.loads(chunk)
            except orjson.JSONDecodeError as exc:
                repaired, commas = _drop_trailing_commas(chunk)
                try:
                    obj = orjson.loads(repaired) if commas else None
                except orjson.JSONDecodeError:
                    obj = None
                if obj is None and _too_deep_for_orjson(exc):  # _split_objects found its end: read on past it
                    obj = _load_deep(repaired)
                if obj is None:
                    line, col = _position(start_line, start_col, chunk, exc.pos)
                    raise FileError(f"not valid JSON: {_reason(exc)}", file=self.name, line=line, column=col) from None
                if seen > skip:
                    for pos in commas:
                        line, _ = _position(start_line, start_col, chunk, pos)
                        self.warn(f"line {line}: trailing comma before {_closer(chunk, pos)!r} ignored")
            if seen <= skip:
                continue
            if not isinstance(obj, dict):
                yield start_line, Reject(start_line, "", "", f"expected a JSON object, found {json_type_name(obj)}")
                continue
            if (problem := inexact_number_problem(chunk)) is not None:  # orjson rounded a number in it
                yield start_line, Reject(start_line, _guess_email(chunk), "", problem)
                continue
            yield start_line, self._from_object(obj, start_line)

    def _json_array(self, raw: BinaryIO, skip: int) -> Iterator[Record]:
        import ijson

        counter = _CountingReader(raw)
        items = _json_values(ijson.basic_parse(counter, use_float=True), item_depth=1)
        number = 0
        while True:
            try:
                obj = next(items)
            except StopIteration:
                return
            except ijson.JSONError as exc:
                line, col = _line_col(self.path, max(0, counter.consumed - 1))
                raise FileError(f"not valid JSON near here: {exc}", file=self.name, line=line, column=col) from None
            number += 1
            if number <= skip:
                continue
            if not isinstance(obj, dict):
                yield number, Reject(number, "", "", f"expected a JSON object, found {json_type_name(obj)}")
                continue
            yield number, self._from_object(obj, number)

    def _from_object(self, obj: dict[str, Any], line: int) -> ContactPatch | str | Reject:
        """One JSON object to a patch: keys match case-insensitively; attributesData may be an object or a
        string holding one (SES's form); topicPreferences a list of {topicName, subscriptionStatus} (SES's
        form) or an object {topic: status}."""
        if obj.keys() <= _JSON_KEYS:  # SES's own spelling of every key: the common case
            values = obj
        else:
            values = {}
            for key, value in obj.items():
                canonical = _JSON_KEYS_LOWER.get(key.lower()) if isinstance(key, str) else None
                if canonical is None:
                    if self.options.action == "delete":
                        continue
                    if not self.options.extra_columns_as_attributes:
                        return Reject(line, _text_of(obj.get(EMAIL)), str(key), f"unknown field {key!r}")
                    values.setdefault("__extra__", {})[key] = value  # type: ignore[index]
                    continue
                values[canonical] = value
        email = values.get(EMAIL)
        if not isinstance(email, str):
            reason = (
                "emailAddress is missing"
                if email is None
                else f"emailAddress must be a string, not {json_type_name(email)}"
            )
            return Reject(line, _text_of(email), EMAIL, reason)
        email = email.strip()
        problem = check_address(email)
        if problem is not None:
            return Reject(line, email, EMAIL, problem)
        if self.options.action == "delete":
            return email
        unsubscribe: bool | Missing = MISSING
        if UNSUBSCRIBE_ALL in values:
            raw_value = values[UNSUBSCRIBE_ALL]
            if isinstance(raw_value, bool):
                unsubscribe = raw_value
            elif raw_value is None:
                unsubscribe = False
            else:
                parsed = (
                    parse_bool(raw_value)
                    if isinstance(raw_value, str)
                    else (bool(raw_value) if raw_value in (0, 1) and not isinstance(raw_value, float) else None)
                )
                if parsed is None:
                    return Reject(
                        line,
                        email,
                        UNSUBSCRIBE_ALL,
                        f"unsubscribeAll must be true or false, not {_shown(raw_value)}",
                    )
                unsubscribe = parsed
        attributes: dict[str, object] | Missing | None = MISSING
        if ATTRIBUTES in values:
            raw_attrs = values[ATTRIBUTES]
            if raw_attrs is None or (isinstance(raw_attrs, str) and not raw_attrs.strip()):
                attributes = MISSING if self.options.merge_attributes else None
            elif isinstance(raw_attrs, str):
                parsed_attrs: Any = None
                if _plainly_within_caps(raw_attrs):
                    try:
                        parsed_attrs = orjson.loads(raw_attrs)
                    except orjson.JSONDecodeError:
                        parsed_attrs = None
                if type(parsed_attrs) is not dict:
                    parsed_attrs, problem = attributes_problem(raw_attrs)
                    if problem is not None:
                        return Reject(line, email, ATTRIBUTES, problem)
                attributes = parsed_attrs
            elif isinstance(raw_attrs, dict):
                problem = attributes_value_problem(raw_attrs)
                if problem is not None:
                    return Reject(line, email, ATTRIBUTES, problem)
                attributes = raw_attrs
            else:
                return Reject(
                    line, email, ATTRIBUTES, f"attributesData must be a JSON object, not {json_type_name(raw_attrs)}"
                )
        extra = values.get("__extra__")
        if extra:
            for key, value in extra.items():
                if isinstance(value, (dict, list)) and value_nesting_exceeds(value, MAX_ATTRIBUTES_DEPTH - 1):
                    return Reject(line, email, str(key), f"{key} is {TOO_DEEP}")
            merged = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in extra.items()}
            if isinstance(attributes, dict):
                merged.update(attributes)
            attributes = merged
        preferences: dict[str, str] = {}
        raw_prefs = values.get(TOPIC_PREFERENCES)
        if raw_prefs is not None:
            pairs: Iterable[tuple[object, object]]
            if isinstance(raw_prefs, list):
                pairs_list = []
                for item in raw_prefs:
                    if not isinstance(item, dict):
                        return Reject(
                            line,
                            email,
                            TOPIC_PREFERENCES,
                            "topicPreferences items must be {topicName, subscriptionStatus} objects",
                        )
                    lowered = {str(k).lower(): v for k, v in item.items()}
                    pairs_list.append((lowered.get("topicname"), lowered.get("subscriptionstatus")))
                pairs = pairs_list
            elif isinstance(raw_prefs, dict):
                pairs = raw_prefs.items()
            else:
                return Reject(
                    line, email, TOPIC_PREFERENCES, f"topicPreferences must be a list, not {json_type_name(raw_prefs)}"
                )
            for topic, status in pairs:
                if not isinstance(topic, str) or not topic:
                    return Reject(line, email, TOPIC_PREFERENCES, "a topic preference has no topicName")
                column = f"{TOPIC_PREFIX}{topic}"
                found = _STATUSES.get(status.strip().upper()) if isinstance(status, str) else None
                if found is None:
                    return Reject(
                        line,
                        email,
                        column,
                        f"the status must be OPT_IN or OPT_OUT, not {_shown(status)}",
                    )
                if self.options.topics is not None and topic not in self.options.topics:
                    return Reject(line, email, column, f"the list has no topic {topic!r}")
                preferences[topic] = found
        return make_patch(email, unsubscribe, attributes, preferences)


_JSON_KEYS: Final = {EMAIL, UNSUBSCRIBE_ALL, ATTRIBUTES, TOPIC_PREFERENCES}
_JSON_KEYS_LOWER: Final = {k.lower(): k for k in _JSON_KEYS}


@dataclass
class _CsvPlan:
    width: int
    email: int = -1
    unsubscribe: int = -1
    attributes: int = -1
    topics: list[tuple[int, str, str]] = field(default_factory=list)
    extra: list[tuple[int, str]] = field(default_factory=list)


class _CountingReader:
    """Counts bytes handed to ijson, to place a syntax error near its line."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.consumed = 0
        self._bom_checked = False

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if not self._bom_checked:
            self._bom_checked = True
            if data.startswith(codecs.BOM_UTF8):
                self.consumed += 3
                data = data[3:]
        self.consumed += len(data)
        return data


def _text_of(value: object) -> str:
    return value if isinstance(value, str) else ("" if value is None else _shown(value))


def _shown(value: object) -> str:
    """A value from the file as JSON, for a reject's reason; one nested past the attributes limit by its kind
    (ijson reads any depth, orjson writes at most 254 levels)."""
    if isinstance(value, (dict, list)) and value_nesting_exceeds(value):
        return f"{json_type_name(value)} {TOO_DEEP}"
    return orjson.dumps(value).decode()


def _load_deep(text: str | bytes) -> object:
    """One JSON value orjson refused as nested past its 1024 levels, read with :func:`_json_values` (which
    cuts it short), so that the row is rejected for what it holds like any other; None when it is not
    valid JSON either."""
    import ijson

    data = text.encode() if isinstance(text, str) else text
    try:
        return next(_json_values(ijson.basic_parse(io.BytesIO(data), use_float=True), item_depth=0), None)
    except ijson.JSONError:
        return None


# How deep a record is built: the record, then attributesData one level past its limit. Deeper containers
# become ``[]``, which keeps every value that was past a limit past it (and rejected for it).
_BUILD_DEPTH: Final = MAX_ATTRIBUTES_DEPTH + 2


def _json_values(events: Iterable[tuple[str, Any]], *, item_depth: int) -> Iterator[object]:
    """The values ijson's parser events describe at ``item_depth`` (1: the items of a top-level array, one at
    a time; 0: the one top-level value), built at most _BUILD_DEPTH levels deep.

    ``ijson.items`` builds any depth and keeps a path string per level, so memory grows with the square of
    the depth: one 100,000-deep item (a 200 KB file) took the process past 20 GB. Here a record costs what
    its first _BUILD_DEPTH levels cost, and the parser's own depth is a byte a level.
    """
    stack: list[Any] = []  # the open containers, outermost first
    keys: list[Any] = []  # per open container: the key its next value goes under
    skipping = 0  # levels open inside a container too deep to build
    for event, value in events:
        if skipping:
            if event == "start_map" or event == "start_array":
                skipping += 1
            elif event == "end_map" or event == "end_array":
                skipping -= 1
            continue
        if event == "map_key":
            keys[-1] = value
            continue
        if event == "start_map" or event == "start_array":
            if len(stack) - item_depth < _BUILD_DEPTH:
                stack.append({} if event == "start_map" else [])
                keys.append(None)
                continue
            value, skipping = [], 1  # stands for the container, whose contents are skipped
        elif event == "end_map" or event == "end_array":
            value = stack.pop()
            keys.pop()
        depth = len(stack)
        if depth == item_depth:
            yield value
        elif depth > item_depth:
            parent = stack[-1]
            if type(parent) is dict:
                parent[keys[-1]] = value
            else:
                parent.append(value)


def _too_deep_for_orjson(exc: orjson.JSONDecodeError) -> bool:
    return _reason(exc) == "depth limit exceeded"


def _reason(exc: orjson.JSONDecodeError) -> str:
    return str(exc.msg) if hasattr(exc, "msg") else str(exc)


_GUESS_EMAIL = re.compile(r'"emailAddress"\s*:\s*"([^"\\]{1,254})"', re.IGNORECASE)


def _guess_email(text: str) -> str:
    found = _GUESS_EMAIL.search(text)
    return found.group(1) if found else ""


_TRAILING = re.compile(r'("(?:[^"\\]|\\.)*")|,(\s*[}\]])', re.DOTALL)


def _drop_trailing_commas(text: str) -> tuple[str, list[int]]:
    """Remove commas that directly precede ``}`` or ``]`` outside strings; return the text and where they
    were (offsets in the original)."""
    positions: list[int] = []

    def fix(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group(1)
        positions.append(match.start())
        return match.group(2)

    return _TRAILING.sub(fix, text), positions


def _closer(text: str, comma: int) -> str:
    """The bracket a trailing comma stands before."""
    rest = text[comma + 1 :].lstrip()
    return rest[:1] or "}"


def _position(start_line: int, start_col: int, chunk: str, pos: int) -> tuple[int, int]:
    before = chunk[:pos]
    newlines = before.count("\n")
    if newlines == 0:
        return start_line, start_col + pos
    return start_line + newlines, pos - before.rindex("\n")


# Strings (possibly unterminated at the end of a line) and the structural characters that matter.
_JSON_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|[{}\[\]]|[^\s{}\[\]"]+')


def _split_objects(text: IO[str], name: str) -> Iterator[tuple[int, int, str]]:
    """Cut a stream of concatenated JSON objects into one text per object, with its starting line and
    column. Works line by line (JSON strings cannot hold a raw newline), so memory is one object."""
    depth = 0
    parts: list[str] = []
    start_line = start_col = 0
    for number, line in enumerate(text, start=1):
        segment_start = 0
        for match in _JSON_TOKEN.finditer(line):
            token = match.group()
            first = token[0]
            if depth == 0:
                if first == "{":
                    depth = 1
                    start_line, start_col = number, match.start() + 1
                    segment_start = match.start()
                    continue
                if first == "," and token == ",":
                    continue  # objects separated by commas, as in an array without brackets
                raise FileError(
                    f"expected the start of a JSON object ({{), found {token[:20]!r}",
                    file=name,
                    line=number,
                    column=match.start() + 1,
                )
            if first == "{" or first == "[":
                depth += 1
            elif first == "}" or first == "]":
                depth -= 1
                if depth == 0:
                    parts.append(line[segment_start : match.end()])
                    yield start_line, start_col, "".join(parts)
                    parts = []
                    segment_start = match.end()
        if depth > 0:
            parts.append(line[segment_start:])
    if depth > 0:
        raise FileError(
            "the last JSON object is not closed (a missing })", file=name, line=start_line, column=start_col
        )


def _find_unterminated_quote(path: Path, name: str, delimiter: str) -> None:
    """The file has an odd number of quote characters: find a quoted field that never ends, if any.
    (Stray quotes inside unquoted fields are legal in practice and also make the count odd.)"""
    with open(path, "rb") as raw:
        reader = csv.reader(_text(raw), delimiter=delimiter, strict=True)
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


# -- opening -------------------------------------------------------------------------------------------


def open_reader(
    path: Path,
    *,
    name: str = "",
    fmt: str | None = None,
    options: ReadOptions | None = None,
    scanned: Scan | None = None,
) -> Reader:
    """Scan the file (raising FileError for a file that cannot be imported) and return its reader."""
    name = name or Path(path).name
    scanned = scanned or scan(Path(path), name=name)
    chosen = fmt or detect_format(name, scanned.head)
    reader = Reader(Path(path), name, chosen, options or ReadOptions(), scanned)
    if chosen == "json":
        reader._json_kind()
    return reader


def validate_structure(reader: Reader) -> None:
    """For JSON streams and arrays a syntax error can only be found by parsing: do that before writing."""
    if reader.format == "json" and reader.json_kind in ("array", "stream"):
        probe = Reader(
            reader.path,
            reader.name,
            reader.format,
            ReadOptions(action="delete"),
            reader.scanned,
            json_kind=reader.json_kind,
        )
        for _ in probe.records():
            pass


# -- writers -------------------------------------------------------------------------------------------


class CsvWriter:
    """The page's CSV: one ``topicPreferences.<Topic>`` column per topic of the list."""

    def __init__(self, out: BinaryIO, topics: Iterable[str]) -> None:
        self.topics = list(topics)
        self._text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
        self._writer = SafeCsvWriter(self._text)
        self._writer.writerow([EMAIL, UNSUBSCRIBE_ALL, ATTRIBUTES, *(TOPIC_PREFIX + t for t in self.topics)])

    def write_row(self, email: str, unsubscribe_all: bool, attributes: str | None, topics: dict[str, str]) -> None:
        row = [email, "true" if unsubscribe_all else "false", attributes or ""]
        if self.topics:
            row += [topics.get(t, "") for t in self.topics]
        self._writer.writerow(row)

    def write_rows(self, rows: Iterable[list[str]]) -> None:
        self._writer.writerows(rows)

    def write(self, contact: Contact) -> None:
        self.write_row(contact.email, contact.unsubscribe_all, contact.attributes_data, dict(contact.topic_preferences))

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


class JsonLinesWriter:
    """SES's import format: one object per line, attributesData as a string holding the object."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out

    def write_row(self, email: str, unsubscribe_all: bool, attributes: str | None, topics: dict[str, str]) -> None:
        obj: dict[str, object] = {EMAIL: email, UNSUBSCRIBE_ALL: unsubscribe_all}
        if attributes is not None:
            obj[ATTRIBUTES] = attributes
        if topics:
            obj[TOPIC_PREFERENCES] = [{"topicName": t, "subscriptionStatus": s} for t, s in topics.items()]
        self.out.write(orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE))

    def write(self, contact: Contact) -> None:
        self.write_row(contact.email, contact.unsubscribe_all, contact.attributes_data, dict(contact.topic_preferences))

    def close(self) -> None:
        self.out.flush()
