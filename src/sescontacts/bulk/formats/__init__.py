"""Streaming readers and writers for the bulk file formats: CSV and JSON, as the product page shows them.

Reading happens in two passes over the bytes, never holding the file in memory:

1. ``detect.scan`` (C-speed: hashing, UTF-8 decoding, byte counts) finds what makes a whole file unusable -
   binary content, UTF-16, invalid UTF-8, an unterminated quote - and its line and column, *before* the
   importer writes anything. It also hashes the file (the job record keeps the sha256).
2. ``reader.Reader`` turns each record into a :class:`~sescontacts.model.ContactPatch` (or, for deletes, an
   address) or a :class:`~sescontacts.bulk.report.Reject` naming line, address, column and reason. A bad row
   never stops the file. ``Reader.records`` gives them one by one (the preview); ``Reader.blocks`` gives the
   same records a block at a time as columns (the importer).

The modules, one concern each (imports run down this list, never up):

- ``fields``: column names, cell values (booleans, statuses, addresses, attributes), the CSV cell encoding
  that keeps a spreadsheet from running a cell, ``ReadOptions``.
- ``columns``: a block of records as columns (``Rows``), checked column by column at C speed; the readers'
  per-row functions decide every row those checks do not plainly accept (the importer's way to read).
- ``detect``: pass 1, and what the file is (CSV or JSON, its delimiter, its JSON layout).
- ``csv_reader``; ``json_reader`` with ``json_object`` (one object to a record) and ``json_syntax``
  (cutting, repairing and placing JSON text).
- ``reader``: ``open_reader`` and ``Reader``, which picks the CSV or the JSON reader.
- ``writers``: the page's CSV, SES's JSON Lines, and the CSV writer behind every CSV file we write.

This package exports what the importer and the exporter use; anything else, import from its module.
"""

from __future__ import annotations

from .fields import (
    ATTRIBUTES,
    EMAIL,
    FORMULA_TRIGGERS,
    TOPIC_PREFIX,
    UNSUBSCRIBE_ALL,
    ReadOptions,
    decode_cell,
    encode_cell,
)
from .reader import Reader, open_reader, validate_structure
from .writers import CsvWriter, JsonLinesWriter, SafeCsvWriter, csv_writers

__all__ = [
    "ATTRIBUTES",
    "EMAIL",
    "FORMULA_TRIGGERS",
    "TOPIC_PREFIX",
    "UNSUBSCRIBE_ALL",
    "CsvWriter",
    "JsonLinesWriter",
    "ReadOptions",
    "Reader",
    "SafeCsvWriter",
    "csv_writers",
    "decode_cell",
    "encode_cell",
    "open_reader",
    "validate_structure",
]
