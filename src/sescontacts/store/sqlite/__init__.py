"""The local backend: contact lists in a SQLite file, and the ses backend's searchable mirror.

One concern a module: :mod:`.schema` (the tables, schema owner "contacts"), :mod:`.rows` (a contact as a
row), :mod:`.lists`, :mod:`.writes`, :mod:`.search` (with :mod:`.search_index`, the tables it reads, and
:mod:`.search_indexer`, which fills them), :mod:`.bulk`, :mod:`.actions`, :mod:`.export`, :mod:`.mirror`
(what the ses backend writes into its mirror) and :mod:`.store` (the ``ContactStore`` composing them).
Only this package writes SQL against the contact tables.
"""

from __future__ import annotations

from .mirror import (
    mirror_contacts,
    mirror_existing,
    mirror_list,
    mirror_matching,
    mirror_remove,
    mirror_spellings,
    mirror_unlisted,
)
from .schema import MIGRATIONS
from .search_indexer import SearchIndexer
from .store import SqliteContactStore

__all__ = [
    "MIGRATIONS",
    "SearchIndexer",
    "SqliteContactStore",
    "mirror_contacts",
    "mirror_existing",
    "mirror_list",
    "mirror_matching",
    "mirror_remove",
    "mirror_spellings",
    "mirror_unlisted",
]
