"""The ``sescontacts`` command. Each group of subcommands lives in its own module of this package.

Heavy modules (the server, boto3) are imported inside the commands that need them, so ``--help`` is fast.
"""

from __future__ import annotations

import click

from .. import __version__
from . import bulk as bulk_commands
from . import serve as serve_commands
from . import ses as ses_commands
from . import users as users_commands


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sescontacts")
def main() -> None:
    """Manage the contacts of an Amazon SES v2 contact list: web console, bulk files and the SES API."""


serve_commands.register(main)
ses_commands.register(main)
users_commands.register(main)
bulk_commands.register(main)
