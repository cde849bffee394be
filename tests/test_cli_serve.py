"""`sescontacts serve` as a new user meets it: the real command in a subprocess, on a free port.

The first start creates everything and says how to use it; the printed instructions are then followed
literally (the `eval "$(sescontacts credentials ...)"` line and the `aws sesv2` command) against the server.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.modes import loose, mode
from tests.support.server import free_port, sescontacts_command, wait_until_ready

AWS = Path(sys.executable).parent / "aws"
CONTACT = ["--email-address", "ann+news@example.com"]


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    port: int
    output: Path

    def banner(self) -> str:
        return self.output.read_text(errors="replace")


def _env(**extra: str) -> dict[str, str]:
    """The user's environment without any sescontacts or AWS settings: a fresh machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESCONTACTS_", "AWS_"))}
    env.update(extra)
    return env


@contextmanager
def serve(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Started]:
    port = free_port()
    output = cwd / f"serve-{port}.out"
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [*sescontacts_command(), "serve", "--port", str(port), *args],
            cwd=cwd,
            env=env or _env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process)
        yield Started(process, port, output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _stop(started: Started, sig: int) -> int:
    started.process.send_signal(sig)
    return started.process.wait(timeout=20)


def _credentials(cwd: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    result = subprocess.run(
        [*sescontacts_command(), "credentials", *args], cwd=cwd, env=env or _env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("export ") for line in lines), result.stdout
    return dict(line.removeprefix("export ").split("=", 1) for line in lines)


def _follow(cwd: Path, *lines: str) -> subprocess.CompletedProcess[str]:
    """Run printed instructions literally in a shell, with sescontacts and aws on the PATH as after install."""
    env = _env(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    env["PATH"] = f"{AWS.parent}{os.pathsep}{env.get('PATH', '')}"
    script = "set -e\n" + "\n".join(lines)
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_first_start_creates_everything_and_explains_how_to_use_it(tmp_path: Path) -> None:
    with serve(tmp_path) as started:
        data = tmp_path / "sescontacts-data"
        assert (data / "sescontacts.db").is_file()
        assert stat.S_IMODE((data / "credentials.json").stat().st_mode) == 0o600
        banner = started.banner()
        url = f"http://127.0.0.1:{started.port}"
        assert f"sescontacts is running at {url}" in banner
        assert re.search(r"region:\s+us-east-1", banner)
        assert re.search(r"contact list:\s+contacts\s+\(created now\)", banner)
        assert str(data.resolve()) in banner
        assert re.search(r"SES updates:\s+observed ", banner)  # the probe's reading unless --ses-semantics

        eval_line = next(line.strip() for line in banner.splitlines() if "sescontacts credentials" in line)
        assert eval_line == 'eval "$(sescontacts credentials)"'  # default data dir: no flag needed
        aws_line = next(line.strip() for line in banner.splitlines() if line.strip().startswith("aws sesv2"))
        assert f"--endpoint-url {url}" in aws_line and "--contact-list-name contacts" in aws_line
        result = _follow(tmp_path, eval_line, aws_line)
        assert result.returncode == 0, result.stderr
        assert '"Contacts": []' in result.stdout

        assert _stop(started, signal.SIGTERM) == 0


def test_restart_keeps_list_credentials_and_contacts(tmp_path: Path) -> None:
    env = _env(SESCONTACTS_DATA_DIR=str(tmp_path / "data"), SESCONTACTS_CONTACT_LIST="newsletter")
    with serve(tmp_path, "--region", "eu-west-1", env=env) as started:
        keys = _credentials(tmp_path, env=env)
        aws_env = _env(**keys, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        endpoint = ["--endpoint-url", f"http://127.0.0.1:{started.port}", "--region", "eu-west-1"]
        created = subprocess.run(
            [str(AWS), "sesv2", "create-contact", *endpoint, "--contact-list-name", "newsletter", *CONTACT],
            env=aws_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        banner = started.banner()
        assert "--data-dir" in banner and "newsletter  (created now)" in banner
        assert _stop(started, signal.SIGINT) == 0

    with serve(tmp_path, "--region", "eu-west-1", env=env) as started:
        assert "(created now)" not in started.banner()
        assert _credentials(tmp_path, env=env) == keys
        endpoint = ["--endpoint-url", f"http://127.0.0.1:{started.port}", "--region", "eu-west-1"]
        got = subprocess.run(
            [str(AWS), "sesv2", "get-contact", *endpoint, "--contact-list-name", "newsletter", *CONTACT],
            env=aws_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert got.returncode == 0, got.stderr
        assert '"EmailAddress": "ann+news@example.com"' in got.stdout
        assert _stop(started, signal.SIGTERM) == 0


def test_credentials_command_prints_export_lines(tmp_path: Path) -> None:
    generated = _credentials(tmp_path, "--data-dir", str(tmp_path / "d"))
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", generated["AWS_ACCESS_KEY_ID"])
    assert _credentials(tmp_path, "--data-dir", str(tmp_path / "d")) == generated  # generated once
    env = _env(SESCONTACTS_ACCESS_KEY_ID="AKIAOVERRIDE", SESCONTACTS_SECRET_ACCESS_KEY="override-secret")
    assert _credentials(tmp_path, "--data-dir", str(tmp_path / "d"), env=env) == {
        "AWS_ACCESS_KEY_ID": "AKIAOVERRIDE",
        "AWS_SECRET_ACCESS_KEY": "override-secret",
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_shut_down_cleanly(tmp_path: Path, sig: int) -> None:
    with serve(tmp_path, "--data-dir", str(tmp_path / "d")) as started:
        assert _stop(started, sig) == 0
        assert "Traceback" not in started.banner()
        # Shutdown closed the database: SQLite removes the write-ahead log when the last connection closes.
        assert (tmp_path / "d" / "sescontacts.db").exists()
        assert not (tmp_path / "d" / "sescontacts.db-wal").exists()
    # The database was closed cleanly: it opens again, with the list.
    with serve(tmp_path, "--data-dir", str(tmp_path / "d")) as started:
        assert "contact list: contacts" in started.banner() and "(created now)" not in started.banner()
        assert _stop(started, signal.SIGTERM) == 0


def test_instructions_work_for_a_data_dir_with_a_space(tmp_path: Path) -> None:
    data = tmp_path / "my data"
    with serve(tmp_path, "--data-dir", str(data)) as started:
        lines = [line.strip() for line in started.banner().splitlines()]
        eval_line = next(line for line in lines if "sescontacts credentials" in line)
        aws_line = next(line for line in lines if line.startswith("aws sesv2"))
        result = _follow(tmp_path, eval_line, aws_line)
        assert result.returncode == 0, result.stderr
        assert _stop(started, signal.SIGTERM) == 0


def test_a_configured_list_that_cannot_be_created_is_reported(tmp_path: Path) -> None:
    """The region's one list is 'contacts'; starting with another name must not pretend that list exists."""
    with serve(tmp_path, "--data-dir", str(tmp_path / "d")) as started:
        assert _stop(started, signal.SIGTERM) == 0
    with serve(tmp_path, "--data-dir", str(tmp_path / "d"), "--contact-list", "newsletter") as started:
        banner = started.banner()
        assert "WARNING: contact list 'newsletter' does not exist" in banner
        assert "this region already has 'contacts'" in banner
        assert _stop(started, signal.SIGTERM) == 0


def test_instructions_for_keys_given_in_the_environment(tmp_path: Path) -> None:
    """Keys set in the server's environment are the ones to use, not a pair `credentials` would generate."""
    keys = {"SESCONTACTS_ACCESS_KEY_ID": "AKIAFROMENVIRONMENT1", "SESCONTACTS_SECRET_ACCESS_KEY": "secret-from-env"}
    with serve(tmp_path, "--data-dir", str(tmp_path / "d"), env=_env(**keys)) as started:
        lines = [line.strip() for line in started.banner().splitlines()]
        assert not any("sescontacts credentials" in line for line in lines)
        keys_line = next(line for line in lines if "AWS_ACCESS_KEY_ID" in line)
        aws_line = next(line for line in lines if line.startswith("aws sesv2"))
        result = _follow(tmp_path, *(f"export {k}={v}" for k, v in keys.items()), keys_line, aws_line)
        assert result.returncode == 0, result.stderr
        assert not (tmp_path / "d" / "credentials.json").exists()
        assert _stop(started, signal.SIGTERM) == 0


def _serve_refused(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a `serve` that must not start: exit status 2, one line on stderr, no traceback. Returns the line."""
    result = subprocess.run(
        [*sescontacts_command(), "serve", *args], cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_an_admin_password_too_short_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    line = _serve_refused(tmp_path, "--port", str(free_port()), env=_env(SESCONTACTS_ADMIN_PASSWORD="short"))
    assert line == "Error: SESCONTACTS_ADMIN_PASSWORD: The password must be at least 8 characters."
    assert not (tmp_path / "sescontacts-data").exists()


def test_a_port_in_use_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _serve_refused(tmp_path, "--port", str(port))
    assert line == f"Error: port {port} on 127.0.0.1 is in use (--port / SESCONTACTS_PORT)"


def test_start_tightens_a_data_dir_readable_by_others_and_keeps_it_private(tmp_path: Path) -> None:
    data = tmp_path / "sescontacts-data"
    with serve(tmp_path) as started:
        assert _stop(started, signal.SIGTERM) == 0
    for path in [data, *data.rglob("*")]:  # as an older version left it under umask 022
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    count = len(loose(data))
    with serve(tmp_path) as started:
        notice = f"sescontacts: tightened permissions on {count} files and folders under sescontacts-data "
        assert notice + "(they were readable by other users)" in started.banner().splitlines()
        files = {p.name: mode(p) for p in data.iterdir()}
        assert files == {
            name: 0o600
            for name in (
                "sescontacts.db",
                "sescontacts.db-wal",
                "sescontacts.db-shm",
                "sescontacts.db-writers",
                "sescontacts.db-background",
                "credentials.json",
            )
        }
        assert mode(data) == 0o700
        assert _stop(started, signal.SIGTERM) == 0
