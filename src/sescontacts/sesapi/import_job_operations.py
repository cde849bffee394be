"""CreateImportJob / GetImportJob / ListImportJobs on the local backend, run by the bulk import engine.

So that scripts written against SES import jobs can be tested locally, ``s3://BUCKET/KEY`` is read from the
data directory: ``<data dir>/s3/BUCKET/KEY`` (``Settings.s3_folder``). Put the file there, then call
CreateImportJob with ``S3Url=s3://BUCKET/KEY``. Reading is pluggable: ``s3source.source_opener`` turns an S3
URL into a local file the job can read (an S3-compatible endpoint when ``--s3-endpoint-url`` is set).

What SES reports, and how it maps here (contract §7):
- ``JobId`` is a UUID; ``JobStatus`` CREATED (queued), PROCESSING (running), COMPLETED, FAILED (a file-level
  error, or a job interrupted by a stopped server: resume it with ``sescontacts jobs resume ID``), CANCELLED.
- ``ProcessedRecordsCount`` = records read so far (applied or rejected); ``FailedRecordsCount`` = rejected
  records. Rejected records do not fail the job (SES: "a per-record failure still ends COMPLETED").
- ``ImportDataSource.S3Url`` is the URL the client gave. Jobs started from the console or the CLI have no S3
  source: they show ``s3://sescontacts_local/<file name>`` (an underscore: no real bucket can have that name).
  No path of the server's disk is ever shown: ``ErrorMessage`` says the source's URL instead of its path.
- ``FailureInfo.FailedRecordsS3Url``: SES gives a pre-signed URL of the failed records; so do we, a URL of
  this server (``.../import-jobs/{JobId}/failed-records?Token=...``) that anyone holding it can GET for an
  hour without other credentials, as with S3. It serves the rejects CSV (line, emailAddress, column, reason).
  ``FailureInfo.ErrorMessage`` says why a job failed.
- ListImportJobs' NextToken is signed (``store/tokens.py``, like ListContacts'): a forged one is a
  BadRequestException (the model lists no InvalidNextTokenException for it), never a position the server
  did not hand out.
- CreateImportJob on a missing list is a 404 NotFoundException ``ContactList <name> doesn't exist``: the
  model lists no NotFound for it, but that is what real SES answered (probed, floci's SesImportJobService).
- PUT adds or overrides, DELETE removes. As SES's ("If the record already exists, it will override it with
  the new value"; a probe of real SES found omitted fields cleared): the record is the whole contact, so
  an omitted attributesData or topic preference is cleared and unsubscribeAll false (or omitted)
  re-subscribes. The product's guards (never re-subscribe, keep topic opt-outs) belong to its own import
  surfaces, the console and ``sescontacts import``; the job keeps this rule when resumed (its options).
- A ``SuppressionListDestination`` imports into the account's suppression list (``bulk/suppression_import.py``:
  CSV ``address,REASON`` lines or JSON ``{"emailAddress", "reason"}`` lines, as SES's guide shows them); its
  jobs are listed with the others, and alone for ``ImportDestinationType`` SUPPRESSION_LIST.
"""

from __future__ import annotations

import re
import time
from pathlib import Path, PurePosixPath
from typing import Any, Final
from urllib.parse import quote

from ..bulk.job_manager import ImportOptions, Job
from ..bulk.report import Action, Format
from ..bulk.suppression_import import SUPPRESSION_KIND, SUPPRESSION_LIST
from ..errors import BadRequest, NotFound, SesContactsError
from ..ses_wire import to_ses_time
from ..store.tokens import INVALID_TOKEN, TokenCodec
from ..validation import check_list_name
from . import s3source
from .codec import ApiRequest, FileReply
from .routing import operation

IMPORT_JOBS: Final = "/v2/email/import-jobs"
S3_URL_PATTERN: Final = r"^s3:\/\/([^\/]+)\/(.*?([^\/]+)\/?)$"  # the botocore model's, verbatim
_S3_URL: Final = re.compile(S3_URL_PATTERN)
MAX_S3_KEY_BYTES: Final = 1024  # S3's own limit on an object key (UTF-8)
# The S3Url of jobs that did not come from S3 (console uploads, CLI imports): "_" is not allowed in a bucket name.
LOCAL_BUCKET: Final = "sescontacts_local"
FAILED_RECORDS_SECONDS: Final = 3600  # how long a FailedRecordsS3Url works (boto3's default for pre-signed URLs)
_PAGE_SCOPE: Final = "import-jobs"
_MAX_SEQ: Final = 2**63 - 1
_STATUS: Final = {
    "queued": "CREATED",
    "running": "PROCESSING",
    "completed": "COMPLETED",
    "failed": "FAILED",
    "interrupted": "FAILED",
    "cancelled": "CANCELLED",
}
_ACTIONS: Final[dict[str, Action]] = {"PUT": "add", "DELETE": "delete"}
_FORMATS: Final[dict[str, Format]] = {"CSV": "csv", "JSON": "json"}
_SES_ACTIONS: Final = {"add": "PUT", "delete": "DELETE"}
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000
IMPORT_KINDS: Final = ("import", SUPPRESSION_KIND)  # the jobs SES calls import jobs


