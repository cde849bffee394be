"""SES v2's JSON and our model, both ways: the one module that spells SES's field names.

Three places speak SES: the SES API we serve (:mod:`sescontacts.sesapi`), the ses backend's boto3 client
(:mod:`sescontacts.store.ses`), and the import files SES's import jobs read (written by an export and by the
ses backend's import-job path). Each maps a contact, a list and its topics through here, so a field is
named, ordered and defaulted once.

Two kinds of time, named apart:

- :func:`to_ses_time`: our epoch seconds as SES sends them in its JSON (a number, to the millisecond).
- :func:`from_ses_time`: what a client reads back (botocore parses SES's number, and moto's ISO text, into a
  ``datetime``) as our epoch seconds, rounded the same way so a value listed and the same value mirrored
  compare equal.

Only the model sits below this module: it imports nothing else of ours and nothing of boto3.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import orjson

from .model import OPT_OUT, Contact, ContactList, ListedContact, Topic

# -- SES's API (PascalCase) --------------------------------------------------------------------------------
LIST_NAME: Final = "ContactListName"
EMAIL_ADDRESS: Final = "EmailAddress"
TOPIC_PREFERENCES: Final = "TopicPreferences"
TOPIC_DEFAULT_PREFERENCES: Final = "TopicDefaultPreferences"
UNSUBSCRIBE_ALL: Final = "UnsubscribeAll"
ATTRIBUTES_DATA: Final = "AttributesData"
CREATED: Final = "CreatedTimestamp"
LAST_UPDATED: Final = "LastUpdatedTimestamp"
TOPICS: Final = "Topics"
TOPIC_NAME: Final = "TopicName"
DISPLAY_NAME: Final = "DisplayName"
DESCRIPTION: Final = "Description"
DEFAULT_STATUS: Final = "DefaultSubscriptionStatus"
SUBSCRIPTION_STATUS: Final = "SubscriptionStatus"
TAGS: Final = "Tags"
TAG_KEY: Final = "Key"
TAG_VALUE: Final = "Value"

# -- SES's import files (camelCase, one JSON object a line) -------------------------------------------------
LINE_EMAIL: Final = "emailAddress"
LINE_UNSUBSCRIBE_ALL: Final = "unsubscribeAll"
LINE_ATTRIBUTES: Final = "attributesData"
LINE_TOPIC_PREFERENCES: Final = "topicPreferences"
LINE_TOPIC_NAME: Final = "topicName"
LINE_SUBSCRIPTION_STATUS: Final = "subscriptionStatus"

SesDict = dict[str, Any]


# -- time ------------------------------------------------------------------------------------------------


def to_ses_time(seconds: float) -> float:
    """Our epoch seconds as SES's JSON carries them: a number, to the millisecond."""
    return round(seconds, 3)


def from_ses_time(value: object) -> float:
    """A time a client read from SES (a ``datetime`` from botocore, a number, or nothing) as epoch seconds to
    the millisecond; 0.0 when SES left it out (ListContacts has no CreatedTimestamp)."""
    if value is None:
        return 0.0
    if isinstance(value, dt.datetime):
        return round(value.timestamp(), 3)
    if isinstance(value, int | float | str):
        return round(float(value), 3)
    raise TypeError(f"not a time: {value!r}")


# -- topics, preferences, tags ---------------------------------------------------------------------------


def preferences_to_ses(preferences: Mapping[str, str]) -> list[dict[str, str]]:
    return [{TOPIC_NAME: name, SUBSCRIPTION_STATUS: status} for name, status in preferences.items()]


