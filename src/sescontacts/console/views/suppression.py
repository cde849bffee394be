"""The Suppression page: the account's suppression list, the addresses SES will not deliver to.

It is the account's list (all contact lists of the account and region share it), so the page says so, and
removing an address asks first: SES put it there after a hard bounce or a complaint, and sending to it again
risks the account's bounce and complaint rates. Reads and writes go through ``services.suppression`` (on
the ses backend, SES itself, mirrored).
"""

from __future__ import annotations

import csv
import dataclasses
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...bulk.report import ImportOptions
from ...bulk.suppression_import import SUPPRESSION_KIND, SUPPRESSION_LIST
from ...errors import BadRequest, NotFound, SesContactsError
from ...model import Page
from ...services import Services
from ...store.base import SuppressionList
from ...suppression import SUPPRESSION_REASONS, SuppressedDestination, SuppressionQuery
from ...validation import check_email
from .common import FormErrors, in_thread, redirect, render, services
from .filters import PAGE_CHARS, ContactsView, PageStack, Params

PAGE_SIZE = 50
MAX_REMOVE = 500  # addresses in one removal (the checked rows of a page)
BAD_PAGE = "This page link is not valid for this search. Start again from the first page."


@dataclass(frozen=True)
class SuppressionView:
    """The page's search (``q``: part of the address; ``reason``) and page stack, as the URL holds them."""

    q: str = ""
    reason: str = ""
    page: str = ""
    reasons: tuple[str, ...] = SUPPRESSION_REASONS

    @classmethod
    def from_params(cls, params: Params) -> SuppressionView:
        reason = str(params.get("reason", ""))
        return cls(
            q=str(params.get("q", "")).strip()[:200],
            reason=reason if reason in SUPPRESSION_REASONS else "",
            page=str(params.get("page", ""))[:PAGE_CHARS],
        )

    @property
    def stack(self) -> PageStack:
        return PageStack(self.page)

    def query(self) -> SuppressionQuery:
        return SuppressionQuery(reasons=(self.reason,) if self.reason else (), email_contains=self.q or None)

    def url(self, **changes: str) -> str:
        values = {"q": self.q, "reason": self.reason, "page": self.page, **changes}
        query = urlencode({k: v for k, v in values.items() if v})
        return f"/suppression?{query}" if query else "/suppression"


@dataclass
class SuppressionData:
    entries: list[SuppressedDestination] = field(default_factory=list)
    next_token: str | None = None
    matching: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    account_reasons: tuple[str, ...] = ()
    error: str | None = None


def load(suppression: SuppressionList, view: SuppressionView) -> SuppressionData:
    data = SuppressionData(
        by_reason={r: suppression.count_suppressed(SuppressionQuery(reasons=(r,))) for r in SUPPRESSION_REASONS},
        account_reasons=suppression.suppressed_reasons(),
    )
    if view.page and not view.stack.token:
        data.error = BAD_PAGE
        return data
    try:
        page: Page[SuppressedDestination] = suppression.list_suppressed(
            view.query(), page_size=PAGE_SIZE, token=view.stack.token or None
        )
    except BadRequest as exc:
        data.error = BAD_PAGE if exc.field == "NextToken" else exc.message
        return data
    data.entries, data.next_token = page.items, page.next_token
    if not view.page and page.next_token is None:
        data.matching = len(page.items)  # the whole result is on this page: no second scan to count it
    elif view.q or view.reason:
        data.matching = suppression.count_suppressed(view.query())
    else:
        data.matching = sum(data.by_reason.values())
    return data


async def suppression_page(
    request: Request, *, errors: FormErrors | None = None, form: dict[str, str] | None = None
) -> Response:
    view = SuppressionView.from_params(request.query_params)
    data = await in_thread(load, services(request).suppression, view)
    return render(
        request,
        "suppression.html",
        status_code=400 if errors else 200,
        view=view,
        data=data,
        errors=errors or FormErrors(),
        form={"email": "", "reason": "BOUNCE", **(form or {})},
        page_size=PAGE_SIZE,
    )


async def add(request: Request) -> Response:
    form = {k: str(v).strip() for k, v in (await request.form()).items() if k in ("email", "reason")}
    errors = FormErrors()
    try:
        email = check_email(form.get("email", ""))
        await in_thread(services(request).suppression.put_suppressed, email, form.get("reason", ""))
    except SesContactsError as exc:
        errors.add("email" if exc.field == "EmailAddress" else "reason", exc.message)
        return await suppression_page(request, errors=errors, form=form)
    return redirect("/suppression", flash=f"Added {email} to the suppression list.", request=request)


