"""Suppression-list import jobs in process: CreateImportJob with a SuppressionListDestination, run by the job
engine on a real SQLite file; the guide's CSV and JSON lines, rejects, ListImportJobs by destination, resume."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sescontacts.bulk.suppression_import import SUPPRESSION_KIND, SuppressionImport
from sescontacts.services import Services
from tests.support.sesapi_client import InProcessClient, Reply, open_services

JOBS = "/v2/email/import-jobs"
# The guide's example (a space before COMPLAINT), a blank line, a bad reason, an address SES would refuse.
CSV = "ann@example.com,BOUNCE\nbob@example.com, COMPLAINT\n\ncat@example.com,SPAM\nnot-an-address,BOUNCE\n"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    services = open_services(tmp_path / "data")
    services.ensure_default_list()
    bucket = services.settings.s3_folder / "bucket"
    bucket.mkdir(parents=True)
    (bucket / "suppressed.csv").write_text(CSV)
    yield services
    services.close()


@pytest.fixture
def api(services: Services) -> InProcessClient:
    return InProcessClient(services)


def create(api: InProcessClient, key: str, action: str = "PUT", data_format: str = "CSV") -> Reply:
    return api.call(
        "POST",
        JOBS,
        {
            "ImportDestination": {"SuppressionListDestination": {"SuppressionListImportAction": action}},
            "ImportDataSource": {"S3Url": f"s3://bucket/{key}", "DataFormat": data_format},
        },
    )


def run(api: InProcessClient, reply: Reply) -> dict[str, object]:
    assert reply.status == 200, reply.body
    job_id = reply.json["JobId"]
    api.services.jobs.run(job_id)
    job: dict[str, object] = api.call("GET", f"{JOBS}/{job_id}").json
    return job


def test_a_csv_put_job_suppresses_each_address_and_rejects_bad_records(api: InProcessClient) -> None:
    job = run(api, create(api, "suppressed.csv"))
    assert job["JobStatus"] == "COMPLETED"
    assert job["ImportDestination"] == {"SuppressionListDestination": {"SuppressionListImportAction": "PUT"}}
    assert job["ImportDataSource"] == {"S3Url": "s3://bucket/suppressed.csv", "DataFormat": "CSV"}
    assert (job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == (4, 2)
    suppression = api.services.suppression
    assert suppression.get_suppressed("ann@example.com").reason == "BOUNCE"
    assert suppression.get_suppressed("bob@example.com").reason == "COMPLAINT"
    failure = job["FailureInfo"]
    assert isinstance(failure, dict)
    url = urlsplit(failure["FailedRecordsS3Url"])
    rejects = api.raw("GET", f"{url.path}?{url.query}").body.decode().splitlines()
    assert rejects[0] == "line,emailAddress,column,reason"
    assert rejects[1:] == [
        '4,cat@example.com,reason,"The reason must be one of BOUNCE, COMPLAINT."',
        "5,not-an-address,emailAddress,EmailAddress <not-an-address> is invalid",
    ]


def test_a_json_delete_job_removes_addresses_and_counts_those_not_there(
    api: InProcessClient, services: Services
) -> None:
    services.suppression.put_suppressed("ann@example.com", "BOUNCE")
    lines = '{"emailAddress": "ann@example.com"}\n{"emailAddress": "zed@example.com", "reason": "BOUNCE"}\n[1]\n'
    (services.settings.s3_folder / "bucket" / "gone.jsonl").write_text(lines)
    job = run(api, create(api, "gone.jsonl", "DELETE", "JSON"))
    assert (job["JobStatus"], job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == ("COMPLETED", 3, 1)
    stored = services.jobs.get(str(job["JobId"])).counts
    assert (stored["deleted"], stored["not_found"]) == (1, 1)
    assert services.suppression.suppressed_among(["ann@example.com"]) == {}


def test_list_import_jobs_by_destination_type(api: InProcessClient, services: Services) -> None:
    bucket = services.settings.s3_folder / "bucket"
    (bucket / "contacts.csv").write_text("emailAddress\nann@example.com\n")
    suppression_job = create(api, "suppressed.csv").json["JobId"]
    contact_job = api.call(
        "POST",
        JOBS,
        {
            "ImportDestination": {
                "ContactListDestination": {"ContactListName": "contacts", "ContactListImportAction": "PUT"}
            },
            "ImportDataSource": {"S3Url": "s3://bucket/contacts.csv", "DataFormat": "CSV"},
        },
    ).json["JobId"]

    def listed(body: dict[str, str]) -> list[str]:
        return [job["JobId"] for job in api.call("POST", f"{JOBS}/list", body).json["ImportJobs"]]

    assert listed({"ImportDestinationType": "SUPPRESSION_LIST"}) == [suppression_job]
    assert listed({"ImportDestinationType": "CONTACT_LIST"}) == [contact_job]
    assert listed({}) == [contact_job, suppression_job]


def test_both_destinations_or_neither_is_a_bad_request(api: InProcessClient) -> None:
    both = {
        "SuppressionListDestination": {"SuppressionListImportAction": "PUT"},
        "ContactListDestination": {"ContactListName": "contacts", "ContactListImportAction": "PUT"},
    }
    for destination in (both, {}):
        body = {"ImportDestination": destination, "ImportDataSource": {"S3Url": "s3://b/k.csv", "DataFormat": "CSV"}}
        reply = api.call("POST", JOBS, body)
        assert (reply.status, reply.error_type) == (400, "BadRequestException")
        assert reply.json["message"].startswith("ImportDestination must have one of")


def test_a_stopped_job_resumes_where_its_last_batch_ended(api: InProcessClient, services: Services) -> None:
    lines = "".join(f"r{i}@example.com,BOUNCE\n" for i in range(7))
    (services.settings.s3_folder / "bucket" / "many.csv").write_text(lines)
    job_id = create(api, "many.csv").json["JobId"]
    runner = SuppressionImport(services.db, services.suppression, batch_records=2)
    asked = iter([False, True])  # go on after the first batch, stop before the second
    assert runner(services.jobs.get(job_id), lambda: next(asked)) == ("stopped", None)
    halfway = services.jobs.get(job_id)
    assert halfway.rows_done == 2
    assert len(services.suppression.suppressed_among([f"r{i}@example.com" for i in range(7)])) == 2
    assert runner(halfway, lambda: False) == ("completed", None)
    done = services.jobs.get(job_id)
    assert (done.rows_done, done.counts["created"], done.counts["updated"]) == (7, 7, 0)
    assert done.kind == SUPPRESSION_KIND


def test_a_missing_file_fails_the_job_naming_its_s3_url(api: InProcessClient) -> None:
    job = run(api, create(api, "nothing.csv"))
    assert job["JobStatus"] == "FAILED"
    failure = job["FailureInfo"]
    assert isinstance(failure, dict)
    assert failure["ErrorMessage"] == "s3://bucket/nothing.csv: cannot read the file: No such file or directory"
