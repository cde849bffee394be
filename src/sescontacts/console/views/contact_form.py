"""Add, edit and delete one contact.

Editing is a three-way merge, because SES's UpdateContact replaces attributes and topic preferences as a
whole: the form carries what it showed (``original``), and only what the user changed is applied to what
is stored *now*. A key someone else added meanwhile (the SES API, an import) survives the edit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypedDict, cast

import orjson
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...errors import ListNotFound, NotFound, SesContactsError
from ...events.log import HistoryEntry
from ...history import Change
from ...model import OPT_IN, OPT_OUT, Contact, ContactList, attribute_text, nesting_exceeds
from ...services import Services
from ...store.base import ContactStore
from ...suppression import SuppressedDestination
from ...validation import MAX_ATTRIBUTES_DEPTH, TOO_DEEP, attributes_problem, email_problem
from .activity import TIMELINE_LIMIT, entries
from .common import FormErrors, in_thread, list_name, redirect, render, services

EMPTY_ROWS = 3


class OriginalState(TypedDict, total=False):
    """The edit form's hidden ``original`` field as ``from_contact`` writes it: unsubscribe-all, topic
    preferences, AttributesData text."""

    u: bool
    t: dict[str, str]
    a: str | None


@dataclass
class AttrRow:
    key: str
    value: str
    json: bool = False  # the value is JSON text (a number, list, object...), not a plain string


@dataclass
class ContactForm:
    """What the form shows and what it posted back."""

    email: str = ""
    unsubscribe_all: bool = False
    preferences: dict[str, str] = field(default_factory=dict)
    mode: str = "rows"  # "rows" or "json"
    rows: list[AttrRow] = field(default_factory=list)
    raw_json: str = ""
    original: str = ""  # JSON of the stored state the form was rendered from (edit only)

    @classmethod
    def from_contact(cls, contact: Contact) -> ContactForm:
        attributes = contact.attributes()
        form = cls(
            email=contact.email,
            unsubscribe_all=contact.unsubscribe_all,
            preferences=dict(contact.topic_preferences),
            raw_json=contact.attributes_data or "",
            original=orjson.dumps(
                {"u": contact.unsubscribe_all, "t": dict(contact.topic_preferences), "a": contact.attributes_data}
            ).decode(),
        )
        if contact.attributes_data and attributes is None:
            form.mode = "json"  # not an object (possible through the SES API): only raw editing can show it
        for key, value in (attributes or {}).items():
            form.rows.append(AttrRow(key, attribute_text(value), json=not isinstance(value, str)))
        if attributes is not None:
            form.raw_json = orjson.dumps(attributes, option=orjson.OPT_INDENT_2).decode()
        return form

    @classmethod
    def from_post(cls, data: FormData, contact_list: ContactList) -> ContactForm:
        keys = [str(k) for k in data.getlist("attr_key")]
        values = [str(v) for v in data.getlist("attr_value")]
        flags = [str(f) for f in data.getlist("attr_json")]
        rows = [
            AttrRow(k.strip(), v, json=(flags[i] == "1" if i < len(flags) else False))
            for i, (k, v) in enumerate(zip(keys, values, strict=False))
            if k.strip() or v.strip()  # the form's spare blank rows come back empty
        ]
        preferences = {}
        for topic in contact_list.topics:
            choice = str(data.get(f"topic:{topic.name}", ""))
            if choice in (OPT_IN, OPT_OUT):
                preferences[topic.name] = choice
        return cls(
            email=str(data.get("email", "")).strip(),
            unsubscribe_all=data.get("unsubscribe_all") == "1",
            preferences=preferences,
            mode="json" if data.get("attr_mode") == "json" else "rows",
            rows=rows,
            raw_json=str(data.get("attributes_json", "")),
            original=str(data.get("original", "")),
        )

    def original_state(self) -> OriginalState:
        """The stored state the edit form was rendered from (``u``, ``t``, ``a`` as ``from_contact`` wrote
        them), or {} when the hidden field is anything else: it comes back from the browser, and a hand-made
        value (a deep array, a number for a topic) must not reach the merge."""
        if not self.original or nesting_exceeds(self.original, 2):  # {"t": {...}}; "a" is a string
            return {}
        try:
            state = orjson.loads(self.original)
        except orjson.JSONDecodeError:
            return {}
        if not isinstance(state, dict):
            return {}
        topics, data = state.get("t", {}), state.get("a")
        if (
            not isinstance(state.get("u", False), bool)
            or not isinstance(topics, dict)
            or not all(isinstance(v, str) for v in topics.values())
            or not (data is None or isinstance(data, str))
        ):
            return {}
        return cast(OriginalState, state)  # the checks above are OriginalState's shape

    def original_attributes_data(self) -> str | None:
        """The AttributesData text the edit form was rendered from."""
        value = self.original_state().get("a")
        return value if isinstance(value, str) else None

    def display_rows(self) -> list[AttrRow]:
        return [*self.rows, *(AttrRow("", "") for _ in range(EMPTY_ROWS))]

    def attributes(self, errors: FormErrors) -> dict[str, object] | None:
        """The attributes the form asks for (None = no attributes), or an inline error."""
        if self.mode == "json":
            if not self.raw_json.strip():
                return None
            value, problem = attributes_problem(self.raw_json)
            if problem:
                errors.add("attributes", problem[0].upper() + problem[1:] + ".")
            return value
        result: dict[str, object] = {}
        for row in self.rows:
            if not row.key:
                if row.value.strip():
                    errors.add("attributes", f"The value “{row.value[:40]}” has no key.")
                continue
            if row.key in result:
                errors.add("attributes", f"The key “{row.key}” appears twice.")
            if row.json:
                if nesting_exceeds(row.value, MAX_ATTRIBUTES_DEPTH - 1):  # the row's value is one level down
                    errors.add("attributes", f"AttributesData is {TOO_DEEP}.")
                    continue
                try:
                    result[row.key] = orjson.loads(row.value)
                except orjson.JSONDecodeError:
                    result[row.key] = row.value
            else:
                result[row.key] = row.value
        return result or None


def _dump(attributes: dict[str, object] | None) -> str | None:
    return None if attributes is None else orjson.dumps(attributes).decode()


def merge(
    original: Mapping[str, object], edited: Mapping[str, object], current: Mapping[str, object]
) -> dict[str, object]:
    """Apply the form's changes (original → edited) to ``current``: removed keys go, changed keys win."""
    result = dict(current)
    for key in original:
        if key not in edited:
            result.pop(key, None)
    for key, value in edited.items():
        if key not in original or original[key] != value:
            result[key] = value
    return result