def _destination(job: Job) -> dict[str, Any]:
    if job.kind == SUPPRESSION_KIND:
        return {"SuppressionListDestination": {"SuppressionListImportAction": _SES_ACTIONS.get(job.action, "PUT")}}
    return {
        "ContactListDestination": {
            "ContactListName": job.contact_list,
            "ContactListImportAction": _SES_ACTIONS.get(job.action, "PUT"),
        }
    }


def _status(job: Job) -> str:
    return _STATUS.get(job.state, "FAILED")


def _source_url(job: Job) -> str:
    """The S3 URL the client gave, or a stand-in naming the file (never its path) for console/CLI jobs."""
    given = job.meta.get("S3Url")
    if isinstance(given, str) and given:
        return given
    return f"s3://{LOCAL_BUCKET}/{PurePosixPath(job.file_name.replace(chr(92), '/')).name or 'upload'}"


def _public_text(text: str, job: Job, settings: Any) -> str:
    """``text`` (a job's error) with the source's local path and the data directory replaced by public names."""
    source = _source_url(job)
    names = {str(job.path), str(job.path.resolve()), job.file_name}
    for name in sorted((n for n in names if n and n != source), key=len, reverse=True):
        text = text.replace(name, source)
    for folder in {str(Path(settings.data_dir).resolve()), str(settings.data_dir)}:
        text = text.replace(folder, "<data dir>")
    return text


def _tokens(request: ApiRequest) -> TokenCodec:
    return TokenCodec(request.services.db.meta("token_secret") or "")


def failed_records_url(services: Any, base_url: str, job_id: str, *, now: float | None = None) -> str:
    """A URL of this server that serves ``job_id``'s failed records to whoever holds it, for an hour."""
    expires = int((time.time() if now is None else now) + FAILED_RECORDS_SECONDS)
    token = TokenCodec(services.db.meta("token_secret") or "").encode(_failed_records_scope(job_id), [expires])
    return f"{base_url}{IMPORT_JOBS}/{quote(job_id, safe='')}/failed-records?Token={token}"


def _failed_records_scope(job_id: str) -> str:
    return f"failed-records:{job_id}"


class AccessDenied(SesContactsError):
    """A failed-records URL that is not (or no longer) valid: 403, as S3 answers a bad pre-signed URL."""

    code = "AccessDeniedException"
    status = 403


