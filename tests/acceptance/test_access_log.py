"""``serve --access-log`` writes one line a request, and never a credential that rode in a URL."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.server import RunningServer, run_server

SECRET = "s3cr3t-v4lue-that-must-not-be-logged"


def _get(server: RunningServer, target: str) -> int:
    try:
        with urllib.request.urlopen(server.url + target, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        with error:  # it holds the connection
            return error.code


def _log_line_for(server: RunningServer, marker: str, timeout: float = 10.0) -> str:
    """The access log line holding ``marker``: uvicorn writes it just after the answer, so poll with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in server.log().splitlines():
            if marker in line:
                return line
        time.sleep(0.05)  # polling interval for a file another process appends to, not a synchronisation sleep
    raise AssertionError(f"no access log line with {marker!r} in:\n{server.log()}")


def test_access_log_records_requests_with_credentials_redacted(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", extra_args=["--access-log"]) as server:
        assert _get(server, "/login?from=access-log-test") == 200
        line = _log_line_for(server, "from=access-log-test")
        assert '"GET /login?from=access-log-test HTTP/1.1" 200' in line

        _get(server, f"/v2/email/import-jobs/abc/failed-records?Token={SECRET}&x=1")
        _get(server, f"/contacts?q=ann&csrf_token={SECRET}")
        assert "failed-records?Token=REDACTED&x=1" in _log_line_for(server, "failed-records")
        assert "q=ann&csrf_token=REDACTED" in _log_line_for(server, "q=ann")
        assert SECRET not in server.log()
