"""The SES API's import-job operations in process (real store on a temporary SQLite file, requests signed by
botocore): ListImportJobs page tokens, S3 URLs a file system cannot hold, and what a client sees of a job
(the S3 URL it gave and a failed-records URL served by us, never a path on the server's disk)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from sescontacts.bulk.job_manager import ImportOptions
from sescontacts.sesapi import import_job_operations
from tests.support.sesapi_client import InProcessClient, Reply, open_services

LIST = "contacts"
JOBS = "/v2/email/import-jobs"
CSV = "emailAddress,unsubscribeAll,attributesData\nann@example.com,false,\nbroken,false,\nbob@example.com,true,\n"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[InProcessClient]:
    services = open_services(tmp_path / "data")
    services.ensure_default_list()
    bucket = services.settings.s3_folder / "bucket"
    bucket.mkdir(parents=True)
    (bucket / "contacts.csv").write_text(CSV)
    yield InProcessClient(services)
    services.close()


def create(api: InProcessClient, url: str = "s3://bucket/contacts.csv") -> Reply:
    return api.call(
        "POST",
        JOBS,
        {
            "ImportDestination": {
                "ContactListDestination": {"ContactListName": LIST, "ContactListImportAction": "PUT"}
            },
            "ImportDataSource": {"S3Url": url, "DataFormat": "CSV"},
        },
    )


def assert_bad_request(reply: Reply, message: str) -> None:
    assert (reply.status, reply.error_type) == (400, "BadRequestException"), reply.body
    assert reply.json["__type"] == "BadRequestException" and reply.json["message"].startswith(message)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        _b64("jobs:" + "9" * 40),  # a position past SQLite's 64-bit integers (was a 500 InternalFailure)
        _b64("jobs:2"),  # a position the server never handed out (unsigned tokens were taken as they came)
        _b64("jobs:-1"),
        "!!!",
        "a" * 5000,
    ],
)
def test_forged_next_tokens_are_bad_requests(api: InProcessClient, token: str) -> None:
    for _ in range(3):
        create(api)
    assert_bad_request(api.call("POST", f"{JOBS}/list", {"NextToken": token}), "Provided NextToken is invalid")
    assert_bad_request(
        api.call("GET", f"{JOBS}?NextToken={quote(token, safe='')}", {}), "Provided NextToken is invalid"
    )


def test_a_list_contacts_token_is_not_a_list_import_jobs_token(api: InProcessClient) -> None:
    for n in range(3):
        api.call("POST", f"/v2/email/contact-lists/{LIST}/contacts", {"EmailAddress": f"c{n}@x.com"})
    token = api.call("POST", f"/v2/email/contact-lists/{LIST}/contacts/list", {"PageSize": 1}).json["NextToken"]
    assert_bad_request(api.call("POST", f"{JOBS}/list", {"NextToken": token}), "The NextToken")


def test_signed_tokens_page_through_every_job_once(api: InProcessClient) -> None:
    ids = [create(api).json["JobId"] for _ in range(5)]
    seen: list[str] = []
    token = None
    while True:
        body: dict[str, Any] = {"PageSize": 2} | ({"NextToken": token} if token else {})
        page = api.call("POST", f"{JOBS}/list", body).json
        seen += [job["JobId"] for job in page["ImportJobs"]]
        token = page.get("NextToken")
        if token is None:
            break
    assert seen == ids[::-1]


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket/a\x00b.csv",  # was a 500 InternalFailure (ValueError: embedded null byte)
        "s3://bu\x00cket/contacts.csv",
        "s3://bucket/" + "k" * 5000 + ".csv",
        "s3://bucket/" + "/".join(["d" * 250] * 30) + "/x.csv",
    ],
)
def test_s3_urls_no_file_can_have_are_bad_requests(api: InProcessClient, url: str) -> None:
    assert_bad_request(create(api, url), "Invalid S3Url")
    assert api.call("POST", f"{JOBS}/list", {}).json["ImportJobs"] == []


def _no_server_path(api: InProcessClient, reply: Reply) -> None:
    text = reply.body.decode()
    data_dir = str(api.services.settings.data_dir.resolve())
    assert "file://" not in text and data_dir not in text and str(api.services.settings.data_dir) not in text


def test_a_job_shows_the_s3_url_it_was_given_and_a_failed_records_url_we_serve(api: InProcessClient) -> None:
    job_id = create(api).json["JobId"]
    api.services.jobs.run(job_id)
    reply = api.call("GET", f"{JOBS}/{job_id}")
    _no_server_path(api, reply)
    got = reply.json
    assert got["ImportDataSource"] == {"S3Url": "s3://bucket/contacts.csv", "DataFormat": "CSV"}
    assert (got["ProcessedRecordsCount"], got["FailedRecordsCount"]) == (3, 1)
    url = urlsplit(got["FailureInfo"]["FailedRecordsS3Url"])
    assert (url.scheme, url.netloc, url.path) == ("http", "testserver", f"{JOBS}/{job_id}/failed-records")
    # Like SES's pre-signed S3 URL, it needs no other credentials: a plain GET, unsigned.
    download = api.raw("GET", f"{url.path}?{url.query}")
    assert download.status == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert download.body == api.services.jobs.get(job_id).rejects_path.read_bytes()  # type: ignore[union-attr]
    assert b"broken" in download.body


def test_the_failed_records_url_is_bound_to_its_job_and_expires(api: InProcessClient) -> None:
    first, second = create(api).json["JobId"], create(api).json["JobId"]
    for job_id in (first, second):
        api.services.jobs.run(job_id)
    url = urlsplit(import_job_operations.failed_records_url(api.services, "http://testserver", first))
    other_job = api.raw("GET", f"{JOBS}/{second}/failed-records?{url.query}")
    # A changed character of the signature. Not the last one: its low bits can be base64 padding, which decodes
    # to the same bytes (overwriting the last two with "xx" left the token valid about once in 250 runs, by the odds).
    query = url.query
    tampered = api.raw("GET", f"{url.path}?{query[:-3]}{'A' if query[-3] != 'A' else 'B'}{query[-2:]}")
    missing = api.raw("GET", url.path)
    expired_url = urlsplit(
        import_job_operations.failed_records_url(api.services, "http://testserver", first, now=time.time() - 7200)
    )
    expired = api.raw("GET", f"{expired_url.path}?{expired_url.query}")
    for reply in (other_job, tampered, missing, expired):
        assert (reply.status, reply.error_type) == (403, "AccessDeniedException"), reply.body
        assert reply.json["__type"] == "AccessDeniedException"
    assert "expired" in expired.json["message"]


def test_jobs_of_the_console_and_the_cli_show_no_local_path(api: InProcessClient, tmp_path: Path) -> None:
    local = tmp_path / "home" / "someone" / "my contacts.csv"
    local.parent.mkdir(parents=True)
    local.write_text(CSV)
    job = api.services.jobs.submit(local, ImportOptions(LIST), file_name=str(local))
    api.services.jobs.run(job.id)
    gone = api.services.jobs.submit(tmp_path / "gone.csv", ImportOptions(LIST), file_name=str(tmp_path / "gone.csv"))
    api.services.jobs.run(gone.id)
    for job_id in (job.id, gone.id):
        reply = api.call("GET", f"{JOBS}/{job_id}")
        assert reply.status == 200
        _no_server_path(api, reply)
        assert str(tmp_path) not in reply.body.decode()
    got = api.call("GET", f"{JOBS}/{job.id}").json
    assert got["ImportDataSource"] == {"S3Url": "s3://sescontacts_local/my contacts.csv", "DataFormat": "CSV"}
    failed = api.call("GET", f"{JOBS}/{gone.id}").json
    assert failed["JobStatus"] == "FAILED"
    assert "cannot read the file" in failed["FailureInfo"]["ErrorMessage"]
    assert "s3://sescontacts_local/gone.csv" in failed["FailureInfo"]["ErrorMessage"]


def test_an_s3_key_with_a_long_last_segment_is_read_from_the_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 keys run to 1024 bytes: one segment can be longer than a file name may be (255 bytes on Linux)."""
    import boto3

    from tests.support.ses import run_moto

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    key = "in/" + "n" * 300 + ".csv"
    with run_moto() as moto_url:
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
        s3.create_bucket(Bucket="imports")
        s3.put_object(Bucket="imports", Key=key, Body=CSV.encode())
        services = open_services(tmp_path / "data", s3_endpoint_url=moto_url)
        try:
            services.ensure_default_list()
            api = InProcessClient(services)
            reply = create(api, f"s3://imports/{key}")
            assert reply.status == 200, reply.body
            api.services.jobs.run(reply.json["JobId"])
            got = api.call("GET", f"{JOBS}/{reply.json['JobId']}").json
            assert (got["JobStatus"], got["ProcessedRecordsCount"]) == ("COMPLETED", 3)
            assert got["ImportDataSource"]["S3Url"] == f"s3://imports/{key}"
        finally:
            services.close()


