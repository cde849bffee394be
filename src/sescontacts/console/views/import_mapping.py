"""The import dialog's mapping step, and the template CSV: a CSV from elsewhere mapped column by column.

A CSV whose header is not the page's own (a Mailchimp export, an ``email,name`` sheet) goes from the upload to
this step instead of the dry run. Each column gets a field, filled in with the mapping last used for the same
header (kept in the data dir's database, ``bulk/saved_mappings.py``), else from the names
(``bulk/formats/mapping.py``: the address's spellings, a string attribute named after any other column). The
page shows a few values of each column and the first rows as the importer reads them with the mapping;
**Preview** shows them again for a changed mapping, **Continue** remembers it and opens the dry run. From
there on the mapping travels as ``map=COLUMN=FIELD`` parameters (the CLI's ``--map``), so every step reloads
as it was and the job stores it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...bulk.formats import TOPIC_PREFIX, SafeCsvWriter
from ...bulk.formats.csv_reader import read_head
from ...bulk.formats.mapping import (
    ATTRIBUTE_TYPES,
    ColumnField,
    MappingError,
    column_map_from,
    parse_field,
    suggest_mapping,
)
from ...bulk.report import FileError
from .. import uploads
from .common import in_thread, is_htmx, list_name, redirect, render, services, url_with
from .imports import ACTIONS, _jobs, _options, with_map

SAMPLE_VALUES = 3  # values of each column shown next to it
PREVIEW_ROWS = 5
FLAGS = ("resubscribe", "merge_attributes", "extra_columns_as_attributes")


@dataclass(frozen=True)
class MappedColumn:
    """One row of the mapping form: the column, a few of its values, and the field it goes to."""

    index: int
    name: str
    samples: list[str]
    field: ColumnField

    @property
    def choice(self) -> str:
        """The value of the form's field select (a topic is one option per topic; an attribute, one option
        with its name and type beside it)."""
        return self.field.spec if self.field.kind == "topic" else self.field.kind


def step_url(path: str, upload_id: str, action: str, flags: dict[str, str], column_map: dict[str, str] | None) -> str:
    """A step's URL with the upload, the action, the options and the mapping."""
    return with_map(url_with(path, {"upload": upload_id, "action": action, **flags}), column_map)


def _columns(header: list[str], samples: list[list[str]], fields: list[ColumnField]) -> list[MappedColumn]:
    return [
        MappedColumn(
            i,
            column,
            [row[i] for row in samples if i < len(row) and row[i].strip()][:SAMPLE_VALUES],
            fields[i],
        )
        for i, column in enumerate(header)
    ]


def _fields_from_map(header: list[str], column_map: dict[str, str]) -> list[ColumnField]:
    """The mapping's field for each column (a column it does not name: the suggestion)."""
    by_name = {column.strip().lower(): spec for column, spec in column_map.items()}
    suggested = suggest_mapping(header)
    fields = []
    for i, column in enumerate(header):
        spec = by_name.get(column.lower())
        try:
            fields.append(parse_field(spec, column) if spec is not None else suggested[i])
        except MappingError:
            fields.append(suggested[i])
    return fields


def _fields_from_form(header: list[str], form: Any) -> tuple[list[ColumnField], str | None]:
    """The form's field for each column, and the first problem with it (an unknown choice or type)."""
    fields: list[ColumnField] = []
    problem = None
    for i, column in enumerate(header):
        choice = str(form.get(f"field.{i}", "skip"))
        if choice == "attribute":
            name = str(form.get(f"name.{i}", "")).strip() or column
            value_type = str(form.get(f"type.{i}", "string"))
            if value_type not in ATTRIBUTE_TYPES:
                problem = problem or f"column {column!r}: {value_type!r} is not a type"
                value_type = "string"
            fields.append(ColumnField("attribute", name, value_type))
            continue
        try:
            fields.append(parse_field(choice, column))
        except MappingError as exc:
            problem = problem or exc.message
            fields.append(ColumnField("skip"))
    return fields, problem


async def mapping_page(request: Request) -> Response:
    """GET: the mapping form, filled in from ``map`` parameters, else the remembered mapping, else the names."""
    params = request.query_params
    try:
        given = column_map_from(params.getlist("map"))
    except MappingError:
        given = None
    return await _mapping_step(request, dict(params), given_map=given, form=None)


