"""``sescontacts serve`` and ``sescontacts credentials``."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import click

from ..history import DEFAULT_RETENTION_DAYS
from ..settings import OBSERVED, SES_SEMANTICS, Settings
from .events import events_queue_option
from .failures import ConfigError, talking_to_ses
from .options import (
    Number,
    WholeNumber,
    data_dir_errors,
    data_dir_option,
    data_options,
    open_services,
    prepare_data_dir,
    setting,
    settings_from,
)
from .ses import ses_options, throttle_option


def register(main: click.Group) -> None:
    main.add_command(serve)
    main.add_command(credentials)


@click.command()
@data_options
@click.option("--host", envvar="SESCONTACTS_HOST", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    envvar="SESCONTACTS_PORT",
    default=8000,
    show_default=True,
    type=WholeNumber(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--backend",
    envvar="SESCONTACTS_BACKEND",
    type=click.Choice(["local", "ses"]),
    default="local",
    show_default=True,
    help="local: contacts in SQLite, with an SES-compatible API. ses: a real Amazon SES contact list.",
)
@click.option(
    "--max-upload-mb",
    envvar="SESCONTACTS_MAX_UPLOAD_MB",
    default=1024,
    show_default=True,
    type=WholeNumber(min=1),
    help="Largest file the console accepts for import, in MiB.",
)
@click.option(
    "--workers",
    envvar="SESCONTACTS_WORKERS",
    default=1,
    show_default=True,
    type=WholeNumber(min=1),
    help="Server processes answering on the one port, all on the one data dir. More than one uses more cores "
    "for many concurrent API clients or console users; one of them runs the background work (search index, "
    "import jobs). local backend only, without --throttle.",
)
@click.option("--access-log/--no-access-log", default=False, help="Log every HTTP request.")
@click.option(
    "--forwarded-allow-ips",
    envvar="SESCONTACTS_FORWARDED_ALLOW_IPS",
    callback=lambda ctx, param, value: _proxy_addresses(value),
    help="Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto "
    "are believed ('*': any). By default none: the client is the peer of the TCP connection.",
)
@click.option(
    "--allowed-hosts",
    envvar="SESCONTACTS_ALLOWED_HOSTS",
    callback=lambda ctx, param, value: _host_names(value),
    help="Comma-separated host names the server answers to (the Host header; '*': any). By default the --host "
    "address, plus localhost for a loopback address; any host for 0.0.0.0 or :: (with a warning).",
)
@click.option(
    "--header-timeout",
    envvar="SESCONTACTS_HEADER_TIMEOUT",
    default=10.0,
    show_default=True,
    type=Number(min=0.1),
    help="Seconds a client has to send a request's line and headers; then 408 and the connection is closed.",
)
@click.option(
    "--body-timeout",
    envvar="SESCONTACTS_BODY_TIMEOUT",
    default=30.0,
    show_default=True,
    type=Number(min=0.1),
    help="Seconds a request body may stall (no bytes) before the connection is closed.",
)
@click.option(
    "--keep-alive-timeout",
    envvar="SESCONTACTS_KEEP_ALIVE_TIMEOUT",
    default=5.0,
    show_default=True,
    type=Number(min=0.1),
    help="Seconds an idle connection is kept open between requests.",
)
@click.option(
    "--events-sns-topic-arn",
    "events_sns_topic_arns",
    envvar="SESCONTACTS_EVENTS_SNS_TOPIC_ARN",
    callback=lambda ctx, param, value: _topic_arns(value),
    help="Comma-separated ARNs of SNS topics that carry SES events: POST /events/sns accepts their signed "
    "messages (it confirms the subscription itself). By default the endpoint is off.",
)
@click.option(
    "--history-retention-days",
    envvar="SESCONTACTS_HISTORY_RETENTION_DAYS",
    default=DEFAULT_RETENTION_DAYS,
    show_default=True,
    type=WholeNumber(min=0),
    help="Days the contact history (who changed which contact, when, what; what undo reads) is kept; older "
    "changes are pruned in the background. 0: record nothing, and prune what was recorded.",
)
@ses_options
@events_queue_option
@throttle_option
@click.option(
    "--ses-semantics",
    envvar="SESCONTACTS_SES_SEMANTICS",
    type=click.Choice(SES_SEMANTICS),
    default=OBSERVED,
    show_default=True,
    help="How the local SES API applies the updates its sources disagree on. observed (as probed on SES): "
    "UpdateContact merges TopicPreferences by topic, UpdateContactList keeps an omitted Topics or Description. "
    "documented (as the API reference says): they are removed.",
)
def serve(**options: Any) -> None:
    """Start the web console and the SES v2 API on one port."""
    settings = settings_from(**options, max_upload_bytes=options["max_upload_mb"] * 1024 * 1024)
    workers = int(options["workers"])
    from .users import check_admin_password

    check_admin_password()
    check_workers(settings, workers)
    check_can_listen(settings.host, settings.port)
    services = open_services(settings)
    try:
        with talking_to_ses():  # the ses backend could not reach SES: say why, no traceback
            created = services.ensure_default_list()
    except ConfigError:
        services.close()
        raise
    for line in banner(services, list_created=created, workers=workers):
        click.echo(line)
    from .users import first_start_lines

    for line in first_start_lines(services):
        click.echo(line)
    from ..server.hosts import startup_warning

    warning = startup_warning(settings.allowed_hosts, settings.host)
    if warning:
        click.echo(warning, err=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal, which would end the process
    # with "killed by signal" (-15, or "Aborted!" for ^C). A requested stop is a clean exit: status 0. (With
    # workers, uvicorn's supervisor takes these signals over once it runs, and returns when they stopped.)
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _exit_cleanly)
    if workers > 1:
        # The workers open the data dir each (server/processes.py); this process only supervises them.
        services.close()
        from ..server.processes import run_workers

        status = run_workers(settings, workers=workers, access_log=options["access_log"])
        if status:
            raise SystemExit(status)
        return
    import uvicorn

    from ..server.app import build_app
    from ..server.connections import log_config, uvicorn_options
    from ..server.processes import connection_limits

    uvicorn.run(
        build_app(services),
        host=settings.host,
        port=settings.port,
        workers=1,  # not uvicorn's reading of WEB_CONCURRENCY, which refuses an app object
        log_config=log_config(options["access_log"]),
        access_log=options["access_log"],
        lifespan="on",
        **uvicorn_options(connection_limits(settings), settings.forwarded_allow_ips),
    )


def check_workers(settings: Settings, workers: int) -> None:
    """``--workers`` > 1 where a budget is counted per process: refused in one line, before anything starts."""
    if workers == 1:
        return
    if settings.backend == "ses":
        raise ConfigError(
            f"{setting('workers')}: the ses backend runs one process (--workers 1): its pacer keeps SES's request "
            f"rate for the process, and {workers} workers would each send at that rate"
        )
    if settings.throttle:
        raise ConfigError(
            f"{setting('workers')}: --throttle counts requests per process, so {workers} workers would allow "
            f"{workers} times its rate; use --workers 1 with --throttle"
        )


def _proxy_addresses(value: str | None) -> tuple[str, ...]:
    """``--forwarded-allow-ips``: each entry an IP address or network, or ``*``."""
    import ipaddress

    entries = tuple(part.strip() for part in (value or "").split(",") if part.strip())
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise click.BadParameter(
                f"{entry!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8) or '*'."
            ) from None
    return entries


def _topic_arns(value: str | None) -> tuple[str, ...]:
    """``--events-sns-topic-arn``: each entry an SNS topic ARN."""
    arns = tuple(part.strip() for part in (value or "").split(",") if part.strip())
    for arn in arns:
        if not re.fullmatch(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}", arn):
            raise click.BadParameter(f"{arn!r} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")
    return arns


def _host_names(value: str | None) -> tuple[str, ...]:
    """``--allowed-hosts``: names as a Host header carries them (a port, if given, is ignored)."""
    from ..server.hosts import host_name

    names = []
    for part in (value or "").split(","):
        if not part.strip():
            continue
        name = "*" if part.strip() == "*" else host_name(part.strip())
        if name is None:
            raise click.BadParameter(f"{part.strip()!r} is not a host name or address (e.g. contacts.example.com).")
        names.append(name)
    return tuple(names)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def banner(services: Any, *, list_created: bool, workers: int = 1) -> list[str]:
    settings = services.settings
    lines = [
        f"sescontacts is running at {settings.url}",
        f"  backend:      {settings.backend}",
        f"  region:       {settings.region}",
        f"  contact list: {settings.contact_list}" + ("  (created now)" if list_created else ""),
        f"  data:         {settings.data_dir.resolve()}",
    ]
    if workers > 1:
        lines.append(f"  workers:      {workers} processes (one of them runs the search index and the import jobs)")
    if settings.events_queue_url:
        lines.append(f"  SES events:   polling {settings.events_queue_url}")
    if settings.backend == "local":
        lines.append(
            f"  SES updates:  {settings.ses_semantics} (UpdateContact, UpdateContactList; see --ses-semantics)"
        )
    if settings.backend == "local" and not list_created:
        lines += _missing_list_lines(services)
    if settings.backend == "local":
        lines += [
            "",
            "Use any SES v2 client against it, e.g. the AWS CLI:",
            _keys_line(services),
            f"  aws sesv2 list-contacts --endpoint-url {settings.url} --region {settings.region} "
            f"--contact-list-name {settings.contact_list}",
        ]
    return lines


def _missing_list_lines(services: Any) -> list[str]:
    """The configured list was not created because another list holds SES's one-list quota: say so, rather
    than print instructions for a list that does not exist."""
    from ..errors import NotFound

    try:
        services.store.get_list(services.settings.contact_list)
        return []
    except NotFound:
        pass
    existing = [f"'{lst.name}'" for lst in services.store.list_lists(page_size=10).items]
    return [
        "",
        f"WARNING: contact list '{services.settings.contact_list}' does not exist, and it was not created because "
        f"this region already has {', '.join(existing)} (SES allows one list per region).",
        "  Use --contact-list with that name, or lift the quota with --max-contact-lists unlimited.",
    ]


def _keys_line(services: Any) -> str:
    """How to get the keys this server accepts. Keys given in the environment are not in the data dir, so
    `sescontacts credentials` in a shell without them would print (and create) another pair."""
    if services.access_key.source.startswith("environment"):
        return (
            '  export AWS_ACCESS_KEY_ID="$SESCONTACTS_ACCESS_KEY_ID" '
            'AWS_SECRET_ACCESS_KEY="$SESCONTACTS_SECRET_ACCESS_KEY"  # the keys set in the environment'
        )
    return '  eval "$(sescontacts credentials' + _data_dir_flag(services.settings) + ')"'


def _data_dir_flag(settings: Any) -> str:
    import shlex

    from ..settings import DEFAULT_DATA_DIR

    if str(settings.data_dir) == DEFAULT_DATA_DIR.removeprefix("./"):
        return ""
    return f" --data-dir {shlex.quote(str(settings.data_dir))}"


@click.command()
@data_dir_option
def credentials(data_dir: Path) -> None:
    """Print the local SES API's access keys as shell `export` lines (for `eval`)."""
    from ..credentials import load_or_create

    prepare_data_dir(data_dir)
    with data_dir_errors(data_dir):
        key = load_or_create(data_dir)
    click.echo(f"export AWS_ACCESS_KEY_ID={key.access_key_id}")
    click.echo(f"export AWS_SECRET_ACCESS_KEY={key.secret_access_key}")


def check_can_listen(host: str, port: int) -> None:
    """Bind the address as uvicorn will, before anything is opened or printed, so that a port in use or a host
    that is not ours is one line, not uvicorn's log and exit status 1 after the start-up banner."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is not "in use"
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use ({setting('port')})") from None
        if exc.errno == errno.EACCES:
            raise ConfigError(f"port {port} needs more privileges; use one from 1024 ({setting('port')})") from None
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"{setting('host')}: cannot listen on {host!r} ({reason}); expected an address of this machine "
            "such as 127.0.0.1, 0.0.0.0 or ::"
        ) from None