# -- PUT overrides the whole record, as SES's does ----------------------------------------------------------

CONTACTS = f"/v2/email/contact-lists/{LIST}/contacts"
_PUT_CSV = (
    "emailAddress,unsubscribeAll,attributesData,topicPreferences.news,topicPreferences.offers\n"
    "gone@example.com,false,,OPT_IN,\n"  # the guide's own form: an empty cell is no value
    "keep@example.com,true,,,OPT_OUT\n"
)
_PUT_JSON = (
    '{"emailAddress": "gone@example.com", "unsubscribeAll": false, '
    '"topicPreferences": [{"topicName": "news", "subscriptionStatus": "OPT_IN"}]}\n'
    '{"emailAddress": "keep@example.com", "unsubscribeAll": true, '
    '"topicPreferences": [{"topicName": "offers", "subscriptionStatus": "OPT_OUT"}]}\n'
)


def _put_job(api: InProcessClient, key: str, data_format: str) -> str:
    reply = api.call(
        "POST",
        JOBS,
        {
            "ImportDestination": {
                "ContactListDestination": {"ContactListName": LIST, "ContactListImportAction": "PUT"}
            },
            "ImportDataSource": {"S3Url": f"s3://bucket/{key}", "DataFormat": data_format},
        },
    )
    assert reply.status == 200, reply.body
    return str(reply.json["JobId"])


