"""Run a real ``sescontacts serve`` in a subprocess on a free port, for acceptance and browser tests.

Readiness is polled (a TCP connect, then an HTTP answer), never slept for.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

ACCESS_KEY_ID = "AKIATESTSESCONTACTS1"
SECRET_ACCESS_KEY = "test-secret-key-for-sescontacts-0123456"
ADMIN_PASSWORD = "correct horse battery staple"
REGION = "us-east-1"
LIST_NAME = "contacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sescontacts_command() -> list[str]:
    return [sys.executable, "-m", "sescontacts"]


@dataclass
class RunningServer:
    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def aws_env(self) -> dict[str, str]:
        """Environment for the aws CLI / boto3 pointed at this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
            AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            AWS_EC2_METADATA_DISABLED="true",
        )
        return env

    def sesv2(self) -> Any:
        """A plain boto3 sesv2 client on this server: another program (or SES itself) read behind a store's back."""
        return boto3.client(
            "sesv2",
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode} before it was ready")
        try:
            urllib.request.urlopen(url + "/login", timeout=1).close()
            return
        except urllib.error.HTTPError as error:
            error.close()  # it answered; the error holds the connection
            return
        except OSError:
            time.sleep(0.05)  # polling interval while the port opens, not a synchronisation sleep
    raise TimeoutError(f"server at {url} not ready after {timeout}s")


@contextmanager
def run_server(
    data_dir: Path,
    *,
    extra_args: Sequence[str] = (),
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[RunningServer]:
    port = port or free_port()
    env = dict(os.environ)
    env.update(
        SESCONTACTS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        SESCONTACTS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        SESCONTACTS_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    env.update(extra_env or {})
    log_path = data_dir.parent / f"{data_dir.name}-server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [*sescontacts_command(), "serve", "--port", str(port), "--data-dir", str(data_dir), *extra_args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(f"http://127.0.0.1:{port}", port, data_dir, process, env, log_path)
    try:
        wait_until_ready(server.url, process)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
