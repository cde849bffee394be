"""Request decoding with SES's checks, and response/error encoding as botocore reads them.

Decoding mirrors what the SES front end does before any business rule: a member of the wrong JSON type is a
``SerializationException``; missing required members and bad enum values are collected into one
``1 validation error detected: ...`` message (member paths camelCase, list items 1-based), like AWS.

The SerializationException messages are those of SES's Jackson-based deserialiser, as a probe of real SES
recorded them (floci's ``SesV2Json`` and its tests, "verified against real AWS"): ``TRUE_VALUE can not be
converted to a String``, ``NUMBER_VALUE can not be converted to a Boolean``, ``Start of list found where not
expected`` (no full stop), ``Start of structure or map found where not expected.`` (one), ``Expected null``
for a scalar where a structure goes, ``Expected list or null`` for anything but an array where a list goes.

Encoding: JSON bodies, epoch-seconds timestamps with milliseconds (what CLI v1 prints verbatim and what the
JS SDK requires), ``x-amzn-RequestId``, and errors as ``x-amzn-ErrorType`` + ``{"__type", "message"}``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

import orjson

from ..errors import BadRequest, Serialization, SesContactsError
from ..validation import enum_violation

if TYPE_CHECKING:
    from ..services import Services
    from ..store.base import ContactStore

# The strings SES reads as a boolean (any case, nothing trimmed); any other string is refused (probed).
_TRUE_TEXTS: Final = frozenset({"true", "yes", "y", "t", "1"})
_FALSE_TEXTS: Final = frozenset({"false", "no", "n", "f", "0"})
# A 32-bit integer as Java reads one (no spaces, no "_" separators, which Python's int() would take).
_QUERY_INTEGER: Final = re.compile(r"[+-]?[0-9]{1,10}")


def _camel(member: str) -> str:
    return member[:1].lower() + member[1:]


def _token_name(value: object) -> str:
    """The name of a JSON value's token in SES's SerializationException messages (SES's own names, not
    Jackson's: ``TRUE_VALUE`` where Jackson says ``VALUE_TRUE``)."""
    if isinstance(value, bool):
        return "TRUE_VALUE" if value else "FALSE_VALUE"
    if isinstance(value, (int, float)):
        return "NUMBER_VALUE"
    return "STRING_VALUE"


def _start_error(value: object) -> Serialization | None:
    """SES's answer to an array or an object where neither goes (None for any other value)."""
    if isinstance(value, list):
        return Serialization("Start of list found where not expected")
    if isinstance(value, dict):
        return Serialization("Start of structure or map found where not expected.")
    return None


def _type_error(value: object, target: str) -> Serialization:
    """A value of the wrong JSON type where a scalar (``target``: "a String", "a Boolean"...) goes."""
    if value is None:
        # SES refuses a null boolean with a SerializationException that carries no message (probed).
        return Serialization("")
    return _start_error(value) or Serialization(f"{_token_name(value)} can not be converted to {target}")


def _structure_error(value: object) -> Serialization:
    """A value that is not an object where a structure goes (a list item of one included)."""
    if value is None:
        # A null item of a list of structures: SES answers 500 (floci saw an InternalFailure); a 400 here.
        return Serialization("Expected a structure, found null")
    return _start_error(value) or Serialization("Expected null")


class Violations:
    """Collects required-member and enum violations so one response lists them all, as AWS does."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def missing(self, path: str) -> None:
        self.items.append(f"Value at '{path}' failed to satisfy constraint: Member must not be null")

    def enum(self, path: str, allowed: tuple[str, ...]) -> None:
        self.items.append(enum_violation(path, allowed))

    def enum_members(self, path: str, allowed: tuple[str, ...]) -> None:
        """A list of enum values with a bad item: SES wraps the enum constraint in the list's (probed on the
        suppression operations' Reasons and SuppressedReasons by floci: SesSuppressionService)."""
        self.items.append(
            f"Value at '{path}' failed to satisfy constraint: Member must satisfy constraint: "
            f"[Member must satisfy enum value set: [{', '.join(allowed)}]]"
        )

    def pattern(self, path: str, pattern: str) -> None:
        """A string the model constrains with a pattern (S3Url), worded as SES words its other violations."""
        self.items.append(
            f"Value at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
        )

    def raise_if_any(self) -> None:
        if self.items:
            n = len(self.items)
            noun = "error" if n == 1 else "errors"
            raise BadRequest(f"{n} validation {noun} detected: " + "; ".join(self.items))


class Members:
    """Typed access to one JSON object of the request (the body, or a nested structure)."""

    def __init__(self, data: Mapping[str, Any], path: str, violations: Violations) -> None:
        self.data = data
        self.path = path  # camelCase prefix for messages, e.g. "topics.1.member."
        self.violations = violations

    def _get(self, member: str, required: bool) -> Any:
        value = self.data.get(member)
        if value is None and required:
            self.violations.missing(self.path + _camel(member))
        return value

    def string(self, member: str, *, required: bool = False) -> str | None:
        value = self._get(member, required)
        if value is None or isinstance(value, str):
            return value
        raise _type_error(value, "a String")

    def enum(self, member: str, allowed: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.string(member, required=required)
        if value is not None and value not in allowed:
            self.violations.enum(self.path + _camel(member), allowed)
        return value

    def boolean(self, member: str) -> bool | None:
        """Absent is None; present, JSON null included, it must read as a boolean. SES reads a string that
        names one (``"no"`` is false) and refuses any other, with its message's "an Boolean" (probed)."""
        if member not in self.data:
            return None
        value = self.data[member]
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            if value.lower() in _TRUE_TEXTS:
                return True
            if value.lower() in _FALSE_TEXTS:
                return False
            raise Serialization("STRING_VALUE can not be converted to an Boolean")
        raise _type_error(value, "a Boolean")

    def integer(self, member: str) -> int | None:
        value = self.data.get(member)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _type_error(value, "an Integer")

    def enums(self, member: str, allowed: tuple[str, ...]) -> list[str] | None:
        """A list of enum strings (absent is None); a bad item is one collected violation for the list."""
        value = self.data.get(member)
        if value is None:
            return None
        if not isinstance(value, list):
            raise Serialization("Expected list or null")
        items: list[str] = []
        for item in value:
            if item is not None and not isinstance(item, str):
                raise _type_error(item, "a String")
            if item not in allowed:
                self.violations.enum_members(self.path + _camel(member), allowed)
                return None
            items.append(item)
        return items

    def structure(self, member: str, *, required: bool = False) -> Members | None:
        value = self._get(member, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _structure_error(value)
        return Members(value, self.path + _camel(member) + ".", self.violations)

    def structures(self, member: str, *, required: bool = False) -> list[Members] | None:
        """A list of structures; items are addressed ``member.N.member.`` (1-based) in messages."""
        value = self._get(member, required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise Serialization("Expected list or null")
        items = []
        for i, item in enumerate(value, start=1):
            if not isinstance(item, dict):
                raise _structure_error(item)
            items.append(Members(item, f"{self.path}{_camel(member)}.{i}.member.", self.violations))
        return items


@dataclass(slots=True)
class ApiRequest:
    """One decoded SES request as a handler sees it. ``services`` is the running :class:`Services`."""

    services: Services
    operation: str
    method: str
    labels: dict[str, str]
    query_string: bytes
    body_bytes: bytes
    request_id: str
    # scheme://host the client addressed, for URLs the answer hands out (FailedRecordsS3Url).
    base_url: str = "http://localhost"
    violations: Violations = field(default_factory=Violations)
    _body: Members | None = None
    _query: dict[str, list[str]] | None = None

    @property
    def store(self) -> ContactStore:
        return self.services.store

    @property
    def body(self) -> Members:
        """The JSON body (absent or empty = ``{}``); malformed JSON is a SerializationException."""
        if self._body is None:
            data: Any = {}
            if self.body_bytes.strip():
                try:
                    data = orjson.loads(self.body_bytes)
                except orjson.JSONDecodeError as exc:
                    raise Serialization(f"The request body is not valid JSON: {exc.msg}.") from None
            if data is None:
                data = {}
            if not isinstance(data, dict):
                raise _structure_error(data)
            self._body = Members(data, "", self.violations)
        return self._body

    def label(self, name: str) -> str:
        """A URI label; present by construction of the route (possibly empty)."""
        return self.labels[name]

    def query(self, name: str) -> list[str]:
        if self._query is None:
            parsed: dict[str, list[str]] = {}
            for pair in self.query_string.decode("latin-1").split("&"):
                if not pair:
                    continue
                key, _, value = pair.partition("=")
                parsed.setdefault(_unquote(key), []).append(_unquote(value))
            self._query = parsed
        return self._query.get(name, [])

    def query_string_value(self, name: str, *, required: bool = False) -> str | None:
        values = self.query(name)
        if not values:
            if required:
                self.violations.missing(_camel(name))
            return None
        return values[0]

    def query_integer(self, name: str) -> int | None:
        """An integer query parameter; empty counts as absent, and anything else that is not an integer is
        refused with SES's message (probed on ListContactLists' PageSize)."""
        value = self.query_string_value(name)
        if not value:
            return None
        if _QUERY_INTEGER.fullmatch(value) and -(2**31) <= (number := int(value)) < 2**31:
            return number
        raise Serialization(f"'{value}' can not be converted to Integer")

    def check(self) -> None:
        """Raise the collected validation errors (call once all members were read)."""
        self.violations.raise_if_any()


def _unquote(text: str) -> str:
    return unquote(text.encode("latin-1").decode("utf-8", "replace"), errors="replace")


def new_request_id() -> str:
    return str(uuid.uuid4())


def encode_body(body: Mapping[str, Any]) -> bytes:
    return orjson.dumps(body)


def response_headers(request_id: str, body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-amzn-requestid", request_id.encode()),
    ]


@dataclass(frozen=True, slots=True)
class FileReply:
    """A handler's answer that is a file: the first ``size`` bytes of ``path``, sent in chunks."""

    path: Path
    size: int
    content_type: str
    file_name: str


@dataclass(frozen=True, slots=True)
class Encoded:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    file: FileReply | None = None


def encode_success(request_id: str, body: Mapping[str, Any]) -> Encoded:
    data = encode_body(body)
    return Encoded(200, response_headers(request_id, data), data)


def encode_file(request_id: str, reply: FileReply) -> Encoded:
    """Headers for a file answer; the app sends ``reply.size`` bytes of the file after them."""
    headers = [
        (b"content-type", reply.content_type.encode()),
        (b"content-length", str(reply.size).encode()),
        (b"content-disposition", f'attachment; filename="{reply.file_name}"'.encode()),
        (b"x-amzn-requestid", request_id.encode()),
    ]
    return Encoded(200, headers, b"", reply)


def encode_error(request_id: str, error: SesContactsError) -> Encoded:
    """An SES error as botocore parses it: the code in ``x-amzn-ErrorType`` and in ``__type``."""
    data = orjson.dumps({"__type": error.code, "message": error.message})
    headers = response_headers(request_id, data)
    headers.append((b"x-amzn-errortype", error.code.encode()))
    return Encoded(error.status, headers, data)


class InternalFailure(SesContactsError):
    """Anything unexpected: a JSON 500 botocore retries, never an HTML page."""

    code = "InternalFailure"
    status = 500


INTERNAL_FAILURE_MESSAGE: Final = "The request processing has failed because of an unknown error, exception or failure."
