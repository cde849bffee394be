"""Undo of a job: every contact it created removed, every contact it updated given its previous fields back,
every contact it deleted restored with its attributes, topics and unsubscribe state.

An undo is a job of kind ``"undo"`` (:data:`UNDO_KIND`, a runner of :class:`~.job_manager.JobManager`): the same
records, progress, cancel and resume as an import. Its ``meta`` names the undone job (``undo_of``), the
conflict policy and who started it. It walks the undone job's recorded changes
(:meth:`ContactHistory.job_records`) newest first and applies each one's inverse through the ContactStore
Protocol alone, in batches (the store's bulk paths: on the ses backend through SES, paced, or one S3 import job
a batch), so it works on either backend. Its writes are made as ``Actor("job", <who started it>, <undo job
id>)``: the undo is recorded in the history under its own job ID, and undoing the undo redoes the job.

Where it stands (``meta["position"]``: the recorded row it reached and how many of that row's changes are done,
a batch's creations being one row) is written with each batch's writes, in one transaction on a transactional
store: after a kill, ``jobs resume`` continues from the last committed batch and ends as an undo never killed.

A batch's creations, one record, are taken back whole: the contacts no one changed since
(:meth:`ContactHistory.changed_keys`, one statement) by one ``delete_contacts`` of their keys, with no Change
object each (those cost ~18 us of Python a contact, where the import spent ~3: the undo of a 1M-row import took
3x the import; now about its time).

A contact changed again after the job, by anyone but the job and this undo (:meth:`ContactHistory.later_change`),
is a conflict: recorded with both states (:mod:`.undo_conflicts`) and, by the default policy ``keep``, left as it
is for the user to decide (:meth:`Undo.resolve`); ``restore`` restores it anyway (and still lists it).

What is restored is the contact's fields: unsubscribe-all, topic preferences, attributes (as the JSON object
they were; a text that is not an object, possible through the SES API, is written back as the exact text). A
restored contact is created anew: its creation time is the undo's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast

import orjson

from ..db import Database
from ..errors import BadRequest, NotFound
from ..history import ATTRIBUTES, TOPIC_PREFERENCES, UNSUBSCRIBE_ALL, Actor, Change, CreatedBatch, acting_as
from ..model import (
    MISSING,
    AddressBatch,
    Contact,
    ContactPatch,
    Missing,
    Outcome,
    Page,
    RowResult,
    UpsertPolicy,
    attributes_object,
)
from ..store.base import ContactHistory, ContactStore
from . import undo_conflicts
from .job_manager import JobManager
from .job_records import ACTIVE_STATES, Job
from .report import ImportOptions, empty_counts
from .undo_conflicts import Conflict, ConflictState

#: ``bulk_jobs.kind`` of an undo.
UNDO_KIND: Final = "undo"
#: Changes a batch (one transaction, one progress step) where the store has no batch size of its own.
UNDO_BATCH_ROWS: Final = 5_000
UndoPolicy = Literal["keep", "restore"]
#: What an undo does with a contact changed again since the job: keep it (listed as a conflict) or restore it.
CONFLICT_POLICIES: Final[tuple[UndoPolicy, ...]] = ("keep", "restore")
#: The job kinds an undo takes back: imports, bulk actions and undos (suppression imports change no contact).
UNDOABLE_KINDS: Final = ("import", "action", UNDO_KIND)
# Put back fields an update changed: the given ones exactly (no never-resubscribe guard: this is the old state).
_MERGE: Final = UpsertPolicy(resubscribe=True)
# Write a contact's whole state.
_REPLACE: Final = UpsertPolicy(replace_record=True)


@dataclass(frozen=True, slots=True)
class _Step:
    change: Change
    row: int  # the recorded row's id (a batch's creations are one row, their changes share its id)
    index: int  # the change's place in its row


@dataclass(frozen=True, slots=True)
class _Created:
    """A batch's creations, from its ``start``-th on (where a killed undo stopped inside it)."""

    batch: CreatedBatch
    start: int


