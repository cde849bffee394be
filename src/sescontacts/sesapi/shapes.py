"""The request structures shared by several operations (Topics, TopicPreferences, Tags), read and validated.

Responses are shaped by :mod:`sescontacts.ses_wire`, which owns SES's field names for the server, the ses
backend's client and the import files alike; these readers use its names too.
"""

from __future__ import annotations

from ..model import SUBSCRIPTION_STATUSES, Topic
from ..ses_wire import DEFAULT_STATUS, DESCRIPTION, DISPLAY_NAME, SUBSCRIPTION_STATUS, TAG_KEY, TAG_VALUE, TOPIC_NAME
from .codec import Members


def read_topics(items: list[Members] | None) -> list[Topic] | None:
    """``Topics``: TopicName, DisplayName and DefaultSubscriptionStatus are required in each item."""
    if items is None:
        return None
    topics = []
    for item in items:
        name = item.string(TOPIC_NAME, required=True)
        display_name = item.string(DISPLAY_NAME, required=True)
        description = item.string(DESCRIPTION)
        status = item.enum(DEFAULT_STATUS, SUBSCRIPTION_STATUSES, required=True)
        topics.append(
            Topic(
                name=name or "", display_name=display_name or "", default_status=status or "", description=description
            )
        )
    return topics


def read_preferences(items: list[Members] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items or ():
        name = item.string(TOPIC_NAME, required=True)
        status = item.enum(SUBSCRIPTION_STATUS, SUBSCRIPTION_STATUSES, required=True)
        if name is not None and status is not None:
            result[name] = status
    return result


def read_tags(items: list[Members] | None) -> list[tuple[str, str]]:
    tags = []
    for item in items or ():
        key = item.string(TAG_KEY, required=True)
        value = item.string(TAG_VALUE, required=True)
        tags.append((key or "", value or ""))
    return tags