def preferences_from_ses(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {item[TOPIC_NAME]: item[SUBSCRIPTION_STATUS] for item in items or ()}


def topic_to_ses(topic: Topic) -> SesDict:
    """A ``Topics`` item; Description only when set (SES omits it)."""
    item: SesDict = {TOPIC_NAME: topic.name, DISPLAY_NAME: topic.display_name}
    if topic.description is not None:
        item[DESCRIPTION] = topic.description
    item[DEFAULT_STATUS] = topic.default_status
    return item


def topics_to_ses(topics: Iterable[Topic]) -> list[SesDict]:
    return [topic_to_ses(t) for t in topics]


def topic_from_ses(item: Mapping[str, Any]) -> Topic:
    return Topic(
        name=item[TOPIC_NAME],
        display_name=item.get(DISPLAY_NAME, ""),
        default_status=item.get(DEFAULT_STATUS, OPT_OUT),
        description=item.get(DESCRIPTION),
    )


def tags_to_ses(tags: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{TAG_KEY: key, TAG_VALUE: value} for key, value in tags]


def tags_from_ses(items: Iterable[Mapping[str, Any]] | None) -> tuple[tuple[str, str], ...]:
    return tuple((item[TAG_KEY], item[TAG_VALUE]) for item in items or ())


# -- contact lists ---------------------------------------------------------------------------------------


def list_to_ses(contact_list: ContactList) -> SesDict:
    """GetContactList's answer."""
    shape: SesDict = {LIST_NAME: contact_list.name, TOPICS: topics_to_ses(contact_list.topics)}
    if contact_list.description is not None:
        shape[DESCRIPTION] = contact_list.description
    shape[CREATED] = to_ses_time(contact_list.created)
    shape[LAST_UPDATED] = to_ses_time(contact_list.updated)
    shape[TAGS] = tags_to_ses(contact_list.tags)
    return shape


def list_item_to_ses(contact_list: ContactList) -> SesDict:
    """A ListContactLists item: the name and when the list last changed."""
    return {LIST_NAME: contact_list.name, LAST_UPDATED: to_ses_time(contact_list.updated)}


def list_from_ses(data: Mapping[str, Any]) -> ContactList:
    """A GetContactList answer, as the boto3 client returns it."""
    return ContactList(
        name=data[LIST_NAME],
        topics=tuple(topic_from_ses(t) for t in data.get(TOPICS) or ()),
        description=data.get(DESCRIPTION),
        tags=tags_from_ses(data.get(TAGS)),
        created=from_ses_time(data.get(CREATED)),
        updated=from_ses_time(data.get(LAST_UPDATED)),
    )


def list_write(
    name: str,
    topics: Sequence[Topic],
    description: str | None,
    tags: Sequence[tuple[str, str]] = (),
) -> SesDict:
    """CreateContactList's parameters (UpdateContactList's without tags)."""
    params: SesDict = {LIST_NAME: name, TOPICS: topics_to_ses(topics)}
    if description is not None:
        params[DESCRIPTION] = description
    if tags:
        params[TAGS] = tags_to_ses(tags)
    return params


# -- contacts --------------------------------------------------------------------------------------------


def contact_to_ses(contact: Contact, contact_list: ContactList) -> SesDict:
    """GetContact's answer; AttributesData only when set (SES omits it)."""
    shape: SesDict = {
        LIST_NAME: contact_list.name,
        EMAIL_ADDRESS: contact.email,
        TOPIC_PREFERENCES: preferences_to_ses(contact.topic_preferences),
        TOPIC_DEFAULT_PREFERENCES: preferences_to_ses(contact.default_preferences(contact_list)),
        UNSUBSCRIBE_ALL: contact.unsubscribe_all,
    }
    if contact.attributes_data is not None:
        shape[ATTRIBUTES_DATA] = contact.attributes_data
    shape[CREATED] = to_ses_time(contact.created)
    shape[LAST_UPDATED] = to_ses_time(contact.updated)
    return shape


def contact_items_to_ses(contacts: Iterable[ListedContact], contact_list: ContactList) -> list[SesDict]:
    """ListContacts items for a page (no AttributesData, no CreatedTimestamp). The common case, a contact
    without explicit preferences, reuses one precomputed TopicDefaultPreferences list (a 1000-item page
    shaped ~3x faster than deriving it per contact)."""
    topics = contact_list.topics
    all_defaults = preferences_to_ses({t.name: t.default_status for t in topics})
    items = []
    for email, unsubscribe_all, preferences, updated in contacts:
        if preferences:
            explicit = preferences_to_ses(preferences)
            defaults = preferences_to_ses({t.name: t.default_status for t in topics if t.name not in preferences})
        else:
            explicit, defaults = [], all_defaults
        items.append(
            {
                EMAIL_ADDRESS: email,
                TOPIC_PREFERENCES: explicit,
                TOPIC_DEFAULT_PREFERENCES: defaults,
                UNSUBSCRIBE_ALL: unsubscribe_all,
                LAST_UPDATED: round(updated, 3),  # to_ses_time, inlined: a call a row
            }
        )
    return items


def contact_from_ses(data: Mapping[str, Any]) -> Contact:
    """A GetContact answer, or a ListContacts item (which lacks attributes and the creation time: None, 0.0)."""
    return Contact(
        email=data[EMAIL_ADDRESS],
        unsubscribe_all=bool(data.get(UNSUBSCRIBE_ALL, False)),
        topic_preferences=preferences_from_ses(data.get(TOPIC_PREFERENCES)),
        attributes_data=data.get(ATTRIBUTES_DATA) or None,
        created=from_ses_time(data.get(CREATED)),
        updated=from_ses_time(data.get(LAST_UPDATED)),
    )


def contact_write(list_name: str, contact: Contact) -> SesDict:
    """CreateContact's and UpdateContact's parameters: the contact's whole state (UpdateContact replaces
    unsubscribe-all and attributes, so they are always sent)."""
    params: SesDict = {
        LIST_NAME: list_name,
        EMAIL_ADDRESS: contact.email,
        TOPIC_PREFERENCES: preferences_to_ses(contact.topic_preferences),
        UNSUBSCRIBE_ALL: contact.unsubscribe_all,
    }
    if contact.attributes_data is not None:
        params[ATTRIBUTES_DATA] = contact.attributes_data
    return params


# -- import-file lines -----------------------------------------------------------------------------------


def import_line(
    email: str,
    unsubscribe_all: bool,
    attributes_data: str | None,
    topic_preferences: Mapping[str, str],
    *,
    replace: bool = False,
) -> bytes:
    """One contact in SES's import format, newline included: camelCase keys, attributesData as the text of
    the object, topicPreferences as ``{topicName, subscriptionStatus}`` items.

    An export writes what is set (attributesData when present, topicPreferences when any). ``replace``: the
    line is the contact's whole new state for an import job, whose PUT overrides the contact: topicPreferences
    always written (an empty list clears them). attributesData is omitted when unset, never ``""``: SES
    documents it as a JSON object, and under PUT an omitted field is cleared (the developer guide's CSV example
    leaves the cell empty for a contact without attributes).
    """
    record: dict[str, object] = {LINE_EMAIL: email, LINE_UNSUBSCRIBE_ALL: unsubscribe_all}
    if attributes_data is not None:
        record[LINE_ATTRIBUTES] = attributes_data
    if topic_preferences or replace:
        record[LINE_TOPIC_PREFERENCES] = [
            {LINE_TOPIC_NAME: name, LINE_SUBSCRIPTION_STATUS: status} for name, status in topic_preferences.items()
        ]
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def contact_import_line(contact: Contact) -> bytes:
    """:func:`import_line` for an import job that writes ``contact``'s whole state (all its explicit topic
    preferences, the unsubscribe flag, the attributes): SES's PUT overrides the contact with the line."""
    return import_line(
        contact.email,
        contact.unsubscribe_all,
        contact.attributes_data,
        contact.topic_preferences,
        replace=True,
    )


def delete_import_line(email: str) -> bytes:
    """One address for an import job whose action is DELETE."""
    return orjson.dumps({LINE_EMAIL: email}, option=orjson.OPT_APPEND_NEWLINE)
