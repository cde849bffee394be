"""``sescontacts import``, ``sescontacts export`` and ``sescontacts jobs``: bulk files from the shell.

The CLI runs its import job in its own process (the job is created owned by it, so a server running on the
same data directory never takes it) and works next to a running server: the database is in WAL mode and
writers wait on a busy timeout. Exit status of ``import``: 0 every row applied; 1 the file was read to the
end with rejected rows, however many; 2 a usage, configuration or file-level error (nothing written), or a job
that failed; 130 interrupted (cli/failures.py has the rule for every command). Errors are raised, as
``ReportedError`` (``error: ...``) or left to the ``sescontacts`` group, which says them in one place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

import click

from ..private_files import make_private_dir, open_private, replacing
from .failures import (
    EXIT_INTERRUPTED,
    EXIT_NOTHING_DONE,
    EXIT_OK,
    EXIT_REFUSED,
    ConfigError,
    ReportedError,
    talking_to_ses,
)
from .options import WholeNumber, data_options, given_explicitly, open_services, resolve_list, setting, settings_from
from .ses import backend_options


def register(main: click.Group) -> None:
    main.add_command(import_command)
    main.add_command(export_command)
    main.add_command(jobs)


def _open(options: dict[str, Any], *, create_list: bool = True) -> Any:
    """The data directory's services, the configured list created first if ``create_list`` and none exists."""
    services = open_services(settings_from(**options))
    if not create_list:
        return services
    try:
        with talking_to_ses():  # the ses backend could not reach SES
            services.ensure_default_list()
    except ConfigError:
        services.close()
        raise
    return services


def _spool_stdin(data_dir: Path) -> Path:
    """Standard input goes to a file first: the importer reads a file twice (a check, then the rows)."""
    uploads = make_private_dir(data_dir / "uploads")
    path = uploads / f"stdin-{uuid.uuid4()}"
    with open_private(path) as out:
        shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
    return path


