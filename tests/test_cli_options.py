"""Configuration errors are one line naming the setting (flag and environment variable) and what it accepts,
with exit status 2 and no traceback; every command that opens the data directory makes it private first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sescontacts.cli import main
from tests.support.modes import loose, mode, usual_umask
from tests.support.server import free_port

FIXTURES = Path(__file__).parent / "fixtures"
PAGE_EXAMPLE = str(FIXTURES / "page-example.csv")


def run(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> Result:
    clean = {k: None for k in os.environ if k.startswith(("SESCONTACTS_", "AWS_"))}
    return CliRunner().invoke(main, list(args), env={**clean, **(env or {})}, input=stdin, catch_exceptions=False)


def assert_one_line(result: Result, *expected: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for text in expected:
        assert text in lines[0]
    return lines[0]


SETTING_ERRORS = [
    (["--region", "bad region!"], {}, "--region / SESCONTACTS_REGION: 'bad region!' is not an AWS region name"),
    ([], {"SESCONTACTS_REGION": "Mars"}, "--region / SESCONTACTS_REGION: 'Mars' is not an AWS region name"),
    (["--contact-list", "a/b"], {}, "--contact-list / SESCONTACTS_CONTACT_LIST: 'a/b' is not a contact list name"),
    (["--max-contact-lists", "many"], {}, "--max-contact-lists / SESCONTACTS_MAX_CONTACT_LISTS: 'many' is not a"),
    (["--backend", "cloud"], {}, "--backend / SESCONTACTS_BACKEND: 'cloud' is not one of 'local', 'ses'."),
    (["--ses-rate", "0"], {}, "--ses-rate / SESCONTACTS_SES_RATE: 0.0 is not in the range x>0."),
    ([], {"SESCONTACTS_SES_RATE": "fast"}, "--ses-rate / SESCONTACTS_SES_RATE: 'fast' is not a valid number."),
    (["--ses-burst", "0"], {}, "--ses-burst / SESCONTACTS_SES_BURST: 0 is not in the range x>=1."),
    (["--sync-interval", "-5"], {}, "--sync-interval / SESCONTACTS_SYNC_INTERVAL: -5.0 is not in the range x>0."),
    (["--role-arn", "admin"], {}, "--role-arn / SESCONTACTS_ROLE_ARN: 'admin': expected an IAM role ARN like"),
    (["--endpoint-url", "localhost:9"], {}, "--endpoint-url / SESCONTACTS_SES_ENDPOINT_URL: 'localhost:9': expected"),
    (["--s3-endpoint-url", "ftp://x"], {}, "--s3-endpoint-url / SESCONTACTS_S3_ENDPOINT_URL: 'ftp://x': expected an"),
    (["--s3-import-location", "bucket/x"], {}, "--s3-import-location / SESCONTACTS_S3_IMPORT_LOCATION: 'bucket/x': "),
]


@pytest.mark.parametrize(("args", "env", "message"), SETTING_ERRORS)
def test_a_bad_setting_of_import_is_one_line_naming_flag_and_variable(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = run("import", PAGE_EXAMPLE, "--data-dir", str(tmp_path / "d"), *args, env=env)
    assert_one_line(result, message)
    assert not (tmp_path / "d").exists()  # refused before anything was created


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "0"], {}, "--port / SESCONTACTS_PORT: 0 is not in the range 1<=x<=65535."),
        ([], {"SESCONTACTS_PORT": "http"}, "--port / SESCONTACTS_PORT: 'http' is not a valid integer."),
        (["--max-upload-mb", "0"], {}, "--max-upload-mb / SESCONTACTS_MAX_UPLOAD_MB: 0 is not in the range x>=1."),
        (["--throttle", "fast"], {}, "--throttle / SESCONTACTS_THROTTLE: 'fast': expected RATE[:BURST]"),
        ([], {"SESCONTACTS_THROTTLE": "5:0"}, "--throttle / SESCONTACTS_THROTTLE: '5:0': expected RATE[:BURST]"),
        ([], {"SESCONTACTS_ADMIN_PASSWORD": "short"}, "SESCONTACTS_ADMIN_PASSWORD: The password must be at least 8"),
        (["--host", "192.0.2.1"], {}, "--host / SESCONTACTS_HOST: cannot listen on '192.0.2.1'"),
        (
            [],
            {"SESCONTACTS_HEADER_TIMEOUT": "soon"},
            "--header-timeout / SESCONTACTS_HEADER_TIMEOUT: 'soon' is not a valid number.",
        ),
        (["--allowed-hosts", "a b"], {}, "--allowed-hosts / SESCONTACTS_ALLOWED_HOSTS: 'a b' is not a host name"),
        (
            ["--forwarded-allow-ips", "proxy"],
            {},
            "--forwarded-allow-ips / SESCONTACTS_FORWARDED_ALLOW_IPS: 'proxy' is not",
        ),
        (
            ["--history-retention-days", "-1"],
            {},
            "--history-retention-days / SESCONTACTS_HISTORY_RETENTION_DAYS: -1 is not in the range x>=0.",
        ),
        (
            [],
            {"SESCONTACTS_HISTORY_RETENTION_DAYS": "forever"},
            "--history-retention-days / SESCONTACTS_HISTORY_RETENTION_DAYS: 'forever' is not a valid integer.",
        ),
        (
            [],
            {"SESCONTACTS_SES_SEMANTICS": "real"},
            "--ses-semantics / SESCONTACTS_SES_SEMANTICS: 'real' is not one of 'observed', 'documented'.",
        ),
    ],
)
def test_a_bad_setting_of_serve_is_one_line_before_anything_starts(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = run("serve", "--data-dir", str(tmp_path / "d"), *args, env=env)
    assert_one_line(result, message)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "--limit", "0"],
        ["iam-policy", "--account", "12345"],
        ["iam-policy", "--s3-import-location", "imports"],
        ["doctor", "--region", "moon-1"],
    ],
)
def test_other_commands_options_are_checked_the_same_way(tmp_path: Path, args: list[str]) -> None:
    assert_one_line(run(*args, "--data-dir", str(tmp_path / "d")), args[1])


@pytest.mark.parametrize(
    "command",
    [["serve"], ["import", PAGE_EXAMPLE], ["export"], ["jobs"], ["credentials"], ["users", "list"]],
)
def test_a_data_dir_that_is_a_file_or_holds_no_database_is_one_line(tmp_path: Path, command: list[str]) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert_one_line(run(*command, "--data-dir", str(a_file)), "--data-dir / SESCONTACTS_DATA_DIR:", "is a file")
    if command[0] in ("serve", "credentials"):
        return  # serve checks the port before the data dir; credentials does not open the database
    broken = tmp_path / "broken"
    broken.mkdir(mode=0o700)
    (broken / "sescontacts.db").write_text("this is not a database" * 100)
    os.chmod(broken / "sescontacts.db", 0o600)
    line = assert_one_line(run(*command, "--data-dir", str(broken)), "--data-dir / SESCONTACTS_DATA_DIR: cannot open")
    assert line.endswith("sescontacts.db: file is not a database")


@pytest.mark.parametrize("command", [["serve"], ["export"], ["credentials"], ["users", "list"]])
def test_an_empty_data_dir_is_refused_rather_than_taken_as_the_current_folder(
    tmp_path: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    os.chmod(tmp_path, 0o755)
    line = assert_one_line(run(*command, "--data-dir", ""), "--data-dir / SESCONTACTS_DATA_DIR:")
    assert "an empty path" in line
    assert oct(tmp_path.stat().st_mode & 0o777) == "0o755" and list(tmp_path.iterdir()) == []


def test_a_shared_folder_is_refused_as_data_dir(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o1777)
    try:
        result = run("users", "list", "--data-dir", str(tmp_path))
    finally:
        os.chmod(tmp_path, 0o700)
    assert_one_line(result, "--data-dir / SESCONTACTS_DATA_DIR:", "is a folder shared by all users")


def test_no_aws_profile_of_that_name_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = us-east-1\n")
    result = run(
        "import", PAGE_EXAMPLE, "--data-dir", str(tmp_path / "d"), "--backend", "ses", "--profile", "nope",
        env={"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(config)},
    )  # fmt: skip
    assert_one_line(result, "--profile / SESCONTACTS_AWS_PROFILE: The config profile (nope) could not be found")


# -- the data directory's modes --------------------------------------------------------------------------------


def _loose_data_dir(data: Path) -> None:
    """A data directory as an older version left it under umask 022: everything readable by everyone."""
    with usual_umask():
        result = run("import", PAGE_EXAMPLE, "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    (data / "uploads" / "0123").mkdir(parents=True, exist_ok=True)
    (data / "uploads" / "0123" / "people.csv").write_text("emailAddress\n")
    for path in [data, *data.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


@pytest.mark.parametrize(
    "command", [["import", PAGE_EXAMPLE], ["export"], ["jobs"], ["credentials"], ["users", "list"]]
)
def test_every_command_tightens_a_loose_data_dir_with_one_notice(tmp_path: Path, command: list[str]) -> None:
    data = tmp_path / "data"
    _loose_data_dir(data)
    before = loose(data)
    assert {".", "sescontacts.db", "credentials.json", "uploads/0123/people.csv"} <= set(before)
    result = run(*command, "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    notice = f"sescontacts: tightened permissions on {len(before)} files and folders under {data} "
    assert [line for line in result.stderr.splitlines() if line.startswith("sescontacts:")] == [
        notice + "(they were readable by other users)"
    ]
    assert loose(data) == {} and mode(data) == 0o700 and mode(data / "sescontacts.db") == 0o600
    again = run(*command, "--data-dir", str(data))
    assert "tightened" not in again.stderr


def test_what_the_cli_creates_is_private_under_the_usual_umask_which_it_leaves_as_it_was(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = tmp_path / "in.csv"
    source.write_text("emailAddress\nok@example.com\nnope\n")
    with usual_umask():
        assert run("import", str(source), "--data-dir", str(data)).exit_code == 1
        assert run("import", "-", "--data-dir", str(data), stdin=b"emailAddress\nin@example.com\n").exit_code == 0
        assert run("users", "list", "--data-dir", str(data)).exit_code == 0
        assert os.umask(0o022) == 0o022  # the CLI's own 0o077 umask was restored when the command ended
    assert [p.name.split(".", 1)[1] for p in (data / "jobs").iterdir()] == ["rejects.csv"]
    assert loose(data) == {}


@pytest.mark.parametrize("content", ["", '{"access_key_id": "AKIA', "[]", '{"access_key_id": 5}', "\xff"])
@pytest.mark.parametrize("command", [["credentials"], ["export"], ["serve"]])
def test_a_damaged_credentials_file_is_one_line(tmp_path: Path, command: list[str], content: str) -> None:
    """credentials.json emptied by a full disk, truncated or hand-edited: one line naming the file and what to
    do, not a JSONDecodeError traceback (status 1)."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "credentials.json").write_bytes(content.encode("latin-1"))
    os.chmod(data / "credentials.json", 0o600)
    port = ["--port", str(free_port())] if command == ["serve"] else []
    line = assert_one_line(run(*command, "--data-dir", str(data), *port))
    assert f"{data / 'credentials.json'}" in line and "remove it" in line


def test_sync_without_aws_credentials_is_one_line(tmp_path: Path) -> None:
    """Like import and serve on the ses backend: what is missing and where to look, not a traceback."""
    empty = tmp_path / "aws-config"
    empty.write_text("")
    no_aws = {"AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty)}
    result = run("sync", "--data-dir", str(tmp_path / "d"), env={**no_aws, "AWS_EC2_METADATA_DISABLED": "true"})
    assert_one_line(result, "No AWS credentials found", "sescontacts doctor")
