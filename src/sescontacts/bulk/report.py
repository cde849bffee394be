"""The plain records the bulk engine hands to its callers: options in, reports, rejects and errors out.

They live apart from the readers, the importer and the job runner so that the console, the CLI and the SES
API can import them without pulling in any of the machinery (and so that none of those modules import
each other in a circle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

Action = Literal["add", "delete"]
Format = Literal["csv", "json"]

# Every outcome a report counts, in the order reports show them.
COUNT_KEYS: Final = (
    "created",
    "updated",
    "unchanged",
    "deleted",
    "not_found",
    "rejected",
    "duplicates",
    "kept_unsubscribed",
    "kept_opted_out",
)


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(COUNT_KEYS, 0)


@dataclass(frozen=True)
class ImportOptions:
    """What the user chose in the import dialog or on the command line; stored with the job for resume.

    ``replace_record``: each row overrides the whole contact, as SES's PUT import does (jobs created through
    the SES API); otherwise the product's rule (:class:`sescontacts.model.UpsertPolicy`). ``column_map``: a
    CSV's column mapping, column name -> field spec (``formats.mapping``); None: the header's names decide.
    """

    contact_list: str
    action: Action = "add"
    format: Format | None = None
    resubscribe: bool = False
    merge_attributes: bool = False
    extra_columns_as_attributes: bool = False
    replace_record: bool = False
    column_map: dict[str, str] | None = None


class FileError(Exception):
    """The file as a whole cannot be imported (not CSV/JSON, no emailAddress column, wrong encoding...).

    Raised before anything is written. ``line`` and ``column`` are 1-based; ``column`` 0 means "the whole
    line". The message alone is what a user reads; ``str()`` prefixes the location the way compilers do.
    """

    def __init__(self, message: str, *, file: str = "", line: int = 1, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = f"{self.file or '<input>'}" + (f":{self.line}" if self.line else "")
        if self.line and self.column:
            where += f":{self.column}"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Reject:
    """One rejected row, as the rejects CSV shows it. For a JSON array ``line`` is the item's position."""

    line: int
    email: str
    column: str
    reason: str


@dataclass
class ImportReport:
    """Totals of one import (or dry run). ``rejects`` keeps the first few rejected rows for display; the
    complete list goes to the rejects file."""

    format: str = ""
    rows: int = 0
    counts: dict[str, int] = field(default_factory=empty_counts)
    warnings: list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    error: FileError | None = None
    cancelled: bool = False

    @property
    def exit_status(self) -> int:
        """The CLI's contract: 0 every row applied; 1 the file was read to the end and some rows, or all of
        them, were rejected; 2 a file-level error, nothing applied."""
        if self.error is not None:
            return 2
        return 1 if self.counts["rejected"] else 0


@dataclass(frozen=True)
class PreviewRow:
    line: int
    email: str
    unsubscribe_all: bool | None
    attributes: dict[str, object] | None
    topic_preferences: dict[str, str]
    reject: Reject | None = None


@dataclass(frozen=True)
class Preview:
    """The first rows of a file as the importer reads them, so a user can check before importing."""

    format: str | None
    rows: list[PreviewRow]
    columns: list[str]
    warnings: list[str]
    error: FileError | None = None
