"""Undo a job from the console: the "Undo this import" / "Undo this action" button on a job's page, the page
that says what an undo does before it starts, and the undo job's page with its conflicts to resolve.

The engine is ``services.undo`` (:class:`~sescontacts.bulk.undo.Undo`); what it refuses (the job is still
running, was undone already, has an unfinished undo, left no recorded changes) is said on the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...bulk.job_records import ACTIVE_STATES
from ...bulk.undo import CONFLICT_POLICIES, UNDOABLE_KINDS, UndoPolicy
from ...bulk.undo_conflicts import Conflict
from ...errors import BadRequest, NotFound, SesContactsError
from ...history import Actor, AttributeDiff
from ...model import ContactList
from ...services import Services
from .activity import FieldChange, compare, contact_fields, job_url
from .common import in_thread, list_name, redirect, render, services, user
from .filters import PAGE_CHARS, PageStack

PAGE_SIZE = 50
MAX_RESOLVE = 500  # checked conflicts in one form (a page's worth)
BAD_PAGE = "This page link is not valid for this undo's conflicts. Start again from the first page."
WHAT = {"import": "import", "action": "action", "undo": "undo"}


@dataclass(frozen=True)
class UndoOffer:
    """What a job's page says about undoing it: the Undo button, or the undo that took it back already."""

    undone_by: str | None = None


def undo_offered(found: Services, job: Any) -> UndoOffer | None:
    """For a job that changed contacts and has ended (else None, nothing to say): offer its undo, or link the
    undo that took it back."""
    if job.kind not in UNDOABLE_KINDS or job.state in ACTIVE_STATES:
        return None
    return UndoOffer(found.undo.undone_by(job.id))


@dataclass(frozen=True)
class ConflictView:
    """One conflict as the page shows it: what is stored now, and what "restore" would make of it."""

    email: str
    later: Actor  # who changed it after the job
    later_at: float
    gone: bool  # deleted since the job
    removes: bool  # restoring removes it (the job created it)
    fields: list[FieldChange] = field(default_factory=list)
    attributes: list[AttributeDiff] | None = None
    raw: tuple[str | None, str | None] | None = None


def conflict_view(conflict: Conflict, topics: Mapping[str, str]) -> ConflictView:
    now, then = contact_fields(conflict.current), contact_fields(conflict.restore)
    if now and then:  # both exist: only the fields that differ
        differ = [name for name in now if now[name] != then[name]]
        now, then = {k: now[k] for k in differ}, {k: then[k] for k in differ}
    fields, diff, raw = compare(now, then, topics)
    return ConflictView(
        conflict.email,
        conflict.later_actor,
        conflict.later_at,
        conflict.current is None,
        conflict.restore is None,
        fields,
        diff,
        raw,
    )


def _confirm(found: Services, job_id: str, start: UndoPolicy | None, started_by: str) -> tuple[Any, Any, str | None]:
    """The confirmation's reads and its one write, in one thread hop: the job, and when ``start`` is a policy
    and the job can be undone, the undo started with it (or the engine's reason for refusing)."""
    job = found.jobs.get(job_id)
    if start is None or job.kind not in UNDOABLE_KINDS or job.state in ACTIVE_STATES:
        return job, None, None
    try:
        return job, found.undo.start(job.id, start, started_by), None
    except SesContactsError as exc:
        return job, None, exc.message


async def confirm(request: Request) -> Response:
    """The page that says what an undo does (GET, or the job page's button, a POST without ``confirm``), and
    with ``confirm=1`` starts it."""
    form = await request.form() if request.method == "POST" else None
    policy: UndoPolicy = "restore" if form is not None and form.get("policy") == "restore" else "keep"
    starting = form is not None and form.get("confirm") == "1"
    current = user(request)
    try:
        job, started, error = await in_thread(
            _confirm,
            services(request),
            request.path_params["job_id"],
            policy if starting else None,
            current.name if current else "",
        )
    except NotFound as exc:
        return render(request, "error.html", status_code=404, message=exc.message)
    if job.kind not in UNDOABLE_KINDS:
        return render(request, "error.html", status_code=400, message=f"Job {job.id} changed no contact to undo.")
    back = job_url(job.id, job.kind)
    if job.state in ACTIVE_STATES:
        return redirect(back, flash="The job is still running: cancel it or let it end, then undo it.", request=request)
    if started is not None:
        return redirect(f"/undo/jobs/{started.id}", flash="Undo started.", request=request)
    return render(
        request,
        "undo_confirm.html",
        status_code=400 if error else 200,
        job=job,
        what=WHAT.get(job.kind, "job"),
        back=back,
        policy=policy,
        policies=CONFLICT_POLICIES,
        error=error,
    )