def _delete(suppression: SuppressionList, entries: list[SuppressedDestination]) -> int:
    """Remove the entries (in one thread hop); how many were still there."""
    removed = 0
    for entry in entries:
        try:
            suppression.delete_suppressed(entry.email)
            removed += 1
        except NotFound:
            pass  # removed meanwhile (another tab, the API): what the user asked for
    return removed


def _entries(suppression: SuppressionList, emails: list[str]) -> list[SuppressedDestination]:
    found = suppression.suppressed_among(emails)
    return sorted(found.values(), key=lambda e: e.email.lower())


def _suppressed_view(view: ContactsView) -> ContactsView:
    """The contacts view narrowed to its suppressed contacts (what "all N matching" removes)."""
    return dataclasses.replace(view, delivery="suppressed", page="")


def _write_addresses(found: Services, view: ContactsView) -> tuple[Path, int]:
    """A suppression-list DELETE file (one address a line, SES's import format) of the view's suppressed
    contacts, written page by page in the jobs folder; its path and how many lines."""
    store, name = found.store, found.settings.contact_list
    query = _suppressed_view(view).query(store.get_list(name))
    found.jobs.jobs_dir.mkdir(parents=True, exist_ok=True)
    path = found.jobs.jobs_dir / f"{uuid.uuid4()}.suppression-removal.csv"
    lines, token = 0, None
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)  # quoted as the suppression import's csv reader reads it back
        while True:
            page = store.list_contact_items(name, query, page_size=1000, token=token)
            for item in page.items:
                writer.writerow([item.email])
                lines += 1
            token = page.next_token
            if token is None:
                return path, lines


async def _remove_all_matching(request: Request, form: FormData, back: str) -> Response:
    """ "All N matching" on the contacts page: how many of them are suppressed, a warning, then a suppression-list
    DELETE job (progress, cancel, resume after a kill: the import-job engine) over exactly those addresses."""
    found = services(request)
    view = ContactsView.from_params(form)
    narrowed = _suppressed_view(view)
    name = found.settings.contact_list
    count = await in_thread(lambda: found.store.count_contacts(name, narrowed.query(found.store.get_list(name))))
    if not count.value:
        return redirect(back, flash="None of the matching contacts is on the suppression list.", request=request)
    if form.get("confirm") != "1":
        return render(request, "suppression_remove.html", entries=[], everything=count, view=view, back=back)
    path, lines = await in_thread(_write_addresses, found, view)
    options = ImportOptions(SUPPRESSION_LIST, action="delete", format="csv")
    meta = {"source": "console", "matching": view.describe(), "addresses": lines}
    file_name = f"suppressed contacts matching {view.describe()}"
    job = await in_thread(found.jobs.submit, path, options, file_name=file_name, meta=meta, kind=SUPPRESSION_KIND)
    return redirect(f"/import/jobs/{job.id}", request=request)


async def remove(request: Request) -> Response:
    return await remove_form(request, await request.form())


async def remove_form(request: Request, form: FormData) -> Response:
    """Asks first, naming each address and why it is there; removes once ``confirm=1`` comes back. From the
    contacts page with "All N matching" ticked: the view's suppressed contacts, as a job."""
    emails = [str(e) for e in form.getlist("email")][:MAX_REMOVE]
    back = str(form.get("back", "")) or "/suppression"
    back = back if back.startswith("/") and not back.startswith("//") else "/suppression"
    if form.get("all") == "1":
        return await _remove_all_matching(request, form, back)
    suppression = services(request).suppression
    entries = await in_thread(_entries, suppression, emails)
    if not entries:
        return redirect(back, flash="None of those addresses is on the suppression list.", request=request)
    if form.get("confirm") != "1":
        return render(request, "suppression_remove.html", entries=entries, back=back)
    removed = await in_thread(_delete, suppression, entries)
    noun = "address" if removed == 1 else "addresses"
    return redirect(back, flash=f"Removed {removed} {noun} from the suppression list.", request=request)


routes = [
    Route("/suppression", suppression_page, methods=["GET"], name="suppression"),
    Route("/suppression", add, methods=["POST"], name="suppression_add"),
    Route("/suppression/remove", remove, methods=["POST"], name="suppression_remove"),
]