def _seed_put_contacts(api: InProcessClient) -> None:
    topics = [
        {"TopicName": "news", "DisplayName": "News", "DefaultSubscriptionStatus": "OPT_OUT"},
        {"TopicName": "offers", "DisplayName": "Offers", "DefaultSubscriptionStatus": "OPT_OUT"},
    ]
    assert api.call("PUT", f"/v2/email/contact-lists/{LIST}", {"Topics": topics}).status == 200
    every_topic_out = [
        {"TopicName": "news", "SubscriptionStatus": "OPT_OUT"},
        {"TopicName": "offers", "SubscriptionStatus": "OPT_IN"},
    ]
    for email, unsubscribed in (("gone@example.com", True), ("keep@example.com", False)):
        body = {
            "EmailAddress": email,
            "UnsubscribeAll": unsubscribed,
            "AttributesData": '{"Name": "Ann"}',
            "TopicPreferences": every_topic_out,
        }
        assert api.call("POST", CONTACTS, body).status == 200


def _seen(api: InProcessClient, email: str) -> tuple[bool, list[tuple[str, str]], str | None]:
    got = api.call("GET", f"{CONTACTS}/{quote(email, safe='')}").json
    preferences = sorted((p["TopicName"], p["SubscriptionStatus"]) for p in got["TopicPreferences"])
    return got["UnsubscribeAll"], preferences, got.get("AttributesData")


@pytest.mark.parametrize(
    ("key", "data_format", "content"), [("put.csv", "CSV", _PUT_CSV), ("put.jsonl", "JSON", _PUT_JSON)]
)
def test_a_put_import_overrides_the_whole_contact_as_ses_does(
    api: InProcessClient, key: str, data_format: str, content: str
) -> None:
    """SES: "If the record already exists, it will override it with the new value" (ContactListImportAction).
    What the record omits is cleared (attributes, topic preferences); unsubscribeAll false re-subscribes;
    an explicit OPT_OUT follows the record. The product's guards are for its own import surfaces only."""
    _seed_put_contacts(api)
    (api.services.settings.s3_folder / "bucket" / key).write_text(content)
    job_id = _put_job(api, key, data_format)
    api.services.jobs.run(job_id)
    got = api.call("GET", f"{JOBS}/{job_id}").json
    assert (got["JobStatus"], got["ProcessedRecordsCount"], got["FailedRecordsCount"]) == ("COMPLETED", 2, 0)
    assert _seen(api, "gone@example.com") == (False, [("news", "OPT_IN")], None)
    assert _seen(api, "keep@example.com") == (True, [("offers", "OPT_OUT")], None)


def test_a_resumed_put_job_still_overrides(api: InProcessClient) -> None:
    """The job's rule is stored with it: cancelled while queued, resumed later, it is still SES's PUT."""
    _seed_put_contacts(api)
    (api.services.settings.s3_folder / "bucket" / "put.csv").write_text(_PUT_CSV)
    job_id = _put_job(api, "put.csv", "CSV")
    assert api.services.jobs.cancel(job_id).state == "cancelled"
    api.services.jobs.resume(job_id, run_here=True)
    assert api.services.jobs.run(job_id).state == "completed"
    assert _seen(api, "gone@example.com") == (False, [("news", "OPT_IN")], None)


def test_a_put_import_counts_nothing_kept_back(api: InProcessClient) -> None:
    """No row is held back by a PUT: the job's counts say every existing contact was updated."""
    _seed_put_contacts(api)
    (api.services.settings.s3_folder / "bucket" / "put.csv").write_text(_PUT_CSV)
    job = api.services.jobs.run(_put_job(api, "put.csv", "CSV"))
    assert (job.counts["updated"], job.counts["kept_unsubscribed"], job.counts["kept_opted_out"]) == (2, 0, 0)
