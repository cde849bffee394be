"""The ses backend's sync tables (what a sync has done, the contacts it saw, the queue still to fetch).

Declared apart from ``sync.py`` so that the product schema lists them without importing boto3: a data dir
on the local backend opens without it. ``sync.py`` and the store's row-by-row writes use these tables.
"""

from __future__ import annotations

import sqlite3

from ...db import Migrations, run_script


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


# Listed in schema.PRODUCT_SCHEMA.
MIGRATIONS = Migrations("ses_sync", (_schema_v1, _schema_v2, _schema_v3))
