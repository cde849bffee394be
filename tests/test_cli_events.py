"""``sescontacts events import`` and ``sescontacts events rules``: what a user sees on the shell."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner, Result

from sescontacts.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "ses-events"


def run(data_dir: Path, *args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "--data-dir", str(data_dir)], input=stdin, catch_exceptions=False)


def ndjson(*names: str) -> str:
    """The fixtures as Firehose writes them: one JSON object a line."""
    return "".join(json.dumps(json.loads((FIXTURES / name).read_text())) + "\n" for name in names)


def query(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(data_dir / "sescontacts.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


ALL = (
    "bounce-event.json", "complaint-event.json", "delivery-event.json", "send-event.json", "open-event.json",
    "bounce-notification.json", "complaint-notification.json", "eventbridge-bounce.json", "sns-complaint.json",
)  # fmt: skip


def test_import_records_every_shape_and_says_what_it_did(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert run(data, "import", "-", stdin=b"emailAddress\ngone@example.com\nangry@example.com\n").exit_code == 0
    source = tmp_path / "events.ndjson"
    source.write_text(ndjson(*ALL))
    result = run(data, "events", "import", str(source))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{source}: 7 bounces and complaints recorded, 3 sends and deliveries counted, 0 duplicates, "
        "1 skipped (Open 1), 0 bad lines; contacts unsubscribed 2, deleted 0\n"
    )
    assert query(data, "SELECT email, unsubscribe_all FROM contacts ORDER BY email") == [
        ("angry@example.com", 1), ("gone@example.com", 1),
    ]  # fmt: skip
    again = run(data, "events", "import", str(source))
    assert "0 bounces and complaints recorded, 0 sends and deliveries counted, 10 duplicates" in again.stdout
    assert query(data, "SELECT count(*) FROM delivery_events") == [(7,)]


def test_bad_lines_are_named_and_the_good_ones_recorded(tmp_path: Path) -> None:
    good = ndjson("bounce-event.json", "complaint-event.json").splitlines()
    broken = json.loads((FIXTURES / "bounce-notification.json").read_text())
    del broken["bounce"]["bouncedRecipients"][0]["emailAddress"]
    source = tmp_path / "events.ndjson.gz"
    with gzip.open(source, "wt") as out:
        out.write("\n".join([good[0], '{"eventType": "Bounce"', "", json.dumps(broken), good[1], "[]"]) + "\n")
    result = run(tmp_path / "d", "events", "import", str(source))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{source}:2: not JSON (unexpected end of data: line 1 column 23 (char 22))",
        f"{source}:4: bounce.bouncedRecipients[0].emailAddress: missing",
        f"{source}:6: expected a JSON object, got an array",
    ]
    assert "3 recorded" not in result.stdout and "3 bounces and complaints recorded" in result.stdout
    assert "3 bad lines" in result.stdout


def test_a_missing_file_is_a_file_level_error(tmp_path: Path) -> None:
    result = run(tmp_path / "d", "events", "import", str(tmp_path / "nope.ndjson"))
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope.ndjson'}: No such file or directory\n"


def test_rules_are_shown_and_set(tmp_path: Path) -> None:
    data = tmp_path / "d"
    shown = run(data, "events", "rules")
    assert shown.stdout == (
        "every list (built-in defaults): permanent bounce: unsubscribe; complaint: unsubscribe; "
        "transient bounces: counted only\n"
    )
    changed = run(
        data, "events", "rules", "--list", "news", "--on-complaint", "mark",
        "--on-transient", "unsubscribe", "--transient-limit", "3", "--transient-window-days", "7",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    assert changed.stdout == (
        "news: permanent bounce: unsubscribe; complaint: mark; transient bounces: unsubscribe after 3 within 7 days\n"
    )
    refused = run(data, "events", "rules", "--on-transient", "delete")
    assert refused.exit_code == 1
    assert "on-transient needs a transient-limit of 1 or more" in refused.stderr
    listed = run(data, "events", "rules").stdout.splitlines()
    assert listed[1].startswith("news: permanent bounce: unsubscribe; complaint: mark")
    off = run(data, "events", "rules", "--list", "news", "--on-transient", "off")
    assert off.stdout.endswith("transient bounces: counted only\n")
