"""``sescontacts events``: SES bounce and complaint events from a file or an SQS queue, and each list's rules.

``events import FILE`` reads SES event JSON one object per line (as Firehose writes to S3; ``.gz`` too, or
``-`` for standard input), in constant memory, committing every few thousand events. A line that cannot be
read is reported as ``FILE:LINE: reason`` and the others are recorded: exit status 1 when any line was bad, 0
otherwise (cli/failures.py has the rule).
"""

from __future__ import annotations

import gzip
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, cast

import click

from .failures import EXIT_OK, EXIT_REFUSED, ConfigError, ReportedError, talking_to_ses
from .options import (
    Number,
    WholeNumber,
    checked,
    data_dir_option,
    data_options,
    open_services,
    queue_url,
    settings_from,
)
from .ses import backend_options

# Events per transaction: large enough that commits cost little, small enough to keep memory flat.
IMPORT_BATCH = 5_000


def register(main: click.Group) -> None:
    main.add_command(events)


def events_queue_option(func: Any) -> Any:
    """``serve --events-queue-url``: the queue the server polls as background work."""
    return click.option(
        "--events-queue-url",
        envvar="SESCONTACTS_EVENTS_QUEUE_URL",
        callback=checked(queue_url),
        help="SQS queue of SES bounce and complaint events (SES -> SNS -> SQS, or EventBridge -> SQS) to poll; "
        "one server process polls it. Needs sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes.",
    )(func)


@click.group()
def events() -> None:
    """SES bounce and complaint events: import a file, poll an SQS queue, set what they do to contacts."""


def _open(options: dict[str, Any]) -> Any:
    services = open_services(settings_from(**options))
    try:
        with talking_to_ses():
            services.ensure_default_list()
    except ConfigError:
        services.close()
        raise
    return services


@contextmanager
def _lines(file: str) -> Iterator[IO[bytes]]:
    if file == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = cast("IO[bytes]", gzip.open(file, "rb") if file.endswith(".gz") else open(file, "rb"))  # noqa: SIM115
    except OSError as exc:
        raise ReportedError(f"{file}: {exc.strerror or exc}") from None
    with stream:
        yield stream


def _summary(recorded: int, counted: int, duplicates: int, skipped: Counter[str], errors: int) -> str:
    kinds = ", ".join(f"{name} {count:,}" for name, count in sorted(skipped.items()))
    return (
        f"{recorded:,} bounces and complaints recorded, {counted:,} sends and deliveries counted, "
        f"{duplicates:,} duplicates, {sum(skipped.values()):,} skipped{f' ({kinds})' if kinds else ''}, "
        f"{errors:,} bad lines"
    )


def _waiting(count: int) -> str:
    if not count:
        return ""
    return f"; {count:,} recorded events wait for their actions (SES refused them; the next import or poll retries)"


@events.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=str))
@data_options
@backend_options
def import_events(file: str, **options: Any) -> None:
    """Record SES event JSON from FILE (one object per line, as Firehose or S3 archives hold; .gz read too; - for
    standard input), then apply each list's rules. Bad lines are reported as FILE:LINE and the rest recorded."""
    from ..events.ingest import IngestResult
    from ..events.parse import EventParseError, parse_text

    name = "<stdin>" if file == "-" else file
    services = _open(options)
    total = IngestResult()
    skipped: Counter[str] = Counter()
    errors = 0
    started = time.monotonic()
    tty = sys.stderr.isatty()
    try:
        with _lines(file) as stream:
            batch: list[Any] = []
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    parsed = parse_text(line.rstrip(b"\r\n"))
                except EventParseError as exc:
                    errors += 1
                    click.echo(f"{name}:{number}: {exc}", err=True)
                    continue
                batch.extend(parsed.events)
                if parsed.skipped:
                    skipped[parsed.skipped] += 1
                if len(batch) >= IMPORT_BATCH:
                    total.add(services.events.ingest(batch, source="file"))
                    batch = []
                    if tty:
                        rate = number / max(time.monotonic() - started, 1e-6)
                        click.echo(f"\r{number:,} lines  {rate:,.0f} lines/s   ", err=True, nl=False)
            total.add(services.events.ingest(batch, source="file"))
            if tty:
                click.echo("", err=True)
    finally:
        services.close()
    click.echo(
        f"{name}: {_summary(total.recorded, total.counted, total.duplicates, skipped, errors)}; "
        f"contacts unsubscribed {total.unsubscribed:,}, deleted {total.deleted:,}{_waiting(total.waiting)}"
    )
    sys.exit(EXIT_REFUSED if errors else EXIT_OK)


