"""The operation table and raw-path routing.

Operations register themselves with :func:`operation` (a decorator) under a method and a URI template as
botocore's model writes it (``/v2/email/contact-lists/{ContactListName}``). Matching works on the RAW path:
split on ``/`` first, then percent-decode each segment with ``unquote`` (never ``unquote_plus``: a literal
``+`` in an address must stay ``+``, and ``%2F`` must stay inside its segment).

Only paths that SigV4 signs as they are can be routed. botocore (and AWS) sign the path with dot segments
removed and ``//`` collapsed, so ``.../contacts/contacts/..`` is signed as ``.../contacts`` yet, split raw,
would run another operation. A path with a ``.`` or ``..`` segment, or an empty segment anywhere but at the
end, is refused with a BadRequestException (naming the label when it is one: botocore sends
``ContactListName=""`` as ``//``). A trailing empty segment is signed as sent and stays an empty label.

To add operations (import jobs, suppression list), write a module with ``@operation(...)`` handlers and list
it in ``HANDLER_MODULES`` in ``app.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ..errors import BadRequest

if TYPE_CHECKING:
    from .codec import ApiRequest, FileReply

# A handler runs in a worker thread, gets the decoded request and returns the response body (a dict), or a
# file to send (the failed records of an import job).
Handler = Callable[["ApiRequest"], "dict[str, Any] | FileReply"]


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    method: str
    template: str
    handler: Handler
    # (literal, label) per segment: exactly one of the two is set.
    segments: tuple[tuple[str | None, str | None], ...]
    # Authenticated by a token in its URL (a pre-signed URL this server handed out), not by SigV4.
    presigned: bool = False

    @property
    def literal_count(self) -> int:
        return sum(1 for literal, _ in self.segments if literal is not None)


class OperationTable:
    """Operations indexed by (method, number of segments); literal segments beat labels on a tie."""

    def __init__(self) -> None:
        self._by_shape: dict[tuple[str, int], list[Operation]] = {}
        self.operations: dict[str, Operation] = {}

    def add(self, name: str, method: str, template: str, handler: Handler, *, presigned: bool = False) -> None:
        if name in self.operations:
            raise ValueError(f"operation {name} registered twice")
        segments = tuple(
            (None, part[1:-1]) if part.startswith("{") and part.endswith("}") else (part, None)
            for part in template.strip("/").split("/")
        )
        op = Operation(name, method.upper(), template, handler, segments, presigned)
        self.operations[name] = op
        bucket = self._by_shape.setdefault((op.method, len(segments)), [])
        bucket.append(op)
        bucket.sort(key=lambda o: -o.literal_count)

    def match(self, method: str, raw_path: bytes) -> tuple[Operation, dict[str, str]] | None:
        """The operation for ``method`` and the raw (still percent-encoded) path, with decoded labels.

        None when no operation binds the path; BadRequest when the path is not the one SigV4 signed (above).
        """
        path = raw_path.decode("latin-1").split("?", 1)[0]
        if not path.startswith("/"):
            return None
        # No trailing-slash folding: ".../contacts/" is GetContact with an empty address (what botocore sends
        # for EmailAddress=""), which must not turn into a ListContacts.
        raw_segments = path[1:].split("/")
        found = self._find(method, raw_segments)
        unsigned = _unsigned_segment(raw_segments)
        if unsigned is not None:
            raise _path_error(unsigned, raw_segments[unsigned], found[0] if found else None)
        return found

    def _find(self, method: str, raw_segments: list[str]) -> tuple[Operation, dict[str, str]] | None:
        candidates = self._by_shape.get((method.upper(), len(raw_segments)))
        if not candidates:
            return None
        segments = [_decode(s) for s in raw_segments]
        for op in candidates:
            labels: dict[str, str] = {}
            for (literal, label), value in zip(op.segments, segments, strict=True):
                if literal is not None:
                    if value != literal:
                        break
                elif label is not None:  # always, when literal is None
                    labels[label] = value
            else:
                return op, labels
        return None


def _unsigned_segment(raw_segments: list[str]) -> int | None:
    """The index of the first segment SigV4's path normalisation would drop or fold ("." and "..", or empty
    but not last), or None when the path is signed exactly as it is."""
    last = len(raw_segments) - 1
    for index, segment in enumerate(raw_segments):
        if segment in (".", "..") or (not segment and index != last):
            return index
    return None


def _path_error(index: int, segment: str, op: Operation | None) -> BadRequest:
    label = op.segments[index][1] if op is not None else None
    if label is not None:  # an empty or dotted label botocore sent as is (e.g. ContactListName="")
        if not segment:
            return BadRequest(f"{label} can't be blank.", field=label)
        return BadRequest(f"{label} can't be '{segment}': a path segment can't be '.' or '..'.", field=label)
    what = f"a '{segment}' segment" if segment else "an empty segment"
    return BadRequest(f"The request path has {what}; SES request paths have none.")


def _decode(segment: str) -> str:
    # The raw path arrives as bytes decoded as latin-1; percent-escapes are decoded as UTF-8.
    if "%" not in segment:
        return segment.encode("latin-1").decode("utf-8", "replace")
    return unquote(segment.encode("latin-1").decode("utf-8", "replace"), errors="replace")


TABLE = OperationTable()


def operation(
    name: str, method: str, template: str, *, table: OperationTable = TABLE, presigned: bool = False
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of SES operation ``name`` (``presigned``: see Operation)."""

    def register(handler: Handler) -> Handler:
        table.add(name, method, template, handler, presigned=presigned)
        return handler

    return register