class _ProgressLine:
    """A one-line progress bar on a terminal (rows, rows/s, ETA from bytes); nothing otherwise."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self.first_rows: int | None = None

    def __call__(self, job: Any) -> None:
        if not self.tty or job.state != "running":
            return
        if self.first_rows is None:
            self.first_rows = job.rows_done
        elapsed = max(time.monotonic() - self.start, 1e-6)
        rate = (job.rows_done - self.first_rows) / elapsed
        fraction = job.fraction
        eta = "?"
        if 0 < fraction < 1:
            remaining = elapsed / fraction * (1 - fraction) if job.rows_done else 0
            eta = f"{int(remaining // 60)}:{int(remaining % 60):02d}"
        width = 24
        filled = int(fraction * width)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r[{bar}] {fraction:4.0%}  {job.rows_done:,} rows  {rate:,.0f} rows/s  ETA {eta}   ")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _summary(counts: dict[str, int], rows: int, seconds: float | None) -> str:
    from ..bulk.job_manager import counts_summary

    speed = f" in {seconds:.1f} s ({rows / seconds:,.0f} rows/s)" if seconds and rows else ""
    return f"{rows:,} rows{speed}: {counts_summary(counts)}"


def _exit_status(state: str, counts: dict[str, int]) -> int:
    """A job that did not complete applied nothing we can vouch for: 2. Completed is 0, or 1 with rejected
    rows, however many (``ImportReport.exit_status`` says the same for a dry run)."""
    if state != "completed":
        return EXIT_NOTHING_DONE
    return EXIT_REFUSED if counts.get("rejected") else EXIT_OK


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=str))
@data_options
@backend_options
@click.option(
    "--action",
    type=click.Choice(["add", "delete"]),
    default="add",
    show_default=True,
    help="add: create new contacts and update existing ones. delete: remove the listed addresses.",
)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default=None, help="Override the detected format.")
@click.option("--dry-run", is_flag=True, help="Check the whole file and report what would happen; write nothing.")
@click.option(
    "--rejects",
    "rejects_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write rejected rows (line, emailAddress, column, reason) to this CSV file.",
)
@click.option(
    "--resubscribe",
    is_flag=True,
    help="Let the file opt contacts back in: unsubscribeAll=false re-subscribes unsubscribed contacts, and "
    "OPT_IN replaces a topic's explicit OPT_OUT (default: both are kept, and counted).",
)
@click.option(
    "--merge-attributes", is_flag=True, help="Merge attributesData keys into existing ones (default: replace)."
)
@click.option(
    "--extra-columns-as-attributes",
    is_flag=True,
    help="Keep columns other than the known ones as string attributes (default: they are an error).",
)
@click.option(
    "--map",
    "column_map",
    multiple=True,
    metavar="COLUMN=FIELD",
    callback=lambda _ctx, _param, values: _column_map(values),
    help="Map a CSV column to a field (repeatable): FIELD is email, unsubscribeAll, attributesData, topic:NAME, "
    "attribute:NAME[:string|number|boolean] or skip. Columns not named keep what their names say (emailAddress, "
    "Email, E-mail Address..., unsubscribeAll, topicPreferences.<Topic>); any other is an error unless "
    "--extra-columns-as-attributes.",
)
def import_command(file: str, **options: Any) -> None:
    """Import a CSV or JSON file of contacts (FILE or - for standard input) into a contact list."""
    from ..bulk.importer import run_import
    from ..bulk.job_manager import ImportOptions

    _check_output(options["rejects_out"], "rejects_out")
    services = _open(options)
    spooled: Path | None = None
    try:
        list_name = resolve_list(services, options["contact_list"], given_explicitly("contact_list"))
        if file == "-":
            spooled = _spool_stdin(services.settings.data_dir)
            path, name = spooled, "<stdin>"
        else:
            path, name = Path(file), file
            if not path.is_file():
                raise ReportedError(f"{file}: no such file")
        import_options = ImportOptions(
            contact_list=list_name,
            action=options["action"],
            format=options["fmt"],
            resubscribe=options["resubscribe"],
            merge_attributes=options["merge_attributes"],
            extra_columns_as_attributes=options["extra_columns_as_attributes"],
            column_map=options["column_map"],
        )
        started = time.monotonic()
        if options["dry_run"]:
            rejects_out = options["rejects_out"]
            with _output(rejects_out) if rejects_out else contextlib.nullcontext() as rejects_path:
                report = run_import(
                    services.store, path, import_options, file_name=name, dry_run=True, rejects_path=rejects_path
                )
            for warning in report.warnings:
                click.echo(f"warning: {name}: {warning}", err=True)
            if report.error is not None:
                raise ReportedError(str(report.error))
            click.echo("dry run, nothing written: " + _summary(report.counts, report.rows, None))
            _print_rejects(report.rejects, report.counts.get("rejected", 0), options["rejects_out"])
            sys.exit(report.exit_status)
        progress = _ProgressLine(sys.stderr)
        job = services.jobs.submit(path, import_options, file_name=name, run_here=True)
        try:
            job = services.jobs.run(job.id, progress=progress)
        except KeyboardInterrupt:
            progress.done()
            services.jobs.mark_interrupted(job.id)
            spooled = None  # keep the input: the job can resume from it
            click.echo(f"interrupted; resume with: sescontacts jobs resume {job.id}", err=True)
            sys.exit(EXIT_INTERRUPTED)
        progress.done()
        for warning in job.warnings:
            click.echo(f"warning: {name}: {warning}", err=True)
        if job.state != "completed":
            if job.state == "interrupted":
                spooled = None
            raise ReportedError(job.error or job.state)
        click.echo(f"imported into {list_name}: " + _summary(job.counts, job.rows_done, time.monotonic() - started))
        if job.rejects_path is not None and options["rejects_out"] is not None:
            with (
                open(job.rejects_path, "rb") as rejects,
                _output(options["rejects_out"]) as partial,
                open_private(partial, new=False) as out,
            ):
                shutil.copyfileobj(rejects, out, 1 << 20)
        if job.rejected:
            from ..bulk.importer import iter_rejects

            shown = []
            if job.rejects_path is not None and job.rejects_path.exists():
                for reject in iter_rejects(job.rejects_path):
                    shown.append(reject)
                    if len(shown) >= 5:
                        break
            _print_rejects(shown, job.rejected, options["rejects_out"] or job.rejects_path)
        sys.exit(_exit_status(job.state, job.counts))
    finally:
        if spooled is not None:
            with contextlib.suppress(OSError):
                spooled.unlink()
        services.close()


def _column_map(values: tuple[str, ...]) -> dict[str, str] | None:
    """``--map`` values as column -> field spec; a spec that means nothing is a usage error naming its column."""
    from ..bulk.formats.mapping import MappingError, column_map_from

    try:
        return column_map_from(values)
    except MappingError as exc:
        raise click.BadParameter(exc.message, param_hint="'--map'") from None


def _check_output(target: Path | None, name: str) -> None:
    """Before any work: a file the user named (``export -o``, ``--rejects``) must be one we can create."""
    if target is None:
        return
    folder = target.parent
    if target.is_dir():
        problem = "it is a folder"
    elif not folder.is_dir():
        problem = f"there is no folder {folder}"
    elif not os.access(folder, os.W_OK | os.X_OK):
        problem = f"the folder {folder} is not writable"
    else:
        return
    raise ConfigError(f"{setting(name)}: cannot write {target}: {problem}")


@contextlib.contextmanager
def _output(target: Path) -> Iterator[Path]:
    """A file the user named, written 0600 under a temporary name next to it and renamed into place when the
    block succeeds: the rename replaces a symlink there rather than writing through it, and a failed export
    leaves no half-written file. Open the yielded path with ``open_private(path, new=False)``."""
    try:
        with replacing(target) as partial:
            yield partial
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None


def _print_rejects(rejects: list[Any], total: int, where: Path | None) -> None:
    if not total:
        return
    click.echo(f"{total:,} rejected rows" + (f" (all in {where})" if where else "") + ", first ones:", err=True)
    for reject in rejects[:5]:
        column = f" {reject.column}:" if reject.column else ""
        click.echo(f"  line {reject.line}: {reject.email or '(no address)'}:{column} {reject.reason}", err=True)


@click.command("export")
@data_options
@backend_options
@click.option(
    "--sync/--no-sync",
    default=True,
    show_default=True,
    help="ses backend: bring the local mirror up to date with SES before exporting it. --no-sync exports the "
    "mirror as it is, with a warning saying when it was last synced.",
)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default=None, help="Default: from -o, else csv.")
@click.option("-o", "--output", default="-", show_default=True, help="File to write, or - for standard output.")
@click.option("--unsubscribed", "status", flag_value="OPT_OUT", help="Only contacts unsubscribed (from the topic).")
@click.option("--subscribed", "status", flag_value="OPT_IN", help="Only contacts subscribed (to the topic).")
@click.option("--topic", default=None, help="Filter on this topic (subscribed to it unless --unsubscribed).")
def export_command(**options: Any) -> None:
    """Write a contact list in the import formats (CSV, or SES's JSON Lines), so it re-imports as it is."""
    from ..bulk.exporter import export
    from ..model import OPT_IN, ContactQuery, TopicFilter

    output: str = options["output"]
    fmt: Literal["csv", "json"] = options["fmt"] or (
        "json" if output.lower().endswith((".json", ".jsonl", ".ndjson")) else "csv"
    )
    status = options["status"]
    topic = options["topic"]
    query = ContactQuery(
        status=status or (OPT_IN if topic else None),
        topic=TopicFilter(topic, use_default=True) if topic else None,
    )
    if output != "-":
        _check_output(Path(output), "output")
    # Reading must not create a list in the user's SES account; locally an empty default list is harmless.
    services = _open(options, create_list=options["backend"] == "local")
    try:
        with talking_to_ses():
            list_name = resolve_list(services, options["contact_list"], given_explicitly("contact_list"))
        _bring_mirror_up_to_date(services.store, list_name, sync=options["sync"])
        if output == "-":
            count = export(services.store, list_name, query, fmt, sys.stdout.buffer)
            sys.stdout.flush()
        else:
            with _output(Path(output)) as partial, open_private(partial, new=False) as out:
                count = export(services.store, list_name, query, fmt, out)
        if output != "-":
            click.echo(f"exported {count:,} contacts from {list_name} to {output}", err=True)
    finally:
        services.close()


def _bring_mirror_up_to_date(store: Any, list_name: str, *, sync: bool) -> None:
    """A store that reads from a mirror of SES (the ses backend) is synced before an export reads it, or, with
    ``--no-sync``, the export says how old the mirror is: never a silently stale file. Both on stderr."""
    from ..store.base import SyncedStore
    from .ses import echo_sync_progress

    if not isinstance(store, SyncedStore):
        return
    if sync:
        # Incremental: resumes an interrupted walk, else walks the list; either way the mirror is then current.
        with talking_to_ses():
            results = store.sync_now(full=False, on_progress=echo_sync_progress)
        for result in results:
            if result.list_name == list_name:
                click.echo(
                    f"{list_name}: synced with SES just now ({result.seen:,} contacts listed, "
                    f"{result.fetched:,} read, {result.removed:,} removed)",
                    err=True,
                )
        return
    status = store.sync_status(list_name)
    when = status.last_synced if status is not None else None
    if when is None:
        freshness = "was never synced: it holds only what this machine wrote to SES"
    else:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))
        freshness = f"was last synced {stamp} ({_age(time.time() - when)} ago); changes made in SES since are not in it"
    click.echo(f"warning: exported without syncing (--no-sync): the mirror of {list_name} {freshness}", err=True)


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


