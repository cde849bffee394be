"""An SQS queue of SES events, polled with boto3: SES -> SNS -> SQS, or EventBridge -> SQS (README says how to
wire either). Works behind NAT: nothing has to reach sescontacts.

Each receive is a long poll (20 s, up to 10 messages). A message is deleted only after what it holds is
committed (:meth:`EventIngest.ingest` returns after its commit), so a kill at any moment loses nothing: an
undeleted message comes back after its visibility timeout and, being recorded already, counts as a duplicate.
A message that cannot be read (not JSON, not an SES event, a field missing) is *poison*: kept in the database
(``event_poison``: the reason and the raw body), then deleted, so it is neither lost nor received for ever.
Errors talking to SQS or writing the database back off (1 s doubling to a minute) and try again.

``serve --events-queue-url`` runs the poller as background work (one process per data dir polls);
``sescontacts events poll`` runs it in the foreground, ``--once`` until the queue is empty.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..settings import Settings
from .ingest import EventIngest, IngestResult
from .model import DeliveryEvent
from .parse import EventParseError, parse_text

logger = logging.getLogger("sescontacts.events.sqs")

WAIT_SECONDS = 20  # SQS's longest long poll: fewest empty receives
MAX_MESSAGES = 10  # SQS's most per receive
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
SOURCE = "sqs"


@dataclass
class PollResult:
    """What polling did: messages received and deleted, poison messages kept aside, types skipped."""

    messages: int = 0
    poison: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    ingest: IngestResult = field(default_factory=IngestResult)

    def add(self, other: PollResult) -> None:
        self.messages += other.messages
        self.poison += other.poison
        self.skipped.update(other.skipped)
        self.ingest.add(other.ingest)


def queue_endpoint(queue_url: str) -> tuple[str, str | None]:
    """The endpoint a queue URL names (``https://sqs.eu-west-1.amazonaws.com/123456789012/ses-events`` is
    served by ``https://sqs.eu-west-1.amazonaws.com``), and its region when the host says it."""
    parts = urlsplit(queue_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.count("/") < 2:
        raise ValueError(
            f"{queue_url!r}: expected an SQS queue URL like https://sqs.us-east-1.amazonaws.com/123456789012/ses-events"
        )
    labels = parts.hostname.split(".")
    region = labels[1] if len(labels) > 3 and labels[0] == "sqs" and labels[-1] == "com" else None
    return f"{parts.scheme}://{parts.netloc}", region


def queue_arn(queue_url: str, *, region: str) -> str:
    """The queue's ARN from its URL (``.../ACCOUNT/NAME``); ``region`` when the host does not name one."""
    _, named = queue_endpoint(queue_url)
    account, name = urlsplit(queue_url).path.strip("/").split("/")[-2:]
    return f"arn:aws:sqs:{named or region}:{account}:{name}"


def sqs_client(queue_url: str, *, session: Any) -> Any:
    """A boto3 SQS client for the queue's own endpoint, with botocore's standard retries."""
    from botocore.config import Config

    endpoint, region = queue_endpoint(queue_url)
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=WAIT_SECONDS + 40)
    return session.client("sqs", region_name=region or session.region_name, endpoint_url=endpoint, config=config)


def open_queue(
    ingest: EventIngest, settings: Settings, queue_url: str, *, wait_seconds: int = WAIT_SECONDS
) -> EventQueue:
    """The queue at ``queue_url``, reached with the settings' AWS credentials (profile, role), into ``ingest``."""
    from ..store.ses.client import make_session

    session = make_session(
        region=settings.region,
        profile=settings.aws_profile,
        role_arn=settings.role_arn,
        external_id=settings.external_id,
    )
    return EventQueue(ingest, queue_url, sqs_client(queue_url, session=session), wait_seconds=wait_seconds)


class EventQueue:
    """Polls one queue into one :class:`EventIngest` (see the module's docstring)."""

    def __init__(
        self,
        ingest: EventIngest,
        queue_url: str,
        client: Any,
        *,
        wait_seconds: int = WAIT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ingest = ingest
        self.queue_url = queue_url
        self.client = client
        self.wait_seconds = wait_seconds
        self.clock = clock
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._busy = threading.Lock()  # held while received messages are handled; stop() waits for it

    # -- one receive ----------------------------------------------------------------------------------------

    def receive(self, stopping: threading.Event | None = None) -> PollResult:
        """One long poll and what it brought, handled: recorded, poison kept aside, then deleted. Messages that
        arrive after ``stopping`` is set are left in the queue (they come back after their visibility timeout)."""
        answer = self.client.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=MAX_MESSAGES, WaitTimeSeconds=self.wait_seconds
        )
        messages: list[dict[str, Any]] = answer.get("Messages") or []
        result = PollResult()
        if not messages:
            return result
        with self._busy:
            if stopping is not None and stopping.is_set():
                return result
            events: list[DeliveryEvent] = []
            readable: list[dict[str, Any]] = []
            unreadable: list[dict[str, Any]] = []
            poison: list[tuple[str | None, str, str]] = []
            for message in messages:
                body = message.get("Body") or ""
                try:
                    parsed = parse_text(body)
                except EventParseError as exc:
                    poison.append((message.get("MessageId"), str(exc), body))
                    unreadable.append(message)
                    continue
                events.extend(parsed.events)
                if parsed.skipped:
                    result.skipped[parsed.skipped] += 1
                readable.append(message)
            if poison:
                for message_id, reason, _ in poison:
                    logger.warning("events queue: message %s cannot be read (%s); kept aside", message_id, reason)
                self.ingest.log.record_poison(poison, source=SOURCE, now=self.clock())
                result.poison = len(poison)
                self._delete(unreadable)
            if readable:
                result.ingest = self.ingest.ingest(events, source=SOURCE)  # committed when it returns
                self._delete(readable)
            result.messages = len(messages)
        return result

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        answer = self.client.delete_message_batch(
            QueueUrl=self.queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )
        for failed in answer.get("Failed") or []:
            # Recorded already: when it comes back it is a duplicate, and its next delete is tried then.
            logger.warning("events queue: delete failed (%s): %s", failed.get("Code"), failed.get("Message"))

    def queue_empty(self) -> bool:
        """Whether SQS reports no message in the queue: none visible, none in flight, none delayed."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        answer = self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)
        attributes = answer.get("Attributes") or {}
        return all(int(attributes.get(name) or 0) == 0 for name in names)

    # -- loops ----------------------------------------------------------------------------------------------

    def drain(self, on_batch: Callable[[PollResult], None] | None = None) -> PollResult:
        """Receive until the queue is empty (messages in flight elsewhere, or left by a killed poller, are
        waited for: they come back when their visibility timeout ends). Errors are raised."""
        total = PollResult()
        while True:
            result = self.receive()
            total.add(result)
            if on_batch is not None and result.messages:
                on_batch(result)
            if not result.messages and self.queue_empty():
                return total

    def run(self, stopping: threading.Event, on_batch: Callable[[PollResult], None] | None = None) -> None:
        """Poll until ``stopping`` is set, backing off after errors."""
        delay = BACKOFF_FIRST
        while not stopping.is_set():
            try:
                result = self.receive(stopping)
            except Exception as exc:  # SQS unreachable or refusing, the database busy past its timeout, ...
                logger.warning("events queue: %s; trying again in %.0f s", exc, delay)
                if stopping.wait(delay):
                    return
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            delay = BACKOFF_FIRST
            if on_batch is not None and result.messages:
                on_batch(result)

    # -- background work hooks (services.py) ----------------------------------------------------------------

    def start(self) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self.run, args=(self._stopping,), name="sescontacts-events-queue", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop polling. Waits for messages being handled, not for a long poll in progress: its answer, if any,
        is left in the queue."""
        self._stopping.set()
        with self._busy:
            pass
        self._thread = None
