"""The contacts page (the console's home): table, search, filters, pages, overview and bulk actions.

Bulk actions come two ways. Checked rows (at most a page, 1,000) are applied in the request, after a
confirmation that says how many change: a second or less, and the user sees the result at once. "All N
matching" is always a job (``JobManager.submit_action``; see ``bulk/actions.py`` for what it includes while
contacts change): N can be a million, and a job shows progress, can be cancelled and survives a restart.
There is no size threshold below which "all matching" runs in the request instead: one path, with one
meaning for "all matching", and a small job finishes before its page has loaded.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...bulk.actions import ACTION_KIND
from ...bulk.job_manager import JobManager
from ...errors import ListNotFound, NotFound, SesContactsError
from ...events.log import AddressMark, EventLog
from ...model import (
    MISSING,
    OPT_IN,
    OPT_OUT,
    Contact,
    ContactList,
    ContactPatch,
    ContactQuery,
    Count,
    ListStats,
    Outcome,
    Topic,
    UpsertPolicy,
)
from ...services import Services
from ...store.base import BULK_ACTIONS as STORE_ACTIONS
from ...store.base import (
    TOPIC_ACTIONS,
    BulkAction,
    ContactStore,
    MatchingStep,
    SuppressionList,
    SyncedStore,
    SyncStatus,
    check_bulk_action,
)
from ...suppression import SuppressedDestination
from . import deliverability
from .common import in_thread, is_htmx, list_name, redirect, render, render_partial, services
from .deliverability import Deliverability
from .filters import ContactsView
from .imports import JobProgress
from .undo import undo_offered

COUNT_CAP = 10_000
BAD_PAGE = (
    "This page link is not valid: it was changed, or it belongs to another search. Start again from the first page."
)
BULK_BATCH = 1000
# action -> (button, past participle, what a running job is doing); a topic action's are followed by the topic
BULK_ACTIONS: dict[BulkAction, tuple[str, str, str]] = {
    "delete": ("Delete", "deleted", "Deleting"),
    "unsubscribe": ("Unsubscribe from all", "unsubscribed", "Unsubscribing"),
    "resubscribe": ("Resubscribe", "resubscribed", "Resubscribing"),
    "topic_opt_in": ("Opt in to", "opted in to", "Opting in to"),
    "topic_opt_out": ("Opt out of", "opted out of", "Opting out of"),
}
assert set(BULK_ACTIONS) == set(STORE_ACTIONS)


@dataclass
class ContactsData:
    contact_list: ContactList
    contacts: list[Contact] = field(default_factory=list)
    next_token: str | None = None
    total: Count = field(default_factory=lambda: Count(0))
    # None: not known without a query of its own; the page fetches it from /count after the table shows.
    matching: Count | None = field(default_factory=lambda: Count(0))
    error: str | None = None
    # The shown contacts on the account's suppression list, by folded address (SES will not deliver to them),
    # and what the bounce and complaint events say of them.
    suppressed: dict[str, SuppressedDestination] = field(default_factory=dict)
    marks: dict[str, AddressMark] = field(default_factory=dict)


def load_contacts(
    store: ContactStore,
    name: str,
    view: ContactsView,
    suppression: SuppressionList,
    log: EventLog,
) -> ContactsData:
    """One page of the table with its counts, in one thread hop.

    A filtered count the page itself does not give is left to ``/count`` (loaded by htmx once the table is
    on screen): with a substring search each of the two is a scan of the list, and the table should not
    wait for the number.
    """
    contact_list = store.get_list(name)
    data = ContactsData(contact_list)
    query = view.query(contact_list)
    if view.page and not view.token:
        data.error = BAD_PAGE
        return data
    try:
        page = store.list_contacts(name, query, page_size=view.size, token=view.token or None)
    except SesContactsError as exc:
        # A page link that was edited, cut short or made for another search: the store's SES wording
        # ("Provided NextToken is invalid") means nothing on this page.
        data.error = BAD_PAGE if exc.field == "NextToken" else exc.message
        return data
    data.contacts, data.next_token = page.items, page.next_token
    if page.items:  # what SES will not deliver, and why, for the rows shown
        data.suppressed = suppression.suppressed_among([c.email for c in page.items])
        data.marks = log.marks(c.email for c in page.items)
    data.total = store.count_contacts(name, ContactQuery())
    if not view.filtered:
        data.matching = data.total
    elif not view.page and page.next_token is None:
        data.matching = Count(len(page.items))  # the whole result is on this page: no second scan
    elif not (view.conditions or view.topic or view.delivery):
        data.matching = store.count_contacts(name, query)  # status alone: kept as counters, no scan
    else:
        data.matching = None
    return data


def count_matching(store: ContactStore, name: str, view: ContactsView, *, exact: bool = False) -> Count:
    return store.count_contacts(name, view.query(store.get_list(name)), cap=None if exact else COUNT_CAP)


async def count(request: Request) -> Response:
    """The filtered count, capped at COUNT_CAP (shown as "10,000+") so it never scans past that; ``full=1`` (the
    "Count exactly" link next to a capped count) counts to the end. That is a read on a snapshot in a worker
    thread, never the write lock: with a substring search it reads the whole list, and writes go on meanwhile."""
    view = ContactsView.from_params(request.query_params)
    exact = request.query_params.get("full") == "1"
    try:
        result = await in_thread(count_matching, services(request).store, list_name(request), view, exact=exact)
    except ListNotFound:
        raise  # the list itself: the page that offers to create it (app.py)
    except SesContactsError as exc:
        return render(request, "error.html", status_code=exc.status, message=exc.message)
    if is_htmx(request):
        return render_partial(request, "matching_count", result, view)
    return render(request, "count.html", view=view, matching=result)


async def contacts_page(request: Request) -> Response:
    view = ContactsView.from_params(request.query_params)
    found = services(request)
    data = await in_thread(load_contacts, found.store, list_name(request), view, found.suppression, found.events.log)
    editing = "add" in request.query_params or "remove" in request.query_params
    if is_htmx(request) and request.headers.get("hx-target") == "results" and not editing:
        response = render_partial(request, "results", view, data)
        response.headers["hx-push-url"] = view.url()  # the canonical, shareable URL of this view
        return response
    # An import or bulk action in progress stays one click away after its page is left.
    recent = await in_thread(services(request).jobs.list, 5, kind=None)
    running = [job for job in recent if job.state in ("queued", "running")]
    response = render(request, "contacts.html", view=view, data=data, running=running, actions=BULK_ACTIONS)
    if is_htmx(request) and editing:
        # "Add condition" / "Remove" change the form itself: the page's main part is swapped, not the results.
        response.headers.update(
            {"hx-retarget": "#main", "hx-reselect": "#main", "hx-reswap": "outerHTML", "hx-push-url": view.url()}
        )
    return response


STATS_TTL = 5.0


def load_overview(store: ContactStore, name: str, cache: dict[str, Any]) -> tuple[ListStats, ContactList]:
    """List stats with per-topic counts reused for a few seconds.

    During an import every batch changes the list, and per-topic counts read every contact; recomputing
    them on each page view would keep a core busy. Totals and the per-day counts come from counters (no
    scan), so the numbers a user just changed are always current; only topic counts may lag by STATS_TTL.
    """
    now = time.monotonic()
    contact_list = store.get_list(name)
    cached = cache.get(name)
    if cached is None or now - cached[0] >= STATS_TTL or cached[2].topics != contact_list.topics:
        stats = store.list_stats(name)
        cache[name] = (now, stats, contact_list)
        return stats, contact_list
    total = store.count_contacts(name, ContactQuery()).value
    unsubscribed = store.count_contacts(name, ContactQuery(status=OPT_OUT)).value
    per_day = store.daily_counts(name)
    return dataclasses.replace(cached[1], total=total, unsubscribed=unsubscribed, per_day=per_day), contact_list


@dataclass(frozen=True)
class MirrorState:
    """What the overview says about a store that reads from a synced mirror (the ses backend)."""

    status: SyncStatus | None
    region: str


def mirror_state(store: ContactStore) -> MirrorState | None:
    """The mirror's freshness for a :class:`SyncedStore`; None for a store that has no mirror."""
    if isinstance(store, SyncedStore):
        return MirrorState(store.sync_status(), store.region)
    return None


