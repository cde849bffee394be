"""Options shared by commands, declared once: flag, environment variable, default, help and what is allowed.

``settings_from`` turns the parsed values into a :class:`~sescontacts.settings.Settings`; ``open_services``
opens the data directory for a command.

A configuration error is one line on stderr naming the setting the way a user finds it (flag and
environment variable) and what it accepts, exit status 2, never a traceback. Values are checked where the
option is declared (``checked`` callbacks and click's range types raise ``click.BadParameter``, which the
``sescontacts`` group turns into that line); what can only be found out later (a data directory we cannot
write to, a port in use) raises ``failures.ConfigError``, which click prints the same way.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from ..settings import DEFAULT_DATA_DIR, DEFAULT_LIST, DEFAULT_REGION, Settings
from .failures import ConfigError, talking_to_ses

if TYPE_CHECKING:
    from ..services import Services

F = Callable[..., Any]


def describe(param: click.Parameter) -> str:
    """``--port / SESCONTACTS_PORT``: where a user sets this option, on the command line and in the environment."""
    flag = max(param.opts, key=len) if param.opts else str(param.name)
    envvars = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
    return " / ".join([flag, *envvars])


def setting(name: str) -> str:
    """``describe`` for the option called ``name`` of the command running now (or of a group above it)."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        for param in ctx.command.params:
            if param.name == name:
                return describe(param)
        ctx = ctx.parent
    return "--" + name.replace("_", "-")


