"""The Suppression page: the account's suppression list, the addresses SES will not deliver to.

It is the account's list (all contact lists of the account and region share it), so the page says so, and
removing an address asks first: SES put it there after a hard bounce or a complaint, and sending to it again
risks the account's bounce and complaint rates. Reads and writes go through ``services.suppression`` (on
the ses backend, SES itself, mirrored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...errors import BadRequest, NotFound, SesContactsError
from ...model import Page
from ...store.base import SuppressionList
from ...suppression import SUPPRESSION_REASONS, SuppressedDestination, SuppressionQuery
from ...validation import check_email
from .common import FormErrors, in_thread, redirect, render, services
from .filters import PAGE_CHARS, PageStack, Params

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
        form=form or {"email": "", "reason": "BOUNCE"},
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


def _entries(suppression: SuppressionList, emails: list[str]) -> list[SuppressedDestination]:
    found = suppression.suppressed_among(emails)
    return sorted(found.values(), key=lambda e: e.email.lower())


async def remove(request: Request) -> Response:
    """Asks first, naming each address and why it is there; removes once ``confirm=1`` comes back."""
    form = await request.form()
    emails = [str(e) for e in form.getlist("email")][:MAX_REMOVE]
    back = str(form.get("back", "")) or "/suppression"
    back = back if back.startswith("/") and not back.startswith("//") else "/suppression"
    if form.get("all") == "1":
        message = "Removing from the suppression list works on the checked contacts, not on all matching."
        return redirect(back, flash=message, request=request)
    suppression = services(request).suppression
    entries = await in_thread(_entries, suppression, emails)
    if not entries:
        return redirect(back, flash="None of those addresses is on the suppression list.", request=request)
    if form.get("confirm") != "1":
        return render(request, "suppression_remove.html", entries=entries, back=back)
    removed = 0
    for entry in entries:
        try:
            await in_thread(suppression.delete_suppressed, entry.email)
            removed += 1
        except NotFound:
            pass  # removed meanwhile (another tab, the API): what the user asked for
    noun = "address" if removed == 1 else "addresses"
    return redirect(back, flash=f"Removed {removed} {noun} from the suppression list.", request=request)


routes = [
    Route("/suppression", suppression_page, methods=["GET"], name="suppression"),
    Route("/suppression", add, methods=["POST"], name="suppression_add"),
    Route("/suppression/remove", remove, methods=["POST"], name="suppression_remove"),
]
