"""The web console as one Starlette app: routes from ``views/``, templates, static files, the gate.

``server/app.py`` mounts it for every path outside ``/v2/``. Everything it does to contacts goes through
``services.store`` (a ``ContactStore``), so it serves the local and the ses backend alike.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from ..accounts.login_limit import LoginLimiter
from ..accounts.sessions import Sessions
from ..accounts.users import Users
from ..errors import ListNotFound, SesContactsError
from ..model import OPT_IN, Count, DayCounts, attribute_text, email_key
from ..services import Services
from .auth import SessionCodec, session_secret
from .gate import Gate
from .views import (
    account,
    activity,
    aws,
    contact_form,
    contact_list,
    contacts,
    exports,
    import_mapping,
    imports,
    login,
    resubmit,
    suppression,
    topics,
    undo,
)
from .views.common import render

HERE = Path(__file__).parent
STATIC = HERE / "static"
HTMX_FILE = "htmx-2.0.11.min.js"
# The vendored htmx, pinned: tests/test_console_static.py checks the file against this digest.
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


def format_time(timestamp: float | None) -> str:
    if not timestamp:
        return "—"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def relative_time(timestamp: float | None, now: float | None = None) -> str:
    """How long ago, in words ("3 minutes ago"); the page shows the exact time on hover (``when``)."""
    if not timestamp:
        return "—"
    seconds = (now if now is not None else dt.datetime.now(dt.UTC).timestamp()) - timestamp
    if seconds < 60:
        return "just now"
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'' if n == 1 else 's'} ago"
    return "just now"


def iso_time(timestamp: float | None) -> str:
    """A ``<time datetime>`` value."""
    return dt.datetime.fromtimestamp(timestamp or 0, dt.UTC).isoformat(timespec="seconds")


def format_count(count: Count | int) -> str:
    """``10,000+`` for a count that stopped at its cap: we never scan a million rows to print a number."""
    if isinstance(count, Count):
        return f"{count.value:,}" + ("" if count.exact else "+")
    return f"{count:,}"


def plural(count: Count | int, word: str, many: str = "") -> str:
    """The noun after a number: ``word`` for exactly one ("1 contact"), else ``many`` or ``word`` + s (a capped
    "10,000+" is many)."""
    one = (count.value == 1 and count.exact) if isinstance(count, Count) else count == 1
    return word if one else (many or word + "s")


def breakable(address: str) -> Markup:
    """An address that wraps after its ``@`` and dots rather than mid-word: a long one in a narrow column reads
    as ``someone.``/``example.``/``com``, not ``someo``/``ne@exa``."""
    return Markup(str(escape(address)).replace("@", "@<wbr>").replace(".", ".<wbr>"))


def attribute_summary(data: str | None, limit: int = 3) -> list[tuple[str, str]]:
    """The first few ``key: value`` pairs, values shortened, for the table's attributes column."""
    if not data:
        return []
    from ..model import Contact

    attributes = Contact("x", attributes_data=data).attributes()
    if attributes is None:
        return [("(raw)", data[:60] + ("…" if len(data) > 60 else ""))]
    pairs = []
    for key, value in list(attributes.items())[:limit]:
        text = attribute_text(value)
        pairs.append((key[:40], text[:40] + ("…" if len(text) > 40 else "")))
    if len(attributes) > limit:
        pairs.append(("", f"+{len(attributes) - limit} more"))
    return pairs


def counts_summary(counts: dict[str, int]) -> str:
    """``created 3, rejected 1``: the non-zero outcomes of an import, for the history table."""
    from ..bulk.job_manager import counts_summary as summary

    return summary(counts)


def calendar_days(per_day: tuple[DayCounts, ...], days: int = 30, today: dt.date | None = None) -> list[DayCounts]:
    """The last ``days`` calendar days with their counts, quiet days included: gaps are part of the story."""
    end = today or dt.datetime.now(dt.UTC).date()
    counts = {d.day: d for d in per_day}
    return [
        counts.get(day, DayCounts(day))
        for day in ((end - dt.timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1))
    ]


def _static_version() -> str:
    """A digest of the static files, appended to their URLs so a new release is never served stale."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def make_jinja() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = format_time
    env.filters["ago"] = relative_time
    env.filters["iso_time"] = iso_time
    env.filters["count"] = format_count
    env.filters["plural"] = plural
    env.filters["breakable"] = breakable
    env.filters["attr_summary"] = attribute_summary
    env.filters["attr_text"] = attribute_text
    env.filters["calendar_days"] = calendar_days
    env.filters["email_key"] = email_key
    env.filters["counts_summary"] = counts_summary
    env.globals["HTMX_FILE"] = HTMX_FILE
    env.globals["STATIC_VERSION"] = _static_version()
    env.globals["OPT_IN"] = OPT_IN
    return env


def console_routes() -> list[BaseRoute]:
    return [
        *login.routes,
        *account.routes,
        *contacts.routes,
        *contact_form.routes,
        *topics.routes,
        *suppression.routes,
        *aws.routes,
        *imports.routes,
        *import_mapping.routes,
        *exports.routes,
        *contact_list.routes,
        *activity.routes,
        *undo.routes,
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]


async def _store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SesContactsError)
    if isinstance(exc, ListNotFound):
        return contact_list.list_missing(request)
    return render(request, "error.html", status_code=exc.status, message=exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: "There is no page at this address.", 405: "This page does not accept that kind of request."}
    message = messages.get(exc.status_code, str(exc.detail))
    return render(request, "error.html", status_code=exc.status_code, message=message)


def create_console_app(services: Services) -> Gate:
    users = Users(services.db)
    app = Starlette(
        routes=console_routes(),
        exception_handlers={SesContactsError: _store_error, HTTPException: _http_error},
    )
    app.state.services = services
    app.state.users = users
    app.state.sessions = Sessions(services.db)
    app.state.jinja = make_jinja()
    app.state.login_limiter = LoginLimiter(services.db)
    app.state.stats_cache = {}
    # Forms the gate refuses (no session, a stale token) are shown again by an app of their own: it has no
    # route that writes, only resubmit.refused, and shares the console's state and error pages.
    refused = Starlette(routes=resubmit.routes, exception_handlers=app.exception_handlers)
    refused.state = app.state
    return Gate(app, app.state.sessions, SessionCodec(session_secret(services.db)), refused=refused)
