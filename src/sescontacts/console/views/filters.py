"""The contacts page's view state (search, filters, sort, page) as it appears in the URL.

One record parses the query string, builds the store's ``ContactQuery`` and writes the URL back, so a
view can be bookmarked and shared, and the export and bulk actions see exactly what the table shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from ...model import OPT_IN, OPT_OUT, ContactList, ContactQuery, TopicFilter
from .common import url_with

SearchField = Literal["email", "domain", "attribute"]
_SEARCH_FIELDS: dict[str, SearchField] = {"email": "email", "domain": "domain", "attribute": "attribute"}
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class ContactsView:
    q: str = ""
    field: SearchField = "email"
    status: str = ""  # "", OPT_IN or OPT_OUT
    topic: str = ""
    sort: Literal["email", "updated"] = "email"
    page: str = ""
    size: int = DEFAULT_PAGE_SIZE

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> ContactsView:
        field = params.get("field", "email")
        sort = params.get("sort", "email")
        status = params.get("status", "")
        try:
            size = int(params.get("size", DEFAULT_PAGE_SIZE))
        except ValueError:
            size = DEFAULT_PAGE_SIZE
        return cls(
            q=params.get("q", "").strip()[:500],
            field=_SEARCH_FIELDS.get(field, "email"),
            status=status if status in (OPT_IN, OPT_OUT) else "",
            topic=params.get("topic", "").strip()[:64],
            sort="updated" if sort == "updated" else "email",
            page=params.get("page", "")[:2000],
            size=min(max(size, 1), 1000),
        )

    def query(self, contact_list: ContactList | None = None) -> ContactQuery:
        """The store query. A topic the list no longer has is dropped rather than failing the page."""
        topic = None
        if self.topic and (contact_list is None or contact_list.topic(self.topic) is not None):
            # use_default: a contact who never chose is counted the way SES would send to them.
            topic = TopicFilter(self.topic, use_default=True)
        query = ContactQuery(status=self.status or None, topic=topic, sort=self.sort)
        if not self.q:
            return query
        if self.field == "domain":
            return replace(query, domain=self.q.lstrip("@"))
        if self.field == "attribute":
            key, eq, value = self.q.partition("=")
            return replace(query, attribute_key=key.strip(), attribute_value=value.strip() if eq else None)
        return replace(query, email_contains=self.q)

    @property
    def filtered(self) -> bool:
        return bool(self.q or self.status or self.topic)

    def params(self, **changes: object) -> dict[str, object]:
        """Query-string parameters of this view (defaults left out so URLs stay short)."""
        values: dict[str, object] = {
            "q": self.q,
            "field": self.field if self.q and self.field != "email" else "",
            "status": self.status,
            "topic": self.topic,
            "sort": self.sort if self.sort != "email" else "",
            "size": self.size if self.size != DEFAULT_PAGE_SIZE else "",
            "page": self.page,
        }
        values.update(changes)
        return values

    def url(self, path: str = "/", **changes: object) -> str:
        return url_with(path, self.params(**changes))

    def describe(self) -> str:
        """The filter in words, for confirmations and the export's file name."""
        parts = []
        if self.q:
            label = {"email": "email contains", "domain": "domain is", "attribute": "attribute"}[self.field]
            parts.append(f"{label} “{self.q}”")
        if self.topic:
            choice = {OPT_IN: "opted in", OPT_OUT: "opted out"}.get(self.status, "any status")
            parts.append(f"topic {self.topic} {choice}")
        elif self.status:
            parts.append("subscribed" if self.status == OPT_IN else "unsubscribed from all")
        return ", ".join(parts) or "all contacts"
