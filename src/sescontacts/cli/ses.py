"""The ses backend's commands and options: ``sescontacts doctor``, ``sescontacts iam-policy``, ``sescontacts sync``,
and the connection options ``serve`` takes (``ses_options``).

``doctor`` is for the moment a user first points sescontacts at their AWS account: every check says in plain
words what works, what is missing and what to do, and it never changes anything without asking.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from .failures import EXIT_REFUSED, ConfigError, Refused, talking_to_ses
from .options import (
    Number,
    WholeNumber,
    account_id,
    checked,
    data_options,
    endpoint_url,
    open_services,
    queue_url,
    role_arn,
    s3_location,
    settings_from,
    throttle,
)

if TYPE_CHECKING:
    from ..store.base import SyncStatus

F = Callable[..., Any]

# What each feature needs, and why: `iam-policy` prints these, `doctor` checks them.
FEATURE_ACTIONS: dict[str, tuple[str, list[str]]] = {
    "contacts": (
        "read and edit contacts, keep the local mirror in sync",
        [
            "ses:GetContactList",
            "ses:ListContactLists",
            "ses:CreateContact",
            "ses:GetContact",
            "ses:UpdateContact",
            "ses:DeleteContact",
            "ses:ListContacts",
        ],
    ),
    "lists": (
        "create the contact list, edit its topics and tags",
        [
            "ses:CreateContactList",
            "ses:UpdateContactList",
            "ses:DeleteContactList",
            "ses:TagResource",
            "ses:UntagResource",
            "ses:ListTagsForResource",
        ],
    ),
    "import-jobs": ("large imports through an SES import job", ["ses:CreateImportJob", "ses:GetImportJob"]),
    "suppression": (
        "mirror the account suppression list and change it",
        [
            "ses:GetAccount",
            "ses:ListSuppressedDestinations",
            "ses:GetSuppressedDestination",
            "ses:PutSuppressedDestination",
            "ses:DeleteSuppressedDestination",
            "ses:PutAccountSuppressionAttributes",
        ],
    ),
    "events-queue": (
        "poll the SQS queue of SES bounce and complaint events",
        ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
    ),
}
# Every feature the ses backend uses whatever its settings (the mirror sync walks the suppression list too).
CORE_FEATURES = ["contacts", "lists", "suppression"]


def ses_options(func: F) -> F:
    """How to reach SES: declared once, used by ``serve`` (with ``--backend ses``), ``doctor`` and ``sync``."""
    for option in reversed(
        [
            click.option("--profile", "aws_profile", envvar="SESCONTACTS_AWS_PROFILE", help="AWS profile to use."),
            click.option(
                "--role-arn",
                envvar="SESCONTACTS_ROLE_ARN",
                callback=checked(role_arn),
                help="IAM role to assume for SES calls.",
            ),
            click.option("--external-id", envvar="SESCONTACTS_EXTERNAL_ID", help="External id for --role-arn."),
            click.option(
                "--endpoint-url",
                "ses_endpoint_url",
                envvar="SESCONTACTS_SES_ENDPOINT_URL",
                callback=checked(endpoint_url),
                help="SES endpoint (default: AWS's for the region), e.g. another sescontacts serve.",
            ),
            click.option(
                "--ses-rate",
                envvar="SESCONTACTS_SES_RATE",
                type=Number(min=0, min_open=True),
                default=1.0,
                show_default=True,
                help="SES requests per second, for the whole process (SES allows 1/s for contact actions).",
            ),
            click.option(
                "--ses-burst",
                envvar="SESCONTACTS_SES_BURST",
                type=WholeNumber(min=1),
                default=2,
                show_default=True,
                help="Requests allowed at once before pacing starts.",
            ),
            click.option(
                "--s3-import-location",
                envvar="SESCONTACTS_S3_IMPORT_LOCATION",
                callback=checked(s3_location),
                help="s3://bucket/prefix/ for large imports through an SES import job (else row by row).",
            ),
            click.option(
                "--s3-endpoint-url",
                envvar="SESCONTACTS_S3_ENDPOINT_URL",
                callback=checked(endpoint_url),
                help="S3-compatible endpoint for s3:// URLs (default: AWS's); also where local import jobs read.",
            ),
            click.option(
                "--sync-interval",
                "sync_interval_seconds",
                envvar="SESCONTACTS_SYNC_INTERVAL",
                type=Number(min=0, min_open=True),
                default=300.0,
                show_default=True,
                help="Seconds between syncs of the local mirror with SES.",
            ),
        ]
    ):
        func = option(func)
    return func


def backend_options(func: F) -> F:
    """``--backend`` and the SES connection options, for commands that write contacts outside ``serve``."""
    func = ses_options(func)
    return click.option(
        "--backend",
        envvar="SESCONTACTS_BACKEND",
        type=click.Choice(["local", "ses"]),
        default="local",
        show_default=True,
        help="local: the contacts in the data directory. ses: a real Amazon SES contact list.",
    )(func)


def throttle_option(func: F) -> F:
    """``serve --throttle``: the local SES API refuses calls beyond a rate, as SES does (for testing clients)."""
    return click.option(
        "--throttle",
        envvar="SESCONTACTS_THROTTLE",
        callback=checked(throttle),
        help="Answer TooManyRequestsException beyond RATE[:BURST] SES API requests/s, as SES does.",
    )(func)


def register(main: click.Group) -> None:
    main.add_command(doctor)
    main.add_command(iam_policy)
    main.add_command(sync)


def policy_document(
    features: list[str],
    *,
    region: str = "*",
    account: str = "*",
    list_name: str = "*",
    queue_arn: str | None = None,
) -> dict[str, Any]:
    """Least privilege: the actions the chosen features call, on the one contact list (and import jobs, and
    the events queue: ``queue_arn``, else any queue of the account)."""
    statements: list[dict[str, Any]] = []
    list_arn = f"arn:aws:ses:{region}:{account}:contact-list/{list_name}"
    for feature in features:
        actions = FEATURE_ACTIONS[feature][1]
        if feature == "events-queue":
            resource = queue_arn or f"arn:aws:sqs:{region}:{account}:*"
            statements.append({"Sid": "EventsQueue", "Effect": "Allow", "Action": actions, "Resource": resource})
            continue
        if feature in ("import-jobs", "suppression"):
            statements.append(
                {
                    "Sid": "ImportJobs" if feature == "import-jobs" else "SuppressionList",
                    "Effect": "Allow",
                    "Action": actions,
                    # Job ids are not known in advance, and CreateImportJob names the list only in its body;
                    # the suppression list and the account are the account's, with no resource ARN of their own.
                    "Resource": "*",
                }
            )
            continue
        # ListContactLists is not resource-scoped (it has no list ARN).
        scoped = [a for a in actions if a != "ses:ListContactLists"]
        statements.append(
            {"Sid": feature.title().replace("-", ""), "Effect": "Allow", "Action": scoped, "Resource": list_arn}
        )
        if "ses:ListContactLists" in actions:
            statements.append(
                {"Sid": "FindTheList", "Effect": "Allow", "Action": ["ses:ListContactLists"], "Resource": "*"}
            )
    return {"Version": "2012-10-17", "Statement": statements}


def s3_policy(location: str) -> list[dict[str, Any]]:
    """What our role needs of the configured S3 location, and nothing more: an import uploads its file and
    deletes it when the job ends (PutObject, DeleteObject, on the keys it names: ``PREFIX/sescontacts-import-*``);
    ``doctor`` lists those keys to check the location (ListBucket on the bucket, only for that prefix). SES
    reads the file itself and hands failed records back as a pre-signed URL, so our role never reads it."""
    from ..store.ses.s3_import import upload_key_prefix

    bucket, key_prefix = upload_key_prefix(location)
    return [
        {
            "Sid": "ImportFiles",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": f"arn:aws:s3:::{bucket}/{key_prefix}*",
        },
        {
            "Sid": "CheckImportLocation",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": f"arn:aws:s3:::{bucket}",
            "Condition": {"StringLike": {"s3:prefix": [f"{key_prefix}*"]}},
        },
    ]


@click.command("iam-policy")
@data_options
@click.option(
    "--feature",
    "features",
    multiple=True,
    type=click.Choice(sorted(FEATURE_ACTIONS)),
    help="Only the permissions these features need (repeatable). Default: contacts, lists and suppression, "
    "plus import jobs when --s3-import-location is set.",
)
@click.option(
    "--account",
    default="*",
    show_default=True,
    callback=checked(account_id),
    help="AWS account id to scope the policy to.",
)
@click.option(
    "--s3-import-location",
    envvar="SESCONTACTS_S3_IMPORT_LOCATION",
    callback=checked(s3_location),
    help="s3://bucket/prefix/ for imports.",
)
@click.option(
    "--events-queue-url",
    envvar="SESCONTACTS_EVENTS_QUEUE_URL",
    callback=checked(queue_url),
    help="SQS queue of SES events that serve --events-queue-url polls (adds the events-queue feature).",
)
def iam_policy(
    features: tuple[str, ...],
    account: str,
    s3_import_location: str | None,
    events_queue_url: str | None,
    **options: Any,
) -> None:
    """Print the least-privilege IAM policy (JSON) for the features in use."""
    from ..events.sqs import queue_arn

    chosen = list(features) or CORE_FEATURES + (["import-jobs"] if s3_import_location else [])
    if events_queue_url and not features:
        chosen.append("events-queue")
    document = policy_document(
        chosen,
        region=options["region"],
        account=account,
        list_name=options["contact_list"],
        queue_arn=queue_arn(events_queue_url, region=options["region"]) if events_queue_url else None,
    )
    if s3_import_location and "import-jobs" in chosen:
        document["Statement"] += s3_policy(s3_import_location)
    click.echo(json.dumps(document, indent=2))
    if s3_import_location and "import-jobs" in chosen:
        from ..store.ses.s3_import import upload_key_prefix

        bucket, key_prefix = upload_key_prefix(s3_import_location)
        click.echo(
            f"\nSES itself reads the import file: the bucket policy of {bucket} must also allow s3:GetObject on "
            f"arn:aws:s3:::{bucket}/{key_prefix}* to the service principal ses.amazonaws.com (condition "
            "aws:Referer = your account id). If the bucket encrypts with a customer-managed KMS key, that key "
            "must allow kms:GenerateDataKey to you and kms:Decrypt to ses.amazonaws.com.",
            err=True,
        )


class Check:
    """One line of the doctor's report."""

    def __init__(self) -> None:
        self.problems = 0

    def ok(self, text: str) -> None:
        click.echo(f"  ok    {text}")

    def fail(self, text: str, fix: str | None = None) -> None:
        self.problems += 1
        click.echo(f"  FAIL  {text}")
        if fix:
            click.echo(f"        -> {fix}")

    def warn(self, text: str) -> None:
        click.echo(f"  note  {text}")


