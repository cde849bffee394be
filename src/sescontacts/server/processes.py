"""``serve --workers N``: N server processes on one listening socket, under uvicorn's supervisor.

uvicorn's multiprocess mode binds the socket in the parent and *spawns* each worker (a fresh interpreter,
not a fork: no SQLite connection or thread of the parent is carried over), handing it the pickled Config.
So the Config here carries the Settings, and each worker opens its own Services and builds its app when
uvicorn loads it. The HTTP protocol class that enforces the connection limits (``connections.py``) is made
in the worker too: a class made at run time does not pickle. The supervisor pings each worker, starts a new
one when one dies, and stops the server when a worker fails to start (a broken data dir would fail the
same way on every restart).

The parent opens the data dir once before any worker starts (the default list, the console's admin user
and its first-start password, the banner: ``cli/serve.py``), closes it, and from then on only supervises.
Which worker runs the background work is settled between them (``background.py``).
"""

from __future__ import annotations

import functools
import logging
import secrets
import sys
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE

from ..settings import Settings
from .connections import ConnectionLimits, log_config, protocol_class, uvicorn_options

# Seconds the supervisor waits for a worker's answer to its ping before it kills it as hung. uvicorn's 5 s
# is shorter than a spawned worker's imports can take on a loaded 2-core box (the ping waits for them).
HEALTHCHECK_SECONDS = 30

logger = logging.getLogger("uvicorn.error")


class WorkerConfig(uvicorn.Config):
    """uvicorn's Config for the workers of one ``serve --workers N``, built in the parent and pickled to each
    worker: uvicorn's options as the one-process server has them, plus the settings each worker opens."""

    def __init__(self, settings: Settings, *, workers: int, access_log: bool, group: str) -> None:
        self.settings = settings
        self.group = group  # shared by this server's workers (bulk/job_manager.py: whose jobs to take over)
        self.limits = connection_limits(settings)
        options = uvicorn_options(self.limits, settings.forwarded_allow_ips)
        del options["http"]  # made in load(), in the worker
        super().__init__(
            "sescontacts.server.processes:worker_app",  # named for logs; load_app() below binds the settings
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_config=log_config(access_log),
            access_log=access_log,
            lifespan="on",
            timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
            **options,
        )

    def load(self) -> None:
        self.http = protocol_class(self.limits)
        super().load()

    def load_app(self) -> Callable[[], ASGIApp]:
        return functools.partial(worker_app, self.settings, self.group)


def connection_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(settings.header_timeout, settings.body_timeout, settings.keep_alive_timeout)


def worker_app(settings: Settings, group: str) -> ASGIApp:
    """In a worker: its own Services on the data dir (the parent already created and migrated it), the app."""
    from ..services import Services
    from .app import build_app

    try:
        services = Services.open(settings, group=group)
    except Exception as exc:  # one line, and the status that tells the supervisor not to retry
        logger.error("a server worker could not open %s: %s", settings.data_dir, exc)
        sys.exit(STARTUP_FAILURE)
    return build_app(services)


def run_workers(settings: Settings, *, workers: int, access_log: bool) -> int:
    """Serve with ``workers`` processes until SIGINT or SIGTERM; returns the exit status (STARTUP_FAILURE when
    a worker could not start)."""
    from uvicorn.supervisors import Multiprocess

    config = WorkerConfig(settings, workers=workers, access_log=access_log, group=f"serve-{secrets.token_hex(6)}")
    sock = config.bind_socket()
    supervisor = Multiprocess(config, sockets=[sock])
    try:
        supervisor.run()
    finally:
        sock.close()
    return STARTUP_FAILURE if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes) else 0
