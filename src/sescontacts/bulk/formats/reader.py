"""Opening a bulk file: pass 1 (``detect.scan``) over the bytes, then a :class:`Reader` whose records (pass 2)
come from the CSV or the JSON reader. A bad row is a Reject among the records; it never stops the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

from ..report import FileError
from .columns import Rows
from .csv_reader import find_unterminated_quote, read_csv, read_csv_blocks
from .detect import Scan, detect_format, detect_json_kind, scan
from .fields import ReadOptions, Record
from .json_reader import read_json, read_json_lines_blocks

MAX_WARNINGS: Final = 100


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
                yield from read_csv(
                    raw,
                    path=self.path,
                    name=self.name,
                    scanned=self.scanned,
                    options=self.options,
                    columns=self.columns,
                    skip=skip,
                )
            else:
                if not self.json_kind:
                    self.json_kind = detect_json_kind(self.name, self.scanned.head)
                yield from read_json(
                    raw,
                    path=self.path,
                    name=self.name,
                    kind=self.json_kind,
                    options=self.options,
                    warn=self.warn,
                    skip=skip,
                )

    def blocks(self, *, skip: int = 0, size: int = 10_000) -> Iterator[tuple[Rows, int]]:
        """The records past the first ``skip``, ``size`` at a time, as columns (see ``columns``), each block
        with the bytes read so far. The same records as :meth:`records`, with the same lines: CSV and JSON
        Lines are read column by column at C speed; other JSON layouts record by record."""
        with open(self.path, "rb") as raw:
            self._raw = raw
            if self.format == "csv":
                yield from read_csv_blocks(
                    raw,
                    path=self.path,
                    name=self.name,
                    scanned=self.scanned,
                    options=self.options,
                    columns=self.columns,
                    skip=skip,
                    block_rows=size,
                    position=raw.tell,
                )
                return
            if not self.json_kind:
                self.json_kind = detect_json_kind(self.name, self.scanned.head)
            if self.json_kind == "lines":
                yield from read_json_lines_blocks(raw, options=self.options, warn=self.warn, skip=skip, block_rows=size)
                return
        rows = Rows(delete=self.options.action == "delete")
        for _line, record in self.records(skip=skip):
            rows.add(record)
            if rows.records >= size:
                yield rows, self.bytes_read
                rows = Rows(delete=rows.delete)
        if rows.records:
            yield rows, self.scanned.size


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
    if chosen == "json" and options is not None and options.mapping is not None:
        raise FileError("a column mapping applies to CSV files, and this file is JSON", file=name, line=0)
    reader = Reader(Path(path), name, chosen, options or ReadOptions(), scanned)
    if chosen == "json":
        reader.json_kind = detect_json_kind(name, scanned.head)
    return reader


def validate_structure(reader: Reader) -> None:
    """What only a whole read of the file finds, found before anything is written: a CSV quote that never
    closes (the scan counted an odd number), a syntax error in a JSON stream or array."""
    if reader.format == "csv":
        find_unterminated_quote(reader.path, reader.name, reader.scanned)
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
