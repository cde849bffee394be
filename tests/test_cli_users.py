"""``sescontacts users``: the console's accounts from the command line, without loading the web console."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from sescontacts.cli import main as cli

from .support.accounts import fast_kdf_fixture  # noqa: F401


def test_users_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "d")]
    result = runner.invoke(cli, ["users", "add", "carol", "--password-stdin", *data], input="carol password\n")
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["users", "add", "carol", "--password-stdin", *data], input="carol password\n")
    assert result.exit_code == 1 and "already exists" in result.output
    result = runner.invoke(cli, ["users", "add", "dave", "--password-stdin", *data], input="short\n")
    assert result.exit_code == 1 and "at least 8" in result.output
    result = runner.invoke(cli, ["users", "set-password", "carol", *data], input="new password 1\nnew password 1\n")
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["users", "list", *data])
    assert result.output.startswith("carol\t")
    result = runner.invoke(cli, ["users", "remove", "carol", "--yes", *data])
    assert result.exit_code == 0
    result = runner.invoke(cli, ["users", "remove", "carol", "--yes", *data])
    assert result.exit_code == 1 and "No user named carol" in result.output


def test_the_users_command_does_not_load_the_web_console(tmp_path: Path) -> None:
    """The accounts are stored by ``sescontacts.accounts``, which has no HTTP in it: managing a user imports
    neither the console nor Starlette (a fresh interpreter, as the other tests have loaded both)."""
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from sescontacts.cli import main\n"
        "result = CliRunner().invoke(main, ['users', 'list', '--data-dir', sys.argv[1]])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sescontacts.console', 'starlette'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "d")], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
