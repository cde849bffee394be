"""The search index: attribute ``key = value`` and ``key`` present, and address substrings, answered from
index tables that writes keep exact at the cost of one narrow row, and that are built off the write path.

Layout (each choice measured at 1M seed-format contacts, see docs/benchmarks.md):
- Every indexed contact has a **number** whose order is its address order: the list's addresses are cut in
  **buckets** of consecutive addresses (``search_buckets``: a bucket's highest address and its ``rank``,
  ranks in address order with gaps), and a contact's number is its bucket's rank, then its position in the
  bucket (positions in address order with gaps). Building a range appends at the end of every B-tree
  (random insertion costs a third more, and grows with N); a contact added later takes a free number between
  its neighbours (its bucket is renumbered when none is left; a bucket grown past SPLIT is cut in two).
- ``search_addresses`` (FTS5, trigram tokenizer) over the address keys, under the contacts' numbers: any
  substring of three characters or more without a scan, its matches coming in address order (FTS5 returns
  row ids in order), so a page needs only its first matches, however many there are. ``search_address_ids``
  finds a key's number.
- ``search_attributes`` (bucket, name, value, position): one row per attribute of every contact, ``value``
  being :func:`model.attribute_text` of it, so ``key = value`` for any JSON value (string, number, boolean,
  null, nested) and ``key`` present are a range of the primary key, exactly the model's predicate
  (:func:`model.attributes_match`); one value's rows in a bucket come in address order.
- ``search_state``: per list, the address ``through`` which the index is exact (NULL: all of it), and the
  generation its numbers belong to (a restarted build takes a new one, so leftovers of the last never mix
  with it); addresses after ``through`` are searched by the plain scan, so a list is searchable throughout.
- ``search_pending``: contacts changed since they were indexed, with the attributes the index holds for
  them. Triggers on ``contacts`` write it, so any write path (including ones added later) leaves the index
  exact; searches check those contacts with the plain predicate until :class:`SearchIndexer` applies them.

Writes never build anything: a bulk load into a small list, or one that would leave more changes pending
than rebuilding costs, moves ``through`` back to the start instead (:func:`before_bulk_write`), and the
triggers exist only while some list is kept. The indexer (a thread of the server) builds and applies in
short write transactions, and leaves a list alone while bulk writes go on.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence

from ...db import Database, run_script
from ...model import attribute_text, attributes_object

CHUNK = 1000  # contacts per build step: one bucket, one write transaction (~35 ms at 9 attributes)
DRAIN = 500  # pending contacts applied per step
SPLIT = 2 * CHUNK  # a bucket grown past this by single writes is cut in two
PENDING_LIMIT = 2000  # searches use the index while at most this many changed contacts wait
SMALL_LIST = 20_000  # a bulk write into a list this small starts its index again rather than log each row
PAUSE_SECONDS = 2.0  # the indexer leaves a list alone this long after a bulk write

# A contact's number: generation (16 bits), rank of its bucket within it (23), position in the bucket (24).
POS_BITS = 24
RANK_BITS = 23
GEN_BITS = 16
RANK_STEP = 1 << 7  # between the buckets of a build: room for 7 successive cuts between two of them
POS_STEP = 1 << 12  # between the contacts of a bucket as built: 12 insertions in one place before renumbering


def create_tables(conn: sqlite3.Connection) -> None:
    """Migration: the index tables, every existing list to be built, and the per-key expression indexes of
    the previous design dropped (every write paid for them)."""
    run_script(
        conn,
        """
        CREATE TABLE search_state (
            list_id INTEGER PRIMARY KEY,
            through TEXT,
            generation INTEGER NOT NULL DEFAULT 0,
            paused_until REAL NOT NULL DEFAULT 0,
            orphan INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE search_pending (
            list_id INTEGER NOT NULL,
            email_key TEXT NOT NULL,
            old_attributes TEXT,
            PRIMARY KEY (list_id, email_key)
        ) WITHOUT ROWID;
        CREATE TABLE search_buckets (
            collection INTEGER NOT NULL,
            upper TEXT NOT NULL,
            rank INTEGER NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            PRIMARY KEY (collection, upper)
        ) WITHOUT ROWID;
        CREATE TABLE search_attributes (
            bucket INTEGER NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (bucket, name, value, position)
        ) WITHOUT ROWID;
        CREATE VIRTUAL TABLE search_addresses USING fts5(
            address, collection UNINDEXED, tokenize = 'trigram case_sensitive 1', detail = 'none', columnsize = 0
        );
        CREATE TABLE search_address_ids (
            collection INTEGER NOT NULL,
            address TEXT NOT NULL,
            id INTEGER NOT NULL,
            PRIMARY KEY (collection, address)
        ) WITHOUT ROWID;
        """,
    )
    for (list_id,) in conn.execute("SELECT id FROM contact_lists").fetchall():
        list_created(conn, list_id)
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'contacts!_attr!_%' ESCAPE '!'"
    ).fetchall():
        conn.execute(f'DROP INDEX "{name}"')


# A contact's row is logged when its list is kept and its key is within the built range; the first change
# since it was indexed is kept (its attributes are what the index holds). Not INSERT OR IGNORE: an outer
# upsert's conflict handling overrides a trigger's.
_KEPT = (
    "(SELECT s.through IS NULL OR {row}.email_key <= s.through FROM search_state AS s WHERE s.list_id = {row}.list_id)"
)
_LOG = (
    "INSERT INTO search_pending (list_id, email_key, old_attributes) SELECT {row}.list_id, {row}.email_key, {old} "
    "WHERE NOT EXISTS (SELECT 1 FROM search_pending AS p WHERE p.list_id = {row}.list_id "
    "AND p.email_key = {row}.email_key)"
)
_TRIGGERS = {
    "search_log_insert": f"AFTER INSERT ON contacts WHEN {_KEPT.format(row='new')} "
    f"BEGIN {_LOG.format(row='new', old='NULL')}; END",
    "search_log_update": "AFTER UPDATE OF attributes ON contacts WHEN old.attributes IS NOT new.attributes "
    f"AND {_KEPT.format(row='old')} BEGIN {_LOG.format(row='old', old='old.attributes')}; END",
    "search_log_delete": f"AFTER DELETE ON contacts WHEN {_KEPT.format(row='old')} "
    f"BEGIN {_LOG.format(row='old', old='old.attributes')}; END",
}


def _set_triggers(conn: sqlite3.Connection) -> None:
    """The logging triggers exist exactly while some list is kept: a bulk load into the only list then pays
    nothing per row (measured: the WHEN test alone costs 0.3 us a row, 4% of an import's SQLite time)."""
    kept = conn.execute("SELECT 1 FROM search_state WHERE through IS NULL OR through != '' LIMIT 1").fetchone()
    present = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'search!_log!_%' ESCAPE '!'"
    ).fetchone()[0]
    if kept and present != len(_TRIGGERS):
        for name, body in _TRIGGERS.items():
            conn.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")
    elif not kept and present:
        for name in _TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")


def ensure_triggers(db: Database) -> None:
    """At open: the logging triggers exist while a list is kept (a migration that rebuilds ``contacts`` drops
    them with the table). Read first; a write transaction only to repair."""
    reader = db.reader()
    kept = reader.execute("SELECT 1 FROM search_state WHERE through IS NULL OR through != '' LIMIT 1").fetchone()
    present = reader.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'search!_log!_%' ESCAPE '!'"
    ).fetchone()[0]
    if bool(kept) != (present == len(_TRIGGERS)):
        with db.write() as conn:
            _set_triggers(conn)


