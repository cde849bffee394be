"""The AWS JS SDK v3 (``@aws-sdk/client-sesv2``, installed in tests/js by ``make test``) against the server:
create, get, list with pagination, delete. A second client with its own serializer and strict timestamps."""

from __future__ import annotations

import json

from tests.support.server import RunningServer

from .conftest import run_js, unique_name


def test_js_sdk_v3_create_get_list_delete(api_server: RunningServer) -> None:
    name = unique_name("js")
    out = run_js("contacts.mjs", api_server, LIST_NAME=name)
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
