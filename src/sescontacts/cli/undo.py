"""``sescontacts jobs undo``, ``jobs conflicts`` and ``jobs resolve``: take a job back from the shell.

An undo is a job (bulk/undo.py): ``jobs undo ID`` queues it for a running server's job worker, or with
``--wait`` runs it here to its end (Ctrl-C leaves it resumable with ``jobs resume``). Exit status of ``undo
--wait``: 0 done with no conflict left open; 1 done, with contacts changed since the job left as they are
(``jobs conflicts`` lists them, ``jobs resolve`` decides them); 2 refused or failed; 130 interrupted.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click
import orjson

from .failures import EXIT_OK, EXIT_REFUSED
from .options import text_or_json


def register(jobs: click.Group) -> None:
    jobs.add_command(jobs_undo)
    jobs.add_command(jobs_conflicts)
    jobs.add_command(jobs_resolve)


def _services(ctx: click.Context) -> Any:
    from .bulk import _job_services

    return _job_services(ctx)


@click.command("undo")
@click.argument("job_id")
@click.option(
    "--conflicts",
    "policy",
    type=click.Choice(["keep", "restore"]),
    default="keep",
    show_default=True,
    help="Contacts changed again since the job: keep them as they are (listed by `jobs conflicts`), or restore "
    "them anyway.",
)
@click.option("--wait", is_flag=True, help="Run the undo here, to its end, instead of queueing it for the server.")
@click.pass_context
def jobs_undo(ctx: click.Context, job_id: str, policy: str, wait: bool) -> None:
    """Undo a job: remove the contacts it created, give those it updated their previous fields back, restore
    those it deleted. The undo is a job itself: `jobs resume`, `jobs cancel`, and undoing it redoes."""
    from .bulk import _ProgressLine, _summary, run_here

    services = _services(ctx)
    try:
        services.jobs.recover()
        # Started by "cli", as the history names every job the CLI starts (the OS user acts for the command).
        job = services.undo.start(job_id, policy, "cli", run_here=wait)
        if not wait:
            click.echo(
                f"undo of job {job_id} queued as job {job.id}: a running server's job worker runs it "
                f"(or run it here: sescontacts jobs resume {job.id})"
            )
            return
        progress = _ProgressLine(sys.stderr)
        services.undo.after_batch = progress
        job = run_here(services, job.id, progress)
        click.echo(f"undo job {job.id} completed: " + _summary(job.counts, job.rows_done, None))
        open_conflicts = services.undo.conflict_counts(job.id)["open"]
        if open_conflicts:
            click.echo(
                f"{open_conflicts:,} contacts changed since job {job_id} were left as they are: "
                f"sescontacts jobs conflicts {job.id}"
            )
        sys.exit(EXIT_REFUSED if open_conflicts else EXIT_OK)
    finally:
        services.close()


def _state_text(contact: Any) -> str:
    if contact is None:
        return "(not on the list)"
    topics = ", ".join(f"{name}={status}" for name, status in sorted(contact.topic_preferences.items())) or "none"
    unsubscribed = "yes" if contact.unsubscribe_all else "no"
    return f"unsubscribed from all: {unsubscribed}; topics: {topics}; attributes: {contact.attributes_data or 'none'}"


def _state_json(contact: Any) -> dict[str, Any] | None:
    if contact is None:
        return None
    return {
        "emailAddress": contact.email,
        "unsubscribeAll": contact.unsubscribe_all,
        "topicPreferences": dict(contact.topic_preferences),
        "attributesData": contact.attributes_data,
    }


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@click.command("conflicts")
@click.argument("undo_job_id")
@text_or_json
@click.pass_context
def jobs_conflicts(ctx: click.Context, undo_job_id: str, fmt: str) -> None:
    """List the contacts an undo met changed again since the job: what each is now, what the undo would
    restore, who changed it and when, and whether it is still open, restored or kept."""
    services = _services(ctx)
    try:
        token: str | None = None
        shown = 0
        while True:
            page = services.undo.conflict_records(undo_job_id, page_size=500, token=token, state=None)
            for c in page.items:
                if fmt == "json":
                    line = {
                        "emailAddress": c.email,
                        "contactList": c.list_name,
                        "state": c.state,
                        "jobDid": c.op,
                        "changedBy": {"kind": c.later_actor.kind, "name": c.later_actor.name, "job": c.later_actor.job},
                        "changedAt": _utc(c.later_at),
                        "now": _state_json(c.current),
                        "restore": _state_json(c.restore),
                    }
                    click.echo(orjson.dumps(line).decode())
                else:
                    click.echo(
                        f"{c.email}  {c.state}  (the job {c.op} it; changed since by {c.later_actor.label()} "
                        f"at {_utc(c.later_at)})\n  now:     {_state_text(c.current)}\n"
                        f"  restore: {_state_text(c.restore)}"
                    )
            shown += len(page.items)
            token = page.next_token
            if token is None:
                break
        if not shown and fmt == "text":
            click.echo("no conflicts")
    finally:
        services.close()


@click.command("resolve")
@click.argument("undo_job_id")
@click.option("--restore", "restore", multiple=True, metavar="EMAIL", help="Restore this contact (repeatable).")
@click.option("--keep", "keep", multiple=True, metavar="EMAIL", help="Keep this contact as it is (repeatable).")
@click.option("--restore-all", is_flag=True, help="Restore every open conflict.")
@click.option("--keep-all", is_flag=True, help="Keep every open conflict as it is.")
@click.pass_context
def jobs_resolve(
    ctx: click.Context,
    undo_job_id: str,
    restore: tuple[str, ...],
    keep: tuple[str, ...],
    restore_all: bool,
    keep_all: bool,
) -> None:
    """Decide an undo's open conflicts: restore what the undo would have restored (recorded as the undo's own
    change), or keep the contact as it is now."""
    if sum((bool(restore or keep), restore_all, keep_all)) > 1:
        raise click.UsageError("give --restore-all, --keep-all, or --restore/--keep EMAIL, not several")
    if not (restore or keep or restore_all or keep_all):
        raise click.UsageError("say what to do: --restore EMAIL, --keep EMAIL, --restore-all or --keep-all")
    services = _services(ctx)
    try:
        restored = kept = 0
        if restore or restore_all:
            restored = services.undo.resolve(undo_job_id, None if restore_all else list(restore), "restore")
        if keep or keep_all:
            kept = services.undo.resolve(undo_job_id, None if keep_all else list(keep), "keep")
        click.echo(f"restored {restored:,}, kept {kept:,}")
        asked = len(restore) + len(keep)
        if asked and restored + kept < asked:
            click.echo(f"{asked - restored - kept:,} of the addresses given had no open conflict", err=True)
        left = services.undo.conflict_counts(undo_job_id)["open"]
        if left:
            click.echo(f"{left:,} conflicts still open")
    finally:
        services.close()