def _restart(conn: sqlite3.Connection, list_id: int, *, orphan: bool = False) -> None:
    """Start the list's index again from its first address, under a new generation of numbers."""
    in_use = {int(g) for (g,) in conn.execute("SELECT generation FROM search_state WHERE list_id != ?", (list_id,))}
    (last,) = conn.execute("SELECT coalesce(max(generation), 0) FROM search_state").fetchone()
    generation = (int(last) + 1) % (1 << GEN_BITS)
    while generation in in_use:
        generation = (generation + 1) % (1 << GEN_BITS)
    conn.execute(
        "INSERT INTO search_state (list_id, through, generation, orphan) VALUES (?, '', ?, ?) "
        "ON CONFLICT (list_id) DO UPDATE SET through = '', generation = excluded.generation, orphan = excluded.orphan",
        (list_id, generation, int(orphan)),
    )
    _set_triggers(conn)


# -- what writes call (in their transaction) ----------------------------------------------------------------


def list_created(conn: sqlite3.Connection, list_id: int) -> None:
    """A new list starts unbuilt (the indexer completes an empty one in one step). Its id may be a deleted
    list's: that list's leftovers are cleared as the range is built."""
    _restart(conn, list_id)


def list_deleted(conn: sqlite3.Connection, list_id: int) -> None:
    """Before a list's contacts are deleted: nothing is logged for them, and the indexer clears the list's
    index in short steps, then forgets it."""
    _restart(conn, list_id, orphan=True)


