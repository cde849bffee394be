"""Options shared by commands, declared once: flag, environment variable, default and help.

``settings_from`` turns the parsed values into a :class:`~sescontacts.settings.Settings`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..settings import DEFAULT_DATA_DIR, DEFAULT_LIST, DEFAULT_REGION, Settings

F = Callable[..., Any]


def _list_quota(value: str | int | None) -> int | None:
    if value is None or str(value).lower() in ("unlimited", "none", "0"):
        return None
    return int(value)


def data_options(func: F) -> F:
    """Where the data is and which list: every command that touches contacts takes these."""
    for option in reversed(
        [
            click.option(
                "--data-dir",
                envvar="SESCONTACTS_DATA_DIR",
                default=DEFAULT_DATA_DIR,
                show_default=True,
                type=click.Path(file_okay=False, path_type=Path),
                help="Directory holding the database, credentials and import files.",
            ),
            click.option(
                "--region",
                envvar="SESCONTACTS_REGION",
                default=DEFAULT_REGION,
                show_default=True,
                help="AWS region the contact list belongs to (and the local API reports).",
            ),
            click.option(
                "--contact-list",
                "contact_list",
                envvar="SESCONTACTS_CONTACT_LIST",
                default=DEFAULT_LIST,
                show_default=True,
                help="Name of the contact list; created on first start on the local backend.",
            ),
            click.option(
                "--max-contact-lists",
                envvar="SESCONTACTS_MAX_CONTACT_LISTS",
                default="1",
                show_default=True,
                help="Contact lists allowed per region on the local backend (SES allows 1); 'unlimited' lifts it.",
            ),
        ]
    ):
        func = option(func)
    return func


def settings_from(**values: Any) -> Settings:
    known = {f for f in Settings.__dataclass_fields__}
    kwargs = {k: v for k, v in values.items() if k in known and v is not None}
    if "max_contact_lists" in values:
        kwargs["max_contact_lists"] = _list_quota(values["max_contact_lists"])
    return Settings(**kwargs)
