"""The contact tables: the local backend's store and the ses backend's mirror (schema owner "contacts").

Layout decisions, each for a measured reason:
- ``contacts`` is WITHOUT ROWID with primary key (list_id, email_key): pages ordered by address are a range
  scan of the table itself, and an upsert touches one B-tree.
- ``email_key`` is the contact's identity under the store's rule (:class:`model.AddressIdentity`): the
  lower-cased, NFC address on the local backend, that plus the exact address in the ses backend's mirror (SES
  may keep two spellings apart). ``meta`` records which rule the keys follow (:func:`use_identity`). ``email``
  keeps the spelling first written, which is what every API returns.
- Totals (all, unsubscribed) and additions, removals and unsubscribes per day are kept in the list's row and
  ``list_daily``, updated in the same transaction as the contacts they count, so a page view never counts a
  million rows.
- Topic preferences are a JSON object per contact (NULL: none chosen); per-topic counts are computed on demand
  and cached until the list's ``generation`` changes. ``contacts_topic_choices`` (a partial index of the
  contacts with any choice) answers a topic filter only a choice can match, e.g. opted in to a topic whose
  default is OPT_OUT, without reading every contact's JSON.
- Attribute and address search read the tables of :mod:`.search_index`, which triggers on ``contacts`` keep
  exact (a changed contact is logged, and searched by the plain predicate until the index has it).

Only this package writes SQL against these tables; the ses backend goes through :mod:`.mirror`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from ...db import Database, Migrations, SqlFunction, run_script
from ...errors import SesContactsError
from ...model import FOLDED, AddressIdentity, attributes_match, email_key
from . import search_index


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


def _topic_choices(conn: sqlite3.Connection) -> None:
    """The contacts with an explicit topic choice, in address order: a topic filter that only an explicit
    choice can match (opted in to a topic whose default is not OPT_IN) reads them instead of every contact's
    ``topics`` (554 ms at 1M, 7.6 s at 10M when few chose). A contact without one costs a write nothing."""
    conn.execute("CREATE INDEX contacts_topic_choices ON contacts (list_id, email_key) WHERE topics IS NOT NULL")


# Listed in schema.PRODUCT_SCHEMA. Never edit or reorder these steps: versions count per owner.
def _daily_removals(conn: sqlite3.Connection) -> None:
    """``list_daily`` counts removals and unsubscribes too (the console's overview shows them per day); days
    before this version show none."""
    conn.execute("ALTER TABLE list_daily ADD COLUMN removed INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE list_daily ADD COLUMN unsubscribed INTEGER NOT NULL DEFAULT 0")


def _last_batch(conn: sqlite3.Connection) -> None:
    """Each contact names the last recorded batch row that updated it (``history_record`` says why): NULL for
    a contact no recorded batch has updated."""
    conn.execute("ALTER TABLE contacts ADD COLUMN last_batch INTEGER")


def _attribute_match_sql(text: str | None, key: str, value: str | None, exact: int) -> bool:
    """:func:`model.attributes_match` as SQL calls it (an ``exact`` flag is an integer there)."""
    return attributes_match(text, key, value, exact=bool(exact))


MIGRATIONS = Migrations(
    "contacts",
    (
        _schema_v1,
        _rekey_nfc,
        search_index.create_tables,
        search_index.create_value_table,
        _topic_choices,
        _daily_removals,
        search_index.fold_values,
        search_index.merge_built_indexes,
        _last_batch,
    ),
    functions=(SqlFunction("sescontacts_attributes_match", 4, _attribute_match_sql),),
)


# The ``meta`` row naming the rule ``contacts.email_key`` follows; a file without it was written before the
# rule could change, when every key was the folded address.
IDENTITY_META = "contacts_identity"


def use_identity(db: Database, identity: AddressIdentity) -> None:
    """Make the contacts' keys follow ``identity``, re-keying them when the file was keyed by the other rule
    (a data directory that moves between backends, and every ses-backend mirror written before its keys
    became exact). One transaction: a file is never half re-keyed.

    Rows that the folded rule merged cannot be split here (SES's other spelling was never stored): the ses
    backend's next sync reads them again (see ``store/ses/sync.py``). The other way, a mirror holding several
    spellings of one address cannot be keyed by the folded rule without losing contacts: refused, naming them.
    """
    if db.meta(IDENTITY_META) == identity.name:
        return
    with db.write() as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (IDENTITY_META,)).fetchone()
        if (row[0] if row else FOLDED.name) != identity.name:
            _rekey(conn, identity)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (IDENTITY_META, identity.name),
        )


def _rekey(conn: sqlite3.Connection, identity: AddressIdentity) -> None:
    # One statement, any size of list (SQLite walks it, not Python). Old and new keys never collide on the
    # way: exact keys hold a separator, folded keys never do.
    conn.create_function("sescontacts_rekey", 1, identity.key, deterministic=True)
    try:
        merged = conn.execute(
            "SELECT group_concat(email, ', ') FROM (SELECT list_id, email, sescontacts_rekey(email) AS k "
            "FROM contacts ORDER BY email) GROUP BY list_id, k HAVING count(*) > 1 LIMIT 5"
        ).fetchall()
        if merged:
            groups = "; ".join(m[0] for m in merged)
            raise SesContactsError(
                f"This database keeps apart addresses that differ only in case or accent encoding ({groups}), "
                "as SES kept them on the ses backend; the local backend would make each group one contact. "
                "Delete all but one address of each group with the ses backend first, or use another data "
                "directory."
            )
        search_index.reset_all(conn)  # every key changes: nothing to log, every list's index is built again
        conn.execute(
            "UPDATE contacts SET email_key = sescontacts_rekey(email) WHERE email_key != sescontacts_rekey(email)"
        )
    finally:
        conn.create_function("sescontacts_rekey", 1, None)


def folded_key_spellings(conn: sqlite3.Connection, list_name: str, keys: Sequence[str]) -> dict[str, str]:
    """The address of the list's contact under each folded key, by key (a key with no contact is absent).

    For the migration of a table that held the folded keys of the contacts while the file was keyed by that
    rule (the ses backend's sync state): it runs when the file opens, before :func:`use_identity` re-keys."""
    rows = conn.execute(
        "SELECT c.email_key, c.email FROM contacts AS c JOIN contact_lists AS l ON l.id = c.list_id "
        "WHERE l.name = ? AND c.email_key IN (SELECT value FROM json_each(?))",
        (list_name, orjson.dumps(list(keys)).decode()),
    )
    return {str(key): str(email) for key, email in rows}
