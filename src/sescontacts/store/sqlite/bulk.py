"""Bulk writes: a batch of import rows upserted, or of addresses deleted, in the caller's transaction.

The importer's batches are the hot path of a million-row import. They arrive as columns
(:class:`~sescontacts.model.PatchBatch`, in key order): rows are built straight from them (no patch or
``Contact`` objects) when a batch names no address twice, by the same rule as :func:`model.apply_patch`
(checked by tests), and a batch of only new addresses is first tried as a plain INSERT. Flags are bound as
integers: sqlite3 looks a ``bool`` up in its adapter registry first (a failed attribute lookup, with its
exception, per value: measured ~1 s per million rows).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import repeat

import orjson

from ...model import (
    ATTRIBUTES_MISSING,
    MISSING,
    OPT_IN,
    OPT_OUT,
    UNSUBSCRIBE_MISSING,
    AddressBatch,
    AddressIdentity,
    Contact,
    ContactList,
    ContactPatch,
    Outcome,
    PatchBatch,
    RowResult,
    UpsertPolicy,
    apply_patch,
    dump_attributes,
    same_attributes,
)
from ...validation import unknown_topic
from . import history_record, search_index
from .rows import CONTACT_COLUMNS, contact_from_row, topics_json
from .writes import bulk_insert_sql, count, existing_contacts, write_contacts

# Results are immutable: the bulk paths share one instance per outcome instead of a million.
_CREATED = RowResult(Outcome.CREATED)
_UPDATED = RowResult(Outcome.UPDATED)
_UNCHANGED = RowResult(Outcome.UNCHANGED)
# (changed, kept unsubscribed, kept opted out) -> the result, for rows the guards held back in part.
_KEPT = {
    (changed, kept, out): RowResult(
        Outcome.UPDATED if changed else Outcome.UNCHANGED, kept_unsubscribed=kept, kept_opted_out=out
    )
    for changed in (False, True)
    for kept in (False, True)
    for out in (False, True)
}
_DELETED = RowResult(Outcome.DELETED)
_NOT_FOUND = RowResult(Outcome.NOT_FOUND)


class BulkUpserts:
    """Upserts import batches; remembers whether the next batch is worth trying as all-new first."""

    def __init__(self) -> None:
        self._all_new = True  # see _insert_all_new

    def upsert(
        self,
        conn: sqlite3.Connection,
        list_id: int,
        contact_list: ContactList,
        patches: Sequence[ContactPatch],
        policy: UpsertPolicy,
        now: float,
        identity: AddressIdentity,
        *,
        dry_run: bool,
    ) -> list[RowResult]:
        """Apply the patches in order (last row wins among rows ``identity`` makes one contact), one result each;
        with ``dry_run`` only the results. :class:`BadRequest` when a patch names a topic the list lacks
        (nothing is written)."""
        batch = as_batch(patches, identity)
        if batch.topics is not None:
            topic_names = set(contact_list.topic_names)
            for preferences in batch.topics:
                for topic in preferences:
                    if topic not in topic_names:
                        raise unknown_topic(contact_list.name, topic)
        if not dry_run:  # search index hook: before the batch writes (see search_index.before_bulk_write)
            search_index.before_bulk_write(conn, list_id, len(patches))
        if batch.distinct and dry_run:
            return _upsert_rows(conn, list_id, batch, policy, now, None)[0]
        if batch.distinct:
            # The bulk importer's common case (no address twice in the batch): rows built straight from the
            # columns, no Contact objects. Same rule as model.apply_patch (checked by tests). The batch records
            # its changes in the history itself, from what it has in hand (history_record says why).
            return self._upsert_distinct(conn, list_id, batch, policy, now, history_record.actor_id(conn))
        keys = batch.keys
        current: dict[str, Contact | None] = dict(existing_contacts(conn, list_id, keys))
        before = dict(current)
        results = []
        for key, patch in zip(keys, batch, strict=True):
            after, result = apply_patch(current.get(key), patch, policy, now)
            current[key] = after
            results.append(result)
        if not dry_run:
            changes = [
                (key, before.get(key), after)
                for key, after in current.items()
                if after is not None and after is not before.get(key)
            ]
            write_contacts(conn, list_id, changes, now)
        return results

    def _upsert_distinct(
        self,
        conn: sqlite3.Connection,
        list_id: int,
        batch: PatchBatch,
        policy: UpsertPolicy,
        now: float,
        actor: int | None,
    ) -> list[RowResult]:
        if self._all_new and not policy.existing_only:
            created = self._insert_all_new(conn, list_id, batch, now)
            if created is not None:
                history_record.record_created(conn, list_id, batch.keys, now, actor)
                return created
        records = history_record.BatchUpdates() if actor is not None else None
        results, rows, updates, attribute_updates, added, unsubscribed, turned = _upsert_rows(
            conn, list_id, batch, policy, now, records
        )
        # Recorded first: the UPDATEs point each contact at the row (``last_batch``).
        batch_change = (
            None if records is None else history_record.record_batch_updates(conn, list_id, records, now, actor)
        )
        # Optimism pays off again once a batch turns out to hold only new addresses.
        self._all_new = added == len(batch)
        write_contacts(
            conn,
            list_id,
            [],
            now,
            rows=rows,
            updates=updates,
            attribute_updates=attribute_updates,
            added=added,
            unsubscribed=unsubscribed,
            turned_unsubscribed=turned,
            ordered=batch.ordered,
            batch_change=batch_change,
        )
        if records is not None:
            history_record.record_created(conn, list_id, [str(row[0]) for row in rows], now, actor)
        return results

    def _insert_all_new(
        self, conn: sqlite3.Connection, list_id: int, batch: PatchBatch, now: float
    ) -> list[RowResult] | None:
        """Insert a batch assuming none of its addresses exists yet (an import into an empty or growing list):
        a plain INSERT skips the lookup of existing rows, which walks the same B-tree a second time. If any
        address exists the INSERT fails, is rolled back to its savepoint, and None sends the caller the
        regular way (and off this path until a batch is all new again)."""
        unsubscribe = _new_unsubscribe(batch.unsubscribe)
        rows = zip(
            batch.keys,
            batch.emails,
            unsubscribe,
            repeat(None) if batch.topics is None else map(topics_json, batch.topics),
            _new_attributes(batch.attributes),
            repeat(now),
            repeat(now),
        )
        conn.execute("SAVEPOINT sescontacts_bulk_insert")
        try:
            conn.executemany(bulk_insert_sql(list_id), rows if batch.ordered else sorted(rows))
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK TO sescontacts_bulk_insert")
            conn.execute("RELEASE sescontacts_bulk_insert")
            self._all_new = False
            return None
        conn.execute("RELEASE sescontacts_bulk_insert")
        write_contacts(conn, list_id, [], now, added=len(batch), unsubscribed=sum(unsubscribe))
        return [_CREATED] * len(batch)


def as_batch(patches: Sequence[ContactPatch], identity: AddressIdentity) -> PatchBatch:
    """``patches`` as columns keyed by ``identity`` (a PatchBatch keyed by that rule already is)."""
    if isinstance(patches, PatchBatch) and patches.identity == identity.name:
        return patches
    keys = [identity.key(p.email) for p in patches]
    topics = [dict(p.topic_preferences) for p in patches]
    return PatchBatch(
        identity.name,
        keys,
        [p.email for p in patches],
        [UNSUBSCRIBE_MISSING if (u := p.unsubscribe_all) is MISSING else int(bool(u)) for p in patches],
        [ATTRIBUTES_MISSING if (a := p.attributes) is MISSING else dump_attributes(a) for p in patches],
        topics if any(topics) else None,
        distinct=len(set(keys)) == len(keys),
    )


def _new_unsubscribe(codes: list[int]) -> list[int]:
    """A new contact's unsubscribe-all flags (apply_patch: none given is False)."""
    return [0 if code == UNSUBSCRIBE_MISSING else code for code in codes] if UNSUBSCRIBE_MISSING in codes else codes


