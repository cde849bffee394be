"""The CLI's one error path: from an error to one line on stderr and the exit status, by one rule.

Exit status, every command (README's table says the same for ``import``):

====  =====================================================================================================
0     Done.
1     Done, but refused in part or whole: rows rejected (``import``), a request refused (``users add`` of a
      name that exists, a password too short, an unknown user), problems found (``doctor``).
2     Nothing done: a usage or configuration error, a file-level error (missing file, not CSV/JSON, unknown
      list or job), SES unreachable or refusing our credentials, a job that failed.
130   Interrupted (Ctrl-C); ``sescontacts jobs resume`` continues an import.
====  =====================================================================================================

How an error gets there: commands raise, they do not print-and-exit. A :class:`CommandError` (click prints it
as one ``Error: ...`` line) carries its status; an error of the product's tree (``errors.SesContactsError``)
that leaves a command is turned into one by :func:`command_failure`, which the ``sescontacts`` group calls for
every command. Errors from SES while a command connects go through :func:`talking_to_ses`, which adds where
to look (``sescontacts doctor``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, Final

import click

from ..errors import SesContactsError

EXIT_OK: Final = 0
EXIT_REFUSED: Final = 1
EXIT_NOTHING_DONE: Final = 2
EXIT_INTERRUPTED: Final = 130

# Commands that read or write a file or a job: a refusal there (an unknown list, an unknown job) means nothing
# was written, status 2, and it is said as their report says errors (``error: ...``, next to ``warning:``).
BULK_COMMANDS: Final = frozenset({"import", "export", "jobs"})


class CommandError(click.ClickException):
    """An error a command reports: one ``Error: ...`` line on stderr, then exit ``exit_code``."""

    exit_code = EXIT_NOTHING_DONE


class ConfigError(CommandError):
    """A setting that cannot work (or SES that cannot be reached with it): exit status 2 like a usage error."""

    exit_code = EXIT_NOTHING_DONE


class Refused(CommandError):
    """The command ran and its request was refused (a name taken, a password too short): exit status 1."""

    exit_code = EXIT_REFUSED


class ReportedError(CommandError):
    """A bulk command's file-level error: ``error: ...`` as its report lines are written, exit status 2."""

    exit_code = EXIT_NOTHING_DONE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def command_failure(exc: SesContactsError, command: str | None) -> CommandError:
    """The rule for a product error that left ``command`` (the top-level command's name)."""
    if command in BULK_COMMANDS:
        return ReportedError(exc.message)
    return Refused(exc.message)


def ses_failure(exc: SesContactsError) -> ConfigError:
    """SES refused us or could not be reached (credentials, region, role, network): one line, and the command
    that finds out which."""
    hint = "" if "doctor" in exc.message else " (`sescontacts doctor` checks the connection to SES)"
    return ConfigError(f"{exc.message}{hint}")


@contextmanager
def talking_to_ses() -> Iterator[None]:
    """Around a command's first calls to its backend (opening, the default list, a sync): an error there is
    SES failing us (no credentials, access denied, unreachable), said by :func:`ses_failure`."""
    try:
        yield
    except SesContactsError as exc:
        raise ses_failure(exc) from None
