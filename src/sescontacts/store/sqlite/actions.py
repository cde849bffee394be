"""Bulk actions on the contacts a query matches, set-based: two statements a keyset batch, no contact in Python.

The console's "all N matching" (delete, unsubscribe, resubscribe, opt in to or out of a topic) walks the list
in key order, one batch at a time (``ContactStore.apply_to_matching``). A batch is, in the caller's
transaction: one SELECT that reads the batch's last key and what the counters need (how many match, how many
of those are unsubscribed), then one UPDATE (or DELETE) over that key range with the same WHERE clause, then
the list's counters moved by what changed. So a million contacts cost about what one UPDATE over them costs
(``bench/actions.py``), where going through the import path (``upsert_contacts``) would read every contact
into Python and write it back.
"""

from __future__ import annotations

import dataclasses
import sqlite3

from ...model import OPT_OUT, AddressIdentity, ContactList, ContactQuery
from ...validation import unknown_topic
from ..base import TOPIC_ACTIONS, BulkAction, MatchingStep
from . import history_record, search_index
from .rows import json_path
from .search import where
from .writes import count


def _walk(
    list_id: int,
    contact_list: ContactList,
    query: ContactQuery,
    identity: AddressIdentity,
    after: str | None,
    created_before: float | None,
) -> tuple[str, list[object]]:
    """The query's WHERE clause, past ``after`` and without contacts created after ``created_before``."""
    clause, params = where(list_id, contact_list, query, identity)
    if after is not None:
        clause += " AND email_key > ?"
        params.append(after)
    if created_before is not None:
        clause += " AND created <= ?"
        params.append(created_before)
    return clause, params


def apply_to_matching(
    conn: sqlite3.Connection,
    list_id: int,
    contact_list: ContactList,
    query: ContactQuery,
    action: BulkAction,
    *,
    topic: str | None,
    after: str | None,
    limit: int | None,
    created_before: float | None,
    now: float,
    identity: AddressIdentity,
    dry_run: bool,
) -> MatchingStep:
    """One batch of a bulk action (see ``ContactStore.apply_to_matching``), in the caller's transaction.

    A topic action reads and sets one member of the ``topics`` JSON (``json_set``), so it too is one SELECT and
    one UPDATE; it moves no counter but the list's generation (per-topic counts are cached by it)."""
    status = TOPIC_ACTIONS.get(action)
    path: list[object] = []
    if status is not None:
        if topic is None or contact_list.topic(topic) is None:
            raise unknown_topic(contact_list.name, str(topic))
        path = [json_path(topic)]
    clause, params = _walk(list_id, contact_list, query, identity, after, created_before)
    chosen = "json_extract(topics, ?)" if path else "NULL"
    window = f"SELECT email_key, unsubscribe_all, {chosen} AS chosen FROM contacts WHERE {clause} ORDER BY email_key"
    if limit is not None:
        window += f" LIMIT {int(limit)}"
    matched, unsubscribed, last, opted_out, differ = conn.execute(
        "SELECT count(*), coalesce(sum(unsubscribe_all), 0), max(email_key), "
        f"coalesce(sum(chosen = '{OPT_OUT}'), 0), coalesce(sum(chosen IS NOT ?), 0) FROM ({window})",
        (status, *path, *params),
    ).fetchone()
    more = last if limit is not None and matched >= limit else None
    if action == "delete":
        changed = matched
    elif action == "unsubscribe":
        changed = matched - unsubscribed
    elif action == "resubscribe":
        changed = unsubscribed
    else:
        changed = differ
    counted = MatchingStep(matched, changed, more, unsubscribed=unsubscribed, opted_out=opted_out)
    if dry_run or not changed:
        return counted
    # The same rows as the SELECT (one transaction): its WHERE clause, up to the batch's last key.
    bounded = f"{clause} AND email_key <= ?"
    actor = history_record.actor_id(conn)  # each statement's rows are recorded first, by one INSERT ... SELECT
    if action == "delete":
        # The search index logs each deleted contact: tell it first, so a big delete restarts it instead.
        search_index.before_bulk_write(conn, list_id, matched)
        history_record.record_deleting(conn, bounded, (*params, last), now, actor)
        conn.execute(f"DELETE FROM contacts WHERE {bounded}", (*params, last))
        count(conn, list_id, now, removed=matched, unsubscribed=-unsubscribed)
    elif status is not None:
        history_record.record_updating(
            conn,
            f"{bounded} AND json_extract(topics, ?) IS NOT ?",
            (*params, last, *path, status),
            now,
            actor,
            topics_sql="json_set(coalesce(topics, '{}'), ?, ?)",
            topics_params=(*path, status),
        )
        changed = conn.execute(
            f"UPDATE contacts SET topics = json_set(coalesce(topics, '{{}}'), ?, ?), updated = ? "
            f"WHERE {bounded} AND json_extract(topics, ?) IS NOT ?",
            (*path, status, now, *params, last, *path, status),
        ).rowcount
        count(conn, list_id, now)
    else:
        flag = int(action == "unsubscribe")
        # updated = now, as every write: "recently updated" shows them, and the ses backend's sync reads it.
        history_record.record_updating(
            conn, f"{bounded} AND unsubscribe_all = ?", (*params, last, 1 - flag), now, actor, unsubscribe_all=flag
        )
        changed = conn.execute(
            f"UPDATE contacts SET unsubscribe_all = ?, updated = ? WHERE {bounded} AND unsubscribe_all = ?",
            (flag, now, *params, last, 1 - flag),
        ).rowcount
        count(conn, list_id, now, unsubscribed=changed if flag else -changed, turned_unsubscribed=changed * flag)
    return dataclasses.replace(counted, changed=changed)


def matching_keys(
    conn: sqlite3.Connection,
    list_id: int,
    contact_list: ContactList,
    query: ContactQuery,
    *,
    after: str | None,
    limit: int,
    created_before: float | None,
    identity: AddressIdentity,
) -> list[tuple[str, str]]:
    """(key, address as spelled) of the next ``limit`` matching contacts in key order: the walk of
    :func:`apply_to_matching`, for a backend that applies each batch elsewhere (the ses backend's mirror)."""
    clause, params = _walk(list_id, contact_list, query, identity, after, created_before)
    rows = conn.execute(
        f"SELECT email_key, email FROM contacts WHERE {clause} ORDER BY email_key LIMIT ?", (*params, limit)
    )
    return [(str(key), str(email)) for key, email in rows]
