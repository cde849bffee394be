"""CreateImportJob / GetImportJob / ListImportJobs on the local backend, run by the bulk import engine.

So that scripts written against SES import jobs can be tested locally, ``s3://BUCKET/KEY`` is read from the
data directory: ``<data dir>/s3/BUCKET/KEY`` (``Settings.s3_folder``). Put the file there, then call
CreateImportJob with ``S3Url=s3://BUCKET/KEY``. Reading is pluggable: :data:`source_opener` turns an S3 URL
into a local file the job can read (a later backend downloads from an S3-compatible endpoint instead).

What SES reports, and how it maps here (contract §7):
- ``JobId`` is a UUID; ``JobStatus`` CREATED (queued), PROCESSING (running), COMPLETED, FAILED (a file-level
  error, or a job interrupted by a stopped server: resume it with ``sescontacts jobs resume ID``), CANCELLED.
- ``ProcessedRecordsCount`` = records read so far (applied or rejected); ``FailedRecordsCount`` = rejected
  records. Rejected records do not fail the job (SES: "a per-record failure still ends COMPLETED").
- ``FailureInfo.FailedRecordsS3Url``: SES gives a pre-signed URL; locally it is a ``file://`` URL of the
  rejects CSV (line, emailAddress, column, reason). ``FailureInfo.ErrorMessage`` says why a job failed.
- PUT adds or updates, DELETE removes. Unlike SES, an unsubscribed contact is never re-subscribed by a PUT
  import (the product's rule for every import).
- Only contact-list destinations: a suppression-list import is refused with BadRequestException.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from ..bulk.jobs import ImportOptions, Job
from ..errors import BadRequest, InvalidNextToken, NotFound
from ..validation import check_list_name
from .codec import ApiRequest, timestamp
from .routing import operation

IMPORT_JOBS: Final = "/v2/email/import-jobs"
_S3_URL: Final = re.compile(r"^s3:\/\/([^\/]+)\/(.*?([^\/]+)\/?)$")
_STATUS: Final = {
    "queued": "CREATED",
    "running": "PROCESSING",
    "completed": "COMPLETED",
    "failed": "FAILED",
    "interrupted": "FAILED",
    "cancelled": "CANCELLED",
}
_ACTIONS: Final = {"PUT": "add", "DELETE": "delete"}
_SES_ACTIONS: Final = {"add": "PUT", "delete": "DELETE"}
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000

# (settings, bucket, key) -> a local file the job reads. It must not copy more than it has to: the job
# reads the file twice (a check, then the rows) and keeps it until it is final.
SourceOpener = Callable[[Any, str, str], Path]


def local_folder_source(settings: Any, bucket: str, key: str) -> Path:
    """``s3://BUCKET/KEY`` -> ``<data dir>/s3/BUCKET/KEY``; refuses keys that climb out of the folder."""
    root = Path(settings.s3_folder).resolve()
    path = (root / bucket / key).resolve()
    if root not in path.parents:
        raise BadRequest(f"Invalid S3Url: s3://{bucket}/{key}", field="S3Url")
    return path


def _default_source(settings: Any, bucket: str, key: str) -> Path:
    # An S3-compatible endpoint when --s3-endpoint-url is set (sesapi/s3source.py), else the folder above.
    from .s3source import endpoint_or_folder_source

    return endpoint_or_folder_source(settings, bucket, key)


source_opener: SourceOpener = _default_source


def _destination(job: Job) -> dict[str, Any]:
    return {
        "ContactListDestination": {
            "ContactListName": job.contact_list,
            "ContactListImportAction": _SES_ACTIONS.get(job.action, "PUT"),
        }
    }


def _status(job: Job) -> str:
    return _STATUS.get(job.state, "FAILED")


def _summary(job: Job) -> dict[str, Any]:
    return {
        "JobId": job.id,
        "ImportDestination": _destination(job),
        "JobStatus": _status(job),
        "CreatedTimestamp": timestamp(job.created),
        "ProcessedRecordsCount": job.rows_done,
        "FailedRecordsCount": job.rejected,
    }