@events.command("poll")
@click.option(
    "--queue-url",
    envvar="SESCONTACTS_EVENTS_QUEUE_URL",
    required=True,
    callback=checked(queue_url),
    help="SQS queue of SES events (its URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/ses-events).",
)
@click.option("--once", is_flag=True, help="Stop when the queue is empty (else poll until interrupted).")
@click.option(
    "--wait-seconds",
    type=WholeNumber(0, 20),
    default=20,
    show_default=True,
    help="Long-poll wait of each receive, in seconds (SQS allows up to 20).",
)
@data_options
@backend_options
def poll(queue_url: str, once: bool, wait_seconds: int, **options: Any) -> None:
    """Poll an SQS queue of SES events: each message is recorded, acted on by the rules, then deleted (never
    before); unreadable messages are kept in the database with the reason, then deleted."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ..events.sqs import PollResult, open_queue

    settings = settings_from(**options)
    services = _open(options)
    total = PollResult()

    def progress(result: PollResult) -> None:
        total.add(result)
        ingest = total.ingest
        click.echo(
            f"{total.messages:,} messages: {ingest.recorded:,} recorded, {ingest.duplicates:,} duplicates, "
            f"{total.poison:,} unreadable",
            err=True,
        )

    try:
        queue = open_queue(services.events, settings, queue_url, wait_seconds=wait_seconds)
        if once:
            try:
                queue.drain(on_batch=progress)
            except (BotoCoreError, ClientError) as exc:  # what was received before is recorded and deleted
                raise ConfigError(f"{queue_url}: {exc}") from None
        else:
            stopping = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stopping.set())
            with suppress(KeyboardInterrupt):
                queue.run(stopping, on_batch=progress)
    finally:
        services.close()
    ingest = total.ingest
    click.echo(
        f"{queue_url}: {total.messages:,} messages; "
        f"{_summary(ingest.recorded, ingest.counted, ingest.duplicates, total.skipped, total.poison)}; "
        f"contacts unsubscribed {ingest.unsubscribed:,}, deleted {ingest.deleted:,}{_waiting(ingest.waiting)}"
    )


@events.command("unreadable")
@click.option("--limit", type=WholeNumber(min=1), default=100, show_default=True, help="How many, newest first.")
@data_dir_option
def unreadable(limit: int, data_dir: Path) -> None:
    """Print the queue messages that could not be read (kept before they were deleted from the queue), newest
    first, one JSON object a line: messageId, received (ISO time), source, reason and the body as received."""
    from datetime import UTC, datetime

    import orjson

    from ..events.log import EventLog

    with _database(data_dir) as db:
        for message_id, received, source, reason, body in EventLog(db).poison(limit=limit):
            when = datetime.fromtimestamp(received, UTC).isoformat(timespec="seconds")
            line = {"messageId": message_id, "received": when, "source": source, "reason": reason}
            click.echo(orjson.dumps({**line, "body": body}).decode())


@contextmanager
def _database(data_dir: Path) -> Iterator[Any]:
    """The data dir's database alone (these commands touch no contacts, so no backend is opened)."""
    from ..db import Database
    from ..schema import PRODUCT_SCHEMA
    from .options import data_dir_errors, prepare_data_dir

    settings = settings_from(data_dir=data_dir)
    prepare_data_dir(settings.data_dir)
    with data_dir_errors(settings.data_dir):
        db = Database(settings.database_path, PRODUCT_SCHEMA)
    try:
        yield db
    finally:
        db.close()


_ACTION = click.Choice(["unsubscribe", "mark", "delete"])


@events.command("rules")
@click.option("--list", "list_name", default=None, help="The list whose rules to show or set (default: all lists).")
@click.option("--on-permanent-bounce", type=_ACTION, help="What a permanent bounce does to the contact.")
@click.option("--on-complaint", type=_ACTION, help="What a complaint does to the contact.")
@click.option(
    "--on-transient",
    type=click.Choice(["unsubscribe", "mark", "delete", "off"]),
    help="What --transient-limit transient bounces within --transient-window-days do (off: only count them).",
)
@click.option("--transient-limit", type=WholeNumber(min=1), help="Transient bounces that make --on-transient act.")
@click.option(
    "--transient-window-days", type=Number(min=0, min_open=True), help="Days the transient bounces must fall within."
)
@data_dir_option
def rules(list_name: str | None, data_dir: Path, **changes: Any) -> None:
    """Show the rules (no option) or change them, for one list (--list) or as the default of every list.
    Defaults: a permanent bounce or a complaint unsubscribes the contact from all topics; transient bounces
    are only counted. The reason and time of each action are kept (the contact's event history)."""
    from ..events.rules import ALL_LISTS, DEFAULT_RULES, RuleBook

    with _database(data_dir) as db:
        book = RuleBook(db)
        target = list_name or ALL_LISTS
        given = {k: v for k, v in changes.items() if v is not None}
        if given:
            if given.get("on_transient") == "off":
                given.update(on_transient=None, transient_limit=None, transient_window_days=None)
            book.update(target, **given)
        stored = book.all()
        shown = {target: book.for_list(target)} if list_name or given else {ALL_LISTS: book.for_list(ALL_LISTS)}
        if not (list_name or given):
            shown.update({k: v for k, v in stored.items() if k != ALL_LISTS})
        for name, rule in shown.items():
            origin = "" if name in stored else " (built-in defaults)" if rule == DEFAULT_RULES else " (from defaults)"
            click.echo(f"{name or 'every list'}{origin}: {rule.describe()}")
