"""The ``sescontacts`` command. Each group of subcommands lives in its own module of this package.

Heavy modules (the server, boto3) are imported inside the commands that need them, so ``--help`` is fast.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

import click

from .. import __version__
from ..errors import SesContactsError
from ..history import Actor, acting_as
from . import bulk as bulk_commands
from . import events as events_commands
from . import history as history_commands
from . import serve as serve_commands
from . import ses as ses_commands
from . import undo as undo_commands
from . import users as users_commands
from .failures import ConfigError, command_failure
from .options import describe


class _Sescontacts(click.Group):
    """The root group, where every command's errors meet (cli/failures.py has the rule):

    - a bad option value, from a flag or from the environment, is one line naming both
      (``Error: --port / SESCONTACTS_PORT: 'abc' is not a valid integer.``), exit status 2, like every other
      configuration error, rather than click's usage text that names the flag only;
    - an error of the product's tree that a command did not handle is one line and the status the rule gives.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.BadParameter as exc:
            if not isinstance(exc.param, click.Option) or isinstance(exc, click.MissingParameter):
                raise
            raise ConfigError(f"{describe(exc.param)}: {exc.message}") from None
        except SesContactsError as exc:
            raise command_failure(exc, ctx.invoked_subcommand) from None


@click.group(cls=_Sescontacts, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sescontacts")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Manage the contacts of an Amazon SES v2 contact list: web console, bulk files and the SES API."""
    # Second line of defence for the data directory's privacy (private_files sets every mode explicitly):
    # nothing a command creates is readable by other users. Restored on exit for in-process callers (tests).
    previous = os.umask(0o077)
    ctx.call_on_close(lambda: os.umask(previous))
    if ctx.invoked_subcommand != "serve":  # a server's surfaces each say who acts (history.py)
        ctx.with_resource(acting_as(cli_actor()))


def cli_actor() -> Actor:
    """Who a command's changes are recorded as: the CLI, and the OS user who ran it (never a secret)."""
    try:
        return Actor("cli", getpass.getuser())
    except (OSError, KeyError):  # no user name in the environment or the password database
        return Actor("cli")


serve_commands.register(main)
ses_commands.register(main)
users_commands.register(main)
bulk_commands.register(main)
undo_commands.register(bulk_commands.jobs)
events_commands.register(main)
history_commands.register(main)
