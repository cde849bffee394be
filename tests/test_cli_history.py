"""``sescontacts history``: one contact's or a list's changes, filtered, as a table or JSON lines."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from sescontacts.cli import main
from sescontacts.cli.history import when
from sescontacts.history import Actor, acting_as
from sescontacts.model import Contact
from sescontacts.services import Services
from sescontacts.settings import Settings

JSON_KEYS = ["id", "list", "email", "at", "op", "actor", "who", "before", "after", "attribute_diff", "created"]


def run(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["history", *args, "--data-dir", str(data_dir)], catch_exceptions=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Ann created by alice in the console, edited through the API, deleted by a job bob started; Bo by alice."""
    services = Services.open(Settings(data_dir=tmp_path))
    services.ensure_default_list()
    store, name = services.store, services.settings.contact_list
    try:
        with acting_as(Actor("console", "alice")):
            store.create_contact(name, Contact("ann@example.com", attributes_data='{"a": 1, "b": "x"}'))
        with acting_as(Actor("api", "AKIAEXAMPLE")):
            store.update_contact(
                name, Contact("ann@example.com", unsubscribe_all=True, attributes_data='{"a": 2, "c": true}')
            )
        with acting_as(Actor("job", "bob", "job-1")):
            store.delete_contact(name, "ann@example.com")
        with acting_as(Actor("console", "alice")):
            store.create_contact(name, Contact("bo@example.com"))
    finally:
        services.close()
    return tmp_path


def test_a_contacts_history_as_a_table_newest_first_with_attribute_diffs(data_dir: Path) -> None:
    result = run(data_dir, "ann@example.com")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    heads = [line.split("  ", 1)[1].split() for line in lines if not line.startswith("    ")]
    assert heads == [
        ["deleted", "job", "job-1", "(bob)", "ann@example.com"],
        ["updated", "api", "AKIAEXAMPLE", "ann@example.com"],
        ["created", "console", "alice", "ann@example.com"],
    ]
    assert "    attributes.a: 1 -> 2" in lines and "    attributes.b: x -> (none)" in lines
    assert "    attributes.c: (none) -> true" in lines and "    unsubscribe_all: false -> true" in lines


def test_the_lists_history_filtered_as_json_lines(data_dir: Path) -> None:
    everything = [orjson.loads(line) for line in run(data_dir, "--format", "json").stdout.splitlines()]
    assert [(c["op"], c["email"]) for c in everything] == [
        ("created", "bo@example.com"),
        ("deleted", "ann@example.com"),
        ("updated", "ann@example.com"),
        ("created", "ann@example.com"),
    ]
    assert all(list(c) == JSON_KEYS for c in everything)
    updated = everything[2]
    assert updated["actor"] == {"kind": "api", "name": "AKIAEXAMPLE", "job": ""} and updated["who"] == "api AKIAEXAMPLE"
    assert updated["attribute_diff"] == [
        {"key": "a", "before": "1", "after": "2"},
        {"key": "b", "before": "x", "after": None},
        {"key": "c", "before": None, "after": "true"},
    ]
    assert everything[1]["created"] == everything[3]["at"] and everything[1]["before"]["unsubscribe_all"] is True

    def emails(*args: str) -> list[tuple[str, str]]:
        lines = run(data_dir, "--format", "json", *args).stdout.splitlines()
        return [(c["op"], c["email"]) for c in map(orjson.loads, lines)]

    assert emails("--who", "console:alice") == [("created", "bo@example.com"), ("created", "ann@example.com")]
    assert emails("--who", "job") == emails("--job", "job-1") == [("deleted", "ann@example.com")]
    assert emails("--what", "updated") == [("updated", "ann@example.com")]
    assert emails("--limit", "1") == [("created", "bo@example.com")]
    assert len(emails("--since", "1h", "--until", "2999-01-01")) == 4
    assert emails("--until", "2000-01-01") == [] and emails("--since", "2999-01-01T00:00Z") == []
    assert run(data_dir, "--who", "cli").stdout == "no changes recorded\n"


def test_an_unknown_list_is_an_error_not_no_changes(data_dir: Path) -> None:
    result = CliRunner().invoke(main, ["history", "--list", "nosuch", "--data-dir", str(data_dir)])
    assert result.exit_code != 0
    assert "List with name: nosuch doesn't exist." in result.output
    assert "no changes recorded" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "Error: --since: 'yesterday': expected an ISO date or time"),
        (["--until", "7x"], "Error: --until: '7x': expected an ISO date or time"),
        (["--who", "robot:x"], "Error: --who: 'robot:x': expected KIND or KIND:NAME, KIND one of console, api"),
        (["--what", "renamed"], "Error: --what: 'renamed' is not one of 'created', 'updated', 'deleted'."),
        (["--limit", "0"], "Error: --limit: 0 is not in the range x>=1."),
        (["--list", "no such"], "Error: --list / SESCONTACTS_CONTACT_LIST: 'no such' is not a contact list name"),
    ],
)
def test_bad_values_name_the_option(data_dir: Path, args: list[str], message: str) -> None:
    result = run(data_dir, *args)
    assert result.exit_code == 2 and result.stderr.startswith(message), result.stderr


def test_times_iso_local_utc_and_relative() -> None:
    assert when("7d", now=1_000_000.0) == 1_000_000.0 - 7 * 86_400
    assert when("24h", now=100_000.0) == 100_000.0 - 86_400
    assert when("2026-11-30T00:00Z") == 1_795_996_800.0
    assert when("2026-11-30T01:00+01:00") == 1_795_996_800.0
