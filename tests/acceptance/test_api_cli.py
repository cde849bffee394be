"""The five ``aws sesv2`` commands of the product page, run with the real aws CLI (v1) against the server.

CLI v1 prints the wire JSON (timestamps as sent), prints nothing for ``{}`` outputs, and exits 255 with
``An error occurred (<Code>) when calling the <Op> operation: <message>`` on stderr when SES answers an error.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.server import RunningServer

from .conftest import run_aws, unique_name


def test_seed_commands_create_get_update_list_delete(api_server: RunningServer, ses: Any) -> None:
    name = unique_name("cli")
    ses.create_contact_list(ContactListName=name)
    address = "john.doe+news@example.com"
    list_args = ["--contact-list-name", name]

    created = run_aws(
        api_server, "create-contact", *list_args, "--email-address", address, "--attributes-data", '{"Name": "John"}'
    )
    assert (created.returncode, created.stdout, created.stderr) == (0, "", "")

    got = run_aws(api_server, "get-contact", *list_args, "--email-address", address)
    assert got.returncode == 0, got.stderr
    contact = json.loads(got.stdout)
    assert contact["ContactListName"] == name
    assert contact["EmailAddress"] == address
    assert contact["AttributesData"] == '{"Name": "John"}'
    assert contact["UnsubscribeAll"] is False
    assert contact["TopicPreferences"] == [] and contact["TopicDefaultPreferences"] == []
    # v1 prints the wire value verbatim: epoch seconds as a JSON number, not an ISO string.
    assert re.search(r'"CreatedTimestamp": \d{10}(\.\d{1,3})?,', got.stdout)
    assert isinstance(contact["LastUpdatedTimestamp"], float | int)
    assert got.stdout.startswith('{\n    "ContactListName"')  # v1's default json output, 4-space indent

    updated = run_aws(
        api_server, "update-contact", *list_args, "--email-address", address, "--attributes-data", '{"Name": "Jo"}'
    )
    assert (updated.returncode, updated.stdout, updated.stderr) == (0, "", "")
    assert (
        json.loads(run_aws(api_server, "get-contact", *list_args, "--email-address", address).stdout)["AttributesData"]
        == '{"Name": "Jo"}'
    )

    listed = run_aws(api_server, "list-contacts", *list_args)
    assert listed.returncode == 0, listed.stderr
    contacts = json.loads(listed.stdout)["Contacts"]
    assert [c["EmailAddress"] for c in contacts] == [address]
    assert "AttributesData" not in contacts[0] and "CreatedTimestamp" not in contacts[0]

    deleted = run_aws(api_server, "delete-contact", *list_args, "--email-address", address)
    assert (deleted.returncode, deleted.stdout, deleted.stderr) == (0, "", "")
    assert json.loads(run_aws(api_server, "list-contacts", *list_args).stdout) == {"Contacts": []}


def test_cli_errors_exit_255_with_the_ses_message(api_server: RunningServer, ses: Any) -> None:
    name = unique_name("cli")
    ses.create_contact_list(ContactListName=name)
    missing = run_aws(api_server, "get-contact", "--contact-list-name", name, "--email-address", "nobody@example.com")
    assert missing.returncode == 255
    assert missing.stdout == ""
    assert (
        "An error occurred (NotFoundException) when calling the GetContact operation: "
        "nobody@example.com doesn't exist in List." in missing.stderr
    )

    no_list = run_aws(api_server, "list-contacts", "--contact-list-name", "no-such-list")
    assert no_list.returncode == 255
    assert (
        "An error occurred (NotFoundException) when calling the ListContacts operation: "
        "List with name: no-such-list doesn't exist." in no_list.stderr
    )

    invalid = run_aws(api_server, "create-contact", "--contact-list-name", name, "--email-address", "not-an-address")
    assert invalid.returncode == 255
    assert (
        "(BadRequestException) when calling the CreateContact operation: EmailAddress <not-an-address> is invalid"
        in (invalid.stderr)
    )

    twice = [run_aws(api_server, "create-contact", "--contact-list-name", name, "--email-address", "a@b.co")]
    twice.append(run_aws(api_server, "create-contact", "--contact-list-name", name, "--email-address", "a@b.co"))
    assert [r.returncode for r in twice] == [0, 255]
    assert "(AlreadyExistsException) when calling the CreateContact operation: a@b.co already exists in List." in (
        twice[1].stderr
    )


def test_cli_with_wrong_secret_is_refused(api_server: RunningServer) -> None:
    refused = run_aws(
        api_server, "list-contacts", "--contact-list-name", "contacts", env={"AWS_SECRET_ACCESS_KEY": "wrong-secret"}
    )
    assert refused.returncode == 255
    assert "(InvalidSignatureException) when calling the ListContacts operation: The request signature we " in (
        refused.stderr
    )


def test_cli_pages_with_next_token_and_filters(api_server: RunningServer, ses: Any) -> None:
    """No paginator exists for ListContacts: the CLI makes one call and the user loops on --next-token."""
    name = unique_name("cli")
    ses.create_contact_list(ContactListName=name)
    for address in ("a@example.com", "b@example.com"):
        ses.create_contact(ContactListName=name, EmailAddress=address, UnsubscribeAll=address == "b@example.com")
    first = run_aws(api_server, "list-contacts", "--contact-list-name", name, "--page-size", "1")
    page = json.loads(first.stdout)
    assert [c["EmailAddress"] for c in page["Contacts"]] == ["a@example.com"]
    second = run_aws(
        api_server, "list-contacts", "--contact-list-name", name, "--page-size", "1", "--next-token", page["NextToken"]
    )
    assert [c["EmailAddress"] for c in json.loads(second.stdout)["Contacts"]] == ["b@example.com"]
    assert "NextToken" not in json.loads(second.stdout)
    filtered = run_aws(
        api_server, "list-contacts", "--contact-list-name", name, "--filter", '{"FilteredStatus": "OPT_OUT"}'
    )
    assert [c["EmailAddress"] for c in json.loads(filtered.stdout)["Contacts"]] == ["b@example.com"]
