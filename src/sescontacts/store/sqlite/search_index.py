"""The search index: attribute ``key = value`` and ``key`` present, and address substrings, answered from
index tables that writes keep exact at the cost of one narrow row, and that are built off the write path.

Layout (each choice measured at 1M seed-format contacts, see docs/benchmarks.md):
- Every indexed contact has a **number** whose order is its address order: the list's addresses are cut in
  **buckets** of consecutive addresses (``search_buckets``: a bucket's highest address and its ``rank``,
  ranks in address order with gaps), and a contact's number is its bucket's rank, then its position in the
  bucket (positions in address order with gaps). Building a range appends at the end of every B-tree
  (random insertion costs a third more, and grows with N); a contact added later takes a free number between
  its neighbours (when none is left, a window of its neighbours is renumbered, doubled until roomy, the whole
  bucket only when the window reaches it; a bucket grown past ``search_indexer.SPLIT`` is cut in two).
- ``search_addresses`` (FTS5, trigram tokenizer) over the address keys, under the contacts' numbers: any
  substring of three characters or more without a scan, its matches coming in address order (FTS5 returns
  row ids in order), so a page needs only its first matches, however many there are. ``search_address_ids``
  finds a key's number.
- ``search_attributes`` (bucket, name, value, position): one row per attribute of every contact, ``value``
  being :func:`model.attribute_search_text` of it (a string case-folded, any other value its JSON text), so
  ``key = value`` for any JSON value (string, number, boolean, null, nested) and ``key`` present are a range
  of the primary key; one value's rows in a bucket come in address order. A case-insensitive ``key = value``
  (the default) is exactly the rows of ``value.casefold()`` (and of ``value`` itself, for a nested value's
  text, which is not folded); an exact one is among those rows and is checked on the contact's own row with
  the model's predicate (:func:`model.attributes_match`), as every search checks its candidates. Folding in
  the index rather than filing the exact value beside the folded one keeps one row per attribute (no write,
  build or byte more than before); the exact search, the one asked for, pays a row check per candidate
  instead. Measured at 100k (bench console, load ~7): a page of ``Company = Globex`` (1 in 6) p95 17 ms either
  way; its capped count 7 ms case-insensitive (index rows alone), 131 ms exact (10,001 rows checked; the
  cap bounds it at any size).
- ``search_values`` (hash, bucket): which buckets hold a ``key = value``, ``hash`` being
  :func:`value_hash` of the pair (a 64-bit integer, far smaller than the text). A value held by few contacts
  is then found in the buckets that hold it, not by one seek in every bucket of the list (~8 ms a million
  contacts); ``key = value`` still reads the pair's own rows there, so a hash shared by two pairs costs only
  a seek. A row is removed once its bucket holds no entry of its pair any more (two pairs of one bucket with
  one hash, odds of 2^-64 for each two pairs, would lose the survivor's row with the other's).
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
import time
from collections.abc import Iterable, Sequence
from hashlib import blake2b

from ...db import Database, run_script
from ...model import AttributeCondition, attribute_search_text, attributes_object

PENDING_LIMIT = 2000  # searches use the index while at most this many changed contacts wait
SMALL_LIST = 20_000  # a bulk write into a list this small starts its index again rather than log each row
PAUSE_SECONDS = 2.0  # the indexer leaves a list alone this long after a bulk write

# A contact's number: generation (16 bits), rank of its bucket within it (23), position in the bucket (24).
POS_BITS = 24
RANK_BITS = 23
GEN_BITS = 16


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


def set_triggers(conn: sqlite3.Connection) -> None:
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
            set_triggers(conn)


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
    set_triggers(conn)


def fold_values(conn: sqlite3.Connection) -> None:
    """Migration: string values are filed case-folded (:func:`model.attribute_search_text`); every list's
    index is built again, the indexer doing it in the background while searches scan as before."""
    reset_all(conn)


def create_value_table(conn: sqlite3.Connection) -> None:
    """Migration: ``search_values``, filled as every list's index is built again (reading the attribute
    rows of a built index back to hash them would take as long, in one transaction)."""
    conn.execute(
        "CREATE TABLE search_values (hash INTEGER NOT NULL, bucket INTEGER NOT NULL, PRIMARY KEY (hash, bucket)) "
        "WITHOUT ROWID"
    )
    reset_all(conn)


# The ``meta`` row asking the indexer to merge the trigram index's segments (search_indexer.merge_step).
MERGE_META = "search_addresses_merge"


def want_merge(conn: sqlite3.Connection) -> None:
    """Ask the indexer to merge the trigram index's segments: a build or a clearing just ended, each of its
    steps' commits having left FTS5 a segment."""
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, '1')", (MERGE_META,))


