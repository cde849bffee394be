"""Bulk writes on SES through one import job: the ses backend's fast path when an S3 location is configured.

Row by row, SES's 1 request/s makes 100,000 rows a day's work (three calls a row). An import job takes a whole
file from S3 instead. The job overwrites each listed contact with the row ("If the record already exists, it
will override it"), so rows must carry the contact's *complete* new state (every explicit topic preference, the
unsubscribe flag, the attributes; unset attributes are omitted, which PUT clears), and our rules (never
re-subscribe, keep topic opt-outs, missing fields keep their value, attributes merge) must be applied before
the file is written:

1. sync the mirror from SES (pages + GetContact for changes only), so the state the rules see is SES's own;
2. apply the rows to that state with :func:`model.apply_patch` (the same rule as everywhere), keep only the
   contacts that change, and write them as SES's newline-delimited JSON;
3. upload, CreateImportJob, poll GetImportJob (progress = ProcessedRecordsCount), delete the upload;
4. turn FailureInfo's failed records into REFUSED outcomes for those rows, with SES's reason;
5. bring the mirror up to date with a walk that *adopts* the contacts we wrote (their state is known; only
   SES's new timestamps are read from the ListContacts pages), so no GetContact per imported row.
"""

from __future__ import annotations

import csv
import io
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from ... import errors
from ...model import (
    Contact,
    ContactPatch,
    Outcome,
    RowResult,
    UpsertPolicy,
    apply_patch,
    email_key,
)
from ...ses_wire import contact_import_line, delete_import_line
from ..sqlite.mirror import mirror_existing, mirror_remove
from .client import SesClient
from .mirror import MirroredLists
from .sync import MirrorSync

FINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED")
_NOT_FOUND = RowResult(Outcome.NOT_FOUND)
UPLOAD_NAME_PREFIX = "sescontacts-import-"


def split_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, key = url[5:].partition("/")
    return bucket, key


def upload_key_prefix(location: str) -> tuple[str, str]:
    """The bucket of ``location`` (``s3://bucket/prefix``) and the start of every key an import uploads there:
    the one place both the uploads and ``sescontacts iam-policy`` (which allows exactly these keys) take it."""
    bucket, prefix = split_s3_url(location)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix + UPLOAD_NAME_PREFIX


def parse_failed_records(data: bytes) -> list[tuple[str, str]]:
    """(email, reason) for each failed record. SES does not document the file's layout, so accept CSV with a
    header or JSON lines, and any column/key that looks like the address and the error."""
    text = data.decode("utf-8", errors="replace")
    rows: list[dict[str, Any]] = []
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        if stripped.startswith("["):
            rows = [r for r in orjson.loads(stripped) if isinstance(r, dict)]
        else:
            rows = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    failures = []
    for row in rows:
        lowered = {str(k).lower().replace("_", ""): v for k, v in row.items()}
        email = lowered.get("emailaddress") or lowered.get("email") or ""
        reason = (
            lowered.get("failurereason")
            or lowered.get("errormessage")
            or lowered.get("error")
            or lowered.get("reason")
            or "rejected by SES"
        )
        if email:
            failures.append((str(email), str(reason)))
    return failures


def refused(results: list[RowResult], failures: Sequence[tuple[int, str]]) -> list[RowResult]:
    """The rows an import job refused, as REFUSED outcomes with SES's reason in place of what they would
    have done (the kept marks stay: the contact was left unsubscribed, or opted out, either way)."""
    for index, reason in failures:
        was = results[index]
        results[index] = RowResult(
            Outcome.REFUSED,
            kept_unsubscribed=was.kept_unsubscribed,
            reason=f"SES import job: {reason}",
            kept_opted_out=was.kept_opted_out,
        )
    return results


def _failed_keys(
    failed: Sequence[tuple[str, str]], sent: Mapping[str, Contact], key_of: Callable[[str], str]
) -> list[tuple[str, str]]:
    """SES's failed records as (key of the contact we sent, reason); records naming no contact sent are dropped.

    A record names the address as SES read it from our file, so its exact key is normally one we sent. Should
    SES name it in another case, the one contact sent under that address whatever its case is meant; when
    several spellings were sent (SES keeping them apart), only the exact one can be told."""
    by_folded: dict[str, list[str]] = {}
    for key, contact in sent.items():
        by_folded.setdefault(email_key(contact.email), []).append(key)
    found = []
    for email, reason in failed:
        key = key_of(email)
        if key not in sent:
            mates = by_folded.get(email_key(email), [])
            if len(mates) != 1:
                continue
            key = mates[0]
        found.append((key, reason))
    return found


