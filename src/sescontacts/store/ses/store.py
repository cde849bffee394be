"""The ses backend: ``ContactStore`` on a real Amazon SES v2 contact list (boto3), with a local mirror.

SES is the source of truth. Every write goes to SES first and only then to the mirror (a
:class:`~sescontacts.store.sqlite.SqliteContactStore` on the local database: same schema, same query code),
so a failed SES call never leaves the mirror claiming something SES does not have. What SES cannot answer
(search, our filters, counts, attributes in a list, statistics) is read from the mirror, which
:mod:`sescontacts.store.sync` keeps in step with changes made elsewhere.

Every SES request goes through the process-wide :class:`~sescontacts.store.pacer.Pacer` (SES allows about
one non-sending request per second), and botocore's ClientErrors become the product's error classes with
SES's own message, so the console and the CLI show the same thing on both backends.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from ... import errors
from ...model import (
    Contact,
    ContactList,
    ContactPatch,
    ContactQuery,
    Count,
    ListStats,
    Outcome,
    Page,
    RowResult,
    Topic,
    UpsertPolicy,
    apply_patch,
)
from ...validation import (
    check_attributes_data,
    check_description,
    check_email,
    check_list_name,
    check_new_list,
    check_tags,
    check_topics,
)
from ...validation import email_key as key_of
from ..base import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, ExportRows, check_page_size
from ..sqlite import SqliteContactStore
from .pacer import BOTO_CONFIG, Pacer, shared_pacer

if TYPE_CHECKING:
    from ...db import Database
    from ...settings import Settings
    from .sync import MirrorSync, SyncStatus

LOCAL_ACCOUNT_ID = "000000000000"
# SES's ListContacts page size is undocumented; 1000 is what users page with (aws-sdk-js#3570).
LIST_PAGE_SIZE = 1000
IMPORT_JOB_ROWS = 100_000  # rows per import job (SES takes up to 1,000,000; this bounds our memory)
PACED_BATCH_ROWS = 50

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
    mapped.code = code or str(status)  # type: ignore[misc]  # an instance keeps the code SES sent
    mapped.status = status  # type: ignore[misc]
    return mapped


def timestamp(value: object) -> float:
    """SES timestamps (datetime from botocore, also for moto's ISO strings) as epoch seconds to the millisecond.

    Rounded so a value read from ListContacts and the same value stored in the mirror compare equal.
    """
    if value is None:
        return 0.0
    if isinstance(value, dt.datetime):
        return round(value.timestamp(), 3)
    return round(float(value), 3)  # type: ignore[arg-type]


def contact_from_ses(data: Mapping[str, Any]) -> Contact:
    """A GetContact answer (or a ListContacts item, which lacks attributes and the creation time)."""
    return Contact(
        email=data["EmailAddress"],
        unsubscribe_all=bool(data.get("UnsubscribeAll", False)),
        topic_preferences={p["TopicName"]: p["SubscriptionStatus"] for p in data.get("TopicPreferences") or ()},
        attributes_data=data.get("AttributesData") or None,
        created=timestamp(data.get("CreatedTimestamp")),
        updated=timestamp(data.get("LastUpdatedTimestamp")),
    )


def list_from_ses(data: Mapping[str, Any]) -> ContactList:
    return ContactList(
        name=data["ContactListName"],
        topics=tuple(
            Topic(
                name=t["TopicName"],
                display_name=t.get("DisplayName", ""),
                default_status=t.get("DefaultSubscriptionStatus", "OPT_OUT"),
                description=t.get("Description"),
            )
            for t in data.get("Topics") or ()
        ),
        description=data.get("Description"),
        tags=tuple((t["Key"], t["Value"]) for t in data.get("Tags") or ()),
        created=timestamp(data.get("CreatedTimestamp")),
        updated=timestamp(data.get("LastUpdatedTimestamp")),
    )


def _topics_to_ses(topics: Sequence[Topic]) -> list[dict[str, str]]:
    out = []
    for t in topics:
        item = {"TopicName": t.name, "DisplayName": t.display_name, "DefaultSubscriptionStatus": t.default_status}
        if t.description is not None:
            item["Description"] = t.description
        out.append(item)
    return out


def _preferences_to_ses(preferences: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"TopicName": name, "SubscriptionStatus": status} for name, status in preferences.items()]


def make_session(
    *, region: str, profile: str | None = None, role_arn: str | None = None, external_id: str | None = None
) -> Any:
    """A boto3 session on the standard credential chain (env, profile, SSO, instance role...).

    With ``role_arn``, credentials are the assumed role's, refreshed by botocore before they expire, so a
    long-running server never stores or prints a secret of its own.
    """
    import boto3
    import botocore.session
    from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

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
    core = botocore.session.Session()
    # No public setter exists; botocore's own assume-role provider builds exactly this object.
    core._credentials = DeferredRefreshableCredentials(method="assume-role", refresh_using=fetcher.fetch_credentials)
    return boto3.Session(botocore_session=core, region_name=region)


class SesContactStore:
    """``ContactStore`` on SES v2 through boto3, reads that SES cannot serve answered by ``mirror``."""

    backend = "ses"
    # Every write is committed on SES as it is made: there is no transaction to share with the caller.
    transactional = False

    def __init__(
        self,
        mirror: SqliteContactStore,
        *,
        region: str,
        client: Any = None,
        session: Any = None,
        endpoint_url: str | None = None,
        pacer: Pacer | None = None,
        account_id: str | None = None,
        list_page_size: int = LIST_PAGE_SIZE,
        s3_import_location: str | None = None,
        s3_endpoint_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mirror = mirror
        self.region = region
        self.endpoint_url = endpoint_url
        self.pacer = pacer or shared_pacer()
        self.list_page_size = list_page_size
        self.s3_import_location = s3_import_location
        self.s3_endpoint_url = s3_endpoint_url
        self._session = session
        if client is None:
            import boto3

            self._session = session or boto3.Session(region_name=region)
            client = self._session.client("sesv2", region_name=region, endpoint_url=endpoint_url, config=BOTO_CONFIG)
        self.client = client
        self._account_id = account_id
        self._now = clock
        self.calls: collections.Counter[str] = collections.Counter()
        self._calls_lock = threading.Lock()
        self.sync: MirrorSync | None = None
        self.import_poll_interval = 2.0
        self.list_cache_seconds = 10.0
        self._list_fetched: dict[str, float] = {}

    @classmethod
    def open(cls, settings: Settings, db: Database) -> SesContactStore:
        """The store ``Services`` uses: SES per ``settings``, the mirror in ``db``, and its scheduled sync."""
        from .sync import MirrorSync

        mirror = SqliteContactStore(db, region=settings.region, account_id=LOCAL_ACCOUNT_ID, max_lists=None)
        store = cls.from_settings(settings, mirror)
        store.sync = MirrorSync(store, interval=settings.sync_interval_seconds)
        return store

    @classmethod
    def from_settings(cls, settings: Settings, mirror: SqliteContactStore) -> SesContactStore:
        session = make_session(
            region=settings.region,
            profile=settings.aws_profile,
            role_arn=settings.role_arn,
            external_id=settings.external_id,
        )
        return cls(
            mirror,
            region=settings.region,
            session=session,
            endpoint_url=settings.ses_endpoint_url,
            pacer=shared_pacer(settings.ses_rate, settings.ses_burst),
            s3_import_location=settings.s3_import_location,
            s3_endpoint_url=settings.s3_endpoint_url,
        )

    # -- plumbing ----------------------------------------------------------------------------------------

    @property
    def account_id(self) -> str:
        """The account in list ARNs: STS's answer, asked once (our local server has no STS: zeros)."""
        if self._account_id is None:
            try:
                sts = self._session.client("sts", region_name=self.region, endpoint_url=self.endpoint_url)
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

    def close(self) -> None:
        if self.sync is not None:
            self.sync.stop()
        self.mirror.close()

    def mirror_sync(self) -> MirrorSync:
        """The sync used by bulk imports and ``sescontacts sync`` (created here when none is scheduled)."""
        if self.sync is None:
            from .sync import MirrorSync

            self.sync = MirrorSync(self)
        return self.sync

    @property
    def bulk_batch_rows(self) -> int:
        """Rows per bulk batch: one import job takes up to 100,000; row by row, small batches keep progress
        and resume fine-grained (a batch at 1 request/s takes about a minute)."""
        return IMPORT_JOB_ROWS if self.s3_import_location else PACED_BATCH_ROWS

    def atomic(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to group (see ``transactional``): each SES write, and its mirror row, is committed as made.
        The mirror's write lock is not held across SES calls, which take a second each."""
        return contextlib.nullcontext()

    def export_rows(
        self, list_name: str, query: ContactQuery, fmt: Literal["csv", "json"], *, neutralise: str = ""
    ) -> contextlib.AbstractContextManager[ExportRows | None]:
        """No rendering of its own: exports page through ``list_contacts`` (served by the mirror)."""
        return contextlib.nullcontext()

    def _use_import_job(self, list_name: str, rows: int) -> bool:
        """An import job costs two walks of the list (a page per 1,000 contacts) and a few polls; row by row
        costs two calls a row. Take the cheaper."""
        if not self.s3_import_location:
            return False
        try:
            listed = self.mirror.count_contacts(list_name, ContactQuery()).value
        except errors.NotFound:
            listed = 0
        return 2 * rows > 2 * (listed // self.list_page_size + 1) + 10

    def _import_job_runner(self) -> Any:
        from .s3_import import ImportJobRunner

        return ImportJobRunner(self, poll_interval=self.import_poll_interval)

    # -- SyncedStore: the mirror's background sync -----------------------------------------------------

    def sync_status(self) -> SyncStatus | None:
        """When the mirror was last synced and what a running sync is doing (for the console)."""
        return self.sync.status() if self.sync is not None else None

    def start_sync(self) -> None:
        """Start the scheduled sync (``open`` schedules one; a store built otherwise has none)."""
        if self.sync is not None:
            self.sync.start()

    def stop_sync(self) -> None:
        if self.sync is not None:
            self.sync.stop()

    # -- contact lists ---------------------------------------------------------------------------------

    def _fetch_list(self, name: str) -> ContactList:
        contact_list = list_from_ses(self.call("get_contact_list", ContactListName=name))
        self.mirror.mirror_list(contact_list)
        self._list_fetched[name] = time.monotonic()
        return contact_list

    def _mirror_has_list(self, name: str) -> ContactList | None:
        try:
            return self.mirror.get_list(name)
        except errors.SesContactsError:
            return None

    def _ensure_mirror_list(self, name: str) -> ContactList:
        """The list as the mirror has it, fetched from SES first when the mirror does not know it yet."""
        return self._mirror_has_list(name) or self._fetch_list(name)

    def create_list(
        self,
        name: str,
        *,
        topics: Sequence[Topic] = (),
        description: str | None = None,
        tags: Sequence[tuple[str, str]] = (),
    ) -> ContactList:
        check_new_list(name, topics, description, tags)
        params: dict[str, Any] = {"ContactListName": name, "Topics": _topics_to_ses(topics)}
        if description is not None:
            params["Description"] = description
        if tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in tags]
        self.call("create_contact_list", **params)
        return self._fetch_list(name)

    def get_list(self, name: str) -> ContactList:
        """From SES, or from the mirror when SES answered for this list moments ago: every console page needs
        the list, and at SES's 1 request/s a page view must not spend the second on it."""
        check_list_name(name)
        fetched = self._list_fetched.get(name)
        if fetched is not None and time.monotonic() - fetched < self.list_cache_seconds:
            cached = self._mirror_has_list(name)
            if cached is not None:
                return cached
        try:
            return self._fetch_list(name)
        except errors.NotFound:
            self._drop_mirror_list(name)
            raise

    def _drop_mirror_list(self, name: str) -> None:
        self._list_fetched.pop(name, None)
        with contextlib.suppress(errors.NotFound):
            self.mirror.delete_list(name)

    def update_list(
        self, name: str, *, topics: Sequence[Topic] | None = None, description: str | None = None
    ) -> ContactList:
        """UpdateContactList replaces the whole list, so unchanged parts are sent as SES has them now."""
        check_list_name(name)
        if topics is not None:
            check_topics(topics)
        check_description(description)
        current = list_from_ses(self.call("get_contact_list", ContactListName=name))
        params: dict[str, Any] = {
            "ContactListName": name,
            "Topics": _topics_to_ses(current.topics if topics is None else topics),
        }
        new_description = current.description if description is None else description
        if new_description is not None:
            params["Description"] = new_description
        self.call("update_contact_list", **params)
        return self._fetch_list(name)

    def delete_list(self, name: str) -> None:
        check_list_name(name)
        try:
            self.call("delete_contact_list", ContactListName=name)
        except errors.NotFound:
            self._drop_mirror_list(name)  # already gone in SES: gone from the mirror too
            raise
        self._drop_mirror_list(name)
        if self.sync is not None:
            self.sync.forget(name)

    def list_lists(self, *, page_size: int | None = None, token: str | None = None) -> Page[ContactList]:
        size = check_page_size(page_size)
        params: dict[str, Any] = {"PageSize": size}
        if token:
            params["NextToken"] = token
        answer = self.call("list_contact_lists", **params)
        lists = []
        for item in answer.get("ContactLists") or ():
            try:  # ListContactLists gives names only; SES allows one list, so the detail costs one call
                lists.append(self._fetch_list(item["ContactListName"]))
            except errors.NotFound:
                continue  # deleted between the two calls
        return Page(lists, answer.get("NextToken") or None)

    def tag_list(self, name: str, tags: Sequence[tuple[str, str]]) -> None:
        check_tags(tags)
        self.call("tag_resource", ResourceArn=self.list_arn(name), Tags=[{"Key": k, "Value": v} for k, v in tags])
        self._refresh_list_quietly(name)

    def untag_list(self, name: str, keys: Sequence[str]) -> None:
        self.call("untag_resource", ResourceArn=self.list_arn(name), TagKeys=list(keys))
        self._refresh_list_quietly(name)

    def _refresh_list_quietly(self, name: str) -> None:
        with contextlib.suppress(errors.SesContactsError):  # the write succeeded; a sync catches up
            self._fetch_list(name)

    def list_arn(self, name: str) -> str:
        return f"arn:aws:ses:{self.region}:{self.account_id}:contact-list/{name}"

    # -- single contacts -------------------------------------------------------------------------------

    @staticmethod
    def _check_attributes(contact: Contact) -> None:
        check_attributes_data(contact.attributes_data)  # size and nesting caps, as every surface applies them

    def _check_topics(self, list_name: str, topic_names: Sequence[str]) -> None:
        """Reject a preference for a topic the list lacks before any SES write, as SES would.

        Checked against the mirror's copy of the list, refreshed from SES when it seems to lack a topic (the
        list may have changed elsewhere), so a batch never fails half-way on SES.
        """
        if not topic_names:
            return
        contact_list = self._ensure_mirror_list(list_name)
        missing = [t for t in topic_names if contact_list.topic(t) is None]
        if missing:
            contact_list = self._fetch_list(list_name)
            for topic in missing:
                if contact_list.topic(topic) is None:
                    raise errors.NotFound(f"List: {list_name} doesn't contain Topic: {topic}", field="TopicPreferences")

    def _spelling(self, list_name: str, email: str) -> str:
        """The address as SES spells it, when the mirror knows the contact.

        Our stores treat ``Ann@x.com`` and ``ann@x.com`` as one person (:func:`validation.email_key`); SES may
        key by the exact string. Asking SES with the spelling it stored keeps both views of identity in step.
        """
        found = self.mirror.mirror_existing(list_name, [email]).get(key_of(email))
        return found.email if found is not None else email

    def _get(self, list_name: str, email: str) -> Contact:
        return contact_from_ses(self.call("get_contact", ContactListName=list_name, EmailAddress=email))

    def _get_or_none(self, list_name: str, email: str) -> Contact | None:
        try:
            return self._get(list_name, email)
        except errors.ListNotFound:
            raise
        except errors.NotFound:
            return None

    def _mirror_put(self, list_name: str, contacts: Sequence[Contact]) -> None:
        self._ensure_mirror_list(list_name)
        self.mirror.mirror_contacts(list_name, contacts)

    def _ses_write(self, list_name: str, contact: Contact, *, exists: bool) -> None:
        params: dict[str, Any] = {
            "ContactListName": list_name,
            "EmailAddress": contact.email,
            "TopicPreferences": _preferences_to_ses(contact.topic_preferences),
            "UnsubscribeAll": contact.unsubscribe_all,
        }
        if contact.attributes_data is not None:
            params["AttributesData"] = contact.attributes_data
        self.call("update_contact" if exists else "create_contact", **params)

    def create_contact(self, list_name: str, contact: Contact) -> Contact:
        check_email(contact.email)
        self._check_attributes(contact)
        self._check_topics(list_name, list(contact.topic_preferences))
        spelled = self._spelling(list_name, contact.email)
        if spelled != contact.email and self._get_or_none(list_name, spelled) is not None:
            # The same person under another spelling: SES (case-sensitive) would accept a second contact.
            raise errors.AlreadyExists(f"{contact.email} already exists in List.", field="EmailAddress")
        self._ses_write(list_name, contact, exists=False)
        created = self._get(list_name, contact.email)
        self._mirror_put(list_name, [created])
        return created

    def get_contact(self, list_name: str, email: str) -> Contact:
        try:
            contact = self._get(list_name, self._spelling(list_name, email))
        except errors.NotFound:
            self.mirror.mirror_remove(list_name, [email])
            raise
        self._mirror_put(list_name, [contact])
        return contact

    def update_contact(self, list_name: str, contact: Contact, *, merge_topic_preferences: bool = False) -> Contact:
        """UpdateContact replaces attributes and unsubscribe-all, so it always gets the whole contact, built
        on the state SES has just now (not the mirror's, which may be behind)."""
        self._check_topics(list_name, list(contact.topic_preferences))
        current = self._get(list_name, self._spelling(list_name, contact.email))
        check_attributes_data(contact.attributes_data, stored=current.attributes_data)
        preferences = dict(current.topic_preferences) if merge_topic_preferences else {}
        preferences.update(contact.topic_preferences)
        desired = Contact(
            email=current.email,
            unsubscribe_all=contact.unsubscribe_all,
            topic_preferences=preferences,
            attributes_data=contact.attributes_data,
        )
        self._ses_write(list_name, desired, exists=True)
        updated = self._get(list_name, current.email)
        self._mirror_put(list_name, [updated])
        return updated

    def delete_contact(self, list_name: str, email: str) -> None:
        try:
            self.call("delete_contact", ContactListName=list_name, EmailAddress=self._spelling(list_name, email))
        except errors.NotFound:
            self.mirror.mirror_remove(list_name, [email])
            raise
        self.mirror.mirror_remove(list_name, [email])

    # -- reads served by the mirror --------------------------------------------------------------------

    def list_contacts(
        self,
        list_name: str,
        query: ContactQuery = ContactQuery(),  # noqa: B008
        *,
        page_size: int | None = None,
        token: str | None = None,
    ) -> Page[Contact]:
        """From the mirror: SES's ListContacts has no attributes, no search and no sort."""
        self._ensure_mirror_list(list_name)
        return self.mirror.list_contacts(list_name, query, page_size=page_size, token=token)

    def count_contacts(self, list_name: str, query: ContactQuery, *, cap: int | None = None) -> Count:
        self._ensure_mirror_list(list_name)
        return self.mirror.count_contacts(list_name, query, cap=cap)

    def list_stats(self, list_name: str) -> ListStats:
        self._ensure_mirror_list(list_name)
        return self.mirror.list_stats(list_name)

    # -- bulk, row by row through the pacer --------------------------------------------------------------

    def upsert_contacts(
        self,
        list_name: str,
        patches: Sequence[ContactPatch],
        policy: UpsertPolicy,
        *,
        dry_run: bool = False,
    ) -> list[RowResult]:
        """Apply import rows one by one on SES, each on the contact as SES has it right now.

        The never-re-subscribe rule (:func:`model.apply_patch`) is therefore checked against SES's state.
        Re-running a batch after a crash is safe: rows already applied come out UNCHANGED. With an S3 location
        and enough rows, the batch goes through one import job instead (:mod:`.importjob`).
        """
        if not dry_run and self._use_import_job(list_name, len(patches)):
            runner = self._import_job_runner()
            results: list[RowResult] = runner.upsert(list_name, patches, policy)
            return _refused(results, runner.failures)
        topics = sorted({t for p in patches for t in p.topic_preferences})
        self._check_topics(list_name, topics)
        current: dict[str, Contact | None] = {}
        results = []
        for patch in patches:
            key = key_of(patch.email)
            if key not in current:
                current[key] = self._get_or_none(list_name, self._spelling(list_name, patch.email))
                if current[key] is not None and not dry_run:
                    # Free while we have it: heals a mirror left one row behind by a kill between SES and it.
                    self._mirror_put(list_name, [current[key]])  # type: ignore[list-item]
            before = current[key]
            after, result = apply_patch(before, patch, policy, self._now())
            if not dry_run and result.outcome in (Outcome.CREATED, Outcome.UPDATED):
                try:
                    self._ses_write(list_name, after, exists=before is not None)
                except errors.AlreadyExists:  # created elsewhere since we looked: apply on top of it
                    before = self._get(list_name, after.email)
                    after, result = apply_patch(before, patch, policy, self._now())
                    self._ses_write(list_name, after, exists=True)
                self._mirror_pending(list_name, after)
            current[key] = after
            results.append(result)
        return results

    def _mirror_pending(self, list_name: str, contact: Contact) -> None:
        """Mirror a contact we just wrote without reading it back (a call saved per row): its state is ours,
        its timestamps local until the next sync adopts SES's from ListContacts (:func:`sync.mark_pending`)."""
        from .sync import mark_pending

        self.mirror_sync()  # its tables exist once a MirrorSync has been made for this database
        self._ensure_mirror_list(list_name)
        with self.mirror.db.write() as conn:
            self.mirror.mirror_contacts(list_name, [contact], force=True)
            mark_pending(conn, list_name, [key_of(contact.email)], self._now())

    def delete_contacts(self, list_name: str, emails: Sequence[str], *, dry_run: bool = False) -> list[RowResult]:
        if not dry_run and self._use_import_job(list_name, len(emails)):
            runner = self._import_job_runner()
            outcome: list[RowResult] = runner.delete(list_name, emails)
            return _refused(outcome, runner.failures)
        results: list[RowResult] = []
        seen: set[str] = set()
        for email in emails:
            key = key_of(email)
            if key in seen:
                results.append(RowResult(Outcome.NOT_FOUND))
                continue
            seen.add(key)
            email = self._spelling(list_name, email)
            if dry_run:
                found = self._get_or_none(list_name, email) is not None
            else:
                try:
                    self.call("delete_contact", ContactListName=list_name, EmailAddress=email)
                    found = True
                except errors.ListNotFound:
                    raise
                except errors.NotFound:
                    found = False
                self.mirror.mirror_remove(list_name, [email])
            results.append(RowResult(Outcome.DELETED if found else Outcome.NOT_FOUND))
        return results


def _refused(results: list[RowResult], failures: Sequence[tuple[int, str]]) -> list[RowResult]:
    """The rows an import job refused, as REFUSED outcomes with SES's reason in place of what they would
    have done (the kept-unsubscribed mark stays: the contact was left unsubscribed either way)."""
    for index, reason in failures:
        kept = results[index].kept_unsubscribed
        results[index] = RowResult(Outcome.REFUSED, kept_unsubscribed=kept, reason=f"SES import job: {reason}")
    return results


__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "SesContactStore", "make_session", "map_client_error"]
