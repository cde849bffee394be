"""Contact list rows: reading a list with its topics, writing topics and tags, and the per-topic counts.

The functions run in the caller's transaction (``conn``); the store and the mirror helpers open it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

import orjson

from ...errors import ListNotFound, NotFound
from ...model import OPT_IN, OPT_OUT, ContactList, DayCounts, Topic, TopicCounts
from ...validation import check_tags
from . import history_record, search_index
from .rows import json_path


def list_not_found(name: str) -> ListNotFound:
    """SES's error for a list it does not have (raised by every call that names one)."""
    return ListNotFound(f"List with name: {name} doesn't exist.", field="ContactListName")


def find_list_id(conn: sqlite3.Connection, name: str) -> int | None:
    """The list's row id, or None when there is no such list."""
    row = conn.execute("SELECT id FROM contact_lists WHERE name = ?", (name,)).fetchone()
    return None if row is None else int(row[0])


def list_id(conn: sqlite3.Connection, name: str) -> int:
    """The list's row id; :class:`ListNotFound` when there is none."""
    found = find_list_id(conn, name)
    if found is None:
        raise list_not_found(name)
    return found


def list_row(conn: sqlite3.Connection, name: str) -> tuple[int, ContactList]:
    """The list's row id and the list with its topics in order; :class:`ListNotFound` when there is none."""
    row = conn.execute(
        "SELECT id, name, description, tags, created, updated FROM contact_lists WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        raise list_not_found(name)
    found_id = row[0]
    topics = tuple(
        Topic(name=t[0], display_name=t[1], description=t[2], default_status=t[3])
        for t in conn.execute(
            "SELECT name, display_name, description, default_status FROM topics WHERE list_id = ? ORDER BY position",
            (found_id,),
        )
    )
    tags = tuple((k, v) for k, v in orjson.loads(row[3]))
    return found_id, ContactList(
        name=row[1], topics=topics, description=row[2], tags=tags, created=row[4], updated=row[5]
    )


def count_lists(conn: sqlite3.Connection) -> int:
    """How many lists there are (SES's quota counts them)."""
    (count,) = conn.execute("SELECT count(*) FROM contact_lists").fetchone()
    return int(count)


def list_names_after(conn: sqlite3.Connection, after: str, limit: int) -> list[str]:
    """Up to ``limit`` list names after ``after``, in name order (a keyset page)."""
    return [
        r[0]
        for r in conn.execute("SELECT name FROM contact_lists WHERE name > ? ORDER BY name LIMIT ?", (after, limit))
    ]


def insert_list(
    conn: sqlite3.Connection,
    name: str,
    *,
    topics: Sequence[Topic],
    description: str | None,
    tags: Sequence[tuple[str, str]],
    created: float,
    updated: float,
) -> int:
    """A new list row and its topics; its row id."""
    cursor = conn.execute(
        "INSERT INTO contact_lists (name, description, tags, created, updated) VALUES (?, ?, ?, ?, ?)",
        (name, description, orjson.dumps(list(tags)).decode(), created, updated),
    )
    assert cursor.lastrowid is not None
    write_topics(conn, cursor.lastrowid, topics)
    search_index.list_created(conn, cursor.lastrowid)
    return cursor.lastrowid


def write_topics(conn: sqlite3.Connection, list_id: int, topics: Sequence[Topic]) -> None:
    """Replace the list's topics with ``topics``, in their order."""
    conn.execute("DELETE FROM topics WHERE list_id = ?", (list_id,))
    conn.executemany(
        "INSERT INTO topics (list_id, position, name, display_name, description, default_status) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(list_id, i, t.name, t.display_name, t.description, t.default_status) for i, t in enumerate(topics)],
    )


def replace_topics(conn: sqlite3.Connection, list_id: int, current: ContactList, topics: Sequence[Topic]) -> None:
    """Replace the list's topics and drop the contacts' preferences for topics no longer on it (SES's
    UpdateContactList)."""
    write_topics(conn, list_id, topics)
    kept = {t.name for t in topics}
    actor = history_record.actor_id(conn)
    for removed in (t.name for t in current.topics if t.name not in kept):
        history_record.record_updating(
            conn,
            "list_id = ? AND topics IS NOT NULL AND json_type(topics, ?) IS NOT NULL",
            (list_id, json_path(removed)),
            time.time(),
            actor,
            topics_sql="nullif(json_remove(topics, ?), '{}')",
            topics_params=(json_path(removed),),
        )
        conn.execute(
            "UPDATE contacts SET topics = nullif(json_remove(topics, ?), '{}') "
            "WHERE list_id = ? AND topics IS NOT NULL",
            (json_path(removed), list_id),
        )


def update_list_row(
    conn: sqlite3.Connection, list_id: int, *, description: str | None, updated: float, keep_description: bool = True
) -> None:
    """Set the list's description (None keeps it, or removes it when not ``keep_description``) and update time
    (UpdateContactList); a new generation, so cached topic counts are recomputed."""
    sql_description = "coalesce(?, description)" if keep_description else "?"
    conn.execute(
        f"UPDATE contact_lists SET description = {sql_description}, updated = ?, "
        "generation = generation + 1 WHERE id = ?",
        (description, updated, list_id),
    )


def mirror_list_row(conn: sqlite3.Connection, list_id: int, contact_list: ContactList) -> None:
    """Set the list's row to ``contact_list`` as another source has it (timestamps included)."""
    conn.execute(
        "UPDATE contact_lists SET description = ?, tags = ?, created = ?, updated = ?, "
        "generation = generation + 1 WHERE id = ?",
        (
            contact_list.description,
            orjson.dumps(list(contact_list.tags)).decode(),
            contact_list.created,
            contact_list.updated,
            list_id,
        ),
    )


def delete_list(conn: sqlite3.Connection, list_id: int) -> None:
    """The list, its contacts and its daily additions (topics go with it: ON DELETE CASCADE); its search
    index is cleared by the indexer, in steps."""
    search_index.list_deleted(conn, list_id)
    conn.execute("DELETE FROM contacts WHERE list_id = ?", (list_id,))
    # The list's history goes with it: a list created later may be given the same id.
    conn.execute("DELETE FROM contact_changes WHERE list_id = ?", (list_id,))
    conn.execute("DELETE FROM list_daily WHERE list_id = ?", (list_id,))
    conn.execute("DELETE FROM contact_lists WHERE id = ?", (list_id,))


def change_tags(
    conn: sqlite3.Connection, name: str, *, add: Mapping[str, str] | None = None, remove: Iterable[str] = ()
) -> None:
    """Add (or overwrite) and remove the list's tags. A missing list is a resource error here (SES's
    TagResource answers NotFound on ResourceArn)."""
    row = conn.execute("SELECT id, tags FROM contact_lists WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"No ContactList present with name: {name}", field="ResourceArn")
    tags = dict(orjson.loads(row[1]))
    if add is not None:
        tags.update(add)
    for key in remove:
        tags.pop(key, None)
    check_tags(list(tags.items()))
    conn.execute("UPDATE contact_lists SET tags = ? WHERE id = ?", (orjson.dumps(list(tags.items())).decode(), row[0]))


def list_totals(conn: sqlite3.Connection, name: str) -> tuple[int, int, int, int] | None:
    """(row id, contacts, unsubscribed, generation) from the list's row, or None when there is no such list."""
    row = conn.execute(
        "SELECT id, contact_count, unsubscribed_count, generation FROM contact_lists WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def daily_counts(conn: sqlite3.Connection, list_id: int, days: int = 90) -> tuple[DayCounts, ...]:
    """Contacts added, removed and unsubscribed per day, for the last ``days`` days that had any, oldest first."""
    rows = conn.execute(
        "SELECT day, added, removed, unsubscribed FROM list_daily WHERE list_id = ? ORDER BY day DESC LIMIT ?",
        (list_id, days),
    )
    return tuple(DayCounts(*row) for row in rows)[::-1]


class TopicCountsCache:
    """Per-topic counts by list, valid while the list's generation (and creation time) is unchanged.

    The creation time tells a list deleted and re-created by another process (SQLite may reuse the id, and
    generations restart at 0) from the one cached. Shared by a store's threads, hence the lock.
    """

    def __init__(self) -> None:
        self._cache: dict[int, tuple[tuple[int, float], tuple[TopicCounts, ...]]] = {}
        self._lock = threading.Lock()

    def counts(
        self,
        conn: sqlite3.Connection,
        list_id: int,
        contact_list: ContactList,
        generation: int,
        total: int,
        unsubscribed: int,
    ) -> tuple[TopicCounts, ...]:
        """The cached counts when current, else counted now (in ``conn``'s snapshot) and cached."""
        version = (generation, contact_list.created)
        with self._lock:
            cached = self._cache.get(list_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        counts = topic_counts(conn, list_id, contact_list, total, unsubscribed)
        with self._lock:
            self._cache[list_id] = (version, counts)
        return counts

    def forget(self, list_id: int) -> None:
        """Drop a deleted list's counts."""
        with self._lock:
            self._cache.pop(list_id, None)


def topic_counts(
    conn: sqlite3.Connection, list_id: int, contact_list: ContactList, total: int, unsubscribed: int
) -> tuple[TopicCounts, ...]:
    """Effective opt-in/opt-out per topic, defaults included, as SES would send to them."""
    if not contact_list.topics:
        return ()
    explicit: dict[tuple[str, str], int] = {}
    for topic, status, n in conn.execute(
        "SELECT j.key, j.value, count(*) FROM contacts, json_each(contacts.topics) AS j "
        "WHERE list_id = ? AND topics IS NOT NULL AND unsubscribe_all = 0 GROUP BY j.key, j.value",
        (list_id,),
    ):
        explicit[(topic, status)] = n
    subscribed = total - unsubscribed
    counts = []
    for topic in contact_list.topics:
        opt_in = explicit.get((topic.name, OPT_IN), 0)
        opt_out = explicit.get((topic.name, OPT_OUT), 0)
        undecided = subscribed - opt_in - opt_out
        if topic.default_status == OPT_IN:
            opt_in += undecided
        else:
            opt_out += undecided
        counts.append(TopicCounts(topic.name, opt_in, opt_out + unsubscribed))
    return tuple(counts)
