"""``sescontacts users add|set-password|remove|list``: the web console's accounts.

Passwords are read from a prompt (hidden, asked twice) or from ``--password-stdin`` for scripts, never from
a command-line argument, where they would sit in the shell history and ``ps`` output.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from .failures import ConfigError
from .options import data_dir_errors, data_dir_option, prepare_data_dir

ADMIN_PASSWORD_ENV = "SESCONTACTS_ADMIN_PASSWORD"


def register(main: click.Group) -> None:
    main.add_command(users)


def check_admin_password() -> None:
    """``serve`` checks the variable before it opens anything: a password too short for the console is a
    configuration error (one line, exit status 2), not a traceback on first start."""
    from ..accounts.passwords import check_new_password
    from ..errors import BadRequest

    password = os.environ.get(ADMIN_PASSWORD_ENV)
    if password:
        try:
            check_new_password(password)
        except BadRequest as exc:
            raise ConfigError(f"{ADMIN_PASSWORD_ENV}: {exc.message}") from None


def first_start_lines(services: Any) -> list[str]:
    """Create ``admin`` when the console has no user yet; a generated password is shown this once."""
    from ..accounts.users import ADMIN, Users

    generated = Users(services.db).ensure_admin(os.environ.get(ADMIN_PASSWORD_ENV) or None)
    if generated is None:
        return []
    return [
        "",
        f"Console user created: {ADMIN}",
        f"  password: {generated}",
        "  (shown only now; change it with `sescontacts users set-password admin`)",
    ]


password_stdin_option = click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (for scripts)."
)


def _users(data_dir: Path) -> Any:
    from ..accounts.users import Users
    from ..db import Database
    from ..schema import PRODUCT_SCHEMA
    from ..settings import Settings

    prepare_data_dir(data_dir)
    with data_dir_errors(data_dir):
        return Users(Database(Settings(data_dir=data_dir).database_path, PRODUCT_SCHEMA))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group()
def users() -> None:
    """Manage who can log in to the web console."""


@users.command("list")
@data_dir_option
def list_users(data_dir: Path) -> None:
    """List the console's users."""
    import datetime as dt

    for user in _users(data_dir).list():
        created = dt.datetime.fromtimestamp(user.created, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"{user.name}\tcreated {created}")


@users.command("add")
@data_dir_option
@password_stdin_option
@click.argument("name")
def add_user(data_dir: Path, password_stdin: bool, name: str) -> None:
    """Add a user who can log in to the console."""
    _users(data_dir).add(name, _password(password_stdin))
    click.echo(f"Added user {name}.")


@users.command("set-password")
@data_dir_option
@password_stdin_option
@click.argument("name")
def set_password(data_dir: Path, password_stdin: bool, name: str) -> None:
    """Change a user's password; their open sessions end."""
    _users(data_dir).set_password(name, _password(password_stdin))
    click.echo(f"Changed the password of {name}; their sessions have ended and any login lockout is lifted.")


@users.command("remove")
@data_dir_option
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def remove_user(data_dir: Path, name: str, yes: bool) -> None:
    """Remove a user; their open sessions end."""
    store = _users(data_dir)
    remaining = [u.name for u in store.list() if u.name != name]
    if not remaining and not yes:
        click.confirm(f"{name} is the last user: nobody will be able to log in. Remove anyway?", abort=True)
    store.remove(name)  # an unknown name: the sescontacts group says it, exit status 1 (cli/failures.py)
    click.echo(f"Removed user {name}.")