def _overview_data(
    found: Services, name: str, cache: dict[str, Any]
) -> tuple[ListStats, ContactList, MirrorState | None, Deliverability]:
    """Everything the overview shows, in one thread hop (the sync status is a database read too)."""
    stats, contact_list = load_overview(found.store, name, cache)
    return stats, contact_list, mirror_state(found.store), deliverability.load(found.events.log, found.suppression)


async def overview(request: Request) -> Response:
    cache = request.app.state.stats_cache
    found = services(request)
    stats, contact_list, mirror, delivery = await in_thread(_overview_data, found, list_name(request), cache)
    if is_htmx(request):
        return render_partial(request, "overview", stats, contact_list, mirror, delivery)
    return render(
        request, "overview.html", stats=stats, contact_list=contact_list, mirror=mirror, deliverability=delivery
    )


# -- bulk ----------------------------------------------------------------------------------------------


def _batches(emails: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(emails), BULK_BATCH):
        yield emails[i : i + BULK_BATCH]


def apply_bulk(
    store: ContactStore,
    name: str,
    action: str,
    batches: Iterator[list[str]],
    *,
    dry_run: bool,
    topic: str | None = None,
) -> MatchingStep:
    """What the action finds and does on checked rows, in the terms of ``apply_to_matching`` (``matched``: how
    many were looked at; a dry run tells the confirmation ``changed``, and for a topic action ``unsubscribed``
    and ``opted_out``).

    A topic action's dry run asks the import rule with its guards on (unsubscribe-all and an explicit OPT_OUT
    kept): the guards say who is unsubscribed and who opted out; the real run lifts only the topic's guard when
    opting in, and never touches unsubscribe-all."""
    status = check_bulk_action(action, topic)
    seen = changed = unsubscribed = opted_out = gone = 0
    for emails in batches:
        seen += len(emails)
        if action == "delete":
            results = store.delete_contacts(name, emails, dry_run=dry_run)
            changed += sum(r.outcome is Outcome.DELETED for r in results)
            continue
        if status is not None and topic is not None:  # both or neither: checked above
            patches = [
                ContactPatch(email=e, unsubscribe_all=False if dry_run else MISSING, topic_preferences={topic: status})
                for e in emails
            ]
            policy = UpsertPolicy(resubscribe=status == OPT_IN and not dry_run, existing_only=True)
        else:
            unsubscribe = action == "unsubscribe"
            patches = [ContactPatch(email=e, unsubscribe_all=unsubscribe) for e in emails]
            policy = UpsertPolicy(resubscribe=not unsubscribe, existing_only=True)
        results = store.upsert_contacts(name, patches, policy, dry_run=dry_run)  # deleted since: not created again
        changed += sum(r.outcome is Outcome.UPDATED or r.kept_opted_out for r in results)
        gone += sum(r.outcome is Outcome.NOT_FOUND for r in results)
        if status is not None:
            unsubscribed += sum(r.kept_unsubscribed for r in results)
            opted_out += sum(r.kept_opted_out for r in results)
    return MatchingStep(seen, changed, None, gone=gone, unsubscribed=unsubscribed, opted_out=opted_out)