@click.command()
@data_options
@ses_options
@click.option("--yes", is_flag=True, help="Create the contact list without asking if it is missing.")
def doctor(yes: bool, **options: Any) -> None:
    """Check the connection to SES: credentials, region, the contact list and the permissions each feature needs."""
    from ..errors import AuthError, NotFound, SesContactsError
    from ..store.ses.client import make_session
    from ..store.ses.pacer import BOTO_CONFIG, Pacer

    settings = settings_from(**options, backend="ses")
    check = Check()
    click.echo(f"sescontacts doctor: SES in {settings.region}, contact list {settings.contact_list!r}")
    try:
        session = make_session(
            region=settings.region,
            profile=settings.aws_profile,
            role_arn=settings.role_arn,
            external_id=settings.external_id,
        )
        credentials = session.get_credentials()
    except Exception as exc:
        check.fail(f"could not load AWS credentials: {exc}", "check --profile / AWS_PROFILE and ~/.aws/config")
        raise SystemExit(EXIT_REFUSED) from None
    if credentials is None:
        check.fail(
            "no AWS credentials found",
            "set AWS_PROFILE (or --profile), run `aws configure`, or run on a machine with an IAM role",
        )
        raise SystemExit(EXIT_REFUSED)
    check.ok(f"credentials found ({credentials.method})")
    if settings.role_arn:
        check.ok(f"assuming role {settings.role_arn}" + (" with an external id" if settings.external_id else ""))

    pacer = Pacer(settings.ses_rate, settings.ses_burst)
    client = session.client(
        "sesv2", region_name=settings.region, endpoint_url=settings.ses_endpoint_url, config=BOTO_CONFIG
    )

    from botocore.exceptions import BotoCoreError, ClientError

    from ..store.ses.client import map_client_error

    def call(name: str, **params: Any) -> dict[str, Any]:
        try:
            return dict(pacer.call(getattr(client, name), **params))
        except ClientError as exc:
            raise map_client_error(exc) from exc
        except BotoCoreError as exc:
            from ..errors import ServiceUnavailable

            raise ServiceUnavailable(str(exc)) from exc

    def denied(exc: SesContactsError) -> bool:
        return isinstance(exc, AuthError) or exc.code in ("AccessDeniedException", "AccessDenied")

    try:
        lists = [item["ContactListName"] for item in call("list_contact_lists").get("ContactLists") or ()]
        check.ok(f"SES answers in {settings.region} (ses:ListContactLists)")
    except SesContactsError as exc:
        if denied(exc):
            check.fail(f"SES refused the credentials or ses:ListContactLists: {exc.message}", _POLICY_HINT)
        else:
            check.fail(f"cannot reach SES in {settings.region}: {exc.message}", "check --region and your network")
        raise SystemExit(EXIT_REFUSED) from None

    if settings.contact_list in lists:
        check.ok(f"contact list {settings.contact_list!r} exists")
    elif lists:
        check.fail(
            f"contact list {settings.contact_list!r} does not exist; this region has {', '.join(lists)!s}",
            f"use --contact-list {lists[0]} (SES allows one list per account and region)",
        )
    else:
        click.echo(f"  The contact list {settings.contact_list!r} does not exist (SES allows one per region).")
        if yes or click.confirm(f"  Create {settings.contact_list!r} now?", default=False):
            try:
                call("create_contact_list", ContactListName=settings.contact_list)
                check.ok(f"created contact list {settings.contact_list!r}")
                lists = [settings.contact_list]
            except SesContactsError as exc:
                check.fail(f"could not create the list: {exc.message}", _POLICY_HINT)
        else:
            check.fail("no contact list", "run `sescontacts doctor --yes` to create it")

    if settings.contact_list in lists:
        probes: list[tuple[str, str, Callable[[], object]]] = [
            ("contacts", "ses:GetContactList", lambda: call("get_contact_list", ContactListName=settings.contact_list)),
            (
                "contacts",
                "ses:ListContacts",
                lambda: call("list_contacts", ContactListName=settings.contact_list, PageSize=1),
            ),
            (
                "contacts",
                "ses:GetContact",
                lambda: call("get_contact", ContactListName=settings.contact_list, EmailAddress=_PROBE_ADDRESS),
            ),
        ]
        probes += [
            ("suppression", "ses:GetAccount", lambda: call("get_account")),
            ("suppression", "ses:ListSuppressedDestinations", lambda: call("list_suppressed_destinations", PageSize=1)),
        ]
        if settings.s3_import_location:
            probes.append(("import-jobs", "ses:GetImportJob", lambda: call("get_import_job", JobId=_PROBE_JOB)))
        for feature, action, probe in probes:
            try:
                probe()
                check.ok(f"{action} allowed ({FEATURE_ACTIONS[feature][0]})")
            except NotFound:
                check.ok(f"{action} allowed ({FEATURE_ACTIONS[feature][0]})")  # allowed, nothing there: fine
            except SesContactsError as exc:
                if denied(exc):
                    check.fail(f"{action} is not allowed: {FEATURE_ACTIONS[feature][0]} will fail", _POLICY_HINT)
                else:
                    check.ok(f"{action} allowed ({FEATURE_ACTIONS[feature][0]})")
        features = CORE_FEATURES + (["import-jobs"] if settings.s3_import_location else [])
        if settings.ses_endpoint_url:
            check.warn("write permissions are not checked against a custom endpoint: doctor changes nothing")
        else:
            _check_by_simulation(check, session, settings, features)
    if settings.s3_import_location:
        _check_s3(check, session, settings)
    click.echo("")
    if check.problems:
        click.echo(f"{check.problems} problem(s) found.")
        raise SystemExit(EXIT_REFUSED)
    click.echo("Everything sescontacts needs is in place.")


