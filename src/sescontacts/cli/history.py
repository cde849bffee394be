"""``sescontacts history``: the contact history (who changed which contact, when, and what), read from the data
directory: one contact's, or a list's with filters, as a table or as JSON lines.

The JSON keys are part of the interface (scripts read them): documented in the command's help, which
docs/cli.md is generated from; new keys may be added, none is renamed or removed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click
import orjson

from ..history import ACTOR_KINDS, ATTRIBUTES, CHANGE_OPS, Change, ChangeQuery, attribute_diff
from ..settings import DEFAULT_LIST
from .options import (
    WholeNumber,
    checked,
    data_dir_option,
    given_explicitly,
    list_name,
    open_services,
    resolve_list,
    settings_from,
    text_or_json,
)
from .ses import backend_options

_RELATIVE = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_PAGE = 500


def register(main: click.Group) -> None:
    main.add_command(history)


def when(value: str, *, now: float | None = None) -> float:
    """A point in time as seconds since the epoch: an ISO 8601 date or date and time (local time unless it
    names its zone), or a time ago (``7d``, ``24h``, ``30m``, ``90s``, ``2w``)."""
    text = value.strip()
    if match := _RELATIVE.fullmatch(text):
        return (time.time() if now is None else now) - int(match[1]) * _UNIT_SECONDS[match[2]]
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r}: expected an ISO date or time (2026-11-30, 2026-11-30T14:00, 2026-11-30T14:00Z) "
            "or a time ago (7d, 24h, 30m, 90s, 2w)"
        ) from None
    return parsed.timestamp()  # a naive time is local time


def who(value: str) -> tuple[str, str | None]:
    """``KIND`` or ``KIND:NAME``: the actor kind, and the name on it (a user, an access key ID, who started a
    job, a feedback ID ...)."""
    kind, colon, name = value.partition(":")
    if kind not in ACTOR_KINDS:
        raise ValueError(f"{value!r}: expected KIND or KIND:NAME, KIND one of {', '.join(ACTOR_KINDS)}")
    return kind, name if colon else None


@click.command()
@click.argument("email", required=False)
@data_dir_option
@click.option(
    "--list",
    "contact_list",
    envvar="SESCONTACTS_CONTACT_LIST",
    default=DEFAULT_LIST,
    show_default=True,
    metavar="NAME",
    callback=checked(list_name),
    help="The contact list whose history to read.",
)
@backend_options
@click.option("--job", "job", metavar="ID", help="Only the changes of this job (an import, a bulk action, an undo).")
@click.option("--since", callback=checked(when), metavar="T", help="From this time on: ISO date or time, or 7d, 24h.")
@click.option("--until", callback=checked(when), metavar="T", help="Before this time: ISO date or time, or 7d, 24h.")
@click.option("--who", "actor", callback=checked(who), metavar="KIND[:NAME]", help="Only the changes made so.")
@click.option("--what", type=click.Choice(CHANGE_OPS), help="Only this kind of change.")
@click.option("--limit", default=50, show_default=True, type=WholeNumber(min=1), help="At most this many changes.")
@text_or_json
def history(
    email: str | None,
    job: str | None,
    since: float | None,
    until: float | None,
    actor: tuple[str, str | None] | None,
    what: str | None,
    limit: int,
    fmt: str,
    **options: Any,
) -> None:
    """Who changed contacts, when and what, newest first: EMAIL's changes, or the list's (with filters).

    \b
    --who takes the kind of actor and, after a colon, its name: console:alice (a console user), api:AKIA...
    (an SES API access key ID), job:alice (jobs alice started; --job names one job), sync (SES, as the ses
    backend's sync saw it), event:FEEDBACK-ID, cli:USER, system.

    \b
    --format json writes one object per line with these keys: id (the change's number; a batch's creations
    share one), list, email, at (ISO 8601 UTC), op (created, updated or deleted), actor (kind, name, job),
    who (the actor as the text table shows it), before and after (the fields that changed, both sides; a
    deletion's every field before; unsubscribe_all, topic_preferences, attributes), attribute_diff (a list
    of key, before, after; null when the attributes are not a JSON object on both sides or did not change)
    and created (a deleted contact's creation time, else null).
    """
    kind, name = actor if actor is not None else (None, None)
    query = ChangeQuery(
        actor_kind=kind,  # type: ignore[arg-type]  # checked by who()
        actor_name=name,
        job=job,
        ops=(what,) if what else (),  # type: ignore[arg-type]  # a click.Choice of CHANGE_OPS
        since=since,
        until=until,
        email=email,
    )
    services = open_services(settings_from(**options))
    try:
        # The list as import and export find it; an unknown one is an error, not "no changes recorded".
        list_name = resolve_list(services, options["contact_list"], given_explicitly("contact_list"))
        changes = list(_changes(services.history, list_name, query, limit))
    finally:
        services.close()
    if fmt == "json":
        for change in changes:
            click.echo(orjson.dumps(change_json(change)).decode())
        return
    if not changes:
        click.echo("no changes recorded" + (f" for {email}" if email else ""))
        return
    for change in changes:
        click.echo(change_text(change))


def _changes(history: Any, list_name: str, query: ChangeQuery, limit: int) -> Iterator[Change]:
    token: str | None = None
    shown = 0
    while shown < limit:
        page = history.changes(list_name, query, page_size=min(_PAGE, limit - shown), token=token)
        yield from page.items
        shown += len(page.items)
        token = page.next_token
        if token is None:
            return


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _diff(change: Change) -> list[dict[str, str | None]] | None:
    if change.op != "updated" or (ATTRIBUTES not in change.before and ATTRIBUTES not in change.after):
        return None
    diff = attribute_diff(change.before.get(ATTRIBUTES), change.after.get(ATTRIBUTES))  # type: ignore[arg-type]
    return None if diff is None else [{"key": d.key, "before": d.before, "after": d.after} for d in diff]


def change_json(change: Change) -> dict[str, Any]:
    """One change as ``--format json`` writes it (the keys the command's help lists)."""
    return {
        "id": change.id,
        "list": change.list_name,
        "email": change.email,
        "at": _iso(change.at),
        "op": change.op,
        "actor": {"kind": change.actor.kind, "name": change.actor.name, "job": change.actor.job},
        "who": change.actor.label(),
        "before": dict(change.before),
        "after": dict(change.after),
        "attribute_diff": _diff(change),
        "created": _iso(change.created),
    }


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "(none)"
    return "(none)" if value is None else str(value)


def change_text(change: Change) -> str:
    """One change as the text table shows it: a line (local time, what, who, address), then a line per field
    (attributes key by key when both sides are JSON objects)."""
    at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(change.at))
    lines = [f"{at}  {change.op:<7}  {change.actor.label():<24}  {change.email}"]
    diff = _diff(change)
    for field in sorted(change.before.keys() | change.after.keys()):
        if field == ATTRIBUTES and diff is not None:
            lines += [f"    {ATTRIBUTES}.{d.get('key')}: {_shown(d['before'])} -> {_shown(d['after'])}" for d in diff]
        elif change.op == "deleted":
            lines.append(f"    {field}: {_shown(change.before.get(field))}")
        else:
            lines.append(f"    {field}: {_shown(change.before.get(field))} -> {_shown(change.after.get(field))}")
    return "\n".join(lines)
