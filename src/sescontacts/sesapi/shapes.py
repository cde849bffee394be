"""Model records to SES response shapes (and the request structures shared by several operations)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import SUBSCRIPTION_STATUSES, Contact, ContactList, Topic
from .codec import Members, timestamp


def preferences(items: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"TopicName": name, "SubscriptionStatus": status} for name, status in items.items()]


def topic_shape(topic: Topic) -> dict[str, Any]:
    shape: dict[str, Any] = {"TopicName": topic.name, "DisplayName": topic.display_name}
    if topic.description is not None:
        shape["Description"] = topic.description
    shape["DefaultSubscriptionStatus"] = topic.default_status
    return shape


def contact_list_shape(contact_list: ContactList) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "ContactListName": contact_list.name,
        "Topics": [topic_shape(t) for t in contact_list.topics],
    }
    if contact_list.description is not None:
        shape["Description"] = contact_list.description
    shape["CreatedTimestamp"] = timestamp(contact_list.created)
    shape["LastUpdatedTimestamp"] = timestamp(contact_list.updated)
    shape["Tags"] = [{"Key": k, "Value": v} for k, v in contact_list.tags]
    return shape


def contact_shape(contact: Contact, contact_list: ContactList) -> dict[str, Any]:
    """GetContact's shape; AttributesData only when set (SES omits it)."""
    shape: dict[str, Any] = {
        "ContactListName": contact_list.name,
        "EmailAddress": contact.email,
        "TopicPreferences": preferences(contact.topic_preferences),
        "TopicDefaultPreferences": preferences(contact.default_preferences(contact_list)),
        "UnsubscribeAll": contact.unsubscribe_all,
    }
    if contact.attributes_data is not None:
        shape["AttributesData"] = contact.attributes_data
    shape["CreatedTimestamp"] = timestamp(contact.created)
    shape["LastUpdatedTimestamp"] = timestamp(contact.updated)
    return shape


def list_item_shapes(contacts: list[Contact], contact_list: ContactList) -> list[dict[str, Any]]:
    """ListContacts items for a page (no AttributesData, no CreatedTimestamp). The common case, a contact
    without explicit preferences, reuses one precomputed TopicDefaultPreferences list (a 1000-item page
    shaped ~3x faster than deriving it per contact)."""
    all_defaults = preferences({t.name: t.default_status for t in contact_list.topics})
    items = []
    for contact in contacts:
        if contact.topic_preferences:
            explicit = preferences(contact.topic_preferences)
            defaults = preferences(contact.default_preferences(contact_list))
        else:
            explicit, defaults = [], all_defaults
        items.append(
            {
                "EmailAddress": contact.email,
                "TopicPreferences": explicit,
                "TopicDefaultPreferences": defaults,
                "UnsubscribeAll": contact.unsubscribe_all,
                "LastUpdatedTimestamp": timestamp(contact.updated),
            }
        )
    return items


def read_topics(items: list[Members] | None) -> list[Topic] | None:
    """``Topics``: TopicName, DisplayName and DefaultSubscriptionStatus are required in each item."""
    if items is None:
        return None
    topics = []
    for item in items:
        name = item.string("TopicName", required=True)
        display_name = item.string("DisplayName", required=True)
        description = item.string("Description")
        status = item.enum("DefaultSubscriptionStatus", SUBSCRIPTION_STATUSES, required=True)
        topics.append(
            Topic(
                name=name or "", display_name=display_name or "", default_status=status or "", description=description
            )
        )
    return topics


def read_preferences(items: list[Members] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items or ():
        name = item.string("TopicName", required=True)
        status = item.enum("SubscriptionStatus", SUBSCRIPTION_STATUSES, required=True)
        if name is not None and status is not None:
            result[name] = status
    return result


def read_tags(items: list[Members] | None) -> list[tuple[str, str]]:
    tags = []
    for item in items or ():
        key = item.string("Key", required=True)
        value = item.string("Value", required=True)
        tags.append((key or "", value or ""))
    return tags