def _walk(
    history: ContactHistory, job_id: str, position: Sequence[int] | None, batch: int
) -> Iterator[_Step | _Created]:
    """The job's records newest first, from ``position`` on. Rows are read a few at a time: as many as should
    make about one batch of changes, judged by the rows read last (a batch's creations are one row of up to a
    whole import batch), so memory stays about one batch whatever the job did."""
    row_id, done = (int(position[0]), int(position[1])) if position else (None, 0)
    before = None if row_id is None else row_id + 1
    rows = 1
    while True:
        records = history.job_records(job_id, before_id=before, limit=rows)
        if not records:
            return
        changes = index = 0
        for i, record in enumerate(records):
            skip = done if record.id == row_id else 0
            if isinstance(record, CreatedBatch):
                changes += len(record.addresses)
                if skip < len(record.addresses):
                    yield _Created(record, skip)
            else:
                # A batch's updates are one row: its changes share its id, in the row's order.
                index = index + 1 if i and records[i - 1].id == record.id else 0
                changes += 1
                if index >= skip:
                    yield _Step(record, record.id, index)
        before = records[-1].id
        read = len({record.id for record in records})  # rows: a batch's updates are Changes sharing one id
        rows = max(1, min(batch, batch * read // changes))


def _units(store: ContactStore, walk: Iterator[_Step | _Created], batch: int) -> Iterator[list[_Step] | _Created]:
    """What the undo commits one at a time, in the walk's order: up to ``batch`` single changes, or ``batch``
    creations of a recorded batch from where the unit starts. Lazy: the walk reads on only once the caller has
    committed the unit before."""
    steps: list[_Step] = []
    touched: set[tuple[str, str]] = set()
    for step in walk:
        if isinstance(step, _Created):
            if steps:  # the changes before it, committed first: it may have created what they changed
                yield steps
                steps, touched = [], set()
            for start in range(step.start, len(step.batch.addresses), batch):
                yield _Created(step.batch, start)
            continue
        contact = (step.change.list_name, store.email_key(step.change.email))
        # A contact changed twice by the job: its newer change is undone (committed) before the older one is
        # looked at, so each batch reads and writes every contact at most once.
        if contact in touched or len(steps) >= batch:
            yield steps
            steps, touched = [], set()
        steps.append(step)
        touched.add(contact)
    if steps:
        yield steps


def _with_fields(contact: Contact, fields: Any) -> Contact:
    """``contact`` with the recorded ``fields`` (a change's ``before``) put back."""
    return dataclasses.replace(
        contact,
        unsubscribe_all=bool(fields.get(UNSUBSCRIBE_ALL, contact.unsubscribe_all)),
        topic_preferences=dict(fields.get(TOPIC_PREFERENCES, contact.topic_preferences)),
        attributes_data=fields.get(ATTRIBUTES, contact.attributes_data),
    )


def inverse(change: Change, base: Contact | None) -> Contact | None:
    """What undoing ``change`` makes of its contact, which is ``base`` now: None, not there."""
    if change.op == "created":
        return None
    if change.op == "deleted":
        return _with_fields(Contact(change.email), change.before)
    return _with_fields(base or Contact(change.email), change.before)


def _attributes(text: str | None) -> dict[str, object] | Missing | None:
    """Attributes text as a patch gives it; MISSING when it is not a JSON object (written as text instead)."""
    if text is None:
        return None
    found = attributes_object(text)
    return MISSING if found is None else found


@dataclass
class _Writes:
    """One batch's writes to one list, by the store call that makes them."""

    topics: frozenset[str]  # the list's topics now (a preference for a topic removed since is dropped)
    created: AddressBatch | None = None  # a batch's creations, deleted by their keys (Undo._created)
    deletes: list[str] = field(default_factory=list)
    merges: list[ContactPatch] = field(default_factory=list)
    replaces: list[ContactPatch] = field(default_factory=list)
    singles: list[tuple[Contact | None, Contact]] = field(default_factory=list)  # (now, target): text attributes

    def _topics(self, preferences: Any) -> dict[str, str]:
        return {name: status for name, status in dict(preferences).items() if name in self.topics}

    def whole(self, now: Contact | None, target: Contact | None) -> None:
        """Make the contact, which is ``now``, exactly ``target`` (None: not there)."""
        if target is None:
            if now is not None:
                self.deletes.append(now.email)
            return
        attributes = _attributes(target.attributes_data)
        target = dataclasses.replace(target, topic_preferences=self._topics(target.topic_preferences))
        if isinstance(attributes, Missing):
            self.singles.append((now, target))
        else:
            self.replaces.append(
                ContactPatch(target.email, target.unsubscribe_all, attributes, target.topic_preferences)
            )

    def fields(self, change: Change) -> bool:
        """Put back the fields an update changed, leaving the others as they are: False, nothing planned, when
        that needs the contact's whole state instead (the update added a topic preference, which an upsert's
        merge cannot remove, or the attributes to put back are not a JSON object)."""
        before = change.before
        if TOPIC_PREFERENCES in before and set(cast(dict[str, str], change.after.get(TOPIC_PREFERENCES) or {})) - set(
            cast(dict[str, str], before[TOPIC_PREFERENCES] or {})
        ):
            return False
        attributes = _attributes(cast(str | None, before[ATTRIBUTES])) if ATTRIBUTES in before else MISSING
        if ATTRIBUTES in before and isinstance(attributes, Missing):
            return False
        unsubscribe = bool(before[UNSUBSCRIBE_ALL]) if UNSUBSCRIBE_ALL in before else MISSING
        topics = self._topics(before.get(TOPIC_PREFERENCES, {}))
        self.merges.append(ContactPatch(change.email, unsubscribe, attributes, topics))
        return True


class Undo:
    """Starts undo jobs and runs them (``JobManager.runners[UNDO_KIND]``); lists and resolves their
    conflicts. ``Services.undo``."""

    def __init__(
        self,
        db: Database,
        store: ContactStore,
        history: ContactHistory,
        jobs: JobManager,
        *,
        batch_rows: int = UNDO_BATCH_ROWS,
    ) -> None:
        self.db = db
        self.store = store
        self.history = history
        self.jobs = jobs
        self.batch_rows = batch_rows
        # Told the job's record after each committed batch (the CLI's progress line).
        self.after_batch: Callable[[Job], None] | None = None

    # -- starting, listing, resolving --------------------------------------------------------------------

    def start(self, job_id: str, policy: str = "keep", started_by: str = "", *, run_here: bool = False) -> Job:
        """Queue the undo of job ``job_id`` (``run_here``: for :meth:`JobManager.run` in this process). ``policy``
        for contacts changed again since the job: ``keep`` them (listed as conflicts) or ``restore`` them
        anyway. ``started_by``: who asks (a console user name, the CLI's OS user), named in the history."""
        if policy not in CONFLICT_POLICIES:
            raise BadRequest(f"Unknown conflict policy {policy!r}: keep or restore.", field="conflicts")
        undone = self.jobs.get(job_id)
        if undone.kind not in UNDOABLE_KINDS:
            raise BadRequest(f"Job {job_id} changed no contacts: there is nothing to undo.", field="JobId")
        if undone.state in ACTIVE_STATES:
            raise BadRequest(
                f"Job {job_id} is still {undone.state}: cancel it, or wait for it to end, then undo it.", field="JobId"
            )
        for other in self.jobs.list(limit=1 << 30, kind=UNDO_KIND):
            if other.meta.get("undo_of") == job_id and other.state != "completed":
                raise BadRequest(
                    f"An undo of job {job_id} is {other.state} (job {other.id}): resume that one instead.",
                    field="JobId",
                )
        if (undo_id := self.undone_by(job_id)) is not None:
            raise BadRequest(f"Job {job_id} was undone by job {undo_id}: undo that one to redo it.", field="JobId")
        estimate = sum(undone.counts.get(key, 0) for key in ("created", "updated", "deleted"))
        if estimate and not self.history.job_changes(job_id, limit=1):
            raise BadRequest(
                f"Job {job_id} changed contacts, but the history holds none of its changes (it was off, or they are "
                "older than its retention): there is nothing to undo them from.",
                field="JobId",
            )
        job = self.jobs.submit(
            Path(""),
            ImportOptions(undone.contact_list),
            file_name=f"undo of {undone.file_name}",
            meta={"undo_of": job_id, "policy": policy, "started_by": started_by, "estimate": estimate},
            kind=UNDO_KIND,
            run_here=run_here,
        )
        with self.db.write() as conn:
            conn.execute("UPDATE bulk_jobs SET bytes_total = max(?, bytes_done) WHERE id = ?", (estimate, job.id))
        return self.jobs.get(job.id)

    def undone_by(self, job_id: str) -> str | None:
        """The completed undo that took job ``job_id`` back (and was not itself undone), or None: what a job's
        page offers, "Undo" or a link to its undo."""
        return self._cancelling().get(job_id)

    def _cancelling(self) -> dict[str, str]:
        """The jobs taken back, each with the completed undo that did it (an undo itself undone, a redo, takes
        nothing back: its job stands)."""
        undos: dict[str, list[str]] = {}
        for job in reversed(self.jobs.list(limit=1 << 30, kind=UNDO_KIND)):
            if job.state == "completed":
                undos.setdefault(str(job.meta.get("undo_of")), []).append(job.id)
        found: dict[str, str | None] = {}

        def undone_by(job_id: str) -> str | None:
            if job_id not in found:
                found[job_id] = next((u for u in undos.get(job_id, ()) if undone_by(u) is None), None)
            return found[job_id]

        return {job_id: undo for job_id in undos if (undo := undone_by(job_id)) is not None}

    def _ignored(self, undone: str, undo_job: str) -> list[str]:
        """The jobs whose later changes are no conflict: the undone job, this undo, and every job taken back
        with the undo that took it back (their changes cancel out: undoing an update import, then the import
        before it, finds no conflict in the first)."""
        ignored = {undone, undo_job}
        for job_id, undo in self._cancelling().items():
            ignored |= {job_id, undo}
        return sorted(ignored)

    def _undo_job(self, undo_job_id: str) -> Job:
        job = self.jobs.get(undo_job_id)
        if job.kind != UNDO_KIND:
            raise NotFound(f"Job {undo_job_id} is not an undo.", field="JobId")
        return job

    def conflicts(self, undo_job_id: str, *, page_size: int = 50, token: str | None = None) -> Page[Conflict]:
        """The undo's unresolved conflicts in the order it met them, one page (what the console lists)."""
        return self.conflict_records(undo_job_id, page_size=page_size, token=token)

    def conflict_records(
        self, undo_job_id: str, *, page_size: int = 50, token: str | None = None, state: ConflictState | None = "open"
    ) -> Page[Conflict]:
        """The undo's conflicts in the order it met them, one page, with all they record: those in ``state``
        (default: unresolved; None: all)."""
        self._undo_job(undo_job_id)
        return undo_conflicts.page(self.db.reader(), undo_job_id, page_size=page_size, token=token, state=state)

    def conflict_counts(self, undo_job_id: str) -> dict[str, int]:
        """How many conflicts the undo has ``open``, ``restored`` and ``kept``."""
        self._undo_job(undo_job_id)
        return undo_conflicts.counts(self.db.reader(), undo_job_id)

    def resolve(
        self, undo_job_id: str, emails: Sequence[str] | None, action: str = "restore", *, by: str | None = None
    ) -> int:
        """Decide the open conflicts of ``emails`` (None: all of them): ``restore`` writes what the undo would
        have restored (recorded under the undo's job ID, as its own writes), ``keep`` leaves the contacts as
        they are. How many it decided (an address with no open conflict is not counted). ``by``: who decides
        (default: who started the undo)."""
        if action not in CONFLICT_POLICIES:
            raise BadRequest(f"Unknown action {action!r}: restore or keep.", field="action")
        job = self._undo_job(undo_job_id)
        if job.state in ACTIVE_STATES:
            raise BadRequest(f"The undo {undo_job_id} is still {job.state}: its conflicts are not all known yet.")
        keys = None if emails is None else [self.store.email_key(e) for e in emails]
        who = by if by is not None else str(job.meta.get("started_by", ""))
        done = 0
        with acting_as(Actor("job", who, undo_job_id)):
            while True:
                found = undo_conflicts.page(
                    self.db.reader(), undo_job_id, page_size=self._batch_size(), token=None, state="open", keys=keys
                ).items
                if not found:
                    return done
                plans: dict[str, _Writes] = {}
                if action == "restore":
                    for conflict in found:
                        self._plan(plans, conflict.list_name).whole(
                            self._current(conflict.list_name, conflict.email), conflict.restore
                        )
                with self.store.atomic():
                    self._apply(plans, empty_counts())
                    with self.db.write() as conn:
                        state: ConflictState = "restored" if action == "restore" else "kept"
                        undo_conflicts.mark(conn, [c.id for c in found], state, time.time())
                done += len(found)

    # -- running -------------------------------------------------------------------------------------------

    def __call__(self, job: Job, should_stop: Callable[[], bool]) -> tuple[str, str | None]:
        """Run the undo ``job`` from where it stopped: ``completed``, or ``stopped`` when ``should_stop`` says so
        (asked before every batch)."""
        meta = dict(job.meta)
        undone = str(meta["undo_of"])
        policy = str(meta.get("policy", "keep"))
        counts = {**empty_counts(), "conflicts": 0, **job.counts}
        batch = self._batch_size()
        ignore = self._ignored(undone, job.id)
        with acting_as(Actor("job", str(meta.get("started_by", "")), job.id)):
            for unit in _units(self.store, _walk(self.history, undone, meta.get("position"), batch), batch):
                if should_stop():
                    return "stopped", None
                if isinstance(unit, _Created):
                    self._created(job, unit.batch, unit.start, unit.start + batch, meta, counts, policy, ignore)
                else:
                    self._batch(job, unit, meta, counts, policy, ignore)
        return "completed", None

    def _batch_size(self) -> int:
        return self.store.bulk_batch_rows or self.batch_rows

    def _current(self, list_name: str, email: str) -> Contact | None:
        try:
            return self.store.get_contact(list_name, email)
        except NotFound:
            return None

    def _plan(self, plans: dict[str, _Writes], list_name: str) -> _Writes:
        if list_name not in plans:
            plans[list_name] = _Writes(frozenset(self.store.get_list(list_name).topic_names))
        return plans[list_name]

    def _created(
        self,
        job: Job,
        created: CreatedBatch,
        start: int,
        end: int,
        meta: dict[str, Any],
        counts: dict[str, int],
        policy: str,
        ignore: list[str],
    ) -> None:
        """Undo the creations ``start:end`` of a batch: those changed since by no ignored job (one probe each,
        :meth:`ContactHistory.changed_keys`) as changes of their own, the others, all of them after an import,
        by one delete of their keys, with no Change each (an undo then costs about what the import did)."""
        addresses = created.addresses
        keys, emails = addresses.keys[start:end], addresses.emails[start:end]
        position = [created.id, start + len(keys)]
        if not created.list_name:  # the list was deleted since
            counts["not_found"] += len(keys)
            self._batch(job, [], meta, counts, policy, ignore, position=position, rows=position[1] - start)
            return
        changed = self.history.changed_keys(created.list_name, keys, created.id, ignore_jobs=ignore)
        steps: list[_Step] = []
        if changed:  # those go the way of any change (conflicts); the rest are deleted by their keys
            unchanged: tuple[list[str], list[str]] = ([], [])
            for i, (key, email) in enumerate(zip(keys, emails, strict=True), start):
                if key in changed:
                    change = Change(created.id, created.list_name, email, created.at, created.actor, "created", {}, {})
                    steps.append(_Step(change, created.id, i))
                else:
                    unchanged[0].append(key)
                    unchanged[1].append(email)
            keys, emails = unchanged
        deletes = AddressBatch(addresses.identity, keys, emails)
        self._batch(
            job,
            steps,
            meta,
            counts,
            policy,
            ignore,
            created=(created.list_name, deletes),
            position=position,
            rows=position[1] - start,
        )

    def _batch(
        self,
        job: Job,
        steps: list[_Step],
        meta: dict[str, Any],
        counts: dict[str, int],
        policy: str,
        ignore: list[str],
        *,
        created: tuple[str, AddressBatch] | None = None,
        position: list[int] | None = None,
        rows: int | None = None,
    ) -> None:
        """Undo one batch of changes (and ``created``: a list's creations to delete by their keys) and record
        where the walk stands (``position``, by default after the last step; ``rows`` the changes it counts,
        by default the steps), in one transaction where the store has them. Reads (later changes, the
        contacts' state) come first, outside it, so the write lock is held for the writes alone."""
        plans: dict[str, _Writes] = {}
        if created is not None and created[1]:
            self._plan(plans, created[0]).created = created[1]
        conflicts: list[tuple[str, Conflict]] = []
        reader = self.db.reader()
        laters = self.history.later_changes([step.change for step in steps], ignore_jobs=ignore)
        for step, later in zip(steps, laters, strict=True):
            change = step.change
            if not change.list_name:  # the list was deleted since
                counts["not_found"] += 1
                continue
            writes = self._plan(plans, change.list_name)
            if later is None:
                if change.op == "created":
                    writes.deletes.append(change.email)
                elif change.op == "deleted":
                    writes.whole(None, inverse(change, None))
                elif not writes.fields(change):
                    now = self._current(change.list_name, change.email)
                    writes.whole(now, inverse(change, now))
                continue
            key = self.store.email_key(change.email)
            earlier = undo_conflicts.find(reader, job.id, change.list_name, key)
            now = self._current(change.list_name, change.email)
            if earlier is not None:
                base = earlier.restore
            elif now is None and later.op == "deleted":  # someone deleted it since: as it was before that
                base = _with_fields(Contact(change.email), later.before)
            else:
                base = now
            target = inverse(change, base)
            restore = policy == "restore"
            if restore:
                writes.whole(now, target)
            if earlier is None:
                counts["conflicts"] += 1
            conflicts.append(
                (
                    key,
                    Conflict(
                        id=0,
                        undo_job=job.id,
                        list_name=change.list_name,
                        email=change.email,
                        op=change.op,
                        later_actor=earlier.later_actor if earlier else later.actor,
                        later_at=earlier.later_at if earlier else later.at,
                        current=earlier.current if earlier else now,
                        restore=target,
                        state="restored" if restore else "open",
                        resolved=None,
                    ),
                )
            )
        meta["position"] = position or [steps[-1].row, steps[-1].index + 1]
        done = len(steps) if rows is None else rows
        with self.store.atomic():
            self._apply(plans, counts)
            # Inside the batch's atomic(): on a transactional store this commits with the batch's writes.
            with self.db.write() as conn:
                for key, conflict in conflicts:
                    undo_conflicts.record(conn, job.id, key, conflict)
                conn.execute(
                    "UPDATE bulk_jobs SET rows_done = rows_done + ?, bytes_done = rows_done + ?, "
                    "bytes_total = max(?, rows_done + ?), batches_done = batches_done + 1, counts = ?, meta = ? "
                    "WHERE id = ?",
                    (
                        done,
                        done,
                        int(meta.get("estimate") or 0),
                        done,
                        orjson.dumps(counts).decode(),
                        orjson.dumps(meta).decode(),
                        job.id,
                    ),
                )
        if self.after_batch is not None:
            self.after_batch(self.jobs.get(job.id))

    def _apply(self, plans: dict[str, _Writes], counts: dict[str, int]) -> None:
        """Make each list's writes through the store's bulk paths, counting the outcomes."""
        for list_name, writes in plans.items():
            results: list[RowResult] = []
            if writes.created:
                results += self.store.delete_contacts(list_name, writes.created)
            if writes.deletes:
                results += self.store.delete_contacts(list_name, writes.deletes)
            if writes.merges:
                results += self.store.upsert_contacts(list_name, writes.merges, _MERGE)
            if writes.replaces:
                results += self.store.upsert_contacts(list_name, writes.replaces, _REPLACE)
            for now, target in writes.singles:
                if now is None:
                    self.store.create_contact(list_name, target)
                    results.append(RowResult(Outcome.CREATED))
                else:
                    self.store.update_contact(list_name, target)
                    results.append(RowResult(Outcome.UPDATED))
            for result in results:
                counts["rejected" if result.outcome is Outcome.REFUSED else result.outcome.value] += 1
