"""Fixtures' building blocks for the ses backend's tests: a moto server, and stores pointed at an endpoint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sescontacts.db import Database
from sescontacts.model import EXACT
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.store.ses import SesContactStore
from sescontacts.store.ses.pacer import Pacer
from sescontacts.store.sqlite import SqliteContactStore

from .server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, free_port

MOTO_KEY = ("testing", "testing")


@contextmanager
def run_moto(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """``moto_server`` in a subprocess on a free port; yields its URL. Readiness is polled, not slept for.
    ``extra_env``: moto's settings, e.g. ``INITIAL_NO_AUTH_ACTION_COUNT`` to enforce IAM policies."""
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(extra_env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.05)  # polling interval while the port opens
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def reset_moto(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST"), timeout=10).close()


def boto_session(key: tuple[str, str]) -> object:
    import boto3

    return boto3.Session(aws_access_key_id=key[0], aws_secret_access_key=key[1], region_name=REGION)


def ses_store(
    db_path: Path,
    endpoint_url: str,
    *,
    key: tuple[str, str] = (ACCESS_KEY_ID, SECRET_ACCESS_KEY),
    pacer: Pacer | None = None,
    **kwargs: object,
) -> SesContactStore:
    """A ses-backend store on ``endpoint_url`` with its own mirror file and (by default) a fast pacer."""
    mirror = SqliteContactStore(Database(db_path, PRODUCT_SCHEMA), region=REGION, max_lists=None, identity=EXACT)
    return SesContactStore(
        mirror,
        region=REGION,
        session=boto_session(key),
        endpoint_url=endpoint_url,
        pacer=pacer or Pacer(500, 50),
        **kwargs,  # type: ignore[arg-type]
    )


def clean_env() -> None:
    """boto3 must not pick up a developer's real AWS configuration in tests."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            del os.environ[name]
    os.environ.update(
        AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true"
    )