@dataclass(frozen=True)
class ConflictsView:
    """The undo job's page and its page of conflicts, as the URL holds them."""

    job_id: str
    page: str = ""

    @property
    def stack(self) -> PageStack:
        return PageStack(self.page)

    def url(self, page: str | None = None) -> str:
        shown = self.page if page is None else page
        return f"/undo/jobs/{self.job_id}" + (f"?{urlencode({'page': shown})}" if shown else "")


@dataclass
class UndoPage:
    job: Any
    contact_list: ContactList
    conflicts: list[ConflictView] = field(default_factory=list)
    next_token: str | None = None
    error: str | None = None
    undo: UndoOffer | None = None  # this undo's own undo (a redo)


def _load(found: Services, name: str, job_id: str, stack: PageStack) -> UndoPage:
    """The undo job's page reads, in one thread hop: the job, the list's topics, a page of conflicts, whether
    it was undone itself."""
    job = found.jobs.get(job_id)
    contact_list = found.store.get_list(name)
    page = UndoPage(job, contact_list, undo=undo_offered(found, job))
    if stack.page and not stack.token:
        page.error = BAD_PAGE
        return page
    try:
        conflicts = found.undo.conflicts(job.id, page_size=PAGE_SIZE, token=stack.token or None)
    except BadRequest as exc:
        page.error = BAD_PAGE if exc.field == "NextToken" else exc.message
        return page
    topics = {t.name: t.display_name for t in contact_list.topics}
    page.conflicts = [conflict_view(c, topics) for c in conflicts.items]
    page.next_token = conflicts.next_token
    return page


async def undo_job_page(request: Request) -> Response:
    view = ConflictsView(request.path_params["job_id"], str(request.query_params.get("page", ""))[:PAGE_CHARS])
    found = services(request)
    try:
        page = await in_thread(_load, found, list_name(request), view.job_id, view.stack)
    except NotFound as exc:
        return render(request, "error.html", status_code=404, message=exc.message)
    return render(
        request,
        "undo_job.html",
        status_code=400 if page.error else 200,
        page=page,
        job=page.job,
        view=view,
        undo=page.undo,
    )


async def resolve(request: Request) -> Response:
    """ "Restore checked", "Restore all" or "Keep all" on the undo job's conflicts."""
    undo = services(request).undo
    job_id = request.path_params["job_id"]
    form = await request.form()
    choice = str(form.get("choice", ""))
    back = ConflictsView(job_id, str(form.get("page", ""))[:PAGE_CHARS]).url()
    action: Literal["restore", "keep"] = "keep" if choice == "keep-all" else "restore"
    emails: list[str] | None = None
    if choice == "restore":
        emails = [str(e) for e in form.getlist("email")][:MAX_RESOLVE]
        if not emails:
            return redirect(back, flash="Check at least one contact first.", request=request)
    elif choice not in ("restore-all", "keep-all"):
        return redirect(back, flash="Choose what to do with the conflicts.", request=request)
    try:
        done = await in_thread(undo.resolve, job_id, emails, action)
    except SesContactsError as exc:
        return redirect(back, flash=exc.message, request=request)
    noun = "contact" if done == 1 else "contacts"
    message = f"Restored {done:,} {noun}." if action == "restore" else f"Kept {done:,} {noun} as they are now."
    return redirect(f"/undo/jobs/{job_id}", flash=message, request=request)


async def _on_undo_job(request: Request, resume: bool) -> Response:
    """Cancel or resume the undo job (the engine's jobs are the job manager's, as imports are)."""
    jobs, job_id = services(request).jobs, request.path_params["job_id"]
    try:
        await in_thread(jobs.resume if resume else jobs.cancel, job_id)
    except NotFound as exc:
        return render(request, "error.html", status_code=404, message=exc.message)
    return redirect(f"/undo/jobs/{job_id}", request=request)


async def cancel(request: Request) -> Response:
    return await _on_undo_job(request, resume=False)


async def resume(request: Request) -> Response:
    return await _on_undo_job(request, resume=True)


routes = [
    Route("/jobs/{job_id}/undo", confirm, methods=["GET", "POST"], name="undo_confirm"),
    Route("/undo/jobs/{job_id}", undo_job_page, methods=["GET"], name="undo_job"),
    Route("/undo/jobs/{job_id}/resolve", resolve, methods=["POST"], name="undo_resolve"),
    Route("/undo/jobs/{job_id}/cancel", cancel, methods=["POST"], name="undo_cancel"),
    Route("/undo/jobs/{job_id}/resume", resume, methods=["POST"], name="undo_resume"),
]