def _summary(job: Job) -> dict[str, Any]:
    return {
        "JobId": job.id,
        "ImportDestination": _destination(job),
        "JobStatus": _status(job),
        "CreatedTimestamp": to_ses_time(job.created),
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
            action = suppression.enum("SuppressionListImportAction", ("DELETE", "PUT"), required=True)
    if source is not None:
        url = source.string("S3Url", required=True)
        if url is not None and _S3_URL.match(url) is None:  # the model's pattern: a protocol check
            request.violations.pattern("importDataSource.s3Url", S3_URL_PATTERN)
        data_format = source.enum("DataFormat", ("CSV", "JSON"), required=True)
    request.check()
    if (suppression is None) == (list_destination is None):
        raise BadRequest(
            "ImportDestination must have one of ContactListDestination and SuppressionListDestination.",
            field="ImportDestination",
        )
    assert action is not None and url is not None and data_format is not None
    match = _S3_URL.match(url)
    if match is None or "\x00" in url or len(match.group(2).encode()) > MAX_S3_KEY_BYTES:
        raise BadRequest(f"Invalid S3Url: {url}", field="S3Url")
    meta = {"S3Url": url, "DataFormat": data_format, "source": "sesapi"}
    path = s3source.source_opener(request.services.settings, match.group(1), match.group(2))
    if list_name is None:  # the account's suppression list
        options = ImportOptions(SUPPRESSION_LIST, action=_ACTIONS[action], format=_FORMATS[data_format])
        job = request.services.jobs.submit(path, options, file_name=url, meta=meta, kind=SUPPRESSION_KIND)
        return {"JobId": job.id}
    check_list_name(list_name)
    try:
        request.store.get_list(list_name)
    except NotFound:
        # 404, though the model lists no NotFoundException for CreateImportJob: what real SES answered (probed).
        raise NotFound(f"ContactList <{list_name}> doesn't exist", field="ContactListName") from None
    options = ImportOptions(
        contact_list=list_name,
        action=_ACTIONS[action],
        format=_FORMATS[data_format],
        replace_record=action == "PUT",  # SES's PUT overrides the whole record
    )
    job = request.services.jobs.submit(path, options, file_name=url, meta=meta)
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
    if job.kind not in IMPORT_KINDS:  # a console bulk action: a job of the same engine, not an SES import job
        raise NotFound(f"Job with id: {job_id} doesn't exist.", field="JobId")
    answer = _summary(job)
    answer["ImportDataSource"] = {
        "S3Url": _source_url(job),
        "DataFormat": job.meta.get("DataFormat") or (job.format or job.options.format or "csv").upper(),
    }
    failure: dict[str, str] = {}
    if job.rejected and job.rejects_path is not None:
        failure["FailedRecordsS3Url"] = failed_records_url(request.services, request.base_url, job.id)
    if job.state in ("failed", "interrupted"):
        failure["ErrorMessage"] = _public_text(
            job.error or "The job was interrupted; resume it with: sescontacts jobs resume",
            job,
            request.services.settings,
        )
    if failure:
        answer["FailureInfo"] = failure
    if job.finished is not None and job.state in ("completed", "failed", "cancelled"):
        answer["CompletedTimestamp"] = to_ses_time(job.finished)
    return answer


def _list(
    request: ApiRequest, page_size: int | None, token: str | None, destination_type: str | None
) -> dict[str, Any]:
    request.check()
    size = DEFAULT_PAGE_SIZE if page_size is None else page_size
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise BadRequest(f"PageSize must be between 1 and {MAX_PAGE_SIZE}.", field="PageSize")
    kinds = {"SUPPRESSION_LIST": (SUPPRESSION_KIND,), "CONTACT_LIST": ("import",)}.get(destination_type or "")
    before: int | None = None
    if token is not None:  # an empty one too: SES refuses it on its other lists (probed), so here as well
        position = _tokens(request).decode(_PAGE_SCOPE, token)
        if len(position) != 1 or type(position[0]) is not int or not 0 < position[0] <= _MAX_SEQ:
            raise BadRequest(INVALID_TOKEN, field="NextToken")
        before = position[0]
    jobs = request.services.jobs.list(limit=size + 1, before_seq=before, kind=kinds or IMPORT_KINDS)
    answer: dict[str, Any] = {"ImportJobs": [_summary(job) for job in jobs[:size]]}
    if len(jobs) > size:
        last = request.services.jobs.seq(jobs[size - 1].id)
        answer["NextToken"] = _tokens(request).encode(_PAGE_SCOPE, [last])
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


@operation("GetFailedRecords", "GET", IMPORT_JOBS + "/{JobId}/failed-records", presigned=True)
def get_failed_records(request: ApiRequest) -> FileReply:
    """The rejects CSV of a job, for the holder of the URL GetImportJob gave (not an SES operation: SES's
    pre-signed S3 URL). Authenticated by its ``Token``, not SigV4."""
    job_id = request.label("JobId")
    token = request.query_string_value("Token")
    if not token:
        raise AccessDenied("The URL is not signed: ask GetImportJob for FailureInfo.FailedRecordsS3Url.")
    try:
        (expires,) = _tokens(request).decode(_failed_records_scope(job_id), token)
    except (BadRequest, ValueError):
        raise AccessDenied("The URL's signature does not match: ask GetImportJob for a new one.") from None
    if type(expires) is not int or expires < time.time():
        raise AccessDenied("The URL has expired: ask GetImportJob for a new one.")
    try:
        job = request.services.jobs.get(job_id)
    except NotFound:
        raise NotFound(f"Job with id: {job_id} doesn't exist.", field="JobId") from None
    if job.rejects_path is None or not job.rejects_path.is_file():
        raise NotFound(f"Job with id: {job_id} has no failed records.", field="JobId")
    size = min(job.rejects_bytes, job.rejects_path.stat().st_size) if job.rejects_bytes else 0
    return FileReply(job.rejects_path, size, "text/csv; charset=utf-8", f"{job_id}-failed-records.csv")
