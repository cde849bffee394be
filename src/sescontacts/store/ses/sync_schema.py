"""The ses backend's sync tables (what a sync has done, the contacts it saw, the queue still to fetch).

Declared apart from ``sync.py`` so that the product schema lists them without importing boto3: a data dir
on the local backend opens without it. ``sync.py`` and the store's row-by-row writes use these tables.
"""

from __future__ import annotations

import sqlite3

from ...db import Migrations, run_script
from ...model import exact_email_key
from ..sqlite.schema import folded_key_spellings


def _schema_v1(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE ses_sync (
            list_name TEXT PRIMARY KEY,
            state TEXT NOT NULL DEFAULT 'idle',
            kind TEXT,
            started REAL,
            next_token TEXT,
            pages INTEGER NOT NULL DEFAULT 0,
            seen INTEGER NOT NULL DEFAULT 0,
            fetched INTEGER NOT NULL DEFAULT 0,
            removed INTEGER NOT NULL DEFAULT 0,
            calls INTEGER NOT NULL DEFAULT 0,
            estimate INTEGER NOT NULL DEFAULT 0,
            last_synced REAL,
            last_full REAL,
            last_duration REAL,
            last_error TEXT
        );
        CREATE TABLE ses_sync_seen (
            list_name TEXT NOT NULL,
            email_key TEXT NOT NULL,
            PRIMARY KEY (list_name, email_key)
        ) WITHOUT ROWID;
        """,
    )


def _schema_v2(conn: sqlite3.Connection) -> None:
    # Contacts written row by row without reading SES's new LastUpdatedTimestamp back (one call saved a row):
    # the mirror has their state; the next walk takes the timestamp from ListContacts (see MirrorSync.sync).
    conn.execute(
        "CREATE TABLE ses_pending (list_name TEXT NOT NULL, email_key TEXT NOT NULL, written_at REAL NOT NULL, "
        "PRIMARY KEY (list_name, email_key)) WITHOUT ROWID"
    )


def _schema_v3(conn: sqlite3.Connection) -> None:
    # Two phases: the walk writes what ListContacts shows at once (the console has every contact, its
    # subscription state and counts after ~1 call per 1,000 contacts), the fetch phase then reads the
    # attributes of the contacts in ses_unfetched one GetContact at a time.
    conn.execute("ALTER TABLE ses_sync ADD COLUMN phase TEXT NOT NULL DEFAULT 'walk'")
    conn.execute(
        "CREATE TABLE ses_unfetched (list_name TEXT NOT NULL, email_key TEXT NOT NULL, email TEXT NOT NULL, "
        "PRIMARY KEY (list_name, email_key)) WITHOUT ROWID"
    )


def _schema_v4(conn: sqlite3.Connection) -> None:
    """The mirror keys contacts by SES's exact address now (``model.EXACT``), and these tables hold its keys,
    which were the folded address. ``ses_unfetched`` has each address: re-keyed from it. ``ses_pending`` and
    ``ses_sync_seen`` have only the folded key, which the mirror's rows still have at this point (they are
    re-keyed when the ses backend opens the file, ``sqlite.schema.use_identity``): re-keyed to the address
    of the mirrored contact; a mark whose contact the mirror no longer has is dropped.

    ``refetch`` marks a queued contact to read again even when SES's timestamp says the mirror has it: a
    mirrored address of which SES lists a new spelling (see ``MirrorSync._page``)."""
    unfetched = conn.execute("SELECT list_name, email, email_key FROM ses_unfetched").fetchall()
    conn.execute("DELETE FROM ses_unfetched")
    conn.execute("ALTER TABLE ses_unfetched ADD COLUMN refetch INTEGER NOT NULL DEFAULT 0")
    conn.executemany(
        "INSERT OR IGNORE INTO ses_unfetched (list_name, email_key, email) VALUES (?, ?, ?)",
        [(list_name, exact_email_key(email), email) for list_name, email, _ in unfetched],
    )
    for table in ("ses_pending", "ses_sync_seen"):
        by_list: dict[str, list[str]] = {}
        for list_name, key in conn.execute(f"SELECT list_name, email_key FROM {table}"):
            by_list.setdefault(list_name, []).append(key)
        for list_name, keys in by_list.items():
            spelled = folded_key_spellings(conn, list_name, keys)
            conn.executemany(
                f"UPDATE {table} SET email_key = ? WHERE list_name = ? AND email_key = ?",
                [(exact_email_key(spelled[key]), list_name, key) for key in keys if key in spelled],
            )
            conn.executemany(
                f"DELETE FROM {table} WHERE list_name = ? AND email_key = ?",
                [(list_name, key) for key in keys if key not in spelled],
            )


# Listed in schema.PRODUCT_SCHEMA.
MIGRATIONS = Migrations("ses_sync", (_schema_v1, _schema_v2, _schema_v3, _schema_v4))
