"""The Import Contacts dialog: upload, preview and dry run, then a job with live progress and history.

Every step has its own URL, so the dialog is also a set of plain pages: a reload (or a second tab) of a
running import's page shows its progress, read from the job record the bulk engine persists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ...bulk.formats.csv_reader import needs_mapping
from ...bulk.formats.mapping import MappingError, column_map_from, map_values
from ...errors import NotFound
from .. import uploads
from .common import in_thread, is_htmx, list_name, redirect, render, render_partial, services, url_with
from .undo import undo_offered

HISTORY = 20
ACTIONS = {"add": "Add contacts", "delete": "Delete contacts"}


def _jobs(request: Request) -> Any:
    jobs = getattr(services(request), "jobs", None)
    if jobs is None:
        raise NotFound("Imports are not available: the bulk engine is not running.")
    return jobs


@dataclass(frozen=True)
class JobProgress:
    """Rate and ETA for a job, computed from its persisted counters (so any page load can show them)."""

    rate: float  # rows per second
    eta_seconds: float | None
    elapsed: float

    @classmethod
    def of(cls, job: Any, now: float | None = None) -> JobProgress:
        now = now or time.time()
        end = job.finished or now
        elapsed = max(0.0, end - job.started) if job.started else 0.0
        rate = job.rows_done / elapsed if elapsed > 0 else 0.0
        eta = None
        if job.state == "running" and job.bytes_done and elapsed > 0 and job.bytes_total:
            eta = max(0.0, (job.bytes_total - job.bytes_done) * elapsed / job.bytes_done)
        return cls(rate, eta, elapsed)


def _options(request: Request, action: str, fields: dict[str, str], column_map: dict[str, str] | None = None) -> Any:
    from ...bulk.report import ImportOptions

    return ImportOptions(
        contact_list=list_name(request),
        action="delete" if action == "delete" else "add",
        resubscribe=fields.get("resubscribe") == "1",
        merge_attributes=fields.get("merge_attributes") == "1",
        extra_columns_as_attributes=fields.get("extra_columns_as_attributes") == "1",
        column_map=column_map,
    )


def _column_map(values: list[str]) -> dict[str, str] | None:
    """The ``map=COLUMN=FIELD`` values the mapping step put in the URL (or the start form); None: no mapping."""
    try:
        return column_map_from(values)
    except MappingError:
        return None


async def import_page(request: Request) -> Response:
    jobs = _jobs(request)
    history = await in_thread(jobs.list, HISTORY)
    template = "import_dialog.html" if is_htmx(request) else "import.html"
    return render(request, template, step="upload", history=history, error=None, max_bytes=_max(request))


def _remove_stale_uploads(jobs: Any, data_dir: Any) -> None:
    """Uploads nobody imported go after a week; those a queued, running or resumable job reads stay."""
    keep = {job.path.parent.name for job in jobs.list(500) if job.state not in ("completed",)}
    uploads.remove_stale(data_dir, keep)


def _max(request: Request) -> int:
    return services(request).settings.max_upload_bytes


async def upload(request: Request) -> Response:
    jobs = _jobs(request)
    data_dir = services(request).settings.data_dir
    await in_thread(_remove_stale_uploads, jobs, data_dir)
    try:
        received = await uploads.receive_upload(request, data_dir, _max(request))
    except uploads.UploadError as exc:
        history = await in_thread(jobs.list, HISTORY)
        template = "import_dialog.html" if is_htmx(request) else "import.html"
        return render(
            request,
            template,
            status_code=exc.status,
            step="upload",
            history=history,
            error=exc.message,
            max_bytes=_max(request),
        )
    action = received.fields.get("action", "add")
    params = {"upload": received.id, "action": action if action in ACTIONS else "add"}
    for flag in ("resubscribe", "merge_attributes", "extra_columns_as_attributes"):
        params[flag] = received.fields.get(flag, "")
    return redirect(url_with("/import/preview", params), request=request, target="#dialog-body")


async def preview(request: Request) -> Response:
    jobs = _jobs(request)
    data_dir = services(request).settings.data_dir
    found = uploads.find(data_dir, request.query_params.get("upload", ""))
    if found is None:
        return redirect("/import", flash="That upload is gone; choose the file again.", request=request)
    action = request.query_params.get("action", "add")
    action = action if action in ACTIONS else "add"
    fields = {k: v for k, v in request.query_params.items() if k != "map"}
    column_map = _column_map(request.query_params.getlist("map"))
    options = _options(request, action, fields, column_map)
    if column_map is None and await in_thread(needs_mapping, found.path, found.file_name):
        # A CSV from elsewhere: its columns are mapped first (views/import_mapping.py).
        return redirect(url_with("/import/map", fields), request=request, target="#dialog-body")

    def work() -> tuple[Any, Any]:
        return jobs.preview(found.path, options, rows=10), jobs.dry_run(found.path, options)

    file_preview, report = await in_thread(work)
    template = "import_dialog.html" if is_htmx(request) else "import.html"
    return render(
        request,
        template,
        step="preview",
        upload=found,
        action=action,
        options=options,
        preview=file_preview,
        report=report,
        other_action_url=with_map(
            url_with("/import/preview", {**fields, "action": "delete" if action == "add" else "add"}), column_map
        ),
        column_map=column_map,
        map_url=with_map(url_with("/import/map", fields), column_map) if column_map is not None else None,
    )


def with_map(url: str, column_map: dict[str, str] | None) -> str:
    """``url`` with the mapping as repeated ``map=COLUMN=FIELD`` parameters."""
    values = map_values(column_map)
    return url + ("&" if "?" in url else "?") + urlencode([("map", v) for v in values]) if values else url


async def start(request: Request) -> Response:
    jobs = _jobs(request)
    submitted = await request.form()
    form = {k: str(v) for k, v in submitted.items()}
    found = uploads.find(services(request).settings.data_dir, form.get("upload", ""))
    if found is None:
        return redirect("/import", flash="That upload is gone; choose the file again.", request=request)
    column_map = _column_map([str(v) for v in submitted.getlist("map")])
    options = _options(request, form.get("action", "add"), form, column_map)
    job = await in_thread(jobs.submit, found.path, options, file_name=found.file_name)
    return redirect(f"/import/jobs/{job.id}", request=request, target="#dialog-body")


async def job_page(request: Request) -> Response:
    jobs = _jobs(request)
    job = await in_thread(jobs.get, request.path_params["job_id"])
    progress = JobProgress.of(job)
    undo = await in_thread(undo_offered, services(request), job)
    if is_htmx(request) and request.headers.get("hx-target") == "job-progress":
        return render_partial(request, "job_progress", job, progress, undo)
    template = "import_dialog.html" if is_htmx(request) else "import.html"
    return render(request, template, step="job", job=job, progress=progress, undo_ready=undo)


async def rejects(request: Request) -> Response:
    job = await in_thread(_jobs(request).get, request.path_params["job_id"])
    if job.rejects_path is None or not job.rejects_path.exists():
        return render(request, "error.html", status_code=404, message="This import rejected no rows.")
    stem = job.file_name.rsplit(".", 1)[0]
    return FileResponse(job.rejects_path, media_type="text/csv", filename=f"{stem}-rejected.csv")


async def cancel(request: Request) -> Response:
    job = await in_thread(_jobs(request).cancel, request.path_params["job_id"])
    return redirect(f"/import/jobs/{job.id}", request=request, target=_target(request))


async def resume(request: Request) -> Response:
    job = await in_thread(_jobs(request).resume, request.path_params["job_id"])
    return redirect(f"/import/jobs/{job.id}", request=request, target=_target(request))


def _target(request: Request) -> str | None:
    """Stay in the dialog when the button was pressed inside it; otherwise reload the page."""
    return "#dialog-body" if request.headers.get("hx-target") == "dialog-body" else None


routes = [
    Route("/import", import_page, methods=["GET"], name="import"),
    Route("/import/upload", upload, methods=["POST"], name="import_upload"),
    Route("/import/preview", preview, methods=["GET"], name="import_preview"),
    Route("/import/start", start, methods=["POST"], name="import_start"),
    Route("/import/jobs/{job_id}", job_page, methods=["GET"], name="import_job"),
    Route("/import/jobs/{job_id}/rejects.csv", rejects, methods=["GET"], name="import_rejects"),
    Route("/import/jobs/{job_id}/cancel", cancel, methods=["POST"], name="import_cancel"),
    Route("/import/jobs/{job_id}/resume", resume, methods=["POST"], name="import_resume"),
]
