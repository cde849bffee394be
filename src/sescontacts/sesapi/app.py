"""The SES v2 API as one raw ASGI app: read the body (capped), then one synchronous call that verifies the
signature, routes on the raw path, runs the operation's handler (and its store call) and encodes the answer.

Where that call runs: the local backend's single-contact operations (INLINE_OPERATIONS: one indexed read or
one short write transaction) run on the event loop itself, under ``Database.without_waiting``. When their
write would wait for the lock (an import's batch, the search indexer's step, a write in a worker), nothing
has been written, and the whole call runs again in a worker thread, where waiting is harmless. So the loop
never waits on a lock, and the common case pays no thread hop: a hop is two thread wake-ups, and on a busy
2-core box each waits for a core (one boto3 client creating contacts, same run, load ~5: 51% -> 77% of a
do-nothing server's rate, server CPU 1,165 -> 715 us a call). Every other operation, and every one of the
ses backend (whose writes go over the network), takes the hop, through ``workers.WorkerPool`` rather than
``anyio.to_thread``: same model, a third of the per-hop CPU (see workers.py). Starlette's Request/Router are
not used: the API needs the raw path for routing and signing, and nothing else they offer.

Seams for other features:
- New operations: a module of ``@operation`` handlers (see ``routing.py``), listed in ``HANDLER_MODULES``.
- Cross-cutting checks that answer with an SES error (e.g. a TooManyRequestsException per access key): append
  a guard to ``SesApi.guards`` in :func:`create_sesapi_app`. A guard runs once a request, after authentication
  and routing, before the handler, and raises a ``SesContactsError`` to refuse the request.
- Whole-app wrappers (ASGI middleware): wrap the returned app at the end of :func:`create_sesapi_app`;
  use ``codec.encode_error`` to answer in SES's format.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from starlette.types import ASGIApp, Receive, Scope, Send

from ..db import Database, WriteWouldWait
from ..errors import BadRequest, NotFound, PayloadTooLarge, SesContactsError, UnknownOperation
from ..history import Actor, acting_as
from .codec import (
    INTERNAL_FAILURE_MESSAGE,
    ApiRequest,
    Encoded,
    FileReply,
    InternalFailure,
    encode_error,
    encode_file,
    encode_success,
    new_request_id,
)
from .routing import TABLE, OperationTable
from .sigv4 import SigV4Verifier
from .workers import WorkerPool

logger = logging.getLogger("sescontacts.sesapi")

# Modules whose @operation handlers make up the API.
HANDLER_MODULES: Final = ("lists", "contacts", "tags", "import_job_operations", "suppression")
# SES requests are small (the largest, CreateContactList with 20 topics, is a few KiB). A cap keeps a
# runaway or hostile body out of memory; over it the answer is 413 in SES's JSON error format, sent without
# reading further (``request_body.ReadBeforeAnswer``, around the whole server, drains the rest first, so that
# a client still sending its body reads the 413 rather than a connection reset).
MAX_BODY_BYTES: Final = 1024 * 1024
_FILE_CHUNK: Final = 256 * 1024
_HOST: Final = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")

# Operations that may run on the event loop (see the module docstring): each is one indexed read or one
# single-row write transaction in the local store, whose time does not grow with the list.
INLINE_OPERATIONS: Final = frozenset(
    {"CreateContact", "GetContact", "UpdateContact", "DeleteContact", "GetContactList"}
)

# A guard sees (operation name, access key id) and raises a SesContactsError to refuse the request.
Guard = Callable[[str, str], None]


def load_handlers(modules: Sequence[str] = HANDLER_MODULES) -> None:
    for name in modules:
        importlib.import_module(f"{__package__}.{name}")


class SesApi:
    """The ASGI callable. ``verifier=None`` is only for tests that exercise routing without signing."""

    def __init__(
        self,
        services: Any,
        *,
        table: OperationTable = TABLE,
        verifier: SigV4Verifier | None,
        max_body_bytes: int = MAX_BODY_BYTES,
        inline_db: Database | None = None,
    ) -> None:
        self.services = services
        # The local store's database: INLINE_OPERATIONS run on the loop, their writes without waiting.
        self.inline_db = inline_db
        self.table = table
        self.verifier = verifier
        self.max_body_bytes = max_body_bytes
        self.guards: list[Guard] = []
        self.workers = WorkerPool()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request_id = new_request_id()
        try:
            body = await self._read_body(scope, receive)
        except _ClientGone:
            return
        encoded: Encoded | None
        if body is None:
            encoded = encode_error(
                request_id, PayloadTooLarge(f"Request body is larger than {self.max_body_bytes} bytes.")
            )
        else:
            encoded, guarded = self._inline(scope, body, request_id) if self.inline_db is not None else (None, False)
            if encoded is None:
                encoded = await self.workers.run(self.handle, scope, body, request_id, False, guarded)
        if encoded.file is not None:
            await self._send_file(send, encoded, encoded.file, request_id)
            return
        await send({"type": "http.response.start", "status": encoded.status, "headers": encoded.headers})
        await send({"type": "http.response.body", "body": encoded.body})

    async def _send_file(self, send: Send, encoded: Encoded, reply: FileReply, request_id: str) -> None:
        """Stream ``reply.size`` bytes of the file, reading in the worker pool (a rejects CSV can be large)."""
        try:
            stream = await self.workers.run(open, reply.path, "rb")
        except OSError:
            gone = encode_error(request_id, NotFound("The failed records are gone."))
            await send({"type": "http.response.start", "status": gone.status, "headers": gone.headers})
            await send({"type": "http.response.body", "body": gone.body})
            return
        try:
            await send({"type": "http.response.start", "status": encoded.status, "headers": encoded.headers})
            remaining = reply.size
            while remaining > 0:
                chunk = await self.workers.run(stream.read, min(_FILE_CHUNK, remaining))
                remaining = remaining - len(chunk) if chunk else 0  # a shorter file ends the body early
                await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
            if reply.size == 0:
                await send({"type": "http.response.body", "body": b""})
        finally:
            stream.close()

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None when it exceeds the cap (reading stops there). _ClientGone if it left."""
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    if int(value) > self.max_body_bytes:
                        return None
                except ValueError:
                    pass
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self.max_body_bytes:
                    return None
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _inline(self, scope: Scope, body: bytes, request_id: str) -> tuple[Encoded | None, bool]:
        """The answer, computed on the event loop, or None when the request must run in a worker thread (not
        an inline operation, or its write would have waited: nothing was written); and whether the guards
        have already passed it (so that a rate-limiting guard counts a request once, wherever it runs)."""
        assert self.inline_db is not None
        try:
            with self.inline_db.without_waiting():
                return self.handle(scope, body, request_id, True), False
        except _NotInline:
            return None, False
        except WriteWouldWait:
            return None, True

    def handle(
        self, scope: Scope, body: bytes, request_id: str, inline: bool = False, guarded: bool = False
    ) -> Encoded:
        """Authenticate, route, run the handler, encode. Never raises, except, with ``inline``, _NotInline
        (before any check) or WriteWouldWait (after the guards, before any write): the caller runs it again
        in a worker, ``guarded`` after WriteWouldWait (the guards are not asked twice)."""
        operation_name = "?"
        try:
            method: str = scope["method"]
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
            raw_path = raw_path.split(b"?", 1)[0]
            query_string: bytes = scope.get("query_string", b"")
            path_error: BadRequest | None = None
            try:
                match = self.table.match(method, raw_path)
            except BadRequest as exc:  # a path SigV4 signs normalised: refused, after authentication
                match, path_error = None, exc
            if inline and (match is None or match[0].name not in INLINE_OPERATIONS):
                raise _NotInline
            access_key_id = ""
            if self.verifier is not None and not (match is not None and match[0].presigned):
                access_key_id = self.verifier.verify(
                    method=method, raw_path=raw_path, query_string=query_string, headers=scope["headers"], body=body
                )
            if path_error is not None:
                raise path_error
            if match is None:
                raise UnknownOperation(f"No operation matches {method} {raw_path.decode('latin-1')[:200]}")
            op, labels = match
            operation_name = op.name
            for guard in () if guarded else self.guards:
                guard(op.name, access_key_id)
            request = ApiRequest(
                services=self.services,
                operation=op.name,
                method=method,
                labels=labels,
                query_string=query_string,
                body_bytes=body,
                request_id=request_id,
                base_url=base_url(scope),
            )
            with acting_as(Actor("api", access_key_id)):  # recorded as the signing key's ID, never its secret
                result = op.handler(request)
            if isinstance(result, FileReply):
                return encode_file(request_id, result)
            return encode_success(request_id, result)
        except (WriteWouldWait, _NotInline):
            if inline:
                raise
            logger.exception("unexpected error in SES operation %s (request %s)", operation_name, request_id)
            return encode_error(request_id, InternalFailure(INTERNAL_FAILURE_MESSAGE))
        except SesContactsError as exc:
            return encode_error(request_id, exc)
        except Exception:
            # Logged with the operation and request id only: no headers, no body, so no secrets.
            logger.exception("unexpected error in SES operation %s (request %s)", operation_name, request_id)
            return encode_error(request_id, InternalFailure(INTERNAL_FAILURE_MESSAGE))