def _bulk_action(value: object) -> BulkAction | None:
    return next((a for a in BULK_ACTIONS if a == value), None)


def _matching_description(view: ContactsView) -> str:
    return f"contacts matching {view.describe()}" if view.filtered else "all contacts"


async def bulk(request: Request) -> Response:
    return await bulk_form(request, await request.form())


async def bulk_form(request: Request, form: FormData) -> Response:
    """The bulk form's answer: its confirmation, or (``confirm=1``) the action done or its job started.

    A topic action first asks which topic when the form names none of the list's (the bulk bar's "Opt in to
    topic…" / "Opt out of topic…"), then confirms with the numbers for that topic."""
    view = dataclasses.replace(ContactsView.from_params(form), page="")
    action = _bulk_action(form.get("action"))
    if action is None:
        return redirect(view.url(), flash="Choose an action for the selected contacts.", request=request)
    everything = form.get("all") == "1"
    emails = [str(e) for e in form.getlist("email")][:100_000]
    if not everything and not emails:
        return redirect(view.url(), flash="Select at least one contact first.", request=request)
    store, name = services(request).store, list_name(request)
    contact_list = await in_thread(store.get_list, name)
    query = view.query(contact_list)
    confirmed = form.get("confirm") == "1"
    label, past, _doing = BULK_ACTIONS[action]
    page: dict[str, Any] = {
        "view": view,
        "action": action,
        "everything": everything,
        "emails": emails if not everything else [],
    }
    topic: Topic | None = None
    if action in TOPIC_ACTIONS:
        topic = contact_list.topic(str(form.get("bulk_topic") or ""))  # "topic" is the view's topic filter
        if topic is None:  # which topic: asked on a page of its own, with or without JavaScript
            return render(request, "bulk_confirm.html", label=label, topic=None, topics=contact_list.topics, **page)
        label, past = f"{label} {topic.display_name}", f"{past} {topic.display_name}"
    topic_name = topic.name if topic is not None else None
    if everything and confirmed:
        meta = {"view": view.url(page="")}
        if topic is not None:
            meta["topic_label"] = topic.display_name
        job = await in_thread(
            services(request).jobs.submit_action,
            name,
            query,
            action,
            topic=topic_name,
            description=_matching_description(view),
            meta=meta,
        )
        return redirect(f"/contacts/bulk/jobs/{job.id}", request=request)
    if everything:  # the confirmation's numbers: one count on the store (no contact read into Python)
        step = await in_thread(store.apply_to_matching, name, query, action, topic=topic_name, dry_run=True)
    else:
        step = await in_thread(
            apply_bulk, store, name, action, _batches(emails), dry_run=not confirmed, topic=topic_name
        )
    if confirmed:
        noun = "contact" if step.changed == 1 else "contacts"
        return redirect(view.url(), flash=f"{step.changed:,} {noun} {past}.", request=request)
    return render(
        request,
        "bulk_confirm.html",
        label=label,
        past=past,
        topic=topic,
        seen=step.matched,
        changed=step.changed,
        step=step,
        **page,
    )


