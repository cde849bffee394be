"""Receive an uploaded file by streaming the multipart body straight to ``<data dir>/uploads/``.

Starlette's ``request.form()`` would spool the file through a temporary file of its own choosing and keep
small ones in memory; we parse the stream ourselves so that a 500 MB file never sits in memory, lands
where the import job will read it (no copy), and is cut off the moment it passes the size cap.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from ..private_files import make_private_dir, open_private

MAX_FIELD_BYTES = 4096
STALE_SECONDS = 7 * 24 * 3600
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


class UploadError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Upload:
    id: str
    path: Path
    file_name: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)


def uploads_dir(data_dir: Path) -> Path:
    return data_dir / "uploads"


def safe_file_name(name: str) -> str:
    """The client's file name, reduced to something safe to show and to put in a path."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._ -]+", "_", base).strip(" .")[:120]
    return cleaned or "upload"


def find(data_dir: Path, upload_id: str) -> Upload | None:
    if not _UPLOAD_ID.fullmatch(upload_id or ""):
        return None
    folder = uploads_dir(data_dir) / upload_id
    files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    if not files:
        return None
    path = files[0]
    return Upload(upload_id, path, path.name, path.stat().st_size)


def remove_stale(data_dir: Path, keep: set[str], now: float | None = None) -> None:
    """Delete uploads nobody imported within a week (``keep``: those an import job still reads)."""
    root = uploads_dir(data_dir)
    if not root.is_dir():
        return
    limit = (now or time.time()) - STALE_SECONDS
    for folder in root.iterdir():
        with contextlib.suppress(OSError):
            if folder.name not in keep and folder.stat().st_mtime < limit:
                shutil.rmtree(folder)


async def receive_upload(request: Request, data_dir: Path, max_bytes: int) -> Upload:
    """Stream the request's single file part to disk; small text parts are returned as ``fields``."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError("Send the file as a form upload (multipart/form-data).")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise UploadError(_too_large(max_bytes, int(declared)), status=413)

    upload_id = uuid.uuid4().hex
    folder = uploads_dir(data_dir) / upload_id
    make_private_dir(folder)
    fields: dict[str, str] = {}
    read = _Reading()

    def on_part_begin() -> None:
        read.headers = {}
        read.part = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        read.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        read.header_value += data[start:end]

    def on_header_end() -> None:
        read.headers[read.header_field.lower()] = read.header_value
        read.header_field = read.header_value = b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(read.headers.get(b"content-disposition", b""))
        read.part.name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if read.handle is not None:
                raise UploadError("Send one file at a time.")
            file_name = safe_file_name(options[b"filename"].decode("utf-8", "replace"))
            path = folder / file_name
            read.file_name, read.path = file_name, path
            read.handle = open_private(path)
            read.part.is_file = True

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if read.part.is_file:
            size = read.size + (end - start)
            if size > max_bytes:
                raise UploadError(_too_large(max_bytes, None), status=413)
            read.size = size
            assert read.handle is not None
            read.handle.write(data[start:end])
        else:
            value = read.part.value + data[start:end]
            if len(value) > MAX_FIELD_BYTES:
                raise UploadError("A form field is too long.")
            read.part.value = value

    def on_part_end() -> None:
        if not read.part.is_file and read.part.name:
            fields[read.part.name] = read.part.value.decode("utf-8", "replace")

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except UploadError:
        _discard(read.handle, folder)
        raise
    except Exception as exc:  # a malformed body from a broken client
        _discard(read.handle, folder)
        raise UploadError(f"The upload could not be read: {exc}") from None
    if read.handle is not None:
        read.handle.close()
    if read.path is None or read.file_name is None or not read.size:
        _discard(None, folder)
        raise UploadError("Choose a CSV or JSON file to import.")
    return Upload(upload_id, read.path, read.file_name, read.size, fields)


@dataclass
class _Part:
    """The part being read: its form name, whether it is the file, and a text field's bytes so far."""

    name: str = ""
    is_file: bool = False
    value: bytes = b""


@dataclass
class _Reading:
    """What the parser's callbacks share while one body streams: the header being read, the current part,
    and the file (one per upload) as it is written."""

    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_field: bytes = b""
    header_value: bytes = b""
    part: _Part = field(default_factory=_Part)
    file_name: str | None = None
    path: Path | None = None
    handle: IO[bytes] | None = None
    size: int = 0


def _discard(handle: IO[bytes] | None, folder: Path) -> None:
    if handle is not None:
        handle.close()
    shutil.rmtree(folder, ignore_errors=True)


def _too_large(max_bytes: int, size: int | None) -> str:
    limit = _human(max_bytes)
    got = f" This one is {_human(size)}." if size else ""
    return (
        f"The file is larger than the {limit} limit.{got} Split it into smaller files, or start the server "
        f"with a higher --max-upload-mb (SESCONTACTS_MAX_UPLOAD_MB)."
    )


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{size} bytes"