async def _load(request: Request) -> tuple[ContactList, Contact | None]:
    store, name = services(request).store, list_name(request)
    email = request.query_params.get("email")

    def load() -> tuple[ContactList, Contact | None]:
        contact_list = store.get_list(name)
        return contact_list, store.get_contact(name, email) if email else None

    return await in_thread(load)


async def new_contact(request: Request) -> Response:
    contact_list, _ = await _load(request)
    return render(request, "contact_form.html", form=ContactForm(), contact_list=contact_list, errors=FormErrors())


async def create_contact(request: Request) -> Response:
    store, name = services(request).store, list_name(request)
    contact_list = await in_thread(store.get_list, name)
    form = ContactForm.from_post(await request.form(), contact_list)
    errors = FormErrors()
    if not form.email:
        errors.add("email", "Enter an email address.")
    elif (problem := email_problem(form.email)) is not None:
        errors.add("email", f"That is not a usable address: {problem}.")
    attributes = form.attributes(errors)
    if not errors:
        contact = Contact(form.email, form.unsubscribe_all, form.preferences, _dump(attributes))
        try:
            await in_thread(store.create_contact, name, contact)
        except SesContactsError as exc:
            errors.add_error(exc)
    if errors:
        return render(
            request, "contact_form.html", status_code=400, form=form, contact_list=contact_list, errors=errors
        )
    return redirect("/", flash=f"Added {form.email}.", request=request)


@dataclass
class ContactPage:
    """What a contact's page reads, in one thread hop: the contact (None: not in the list, perhaps deleted),
    its deliverability and its history."""

    contact_list: ContactList
    contact: Contact | None
    suppressed: SuppressedDestination | None = None
    events: list[HistoryEntry] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    missing: str = ""  # the store's message when the contact is not in the list


def _load_page(found: Services, name: str, email: str) -> ContactPage:
    contact_list = found.store.get_list(name)
    changes = found.history.contact_history(name, email, limit=TIMELINE_LIMIT + 1)
    try:
        contact = found.store.get_contact(name, email)
    except ListNotFound:
        raise  # the list itself: the page that offers to create it (app.py)
    except NotFound as exc:
        return ContactPage(contact_list, None, changes=changes, missing=exc.message)
    suppressed = found.suppression.suppressed_among([contact.email])
    return ContactPage(
        contact_list, contact, next(iter(suppressed.values()), None), found.events.log.history(contact.email), changes
    )