def base_url(scope: Scope) -> str:
    """``scheme://host[:port]`` as the client addressed this server, for URLs an answer hands out."""
    scheme = scope.get("scheme", "http")
    for name, value in scope.get("headers", []):
        if name == b"host":
            host = value.decode("latin-1")
            if host and _HOST.fullmatch(host):
                return f"{scheme}://{host}"
            break
    server = scope.get("server") or ("localhost", None)
    return f"{scheme}://{server[0]}" + (f":{server[1]}" if server[1] else "")


class _NotInline(Exception):
    """This request's operation does not run on the event loop."""


class _ClientGone(Exception):
    """The client disconnected before its request was read: there is no one to answer."""


def create_sesapi_app(services: Any) -> ASGIApp:
    """The SES API for ``services``; accepts exactly ``services.access_key`` (the SESCONTACTS_* key pair)."""
    load_handlers()
    key = services.access_key

    def secret_for(access_key_id: str) -> str | None:
        return key.secret_access_key if access_key_id == key.access_key_id else None

    # Only the local store's operations are bounded local work; the ses backend's writes go over the network.
    inline_db = services.db if services.settings.backend == "local" else None
    api = SesApi(services, verifier=SigV4Verifier(secret_for, region=services.store.region), inline_db=inline_db)
    services.on_stop.append(api.workers.close)  # runs before the store closes (on_stop runs in reverse)
    # Guards (checks per operation and access key) are appended here: api.guards.append(...).
    app: ASGIApp = api
    # Whole-app ASGI wrappers go here: app = Wrapper(app, ...).
    if getattr(services.settings, "throttle", None):  # --throttle RATE[:BURST]: 429s as SES sends them
        from .throttle import Throttle

        app = Throttle(app, services.settings.throttle)
    return app
