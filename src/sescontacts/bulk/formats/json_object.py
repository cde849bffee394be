"""One JSON object to a contact patch, an address (for a delete) or a Reject naming the field at fault.

Keys match case-insensitively; ``attributesData`` may be an object or a string holding one (SES's form);
``topicPreferences`` a list of ``{topicName, subscriptionStatus}`` (SES's form) or an object ``{topic: status}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import orjson

from ...model import MISSING, ContactPatch, Missing, value_nesting_exceeds
from ...validation import MAX_ATTRIBUTES_DEPTH, TOO_DEEP, attributes_problem, attributes_value_problem, json_type_name
from ..report import Reject
from .fields import (
    ATTRIBUTES,
    EMAIL,
    STATUSES,
    TOPIC_PREFERENCES,
    TOPIC_PREFIX,
    UNSUBSCRIBE_ALL,
    ReadOptions,
    check_address,
    make_patch,
    parse_bool,
    plainly_within_caps,
)

_JSON_KEYS: Final = {EMAIL, UNSUBSCRIBE_ALL, ATTRIBUTES, TOPIC_PREFERENCES}
_JSON_KEYS_LOWER: Final = {k.lower(): k for k in _JSON_KEYS}


def contact_from_object(obj: dict[str, Any], line: int, options: ReadOptions) -> ContactPatch | str | Reject:
    """One JSON object to a patch: keys match case-insensitively; attributesData may be an object or a
    string holding one (SES's form); topicPreferences a list of {topicName, subscriptionStatus} (SES's
    form) or an object {topic: status}."""
    if obj.keys() <= _JSON_KEYS:  # SES's own spelling of every key: the common case
        values = obj
    else:
        values = {}
        for key, value in obj.items():
            canonical = _JSON_KEYS_LOWER.get(key.lower()) if isinstance(key, str) else None
            if canonical is None:
                if options.action == "delete":
                    continue
                if not options.extra_columns_as_attributes:
                    return Reject(line, _text_of(obj.get(EMAIL)), str(key), f"unknown field {key!r}")
                values.setdefault("__extra__", {})[key] = value
                continue
            values[canonical] = value
    email = values.get(EMAIL)
    if not isinstance(email, str):
        reason = (
            "emailAddress is missing"
            if email is None
            else f"emailAddress must be a string, not {json_type_name(email)}"
        )
        return Reject(line, _text_of(email), EMAIL, reason)
    email = email.strip()
    problem = check_address(email)
    if problem is not None:
        return Reject(line, email, EMAIL, problem)
    if options.action == "delete":
        return email
    unsubscribe: bool | Missing = MISSING
    if UNSUBSCRIBE_ALL in values:
        raw_value = values[UNSUBSCRIBE_ALL]
        if isinstance(raw_value, bool):
            unsubscribe = raw_value
        elif raw_value is None:
            unsubscribe = False
        else:
            parsed = (
                parse_bool(raw_value)
                if isinstance(raw_value, str)
                else (bool(raw_value) if raw_value in (0, 1) and not isinstance(raw_value, float) else None)
            )
            if parsed is None:
                return Reject(
                    line,
                    email,
                    UNSUBSCRIBE_ALL,
                    f"unsubscribeAll must be true or false, not {_shown(raw_value)}",
                )
            unsubscribe = parsed
    attributes: dict[str, object] | Missing | None = MISSING
    if ATTRIBUTES in values:
        raw_attrs = values[ATTRIBUTES]
        if raw_attrs is None or (isinstance(raw_attrs, str) and not raw_attrs.strip()):
            attributes = MISSING if options.merge_attributes else None
        elif isinstance(raw_attrs, str):
            parsed_attrs: Any = None
            if plainly_within_caps(raw_attrs):
                try:
                    parsed_attrs = orjson.loads(raw_attrs)
                except orjson.JSONDecodeError:
                    parsed_attrs = None
            if type(parsed_attrs) is not dict:
                parsed_attrs, problem = attributes_problem(raw_attrs)
                if problem is not None:
                    return Reject(line, email, ATTRIBUTES, problem)
            attributes = parsed_attrs
        elif isinstance(raw_attrs, dict):
            problem = attributes_value_problem(raw_attrs)
            if problem is not None:
                return Reject(line, email, ATTRIBUTES, problem)
            attributes = raw_attrs
        else:
            return Reject(
                line, email, ATTRIBUTES, f"attributesData must be a JSON object, not {json_type_name(raw_attrs)}"
            )
    extra = values.get("__extra__")
    if extra:
        for key, value in extra.items():
            if isinstance(value, (dict, list)) and value_nesting_exceeds(value, MAX_ATTRIBUTES_DEPTH - 1):
                return Reject(line, email, str(key), f"{key} is {TOO_DEEP}")
        merged: dict[str, object] = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in extra.items()}
        if isinstance(attributes, dict):
            merged.update(attributes)
        attributes = merged
    preferences: dict[str, str] = {}
    raw_prefs = values.get(TOPIC_PREFERENCES)
    if raw_prefs is not None:
        pairs: Iterable[tuple[object, object]]
        if isinstance(raw_prefs, list):
            pairs_list = []
            for item in raw_prefs:
                if not isinstance(item, dict):
                    return Reject(
                        line,
                        email,
                        TOPIC_PREFERENCES,
                        "topicPreferences items must be {topicName, subscriptionStatus} objects",
                    )
                lowered = {str(k).lower(): v for k, v in item.items()}
                pairs_list.append((lowered.get("topicname"), lowered.get("subscriptionstatus")))
            pairs = pairs_list
        elif isinstance(raw_prefs, dict):
            pairs = raw_prefs.items()
        else:
            return Reject(
                line, email, TOPIC_PREFERENCES, f"topicPreferences must be a list, not {json_type_name(raw_prefs)}"
            )
        for topic, status in pairs:
            if not isinstance(topic, str) or not topic:
                return Reject(line, email, TOPIC_PREFERENCES, "a topic preference has no topicName")
            column = f"{TOPIC_PREFIX}{topic}"
            found = STATUSES.get(status.strip().upper()) if isinstance(status, str) else None
            if found is None:
                return Reject(
                    line,
                    email,
                    column,
                    f"the status must be OPT_IN or OPT_OUT, not {_shown(status)}",
                )
            if options.topics is not None and topic not in options.topics:
                return Reject(line, email, column, f"the list has no topic {topic!r}")
            preferences[topic] = found
    return make_patch(email, unsubscribe, attributes, preferences)


def _text_of(value: object) -> str:
    return value if isinstance(value, str) else ("" if value is None else _shown(value))


def _shown(value: object) -> str:
    """A value from the file as JSON, for a reject's reason; one nested past the attributes limit by its kind
    (ijson reads any depth, orjson writes at most 254 levels)."""
    if isinstance(value, (dict, list)) and value_nesting_exceeds(value):
        return f"{json_type_name(value)} {TOO_DEEP}"
    return orjson.dumps(value).decode()
