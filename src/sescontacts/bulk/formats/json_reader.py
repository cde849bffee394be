"""The JSON reader: JSON Lines (SES's import format), a JSON array of objects (streamed with ijson), or
concatenated (pretty-printed) objects like the page's example, whose trailing comma is tolerated with a
warning naming its line, because users paste that example as it is.

Which of the three a file is, ``detect.detect_json_kind`` decides; each object becomes a record through
``json_object.contact_from_object``.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO

import orjson

from ...validation import inexact_number_problem, json_type_name
from ..report import FileError, Reject
from .detect import line_col, utf8_text
from .fields import ReadOptions, Record
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
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    seen = 0
    convert = contact_from_object
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
            repaired, commas = drop_trailing_commas(line_text)
            try:
                obj = loads(repaired) if commas else None
            except decode_error:
                obj = None
            if obj is None and too_deep_for_orjson(exc):
                obj = load_deep(repaired)
            if obj is None:
                yield number, Reject(number, guess_email(line_text), "", f"not valid JSON: {reason(exc)}")
                continue
            for pos in commas:
                warn(f"line {number}: trailing comma before {closer(line_text, pos)!r} ignored")
        if type(obj) is not dict:
            yield number, Reject(number, "", "", f"expected a JSON object, found {json_type_name(obj)}")
            continue
        if (problem := inexact_number_problem(line_bytes)) is not None:  # orjson rounded a number in it
            yield number, Reject(number, guess_email(line_bytes.decode("utf-8")), "", problem)
            continue
        yield number, convert(obj, number, options)


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
