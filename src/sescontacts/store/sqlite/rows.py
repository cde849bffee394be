"""A contact as a row of ``contacts`` and back: the column list, the JSON texts, the day a row counts for.

Shared by every module of the package that reads or writes contacts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import orjson

from ...model import Contact, ListedContact

# The columns :func:`contact_from_row` reads, in its order.
CONTACT_COLUMNS = "email, unsubscribe_all, topics, attributes, created, updated"


def contact_from_row(row: Sequence[Any]) -> Contact:
    """The contact in a row of :data:`CONTACT_COLUMNS` (SQLite's values, hence ``Any``)."""
    email, unsubscribe_all, topics, attributes, created, updated = row
    return Contact(
        email=str(email),
        unsubscribe_all=bool(unsubscribe_all),
        topic_preferences=orjson.loads(topics) if topics else {},
        attributes_data=attributes,
        created=float(created),
        updated=float(updated),
    )


# What :func:`listed_from_row` reads: ``updated`` kept sixth as in :data:`CONTACT_COLUMNS` (the page queries sort
# rows on it), the attributes (the bulk of a row) and the creation time not read.
LISTED_COLUMNS = "email, unsubscribe_all, topics, NULL, NULL, updated"
_NO_PREFERENCES: Mapping[str, str] = MappingProxyType({})


def listed_from_row(row: Sequence[Any]) -> ListedContact:
    """The ListContacts view of a row of :data:`LISTED_COLUMNS`."""
    topics = row[2]
    return ListedContact(row[0], bool(row[1]), orjson.loads(topics) if topics else _NO_PREFERENCES, row[5])


def topics_json(preferences: object) -> str | None:
    """The ``topics`` column for a contact's preferences: a JSON object, or NULL for none."""
    return orjson.dumps(preferences).decode() if preferences else None


def json_path(key: str) -> str:
    """The SQLite JSON path of one object member, quoted so that any key text addresses itself."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def day(timestamp: float) -> str:
    """The UTC day ``list_daily`` counts an addition at ``timestamp`` on."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")
