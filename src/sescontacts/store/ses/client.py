"""The ses backend's connection to SES: the boto3 session and client, every call paced and counted, and SES's
error answers turned into the product's error classes with SES's own message (so the console and the CLI say
the same thing on both backends).
"""

from __future__ import annotations

import collections
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from ... import errors
from .pacer import BOTO_CONFIG, Pacer

LOCAL_ACCOUNT_ID = "000000000000"
# SES's ListContacts page size is undocumented; 1000 is what users page with (aws-sdk-js#3570).
LIST_PAGE_SIZE = 1000

_ERRORS: dict[str, type[errors.SesContactsError]] = {
    cls.code: cls
    for cls in (
        errors.BadRequest,
        errors.NotFound,
        errors.AlreadyExists,
        errors.LimitExceeded,
        errors.InvalidNextToken,
        errors.TooManyRequests,
        errors.ConcurrentModification,
        errors.Serialization,
        errors.PayloadTooLarge,
        errors.MissingAuthenticationToken,
        errors.IncompleteSignature,
        errors.InvalidClientTokenId,
        errors.SignatureDoesNotMatch,
    )
}


def map_client_error(exc: ClientError) -> errors.SesContactsError:
    """The product's error for an SES error answer, keeping SES's code, status and message."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or code or "SES returned an error.")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
    cls = _ERRORS.get(code)
    if cls is errors.NotFound and message.startswith("List with name"):
        # SES says NotFoundException for a missing list and a missing contact alike; only the message differs.
        cls = errors.ListNotFound
    if cls is not None:
        return cls(message)
    mapped = errors.AuthError(message) if status == 403 else errors.SesContactsError(message)
    mapped.code = code or str(status)  # an instance keeps the code SES sent
    mapped.status = status
    return mapped


def make_session(
    *, region: str, profile: str | None = None, role_arn: str | None = None, external_id: str | None = None
) -> Any:
    """A boto3 session on the standard credential chain (env, profile, SSO, instance role...).

    With ``role_arn``, credentials are the assumed role's, refreshed by botocore before they expire, so a
    long-running server never stores or prints a secret of its own.
    """
    import boto3
    import botocore.session
    from botocore.credentials import (
        AssumeRoleCredentialFetcher,
        CredentialProvider,
        CredentialResolver,
        DeferredRefreshableCredentials,
    )

    base = boto3.Session(profile_name=profile, region_name=region)
    if not role_arn:
        return base
    extra: dict[str, Any] = {"RoleSessionName": "sescontacts"}
    if external_id:
        extra["ExternalId"] = external_id
    source = base.get_credentials()
    if source is None:
        raise errors.ServiceUnavailable("No AWS credentials found to assume the role with.")
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=base._session.create_client,  # botocore's documented way to build the STS client
        source_credentials=source,
        role_arn=role_arn,
        extra_args=extra,
    )
    credentials = DeferredRefreshableCredentials(method="assume-role", refresh_using=fetcher.fetch_credentials)

    class AssumedRole(CredentialProvider):
        """A credential chain of one link: the assumed role's credentials, as botocore's own provider builds."""

        METHOD = "assume-role"

        def load(self) -> DeferredRefreshableCredentials:
            return credentials

    core = botocore.session.Session()
    # The session's public way to take credentials it refreshes itself (set_credentials only takes static keys).
    core.register_component("credential_provider", CredentialResolver(providers=[AssumedRole()]))
    return boto3.Session(botocore_session=core, region_name=region)


class SesClient:
    """One account and region of SES v2: paced calls, counted by operation, errors mapped.

    ``client`` is a boto3 ``sesv2`` client (built from ``session``, or a plain session, when not given).
    """

    def __init__(
        self,
        *,
        region: str,
        pacer: Pacer,
        client: Any = None,
        session: Any = None,
        endpoint_url: str | None = None,
        account_id: str | None = None,
    ) -> None:
        self.region = region
        self.pacer = pacer
        self.endpoint_url = endpoint_url
        if client is None:
            import boto3

            session = session or boto3.Session(region_name=region)
            client = session.client("sesv2", region_name=region, endpoint_url=endpoint_url, config=BOTO_CONFIG)
        self.session = session
        self.client = client
        self._account_id = account_id
        self.calls: collections.Counter[str] = collections.Counter()
        self._calls_lock = threading.Lock()

    @property
    def account_id(self) -> str:
        """The account in list ARNs: STS's answer, asked once (our local server has no STS: zeros)."""
        if self._account_id is None:
            try:
                sts = self.session.client("sts", region_name=self.region, endpoint_url=self.endpoint_url)
                self._account_id = str(sts.get_caller_identity()["Account"])
            except Exception:  # no STS at a custom endpoint, or no permission: ARNs still need a value
                self._account_id = LOCAL_ACCOUNT_ID
        return self._account_id

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One paced SES request; errors become :mod:`sescontacts.errors` classes."""
        method = getattr(self.client, operation)
        with self._calls_lock:
            self.calls[operation] += 1
        try:
            return dict(self.pacer.call(method, **params))
        except ClientError as exc:
            raise map_client_error(exc) from exc
        except NoCredentialsError as exc:
            raise errors.ServiceUnavailable(
                "No AWS credentials found. Set AWS_PROFILE or --profile, or run `sescontacts doctor`."
            ) from exc
        except NoRegionError as exc:
            raise errors.ServiceUnavailable("No AWS region set: pass --region.") from exc
        except BotoCoreError as exc:
            raise errors.ServiceUnavailable(f"Could not reach SES: {exc}") from exc

    def total_calls(self) -> int:
        with self._calls_lock:
            return sum(self.calls.values())

    def s3(self, endpoint_url: str | None) -> Any:
        """An S3 client on the same credentials (for import jobs' files)."""
        session = self.session
        if session is None:
            import boto3

            session = boto3.Session(region_name=self.region)
        return session.client("s3", region_name=self.region, endpoint_url=endpoint_url)
