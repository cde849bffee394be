"""The contacts page's view state (search, filters, sort, page) as it appears in the URL.

One record parses the query string, builds the store's ``ContactQuery`` and writes the URL back, so a
view can be bookmarked and shared, and the export and bulk actions see exactly what the table shows. A
search is any number of conditions, AND-ed: repeated ``q``/``field`` pairs (``?q=ann&field=email&q=Company
%3D+ACM+Inc&field=attribute``), ``exact=1`` comparing attribute values exactly rather than case-insensitively.

The page is a stack of the store's keyset tokens, newest first and joined by ``.`` (``page=t3.t2``: the third page;
``t2`` is the second's, and the first page needs none), so "Previous page" is the same URL with its first token
dropped: no store change, every search path pages back on both backends, the tokens stay the store's signed,
opaque ones (a store token is base64url: never a ``.`` or ``~``), and Back, bookmarks, Export and "all N
matching" keep following the URL alone. The stack is kept under ``PAGE_CHARS``: the oldest tokens are dropped
and counted in a last ``~N`` segment (page numbers stay right; below the kept ones only "First page" is left).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode

from starlette.datastructures import ImmutableMultiDict

from ...model import OPT_IN, OPT_OUT, AttributeCondition, ContactList, ContactQuery, TopicFilter
from ...suppression import DELIVERY_FILTERS

SearchField = Literal["email", "prefix", "domain", "attribute"]
_SEARCH_FIELDS: dict[str, SearchField] = {
    "email": "email",
    "prefix": "prefix",
    "domain": "domain",
    "attribute": "attribute",
}
FIELD_LABELS: dict[SearchField, str] = {
    "email": "Email contains",
    "prefix": "Email starts with",
    "domain": "Domain is",
    "attribute": "Attribute (key = value, or key)",
}
_DESCRIBE: dict[SearchField, str] = {
    "email": "email contains",
    "prefix": "email starts with",
    "domain": "domain is",
    "attribute": "attribute",
}
PAGE_SIZES = (25, 50, 100, 200, 500)
DEFAULT_PAGE_SIZE = 50
MAX_CONDITIONS = 10  # search conditions in one view (each is a check per candidate row)
# The page stack's length in the URL: about 20 pages back with typical tokens (~90 characters each).
PAGE_CHARS = 2000
_DROPPED = "~"  # the last segment of a stack whose oldest tokens were dropped: ~N


# A query string or a submitted form: a search condition's parameters repeat (``q``/``field`` pairs).
Params = ImmutableMultiDict[str, Any]


@dataclass(frozen=True)
class Condition:
    """One row of the search: ``q`` searched in ``field``."""

    field: SearchField
    q: str


@dataclass(frozen=True)
class PageStack:
    """A ``page`` URL parameter: the store's keyset tokens, newest first (module docstring). Every paged
    console view (contacts, the suppression list) pages back and forth with it, whatever store it reads."""

    page: str = ""

    def _stack(self) -> tuple[list[str], int]:
        """The page's store tokens, newest first, and how many older ones were dropped."""
        tokens = self.page.split(".") if self.page else []
        last = tokens[-1] if len(tokens) > 1 else ""
        if last.startswith(_DROPPED) and last[1:].isdigit():
            return tokens[:-1], int(last[1:])
        return tokens, 0

    @property
    def token(self) -> str:
        """The store's token for this page: "" on the first page (and for a stack with an empty first token,
        which the page reports as not valid)."""
        return self._stack()[0][0] if self.page else ""

    @property
    def number(self) -> int:
        tokens, dropped = self._stack()
        return len(tokens) + dropped + 1

    @property
    def previous(self) -> str | None:
        """The ``page`` of the page before this one ("" for the first), None on the first page or below the
        tokens the stack kept."""
        tokens, dropped = self._stack()
        if not tokens or (len(tokens) == 1 and dropped):
            return None
        return ".".join(tokens[1:] + ([f"{_DROPPED}{dropped}"] if dropped else []))

    def next(self, token: str) -> str:
        """The ``page`` of the page after this one, whose store token is ``token``: this stack with it on top,
        the oldest tokens dropped (and counted) beyond ``PAGE_CHARS``."""
        tokens, dropped = self._stack()
        tokens = [token, *tokens]
        while len(tokens) > 1 and len(".".join(tokens)) + len(f".{_DROPPED}{dropped + 1}") > PAGE_CHARS:
            tokens.pop()
            dropped += 1
        return ".".join(tokens + ([f"{_DROPPED}{dropped}"] if dropped else []))


