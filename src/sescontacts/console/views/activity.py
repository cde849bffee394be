"""The contact history in the console: a contact's timeline (shown by ``contact_form.py``) and the list's
Activity page, with filters (who, what, when, job, address) in the URL and paging by the contacts page's
:class:`~.filters.PageStack`.

A recorded change holds fields by name (:class:`~sescontacts.history.Change`); :func:`entries` turns them into
what a person reads: "Unsubscribed from all: no → yes", a topic's choice before and after, attributes key by key
(:func:`~sescontacts.history.attribute_diff`; both texts whole when either is not a JSON object).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...errors import BadRequest, NotFound
from ...history import (
    ACTOR_KINDS,
    ATTRIBUTES,
    CHANGE_OPS,
    TOPIC_PREFERENCES,
    UNSUBSCRIBE_ALL,
    AttributeDiff,
    Change,
    ChangeQuery,
    attribute_diff,
)
from ...model import OPT_IN, OPT_OUT, Contact, ContactList
from ...services import Services
from .common import in_thread, list_name, redirect, render, services
from .filters import PAGE_CHARS, PageStack, Params

PAGE_SIZE = 50
TIMELINE_LIMIT = 100  # a contact page's timeline; older changes are on the Activity page
BAD_PAGE = "This page link is not valid for these filters. Start again from the first page."
ACTOR_LABELS: dict[str, str] = {
    "console": "Console user",
    "api": "SES API key",
    "job": "Job (import or bulk action)",
    "sync": "SES (sync)",
    "event": "Bounce or complaint",
    "cli": "Command line",
    "system": "System",
}
OP_LABELS: dict[str, str] = {"created": "Created", "updated": "Updated", "deleted": "Deleted"}
_CHOICES = {OPT_IN: "opted in", OPT_OUT: "opted out"}


# -- a change as a person reads it ----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One field before and after, as text (None: not set)."""

    label: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Entry:
    change: Change
    fields: list[FieldChange] = field(default_factory=list)
    # attributes key by key, or (when a side is not a JSON object) both texts whole
    attributes: list[AttributeDiff] | None = None
    raw_attributes: tuple[str | None, str | None] | None = None


def _topic_label(name: str, topics: Mapping[str, str]) -> str:
    shown = topics.get(name)
    return f"Topic {shown} ({name})" if shown and shown != name else f"Topic {name}"


def _yes_no(side: Mapping[str, object]) -> str | None:
    return None if UNSUBSCRIBE_ALL not in side else ("yes" if side[UNSUBSCRIBE_ALL] else "no")


def _topics(side: Mapping[str, object]) -> Mapping[str, object]:
    value = side.get(TOPIC_PREFERENCES)
    return value if isinstance(value, Mapping) else {}


def _choice(side: Mapping[str, object], topic: str) -> str | None:
    """A topic's choice on one side of a change: None when the side has no topic preferences at all."""
    if TOPIC_PREFERENCES not in side:
        return None
    value = _topics(side).get(topic)
    return _CHOICES.get(str(value), str(value)) if value else "topic default"


def compare(
    before: Mapping[str, object], after: Mapping[str, object], topics: Mapping[str, str]
) -> tuple[list[FieldChange], list[AttributeDiff] | None, tuple[str | None, str | None] | None]:
    """The differences of two sides of a change (fields by name, as :class:`Change` holds them): unsubscribe-all,
    each topic whose choice differs, attributes key by key (or both texts whole)."""
    fields: list[FieldChange] = []
    if UNSUBSCRIBE_ALL in before or UNSUBSCRIBE_ALL in after:
        fields.append(FieldChange("Unsubscribed from all", _yes_no(before), _yes_no(after)))
    for name in sorted(_topics(before).keys() | _topics(after).keys()):
        was, now = _choice(before, name), _choice(after, name)
        if was != now:
            fields.append(FieldChange(_topic_label(name, topics), was, now))
    diff: list[AttributeDiff] | None = None
    raw: tuple[str | None, str | None] | None = None
    if ATTRIBUTES in before or ATTRIBUTES in after:
        old_text, new_text = before.get(ATTRIBUTES), after.get(ATTRIBUTES)
        old_text = old_text if isinstance(old_text, str) else None
        new_text = new_text if isinstance(new_text, str) else None
        diff = attribute_diff(old_text, new_text)
        if diff is None:
            raw = (old_text, new_text)
    return fields, diff, raw


def entry(change: Change, topics: Mapping[str, str]) -> Entry:
    """A creation shows nothing more (the contact as created is its state until the next change); an update
    what changed; a deletion what the contact had."""
    fields, diff, raw = compare(change.before, change.after, topics)
    return Entry(change, fields, diff, raw)


def entries(changes: Sequence[Change], contact_list: ContactList | None) -> list[Entry]:
    topics = {t.name: t.display_name for t in contact_list.topics} if contact_list else {}
    return [entry(change, topics) for change in changes]


def contact_fields(contact: Contact | None) -> dict[str, object]:
    """A contact as the fields a change records (what an undo conflict compares)."""
    if contact is None:
        return {}
    return {
        UNSUBSCRIBE_ALL: contact.unsubscribe_all,
        TOPIC_PREFERENCES: dict(contact.topic_preferences),
        ATTRIBUTES: contact.attributes_data,
    }


# -- the Activity page ------------------------------------------------------------------------------------


def _day(text: str, name: str, problems: list[str]) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        problems.append(f"“{text[:40]}” is not a date for “{name}”: write it as YYYY-MM-DD, e.g. 2026-01-31.")
        return None


