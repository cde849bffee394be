"""Writers of the bulk formats: the page's CSV and SES's JSON Lines (what export writes and import reads), and
the CSV writer every CSV file we write goes through (exports, the rejects file, the failed-records download).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING

from ...model import Contact
from ...ses_wire import import_line
from .fields import ATTRIBUTES, EMAIL, TOPIC_PREFIX, UNSUBSCRIBE_ALL, encode_cell

if TYPE_CHECKING:
    from _csv import Writer  # what csv.writer returns, as typeshed names it

    from _typeshed import SupportsWrite


def csv_writers(out: SupportsWrite[str]) -> tuple[Writer, Writer]:
    """Our CSV dialect ("\\n" line ends, minimal quoting), and the same quoting every cell, for a row with a
    bare CR: Python's csv quotes a cell only for the characters of its own line terminator, and a CR it
    leaves unquoted ends the row for every reader (AttributesData from the SES API may hold one)."""
    return csv.writer(out, lineterminator="\n"), csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)


class SafeCsvWriter:
    """``csv.writer`` for the CSV files we write: every text cell through :func:`encode_cell`, and a row with
    a bare CR quoted (:func:`csv_writers`)."""

    def __init__(self, out: SupportsWrite[str]) -> None:
        self._minimal, self._quoted = csv_writers(out)

    def writerow(self, row: Iterable[object]) -> None:
        cells = [encode_cell(c) if type(c) is str else c for c in row]
        cr = any(type(c) is str and "\r" in c for c in cells)
        (self._quoted if cr else self._minimal).writerow(cells)

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


# -- pass 1: the bytes ---------------------------------------------------------------------------------


class CsvWriter:
    """The page's CSV: one ``topicPreferences.<Topic>`` column per topic of the list."""

    def __init__(self, out: IO[bytes], topics: Iterable[str]) -> None:
        self.topics = list(topics)
        self._text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
        self._writer = SafeCsvWriter(self._text)
        self._writer.writerow([EMAIL, UNSUBSCRIBE_ALL, ATTRIBUTES, *(TOPIC_PREFIX + t for t in self.topics)])

    def write_row(self, email: str, unsubscribe_all: bool, attributes: str | None, topics: dict[str, str]) -> None:
        row = [email, "true" if unsubscribe_all else "false", attributes or ""]
        if self.topics:
            row += [topics.get(t, "") for t in self.topics]
        self._writer.writerow(row)

    def write(self, contact: Contact) -> None:
        self.write_row(contact.email, contact.unsubscribe_all, contact.attributes_data, dict(contact.topic_preferences))

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


class JsonLinesWriter:
    """SES's import format (:func:`sescontacts.ses_wire.import_line`): one object per line, attributesData as a
    string holding the object."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write_row(self, email: str, unsubscribe_all: bool, attributes: str | None, topics: dict[str, str]) -> None:
        self.out.write(import_line(email, unsubscribe_all, attributes, topics))

    def write(self, contact: Contact) -> None:
        self.write_row(contact.email, contact.unsubscribe_all, contact.attributes_data, dict(contact.topic_preferences))

    def close(self) -> None:
        self.out.flush()
