"""The SNS HTTPS subscription endpoint, ``POST /events/sns``: SES events pushed by an SNS topic.

On when at least one topic is configured (``--events-sns-topic-arn``), 404 otherwise. Each posted message is
verified (:mod:`.sns`) before anything else; then by type:

- ``SubscriptionConfirmation``: the subscription is confirmed by fetching its ``SubscribeURL`` (an SNS host
  only), so wiring a topic takes one ``aws sns subscribe`` and no copy-pasting of tokens;
- ``Notification``: its ``Message`` (the SES event JSON) is recorded and the list rules applied
  (:func:`recorder`: events' one ingest). A message that is not an SES event is kept aside with the reason
  (``sescontacts events unreadable``) and acknowledged, as the queue poller does: SNS would otherwise retry
  it for an hour and then drop it;
- ``UnsubscribeConfirmation``: logged.

A ``MessageId`` accepted before is answered 200 and not processed again (SNS retries when our answer was
lost; recording is idempotent anyway). Refusals are answered with the reason in plain text and logged; the
body's secrets (the subscription token) are never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from ..db import Database
from .ingest import EventIngest
from .parse import EventParseError, parse_text
from .sns import (
    NOTIFICATION,
    SUBSCRIPTION_CONFIRMATION,
    SnsMessage,
    SnsMessageRefused,
    SnsVerifier,
    check_sns_url,
    https_get,
)

PATH = "/events/sns"
# SNS messages are at most 256 KiB; the envelope's JSON escaping can double that.
MAX_BODY_BYTES = 600 * 1024
# Accepted message IDs are kept this long (longer than any SNS retry) to answer a redelivery without work.
SEEN_FOR_SECONDS = 2 * 24 * 3600.0

log = logging.getLogger("sescontacts.events")


SOURCE = "sns"


def recorder(ingest: EventIngest) -> Callable[[SnsMessage], str]:
    """The endpoint's ``on_notification``: the message's SES event recorded through ``ingest`` (rules applied,
    all committed before SNS is answered), or, unreadable, kept aside with its reason."""

    def record(message: SnsMessage) -> str:
        try:
            parsed = parse_text(message.message)
        except EventParseError as exc:
            ingest.log.record_poison([(message.message_id, str(exc), message.message)], source=SOURCE, now=time.time())
            return f"Not an SES event, kept aside: {exc}"
        if parsed.skipped:
            return f"Skipped: {parsed.skipped} is not a bounce, complaint, send or delivery."
        result = ingest.ingest(parsed.events, source=SOURCE)
        return (
            f"Recorded {result.recorded} bounce or complaint, counted {result.counted} send or delivery, "
            f"{result.duplicates} already recorded; {result.unsubscribed} unsubscribed, {result.deleted} deleted."
        )

    return record


class SnsEndpoint:
    """The ASGI app of ``PATH``. ``on_notification`` records a verified Notification's SES event and says
    what it did in a few words (it raises ``SnsMessageRefused`` for a message that is not an SES event)."""

    def __init__(
        self,
        db: Database,
        verifier: SnsVerifier,
        on_notification: Callable[[SnsMessage], str],
        *,
        confirm: Callable[[str], bytes] = https_get,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.verifier = verifier
        self.on_notification = on_notification
        self._confirm = confirm
        self._now = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if not self.verifier.topic_arns or scope["path"] != PATH:
            await _answer(send, 404, "Not found. The SNS endpoint is on when --events-sns-topic-arn names a topic.")
            return
        if scope["method"] != "POST":
            await _answer(send, 405, "SNS posts to this endpoint with POST.", allow=True)
            return
        body = await _read_body(receive)
        if body is None:
            await _answer(send, 413, f"The body is larger than an SNS message can be ({MAX_BODY_BYTES} bytes).")
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-amz-sns-message-type"), None)
        try:
            status, text = await run_in_threadpool(self.handle, body, header)
        except SnsMessageRefused as refused:
            log.warning("SNS endpoint refused a message: %s", refused.reason)
            await _answer(send, refused.status, refused.reason)
            return
        await _answer(send, status, text)

    def handle(self, body: bytes, message_type_header: str | None) -> tuple[int, str]:
        """Verify and act on one posted body: (status, text); SnsMessageRefused for a refusal."""
        try:
            envelope = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise SnsMessageRefused(f"The body is not JSON: {exc}", status=400) from None
        if not isinstance(envelope, dict):
            raise SnsMessageRefused("The body is not an SNS message (a JSON object)", status=400)
        if message_type_header is not None and message_type_header != envelope.get("Type"):
            raise SnsMessageRefused("x-amz-sns-message-type does not match the message's Type", status=400)
        message = self.verifier.verify(envelope)
        if self._seen(message.message_id):
            return 200, f"Message {message.message_id} was already received; nothing changed."
        if message.type == SUBSCRIPTION_CONFIRMATION:
            url = check_sns_url(message.subscribe_url or "", what="SubscribeURL")
            try:
                self._confirm(url)
            except OSError as exc:
                raise SnsMessageRefused(f"Confirming the subscription failed: {exc}", status=502) from None
            outcome = f"Subscription to {message.topic_arn} confirmed."
        elif message.type == NOTIFICATION:
            outcome = self.on_notification(message)
        else:
            outcome = f"Unsubscribed from {message.topic_arn}."
        self._remember(message, outcome)
        log.info("SNS endpoint: %s (message %s)", outcome, message.message_id)
        return 200, outcome

    def _seen(self, message_id: str) -> bool:
        with self.db.snapshot() as conn:
            return conn.execute("SELECT 1 FROM sns_messages WHERE message_id = ?", (message_id,)).fetchone() is not None

    def _remember(self, message: SnsMessage, outcome: str) -> None:
        now = self._now()
        with self.db.write() as conn:
            conn.execute("DELETE FROM sns_messages WHERE received < ?", (now - SEEN_FOR_SECONDS,))
            conn.execute(
                "INSERT OR IGNORE INTO sns_messages (message_id, topic_arn, type, received, outcome) "
                "VALUES (?, ?, ?, ?, ?)",
                (message.message_id, message.topic_arn, message.type, now, outcome[:500]),
            )


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = event.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not event.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, text: str, *, allow: bool = False) -> None:
    body = (text + "\n").encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if allow:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
