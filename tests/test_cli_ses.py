"""``sescontacts doctor``, ``iam-policy`` and ``sync`` against a running ``sescontacts serve`` as the SES endpoint."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from sescontacts.cli import main
from sescontacts.cli.ses import FEATURE_ACTIONS

from .support.server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, RunningServer, run_server
from .support.ses import MOTO_KEY, boto_session, clean_env, run_moto


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    clean_env()
    with run_server(tmp_path_factory.mktemp("cli-ses-server")) as running:
        yield running


def cli(
    *args: str,
    server: RunningServer | None = None,
    key: tuple[str, str] = (ACCESS_KEY_ID, SECRET_ACCESS_KEY),
    answer: str = "",
) -> Any:
    env = {
        "AWS_ACCESS_KEY_ID": key[0],
        "AWS_SECRET_ACCESS_KEY": key[1],
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    extra = ["--endpoint-url", server.url, "--ses-rate", "500"] if server else []
    return CliRunner().invoke(main, [*args, *extra], env=env, input=answer, catch_exceptions=False)


def test_doctor_all_good(server: RunningServer, tmp_path: Path) -> None:
    result = cli("doctor", "--data-dir", str(tmp_path), server=server)
    assert result.exit_code == 0, result.output
    assert "contact list 'contacts' exists" in result.output
    assert "ses:ListContacts allowed" in result.output
    assert "Everything sescontacts needs is in place." in result.output


def test_doctor_names_the_missing_list_and_the_existing_one(server: RunningServer, tmp_path: Path) -> None:
    result = cli("doctor", "--data-dir", str(tmp_path), "--contact-list", "other", server=server)
    assert result.exit_code == 1
    assert "use --contact-list contacts" in result.output


def test_doctor_offers_to_create_a_missing_list(server: RunningServer, tmp_path: Path) -> None:
    ses = boto3.client(
        "sesv2",
        region_name=REGION,
        endpoint_url=server.url,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    ses.delete_contact_list(ContactListName="contacts")
    try:
        declined = cli("doctor", "--data-dir", str(tmp_path), server=server, answer="n\n")
        assert declined.exit_code == 1 and "doctor --yes" in declined.output
        created = cli("doctor", "--data-dir", str(tmp_path), "--yes", server=server)
        assert created.exit_code == 0, created.output
        assert "created contact list 'contacts'" in created.output
    finally:
        if not ses.list_contact_lists()["ContactLists"]:
            ses.create_contact_list(ContactListName="contacts")


def test_doctor_explains_refused_credentials(server: RunningServer, tmp_path: Path) -> None:
    result = cli("doctor", "--data-dir", str(tmp_path), server=server, key=("AKIAWRONGWRONGWRONG1", "nope"))
    assert result.exit_code == 1
    assert "FAIL  SES refused the credentials" in result.output
    assert "sescontacts iam-policy" in result.output


def test_doctor_without_any_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true")
    env.pop("AWS_ACCESS_KEY_ID", None)
    done = subprocess.run(
        [sys.executable, "-m", "sescontacts", "doctor", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no AWS credentials found" in done.stdout


def test_iam_policy_is_least_privilege_json() -> None:
    result = CliRunner().invoke(main, ["iam-policy", "--region", "eu-west-1", "--account", "123456789012"])
    document = json.loads(result.output)
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert actions == {a for f in ("contacts", "lists", "suppression") for a in FEATURE_ACTIONS[f][1]}
    scoped = [s for s in document["Statement"] if "ses:GetContact" in s["Action"]]
    assert scoped[0]["Resource"] == "arn:aws:ses:eu-west-1:123456789012:contact-list/contacts"
    assert not any(a == "*" or a.endswith(":*") for a in actions)


def test_iam_policy_covers_the_suppression_list() -> None:
    """The mirror's walk (GetAccount, ListSuppressedDestinations) and the writes through to SES: account-level
    actions, with no resource ARN to scope them to."""
    document = json.loads(CliRunner().invoke(main, ["iam-policy"]).output)
    (statement,) = [s for s in document["Statement"] if s["Sid"] == "SuppressionList"]
    assert statement["Resource"] == "*"
    assert set(statement["Action"]) == {
        "ses:GetAccount",
        "ses:ListSuppressedDestinations",
        "ses:GetSuppressedDestination",
        "ses:PutSuppressedDestination",
        "ses:DeleteSuppressedDestination",
        "ses:PutAccountSuppressionAttributes",
    }
    only_contacts = CliRunner().invoke(main, ["iam-policy", "--feature", "contacts"])
    assert "SuppressedDestination" not in only_contacts.output


def test_iam_policy_for_imports_adds_import_jobs_and_the_bucket() -> None:
    result = CliRunner().invoke(main, ["iam-policy", "--s3-import-location", "s3://bucket/in/"])
    document = json.loads(result.stdout)
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert {"ses:CreateImportJob", "ses:GetImportJob", "s3:PutObject"} <= actions
    only_contacts = CliRunner().invoke(main, ["iam-policy", "--feature", "contacts"])
    assert "ses:CreateContactList" not in only_contacts.output


def test_sync_command_fills_the_mirror(server: RunningServer, tmp_path: Path) -> None:
    ses = boto3.client(
        "sesv2",
        region_name=REGION,
        endpoint_url=server.url,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    for i in range(3):
        ses.create_contact(ContactListName="contacts", EmailAddress=f"cli{i}@example.com")
    result = cli("sync", "--data-dir", str(tmp_path), server=server)
    assert result.exit_code == 0, result.output
    assert "contacts: 3 contacts, 3 fetched, 0 removed" in result.output
    assert "suppression list: 0 entries listed (full walk), 0 new or changed, 0 removed, 2 SES calls" in result.output


def test_sync_says_when_ses_refused_the_suppression_walk(tmp_path: Path) -> None:
    """moto has no suppression operations: the list is synced, and the command says what was not (status 1)."""
    clean_env()
    with run_moto() as moto_url:
        upstream = boto_session(MOTO_KEY).client("sesv2", endpoint_url=moto_url)  # type: ignore[attr-defined]
        upstream.create_contact_list(ContactListName="contacts")
        upstream.create_contact(ContactListName="contacts", EmailAddress="m@example.com")
        result = CliRunner().invoke(
            main,
            ["sync", "--data-dir", str(tmp_path), "--endpoint-url", moto_url, "--ses-rate", "500"],
            env={"AWS_ACCESS_KEY_ID": MOTO_KEY[0], "AWS_SECRET_ACCESS_KEY": MOTO_KEY[1]},
        )
    assert result.exit_code == 1, result.output
    assert "contacts: 1 contacts, 1 fetched, 0 removed" in result.output
    assert "Error: suppression list not synced: " in result.output


def test_import_command_on_the_ses_backend(server: RunningServer, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "emailAddress,attributesData\n" + "".join(f'imp{i}@example.com,"{{""i"": {i}}}"\n' for i in range(5))
    )
    result = cli("import", str(path), "--data-dir", str(tmp_path / "data"), "--backend", "ses", server=server)
    assert result.exit_code == 0, result.output
    ses = boto3.client(
        "sesv2",
        region_name=REGION,
        endpoint_url=server.url,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    assert ses.get_contact(ContactListName="contacts", EmailAddress="imp3@example.com")["AttributesData"] == '{"i":3}'


def test_permission_simulation_names_what_is_denied() -> None:
    from sescontacts.cli.ses import principal_arn, simulate

    class Fake:
        def __init__(self, denied: set[str]) -> None:
            self.denied = denied
            self.asked: dict[str, Any] = {}

        def client(self, name: str, **_: Any) -> Any:
            return self

        def get_caller_identity(self) -> dict[str, str]:
            return {"Arn": "arn:aws:sts::123456789012:assumed-role/Mailer/session-1", "Account": "123456789012"}

        def simulate_principal_policy(self, **params: Any) -> dict[str, Any]:
            self.asked = params
            return {
                "EvaluationResults": [
                    {"EvalActionName": a, "EvalDecision": "implicitDeny" if a in self.denied else "allowed"}
                    for a in params["ActionNames"]
                ]
            }

    fake = Fake({"ses:DeleteContact"})
    decisions = simulate(fake, "eu-west-1", "news", ["contacts"])
    assert isinstance(decisions, dict) and decisions["ses:DeleteContact"] == "implicitDeny"
    assert fake.asked["PolicySourceArn"] == "arn:aws:iam::123456789012:role/Mailer"
    assert fake.asked["ResourceArns"] == ["arn:aws:ses:eu-west-1:123456789012:contact-list/news"]
    assert principal_arn("arn:aws:iam::1:user/ann") == "arn:aws:iam::1:user/ann"


@pytest.fixture
def late_contact(server: RunningServer) -> Iterator[str]:
    """A contact another program adds to SES after our mirror was last synced (removed again afterwards)."""
    ses = server.sesv2()
    yield "late@example.com"
    with contextlib.suppress(ses.exceptions.NotFoundException):
        ses.delete_contact(ContactListName="contacts", EmailAddress="late@example.com")


def test_export_on_the_ses_backend_syncs_the_mirror_first(
    server: RunningServer, tmp_path: Path, late_contact: str
) -> None:
    data = str(tmp_path / "data")
    assert cli("sync", "--data-dir", data, server=server).exit_code == 0
    server.sesv2().create_contact(ContactListName="contacts", EmailAddress=late_contact)
    out = tmp_path / "out.csv"
    result = cli("export", "--data-dir", data, "--backend", "ses", "-o", str(out), server=server)
    assert result.exit_code == 0, result.output
    assert late_contact in out.read_text()
    assert "contacts: synced with SES just now" in result.stderr
    assert "warning" not in result.stderr


def test_export_without_sync_warns_how_old_the_mirror_is(
    server: RunningServer, tmp_path: Path, late_contact: str
) -> None:
    data = str(tmp_path / "data")
    never = cli(
        "export", "--data-dir", data, "--backend", "ses", "--no-sync", "-o", str(tmp_path / "a.csv"), server=server
    )
    assert never.exit_code == 0, never.output
    assert "warning: exported without syncing (--no-sync): the mirror of contacts was never synced" in never.stderr
    assert cli("sync", "--data-dir", data, server=server).exit_code == 0
    server.sesv2().create_contact(ContactListName="contacts", EmailAddress=late_contact)
    out = tmp_path / "b.csv"
    stale = cli("export", "--data-dir", data, "--backend", "ses", "--no-sync", "-o", str(out), server=server)
    assert stale.exit_code == 0, stale.output
    assert late_contact not in out.read_text()  # the user chose the mirror as it was, and is told how old
    line = next(line for line in stale.stderr.splitlines() if line.startswith("warning:"))
    assert re.fullmatch(
        r"warning: exported without syncing \(--no-sync\): the mirror of contacts was last synced "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago\); changes made in SES since are not in it",
        line,
    ), line


def test_export_on_the_ses_backend_never_creates_a_list(server: RunningServer, tmp_path: Path) -> None:
    ses = server.sesv2()
    ses.delete_contact_list(ContactListName="contacts")
    try:
        result = cli("export", "--data-dir", str(tmp_path / "data"), "--backend", "ses", server=server)
        assert result.exit_code == 2
        assert "List with name: contacts doesn't exist." in result.stderr
        assert ses.list_contact_lists()["ContactLists"] == []
    finally:
        if not ses.list_contact_lists()["ContactLists"]:
            ses.create_contact_list(ContactListName="contacts")
