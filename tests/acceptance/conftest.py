"""Acceptance fixtures: one real ``sescontacts serve`` for the session, and clients pointed at it.

The session server lifts the one-list quota so each test can work on its own list (tests stay independent
and order-free); the quota itself is checked against a server with the default settings.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, RunningServer, run_server

AWS = str(Path(sys.executable).parent / "aws")
_names = itertools.count(1)


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("api") / "data"
    with run_server(data_dir, extra_args=["--max-contact-lists", "unlimited"]) as server:
        yield server


def make_client(url: str, **overrides: Any) -> Any:
    """A boto3 sesv2 client for ``url``; no retries, so an error surfaces on the first answer."""
    options: dict[str, Any] = {
        "endpoint_url": url,
        "region_name": REGION,
        "aws_access_key_id": ACCESS_KEY_ID,
        "aws_secret_access_key": SECRET_ACCESS_KEY,
        "config": Config(retries={"max_attempts": 0, "mode": "standard"}),
    }
    options.update(overrides)
    return boto3.session.Session().client("sesv2", **options)


@pytest.fixture(scope="session")
def ses(api_server: RunningServer) -> Any:
    return make_client(api_server.url)


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    """The error code, message and HTTP status a boto3 call fails with, as botocore parsed them."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def unique_name(prefix: str = "list") -> str:
    return f"{prefix}-{os.getpid()}-{next(_names)}"


TOPICS = [
    {"TopicName": "news", "DisplayName": "News", "Description": "Weekly news", "DefaultSubscriptionStatus": "OPT_IN"},
    {"TopicName": "offers", "DisplayName": "Offers", "DefaultSubscriptionStatus": "OPT_OUT"},
]


@pytest.fixture
def contact_list(ses: Any) -> Iterator[str]:
    """A fresh list with two topics (news: default OPT_IN, offers: default OPT_OUT), deleted afterwards."""
    name = unique_name()
    ses.create_contact_list(ContactListName=name, Topics=TOPICS, Description="test list")
    yield name
    with contextlib.suppress(ses.exceptions.NotFoundException):
        ses.delete_contact_list(ContactListName=name)


JS_DIR = Path(__file__).resolve().parents[1] / "js"


def run_js(script: str, server: RunningServer, **env: str) -> Any:
    """``tests/js/<script>`` run with node against ``server`` (``env`` adds variables); what it printed, as JSON."""
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "@aws-sdk" / "client-sesv2").is_dir():
        pytest.fail("node and tests/js/node_modules are required: run `make test` (it installs them)")
    result = subprocess.run(
        [node, str(JS_DIR / script)],
        cwd=JS_DIR,
        env={
            "PATH": "/usr/bin:/bin",
            "SES_ENDPOINT": server.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def run_aws(server: RunningServer, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real aws CLI (v1, from the awscli package) against ``server``; ``env`` overrides variables."""
    return subprocess.run(
        [AWS, "sesv2", *args, "--endpoint-url", server.url, "--region", REGION],
        env={**server.aws_env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
