"""The contact tables: the local backend's store and the ses backend's mirror (schema owner "contacts").

Layout decisions, each for a measured reason:
- ``contacts`` is WITHOUT ROWID with primary key (list_id, email_key): pages ordered by address are a range
  scan of the table itself, and an upsert touches one B-tree.
- ``email_key`` is the lower-cased address (identity, see :func:`validation.email_key`); ``email`` keeps
  the spelling first written, which is what every API returns.
- Totals (all, unsubscribed) and additions per day are kept in the list's row and ``list_daily``, updated in
  the same transaction as the contacts they count, so a page view never counts a million rows.
- Topic preferences are a JSON object per contact; per-topic counts are computed on demand and cached until
  the list's ``generation`` changes.

Only this package writes SQL against these tables; the ses backend goes through :mod:`.mirror`.
"""

from __future__ import annotations

import sqlite3

from ...db import Migrations, SqlFunction, run_script
from ...model import attributes_match
from ...validation import email_key


def _schema_v1(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE contact_lists (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            description TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            created REAL NOT NULL,
            updated REAL NOT NULL,
            contact_count INTEGER NOT NULL DEFAULT 0,
            unsubscribed_count INTEGER NOT NULL DEFAULT 0,
            generation INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE topics (
            list_id INTEGER NOT NULL REFERENCES contact_lists(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            display_name TEXT NOT NULL,
            description TEXT,
            default_status TEXT NOT NULL,
            PRIMARY KEY (list_id, name)
        ) WITHOUT ROWID;
        CREATE TABLE contacts (
            list_id INTEGER NOT NULL,
            email_key TEXT NOT NULL,
            email TEXT NOT NULL,
            unsubscribe_all INTEGER NOT NULL DEFAULT 0,
            topics TEXT,
            attributes TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (list_id, email_key)
        ) WITHOUT ROWID;
        CREATE INDEX contacts_by_updated ON contacts (list_id, updated, email_key);
        CREATE INDEX contacts_unsubscribed ON contacts (list_id, email_key) WHERE unsubscribe_all = 1;
        CREATE TABLE list_daily (
            list_id INTEGER NOT NULL,
            day TEXT NOT NULL,
            added INTEGER NOT NULL,
            PRIMARY KEY (list_id, day)
        ) WITHOUT ROWID;
        """,
    )


def _rekey_nfc(conn: sqlite3.Connection) -> None:
    """``email_key`` became NFC-normalised (see :func:`model.email_key`): re-key the rows whose key changes.

    Only non-ASCII keys can change (byte length differs from character length). A row whose new key is
    already taken (both spellings were stored before) keeps its old key, so nothing is lost.
    """
    rows = conn.execute(
        "SELECT list_id, email_key, email FROM contacts WHERE length(email_key) != length(CAST(email_key AS BLOB))"
    ).fetchall()
    for list_id, old_key, email in rows:
        new_key = email_key(email)
        if new_key != old_key:
            conn.execute(
                "UPDATE OR IGNORE contacts SET email_key = ? WHERE list_id = ? AND email_key = ?",
                (new_key, list_id, old_key),
            )


# Listed in schema.PRODUCT_SCHEMA. Never edit or reorder these steps: versions count per owner.
MIGRATIONS = Migrations(
    "contacts",
    (_schema_v1, _rekey_nfc),
    functions=(SqlFunction("sescontacts_attributes_match", 3, attributes_match),),
)