@dataclass(frozen=True)
class ContactsView:
    conditions: tuple[Condition, ...] = ()
    exact: bool = False  # attribute values compared exactly, not case-insensitively
    status: str = ""  # "", OPT_IN or OPT_OUT
    topic: str = ""
    delivery: str = ""  # "" or a key of DELIVERY_FILTERS: suppressed, bounced, complained
    sort: Literal["email", "updated"] = "email"
    page: str = ""
    size: int = DEFAULT_PAGE_SIZE
    # The form's rows when editing them ("Add condition"): the conditions and an empty one; not in the URL.
    form_rows: tuple[Condition, ...] = field(default=(), compare=False)
    field_labels: ClassVar[dict[SearchField, str]] = FIELD_LABELS
    max_conditions: ClassVar[int] = MAX_CONDITIONS
    page_sizes: ClassVar[tuple[int, ...]] = PAGE_SIZES
    delivery_filters: ClassVar[dict[str, str]] = DELIVERY_FILTERS

    @classmethod
    def from_params(cls, params: Params) -> ContactsView:
        """The view of a query string or form. Conditions are the ``q``/``field`` pairs in order (a ``q`` without
        its ``field`` searches addresses, as the single search box did); ``add`` and ``remove=N`` edit the rows
        (the form's buttons, which work without JavaScript). Empty conditions are dropped, and so is a second
        condition of an address kind the first one already sets (the form then shows what is applied)."""
        sort = params.get("sort", "email")
        status = params.get("status", "")
        delivery = str(params.get("delivery", ""))
        try:
            size = int(params.get("size", DEFAULT_PAGE_SIZE))
        except ValueError:
            size = DEFAULT_PAGE_SIZE
        fields = [str(f) for f in params.getlist("field")]
        rows = [
            Condition(_SEARCH_FIELDS.get(fields[i] if i < len(fields) else "email", "email"), str(q).strip()[:500])
            for i, q in enumerate(params.getlist("q"))
        ]
        removed = str(params.get("remove", ""))
        if removed.isdigit() and int(removed) < len(rows):
            del rows[int(removed)]
        conditions: list[Condition] = []
        for row in rows:
            duplicate = row.field != "attribute" and any(c.field == row.field for c in conditions)
            if row.q and not duplicate and len(conditions) < MAX_CONDITIONS:
                conditions.append(row)
        editing = params.get("add") is not None and len(conditions) < MAX_CONDITIONS
        return cls(
            conditions=tuple(conditions),
            exact=params.get("exact") == "1",
            status=status if status in (OPT_IN, OPT_OUT) else "",
            topic=str(params.get("topic", "")).strip()[:64],
            delivery=delivery if delivery in DELIVERY_FILTERS else "",
            sort="updated" if sort == "updated" else "email",
            page=str(params.get("page", ""))[:PAGE_CHARS],
            size=min(max(size, 1), 1000),
            form_rows=(*(conditions or [Condition("email", "")]), *([Condition("attribute", "")] if editing else [])),
        )

    @property
    def rows(self) -> tuple[Condition, ...]:
        """The filter form's condition rows (at least one, for the search box)."""
        return self.form_rows or self.conditions or (Condition("email", ""),)

    @property
    def q(self) -> str:
        """The first condition's text (the search box)."""
        return self.conditions[0].q if self.conditions else ""

    @property
    def field(self) -> SearchField:
        return self.conditions[0].field if self.conditions else "email"

    @property
    def token(self) -> str:
        return PageStack(self.page).token

    @property
    def page_number(self) -> int:
        return PageStack(self.page).number

    @property
    def previous_page(self) -> str | None:
        return PageStack(self.page).previous

    def next_page(self, token: str) -> str:
        return PageStack(self.page).next(token)

    def query(self, contact_list: ContactList | None = None) -> ContactQuery:
        """The store query: every condition AND-ed. A topic the list no longer has is dropped rather than
        failing the page."""
        topic = None
        if self.topic and (contact_list is None or contact_list.topic(self.topic) is not None):
            # use_default: a contact who never chose is counted the way SES would send to them.
            topic = TopicFilter(self.topic, use_default=True)
        address: dict[SearchField, str] = {}
        attributes: list[AttributeCondition] = []
        for condition in self.conditions:
            if condition.field != "attribute":
                address[condition.field] = condition.q.lstrip("@") if condition.field == "domain" else condition.q
                continue
            key, eq, value = condition.q.partition("=")
            if key.strip():
                attributes.append(AttributeCondition(key.strip(), value.strip() if eq else None, exact=self.exact))
        return ContactQuery(
            status=self.status or None,
            topic=topic,
            email_contains=address.get("email"),
            email_prefix=address.get("prefix"),
            domain=address.get("domain"),
            attributes=tuple(attributes),
            sort=self.sort,
            delivery=self.delivery or None,
        )

    @property
    def filtered(self) -> bool:
        return bool(self.conditions or self.status or self.topic or self.delivery)

    def pairs(self, **changes: object) -> list[tuple[str, str]]:
        """Query-string parameters of this view, in order (defaults left out so URLs stay short; a condition's
        ``field`` too while it is the only one and searches addresses)."""
        values: dict[str, object] = {
            "exact": "1" if self.exact and any(c.field == "attribute" for c in self.conditions) else "",
            "status": self.status,
            "topic": self.topic,
            "delivery": self.delivery,
            "sort": self.sort if self.sort != "email" else "",
            "size": self.size if self.size != DEFAULT_PAGE_SIZE else "",
            "page": self.page,
        }
        values.update(changes)
        single = len(self.conditions) == 1
        found: list[tuple[str, str]] = []
        for condition in self.conditions:
            found.append(("q", condition.q))
            if not (single and condition.field == "email"):
                found.append(("field", condition.field))
        return found + [(k, str(v)) for k, v in values.items() if v not in (None, "", False)]

    def url(self, path: str = "/", **changes: object) -> str:
        query = urlencode(self.pairs(**changes))
        return f"{path}?{query}" if query else path

    def describe(self) -> str:
        """The filter in words, for confirmations and the export's file name."""
        parts = [f"{_DESCRIBE[c.field]} “{c.q}”" for c in self.conditions]
        if self.exact and any(c.field == "attribute" for c in self.conditions):
            parts.append("attribute values exact")
        if self.topic:
            choice = {OPT_IN: "opted in", OPT_OUT: "opted out"}.get(self.status, "any status")
            parts.append(f"topic {self.topic} {choice}")
        elif self.status:
            parts.append("subscribed" if self.status == OPT_IN else "unsubscribed from all")
        if self.delivery:
            parts.append(DELIVERY_FILTERS[self.delivery].lower())
        return ", ".join(parts) or "all contacts"
