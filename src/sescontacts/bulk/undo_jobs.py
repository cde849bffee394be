"""What the console needs from the undo engine (``bulk/undo.py``, reached as ``services.undo``).

The engine and the console's pages are built in parallel: the pages are written against this Protocol, and
hide the "Undo" button while ``Services`` has no ``undo`` (:func:`undo_of`), so the console works either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, cast

from ..model import Contact, Page
from .job_records import Job

UndoPolicy = Literal["keep", "restore"]
UNDO_POLICIES: tuple[UndoPolicy, ...] = ("keep", "restore")
# The job kinds an undo takes back: imports and bulk actions (suppression imports change no contact).
UNDOABLE_KINDS = ("import", "action", "undo")


class UndoConflict(Protocol):
    """A contact changed again after the job being undone: its state now, and what the undo would restore
    (``restore`` None: the undo would remove it; ``current`` None: it was deleted since)."""

    @property
    def email(self) -> str: ...

    @property
    def current(self) -> Contact | None: ...

    @property
    def restore(self) -> Contact | None: ...


class UndoJobs(Protocol):
    """Undo jobs: start one for a job, read the contacts it left as conflicts, resolve them."""

    def start(self, job_id: str, policy: UndoPolicy, started_by: str) -> Job:
        """Start undoing job ``job_id``; the undo job's record. ``policy`` for conflicts:
        ``keep`` lists them and keeps their current state, ``restore`` restores them anyway."""
        ...

    def conflicts(self, undo_job_id: str, *, page_size: int, token: str | None) -> Page[UndoConflict]:
        """The undo job's unresolved conflicts, one page."""
        ...

    def resolve(self, undo_job_id: str, emails: Sequence[str] | None, action: Literal["restore", "keep"]) -> int:
        """Restore (or keep as they are) the conflicts ``emails`` (None: all); how many it resolved."""
        ...


def undo_of(services: object) -> UndoJobs | None:
    """``services.undo`` when this build has the undo engine, else None (the pages then offer no undo)."""
    return cast(UndoJobs | None, getattr(services, "undo", None))
