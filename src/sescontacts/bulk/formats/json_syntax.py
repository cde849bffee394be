"""JSON text below the record: cutting concatenated objects apart, tolerating trailing commas, reading
values nested past orjson's limit, and placing an error at its line and column.

These never build a contact; ``json_reader`` uses them to find each record and say where a broken one is.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any, BinaryIO, Final

import orjson

from ...validation import MAX_ATTRIBUTES_DEPTH
from ..report import FileError


class CountingReader:
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


def load_deep(text: str | bytes) -> object:
    """One JSON value orjson refused as nested past its 1024 levels, read with :func:`_json_values` (which
    cuts it short), so that the row is rejected for what it holds like any other; None when it is not
    valid JSON either."""
    import ijson

    data = text.encode() if isinstance(text, str) else text
    try:
        return next(json_values(ijson.basic_parse(io.BytesIO(data), use_float=True), item_depth=0), None)
    except ijson.JSONError:
        return None


# How deep a record is built: the record, then attributesData one level past its limit. Deeper containers
# become ``[]``, which keeps every value that was past a limit past it (and rejected for it).
_BUILD_DEPTH: Final = MAX_ATTRIBUTES_DEPTH + 2


def json_values(events: Iterable[tuple[str, Any]], *, item_depth: int) -> Iterator[object]:
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


def too_deep_for_orjson(exc: orjson.JSONDecodeError) -> bool:
    return reason(exc) == "depth limit exceeded"


def reason(exc: orjson.JSONDecodeError) -> str:
    return str(exc.msg) if hasattr(exc, "msg") else str(exc)


_GUESS_EMAIL = re.compile(r'"emailAddress"\s*:\s*"([^"\\]{1,254})"', re.IGNORECASE)


def guess_email(text: str) -> str:
    found = _GUESS_EMAIL.search(text)
    return found.group(1) if found else ""


_TRAILING = re.compile(r'("(?:[^"\\]|\\.)*")|,(\s*[}\]])', re.DOTALL)


def drop_trailing_commas(text: str) -> tuple[str, list[int]]:
    """Remove commas that directly precede ``}`` or ``]`` outside strings; return the text and where they
    were (offsets in the original)."""
    positions: list[int] = []

    def fix(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group(1)
        positions.append(match.start())
        return match.group(2)

    return _TRAILING.sub(fix, text), positions


def closer(text: str, comma: int) -> str:
    """The bracket a trailing comma stands before."""
    rest = text[comma + 1 :].lstrip()
    return rest[:1] or "}"


def position(start_line: int, start_col: int, chunk: str, pos: int) -> tuple[int, int]:
    before = chunk[:pos]
    newlines = before.count("\n")
    if newlines == 0:
        return start_line, start_col + pos
    return start_line + newlines, pos - before.rindex("\n")


# Strings (possibly unterminated at the end of a line) and the structural characters that matter.
_JSON_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|[{}\[\]]|[^\s{}\[\]"]+')


def split_objects(text: IO[str], name: str) -> Iterator[tuple[int, int, str]]:
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