@click.group(invoke_without_command=True)
@data_options
@backend_options
@click.option(
    "--limit", default=20, show_default=True, type=WholeNumber(min=1), help="How many jobs to list, newest first."
)
@click.pass_context
def jobs(ctx: click.Context, /, **options: Any) -> None:
    """List import and undo jobs; `jobs resume ID` continues an interrupted one, `jobs cancel ID` stops one,
    `jobs undo ID` takes one back."""
    ctx.obj = options
    if ctx.invoked_subcommand is not None:
        return
    from ..bulk.job_manager import counts_summary

    services = _open(options)
    try:
        services.jobs.recover()
        listed = services.jobs.list(limit=options["limit"], kind=("import", "undo"))
        if not listed:
            click.echo("no import jobs")
            return
        for job in listed:
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created))
            click.echo(
                f"{job.id}  {job.state:<11}  {started}  {job.meta.get('started_by') or '-':<8} "
                f"{job.kind if job.kind == 'undo' else job.action:<6} "
                f"{job.contact_list}  {job.file_name}  "
                f"{job.rows_done:,} rows: {counts_summary(job.counts)}" + (f"  ({job.error})" if job.error else "")
            )
    finally:
        services.close()


def _job_services(ctx: click.Context) -> Any:
    return _open(ctx.obj or {})


