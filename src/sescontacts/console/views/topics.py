"""The list's topics: what contacts opt in to or out of, with SES's rules shown at the field.

SES's UpdateContactList replaces the whole topic set, so every change here is read, change one topic,
write all; the store validates (20 at most, the name pattern, lengths) and its messages land inline.
"""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...errors import SesContactsError
from ...model import OPT_IN, OPT_OUT, ContactList, ContactQuery, ListStats, Topic, TopicFilter
from ...store.base import ContactStore
from ...validation import MAX_TOPICS, check_topics
from .common import FormErrors, in_thread, list_name, redirect, render, services


def _load(request: Request) -> tuple[ContactList, ListStats]:
    store, name = services(request).store, list_name(request)
    return store.get_list(name), store.list_stats(name)


def _topic_from(form: dict[str, str]) -> Topic:
    status = form.get("default_status", OPT_OUT)
    description = form.get("description", "").strip()
    return Topic(
        name=form.get("name", "").strip(),
        display_name=form.get("display_name", "").strip(),
        default_status=status if status in (OPT_IN, OPT_OUT) else OPT_OUT,
        description=description or None,
    )


async def topics_page(request: Request, *, form: Topic | None = None, errors: FormErrors | None = None) -> Response:
    contact_list, stats = await in_thread(
        _load,
        request,
    )
    counts = {c.topic: c for c in stats.topics}
    editing = request.query_params.get("edit")
    return render(
        request,
        "topics.html",
        status_code=400 if errors else 200,
        contact_list=contact_list,
        counts=counts,
        stats=stats,
        form=form or Topic("", "", OPT_OUT),
        errors=errors or FormErrors(),
        editing=editing if editing and contact_list.topic(editing) else None,
        max_topics=MAX_TOPICS,
    )


def opted_in_by_default(store: ContactStore, name: str, topic: Topic, before: Topic | None) -> int:
    """How many contacts saving ``topic`` (``before``: as it is now, None for a new one) opts in without their
    asking: 0 unless the default becomes OPT_IN. They are the contacts with no choice of their own for it
    (everyone, for a new topic), less those unsubscribed from all, whom SES never sends to."""
    if topic.default_status != OPT_IN or (before is not None and before.default_status == OPT_IN):
        return 0
    total = store.count_contacts(name, ContactQuery()).value
    if before is None:
        return total - store.count_contacts(name, ContactQuery(status=OPT_OUT)).value
    # Without the default, a contact's status is its own choice, or OPT_OUT when unsubscribed from all; the
    # rest have none, and the new default is what they get.
    return total - store.count_contacts(name, ContactQuery(topic=TopicFilter(before.name, use_default=False))).value


def _save(request: Request, topic: Topic, original: str | None, errors: FormErrors, *, confirmed: bool) -> int:
    """Save, or (a new OPT_IN default, not yet confirmed) return how many contacts it would opt in and save
    nothing; 0 once saved or refused with ``errors``."""
    store, name = services(request).store, list_name(request)
    current = store.get_list(name)
    if not topic.display_name:
        errors.add("display_name", "Enter a display name: it is what subscribers see on the preferences page.")
    if original:
        if current.topic(original) is None:
            errors.add("form", f"The topic {original} no longer exists.")
            return 0
        topics = [topic if t.name == original else t for t in current.topics]
    else:
        if current.topic(topic.name) is not None:
            errors.add("name", f"A topic named {topic.name} already exists.")
        if len(current.topics) >= MAX_TOPICS:
            errors.add("name", f"A list can have at most {MAX_TOPICS} topics. Delete one first.")
        topics = [*current.topics, topic]
    if errors:
        return 0
    try:
        check_topics(topics)  # SES's rules first: a name it refuses needs no confirmation
    except SesContactsError as exc:
        errors.add_error(exc)
        return 0
    if not confirmed and (affected := opted_in_by_default(store, name, topic, current.topic(original or ""))):
        return affected
    try:
        store.update_list(name, topics=topics)
    except SesContactsError as exc:
        errors.add_error(exc)
    return 0


async def save_topic(request: Request) -> Response:
    data = {k: str(v) for k, v in (await request.form()).items()}
    original = data.get("original") or None
    topic = _topic_from(data)
    if original:
        topic = replace(topic, name=original)  # SES has no rename: a new name would drop every preference
    errors = FormErrors()
    confirmed = data.get("confirm_opt_in") == "1"
    affected = await in_thread(_save, request, topic, original, errors, confirmed=confirmed)
    if affected:  # a consent change: say how many it opts in, and save only once the user confirms
        return render(request, "topic_confirm.html", topic=topic, original=original, affected=affected)
    if errors:
        if original:
            request.scope["query_string"] = f"edit={original}".encode()
        return await topics_page(request, form=topic, errors=errors)
    verb = "Saved" if original else "Added"
    return redirect("/topics", flash=f"{verb} topic {topic.name}.", request=request)


async def confirm_delete(request: Request) -> Response:
    name = request.query_params.get("name", "")
    contact_list, stats = await in_thread(_load, request)
    topic = contact_list.topic(name)
    if topic is None:
        return redirect("/topics")
    counts = {c.topic: c for c in stats.topics}.get(name)
    return render(request, "topic_delete.html", topic=topic, counts=counts)


def _delete(request: Request, topic_name: str) -> bool:
    store, name = services(request).store, list_name(request)
    current = store.get_list(name)
    if current.topic(topic_name) is None:
        return False
    store.update_list(name, topics=[t for t in current.topics if t.name != topic_name])
    return True


async def delete_topic(request: Request) -> Response:
    topic_name = str((await request.form()).get("name", ""))
    deleted = await in_thread(_delete, request, topic_name)
    message = f"Deleted topic {topic_name}." if deleted else f"The topic {topic_name} was already gone."
    return redirect("/topics", flash=message, request=request)


async def topics_get(request: Request) -> Response:
    return await topics_page(request)


routes = [
    Route("/topics", topics_get, methods=["GET"], name="topics"),
    Route("/topics", save_topic, methods=["POST"], name="topic_save"),
    Route("/topics/delete", confirm_delete, methods=["GET"], name="topic_delete_confirm"),
    Route("/topics/delete", delete_topic, methods=["POST"], name="topic_delete"),
]
