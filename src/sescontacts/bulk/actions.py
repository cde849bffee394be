"""Bulk actions on "all N matching": Delete, Unsubscribe, Resubscribe, or opt in to or out of a topic, every
contact a view matches, as a job.

The console's checked rows (at most a page) are applied in the request. "All N matching" can be a million
contacts, so it runs as a job of the import engine (:mod:`.job_manager`: persisted, progress, cancel, resume
after a kill), each batch one ``ContactStore.apply_to_matching`` call: on the local backend two statements
over a key range, on the ses backend the store's SES bulk paths.

What "all N matching" means while contacts change under the job: the query is stored with the job, with the
time the user confirmed (``created_before``). The job walks the list in key order, a batch at a time, and
records the last key it reached in the batch's own transaction. A contact is acted on if it matches when the
walk reaches it and was created before the user confirmed; a contact added (or deleted and added again)
afterwards is left alone, even if it matches, so "delete all matching" never removes what someone adds
while it runs. A resumed job continues after the recorded key: nothing is done twice, nothing skipped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ..model import AttributeCondition, ContactQuery, TopicFilter
from ..store.base import BulkAction, ContactStore, MatchingStep
from .report import empty_counts

#: ``bulk_jobs.kind`` of a bulk action (imports are ``"import"``).
ACTION_KIND: Final = "action"
#: Contacts a batch on the local backend, one transaction each. Measured at 1M contacts (2 cores, load ~2): a
#: 5,000-contact batch holds the write lock ~35 ms, and single-contact writes from another thread during the job
#: waited p99 83 ms, max 174 ms (10,000: p99 142 ms, max 251 ms); the job takes ~12% longer than at 10,000, still
#: about the time of one UPDATE over all of them (bench/actions.py).
ACTION_BATCH_ROWS: Final = 5_000


def query_to_json(query: ContactQuery) -> dict[str, Any]:
    return dataclasses.asdict(query)


def query_from_json(data: dict[str, Any]) -> ContactQuery:
    """The stored query of a job, including one stored before a search could hold several attribute
    conditions (its ``attribute_key``/``attribute_value`` meant one condition, matched exactly then)."""
    data = dict(data)
    topic = data.pop("topic", None)
    key, value = data.pop("attribute_key", None), data.pop("attribute_value", None)
    conditions = [AttributeCondition(**c) for c in data.pop("attributes", ())]
    if key:
        conditions.append(AttributeCondition(key, value, exact=True))
    return ContactQuery(**data, topic=TopicFilter(**topic) if topic else None, attributes=tuple(conditions))


@dataclass
class ActionProgress:
    """Where a bulk action stands after a committed batch (what the job row records)."""

    after: str | None = None  # the last key reached: the next batch starts after it
    finished: bool = False  # the walk reached the end of the list
    matched: int = 0
    batches: int = 0
    estimate: int | None = None  # contacts matching when the job first started (the progress bar's total)
    counts: dict[str, int] = field(default_factory=empty_counts)

    def advanced(self, step: MatchingStep, action: BulkAction) -> ActionProgress:
        counts = dict(self.counts)
        counts["deleted" if action == "delete" else "updated"] += step.changed
        counts["not_found"] += step.gone
        counts["rejected"] += step.refused
        counts["unchanged"] += step.matched - step.changed - step.gone - step.refused
        return ActionProgress(
            after=step.last_key or self.after,
            finished=step.last_key is None,
            matched=self.matched + step.matched,
            batches=self.batches + 1,
            estimate=self.estimate,
            counts=counts,
        )


def run_action(
    store: ContactStore,
    list_name: str,
    query: ContactQuery,
    action: BulkAction,
    *,
    topic: str | None = None,
    created_before: float,
    resume: ActionProgress,
    on_commit: Callable[[ActionProgress], None],
    after_commit: Callable[[ActionProgress], None],
    should_stop: Callable[[], bool],
    batch_rows: int = ACTION_BATCH_ROWS,
) -> tuple[ActionProgress, bool]:
    """Run the action (on ``topic``, for a topic action) from ``resume`` until the walk ends (returns True) or
    ``should_stop`` (polled before each batch) says stop (False). ``on_commit`` runs inside each batch's
    ``store.atomic()`` block (on a transactional store the job's record commits with the batch),
    ``after_commit`` after it."""
    progress = resume
    if progress.finished:  # killed after its last batch committed, before the job was marked completed
        return progress, True
    if progress.estimate is None:
        # The progress bar's total. The list's counters answer a view without a search (no scan); contacts added
        # since the user confirmed are in it, which only an estimate may be.
        progress = dataclasses.replace(progress, estimate=store.count_contacts(list_name, query).value)
    limit = store.bulk_batch_rows or batch_rows
    while not should_stop():
        with store.atomic():
            step = store.apply_to_matching(
                list_name,
                query,
                action,
                topic=topic,
                after=progress.after,
                limit=limit,
                created_before=created_before,
            )
            progress = progress.advanced(step, action)
            on_commit(progress)
        after_commit(progress)
        if progress.finished:
            return progress, True
    return progress, False
