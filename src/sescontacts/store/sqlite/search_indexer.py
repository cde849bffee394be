"""The search index's builder: numbers and entries for a range of a list, pending changes applied, grown
buckets cut, and :class:`SearchIndexer`, the server thread that does these in short write transactions.

:mod:`.search_index` holds the tables, the triggers, the hooks writes call and what searches read; this
module is the only one that fills the tables (see its docstring for the layout).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable

from ...db import Database
from .search_index import (
    MERGE_META,
    POS_BITS,
    RANK_BITS,
    attribute_entries,
    set_triggers,
    value_hash,
    want_merge,
)

CHUNK = 1000  # contacts per build step: one bucket, one write transaction (~35 ms at 9 attributes)
DRAIN = 500  # pending contacts read per step
DRAIN_SECONDS = 0.01  # a step applies them this long, then gives way to a waiting writer...
DRAIN_MAX_SECONDS = 0.1  # ...and stops after this long anyway
SPLIT = 2 * CHUNK  # a bucket grown past this by single writes is cut in two
# Room left between numbers as they are built (see search_index's layout).
RANK_STEP = 1 << 7  # between the buckets of a build: room for 7 successive cuts between two of them
POS_STEP = 1 << 12  # between the contacts of a bucket as built: 12 insertions in one place before renumbering
WINDOW = 16  # neighbours on each side renumbered first when a place has no number left (doubled until roomy)
MERGE_PAGES = 50  # trigram index pages a merge step writes: ~30 ms, up to ~200 ms for a step ending a segment


def _clear(conn: sqlite3.Connection, list_id: int, lo: str, hi: str | None) -> None:
    """Remove the index's numbers and pending rows of the keys in (lo, hi] (hi None: no end)."""
    upper = "" if hi is None else " AND {} <= ?"
    bound: tuple[object, ...] = (list_id, lo) if hi is None else (list_id, lo, hi)
    ids = conn.execute(
        f"SELECT id FROM search_address_ids WHERE collection = ? AND address > ?{upper.format('address')} ORDER BY id",
        bound,
    ).fetchall()
    conn.executemany("DELETE FROM search_addresses WHERE rowid = ?", ids)
    conn.execute(f"DELETE FROM search_address_ids WHERE collection = ? AND address > ?{upper.format('address')}", bound)
    conn.execute(f"DELETE FROM search_pending WHERE list_id = ? AND email_key > ?{upper.format('email_key')}", bound)


def _drop_bucket(conn: sqlite3.Connection, rank: int) -> None:
    pairs = conn.execute("SELECT DISTINCT name, value FROM search_attributes WHERE bucket = ?", (rank,)).fetchall()
    conn.executemany(
        "DELETE FROM search_values WHERE hash = ? AND bucket = ?", [(value_hash(n, v), rank) for n, v in pairs]
    )
    conn.execute("DELETE FROM search_attributes WHERE bucket = ?", (rank,))
    conn.execute("DELETE FROM search_buckets WHERE rank = ?", (rank,))


