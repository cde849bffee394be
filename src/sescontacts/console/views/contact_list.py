"""The console's list gone from under it (``aws sesv2 delete-contact-list``): say so, and offer to create it.

Every page needs the configured list, so without it every page would be the same error, its "Back to
contacts" link leading back to it. Instead the error handler shows this page, whatever was asked for, with a
form that creates the list (its name is the configured one; topics optional, each opted out by default, since
a new topic opted in by default would reach people who never asked). Then every page works again.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...errors import AlreadyExists, ListNotFound, SesContactsError
from ...model import OPT_OUT, Topic
from .common import FormErrors, in_thread, is_htmx, list_name, redirect, render, services


def list_missing(request: Request, *, topics_text: str = "", errors: FormErrors | None = None) -> Response:
    """The page every console request gets while the list is missing (404; 400 with a refused create)."""
    if is_htmx(request) and request.method == "GET":
        # A fragment (the results, a count) must not become the whole page inside a table: reload instead.
        return Response(status_code=204, headers={"hx-refresh": "true"})
    return render(
        request,
        "list_missing.html",
        status_code=400 if errors else 404,
        topics_text=topics_text,
        errors=errors or FormErrors(),
    )


def parse_topics(text: str, errors: FormErrors) -> list[Topic]:
    """One topic a line: its name, then optionally a comma and the display name (the name again when none)."""
    topics = []
    for number, line in enumerate(text.splitlines(), start=1):
        name, _, display = (part.strip() for part in line.partition(","))
        if not name and not display:
            continue
        if not name:
            errors.add("topics", f"Line {number} has a display name but no topic name.")
            continue
        topics.append(Topic(name, display or name, OPT_OUT))
    return topics


def _create(request: Request, topics: list[Topic]) -> bool:
    """Create the configured list; False when it exists already (created meanwhile, in another tab)."""
    store, name = services(request).store, list_name(request)
    try:
        store.get_list(name)
        return False  # asked first: with a one-list quota, SES refuses a second list before naming the first
    except ListNotFound:
        pass
    try:
        store.create_list(name, topics=topics)
    except AlreadyExists:
        return False
    return True


async def create_list(request: Request) -> Response:
    topics_text = str((await request.form()).get("topics", ""))[:10_000]
    errors = FormErrors()
    topics = parse_topics(topics_text, errors)
    created = False
    if not errors:
        try:
            created = await in_thread(_create, request, topics)
        except SesContactsError as exc:
            errors.add("topics" if exc.field in ("TopicName", "Topics", "DisplayName") else "form", exc.message)
    if errors:
        return list_missing(request, topics_text=topics_text, errors=errors)
    name = list_name(request)
    message = f"Created the list {name}." if created else f"The list {name} exists already."
    return redirect("/", flash=message, request=request)


routes = [Route("/list/create", create_list, methods=["POST"], name="list_create")]