def reset_all(conn: sqlite3.Connection) -> None:
    """Before every address key changes (a re-key): each list's index is built again."""
    for list_id, orphan in conn.execute("SELECT list_id, orphan FROM search_state").fetchall():
        _restart(conn, list_id, orphan=bool(orphan))


def before_bulk_write(conn: sqlite3.Connection, list_id: int, rows: int) -> None:
    """Called before a bulk statement writes up to ``rows`` contacts of the list (an import batch, a bulk
    delete, a page of the ses mirror's sync): the indexer pauses for the list, and when logging each row
    would cost more than building again (a small list, or pending changes beyond a twentieth of it), the
    list's index starts again from its first address, so the rows of this load are not logged at all."""
    state = conn.execute("SELECT through FROM search_state WHERE list_id = ?", (list_id,)).fetchone()
    if state is None:
        return
    conn.execute("UPDATE search_state SET paused_until = ? WHERE list_id = ?", (time.time() + PAUSE_SECONDS, list_id))
    if state[0] == "":
        return
    (total,) = conn.execute("SELECT contact_count FROM contact_lists WHERE id = ?", (list_id,)).fetchone() or (0,)
    budget = max(PENDING_LIMIT, total // 20)
    (pending,) = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM search_pending WHERE list_id = ? LIMIT ?)", (list_id, budget + 1)
    ).fetchone()
    if total <= SMALL_LIST or pending + rows > budget:
        _restart(conn, list_id)


# -- the entries of one contact ------------------------------------------------------------------------------


def attribute_entries(text: str | None) -> list[tuple[str, str]]:
    """(name, value text) for each attribute, as the model's attribute search sees them: ``key = value``
    matches exactly when (key, value) is among them, ``key`` present when a pair has that name."""
    attributes = attributes_object(text)
    return [(name, attribute_text(value)) for name, value in attributes.items()] if attributes else []


# -- what searches read (in their snapshot) ------------------------------------------------------------------


class IndexView:
    """The index of one list as a search sees it: exact for keys up to ``through`` (None: all), except the
    ``pending`` keys (sorted), which the search checks with the plain predicate; the list's numbers are those
    from ``low`` (included) to ``high`` (excluded)."""

    __slots__ = ("high", "list_id", "low", "pending", "through")

    def __init__(self, list_id: int, through: str | None, generation: int, pending: list[str]) -> None:
        self.list_id = list_id
        self.through = through
        self.pending = pending
        self.low = generation << (RANK_BITS + POS_BITS)
        self.high = (generation + 1) << (RANK_BITS + POS_BITS)


def view(conn: sqlite3.Connection, list_id: int) -> IndexView | None:
    """The list's index, or None while it is not usable (not built at all, or too many changes pending)."""
    row = conn.execute(
        "SELECT through, generation FROM search_state WHERE list_id = ? AND NOT orphan", (list_id,)
    ).fetchone()
    if row is None or row[0] == "":
        return None
    through: str | None = row[0]
    pending = [
        r[0]
        for r in conn.execute(
            "SELECT email_key FROM search_pending WHERE list_id = ? AND (? IS NULL OR email_key <= ?) "
            "ORDER BY email_key LIMIT ?",
            (list_id, through, through, PENDING_LIMIT + 1),
        )
    ]
    if len(pending) > PENDING_LIMIT:
        return None
    return IndexView(list_id, through, int(row[1]), pending)


