"""The delivery-event tables (schema owner "events"), kept on both backends (SES keeps no event history).

- ``delivery_events``: one row per bounce or complaint *recipient* (an SES event names several recipients),
  unique by ``event_key`` so the same event ingested twice (a redelivered SQS message, a re-imported file)
  changes nothing. Indexed by address and time for a contact's history, by time for the days chart.
- ``address_marks``: per folded address, what the console filters and shows without reading the history:
  the last permanent bounce, the last complaint, transient bounces in the current window. Kept for
  addresses in no list too, so a contact added later shows its past.
- ``event_daily``: per UTC day, sends, deliveries, bounces (permanent / transient) and complaints, for the
  overview chart and the bounce and complaint rates.
- ``counted_events``: the keys of the sends and deliveries already counted in ``event_daily`` (they have no
  history row), so a redelivered one is not counted twice.
- ``pending_actions``: new events whose rules have not yet acted on the lists (written in the event's own
  transaction, removed when the actions are done): a store that commits each call (SES) and a process killed
  in between lose no action, and a re-ingested event, not new, never acts again.
- ``event_rules``: each list's rules (``list_name`` '' holds the defaults for every list without its own).
- ``event_poison``: queue messages that could not be read, kept with the reason and their body before the
  message is deleted (one row per SQS message ID, so a message redelivered before its delete is kept once).
"""

from __future__ import annotations

import sqlite3

from ..db import Migrations, run_script


def _schema_v1(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE delivery_events (
            id INTEGER PRIMARY KEY,
            event_key TEXT NOT NULL UNIQUE,
            email_key TEXT NOT NULL,
            email TEXT NOT NULL,
            kind TEXT NOT NULL,
            bounce_type TEXT,
            bounce_subtype TEXT,
            complaint_type TEXT,
            diagnostic_code TEXT,
            status_code TEXT,
            message_id TEXT,
            feedback_id TEXT,
            time REAL NOT NULL,
            received REAL NOT NULL,
            source TEXT NOT NULL
        );
        CREATE INDEX delivery_events_by_address ON delivery_events (email_key, time);
        CREATE INDEX delivery_events_by_time ON delivery_events (time);
        CREATE TABLE address_marks (
            email_key TEXT PRIMARY KEY,
            email TEXT NOT NULL,
            bounced_at REAL,
            complained_at REAL,
            transient_count INTEGER NOT NULL DEFAULT 0,
            transient_since REAL,
            last_event_at REAL NOT NULL,
            last_event_kind TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE event_daily (
            day TEXT PRIMARY KEY,
            sends INTEGER NOT NULL DEFAULT 0,
            deliveries INTEGER NOT NULL DEFAULT 0,
            permanent_bounces INTEGER NOT NULL DEFAULT 0,
            transient_bounces INTEGER NOT NULL DEFAULT 0,
            complaints INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE TABLE counted_events (
            id INTEGER PRIMARY KEY,
            event_key TEXT NOT NULL UNIQUE
        );
        CREATE TABLE pending_actions (
            event_id INTEGER PRIMARY KEY
        );
        CREATE TABLE event_rules (
            list_name TEXT PRIMARY KEY,
            on_permanent_bounce TEXT NOT NULL,
            on_complaint TEXT NOT NULL,
            on_transient TEXT,
            transient_limit INTEGER,
            transient_window_days REAL
        ) WITHOUT ROWID;
        CREATE TABLE event_poison (
            id INTEGER PRIMARY KEY,
            message_id TEXT UNIQUE,
            received REAL NOT NULL,
            source TEXT NOT NULL,
            reason TEXT NOT NULL,
            body TEXT NOT NULL
        );
        """,
    )


def _added_v2(conn: sqlite3.Connection) -> None:
    """Contacts added after their address bounced or complained (events/added.py): which got their list's rule
    (once: a contact the user resubscribes after that keeps it), and how far each list was checked."""
    run_script(
        conn,
        """
        CREATE TABLE added_acted (
            list_name TEXT NOT NULL,
            email_key TEXT NOT NULL,
            kind TEXT NOT NULL,
            acted_at REAL NOT NULL,
            PRIMARY KEY (list_name, email_key, kind)
        ) WITHOUT ROWID;
        CREATE TABLE added_checked (
            list_name TEXT PRIMARY KEY,
            checked_at REAL NOT NULL
        ) WITHOUT ROWID;
        """,
    )


MIGRATIONS = Migrations("events", (_schema_v1, _added_v2))


def _sns_v1(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE sns_messages (
            message_id TEXT PRIMARY KEY,
            topic_arn TEXT NOT NULL,
            type TEXT NOT NULL,
            received REAL NOT NULL,
            outcome TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX sns_messages_by_time ON sns_messages (received);
        """,
    )


# The SNS endpoint's (events/sns_endpoint.py) message IDs it accepted: a table owner of its own, declared here
# so that opening the database never imports the web server.
SNS_MIGRATIONS = Migrations("sns", (_sns_v1,))
