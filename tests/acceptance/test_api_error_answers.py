"""The error answers of issue #9 as a client sees them over real HTTP: boto3 (code, message and status as
botocore parses them) and raw signed requests where the raw form matters (a path address boto3 would encode).

Each answer's source is in the test's docstring: floci's probe of real SES (``SesContactService``,
``SesImportJobService``, ``SesListPaging``, ``SesContactFilterTest``), the botocore model, or our inference.
The rows these tests do not repeat are in ``test_api_boto3.py`` (``test_row_*``) and ``test_api_bad_input.py``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config

from tests.support.server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, RunningServer

from .api_http import signed_request
from .conftest import error_of, unique_name

INVALID_TOKEN = ("BadRequestException", "Provided NextToken is invalid", 400)


def test_update_contact_list_with_more_than_twenty_topics(ses: Any, contact_list: str) -> None:
    """BadRequestException (probed), not the LimitExceededException the model also lists for CreateContactList."""
    topics = [{"TopicName": f"t{i}", "DisplayName": f"T{i}", "DefaultSubscriptionStatus": "OPT_IN"} for i in range(21)]
    assert error_of(ses.update_contact_list, ContactListName=contact_list, Topics=topics) == (
        "BadRequestException",
        "Maximum of <20> topics allowed per ContactList",
        400,
    )
    assert [t["TopicName"] for t in ses.get_contact_list(ContactListName=contact_list)["Topics"]] == ["news", "offers"]


@pytest.mark.parametrize("operation", ["get_contact", "update_contact", "delete_contact"])
def test_a_malformed_path_address_is_refused_before_the_list_or_the_contact(
    ses: Any, contact_list: str, operation: str
) -> None:
    """Probed: ``EmailAddress <x> is invalid`` (400) before any lookup, so a missing list does not change it."""
    call = getattr(ses, operation)
    for list_name in (contact_list, "no-such-list"):
        for bad in ("not-an-address", "a@nodot", "two@@example.com"):
            assert error_of(call, ContactListName=list_name, EmailAddress=bad) == (
                "BadRequestException",
                f"EmailAddress <{bad}> is invalid",
                400,
            )
        # botocore sends EmailAddress="" as a trailing "/": blank, as SES says of a blank address (inference).
        assert error_of(call, ContactListName=list_name, EmailAddress="") == (
            "BadRequestException",
            "EmailAddress can't be blank.",
            400,
        )


def test_a_malformed_raw_path_address(api_server: RunningServer, contact_list: str) -> None:
    """The address exactly as a raw client writes it in the path (no %40, a literal "@", nothing encoded)."""
    base = f"/v2/email/contact-lists/{contact_list}/contacts"
    for raw, shown in (("not-an-address", "not-an-address"), ("a@nodot", "a@nodot"), ("a%40b%40c.com", "a@b@c.com")):
        for method in ("GET", "PUT", "DELETE"):
            status, headers, body = signed_request(
                api_server.url, method, f"{base}/{raw}", b"{}" if method == "PUT" else b""
            )
            assert (status, headers["x-amzn-errortype"], body["message"]) == (
                400,
                "BadRequestException",
                f"EmailAddress <{shown}> is invalid",
            )


def _legacy_list_import_jobs_client(url: str, tmp_path: Path) -> Any:
    """A boto3 sesv2 client whose ListImportJobs is the binding of botocore <= 1.34.95 (contract §2): GET
    /v2/email/import-jobs with PageSize and NextToken in the query, ImportDestinationType in a JSON body."""
    source = Path(botocore.__file__).parent / "data" / "sesv2" / "2019-09-27" / "service-2.json.gz"
    model = json.loads(gzip.decompress(source.read_bytes()))
    model["operations"]["ListImportJobs"]["http"] = {"method": "GET", "requestUri": "/v2/email/import-jobs"}
    members = model["shapes"]["ListImportJobsRequest"]["members"]
    for name in ("PageSize", "NextToken"):
        members[name].update(location="querystring", locationName=name)
    folder = tmp_path / "models" / "sesv2" / "2019-09-27"
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    session = botocore.session.Session()
    session.get_component("data_loader").search_paths.insert(0, str(tmp_path / "models"))
    return boto3.session.Session(botocore_session=session).client(
        "sesv2",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 0, "mode": "standard"}),
    )


def test_a_bad_list_import_jobs_token_is_a_bad_request_in_both_bindings(
    api_server: RunningServer, ses: Any, tmp_path: Path
) -> None:
    """The model lists no InvalidNextTokenException for ListImportJobs: BadRequestException, whichever binding."""
    legacy = _legacy_list_import_jobs_client(api_server.url, tmp_path)
    assert legacy.meta.service_model.operation_model("ListImportJobs").http["method"] == "GET"
    for client in (ses, legacy):
        assert client.list_import_jobs(ImportDestinationType="CONTACT_LIST", PageSize=5)["ImportJobs"] is not None
        for token in ("garbage", "", "eyJzIjoiMTIzIn0"):
            assert error_of(client.list_import_jobs, NextToken=token) == INVALID_TOKEN


def test_bad_tokens_of_list_contacts_and_list_contact_lists(ses: Any, contact_list: str) -> None:
    """BadRequestException (neither operation models InvalidNextToken), SES's wording, an empty token included
    (probed: floci's SesListPaging)."""
    for token in ("garbage", ""):
        assert error_of(ses.list_contacts, ContactListName=contact_list, NextToken=token) == INVALID_TOKEN
        assert error_of(ses.list_contact_lists, NextToken=token) == INVALID_TOKEN
    page_size = ("BadRequestException", "The page size must be between 1 and 1000", 400)
    assert error_of(ses.list_contacts, ContactListName=contact_list, PageSize=0) == page_size
    assert error_of(ses.list_contact_lists, PageSize=1001) == page_size


def test_list_contacts_filter_shape_and_order(ses: Any, contact_list: str) -> None:
    """Probed: a filter needs its FilteredStatus and a TopicFilter its TopicName; the page size comes first,
    the list's existence after the token."""
    assert error_of(ses.list_contacts, ContactListName=contact_list, Filter={}) == (
        "BadRequestException",
        "Invalid FilteredStatus <null>",
        400,
    )
    flt = {"FilteredStatus": "OPT_IN", "TopicFilter": {"UseDefaultIfPreferenceUnavailable": True}}
    assert error_of(ses.list_contacts, ContactListName=contact_list, Filter=flt) == (
        "BadRequestException",
        "TopicName can't be blank in TopicFilter.",
        400,
    )
    assert error_of(ses.list_contacts, ContactListName="no-such-list", Filter={}, PageSize=0)[1] == (
        "The page size must be between 1 and 1000"
    )
    assert error_of(ses.list_contacts, ContactListName="no-such-list", NextToken="garbage") == INVALID_TOKEN


def test_list_contacts_pages_by_fifty_by_default(ses: Any, contact_list: str) -> None:
    """SES's default page size for ListContacts is 50 (probed): a script that forgets NextToken sees the same
    first page here as on SES."""
    for n in range(51):
        ses.create_contact(ContactListName=contact_list, EmailAddress=f"p{n:02}@example.com")
    first = ses.list_contacts(ContactListName=contact_list)
    assert len(first["Contacts"]) == 50 and first["NextToken"]


def _import_job(list_name: str, *, action: str = "PUT", data_format: str = "CSV") -> dict[str, Any]:
    return {
        "ImportDestination": {
            "ContactListDestination": {"ContactListName": list_name, "ContactListImportAction": action}
        },
        "ImportDataSource": {"S3Url": "s3://bucket/contacts.csv", "DataFormat": data_format},
    }


def test_create_import_job_on_a_missing_list_is_not_found(ses: Any) -> None:
    """Probed (floci's SesImportJobService): 404 NotFoundException ``ContactList <name> doesn't exist``, although
    the model lists only BadRequest, LimitExceeded and TooManyRequests for CreateImportJob. boto3 still
    raises its modelled class: the code maps to ``ses.exceptions.NotFoundException``."""
    name = unique_name("ghost")
    with pytest.raises(ses.exceptions.NotFoundException):
        ses.create_import_job(**_import_job(name))
    assert error_of(ses.create_import_job, **_import_job(name)) == (
        "NotFoundException",
        f"ContactList <{name}> doesn't exist",
        404,
    )


def test_import_job_enums_are_never_quoted(ses: Any, contact_list: str) -> None:
    """As SES words its SubscriptionStatus violations (probed); these enums' values in the model's order."""
    suffix = "failed to satisfy constraint: Member must satisfy enum value set:"
    assert error_of(ses.create_import_job, **_import_job(contact_list, data_format="XML")) == (
        "BadRequestException",
        f"1 validation error detected: Value at 'importDataSource.dataFormat' {suffix} [CSV, JSON]",
        400,
    )
    assert error_of(ses.list_import_jobs, ImportDestinationType="BOTH") == (
        "BadRequestException",
        f"1 validation error detected: Value at 'importDestinationType' {suffix} [SUPPRESSION_LIST, CONTACT_LIST]",
        400,
    )
    code, message, _ = error_of(ses.list_contacts, ContactListName=contact_list, Filter={"FilteredStatus": "MAYBE"})
    assert (code, message) == (
        "BadRequestException",
        f"1 validation error detected: Value at 'filter.filteredStatus' {suffix} [OPT_OUT, OPT_IN]",
    )
