"""How long the contact history is kept (``serve --history-retention-days``, default 180 days): changes older
than that are deleted in the background, a batch at a time, so that a pruning never holds the write lock for
long (an import's or an API write's turn comes between two batches). 0 days records nothing, and prunes what
was recorded; a later start with more days records again.

The server applies the setting when it opens the data directory (every process of ``serve --workers N`` the
same); other commands leave it as the last server set it. The pruner runs in the process that owns the data
dir's background work (background.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .background import Periodic
from .store.base import ContactHistory

logger = logging.getLogger("sescontacts.history")

DAY = 86_400.0
PRUNE_INTERVAL = 300.0  # seconds between prunings
PRUNE_BATCH = 10_000  # changes deleted per transaction


class HistoryPruner:
    """Deletes the changes older than ``days`` every ``interval`` seconds (``start`` / ``stop``: background
    work hooks); :meth:`run_once` is one pruning, to its end or until the work stops."""

    def __init__(
        self,
        history: ContactHistory,
        days: int,
        *,
        interval: float = PRUNE_INTERVAL,
        batch: int = PRUNE_BATCH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.history = history
        self.days = days
        self.batch = batch
        self.clock = clock
        self.worker = Periodic("history-pruner", "history: pruning old changes", self.run_once, interval)
        self.start = self.worker.start
        self.stop = self.worker.stop

    def run_once(self) -> int:
        """Delete every change recorded before ``days`` ago, a batch per transaction; how many."""
        older_than = self.clock() - self.days * DAY
        pruned = 0
        while not self.worker.stopping.is_set():
            deleted = self.history.prune(older_than, limit=self.batch)
            pruned += deleted
            if deleted < self.batch:
                break
        if pruned:
            logger.info("history: %d changes older than %d days pruned", pruned, self.days)
        return pruned


def apply_retention(history: ContactHistory, days: int) -> None:
    """Record changes when ``days`` > 0, record nothing at 0 (see the module's docstring)."""
    if history.set_recording(days > 0):
        logger.info("history: %s", "recording changes again" if days else "recording nothing (retention 0 days)")