_PROBE_ADDRESS = "sescontacts-doctor-probe@example.invalid"
_PROBE_JOB = "00000000-0000-0000-0000-000000000000"
_POLICY_HINT = "attach the policy printed by `sescontacts iam-policy` to your user or role"


def principal_arn(caller_arn: str) -> str:
    """The IAM principal to simulate: an assumed-role session ARN names its role."""
    if ":assumed-role/" in caller_arn:
        prefix, _, rest = caller_arn.partition(":assumed-role/")
        account = prefix.rsplit(":", 1)[-1]
        partition = prefix.split(":")[1]
        return f"arn:{partition}:iam::{account}:role/{rest.split('/', 1)[0]}"
    return caller_arn


def simulate(session: Any, region: str, list_name: str, features: list[str]) -> dict[str, str] | str:
    """Every action the features need, as IAM would decide it for the caller ('allowed', 'implicitDeny'...),
    without calling any of them. A string instead when the simulation itself is not possible."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        caller = session.client("sts", region_name=region).get_caller_identity()
        principal = principal_arn(str(caller["Arn"]))
        account = str(caller["Account"])
        actions = sorted({a for f in features for a in FEATURE_ACTIONS[f][1]})
        answer = session.client("iam", region_name=region).simulate_principal_policy(
            PolicySourceArn=principal,
            ActionNames=actions,
            ResourceArns=[f"arn:aws:ses:{region}:{account}:contact-list/{list_name}"],
        )
    except (ClientError, BotoCoreError) as exc:
        return f"cannot simulate IAM permissions ({exc}); iam:SimulatePrincipalPolicy would let doctor check them"
    return {r["EvalActionName"]: str(r["EvalDecision"]) for r in answer.get("EvaluationResults", [])}


def _check_by_simulation(check: Check, session: Any, settings: Any, features: list[str]) -> None:
    decisions = simulate(session, settings.region, settings.contact_list, features)
    if isinstance(decisions, str):
        check.warn(decisions)
        return
    for feature in features:
        why, actions = FEATURE_ACTIONS[feature]
        denied = [a for a in actions if decisions.get(a, "allowed") != "allowed"]
        if denied:
            check.fail(f"not allowed: {', '.join(denied)} ({why})", _POLICY_HINT)
        else:
            check.ok(f"IAM allows what it takes to {why}")


def _check_s3(check: Check, session: Any, settings: Any) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from ..store.ses.s3_import import upload_key_prefix

    bucket, key_prefix = upload_key_prefix(settings.s3_import_location)
    s3 = session.client("s3", region_name=settings.region, endpoint_url=settings.s3_endpoint_url)
    try:
        # The keys imports upload: what `iam-policy` lets us list, so the check needs nothing more.
        s3.list_objects_v2(Bucket=bucket, Prefix=key_prefix, MaxKeys=1)
        check.ok(f"S3 location {settings.s3_import_location} is reachable")
    except (ClientError, BotoCoreError) as exc:
        check.fail(
            f"S3 location {settings.s3_import_location}: {exc}",
            "create the bucket, or attach the S3 statements `sescontacts iam-policy --s3-import-location "
            f"{settings.s3_import_location}` prints (s3:PutObject and s3:DeleteObject on "
            f"{bucket}/{key_prefix}*, s3:ListBucket of that prefix)",
        )


def echo_sync_progress(status: SyncStatus) -> None:
    """A sync's progress, one line on stderr a page or chunk (``sync``, and ``export`` before it reads)."""
    from ..store.ses.suppression_sync import SUPPRESSION_PART

    if status.list_name == SUPPRESSION_PART:  # entries only: no details to fetch, no count to estimate from
        line = f"{status.seen:,} listed, {status.fetched:,} new or changed, {status.calls:,} calls"
        click.echo(f"  {SUPPRESSION_PART} ({status.kind} walk): {line}", err=True)
        return
    eta = "unknown" if status.eta_seconds is None else f"{status.eta_seconds:,.0f} s"
    click.echo(
        f"  {status.list_name}: {status.seen:,} listed, {status.fetched:,} fetched, {status.calls:,} calls, ETA {eta}",
        err=True,
    )