# -- bulk action jobs ------------------------------------------------------------------------------------


def _action_job(request: Request) -> Any:
    """The bulk-action job the URL names (an import's id is not one: 404)."""
    job = services(request).jobs.get(request.path_params["job_id"])
    if job.kind != ACTION_KIND:
        raise NotFound(f"Job {job.id} is not a bulk action.")
    return job


async def bulk_job(request: Request) -> Response:
    """A bulk action's progress: the whole page, or (htmx polling every second) the progress block alone;
    without JavaScript the page refreshes itself while the job runs."""
    try:
        job = await in_thread(_action_job, request)
    except NotFound as exc:
        return render(request, "error.html", status_code=404, message=exc.message)
    progress = JobProgress.of(job)
    undo = await in_thread(undo_offered, services(request), job)
    if is_htmx(request) and request.headers.get("hx-target") == "job-progress":
        return render_partial(request, "bulk_job_progress", job, progress, BULK_ACTIONS, undo)
    return render(request, "bulk_job.html", job=job, progress=progress, actions=BULK_ACTIONS, undo_ready=undo)


async def _on_action_job(request: Request, step: Callable[[JobManager, str], object]) -> Response:
    """Run ``step`` on the bulk action job the URL names, then show its page."""
    try:
        job = await in_thread(_action_job, request)
    except NotFound as exc:
        return render(request, "error.html", status_code=404, message=exc.message)
    await in_thread(step, services(request).jobs, job.id)
    return redirect(f"/contacts/bulk/jobs/{job.id}", request=request)


async def bulk_job_cancel(request: Request) -> Response:
    """Stops after the batch in progress; what is done stays done (a bulk action is not rolled back)."""
    return await _on_action_job(request, JobManager.cancel)


async def bulk_job_resume(request: Request) -> Response:
    """Continues an interrupted, failed or cancelled job after the last contact it reached."""
    return await _on_action_job(request, JobManager.resume)


routes = [
    Route("/", contacts_page, methods=["GET"], name="contacts"),
    Route("/overview", overview, methods=["GET"], name="overview"),
    Route("/count", count, methods=["GET"], name="count"),
    Route("/contacts/bulk", bulk, methods=["POST"], name="contacts_bulk"),
    Route("/contacts/bulk/jobs/{job_id}", bulk_job, methods=["GET"], name="contacts_bulk_job"),
    Route("/contacts/bulk/jobs/{job_id}/cancel", bulk_job_cancel, methods=["POST"], name="contacts_bulk_cancel"),
    Route("/contacts/bulk/jobs/{job_id}/resume", bulk_job_resume, methods=["POST"], name="contacts_bulk_resume"),
]
