"""The account suppression list through three real clients against a running server: boto3, the aws CLI (v1)
and the AWS JS SDK v3. The list is account-wide, so this module runs its own server: the session server's
other tests cannot add entries to what these tests list, nor these change its account attributes."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.server import RunningServer, run_server

from .conftest import error_of, make_client, run_aws, run_js, unique_name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("suppression") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def ses(server: RunningServer) -> Any:
    return make_client(server.url)


def _listed(ses: Any, **kwargs: Any) -> list[str]:
    """Every address ListSuppressedDestinations gives for ``kwargs``, page after page."""
    addresses: list[str] = []
    token = None
    while True:
        page = ses.list_suppressed_destinations(**kwargs, **({"NextToken": token} if token else {}))
        addresses += [entry["EmailAddress"] for entry in page["SuppressedDestinationSummaries"]]
        token = page.get("NextToken")
        if not token:
            return addresses


def test_boto3_put_get_list_delete(ses: Any) -> None:
    prefix = unique_name("boto")
    bounced = [f"{prefix}-{i}@example.com" for i in range(3)]
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    for address in bounced:
        ses.put_suppressed_destination(EmailAddress=address, Reason="BOUNCE")
    ses.put_suppressed_destination(EmailAddress=f"{prefix}-c@example.com", Reason="COMPLAINT")

    entry = ses.get_suppressed_destination(EmailAddress=bounced[1])["SuppressedDestination"]
    assert (entry["EmailAddress"], entry["Reason"]) == (bounced[1], "BOUNCE")
    assert isinstance(entry["LastUpdateTime"], dt.datetime) and entry["LastUpdateTime"] >= before

    mine = [a for a in _listed(ses, Reasons=["BOUNCE"], StartDate=before, PageSize=2) if a.startswith(prefix)]
    assert mine == bounced
    assert _listed(ses, Reasons=["BOUNCE"], EndDate=before) == []

    first = ses.list_suppressed_destinations(PageSize=1)
    code, message, status = error_of(
        ses.list_suppressed_destinations, PageSize=1, Reasons=["COMPLAINT"], NextToken=first["NextToken"]
    )
    assert (code, message, status) == ("InvalidNextTokenException", "Token is invalid.", 400)
    with pytest.raises(ses.exceptions.InvalidNextTokenException):
        ses.list_suppressed_destinations(NextToken="forged")
    assert error_of(ses.list_suppressed_destinations, PageSize=1001) == (
        "BadRequestException",
        "Page size 1001 is invalid, expected a number between 1 and 1000",
        400,
    )

    ses.delete_suppressed_destination(EmailAddress=bounced[1])
    with pytest.raises(ses.exceptions.NotFoundException) as missing:
        ses.get_suppressed_destination(EmailAddress=bounced[1])
    message = missing.value.response["Error"]["Message"]
    assert message == f"Email address {bounced[1]} does not exist on your suppression list."
    assert error_of(ses.put_suppressed_destination, EmailAddress=bounced[0], Reason="SPAM") == (
        "BadRequestException",
        "1 validation error detected: Value at 'reason' failed to satisfy constraint: Member must satisfy enum "
        "value set: [BOUNCE, COMPLAINT]",
        400,
    )


def test_boto3_account_suppression_attributes(ses: Any) -> None:
    account = ses.get_account()
    assert account["SuppressionAttributes"]["SuppressedReasons"] == ["BOUNCE", "COMPLAINT"]
    assert account["SendingEnabled"] is False and account["EnforcementStatus"] == "HEALTHY"
    try:
        ses.put_account_suppression_attributes(SuppressedReasons=["COMPLAINT"])
        assert ses.get_account()["SuppressionAttributes"] == {"SuppressedReasons": ["COMPLAINT"]}
    finally:
        ses.put_account_suppression_attributes(SuppressedReasons=["BOUNCE", "COMPLAINT"])


def test_boto3_suppression_list_import_job(server: RunningServer, ses: Any) -> None:
    """CreateImportJob into the suppression list, the file in SES's guide's CSV form, read from the server's
    s3 folder; the job is polled as an SES client polls it."""
    prefix = unique_name("job")
    bucket = server.data_dir / "s3" / "suppression-bucket"
    bucket.mkdir(parents=True, exist_ok=True)
    (bucket / "add.csv").write_text(f"{prefix}-1@example.com,BOUNCE\n{prefix}-2@example.com, COMPLAINT\n")
    job_id = ses.create_import_job(
        ImportDestination={"SuppressionListDestination": {"SuppressionListImportAction": "PUT"}},
        ImportDataSource={"S3Url": "s3://suppression-bucket/add.csv", "DataFormat": "CSV"},
    )["JobId"]
    deadline = time.monotonic() + 30
    while (job := ses.get_import_job(JobId=job_id))["JobStatus"] not in ("COMPLETED", "FAILED"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)  # polling interval, as an SES client polls a job
    assert job["JobStatus"] == "COMPLETED" and job["ProcessedRecordsCount"] == 2 and job["FailedRecordsCount"] == 0
    assert job["ImportDestination"] == {"SuppressionListDestination": {"SuppressionListImportAction": "PUT"}}
    listed = ses.list_import_jobs(ImportDestinationType="SUPPRESSION_LIST")["ImportJobs"]
    assert job_id in [j["JobId"] for j in listed]
    entry = ses.get_suppressed_destination(EmailAddress=f"{prefix}-2@example.com")["SuppressedDestination"]
    assert entry["Reason"] == "COMPLAINT"
    # the same file taken off again, with the aws CLI's shorthand as docs/bulk.md writes it
    created = run_aws(
        server,
        "create-import-job",
        "--import-destination",
        "SuppressionListDestination={SuppressionListImportAction=DELETE}",
        "--import-data-source",
        "S3Url=s3://suppression-bucket/add.csv,DataFormat=CSV",
    )
    assert created.returncode == 0, created.stderr
    delete_id = json.loads(created.stdout)["JobId"]
    while (job := ses.get_import_job(JobId=delete_id))["JobStatus"] not in ("COMPLETED", "FAILED"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)  # polling interval, as above
    assert job["JobStatus"] == "COMPLETED"
    with pytest.raises(ses.exceptions.NotFoundException):
        ses.get_suppressed_destination(EmailAddress=f"{prefix}-2@example.com")


def test_cli_suppression_commands(server: RunningServer) -> None:
    address = f"{unique_name('cli')}@example.com"
    put = run_aws(server, "put-suppressed-destination", "--email-address", address, "--reason", "COMPLAINT")
    assert (put.returncode, put.stdout, put.stderr) == (0, "", "")

    got = run_aws(server, "get-suppressed-destination", "--email-address", address)
    assert got.returncode == 0, got.stderr
    entry = json.loads(got.stdout)["SuppressedDestination"]
    assert (entry["EmailAddress"], entry["Reason"]) == (address, "COMPLAINT")
    assert re.search(r'"LastUpdateTime": \d{10}(\.\d{1,3})?', got.stdout)  # v1 prints the wire number

    listed = run_aws(
        server, "list-suppressed-destinations", "--reasons", "COMPLAINT", "--start-date", "2020-01-01T00:00:00Z"
    )
    assert listed.returncode == 0, listed.stderr
    assert address in [e["EmailAddress"] for e in json.loads(listed.stdout)["SuppressedDestinationSummaries"]]
    future = run_aws(server, "list-suppressed-destinations", "--start-date", "2100-01-01")
    assert json.loads(future.stdout) == {"SuppressedDestinationSummaries": []}

    account = run_aws(server, "get-account")
    assert account.returncode == 0, account.stderr
    assert "SuppressedReasons" in json.loads(account.stdout)["SuppressionAttributes"]

    deleted = run_aws(server, "delete-suppressed-destination", "--email-address", address)
    assert (deleted.returncode, deleted.stdout, deleted.stderr) == (0, "", "")
    missing = run_aws(server, "get-suppressed-destination", "--email-address", address)
    assert missing.returncode == 255
    assert missing.stderr.strip() == (
        "An error occurred (NotFoundException) when calling the GetSuppressedDestination operation: "
        f"Email address {address} does not exist on your suppression list."
    )


def test_js_sdk_suppression(server: RunningServer) -> None:
    prefix = unique_name("js")
    out = run_js("suppression.mjs", server, PREFIX=prefix)
    addresses = [f"{prefix}-{i}@example.com" for i in range(5)]
    assert out["entry"] == {"EmailAddress": addresses[2], "Reason": "BOUNCE", "lastUpdateIsDate": True}
    assert [a for a in out["listed"] if a.startswith(prefix)] == addresses
    assert out["pageSizes"][:-1] == [2] * (len(out["pageSizes"]) - 1)
    assert out["badToken"] == {"name": "InvalidNextTokenException", "message": "Token is invalid.", "status": 400}
    assert out["account"] == ["BOUNCE", "COMPLAINT"]
    assert out["missing"] == {
        "name": "NotFoundException",
        "message": f"Email address {addresses[0]} does not exist on your suppression list.",
        "status": 404,
    }
