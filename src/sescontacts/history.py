"""Contact history (the domain): who changed a contact, when, and what, and who is acting right now.

Every change to a contact is recorded where it is written (the local store and the ses backend's mirror keep
it in the same transaction as the change: ``store/sqlite/history.py``). The surface that makes a change says
who it acts for by :func:`acting_as`, a context variable, so the stores never take an "actor" argument: the
console as its logged-in user, the SES API as the request's access key ID, a job as its job ID, the ses
backend's sync as "SES", an event rule as the event. A write with no actor set is recorded as ``system``.

Nothing secret is ever recorded: an actor is a user *name* or an access key *ID*, never a password or secret.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final, Literal

from .model import AddressBatch, attribute_text, attributes_object

ActorKind = Literal["console", "api", "job", "sync", "event", "cli", "system"]
ACTOR_KINDS: Final[tuple[ActorKind, ...]] = ("console", "api", "job", "sync", "event", "cli", "system")

ChangeOp = Literal["created", "updated", "deleted"]
CHANGE_OPS: Final[tuple[ChangeOp, ...]] = ("created", "updated", "deleted")

# The fields a change records (a contact's address is its identity, never a changed field).
UNSUBSCRIBE_ALL: Final = "unsubscribe_all"
TOPIC_PREFERENCES: Final = "topic_preferences"
ATTRIBUTES: Final = "attributes"
FIELDS: Final = (UNSUBSCRIBE_ALL, TOPIC_PREFERENCES, ATTRIBUTES)

# Default retention of the history, in days (``--history-retention-days``; 0: record nothing).
DEFAULT_RETENTION_DAYS: Final = 180


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change. ``kind`` says which surface; ``name`` who on it (console user name, access key ID,
    "SES" for the sync, the feedback ID of an event, the OS user of a CLI command); ``job`` the job ID when a
    job made the change (``name`` is then who started the job)."""

    kind: ActorKind
    name: str = ""
    job: str = ""

    def label(self) -> str:
        """How the console and the CLI show the actor."""
        if self.kind == "job":
            return f"job {self.job}" + (f" ({self.name})" if self.name else "")
        if self.kind == "sync":
            return self.name or "SES"
        return f"{self.kind} {self.name}".strip()


SYSTEM: Final = Actor("system")
STARTED_BY: Final = "started_by"  # the key of a job's ``meta`` that says who started it
SES_SYNC: Final = Actor("sync", "SES")

_current: ContextVar[Actor] = ContextVar("sescontacts_actor", default=SYSTEM)


def current_actor() -> Actor:
    """Who the writes made now, in this context, act for."""
    return _current.get()


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Record the block's writes (in this context, and in worker threads it starts with the context copied, as
    anyio's ``to_thread.run_sync`` does) as ``actor``'s."""
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def started_by(actor: Actor) -> str:
    """Who a job's record says started it (its ``meta["started_by"]``, the name of the job's actor when it
    runs): a console user's name, ``api:<access key ID>``, ``cli``; a job started by a job keeps its starter."""
    if actor.kind == "console" or actor.kind == "job":
        return actor.name
    if actor.kind == "api":
        return f"api:{actor.name}"
    return "" if actor.kind == "system" else actor.kind


def job_actor(job_id: str, meta: Mapping[str, object]) -> Actor:
    """Who a job's changes are recorded as: the job, and who started it (its record's ``started_by``)."""
    return Actor("job", str(meta.get(STARTED_BY) or ""), job_id)


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded change to one contact.

    ``before`` / ``after`` hold fields by name (:data:`FIELDS`): for an update only the fields that changed,
    both sides; for a deletion every field before (what restoring the contact needs), ``after`` empty; for a
    creation both empty (the contact as created is its state until the next change: creations are recorded
    without reading anything, so an import stays fast). ``unsubscribe_all`` is a bool, ``topic_preferences``
    a dict, ``attributes`` the AttributesData text (or None).
    """

    id: int
    list_name: str
    email: str
    at: float
    actor: Actor
    op: ChangeOp
    before: Mapping[str, object]
    after: Mapping[str, object]
    created: float | None = None  # a deleted contact's creation time


@dataclass(frozen=True, slots=True)
class CreatedBatch:
    """A batch's creations as they are recorded: one record (an import batch's new contacts), not a
    :class:`Change` each. What an undo reads to take a batch back with one delete of its addresses (a Change
    each cost ~18 us of Python a contact against the import's ~3): :meth:`ContactHistory.job_records`."""

    id: int
    list_name: str
    at: float
    actor: Actor
    addresses: AddressBatch  # in the order recorded, with their keys


@dataclass(frozen=True, slots=True)
class ChangeQuery:
    """Which changes the activity page, ``sescontacts history`` and an undo read; every field narrows.

    ``actor_kind`` / ``actor_name`` / ``job``: who; ``ops``: what (empty: all); ``since`` / ``until``: when
    (seconds since the epoch, ``until`` excluded); ``email``: one contact (as :meth:`ContactStore.email_key`
    files it)."""

    actor_kind: ActorKind | None = None
    actor_name: str | None = None
    job: str | None = None
    ops: tuple[ChangeOp, ...] = ()
    since: float | None = None
    until: float | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class AttributeDiff:
    """One attribute key's change: ``before`` / ``after`` as shown (None: the key was absent)."""

    key: str
    before: str | None
    after: str | None


def attribute_diff(before: str | None, after: str | None) -> list[AttributeDiff] | None:
    """The key-level difference of two AttributesData texts, in key order; None when either side is not a
    JSON object (text the SES API stored as it came: the console then shows both texts whole)."""
    old = attributes_object(before) if before else {}
    new = attributes_object(after) if after else {}
    if old is None or new is None:
        return None
    diff = []
    for key in sorted(old.keys() | new.keys()):
        was = attribute_text(old[key]) if key in old else None
        now = attribute_text(new[key]) if key in new else None
        if key not in old or key not in new or old[key] != new[key]:
            diff.append(AttributeDiff(key, was, now))
    return diff
