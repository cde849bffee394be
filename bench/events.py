"""Ingesting SES events from a file: ``sescontacts events import`` next to its floor, measured in the same run.

Generates 100,000 SES event records, one JSON object a line as Firehose writes them to S3, shaped as SES's
examples (headers and tags in ``mail``): 45% Send, 40% Delivery, 8% permanent and 4% transient bounces, 1%
complaints, 2% Open (skipped). The list holds every address, so each permanent bounce and complaint
unsubscribes a contact. Then measures, in this process:

- the floor: reading the file line by line and ``orjson.loads`` of each line, nothing else;
- ``sescontacts events import`` of the file into a fresh data dir (parse, record with marks and daily counts,
  the rules' unsubscribes, 5,000 events a transaction);
- the same file again (every event a duplicate: the idempotence check's cost).

``python -m bench events``; ``SESCONTACTS_BENCH_EVENTS`` changes the size.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

EVENTS = int(os.environ.get("SESCONTACTS_BENCH_EVENTS", "100000"))


def _mail(message_id: str, email: str, when: str) -> dict[str, object]:
    return {
        "timestamp": when,
        "source": "News <news@example.org>",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/example.org",
        "sendingAccountId": "123456789012",
        "messageId": message_id,
        "destination": [email],
        "headersTruncated": False,
        "headers": [{"name": "From", "value": "News <news@example.org>"}, {"name": "To", "value": email}],
        "commonHeaders": {"from": ["News <news@example.org>"], "to": [email], "subject": "This week"},
        "tags": {"ses:configuration-set": ["newsletter"], "ses:from-domain": ["example.org"]},
    }


def generate(path: Path, events: int, seed: int = 11) -> list[str]:
    """Write the file; return the addresses (the list's contacts)."""
    rnd = random.Random(seed)
    addresses = [f"reader{n}@example.com" for n in range(max(events // 2, 1))]
    with open(path, "w", encoding="utf-8") as out:
        for n in range(events):
            email = rnd.choice(addresses)
            day = 1 + n * 28 // max(events, 1)
            when = f"2026-11-{day:02d}T{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:00.000Z"
            message_id = f"0100018c-{n:08x}-000000"
            r = rnd.random()
            record: dict[str, object] = {"mail": _mail(message_id, email, when)}
            if r < 0.45:
                record.update(eventType="Send", send={})
            elif r < 0.85:
                record.update(
                    eventType="Delivery",
                    delivery={"timestamp": when, "processingTimeMillis": 812, "recipients": [email],
                              "smtpResponse": "250 2.0.0 OK", "reportingMTA": "a8-1.smtp-out.amazonses.com"},
                )  # fmt: skip
            elif r < 0.97:
                permanent = r < 0.93
                record.update(
                    eventType="Bounce",
                    bounce={
                        "bounceType": "Permanent" if permanent else "Transient",
                        "bounceSubType": "General" if permanent else "MailboxFull",
                        "bouncedRecipients": [{"emailAddress": email, "action": "failed",
                                               "status": "5.1.1" if permanent else "4.2.2",
                                               "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
                        "timestamp": when, "feedbackId": f"fb-{n:08x}", "reportingMTA": "dsn; mx.example.com",
                    },
                )  # fmt: skip
            elif r < 0.98:
                record.update(
                    eventType="Complaint",
                    complaint={"complainedRecipients": [{"emailAddress": email}], "timestamp": when,
                               "feedbackId": f"cf-{n:08x}", "complaintFeedbackType": "abuse"},
                )  # fmt: skip
            else:
                record.update(eventType="Open", open={"timestamp": when, "ipAddress": "192.0.2.1", "userAgent": "x"})
            out.write(json.dumps(record) + "\n")
    return addresses


def _timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def run(report: Callable[[str], None]) -> None:
    import orjson
    from click.testing import CliRunner

    from sescontacts.cli import main
    from sescontacts.model import ContactPatch, UpsertPolicy
    from sescontacts.services import Services
    from sescontacts.settings import Settings

    with tempfile.TemporaryDirectory(prefix="sescontacts-bench-events-") as folder:
        root = Path(folder)
        path = root / "events.ndjson"
        addresses = generate(path, EVENTS)
        size = path.stat().st_size
        data = root / "data"
        services = Services.open(Settings(data_dir=data))
        services.ensure_default_list()
        services.store.upsert_contacts("contacts", [ContactPatch(a) for a in addresses], UpsertPolicy())
        services.close()

        def floor() -> None:
            with open(path, "rb") as lines:
                for line in lines:
                    orjson.loads(line)

        def ingest() -> None:
            result = CliRunner().invoke(main, ["events", "import", str(path), "--data-dir", str(data)])
            assert result.exit_code == 0, result.output
            report(f"    {result.stdout.strip().split(': ', 1)[1]}")

        report(f"{EVENTS:,} SES event records, {size / 1e6:.1f} MB (Send/Delivery 85%, bounces 12%, complaints 1%)")
        floor_s = min(_timed(floor) for _ in range(3))
        report(f"- floor, reading the lines + orjson.loads: {floor_s:.2f} s ({EVENTS / floor_s:,.0f} events/s)")
        report("- sescontacts events import, fresh data dir:")
        first = _timed(ingest)
        report(f"  {first:.2f} s, {EVENTS / first:,.0f} events/s, {first / floor_s:.1f}x the floor")
        report("- the same file again (all duplicates):")
        again = _timed(ingest)
        report(f"  {again:.2f} s, {EVENTS / again:,.0f} events/s, {again / floor_s:.1f}x the floor")
