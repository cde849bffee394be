"""The data dir's background work runs in exactly one process: whichever takes an ``flock`` first.

The search indexer, the import/bulk job worker and the ses mirror's sync each assume they are alone on the
data dir: two indexers would race for the same pending rows, two job workers would each run a job of the
same list. ``serve --workers N`` runs N processes on one data dir (and a user may start two ``serve`` on one
data dir by hand), so every serving process asks for ownership here, and only the owner runs the work.

Ownership is an exclusive ``flock`` on ``<database>-background``, held for as long as the owner runs. The
kernel drops it when that process ends, however it ends (``kill -9`` included), so no stale lock is ever
left. A process that did not get it checks again every ``poll`` seconds and takes the work over once the
owner is gone: a sibling worker, or the replacement uvicorn's supervisor starts. The owner writes its pid
in the file, for people (``cat``); the lock, not the text, is what counts.

Everything else a request needs is in the database (sessions, login limits, job records and progress, the
search index's pending rows), so any process answers any request; only the work below has one home.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from .private_files import ensure_private_file

logger = logging.getLogger("sescontacts.background")

Hook = Callable[[], None]


class BackgroundWork:
    """Pairs of start and stop hooks that run in one process per data dir (see the module's docstring).

    ``start`` takes ownership at once when it is free (so a lone server, and tests, have the work running
    when ``start`` returns), else watches for it in a thread. ``stop`` ends the watch, stops the work if this
    process owns it, and lets the lock go.
    """

    def __init__(self, lock_path: Path, *, poll: float = 0.5) -> None:
        self.lock_path = Path(lock_path)
        self.poll = poll
        self.hooks: list[tuple[Hook, Hook]] = []  # (start, stop), started in order, stopped in reverse
        self._fd: int | None = None
        self._guard = threading.Lock()  # one of start's take, the watcher's take, stop at a time
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def add(self, start: Hook, stop: Hook) -> None:
        self.hooks.append((start, stop))

    @property
    def owned(self) -> bool:
        """Whether this process runs the background work now."""
        return self._fd is not None

    def start(self) -> None:
        self._stopping.clear()
        if self._take() or (self._watcher is not None and self._watcher.is_alive()):
            return
        self._watcher = threading.Thread(target=self._watch, name="sescontacts-background-owner", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        with self._guard:
            if self._fd is None:
                return
            try:
                for _, stop in reversed(self.hooks):
                    stop()
            finally:
                self._release()

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll):
            try:
                if self._take():
                    return
            except Exception:  # a hook failed (the database busy past its timeout, ...): try again later
                logger.exception("taking over the background work failed; trying again")

    def _take(self) -> bool:
        """Own the work if no other process does: lock, write our pid, run the start hooks. A hook that
        raises stops the ones already started and gives the lock back before the error goes on."""
        with self._guard:
            if self._fd is not None:
                return True
            if self._stopping.is_set():
                return False
            ensure_private_file(self.lock_path)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
            started: list[Hook] = []
            try:
                for start, stop in self.hooks:
                    start()
                    started.append(stop)
            except BaseException:
                for stop in reversed(started):
                    stop()
                self._release()
                raise
            return True

    def _release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)  # no pid of a process that no longer owns the work; the lock goes with close
            os.close(fd)


class Periodic:
    """One step of background work every ``interval`` seconds, in a thread of its own (``sescontacts-<name>``):
    ``start`` and ``stop`` are the hooks :meth:`BackgroundWork.add` takes. A step that raises one of ``errors``
    is logged as a warning, prefixed by ``what``, and the next step tries again; ``stopping`` is set once
    ``stop`` is called, for a long step to end early."""

    def __init__(
        self,
        name: str,
        what: str,
        step: Callable[[], object],
        interval: float,
        *,
        errors: tuple[type[Exception], ...] = (Exception,),
    ) -> None:
        self.name = name
        self.what = what
        self.step = step
        self.interval = interval
        self.errors = errors
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"sescontacts-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.step()
            except self.errors as exc:
                logger.warning("%s: %s", self.what, exc)