async def edit_contact(request: Request) -> Response:
    """The contact's form, its bounces and complaints and its history; an address no longer in the list but
    with a history (deleted) shows that history."""
    email = request.query_params.get("email")
    if not email:
        return redirect("/")
    page = await in_thread(_load_page, services(request), list_name(request), email)
    timeline = entries(page.changes[:TIMELINE_LIMIT], page.contact_list)
    complete = len(page.changes) <= TIMELINE_LIMIT
    if page.contact is None:
        if not page.changes:
            return render(request, "error.html", status_code=404, message=page.missing)
        return render(
            request, "contact_deleted.html", email=page.changes[0].email, timeline=timeline, complete=complete
        )
    return render(
        request,
        "contact_form.html",
        form=ContactForm.from_contact(page.contact),
        contact_list=page.contact_list,
        errors=FormErrors(),
        editing=True,
        suppressed=page.suppressed,
        history=page.events,
        timeline=timeline,
        complete=complete,
    )


def _save_edit(
    store: ContactStore,
    name: str,
    form: ContactForm,
    attributes: dict[str, object] | None,
    *,
    keep_attributes: bool = False,
) -> Contact:
    """Read, merge the form's changes into what is stored now, write."""
    current = store.get_contact(name, form.email)
    original = form.original_state()
    unsubscribe_all = current.unsubscribe_all
    if form.unsubscribe_all != original.get("u", current.unsubscribe_all):
        unsubscribe_all = form.unsubscribe_all
    preferences = {
        k: str(v)
        for k, v in merge(original.get("t") or {}, dict(form.preferences), dict(current.topic_preferences)).items()
    }
    original_data = original.get("a")
    original_attributes = Contact("x", attributes_data=original_data).attributes() if original_data else {}
    current_attributes = current.attributes()
    if form.mode == "json" or original_attributes is None or (current.attributes_data and current_attributes is None):
        attributes_data = _dump(attributes)  # raw JSON replaces: what the user typed is the whole object
        if original_data == _dump(attributes) or (attributes is None and original_data is None):
            attributes_data = current.attributes_data
    else:
        merged = merge(original_attributes, attributes or {}, current_attributes or {})
        attributes_data = current.attributes_data if merged == (current_attributes or {}) else _dump(merged or None)
    if keep_attributes:
        attributes_data = current.attributes_data
    return store.update_contact(
        name, Contact(current.email, unsubscribe_all, preferences, attributes_data), merge_topic_preferences=False
    )


def _keep_attributes(store: ContactStore, name: str, form: ContactForm, _: dict[str, object] | None) -> Contact:
    """Save the other fields and leave the stored AttributesData exactly as it is now."""
    return _save_edit(store, name, form, None, keep_attributes=True)


async def update_contact(request: Request) -> Response:
    store, name = services(request).store, list_name(request)
    contact_list = await in_thread(store.get_list, name)
    form = ContactForm.from_post(await request.form(), contact_list)
    errors = FormErrors()
    save: Callable[[ContactStore, str, ContactForm, dict[str, object] | None], Contact]
    if form.mode == "json" and form.raw_json.strip() == (form.original_attributes_data() or "").strip():
        # Untouched raw text is kept as it is, even text the console would not write (not an object).
        save = _keep_attributes
    else:
        save = _save_edit
    attributes = None if save is _keep_attributes else form.attributes(errors)
    if not errors:
        try:
            await in_thread(save, store, name, form, attributes)
        except SesContactsError as exc:
            errors.add_error(exc)
    if errors:
        return render(
            request,
            "contact_form.html",
            status_code=400,
            form=form,
            contact_list=contact_list,
            errors=errors,
            editing=True,
        )
    return redirect("/", flash=f"Saved {form.email}.", request=request)


async def confirm_delete(request: Request) -> Response:
    try:
        _, contact = await _load(request)
    except ListNotFound:
        raise  # the list itself: the page that offers to create it (app.py)
    except NotFound as exc:
        return render(request, "error.html", status_code=404, message=exc.message)
    if contact is None:
        return redirect("/")
    return render(request, "contact_delete.html", contact=contact, back=request.query_params.get("back", "/"))


async def delete_contact(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email", ""))
    try:
        await in_thread(services(request).store.delete_contact, list_name(request), email)
    except NotFound:
        return redirect("/", flash=f"{email} was already gone.", request=request)
    return redirect("/", flash=f"Deleted {email}.", request=request)


routes = [
    Route("/contacts/new", new_contact, methods=["GET"], name="contact_new"),
    Route("/contacts/new", create_contact, methods=["POST"], name="contact_create"),
    Route("/contacts/edit", edit_contact, methods=["GET"], name="contact_edit"),
    Route("/contacts/edit", update_contact, methods=["POST"], name="contact_update"),
    Route("/contacts/delete", confirm_delete, methods=["GET"], name="contact_delete_confirm"),
    Route("/contacts/delete", delete_contact, methods=["POST"], name="contact_delete"),
]