@operation("CreateImportJob", "POST", IMPORT_JOBS)
def create_import_job(request: ApiRequest) -> dict[str, Any]:
    body = request.body
    destination = body.structure("ImportDestination", required=True)
    source = body.structure("ImportDataSource", required=True)
    list_destination = suppression = None
    list_name = action = url = data_format = None
    if destination is not None:
        list_destination = destination.structure("ContactListDestination")
        suppression = destination.structure("SuppressionListDestination")
        if list_destination is not None:
            list_name = list_destination.string("ContactListName", required=True)
            action = list_destination.enum("ContactListImportAction", ("DELETE", "PUT"), required=True)
        if suppression is not None:
            suppression.enum("SuppressionListImportAction", ("DELETE", "PUT"), required=True)
    if source is not None:
        url = source.string("S3Url", required=True)
        data_format = source.enum("DataFormat", ("CSV", "JSON"), required=True)
    request.check()
    if suppression is not None or list_destination is None:
        raise BadRequest(
            "Only ContactListDestination imports are supported by the local backend.", field="ImportDestination"
        )
    assert list_name is not None and action is not None and url is not None and data_format is not None
    match = _S3_URL.match(url)
    if match is None:
        raise BadRequest(f"Invalid S3Url: {url}", field="S3Url")
    check_list_name(list_name)
    try:
        request.store.get_list(list_name)
    except NotFound as exc:
        raise BadRequest(exc.message, field="ContactListName") from None
    bucket, key = match.group(1), match.group(2)
    path = source_opener(request.services.settings, bucket, key)
    options = ImportOptions(contact_list=list_name, action=_ACTIONS[action], format=data_format.lower())  # type: ignore[arg-type]
    job = request.services.jobs.submit(
        path,
        options,
        file_name=url,
        meta={"S3Url": url, "DataFormat": data_format, "source": "sesapi"},
    )
    return {"JobId": job.id}


@operation("GetImportJob", "GET", IMPORT_JOBS + "/{JobId}")
def get_import_job(request: ApiRequest) -> dict[str, Any]:
    job_id = request.label("JobId")
    if not job_id:
        raise BadRequest("JobId can't be blank.", field="JobId")
    try:
        job = request.services.jobs.get(job_id)
    except NotFound:
        raise NotFound(f"Job with id: {job_id} doesn't exist.", field="JobId") from None
    answer = _summary(job)
    answer["ImportDataSource"] = {
        "S3Url": job.meta.get("S3Url") or job.path.resolve().as_uri(),
        "DataFormat": job.meta.get("DataFormat") or (job.format or job.options.format or "csv").upper(),
    }
    failure: dict[str, str] = {}
    if job.rejected and job.rejects_path is not None:
        failure["FailedRecordsS3Url"] = job.rejects_path.resolve().as_uri()
    if job.state in ("failed", "interrupted"):
        failure["ErrorMessage"] = job.error or "The job was interrupted; resume it with: sescontacts jobs resume"
    if failure:
        answer["FailureInfo"] = failure
    if job.finished is not None and job.state in ("completed", "failed", "cancelled"):
        answer["CompletedTimestamp"] = timestamp(job.finished)
    return answer


def _list(
    request: ApiRequest, page_size: int | None, token: str | None, destination_type: str | None
) -> dict[str, Any]:
    request.check()
    size = DEFAULT_PAGE_SIZE if page_size is None else page_size
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise BadRequest(f"PageSize must be between 1 and {MAX_PAGE_SIZE}.", field="PageSize")
    if destination_type == "SUPPRESSION_LIST":
        return {"ImportJobs": []}
    before: int | None = None
    if token:
        try:
            before = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("jobs:"))
        except ValueError:
            raise InvalidNextToken("The NextToken is not valid.", field="NextToken") from None
    jobs = request.services.jobs.list(limit=size + 1, before_seq=before)
    answer: dict[str, Any] = {"ImportJobs": [_summary(job) for job in jobs[:size]]}
    if len(jobs) > size:
        last = request.services.jobs.seq(jobs[size - 1].id)
        answer["NextToken"] = base64.urlsafe_b64encode(f"jobs:{last}".encode()).decode()
    return answer


@operation("ListImportJobs", "POST", IMPORT_JOBS + "/list")
def list_import_jobs(request: ApiRequest) -> dict[str, Any]:
    body = request.body
    kind = body.enum("ImportDestinationType", ("SUPPRESSION_LIST", "CONTACT_LIST"))
    return _list(request, body.integer("PageSize"), body.string("NextToken"), kind)


@operation("ListImportJobsLegacy", "GET", IMPORT_JOBS)
def list_import_jobs_legacy(request: ApiRequest) -> dict[str, Any]:
    """botocore <= 1.34.95: GET with PageSize/NextToken in the query and ImportDestinationType in the body."""
    kind = request.body.enum("ImportDestinationType", ("SUPPRESSION_LIST", "CONTACT_LIST"))
    return _list(request, request.query_integer("PageSize"), request.query_string_value("NextToken"), kind)