def merge_built_indexes(conn: sqlite3.Connection) -> None:
    """Migration: indexes built before the indexer merged segments get merged once."""
    want_merge(conn)


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
    """(name, value as filed) for each attribute (:func:`model.attribute_search_text`): a case-insensitive
    ``key = value`` matches exactly when (key, ``value.casefold()``) is among them, ``key`` present when a pair
    has that name."""
    attributes = attributes_object(text)
    return [(name, attribute_search_text(value)) for name, value in attributes.items()] if attributes else []


def value_hash(name: str, value: str) -> int:
    """The ``search_values`` key of a ``key = value`` entry: a signed 64-bit hash of the pair."""
    digest = blake2b(f"{name}\0{value}".encode(errors="surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


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


def filed_values(value: str) -> list[str]:
    """The values a ``key = value`` condition reads from the index: the folded text, and the text itself
    when it may be a nested value's (those are filed unfolded); an exact condition's matches are among them."""
    folded = value.casefold()
    return [folded, value] if folded != value and value[:1] in ("{", "[") else [folded]


def rows_are_matches(condition: AttributeCondition) -> bool:
    """Whether the condition's index rows are exactly its matches (else each is checked on its row): a key
    alone, or a case-insensitive value that cannot be a nested value's text."""
    return condition.value is None or not (condition.exact or condition.value[:1] in ("{", "["))


def attribute_candidates(
    index: IndexView, name: str, value: str | None, lowest: str, *, addresses: bool = True, ordered: bool = False
) -> tuple[str, list[object]]:
    """The statement and parameters of the contacts whose indexed attributes may match ``name`` (= ``value``,
    read as :func:`filed_values`), bucket after bucket from ``upper >= lowest`` on (one bucket's rows by value,
    then position, i.e. address): rows (upper, position, address), or (upper, position) without
    ``addresses``; ``ordered`` sorts them by bucket.

    ``key = value`` reads only the buckets ``search_values`` names for the pair (ranks are in address order,
    so their order is the buckets'): a rare or absent value costs a seek per bucket holding it, a common one
    about what probing every bucket costs. ``key`` present probes every bucket of the list."""
    content = f"CROSS JOIN search_addresses_content AS c ON c.id = (b.rank << {POS_BITS}) + a.position "
    tail = content if addresses else ""
    columns = "b.upper, a.position" + (", c.c0" if addresses else "")
    bounds = "b.collection = ? AND b.upper >= ? AND (? IS NULL OR b.upper <= ?)"
    if value is None:
        sql = (
            f"SELECT {columns} FROM search_buckets AS b CROSS JOIN search_attributes AS a ON a.bucket = b.rank "
            f"AND a.name = ? {tail}WHERE {bounds}" + (" ORDER BY b.upper" if ordered else "")
        )
        return sql, [name, index.list_id, lowest, index.through, index.through]
    values = filed_values(value)
    marks = ", ".join("?" * len(values))
    ranks = [index.low >> POS_BITS, index.high >> POS_BITS]
    if len(values) == 1:
        source = "search_values AS v"
        where = "v.hash = ? AND v.bucket >= ? AND v.bucket < ? AND "
        args: list[object] = [name, *values, value_hash(name, values[0]), *ranks]
    else:  # one bucket may hold both: each once
        source = (
            f"(SELECT DISTINCT bucket FROM search_values WHERE hash IN ({marks}) AND bucket >= ? AND bucket < ?) AS v"
        )
        where = ""
        args = [*(value_hash(name, v) for v in values), *ranks, name, *values]
    sql = (
        f"SELECT {columns} FROM {source} CROSS JOIN search_buckets AS b ON b.rank = v.bucket "
        f"CROSS JOIN search_attributes AS a ON a.bucket = v.bucket AND a.name = ? AND a.value IN ({marks}) {tail}"
        f"WHERE {where}{bounds}" + (" ORDER BY v.bucket" if ordered else "")
    )
    return sql, [*args, index.list_id, lowest, index.through, index.through]


def in_address_order(rows: Iterable[Sequence[object]]) -> Iterable[str]:
    """The addresses of :func:`attribute_candidates` in address order: buckets come in order, and each
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
