"""The local backend: contact lists in a SQLite file, and the ses backend's searchable mirror."""

from __future__ import annotations

from .store import ADDRESS_CANDIDATES, ADDRESS_PROBE, MIGRATIONS, SqliteContactStore

__all__ = ["ADDRESS_CANDIDATES", "ADDRESS_PROBE", "MIGRATIONS", "SqliteContactStore"]