def _new_attributes(texts: list[str | None]) -> list[str | None]:
    """A new contact's attributes (apply_patch: none given is none)."""
    return [None if text == ATTRIBUTES_MISSING else text for text in texts] if ATTRIBUTES_MISSING in texts else texts


def _same_object(text: str | None, stored: str | None) -> bool:
    """model.same_attributes(text, stored) for ``text`` as the store writes it (dump_attributes), cheaper when
    they differ (the common case of an update): the stored object written the same way either is ``text``
    (the same object) or, when not even its length is (a permutation of the same members has it), is not;
    only the rest go to the exact comparison."""
    if text is None or stored is None:
        return same_attributes(text, stored)
    try:
        current = orjson.dumps(orjson.loads(stored)).decode()
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return False
    if current == text:
        return True
    return len(current) == len(text) and same_attributes(text, stored)


def _upsert_rows(
    conn: sqlite3.Connection,
    list_id: int,
    batch: PatchBatch,
    policy: UpsertPolicy,
    now: float,
    records: history_record.BatchUpdates | None,
) -> tuple[
    list[RowResult], list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]], int, int, int
]:
    """apply_patch for a batch of distinct addresses, on raw rows: (results, new rows, updates of existing rows,
    updates of their attributes only (see writes.write_contacts), contacts added, change in unsubscribed,
    existing contacts that turned unsubscribe-all on), each update's history record appended to ``records``
    (unless None). Falls back to apply_patch for the rare cases (merged attributes)."""
    keys = batch.keys
    # The batch's existing rows as ONE JSON value: one step instead of one per row (measured: a re-import
    # of unchanged rows took half the time), and no per-row Python objects until they are needed. Only the
    # columns a row can change, unless attributes merge (apply_patch then needs whole contacts).
    merging = policy.merge_attributes and not policy.replace_record
    columns = CONTACT_COLUMNS if merging else "unsubscribe_all, topics, attributes"
    if records is not None:  # each update's entry names the contact's last batch row before it
        columns += ", last_batch"
    (found,) = conn.execute(
        f"SELECT json_group_array(json_array(email_key, {columns})) FROM contacts "
        "WHERE list_id = ? AND email_key IN (SELECT value FROM json_each(?))",
        (list_id, orjson.dumps(keys).decode()),
    ).fetchone()
    existing = {row[0]: row for row in orjson.loads(found)}
    if not existing and policy.existing_only:
        return [_NOT_FOUND] * len(keys), [], [], [], 0, 0, 0
    if not existing:  # every address is new: the columns are the rows
        unsubscribe = _new_unsubscribe(batch.unsubscribe)
        new_rows = list(
            zip(
                keys,
                batch.emails,
                unsubscribe,
                repeat(None) if batch.topics is None else map(topics_json, batch.topics),
                _new_attributes(batch.attributes),
                repeat(now),
                repeat(now),
            )
        )
        return [_CREATED] * len(new_rows), new_rows, [], [], len(new_rows), sum(unsubscribe), 0
    results: list[RowResult] = []
    append = results.append
    rows: list[tuple[object, ...]] = []
    updates: list[tuple[object, ...]] = []
    attribute_updates: list[tuple[object, ...]] = []
    added = unsubscribed = turned = 0
    replace, resubscribe = policy.replace_record, policy.resubscribe
    topics_column = batch.topics
    for i, (key, email, code, text) in enumerate(
        zip(keys, batch.emails, batch.unsubscribe, batch.attributes, strict=True)
    ):
        old = existing.get(key)
        given = topics_column[i] if topics_column is not None else None
        if old is None and policy.existing_only:
            append(_NOT_FOUND)
            continue
        if old is None:
            flag = 0 if code == UNSUBSCRIBE_MISSING else code
            rows.append((key, email, flag, topics_json(given), None if text == ATTRIBUTES_MISSING else text, now, now))
            added += 1
            unsubscribed += flag
            append(_CREATED)
            continue
        if merging and text:
            contact = contact_from_row(old[1:7])
            after, result = apply_patch(contact, batch[i], policy, now)
            if after is not contact:
                updates.append(
                    (
                        int(after.unsubscribe_all),
                        topics_json(after.topic_preferences),
                        after.attributes_data,
                        after.updated,
                        key,
                    )
                )
                unsubscribed += int(after.unsubscribe_all) - int(contact.unsubscribe_all)
                turned += after.unsubscribe_all > contact.unsubscribe_all
                if records is not None:
                    records.add(
                        key,
                        (int(contact.unsubscribe_all), old[3], old[4]),
                        (int(after.unsubscribe_all), topics_json(after.topic_preferences), after.attributes_data),
                        old[-1],
                    )
            append(result)
            continue
        old_unsubscribe, old_topics, old_data = old[2:5] if merging else old[1:4]
        was_unsubscribed = old_unsubscribe
        kept = kept_out = False
        if replace:  # SES's PUT: what the row omits is cleared
            new_unsubscribe = 1 if code == 1 else 0
            if text == ATTRIBUTES_MISSING:
                text = None
        elif code == UNSUBSCRIBE_MISSING:
            new_unsubscribe = was_unsubscribed
        elif was_unsubscribed and not code and not resubscribe:
            new_unsubscribe = 1
            kept = True
        else:
            new_unsubscribe = code
        data = old_data
        if text != ATTRIBUTES_MISSING and text != old_data and not _same_object(text, old_data):
            data = text
        topics = old_topics
        if replace:
            given = given or {}
            if (old_topics or given) and (orjson.loads(old_topics) if old_topics else {}) != given:
                topics = topics_json(dict(given))
        elif given:
            preferences = orjson.loads(old_topics) if old_topics else {}
            merged = {**preferences, **given}
            if not resubscribe and OPT_OUT in preferences.values():
                for topic, status in given.items():  # an explicit opt-out stays (model.apply_patch)
                    if status == OPT_IN and preferences.get(topic) == OPT_OUT:
                        merged[topic] = OPT_OUT
                        kept_out = True
            if merged != preferences:
                topics = topics_json(merged)
        if new_unsubscribe == was_unsubscribed and data is old_data and topics is old_topics:
            append(_KEPT[False, kept, kept_out] if kept or kept_out else _UNCHANGED)
            continue
        if new_unsubscribe == was_unsubscribed and topics is old_topics:
            attribute_updates.append((data, now, key))
        else:
            updates.append((new_unsubscribe, topics, data, now, key))
        if records is not None:
            records.add(key, (was_unsubscribed, old_topics, old_data), (new_unsubscribe, topics, data), old[-1])
        unsubscribed += new_unsubscribe - was_unsubscribed
        turned += new_unsubscribe > was_unsubscribed
        append(_KEPT[True, kept, kept_out] if kept or kept_out else _UPDATED)
    return results, rows, updates, attribute_updates, added, unsubscribed, turned


