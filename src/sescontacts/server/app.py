"""The one ASGI app: the SES v2 API under ``/v2/`` and the web console everywhere else, on one port.

Every request first passes the Host check (``hosts.py``); any answer sent before the request body was read
waits for the body (``request_body.py``). Dispatch is on the raw path: the SES API routes
and signs the still-percent-encoded path, so it must see ``scope["raw_path"]`` untouched (``%2F`` in an
address is not a path separator).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..console.app import create_console_app
from ..events.sns import CertificateSource, SnsVerifier
from ..events.sns_endpoint import PATH as SNS_PATH
from ..events.sns_endpoint import SnsEndpoint, recorder
from ..services import Services
from ..sesapi.app import create_sesapi_app
from .hosts import HostCheck, allowed_hosts
from .request_body import ReadBeforeAnswer

SES_PREFIX = b"/v2/"
SNS_RAW_PATH = SNS_PATH.encode()


def build_app(services: Services, *, sns_certificates: CertificateSource | None = None) -> ASGIApp:
    """The server's app. ``sns_certificates`` is for tests only (a test certificate for the SNS endpoint):
    no setting reaches it, so a configured server trusts only certificates fetched from SNS's own hosts."""
    sesapi = create_sesapi_app(services)
    console = create_console_app(services)
    sns = SnsEndpoint(
        services.db,
        SnsVerifier(services.settings.events_sns_topic_arns, certificates=sns_certificates),
        recorder(services.events),
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(services, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if raw_path.startswith(SES_PREFIX):
            await sesapi(scope, receive, send)
        elif raw_path == SNS_RAW_PATH:
            await sns(scope, receive, send)
        else:
            await console(scope, receive, send)

    settings = services.settings
    # Outermost, so that every early answer (the Host check's too) reaches a client still sending its body.
    return ReadBeforeAnswer(HostCheck(app, allowed_hosts(settings.allowed_hosts, settings.host), SES_PREFIX))


async def _lifespan(services: Services, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                services.start()
            except Exception as exc:  # a failed start must stop the server with the reason, not hang
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            services.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