class ImportJobRunner:
    """Runs one batch of rows as one SES import job, the file uploaded to ``location`` (``s3://bucket/prefix``).

    ``sync`` brings the mirror behind ``lists`` up to date before the rules are applied and after the job."""

    def __init__(
        self,
        ses: SesClient,
        lists: MirroredLists,
        sync: MirrorSync,
        *,
        location: str,
        s3_endpoint_url: str | None = None,
        poll_interval: float = 2.0,
        timeout: float = 24 * 3600,
    ) -> None:
        if not location:
            raise ValueError("no S3 import location configured")
        self.ses = ses
        self.lists = lists
        self.sync = sync
        self.location = location
        self.s3_endpoint_url = s3_endpoint_url
        self.poll_interval = poll_interval
        self.timeout = timeout

    def _s3(self) -> Any:
        return self.ses.s3(self.s3_endpoint_url)

    def _location(self) -> tuple[str, str]:
        bucket, key_prefix = upload_key_prefix(self.location)
        return bucket, f"{key_prefix}{uuid.uuid4()}.jsonl"

    # -- the two actions -------------------------------------------------------------------------------

    def upsert(self, list_name: str, patches: Sequence[ContactPatch], policy: UpsertPolicy) -> list[RowResult]:
        """One result per patch, in order; rows SES refused are REFUSED with its reason. With
        ``policy.existing_only`` a row for a contact SES does not have is NOT_FOUND, not created (a bulk action
        on contacts the mirror listed, some of which may have been deleted since)."""
        self.lists.check_topics(list_name, sorted({t for p in patches for t in p.topic_preferences}))
        self.sync.sync(list_name, full=True)  # the rules below see SES's state, read just now
        key_of = self.lists.local.email_key  # SES's identity: rows spelled differently are different contacts
        existing = mirror_existing(self.lists.local, list_name, [p.email for p in patches])
        current: dict[str, Contact | None] = dict(existing)
        results: list[RowResult] = []
        last_index: dict[str, int] = {}
        now = time.time()
        for index, patch in enumerate(patches):
            key = key_of(patch.email)
            if policy.existing_only and current.get(key) is None:
                results.append(_NOT_FOUND)
                continue
            after, result = apply_patch(current.get(key), patch, policy, now)
            current[key] = after
            results.append(result)
            last_index[key] = index
        changed = {
            key: contact
            for key, contact in current.items()
            if contact is not None and (existing.get(key) is None or not existing[key].same_state(contact))
        }
        if not changed:
            return results
        # Whole contacts (SES's PUT overrides the record): other topics, the flag, the attributes all stay.
        body = b"".join(contact_import_line(c) for c in changed.values())
        failed = _failed_keys(self._run_job(list_name, "PUT", body), changed, key_of)
        failures = [(last_index[key], reason) for key, reason in failed]
        failed_keys = {key for key, _ in failed}
        adopt = {k: c for k, c in changed.items() if k not in failed_keys}
        self.sync.sync(list_name, full=True, adopt=adopt)
        return refused(results, failures)

    def delete(self, list_name: str, emails: Sequence[str]) -> list[RowResult]:
        """One result per address, in order: DELETED, NOT_FOUND, or REFUSED with SES's reason."""
        self.sync.sync(list_name, full=True)
        key_of = self.lists.local.email_key
        existing = mirror_existing(self.lists.local, list_name, list(emails))
        results: list[RowResult] = []
        seen: set[str] = set()
        targets: dict[str, Contact] = {}
        index_of: dict[str, int] = {}
        for index, email in enumerate(emails):
            key = key_of(email)
            found = key in existing and key not in seen
            seen.add(key)
            if found:
                targets[key] = existing[key]
                index_of[key] = index
            results.append(RowResult(Outcome.DELETED if found else Outcome.NOT_FOUND))
        if not targets:
            return results
        body = b"".join(delete_import_line(c.email) for c in targets.values())
        failed = _failed_keys(self._run_job(list_name, "DELETE", body), targets, key_of)
        failures = [(index_of[key], reason) for key, reason in failed]
        failed_keys = {key for key, _ in failed}
        mirror_remove(self.lists.local, list_name, [c.email for k, c in targets.items() if k not in failed_keys])
        return refused(results, failures)

    # -- the job ---------------------------------------------------------------------------------------

    def _run_job(self, list_name: str, action: str, body: bytes) -> list[tuple[str, str]]:
        """Upload, run and wait for one import job; the failed records as (email, reason)."""
        s3 = self._s3()
        bucket, key = self._location()
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
        try:
            answer = self.ses.call(
                "create_import_job",
                ImportDestination={
                    "ContactListDestination": {"ContactListName": list_name, "ContactListImportAction": action}
                },
                ImportDataSource={"S3Url": f"s3://{bucket}/{key}", "DataFormat": "JSON"},
            )
            job_id = answer["JobId"]
            deadline = time.monotonic() + self.timeout
            while True:
                job = self.ses.call("get_import_job", JobId=job_id)
                status = job.get("JobStatus", "")
                if status in FINAL_STATES:
                    break
                if time.monotonic() > deadline:
                    raise errors.ServiceUnavailable(f"SES import job {job_id} did not finish in time.")
                time.sleep(self.poll_interval)
        finally:
            s3.delete_object(Bucket=bucket, Key=key)  # the file holds personal data: never leave it behind
        info = job.get("FailureInfo") or {}
        if status != "COMPLETED":
            message = info.get("ErrorMessage") or f"the job ended {status}"
            raise errors.BadRequest(f"SES import job {job_id} failed: {message}")
        if not int(job.get("FailedRecordsCount") or 0):
            return []
        url = info.get("FailedRecordsS3Url")
        if not url:
            return []
        return parse_failed_records(self._download(url))

    def _download(self, url: str) -> bytes:
        if url.startswith("s3://"):
            bucket, key = split_s3_url(url)
            return bytes(self._s3().get_object(Bucket=bucket, Key=key)["Body"].read())
        with urllib.request.urlopen(url, timeout=60) as response:  # SES gives a pre-signed https URL
            return bytes(response.read())