async def submit_mapping(request: Request) -> Response:
    """POST: Preview (show the first rows with this mapping) or Continue (remember it, then the dry run)."""
    form = await request.form()
    return await _mapping_step(request, {k: str(v) for k, v in form.items()}, given_map=None, form=form)


async def show_again(request: Request, form: Any) -> Response:
    """The step as the user left it, for a form refused for an ended session or a stale token (see
    :mod:`.resubmit`): shown as after Preview, so nothing is remembered until they press Continue again."""
    kept = FormData([(k, v) for k, v in form.multi_items() if k != "do"])
    return await _mapping_step(request, {k: str(v) for k, v in kept.items()}, given_map=None, form=kept)


async def _mapping_step(
    request: Request, fields: dict[str, str], *, given_map: dict[str, str] | None, form: Any
) -> Response:
    jobs = _jobs(request)
    data_dir = services(request).settings.data_dir
    found = uploads.find(data_dir, fields.get("upload", ""))
    if found is None:
        return redirect("/import", flash="That upload is gone; choose the file again.", request=request)
    action = fields.get("action", "add")
    action = action if action in ACTIONS else "add"
    flags = {flag: "1" if fields.get(flag) == "1" else "" for flag in FLAGS}

    def work() -> dict[str, Any]:
        try:
            head = read_head(found.path, found.file_name, PREVIEW_ROWS)
        except FileError:
            head = None
        if head is None:  # not a CSV, or unreadable: the dry run says what is wrong
            return {}
        header, samples = head
        saved = None
        problem = None
        if form is not None:
            chosen, problem = _fields_from_form(header, form)
        elif given_map is not None:
            chosen = _fields_from_map(header, given_map)
        else:
            saved = jobs.mappings.recall(header)
            chosen = _fields_from_map(header, saved.mapping) if saved else suggest_mapping(header)
        column_map = {column: field.spec for column, field in zip(header, chosen, strict=True) if column}
        options = _options(request, action, flags, column_map)
        preview = jobs.preview(found.path, options, rows=PREVIEW_ROWS)
        if form is not None and fields.get("do") == "continue" and problem is None and preview.error is None:
            jobs.mappings.remember(header, column_map)
        return {
            "header": header,
            "columns": _columns(header, samples, chosen),
            "column_map": column_map,
            "saved": saved,
            "problem": problem,
            "preview": preview,
            "topics": list(services(request).store.get_list(list_name(request)).topic_names),
        }

    step = await in_thread(work)
    if not step:
        return redirect(
            step_url("/import/preview", found.id, action, flags, None), request=request, target="#dialog-body"
        )
    problem = step["problem"] or (str(step["preview"].error.message) if step["preview"].error else None)
    if form is not None and fields.get("do") == "continue" and problem is None:
        url = step_url("/import/preview", found.id, action, flags, step["column_map"])
        return redirect(url, request=request, target="#dialog-body")
    template = "import_dialog.html" if is_htmx(request) else "import.html"
    return render(
        request,
        template,
        status_code=400 if problem and form is not None and fields.get("do") == "continue" else 200,
        step="map",
        upload=found,
        action=action,
        flags=flags,
        mapping_problem=problem,
        attribute_types=ATTRIBUTE_TYPES,
        **{k: v for k, v in step.items() if k != "problem"},
    )


async def template_csv(request: Request) -> Response:
    """A CSV to fill in: the page's columns, one per topic of the list, and an example row."""
    topics = await in_thread(lambda: list(services(request).store.get_list(list_name(request)).topic_names))
    out = io.StringIO()
    writer = SafeCsvWriter(out)
    writer.writerow(["emailAddress", "unsubscribeAll", "attributesData", *(TOPIC_PREFIX + t for t in topics)])
    writer.writerow(["ann@example.com", "false", '{"Name": "Ann", "Company": "ACM Inc"}', *("OPT_IN" for _ in topics)])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="contacts-template.csv"'},
    )


routes = [
    Route("/import/map", mapping_page, methods=["GET"], name="import_map"),
    Route("/import/map", submit_mapping, methods=["POST"], name="import_map_submit"),
    Route("/import/template.csv", template_csv, methods=["GET"], name="import_template"),
]