def attribute_candidates_sql(has_value: bool, *, addresses: bool = True, ordered: bool = False) -> str:
    """The contacts whose indexed attributes match, bucket after bucket from ``upper >= ?`` on (one bucket's
    rows by value, then position, i.e. address): rows (upper, position, address), or (upper, position)
    without ``addresses``; ``ordered`` sorts them by bucket. Parameters: name, [value,] list id, lowest upper,
    then the highest upper twice (None twice for all)."""
    value = " AND a.value = ?" if has_value else ""
    content = (
        f", c.c0 FROM search_buckets AS b CROSS JOIN search_attributes AS a ON a.bucket = b.rank AND a.name = ?{value} "
        f"CROSS JOIN search_addresses_content AS c ON c.id = (b.rank << {POS_BITS}) + a.position "
        if addresses
        else f" FROM search_buckets AS b CROSS JOIN search_attributes AS a ON a.bucket = b.rank AND a.name = ?{value} "
    )
    return (
        f"SELECT b.upper, a.position{content}"
        "WHERE b.collection = ? AND b.upper >= ? AND (? IS NULL OR b.upper <= ?)"
        + (" ORDER BY b.upper" if ordered else "")
    )


def in_address_order(rows: Iterable[Sequence[object]]) -> Iterable[str]:
    """The addresses of :func:`attribute_candidates_sql` in address order: buckets come in order, and each
    bucket's rows are put in position order (one value's already are; key-present rows come by value)."""
    bucket: list[tuple[int, str]] = []
    current = None
    for upper, position, address in rows:
        if upper != current:
            yield from (a for _, a in sorted(bucket))
            bucket = []
            current = upper
        bucket.append((int(position), str(address)))  # type: ignore[call-overload]
    yield from (a for _, a in sorted(bucket))


def first_number(conn: sqlite3.Connection, index: IndexView, after: str | None) -> int:
    """The lowest number a key after ``after`` can have (its bucket's first): where an address search resumes."""
    if after is None:
        return index.low
    row = conn.execute(
        "SELECT rank FROM search_buckets WHERE collection = ? AND upper >= ? AND rank >= ? AND rank < ? "
        "ORDER BY upper LIMIT 1",
        (index.list_id, after, index.low >> POS_BITS, index.high >> POS_BITS),
    ).fetchone()
    return index.high if row is None else int(row[0]) << POS_BITS


# -- building and applying (the indexer, in its write transactions) ------------------------------------------


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
    _set_triggers(conn)


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


def _free_number(conn: sqlite3.Connection, list_id: int, key: str, rank: int) -> int | None:
    """A number for ``key`` between its neighbours in its bucket, or None when there is none left."""
    base = rank << POS_BITS
    below = conn.execute(
        "SELECT id FROM search_address_ids WHERE collection = ? AND address < ? ORDER BY address DESC LIMIT 1",
        (list_id, key),
    ).fetchone()
    above = conn.execute(
        "SELECT id FROM search_address_ids WHERE collection = ? AND address > ? ORDER BY address LIMIT 1",
        (list_id, key),
    ).fetchone()
    lo = below[0] - base if below is not None and below[0] >> POS_BITS == rank else 0
    hi = above[0] - base if above is not None and above[0] >> POS_BITS == rank else 1 << POS_BITS
    if hi == 1 << POS_BITS and lo + POS_STEP < hi:
        return base + lo + POS_STEP
    return base + (lo + hi) // 2 if hi - lo >= 2 else None