@dataclass(frozen=True)
class ActivityView:
    """The Activity page's filters and page, as the URL holds them (a GET form: bookmarkable)."""

    who: str = ""  # an actor kind, or "" for anyone
    name: str = ""
    ops: tuple[str, ...] = ()
    since: str = ""
    until: str = ""
    job: str = ""
    email: str = ""
    page: str = ""
    problems: tuple[str, ...] = ()
    actor_labels: ClassVar[Mapping[str, str]] = ACTOR_LABELS
    op_labels: ClassVar[Mapping[str, str]] = OP_LABELS

    @classmethod
    def from_params(cls, params: Params) -> ActivityView:
        problems: list[str] = []
        who = str(params.get("who", "")).strip()
        if who and who not in ACTOR_KINDS:
            problems.append(f"“{who[:40]}” is not a kind of actor: choose one of {', '.join(ACTOR_KINDS)}.")
        ops = tuple(dict.fromkeys(str(op) for op in params.getlist("what") if op))
        for op in ops:
            if op not in CHANGE_OPS:
                problems.append(f"“{op[:40]}” is not a kind of change: choose created, updated or deleted.")
        since, until = str(params.get("since", "")).strip()[:40], str(params.get("until", "")).strip()[:40]
        first, last = _day(since, "from", problems), _day(until, "until", problems)
        if first and last and first > last:
            problems.append(f"“From” ({since}) is after “until” ({until}): no change can match.")
        return cls(
            who=who[:40],
            name=str(params.get("name", "")).strip()[:200],
            ops=tuple(op[:40] for op in ops),
            since=since,
            until=until,
            job=str(params.get("job", "")).strip()[:200],
            email=str(params.get("email", "")).strip()[:320],
            page=str(params.get("page", ""))[:PAGE_CHARS],
            problems=tuple(problems),
        )

    @property
    def stack(self) -> PageStack:
        return PageStack(self.page)

    @property
    def filtered(self) -> bool:
        return bool(self.who or self.name or self.ops or self.since or self.until or self.job or self.email)

    def query(self) -> ChangeQuery:
        """The store's query (only when :attr:`problems` is empty). ``until`` is a whole day, included."""
        since = dt.datetime.combine(dt.date.fromisoformat(self.since), dt.time(), dt.UTC) if self.since else None
        until = dt.datetime.combine(dt.date.fromisoformat(self.until), dt.time(), dt.UTC) if self.until else None
        return ChangeQuery(
            actor_kind=self.who if self.who in ACTOR_KINDS else None,
            actor_name=self.name or None,
            job=self.job or None,
            ops=tuple(op for op in CHANGE_OPS if op in self.ops),
            since=since.timestamp() if since else None,
            until=(until + dt.timedelta(days=1)).timestamp() if until else None,
            email=self.email or None,
        )

    def url(self, **changes: str) -> str:
        values: list[tuple[str, str]] = [
            ("who", self.who),
            ("name", self.name),
            *(("what", op) for op in self.ops),
            ("since", self.since),
            ("until", self.until),
            ("job", self.job),
            ("email", self.email),
            ("page", self.page),
        ]
        pairs = [(k, changes.get(k, v)) for k, v in values if k not in changes] + list(changes.items())
        query = urlencode([(k, v) for k, v in pairs if v])
        return f"/activity?{query}" if query else "/activity"


@dataclass
class ActivityData:
    entries: list[Entry] = field(default_factory=list)
    next_token: str | None = None
    error: str | None = None


def load_activity(found: Services, name: str, view: ActivityView) -> ActivityData:
    """The page's reads, in one thread hop: the list (for its topics' names) and one page of changes."""
    if view.problems:
        return ActivityData(error=" ".join(view.problems))
    if view.page and not view.stack.token:
        return ActivityData(error=BAD_PAGE)
    contact_list = found.store.get_list(name)
    try:
        page = found.history.changes(name, view.query(), page_size=PAGE_SIZE, token=view.stack.token or None)
    except BadRequest as exc:
        return ActivityData(error=BAD_PAGE if exc.field == "NextToken" else exc.message)
    return ActivityData(entries(page.items, contact_list), page.next_token)


async def activity_page(request: Request) -> Response:
    view = ActivityView.from_params(request.query_params)
    data = await in_thread(load_activity, services(request), list_name(request), view)
    return render(
        request,
        "activity.html",
        status_code=400 if data.error else 200,
        view=view,
        data=data,
        page_size=PAGE_SIZE,
    )


# -- a job's page, whatever its kind ---------------------------------------------------------------------


def job_url(job_id: str, kind: str) -> str:
    """The page of a job of ``kind``: imports (of contacts or of suppressed addresses), bulk actions, undos."""
    if kind in ("import", "suppression"):
        return f"/import/jobs/{job_id}"
    if kind == "action":
        return f"/contacts/bulk/jobs/{job_id}"
    return f"/undo/jobs/{job_id}"


async def job_page(request: Request) -> Response:
    """``/jobs/ID``, where the history links a job's changes: its own page, found by its kind."""
    job_id = request.path_params["job_id"]
    try:
        job = await in_thread(services(request).jobs.get, job_id)
    except NotFound:
        return render(request, "error.html", status_code=404, message=f"There is no job {job_id} any more.")
    return redirect(job_url(job.id, job.kind))


routes = [
    Route("/activity", activity_page, methods=["GET"], name="activity"),
    Route("/jobs/{job_id}", job_page, methods=["GET"], name="job"),
]