def _fill(conn: sqlite3.Connection, list_id: int, rank: int, upper: str, lo: str, hi: str | None) -> int:
    """Make the keys in (lo, hi] one bucket of rank ``rank`` ending at ``upper``: numbers spaced POS_STEP
    apart (closer when there are more than fit), attribute rows, trigram rows. The range must be clear.
    Returns how many contacts it holds."""
    upper_sql = "" if hi is None else " AND email_key <= ?"
    rows = conn.execute(
        f"SELECT email_key, attributes FROM contacts WHERE list_id = ? AND email_key > ?{upper_sql} ORDER BY email_key",
        (list_id, lo) if hi is None else (list_id, lo, hi),
    ).fetchall()
    step = min(POS_STEP, (1 << POS_BITS) // (len(rows) + 1))
    base = rank << POS_BITS
    numbered = [((i + 1) * step, key, text) for i, (key, text) in enumerate(rows)]
    entries = sorted((rank, name, value, pos) for pos, _, text in numbered for name, value in attribute_entries(text))
    conn.executemany("INSERT INTO search_attributes (bucket, name, value, position) VALUES (?, ?, ?, ?)", entries)
    conn.executemany(
        "INSERT OR IGNORE INTO search_values (hash, bucket) VALUES (?, ?)",
        sorted((value_hash(name, value), rank) for name, value in {(name, value) for _, name, value, _ in entries}),
    )
    conn.executemany(
        "INSERT INTO search_addresses (rowid, address, collection) VALUES (?, ?, ?)",
        [(base + pos, key, list_id) for pos, key, _ in numbered],
    )
    conn.executemany(
        "INSERT INTO search_address_ids (collection, address, id) VALUES (?, ?, ?)",
        [(list_id, key, base + pos) for pos, key, _ in numbered],
    )
    conn.execute(
        "INSERT INTO search_buckets (collection, upper, rank, size) VALUES (?, ?, ?, ?)",
        (list_id, upper, rank, len(rows)),
    )
    return len(rows)


def build_step(conn: sqlite3.Connection, list_id: int, lo: str, generation: int, orphan: bool) -> None:
    """Index the list's next range after ``lo`` (at most CHUNK contacts, and at most CHUNK leftover keys of an
    earlier index to clear), replacing whatever the tables held for it, and move ``through`` past it."""
    his = []
    for sql in (
        "SELECT email_key FROM contacts WHERE list_id = ? AND email_key > ? ORDER BY email_key LIMIT 1 OFFSET ?",
        "SELECT address FROM search_address_ids WHERE collection = ? AND address > ? ORDER BY address LIMIT 1 OFFSET ?",
    ):
        row = conn.execute(sql, (list_id, lo, CHUNK - 1)).fetchone()
        if row is not None:
            his.append(str(row[0]))
    hi = min(his) if his else None  # None: the last range, everything after lo
    # Buckets left from before (another generation) meeting the range: those ending in it, and the first
    # ending after it (it may start in it). This generation's buckets all end at or before lo.
    low_rank = generation << RANK_BITS
    current = "rank >= ? AND rank < ?"
    stale_sql = f"SELECT rank FROM search_buckets WHERE collection = ? AND upper > ? AND NOT ({current})"
    stale = conn.execute(
        stale_sql + ("" if hi is None else " AND upper <= ?"),
        (list_id, lo, low_rank, low_rank + (1 << RANK_BITS), *(() if hi is None else (hi,))),
    ).fetchall()
    if hi is not None:
        stale += conn.execute(
            stale_sql + " ORDER BY upper LIMIT 1", (list_id, hi, low_rank, low_rank + (1 << RANK_BITS))
        ).fetchall()
    for (rank,) in stale:
        _drop_bucket(conn, rank)
    _clear(conn, list_id, lo, hi)
    previous = conn.execute(
        f"SELECT rank, upper FROM search_buckets WHERE collection = ? AND {current} ORDER BY upper DESC LIMIT 1",
        (list_id, low_rank, low_rank + (1 << RANK_BITS)),
    ).fetchone()
    rank = (previous[0] if previous else low_rank) + RANK_STEP
    if rank >= low_rank + (1 << RANK_BITS):  # over 65,000 buckets: build the rest as one
        rank, hi = rank - RANK_STEP + 1, None
    last_key = conn.execute(
        "SELECT max(email_key) FROM contacts WHERE list_id = ? AND email_key > ?"
        + ("" if hi is None else " AND email_key <= ?"),
        (list_id, lo) if hi is None else (list_id, lo, hi),
    ).fetchone()[0]
    if hi is not None or last_key is not None:  # a bounded range gets its bucket even when empty
        _fill(conn, list_id, rank, hi if hi is not None else last_key, lo, hi)
    if hi is None and orphan:
        conn.execute("DELETE FROM search_state WHERE list_id = ?", (list_id,))
    else:
        conn.execute("UPDATE search_state SET through = ? WHERE list_id = ?", (hi, list_id))
    if hi is None:
        want_merge(conn)
    set_triggers(conn)


def merge_step(conn: sqlite3.Connection) -> None:
    """Merge the trigram index's segments by MERGE_PAGES pages; once there is nothing left to merge, forget
    the request (:func:`search_index.want_merge`).

    Every write transaction that touches an FTS5 table leaves it a segment, and its automerge keeps them in
    levels of up to four, so a build of a thousand steps ends with dozens of segments. A trigram query for a
    common needle then reads each term's doclist in every segment: ``domain example.com`` at 1M took 400 ms
    for one page, 0.5 ms once merged into one (4.8 s of merging in ~180 steps). FTS5's own 'optimize' does the
    same in one transaction, holding the write lock as long; its incremental 'merge' (negative: every segment,
    whatever its level) lets writers in between steps."""
    before = conn.total_changes
    conn.execute("INSERT INTO search_addresses (search_addresses, rank) VALUES ('merge', ?)", (-MERGE_PAGES,))
    if conn.total_changes - before < 2:  # FTS5's sign that the command found nothing to merge
        conn.execute("DELETE FROM meta WHERE key = ?", (MERGE_META,))


def _bucket_of(conn: sqlite3.Connection, list_id: int, key: str) -> tuple[int, str, str] | None:
    """(rank, lower bound, upper) of the bucket to hold ``key``: the first whose upper address is not below
    it, else the last one, whose upper address then becomes ``key`` (every key stays within its bucket, so
    buckets in order are addresses in order); None when the list has none."""
    row = conn.execute(
        "SELECT rank, upper FROM search_buckets WHERE collection = ? AND upper >= ? ORDER BY upper LIMIT 1",
        (list_id, key),
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT rank, upper FROM search_buckets WHERE collection = ? ORDER BY upper DESC LIMIT 1", (list_id,)
        ).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE search_buckets SET upper = ? WHERE rank = ?", (key, row[0]))
        row = (row[0], key)
    below = conn.execute(
        "SELECT upper FROM search_buckets WHERE collection = ? AND upper < ? ORDER BY upper DESC LIMIT 1",
        (list_id, row[1]),
    ).fetchone()
    return int(row[0]), "" if below is None else str(below[0]), str(row[1])


def _renumber(conn: sqlite3.Connection, list_id: int, bucket: tuple[int, str, str]) -> None:
    """Give a bucket's contacts evenly spaced numbers again: the bucket is built anew from the contacts in its
    range (their pending rows, now applied, go with the old numbers)."""
    rank, lo, upper = bucket
    _drop_bucket(conn, rank)
    _clear(conn, list_id, lo, upper)
    _fill(conn, list_id, rank, upper, lo, upper)


def _spread(conn: sqlite3.Connection, list_id: int, keys: list[str], bucket: tuple[int, str, str]) -> list[int] | None:
    """Make room for ``keys`` (new, in address order, all in one gap between indexed neighbours) where that gap
    has too few numbers left, as order-maintenance lists do: renumber the WINDOW contacts on each side of the
    gap, and the keys, evenly between the numbers around them (at most POS_STEP apart), the window doubling
    until that leaves them POS_STEP / 8 apart; returns the keys' numbers, or None when the window has grown to
    the whole bucket (then it is built anew). A run of new addresses thus moves a few dozen neighbours' rows
    once, instead of the bucket's thousand or two, or of a few dozen for every dozen of them."""
    rank, lo, upper = bucket
    base, end = rank << POS_BITS, (rank + 1) << POS_BITS
    need = max(1, POS_STEP >> 3)
    side = WINDOW
    while True:
        below = conn.execute(
            "SELECT address, id FROM search_address_ids WHERE collection = ? AND address < ? AND address > ? "
            "AND id >= ? AND id < ? ORDER BY address DESC LIMIT ?",
            (list_id, keys[0], lo, base, end, side + 1),
        ).fetchall()
        above = conn.execute(
            "SELECT address, id FROM search_address_ids WHERE collection = ? AND address > ? AND address <= ? "
            "AND id >= ? AND id < ? ORDER BY address LIMIT ?",
            (list_id, keys[-1], upper, base, end, side + 1),
        ).fetchall()
        floor = below.pop()[1] if len(below) > side else base
        ceiling = above.pop()[1] if len(above) > side else end
        if floor == base and ceiling == end:
            return None
        count = len(below) + len(above) + len(keys)  # the window and the new keys
        gap = min(POS_STEP, (ceiling - floor) // (count + 1))
        if gap >= need:
            break
        side *= 2
    window = [str(address) for address, _ in reversed(below)] + keys + [str(address) for address, _ in above]
    moved = {address: floor + (i + 1) * gap for i, address in enumerate(window)}
    numbers = [moved.pop(key) for key in keys]
    old = dict(below + above)
    # The attribute rows the index holds: a pending contact's are its old attributes (see _apply_indexed). Read
    # over the window's range of addresses (no bound on the window's size, as an IN list would have).
    span = (list_id, window[0], window[-1])
    held: dict[str, str | None] = dict(
        conn.execute("SELECT email_key, attributes FROM contacts WHERE list_id = ? AND email_key BETWEEN ? AND ?", span)
    )
    held.update(
        conn.execute(
            "SELECT email_key, old_attributes FROM search_pending WHERE list_id = ? AND email_key BETWEEN ? AND ?", span
        )
    )
    conn.executemany("DELETE FROM search_addresses WHERE rowid = ?", [(old[a],) for a in moved])
    conn.executemany(
        "DELETE FROM search_attributes WHERE bucket = ? AND name = ? AND value = ? AND position = ?",
        [(rank, n, v, old[a] - base) for a in moved for n, v in attribute_entries(held.get(a))],
    )
    conn.executemany(
        "INSERT INTO search_attributes (bucket, name, value, position) VALUES (?, ?, ?, ?)",
        [(rank, n, v, moved[a] - base) for a in moved for n, v in attribute_entries(held.get(a))],
    )
    conn.executemany(
        "INSERT INTO search_addresses (rowid, address, collection) VALUES (?, ?, ?)",
        [(moved[a], a, list_id) for a in moved],
    )
    conn.executemany(
        "UPDATE search_address_ids SET id = ? WHERE collection = ? AND address = ?",
        [(moved[a], list_id, a) for a in moved],
    )
    return numbers


def _free_numbers(conn: sqlite3.Connection, list_id: int, keys: list[str], rank: int) -> list[int] | None:
    """Numbers for ``keys`` (in address order, in one gap) between their neighbours in their bucket, evenly
    spaced (POS_STEP apart after the bucket's last contact), or None when too few are left."""
    base = rank << POS_BITS
    below = conn.execute(
        "SELECT id FROM search_address_ids WHERE collection = ? AND address < ? ORDER BY address DESC LIMIT 1",
        (list_id, keys[0]),
    ).fetchone()
    above = conn.execute(
        "SELECT id FROM search_address_ids WHERE collection = ? AND address > ? ORDER BY address LIMIT 1",
        (list_id, keys[-1]),
    ).fetchone()
    lo = below[0] - base if below is not None and below[0] >> POS_BITS == rank else 0
    hi = above[0] - base if above is not None and above[0] >> POS_BITS == rank else 1 << POS_BITS
    step = (hi - lo) // (len(keys) + 1)
    if hi == 1 << POS_BITS and step > POS_STEP:
        step = POS_STEP
    return [base + lo + (i + 1) * step for i in range(len(keys))] if step >= 1 else None


def _values_changed(
    conn: sqlite3.Connection, rank: int, removed: set[tuple[str, str]], added: set[tuple[str, str]]
) -> None:
    """Keep ``search_values`` for a bucket whose entries lost ``removed`` and gained ``added`` (already
    written to ``search_attributes``): a pair's row goes when no entry of it is left in the bucket."""
    gone = [
        (value_hash(name, value), rank)
        for name, value in removed
        if conn.execute(
            "SELECT 1 FROM search_attributes WHERE bucket = ? AND name = ? AND value = ? LIMIT 1", (rank, name, value)
        ).fetchone()
        is None
    ]
    conn.executemany("DELETE FROM search_values WHERE hash = ? AND bucket = ?", gone)
    conn.executemany(
        "INSERT OR IGNORE INTO search_values (hash, bucket) VALUES (?, ?)",
        [(value_hash(name, value), rank) for name, value in added],
    )


def _apply_indexed(conn: sqlite3.Connection, list_id: int, key: str) -> bool:
    """Bring a pending contact the index already numbers (or one since deleted) to its current state and drop
    its pending row; False, leaving the row, for a new contact still to be placed (see :func:`_place`)."""
    pending = conn.execute(
        "SELECT old_attributes FROM search_pending WHERE list_id = ? AND email_key = ?", (list_id, key)
    ).fetchone()
    if pending is None:  # gone with a bucket built anew
        return True
    row = conn.execute("SELECT attributes FROM contacts WHERE list_id = ? AND email_key = ?", (list_id, key)).fetchone()
    listed = conn.execute(
        "SELECT id FROM search_address_ids WHERE collection = ? AND address = ?", (list_id, key)
    ).fetchone()
    if listed is None and row is not None:
        return False
    conn.execute("DELETE FROM search_pending WHERE list_id = ? AND email_key = ?", (list_id, key))
    if listed is None:  # created and deleted between two drains
        return True
    # indexed under its number: its attribute rows follow, or all go with it
    number = int(listed[0])
    rank, position = number >> POS_BITS, number & ((1 << POS_BITS) - 1)
    old = set(attribute_entries(pending[0]))
    new = set(attribute_entries(row[0])) if row is not None else set()
    conn.executemany(
        "DELETE FROM search_attributes WHERE bucket = ? AND name = ? AND value = ? AND position = ?",
        [(rank, name, value, position) for name, value in old - new],
    )
    conn.executemany(
        "INSERT INTO search_attributes (bucket, name, value, position) VALUES (?, ?, ?, ?)",
        [(rank, name, value, position) for name, value in new - old],
    )
    _values_changed(conn, rank, old - new, new - old)
    if row is None:
        conn.execute("DELETE FROM search_addresses WHERE rowid = ?", (number,))
        conn.execute("DELETE FROM search_address_ids WHERE collection = ? AND address = ?", (list_id, key))
        conn.execute("UPDATE search_buckets SET size = size - 1 WHERE rank = ?", (rank,))
    return True


def _place(conn: sqlite3.Connection, list_id: int, generation: int, keys: list[str]) -> None:
    """Number new contacts ``keys`` (pending, in address order, in one bucket and one gap between indexed
    neighbours) together, write their index rows and drop their pending rows."""
    bucket = _bucket_of(conn, list_id, keys[-1])
    if bucket is None:  # the list's first contacts since it was built empty
        rank = (generation << RANK_BITS) + (1 << (RANK_BITS - 1))
        conn.execute(
            "INSERT INTO search_buckets (collection, upper, rank, size) VALUES (?, ?, ?, 0)", (list_id, keys[-1], rank)
        )
        bucket = (rank, "", keys[-1])
    rank = bucket[0]
    numbers = _free_numbers(conn, list_id, keys, rank)
    if numbers is None:
        numbers = _spread(conn, list_id, keys, bucket)
    if numbers is None:
        _renumber(conn, list_id, bucket)  # built anew from the contacts: these included
        return
    base = rank << POS_BITS
    held = dict(
        conn.execute(
            "SELECT email_key, attributes FROM contacts WHERE list_id = ? AND email_key BETWEEN ? AND ?",
            (list_id, keys[0], keys[-1]),
        )
    )
    entries = [
        (rank, name, value, number - base)
        for key, number in zip(keys, numbers, strict=True)
        for name, value in attribute_entries(held[key])
    ]
    conn.executemany("DELETE FROM search_pending WHERE list_id = ? AND email_key = ?", [(list_id, key) for key in keys])
    conn.executemany("INSERT INTO search_attributes (bucket, name, value, position) VALUES (?, ?, ?, ?)", entries)
    _values_changed(conn, rank, set(), {(name, value) for _, name, value, _ in entries})
    conn.executemany(
        "INSERT INTO search_addresses (rowid, address, collection) VALUES (?, ?, ?)",
        [(number, key, list_id) for key, number in zip(keys, numbers, strict=True)],
    )
    conn.executemany(
        "INSERT INTO search_address_ids (collection, address, id) VALUES (?, ?, ?)",
        [(list_id, key, number) for key, number in zip(keys, numbers, strict=True)],
    )
    conn.execute("UPDATE search_buckets SET size = size + ? WHERE rank = ?", (len(keys), rank))


def drain_step(
    conn: sqlite3.Connection,
    list_id: int,
    through: str | None,
    generation: int,
    writers_waiting: Callable[[], bool] = lambda: False,
) -> None:
    """Apply up to DRAIN pending contacts of the list (within the built range) to the index: for at most
    DRAIN_MAX_SECONDS, and once DRAIN_SECONDS have passed, only while no other writer waits for the lock.
    (Each step's commit costs ~10 ms at 100k contacts whatever it holds, FTS5 writing a segment; so steps
    are as long as no one waits, and short when someone does.)

    New contacts that fall in one gap between indexed neighbours are numbered together: a run of new
    consecutive addresses (user1001@, user1002@, ... from an API client or a sync) placed one by one halves
    the gap each time, and then renumbers its neighbours again every dozen contacts (~40 moved a contact,
    ~1 ms, measured at 100k contacts); together they share the gap, or one renumbering of a window.
    """
    started = time.perf_counter()
    keys = conn.execute(
        "SELECT email_key FROM search_pending WHERE list_id = ? AND (? IS NULL OR email_key <= ?) "
        "ORDER BY email_key LIMIT ?",
        (list_id, through, through, DRAIN),
    ).fetchall()
    group: list[str] = []
    group_upper: str | None = None  # the upper address of the group's bucket (None: past the last one)
    for done, (key,) in enumerate(keys):
        spent = time.perf_counter() - started
        if done and (spent > DRAIN_MAX_SECONDS or (spent > DRAIN_SECONDS and writers_waiting())):
            break  # (never before the first: every step gets somewhere)
        if _apply_indexed(conn, list_id, key):
            continue
        if (
            group
            and (group_upper is None or key <= group_upper)
            and not _indexed_between(conn, list_id, group[-1], key)
        ):
            group.append(key)
            continue
        if group:
            _place(conn, list_id, generation, group)
            if _apply_indexed(conn, list_id, key):  # taken in by the bucket that placing built anew
                group = []
                continue
        group = [key]
        row = conn.execute(
            "SELECT upper FROM search_buckets WHERE collection = ? AND upper >= ? ORDER BY upper LIMIT 1",
            (list_id, key),
        ).fetchone()
        group_upper = None if row is None else str(row[0])
    if group:
        _place(conn, list_id, generation, group)


def _indexed_between(conn: sqlite3.Connection, list_id: int, lo: str, hi: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM search_address_ids WHERE collection = ? AND address > ? AND address < ? LIMIT 1",
            (list_id, lo, hi),
        ).fetchone()
        is not None
    )


def split_step(conn: sqlite3.Connection, list_id: int) -> bool:
    """Cut in two one bucket that single writes grew past SPLIT, its upper half taking a free rank above it (the
    last bucket, where appended contacts go, always has one) or else its lower half one below; False when
    there is nothing to cut."""
    for rank, upper, size in conn.execute(
        "SELECT rank, upper, size FROM search_buckets WHERE collection = ? AND size > ?", (list_id, SPLIT)
    ).fetchall():
        below = conn.execute(
            "SELECT rank, upper FROM search_buckets WHERE collection = ? AND upper < ? ORDER BY upper DESC LIMIT 1",
            (list_id, upper),
        ).fetchone()
        above = conn.execute(
            "SELECT rank FROM search_buckets WHERE collection = ? AND upper > ? ORDER BY upper LIMIT 1",
            (list_id, upper),
        ).fetchone()
        generation_end = ((rank >> RANK_BITS) + 1) << RANK_BITS
        ceiling = above[0] if above is not None else generation_end
        floor = below[0] if below is not None else (rank >> RANK_BITS) << RANK_BITS
        if ceiling - rank >= 2:
            lower_rank, upper_rank = rank, rank + min(RANK_STEP, (ceiling - rank) // 2)
        elif rank - floor >= 2:
            lower_rank, upper_rank = (floor + rank) // 2, rank
        else:
            continue  # no rank left around it: the bucket stays whole (searches are as exact, a little slower)
        lo = "" if below is None else str(below[1])
        middle = conn.execute(
            "SELECT email_key FROM contacts WHERE list_id = ? AND email_key > ? AND email_key <= ? "
            "ORDER BY email_key LIMIT 1 OFFSET ?",
            (list_id, lo, upper, size // 2),
        ).fetchone()
        _drop_bucket(conn, rank)
        _clear(conn, list_id, lo, upper)
        if middle is None:  # its size drifted from the contacts: rebuilt whole
            _fill(conn, list_id, rank, upper, lo, upper)
            return True
        _fill(conn, list_id, lower_rank, middle[0], lo, middle[0])
        _fill(conn, list_id, upper_rank, upper, middle[0], upper)
        return True
    return False


class SearchIndexer:
    """Keeps every list's search index current: builds ranges of unbuilt lists, applies pending changes and
    cuts grown buckets, one short write transaction at a time (writers wait no longer than for an import
    batch), leaving a list alone while bulk writes go on. The server runs it in a thread (:meth:`start`);
    :meth:`catch_up` runs it to the end in the caller's thread (tests, benches)."""

    def __init__(self, db: Database, *, interval: float = 0.5) -> None:
        self.db = db
        self.interval = interval
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _work_waiting(self) -> bool:
        """Whether any list may have work (read without the write lock, so an idle server never takes it)."""
        return bool(
            self.db.reader()
            .execute(
                "SELECT EXISTS (SELECT 1 FROM search_state AS s WHERE through IS NOT NULL "
                "OR EXISTS (SELECT 1 FROM search_pending AS p WHERE p.list_id = s.list_id) "
                "OR EXISTS (SELECT 1 FROM search_buckets AS b WHERE b.collection = s.list_id AND b.size > ?)) "
                "OR EXISTS (SELECT 1 FROM meta WHERE key = ?)",
                (SPLIT, MERGE_META),
            )
            .fetchone()[0]
        )

    def step(self, *, ignore_pauses: bool = False) -> bool:
        """One unit of work for one list; False when there was none to do now."""
        if not self._work_waiting():
            return False
        with self.db.write() as conn:
            now = time.time()
            paused = False
            for list_id, through, generation, paused_until, orphan in conn.execute(
                "SELECT list_id, through, generation, paused_until, orphan FROM search_state ORDER BY list_id"
            ).fetchall():
                if paused_until > now and not ignore_pauses:
                    paused = True
                    continue
                if (
                    through != ""
                    and conn.execute(
                        "SELECT 1 FROM search_pending WHERE list_id = ? AND (? IS NULL OR email_key <= ?) LIMIT 1",
                        (list_id, through, through),
                    ).fetchone()
                ):
                    drain_step(conn, list_id, through, generation, self.db.writers_waiting)
                    return True
                if through is not None:
                    build_step(conn, list_id, through, generation, bool(orphan))
                    return True
                if split_step(conn, list_id):
                    return True
            # After every list's own work, and not while bulk writes go on (they would wait for its steps).
            if not paused and conn.execute("SELECT 1 FROM meta WHERE key = ?", (MERGE_META,)).fetchone():
                merge_step(conn)
                return True
        return False

    def catch_up(self) -> int:
        """Run until nothing is left to do, pauses ignored; returns the steps taken."""
        steps = 0
        while self.step(ignore_pauses=True):
            steps += 1
        return steps

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sescontacts-search-index", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                worked = self.step()
            except sqlite3.OperationalError:  # the database busy past its timeout (another process): retry
                worked = False
            # Between steps, give the lock and a core back for as long as the step took (writers, searches).
            self._stop.wait(time.perf_counter() - started if worked else self.interval)