def checked(check: Callable[[str], Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback from ``check(value)``: returns the value (converted), or raises ValueError saying what
    is allowed. An unset option (None) is not checked."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return callback


class WholeNumber(click.IntRange):
    """``click.IntRange`` that calls a non-number "not a valid integer" (click says "integer range")."""

    name = "integer"


class Number(click.FloatRange):
    """``click.FloatRange`` that calls a non-number "not a valid number" (click says "float range")."""

    name = "number"


# -- checks, one a kind of value ----------------------------------------------------------------------------

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")


def region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise ValueError(f"{value!r} is not an AWS region name; expected one like us-east-1 or eu-west-2")
    return value


def list_name(value: str) -> str:
    from ..errors import BadRequest
    from ..validation import check_list_name

    try:
        return check_list_name(value)
    except BadRequest:
        raise ValueError(
            f"{value!r} is not a contact list name; SES allows 1 to 64 letters, digits, '_' and '-'"
        ) from None


def list_quota(value: str) -> int | None:
    """A number of lists, or None for no limit ('unlimited', 'none' or 0)."""
    text = str(value).strip().lower()
    if text in ("unlimited", "none"):
        return None
    if not text.isdigit():
        raise ValueError(f"{value!r} is not a number of lists; expected a whole number from 1, or 'unlimited'")
    return int(text) or None


def throttle(value: str) -> str:
    from ..sesapi.throttle import parse_throttle

    try:
        parse_throttle(value)
    except ValueError:
        raise ValueError(
            f"{value!r}: expected RATE[:BURST] requests per second, RATE above 0 and BURST at least 1 (e.g. 1 or 50:5)"
        ) from None
    return value


def s3_location(value: str) -> str:
    bucket = value.removeprefix("s3://").partition("/")[0]
    if not value.startswith("s3://") or not _BUCKET.fullmatch(bucket):
        raise ValueError(
            f"{value!r}: expected s3://BUCKET/PREFIX/ with a valid bucket name (e.g. s3://my-bucket/imports/)"
        )
    return value


def endpoint_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(f"{value!r}: expected an http:// or https:// URL (e.g. http://127.0.0.1:9000)")
    return value


def queue_url(value: str) -> str:
    from ..events.sqs import queue_endpoint

    queue_endpoint(value)  # raises ValueError saying what a queue URL looks like
    return value


def role_arn(value: str) -> str:
    if not _ROLE_ARN.fullmatch(value):
        raise ValueError(f"{value!r}: expected an IAM role ARN like arn:aws:iam::123456789012:role/sescontacts")
    return value


def account_id(value: str) -> str:
    if value != "*" and not re.fullmatch(r"\d{12}", value):
        raise ValueError(f"{value!r}: expected a 12-digit AWS account id, or * for any")
    return value


# -- shared option declarations -----------------------------------------------------------------------------


def _data_dir(value: str) -> Path:
    if not value.strip():
        # An empty value would mean the current folder, whose permissions would then be tightened.
        raise ValueError("an empty path; name a folder (it is created if missing)")
    return Path(value)


# The one declaration of --data-dir, for every command that opens the data directory.
data_dir_option = click.option(
    "--data-dir",
    envvar="SESCONTACTS_DATA_DIR",
    default=DEFAULT_DATA_DIR,
    show_default=True,
    type=click.Path(file_okay=False),
    callback=checked(_data_dir),
    help="Directory holding the database, credentials and import files.",
)


def text_or_json(func: F) -> F:
    """``--format text|json`` of the commands that list records: a table for people, or JSON Lines (one object
    a line) for programs; the value reaches the command as ``fmt``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="text: a table; json: one JSON object a line (JSON Lines).",
    )(func)


def data_options(func: F) -> F:
    """Where the data is and which list: every command that touches contacts takes these."""
    for option in reversed(
        [
            data_dir_option,
            click.option(
                "--region",
                envvar="SESCONTACTS_REGION",
                default=DEFAULT_REGION,
                show_default=True,
                callback=checked(region),
                help="AWS region the contact list belongs to (and the local API reports).",
            ),
            click.option(
                "--contact-list",
                "contact_list",
                envvar="SESCONTACTS_CONTACT_LIST",
                default=DEFAULT_LIST,
                show_default=True,
                callback=checked(list_name),
                help="Name of the contact list; created on first start on the local backend.",
            ),
            click.option(
                "--max-contact-lists",
                envvar="SESCONTACTS_MAX_CONTACT_LISTS",
                default="1",
                show_default=True,
                callback=checked(list_quota),
                help="Contact lists allowed per region on the local backend (SES allows 1); 'unlimited' lifts it.",
            ),
        ]
    ):
        func = option(func)
    return func


def settings_from(**values: Any) -> Settings:
    known = {f for f in Settings.__dataclass_fields__}
    kwargs = {k: v for k, v in values.items() if k in known and v is not None}
    if "max_contact_lists" in values:  # None is a value here: no limit
        kwargs["max_contact_lists"] = values["max_contact_lists"]
    return Settings(**kwargs)


# -- opening the data directory -----------------------------------------------------------------------------


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data directory private, or tighten an existing one (saying so in one line), and make sure
    this user can work in it. Every command that opens the data directory starts here."""
    from ..private_files import SharedFolderError, secure_data_dir

    where = setting("data_dir")
    try:
        changed = secure_data_dir(data_dir)
    except SharedFolderError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except NotADirectoryError:
        raise ConfigError(f"{where}: {data_dir} is a file; expected a folder (it is created if missing)") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot create {data_dir}: {exc.strerror}") from None
    if not os.access(data_dir, os.R_OK | os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: {data_dir} is not readable and writable by you; choose a folder you can write to")
    if changed:
        click.echo(
            f"sescontacts: tightened permissions on {changed} files and folders under {data_dir} "
            "(they were readable by other users)",
            err=True,
        )


@contextmanager
def data_dir_errors(data_dir: Path) -> Iterator[None]:
    """A database or file in the data directory we cannot open (another user's, or not a database): one line."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise ConfigError(
            f"{setting('data_dir')}: cannot open {Settings(data_dir=Path(data_dir)).database_path}: {exc}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{setting('data_dir')}: cannot open {exc.filename or data_dir}: {exc.strerror}") from None


def open_services(settings: Settings) -> Services:
    """``Services.open`` for a command: the data directory prepared, and what stops it from opening (an
    unreadable database, AWS settings that cannot work on the ses backend) said in one line."""
    from ..services import Services

    prepare_data_dir(settings.data_dir)
    aws_errors: tuple[type[Exception], ...] = ()
    if settings.backend == "ses":
        from botocore.exceptions import BotoCoreError

        aws_errors = (BotoCoreError,)
    try:
        # talking_to_ses: the ses backend found no AWS credentials, or no role to assume.
        with data_dir_errors(settings.data_dir), talking_to_ses():
            return Services.open(settings)
    except aws_errors as exc:
        from botocore.exceptions import ProfileNotFound

        where = setting("aws_profile") if isinstance(exc, ProfileNotFound) else "AWS settings"
        raise ConfigError(f"{where}: {exc}") from None


def resolve_list(services: Any, requested: str, explicit: bool) -> str:
    """The configured list, or - when it does not exist and none was asked for by name - the only one. An
    unknown list is NotFound, which the ``sescontacts`` group says as a file-level error (exit status 2)."""
    from ..errors import NotFound

    try:
        services.store.get_list(requested)
        return requested
    except NotFound:
        if not explicit:
            lists = services.store.list_lists(page_size=2).items
            if len(lists) == 1:
                return str(lists[0].name)
        raise


def given_explicitly(name: str) -> bool:
    ctx = click.get_current_context()
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT",)
