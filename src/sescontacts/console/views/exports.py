"""Export: the table's current search and filter as a CSV or JSON file in the import format.

The exporter writes to a file under ``<data dir>/exports`` in a worker thread and the response streams
that file; it is removed once sent. A million contacts never sit in memory.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from pathlib import Path
from typing import Literal

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ...private_files import make_private_dir, open_private
from .common import in_thread, list_name, services
from .filters import ContactsView

ExportFormat = Literal["csv", "json"]
FORMATS: dict[ExportFormat, str] = {"csv": "text/csv; charset=utf-8", "json": "application/x-ndjson; charset=utf-8"}


def _export(request: Request, view: ContactsView, fmt: ExportFormat, path: Path) -> None:
    from ...bulk.exporter import export

    store, name = services(request).store, list_name(request)
    query = view.query(store.get_list(name))
    with open_private(path) as out:
        export(store, name, query, fmt, out)


async def export_contacts(request: Request) -> Response:
    view = ContactsView.from_params(request.query_params)
    fmt: ExportFormat = "json" if request.query_params.get("format", "csv") == "json" else "csv"
    folder = services(request).settings.data_dir / "exports"
    make_private_dir(folder)
    path = folder / f"{uuid.uuid4().hex}.{fmt}"
    try:
        await in_thread(_export, request, view, fmt, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", view.describe()).strip("-")[:60] or "contacts"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    file_name = f"{list_name(request)}-{label}-{stamp}.{fmt}"

    def cleanup() -> None:
        with contextlib.suppress(OSError):
            path.unlink()

    return FileResponse(path, media_type=FORMATS[fmt], filename=file_name, background=BackgroundTask(cleanup))


routes = [Route("/export", export_contacts, methods=["GET"], name="export")]