class BulkDeletes:
    """Deletes batches of addresses; remembers whether the next batch is worth trying as all-present first."""

    def __init__(self) -> None:
        self._all_found = True  # see _delete_all_found

    def delete(
        self,
        conn: sqlite3.Connection,
        list_id: int,
        emails: Sequence[str],
        identity: AddressIdentity,
        now: float,
        *,
        dry_run: bool,
    ) -> list[RowResult]:
        """One result per address, in order: DELETED, or NOT_FOUND (also for an address ``identity`` makes one
        with an address met earlier in the batch); with ``dry_run`` only the results. Removals count on
        ``now``'s day."""
        if isinstance(emails, AddressBatch) and emails.identity == identity.name:
            keys = emails.keys
        else:
            keys = [identity.key(e) for e in emails]
        batch = orjson.dumps(keys).decode()
        if dry_run:
            # Only what the counters need (address and unsubscribe flag), not whole contacts; one JSON value,
            # not one fetched row each (see _upsert_rows).
            (found,) = conn.execute(
                "SELECT json_group_object(email_key, unsubscribe_all) FROM contacts "
                "WHERE list_id = ? AND email_key IN (SELECT value FROM json_each(?))",
                (list_id, batch),
            ).fetchone()
            existing: dict[str, int] = orjson.loads(found)
        else:
            # The batch's contacts as they are, copied by SQLite into the history before they go.
            history_record.record_deleting(
                conn,
                "list_id = ? AND email_key IN (SELECT value FROM json_each(?))",
                (list_id, batch),
                now,
                history_record.actor_id(conn),
            )
            return self._delete(conn, list_id, keys, batch, now)
        return _delete_results(keys, existing)

    def _delete(
        self, conn: sqlite3.Connection, list_id: int, keys: list[str], batch: str, now: float
    ) -> list[RowResult]:
        search_index.before_bulk_write(conn, list_id, len(keys))  # before the batch writes, as upserts do
        if self._all_found and self._delete_all_found(conn, list_id, keys, batch, now):
            return [_DELETED] * len(keys)
        # One statement for the batch, in key order, that says what it deleted: each row is found once.
        existing = dict(
            conn.execute(
                "DELETE FROM contacts WHERE list_id = ? AND email_key IN (SELECT value FROM json_each(?)) "
                "RETURNING email_key, unsubscribe_all",
                (list_id, batch),
            ).fetchall()
        )
        count(conn, list_id, now, removed=len(existing), unsubscribed=-sum(existing.values()))
        self._all_found = len(existing) == len(keys)  # optimism pays off again
        return _delete_results(keys, existing)

    def _delete_all_found(
        self, conn: sqlite3.Connection, list_id: int, keys: list[str], batch: str, now: float
    ) -> bool:
        """Delete the batch assuming every address is present (a delete of a list's own addresses): a plain
        DELETE, its unsubscribed rows counted in the small partial index first, costs ~30% less than one with
        RETURNING (which collects its rows before it deletes them; measured 3.8 vs 5.4 us a row). When an
        address is missing the DELETE is rolled back to its savepoint and False sends the caller the regular
        way (and off this path until a batch is all found again)."""
        (unsubscribed,) = conn.execute(
            "SELECT count(*) FROM contacts INDEXED BY contacts_unsubscribed WHERE list_id = ? AND unsubscribe_all = 1 "
            "AND email_key IN (SELECT value FROM json_each(?))",
            (list_id, batch),
        ).fetchone()
        conn.execute("SAVEPOINT sescontacts_bulk_delete")
        deleted = conn.execute(
            "DELETE FROM contacts WHERE list_id = ? AND email_key IN (SELECT value FROM json_each(?))",
            (list_id, batch),
        ).rowcount
        if deleted != len(keys):
            conn.execute("ROLLBACK TO sescontacts_bulk_delete")
            conn.execute("RELEASE sescontacts_bulk_delete")
            self._all_found = False
            return False
        conn.execute("RELEASE sescontacts_bulk_delete")
        count(conn, list_id, now, removed=deleted, unsubscribed=-int(unsubscribed))
        return True


def _delete_results(keys: list[str], existing: dict[str, int]) -> list[RowResult]:
    if len(existing) == len(keys):  # every address found, so none twice: all deleted
        return [_DELETED] * len(keys)
    results: list[RowResult] = []
    seen: set[str] = set()
    for key in keys:
        results.append(_DELETED if key in existing and key not in seen else _NOT_FOUND)
        seen.add(key)
    return results
