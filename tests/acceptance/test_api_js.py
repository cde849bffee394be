"""The AWS JS SDK v3 (``@aws-sdk/client-sesv2``, installed in tests/js by ``make test``) against the server:
create, get, list with pagination, delete. A second client with its own serializer and strict timestamps."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, RunningServer

from .conftest import unique_name

JS_DIR = Path(__file__).resolve().parents[1] / "js"


def test_js_sdk_v3_create_get_list_delete(api_server: RunningServer) -> None:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "@aws-sdk" / "client-sesv2").is_dir():
        pytest.fail("node and tests/js/node_modules are required: run `make test` (it installs them)")
    name = unique_name("js")
    result = subprocess.run(
        [node, str(JS_DIR / "contacts.mjs")],
        cwd=JS_DIR,
        env={
            "PATH": "/usr/bin:/bin",
            "SES_ENDPOINT": api_server.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "LIST_NAME": name,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    addresses = [f"js{i}+tag@exämple.com" for i in range(7)]
    assert out["listCreatedIsDate"] is True
    contact = out["contact"]
    assert contact["EmailAddress"] == addresses[3]
    assert json.loads(contact["AttributesData"]) == {"i": addresses[3]}
    assert contact["TopicDefaultPreferences"] == [{"TopicName": "news", "SubscriptionStatus": "OPT_IN"}]
    assert contact["UnsubscribeAll"] is False
    assert contact["createdIsDate"] is True and contact["createdMs"] > 1_600_000_000_000
    assert out["pages"] == [addresses[0:3], addresses[3:6], addresses[6:7]]
    assert out["afterDelete"] == 0
    assert out["missing"] == {
        "name": "NotFoundException",
        "message": f"{addresses[0]} doesn't exist in List.",
        "status": 404,
    }