def _apply_one(conn: sqlite3.Connection, list_id: int, generation: int, key: str) -> None:
    """Bring one pending contact's index rows to its current state and drop its pending row (gone already
    when a renumbered bucket took it in)."""
    pending = conn.execute(
        "SELECT old_attributes FROM search_pending WHERE list_id = ? AND email_key = ?", (list_id, key)
    ).fetchone()
    if pending is None:
        return
    conn.execute("DELETE FROM search_pending WHERE list_id = ? AND email_key = ?", (list_id, key))
    row = conn.execute("SELECT attributes FROM contacts WHERE list_id = ? AND email_key = ?", (list_id, key)).fetchone()
    listed = conn.execute(
        "SELECT id FROM search_address_ids WHERE collection = ? AND address = ?", (list_id, key)
    ).fetchone()
    if listed is not None:  # indexed under its number: its attribute rows follow, or all go with it
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
        if row is None:
            conn.execute("DELETE FROM search_addresses WHERE rowid = ?", (number,))
            conn.execute("DELETE FROM search_address_ids WHERE collection = ? AND address = ?", (list_id, key))
            conn.execute("UPDATE search_buckets SET size = size - 1 WHERE rank = ?", (rank,))
        return
    if row is None:
        return
    bucket = _bucket_of(conn, list_id, key)
    if bucket is None:  # the list's first contact since it was built empty
        rank = (generation << RANK_BITS) + (1 << (RANK_BITS - 1))
        conn.execute(
            "INSERT INTO search_buckets (collection, upper, rank, size) VALUES (?, ?, ?, 0)", (list_id, key, rank)
        )
        bucket = (rank, "", key)
    rank = bucket[0]
    number_or_none = _free_number(conn, list_id, key, rank)
    if number_or_none is None:
        _renumber(conn, list_id, bucket)  # built anew from the contacts: this one included
        return
    number = number_or_none
    position = number - (rank << POS_BITS)
    conn.executemany(
        "INSERT INTO search_attributes (bucket, name, value, position) VALUES (?, ?, ?, ?)",
        [(rank, name, value, position) for name, value in attribute_entries(row[0])],
    )
    conn.execute("INSERT INTO search_addresses (rowid, address, collection) VALUES (?, ?, ?)", (number, key, list_id))
    conn.execute("INSERT INTO search_address_ids (collection, address, id) VALUES (?, ?, ?)", (list_id, key, number))
    conn.execute("UPDATE search_buckets SET size = size + 1 WHERE rank = ?", (rank,))


def drain_step(conn: sqlite3.Connection, list_id: int, through: str | None, generation: int) -> None:
    """Apply up to DRAIN pending contacts of the list (within the built range) to the index."""
    keys = conn.execute(
        "SELECT email_key FROM search_pending WHERE list_id = ? AND (? IS NULL OR email_key <= ?) "
        "ORDER BY email_key LIMIT ?",
        (list_id, through, through, DRAIN),
    ).fetchall()
    for (key,) in keys:
        _apply_one(conn, list_id, generation, key)


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
                "SELECT 1 FROM search_state AS s WHERE through IS NOT NULL "
                "OR EXISTS (SELECT 1 FROM search_pending AS p WHERE p.list_id = s.list_id) "
                "OR EXISTS (SELECT 1 FROM search_buckets AS b WHERE b.collection = s.list_id AND b.size > ?) "
                "LIMIT 1",
                (SPLIT,),
            )
            .fetchone()
        )

    def step(self, *, ignore_pauses: bool = False) -> bool:
        """One unit of work for one list; False when there was none to do now."""
        if not self._work_waiting():
            return False
        with self.db.write() as conn:
            now = time.time()
            for list_id, through, generation, paused_until, orphan in conn.execute(
                "SELECT list_id, through, generation, paused_until, orphan FROM search_state ORDER BY list_id"
            ).fetchall():
                if paused_until > now and not ignore_pauses:
                    continue
                if (
                    through != ""
                    and conn.execute(
                        "SELECT 1 FROM search_pending WHERE list_id = ? AND (? IS NULL OR email_key <= ?) LIMIT 1",
                        (list_id, through, through),
                    ).fetchone()
                ):
                    drain_step(conn, list_id, through, generation)
                    return True
                if through is not None:
                    build_step(conn, list_id, through, generation, bool(orphan))
                    return True
                if split_step(conn, list_id):
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
