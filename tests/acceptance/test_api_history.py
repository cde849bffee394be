"""The contact history against a real ``sescontacts serve``: SES API calls (boto3, the aws CLI) are recorded as
the signing access key's ID, console writes as the logged-in user, and no secret is ever recorded."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sescontacts.history import Actor
from sescontacts.services import Services
from sescontacts.settings import Settings
from tests.acceptance.conftest import run_aws
from tests.acceptance.test_console_login import Browser
from tests.support.server import (
    ACCESS_KEY_ID,
    ADMIN_PASSWORD,
    LIST_NAME,
    SECRET_ACCESS_KEY,
    RunningServer,
    run_server,
)

API = Actor("api", ACCESS_KEY_ID)


@pytest.fixture
def server_services(api_server: RunningServer) -> Iterator[Services]:
    """The server's data dir opened beside it (nothing started): its history as the server recorded it."""
    services = Services.open(Settings(data_dir=api_server.data_dir, max_contact_lists=None))
    yield services
    services.close()


def test_api_writes_are_recorded_as_the_access_key_id(
    api_server: RunningServer, ses: Any, contact_list: str, server_services: Services
) -> None:
    ses.create_contact(ContactListName=contact_list, EmailAddress="ann@example.com", AttributesData='{"a": 1}')
    updated = run_aws(
        api_server,
        "update-contact",
        "--contact-list-name",
        contact_list,
        "--email-address",
        "ann@example.com",
        "--attributes-data",
        '{"a": 2}',
    )
    assert updated.returncode == 0, updated.stderr
    ses.delete_contact(ContactListName=contact_list, EmailAddress="ann@example.com")
    changes = server_services.history.contact_history(contact_list, "ann@example.com")
    assert [(c.op, c.actor) for c in changes] == [("deleted", API), ("updated", API), ("created", API)]
    assert (changes[1].before["attributes"], changes[1].after["attributes"]) == ('{"a": 1}', '{"a": 2}')


def test_nothing_secret_is_recorded(
    api_server: RunningServer, ses: Any, contact_list: str, server_services: Services
) -> None:
    """After a console login and write and an API call, neither the password nor the secret key is anywhere
    in the history's tables."""
    browser = Browser(api_server)
    assert browser.login(ADMIN_PASSWORD) == 303
    page = browser.request("GET", "/")[2]
    token = re.search(r'data-csrf="([^"]+)"', page) or re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    ses.create_contact(ContactListName=contact_list, EmailAddress="bo@example.com")
    # The console shows the default list: write there as the logged-in admin.
    status = browser.request("POST", "/contacts/new", {"email": "cy@example.com", "csrf_token": token.group(1)})[0]
    assert status == 303
    console_list = server_services.settings.contact_list
    (created,) = server_services.history.contact_history(console_list, "cy@example.com")
    assert created.actor == Actor("console", "admin")
    dump = "\n".join(_table_text(api_server, table) for table in ("contact_changes", "history_actors"))
    assert ACCESS_KEY_ID in dump and "admin" in dump
    assert SECRET_ACCESS_KEY not in dump and ADMIN_PASSWORD not in dump


def _table_text(server: RunningServer, table: str) -> str:
    with contextlib.closing(sqlite3.connect(server.data_dir / "sescontacts.db")) as conn:
        return "\n".join(repr(row) for row in conn.execute(f"SELECT * FROM {table}"))


def test_a_server_started_with_retention_0_records_nothing(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", extra_env={"SESCONTACTS_HISTORY_RETENTION_DAYS": "0"}) as server:
        server.sesv2().create_contact(ContactListName=LIST_NAME, EmailAddress="ann@example.com")
        services = Services.open(Settings(data_dir=server.data_dir))
        try:
            assert services.store.get_contact(LIST_NAME, "ann@example.com").email == "ann@example.com"
            assert services.history.contact_history(LIST_NAME, "ann@example.com") == []
        finally:
            services.close()
