"""The AWS API dialog: the values a program needs, five ready-to-paste AWS CLI commands for the list's
contacts and five for the account's suppression list, filled in.

Values come from the running server (region, list, the URL this browser reached us on) so a pasted
command works as shown. The secret key never appears in HTML: the page names where the keys come from
and the command that prints them (``sescontacts credentials``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...errors import NotFound
from ...model import Contact
from ...ses_wire import ATTRIBUTES_DATA, TOPIC_PREFERENCES, UNSUBSCRIBE_ALL, contact_write
from ...store.base import ContactStore
from ...validation import email_problem
from .common import in_thread, is_htmx, list_name, render, services

EXAMPLE_EMAIL = "jane.doe@example.com"
EXAMPLE_ATTRIBUTES = '{"Name": "Jane", "Company": "Example Corp"}'


@dataclass(frozen=True)
class Command:
    title: str
    text: str


def _command(name: str, args: list[tuple[str, str | None]]) -> str:
    """One ``aws sesv2`` command, an argument a line; a None value is a flag on its own (``--unsubscribe-all``)."""
    lines = [f"aws sesv2 {name}"] + [
        f"  {flag}" if value is None else f"  {flag} {shlex.quote(value)}" for flag, value in args
    ]
    return " \\\n".join(lines)


def update_args(contact: Contact) -> list[tuple[str, str | None]]:
    """UpdateContact's arguments that keep ``contact`` as it is: SES replaces the whole contact, so what the
    command leaves out (unsubscribe-all, topic preferences, attributes) is reset, not kept."""
    params = contact_write("", contact)
    args: list[tuple[str, str | None]] = [
        ("--unsubscribe-all" if params[UNSUBSCRIBE_ALL] else "--no-unsubscribe-all", None)
    ]
    if params[TOPIC_PREFERENCES]:
        args.append(("--topic-preferences", orjson.dumps(params[TOPIC_PREFERENCES]).decode()))
    if ATTRIBUTES_DATA in params:
        args.append(("--attributes-data", params[ATTRIBUTES_DATA]))
    return args


def commands(
    region: str, list_name: str, endpoint: str | None, email: str, contact: Contact | None = None
) -> list[Command]:
    common: list[tuple[str, str | None]] = [("--region", region), ("--contact-list-name", list_name)]
    if endpoint:
        common = [("--endpoint-url", endpoint), *common]
    address: list[tuple[str, str | None]] = [("--email-address", email)]
    attributes: list[tuple[str, str | None]] = [("--attributes-data", EXAMPLE_ATTRIBUTES)]
    update = update_args(contact) if contact is not None else attributes
    return [
        Command("List contacts", _command("list-contacts", common)),
        Command("Get contact", _command("get-contact", common + address)),
        Command("Add contact", _command("create-contact", common + address + attributes)),
        Command("Update contact", _command("update-contact", common + address + update)),
        Command("Delete contact", _command("delete-contact", common + address)),
    ]


def suppression_commands(region: str, endpoint: str | None, email: str) -> list[Command]:
    """The account's suppression list (not the contact list's: no ``--contact-list-name``) for ``email``."""
    common: list[tuple[str, str | None]] = [("--region", region)]
    if endpoint:
        common = [("--endpoint-url", endpoint), *common]
    address: list[tuple[str, str | None]] = [("--email-address", email)]
    return [
        Command("List suppressed addresses", _command("list-suppressed-destinations", common)),
        Command("Is this address suppressed?", _command("get-suppressed-destination", common + address)),
        Command(
            "Suppress an address", _command("put-suppressed-destination", common + address + [("--reason", "BOUNCE")])
        ),
        Command("Remove from the suppression list", _command("delete-suppressed-destination", common + address)),
        Command("Account suppression settings", _command("get-account", common)),
    ]


def _stored_contact(store: ContactStore, name: str, email: str) -> Contact | None:
    """The contact the page was asked about, as stored now; None for the example address or one not on the list."""
    if email == EXAMPLE_EMAIL:
        return None
    try:
        return store.get_contact(name, email)
    except NotFound:
        return None


def endpoint_url(request: Request) -> str:
    """The URL this browser reached the console on: the one address we know the user can reach."""
    return str(request.base_url).rstrip("/")


def boto3_snippet(region: str, list_name: str, endpoint: str | None) -> str:
    endpoint_line = f"    endpoint_url={endpoint!r},\n" if endpoint else ""
    return (
        "import boto3\n\n"
        'ses = boto3.client(\n    "sesv2",\n'
        f"    region_name={region!r},\n{endpoint_line})\n\n"
        "# ListContacts has no paginator in botocore: follow NextToken yourself.\n"
        "kwargs = {" + f'"ContactListName": {list_name!r}' + "}\n"
        "while True:\n"
        "    page = ses.list_contacts(**kwargs)\n"
        '    for contact in page["Contacts"]:\n'
        '        print(contact["EmailAddress"])\n'
        '    if "NextToken" not in page:\n'
        "        break\n"
        '    kwargs["NextToken"] = page["NextToken"]\n'
    )


async def aws_page(request: Request) -> Response:
    svc = services(request)
    settings = svc.settings
    local = settings.backend == "local"
    endpoint = endpoint_url(request) if local else None
    email = request.query_params.get("email", "").strip() or EXAMPLE_EMAIL
    if email_problem(email):
        email = EXAMPLE_EMAIL
    contact = await in_thread(_stored_contact, svc.store, list_name(request), email)
    data_dir_flag = (
        ""
        if str(settings.data_dir) in ("sescontacts-data", "./sescontacts-data")
        else (f" --data-dir {shlex.quote(str(settings.data_dir))}")
    )
    template = "aws_dialog.html" if is_htmx(request) else "aws.html"
    return render(
        request,
        template,
        region=svc.store.region,
        contact_list_name=list_name(request),
        endpoint=endpoint,
        backend=settings.backend,
        ses_semantics=settings.ses_semantics if local else None,
        key_source=svc.access_key.source,
        access_key_id=svc.access_key.access_key_id if local else None,
        credentials_command=f'eval "$(sescontacts credentials{data_dir_flag})"',
        commands=commands(svc.store.region, list_name(request), endpoint, email, contact),
        suppression_commands=suppression_commands(svc.store.region, endpoint, email),
        boto3=boto3_snippet(svc.store.region, list_name(request), endpoint),
        email=email,
        contact=contact,
    )


routes = [Route("/aws", aws_page, methods=["GET"], name="aws")]