@click.command()
@data_options
@ses_options
@click.option(
    "--full/--incremental",
    default=True,
    show_default=True,
    help="Full walks, or resume an interrupted one (the suppression list: only what changed since the last walk).",
)
def sync(full: bool, **options: Any) -> None:
    """Bring the local mirror of the SES contact list and the account suppression list up to date now, with
    progress (--full: the suppression list walked whole, else only what changed since the last walk)."""
    from ..store.base import SyncedStore
    from ..store.ses.suppression_sync import SUPPRESSION_PART

    settings = settings_from(**options, backend="ses")
    services = open_services(settings)
    store = services.store
    if not isinstance(store, SyncedStore):  # backend="ses" always opens one; the type says so
        services.close()
        raise ConfigError("this backend keeps no mirror to sync")

    try:
        with talking_to_ses():  # no credentials, access denied, SES unreachable: one line, as import says
            results = store.sync_now(full=full, on_progress=echo_sync_progress)
            for result in results:
                if result.list_name == SUPPRESSION_PART:
                    click.echo(
                        f"{result.list_name}: {result.seen:,} entries listed ({result.kind} walk), "
                        f"{result.fetched:,} new or changed, {result.removed:,} removed, {result.calls:,} SES calls "
                        f"in {result.seconds:,.1f} s"
                    )
                    continue
                click.echo(
                    f"{result.list_name}: {result.seen:,} contacts, {result.fetched:,} fetched, "
                    f"{result.removed:,} removed, {result.calls:,} SES calls in {result.seconds:,.1f} s"
                )
        status = store.sync_status()
        walk = status.suppression if status is not None else None
        if walk is not None and walk.last_error and all(r.list_name != SUPPRESSION_PART for r in results):
            raise Refused(f"{SUPPRESSION_PART} not synced: {walk.last_error}")
    finally:
        services.close()
