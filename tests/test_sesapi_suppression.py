"""The suppression operations in-process (real SQLite suppression list, requests signed by botocore): shapes,
SES's checks in SES's order, paging and its InvalidNextTokenException, the account's attributes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from sescontacts.services import Services
from tests.support.sesapi_client import InProcessClient, Reply, open_services

ADDRESSES = "/v2/email/suppression/addresses"
ENUM_LIST = (
    "failed to satisfy constraint: Member must satisfy constraint: "
    "[Member must satisfy enum value set: [BOUNCE, COMPLAINT]]"
)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    services = open_services(tmp_path / "data")
    yield services
    services.close()


@pytest.fixture
def client(services: Services) -> InProcessClient:
    return InProcessClient(services)


def put(client: InProcessClient, email: str, reason: str = "BOUNCE") -> None:
    reply = client.call("PUT", ADDRESSES, {"EmailAddress": email, "Reason": reason})
    assert (reply.status, reply.body) == (200, b"{}"), reply.body


def error(reply: Reply) -> tuple[int, str | None, str]:
    return reply.status, reply.error_type, reply.json["message"]


def test_put_get_delete_round_trip(client: InProcessClient) -> None:
    put(client, " Ann@Example.com ", "COMPLAINT")
    got = client.call("GET", f"{ADDRESSES}/{quote('ann@example.com', safe='')}").json
    entry = got["SuppressedDestination"]
    assert (entry["EmailAddress"], entry["Reason"], entry["Attributes"]) == ("Ann@Example.com", "COMPLAINT", {})
    assert isinstance(entry["LastUpdateTime"], float)
    assert client.call("DELETE", f"{ADDRESSES}/ann%40example.com").status == 200
    reply = client.call("GET", f"{ADDRESSES}/ann%40example.com")
    assert error(reply) == (
        404,
        "NotFoundException",
        "Email address ann@example.com does not exist on your suppression list.",
    )
    assert error(client.call("DELETE", f"{ADDRESSES}/ann%40example.com"))[:2] == (404, "NotFoundException")


def test_put_checks_in_ses_order(client: InProcessClient) -> None:
    reply = client.call("PUT", ADDRESSES, {"Reason": "SPAM"})
    assert error(reply) == (
        400,
        "BadRequestException",
        "2 validation errors detected: Value at 'emailAddress' failed to satisfy constraint: Member must not be "
        "null; Value at 'reason' failed to satisfy constraint: Member must satisfy enum value set: "
        "[BOUNCE, COMPLAINT]",
    )
    assert error(client.call("PUT", ADDRESSES, {"EmailAddress": " ", "Reason": "BOUNCE"}))[2] == (
        "EmailAddress is required."
    )
    assert error(client.call("PUT", ADDRESSES, {"EmailAddress": "nope", "Reason": "BOUNCE"}))[2] == (
        "EmailAddress <nope> is invalid"
    )
    reply = client.call("PUT", ADDRESSES, {"EmailAddress": 5, "Reason": "BOUNCE"})
    assert error(reply) == (400, "SerializationException", "NUMBER_VALUE can not be converted to a String")
    reply = client.call("PUT", ADDRESSES, {"EmailAddress": "a@x.com", "Reason": "BOUNCE", "TenantName": "t1"})
    assert error(reply) == (404, "NotFoundException", "Tenant t1 does not exist.")
    reply = client.call("PUT", ADDRESSES, {"EmailAddress": "a@x.com", "Reason": "BOUNCE", "TenantName": ""})
    assert error(reply)[:2] == (400, "BadRequestException")
    assert "'tenantName'" in error(reply)[2]


def test_list_pages_filters_and_tokens(client: InProcessClient) -> None:
    for i in range(5):
        put(client, f"b{i}@x.com", "BOUNCE")
    put(client, "c@x.com", "COMPLAINT")
    everything = client.call("GET", ADDRESSES).json
    assert len(everything["SuppressedDestinationSummaries"]) == 6 and "NextToken" not in everything
    assert set(everything["SuppressedDestinationSummaries"][0]) == {"EmailAddress", "Reason", "LastUpdateTime"}
    seen: list[str] = []
    target = f"{ADDRESSES}?PageSize=2&Reason=BOUNCE"
    page = client.call("GET", target).json
    while True:
        seen += [e["EmailAddress"] for e in page["SuppressedDestinationSummaries"]]
        if "NextToken" not in page:
            break
        page = client.call("GET", f"{target}&NextToken={quote(page['NextToken'], safe='')}").json
    assert seen == [f"b{i}@x.com" for i in range(5)]
    token = client.call("GET", target).json["NextToken"]
    for bad in (f"{ADDRESSES}?PageSize=2&Reason=COMPLAINT&NextToken={token}", f"{ADDRESSES}?NextToken=forged"):
        assert error(client.call("GET", bad)) == (400, "InvalidNextTokenException", "Token is invalid.")
    assert error(client.call("GET", f"{ADDRESSES}?NextToken="))[1] == "InvalidNextTokenException"
    both = client.call("GET", f"{ADDRESSES}?Reason=BOUNCE&Reason=COMPLAINT&Reason=").json
    assert len(both["SuppressedDestinationSummaries"]) == 6


def test_list_checks(client: InProcessClient) -> None:
    assert error(client.call("GET", f"{ADDRESSES}?Reason=SPAM")) == (
        400,
        "BadRequestException",
        f"1 validation error detected: Value at 'reasons' {ENUM_LIST}",
    )
    for size in ("0", "1001"):
        assert error(client.call("GET", f"{ADDRESSES}?PageSize={size}")) == (
            400,
            "BadRequestException",
            f"Page size {size} is invalid, expected a number between 1 and 1000",
        )
    assert error(client.call("GET", f"{ADDRESSES}?PageSize=ten")) == (
        400,
        "SerializationException",
        "'ten' can not be converted to Integer",
    )
    assert error(client.call("GET", f"{ADDRESSES}?StartDate=yesterday"))[:2] == (400, "SerializationException")
    assert error(client.call("GET", f"{ADDRESSES}?TenantName=t"))[:2] == (404, "NotFoundException")


def test_list_by_date(client: InProcessClient, services: Services) -> None:
    put(client, "a@x.com")
    stamp = services.suppression.get_suppressed("a@x.com").last_update_time
    for start, found in (("2000-01-01T00%3A00%3A00Z", 1), (str(int(stamp) + 10), 0), (str(int(stamp) - 10), 1)):
        page = client.call("GET", f"{ADDRESSES}?StartDate={start}").json
        assert len(page["SuppressedDestinationSummaries"]) == found, start
    page = client.call("GET", f"{ADDRESSES}?EndDate=2000-01-01T00%3A00%3A00.000Z").json
    assert page["SuppressedDestinationSummaries"] == []


def test_account_suppression_attributes(client: InProcessClient) -> None:
    account = client.call("GET", "/v2/email/account").json
    assert account["SuppressionAttributes"] == {"SuppressedReasons": ["BOUNCE", "COMPLAINT"]}
    assert (account["SendingEnabled"], account["ProductionAccessEnabled"]) == (False, False)
    assert account["SendQuota"] == {"Max24HourSend": 0.0, "MaxSendRate": 0.0, "SentLast24Hours": 0.0}
    target = "/v2/email/account/suppression"
    assert client.call("PUT", target, {"SuppressedReasons": ["COMPLAINT"]}).status == 200
    assert client.call("GET", "/v2/email/account").json["SuppressionAttributes"]["SuppressedReasons"] == ["COMPLAINT"]
    assert error(client.call("PUT", target, {"SuppressedReasons": ["SPAM"]})) == (
        400,
        "BadRequestException",
        f"1 validation error detected: Value at 'suppressedReasons' {ENUM_LIST}",
    )
    assert error(client.call("PUT", target, {"SuppressedReasons": "BOUNCE"}))[1] == "SerializationException"
    enabled = {"ValidationAttributes": {"ConditionThreshold": {"ConditionThresholdEnabled": "ENABLED"}}}
    assert error(client.call("PUT", target, enabled))[:2] == (400, "BadRequestException")
    disabled = {"ValidationAttributes": {"ConditionThreshold": {"ConditionThresholdEnabled": "DISABLED"}}}
    assert client.call("PUT", target, disabled).status == 200
    assert client.call("GET", "/v2/email/account").json["SuppressionAttributes"]["SuppressedReasons"] == []
