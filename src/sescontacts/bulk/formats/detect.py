"""What a file is, before any row is read: UTF-8 text or not, CSV or JSON, its delimiter, its JSON layout.

:func:`scan` is the first of the two passes over the bytes (C-speed: hashing, UTF-8 decoding, byte counts). It
finds what makes a whole file unusable - binary content, UTF-16, invalid UTF-8, an empty file - and its line
and column, *before* the importer writes anything, and hashes the file (the job record keeps the sha256).
The detectors below decide from the first bytes it keeps.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import orjson

from ...validation import json_type_name
from ..report import FileError

CHUNK: Final = 1 << 20


@dataclass
class Scan:
    """What the byte-level pass learned: size, hash, BOM, the first bytes (for sniffing), quote parity."""

    size: int
    sha256: str
    bom: bool
    head: bytes
    odd_quotes: bool


def line_col(path: Path, offset: int) -> tuple[int, int]:
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
                line, col = line_col(path, size + nul)
                raise FileError(
                    "binary content: a NUL byte, which no CSV or JSON text has", file=name, line=line, column=col
                )
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line, col = line_col(path, size + exc.start)
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
            line, col = line_col(path, size - pending)
            raise FileError(
                "not UTF-8 text: the file ends in the middle of a character", file=name, line=line, column=col
            ) from None
    if not head.strip().removeprefix(codecs.BOM_UTF8).strip():
        raise FileError("the file is empty", file=name, line=1)
    return Scan(size, digest.hexdigest(), head.startswith(codecs.BOM_UTF8), head, bool(quotes % 2))


def peek(path: Path, *, name: str = "") -> Scan:
    """What the first bytes say, before :func:`scan` has read the rest: enough to start reading records (the
    format, the delimiter) while the whole file is checked and hashed. Its ``sha256`` is empty and
    ``odd_quotes`` unknown (False): the importer applies nothing before the full scan passed."""
    name = name or path.name
    with open(path, "rb") as f:
        head = f.read(65536)
        size = os.fstat(f.fileno()).st_size
    if head:
        _check_head(head, name)
    if not head.strip().removeprefix(codecs.BOM_UTF8).strip() and size <= len(head):
        raise FileError("the file is empty", file=name, line=1)
    return Scan(size, "", head.startswith(codecs.BOM_UTF8), head, False)


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


def detect_delimiter(name: str, head: bytes) -> str:
    """A CSV file's delimiter: tab for ``.tsv``, else the most frequent of , ; tab in the header line."""
    if Path(name).suffix.lower() == ".tsv":
        return "\t"
    first = head.removeprefix(codecs.BOM_UTF8).split(b"\n", 1)[0]
    # Outside quotes only: a quoted header name could hold any of these.
    unquoted = re.sub(rb'"[^"]*"', b"", first)
    counts = {d: unquoted.count(d.encode()) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def detect_json_kind(name: str, head: bytes) -> str:
    """How a JSON file holds its objects: ``array``, ``lines`` (JSON Lines) or ``stream`` (concatenated,
    pretty-printed objects); FileError for a file that is neither."""
    head = head.removeprefix(codecs.BOM_UTF8)
    stripped = head.lstrip()
    first = stripped[:1]
    if first == b"[":
        kind = "array"
    elif first == b"{":
        # JSON Lines when the extension says so or the first line is a whole object; pretty-printed
        # objects (the page's example) open with a line that is not.
        kind = "stream"
        if Path(name).suffix.lower() in (".jsonl", ".ndjson"):
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
            file=name,
            line=line,
            column=1,
        )
    return kind


@contextmanager
def utf8_text(raw: BinaryIO) -> Iterator[io.TextIOWrapper]:
    """The file as text (``scan`` proved it is UTF-8): a BOM is skipped, line ends are the csv module's.

    The wrapper is detached at the end, not closed: ``raw`` belongs to the caller. Left to the garbage
    collector (a reader stopped early: a preview, a probe), it would close ``raw`` under its owner and warn.
    """
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="", errors="strict")
    try:
        yield text
    finally:
        text.detach()