@jobs.command("resume")
@click.argument("job_id")
@click.pass_context
def jobs_resume(ctx: click.Context, job_id: str) -> None:
    """Continue an interrupted (or failed, or cancelled) job from its last committed row, here."""
    services = _job_services(ctx)
    try:
        services.jobs.recover()
        job = services.jobs.resume(job_id, run_here=True)
        if job.state == "running":
            click.echo(f"job {job_id} is running in another process ({job.owner})", err=True)
            sys.exit(EXIT_NOTHING_DONE)
        if job.state == "completed":
            click.echo(f"job {job_id} is already completed: {_summary(job.counts, job.rows_done, None)}")
            sys.exit(_exit_status(job.state, job.counts))
        job = run_here(services, job_id, _ProgressLine(sys.stderr))
        click.echo(f"job {job_id} completed: " + _summary(job.counts, job.rows_done, None))
        sys.exit(_exit_status(job.state, job.counts))
    finally:
        services.close()


def run_here(services: Any, job_id: str, progress: _ProgressLine) -> Any:
    """Run a queued job in this process to its end (``jobs resume``, ``jobs undo --wait``): the completed job;
    Ctrl-C leaves it interrupted (exit 130), and a job that did not complete is an error."""
    try:
        job = services.jobs.run(job_id, progress=progress)
    except KeyboardInterrupt:
        progress.done()
        services.jobs.mark_interrupted(job_id)
        click.echo(f"interrupted; resume with: sescontacts jobs resume {job_id}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    progress.done()
    if job.state != "completed":
        raise ReportedError(job.error or job.state)
    return job


@jobs.command("cancel")
@click.argument("job_id")
@click.pass_context
def jobs_cancel(ctx: click.Context, job_id: str) -> None:
    """Cancel a queued job, or stop a running one after its current batch (committed rows stay)."""
    services = _job_services(ctx)
    try:
        job = services.jobs.cancel(job_id)
        if job.state == "running":
            click.echo(f"job {job_id}: cancel requested; it stops after its current batch")
        else:
            click.echo(f"job {job_id}: {job.state}")
    finally:
        services.close()
