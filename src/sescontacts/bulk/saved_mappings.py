"""The last column mapping used for each header, kept in the data dir's database (table ``import_mappings``).

A user who imports this month's Mailchimp export maps its columns once; next month's file, with the same
header, opens the mapping step with that mapping filled in. Kept server-side (not in a cookie): it follows
the data, whoever logs in, and holds column names nobody should have to send back and forth.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from ..db import Database, run_script
from .formats.mapping import header_key


def mappings_v3(conn: sqlite3.Connection) -> None:
    """The ``bulk`` owner's third step (job_records.MIGRATIONS): one mapping per header set."""
    run_script(
        conn,
        """
        CREATE TABLE import_mappings (
            header_key TEXT PRIMARY KEY,
            mapping TEXT NOT NULL,
            saved REAL NOT NULL
        );
        """,
    )


@dataclass(frozen=True)
class SavedMapping:
    """A mapping as saved: column name -> field spec, and when (epoch seconds)."""

    mapping: dict[str, str]
    saved: float


class SavedMappings:
    """Remember and recall the mapping last used for a header (its set of names, case and order ignored)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def remember(self, header: Sequence[str], mapping: dict[str, str]) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO import_mappings (header_key, mapping, saved) VALUES (?, ?, ?) "
                "ON CONFLICT(header_key) DO UPDATE SET mapping = excluded.mapping, saved = excluded.saved",
                (header_key(header), orjson.dumps(mapping).decode(), time.time()),
            )

    def recall(self, header: Sequence[str]) -> SavedMapping | None:
        row = (
            self.db.reader()
            .execute("SELECT mapping, saved FROM import_mappings WHERE header_key = ?", (header_key(header),))
            .fetchone()
        )
        if row is None:
            return None
        return SavedMapping(dict(orjson.loads(row[0])), float(row[1]))
