"""How ``serve`` configures uvicorn: what its logs keep and drop."""

from __future__ import annotations

import logging

import pytest

from sescontacts.server.connections import RedactSecrets, log_config, redact_query


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/contacts", "/contacts"),
        ("/contacts?q=token%3D1", "/contacts?q=token%3D1"),  # a search for the word is not a token
        ("/x?Token=abc", "/x?Token=REDACTED"),
        ("/x?a=1&token=abc&b=2", "/x?a=1&token=REDACTED&b=2"),
        ("/x?CSRF_TOKEN=abc", "/x?CSRF_TOKEN=REDACTED"),
        ("/x?X-Amz-Signature=ff&X-Amz-Credential=AKIA%2F", "/x?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED"),
        ("/x?mytoken=abc", "/x?mytoken=abc"),
    ],
)
def test_secret_query_values_are_redacted(target: str, logged: str) -> None:
    assert redact_query(target) == logged


def test_the_access_record_uvicorn_writes_is_redacted() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/x?Token=abc", "1.1", 200), None,
    )  # fmt: skip
    assert RedactSecrets().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /x?Token=REDACTED HTTP/1.1" 200'


def test_access_log_level_follows_the_option_and_uvicorns_own_lines_stay_quiet() -> None:
    assert log_config(True)["loggers"]["uvicorn.access"]["level"] == "INFO"
    assert log_config(False)["loggers"]["uvicorn.access"]["level"] == "WARNING"
    assert log_config(True)["loggers"]["uvicorn.error"]["level"] == "WARNING"
