"""Helpers for the console's in-process tests: a Services on a temp dir, a logged-in TestClient."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient  # its httpx deprecation: pyproject's filterwarnings

from sescontacts.accounts.users import Users
from sescontacts.console.app import create_console_app
from sescontacts.services import Services
from sescontacts.settings import Settings

from .accounts import fast_kdf_fixture  # noqa: F401  (autouse wherever the console's helpers are imported)

PASSWORD = "correct horse battery"


def open_services(data_dir: Path, **settings: object) -> Services:
    services = Services.open(Settings(data_dir=data_dir, **settings))  # type: ignore[arg-type]
    services.ensure_default_list()
    return services


def csrf_of(html: str) -> str:
    match = re.search(r'data-csrf="([^"]+)"', html) or re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client: TestClient, name: str = "admin", password: str = PASSWORD) -> str:
    """Log in and return the CSRF token of the new session."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": csrf_of(page.text), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


class Console:
    """A console app on a temp data dir with its services, a client and (after ``login``) a CSRF token."""

    def __init__(self, data_dir: Path, **settings: object) -> None:
        self.services = open_services(data_dir, **settings)
        self.gate = create_console_app(self.services)
        self.app = self.gate.app
        Users(self.services.db).ensure_admin(PASSWORD)
        self.client = TestClient(self.gate, base_url="http://testserver")
        self.csrf = ""

    @property
    def store(self):
        return self.services.store

    @property
    def list_name(self) -> str:
        return self.services.settings.contact_list

    def login(self) -> Console:
        self.csrf = login(self.client)
        return self

    def post(self, path: str, data: dict[str, object] | None = None, **kwargs: object):
        body = {"csrf_token": self.csrf, **(data or {})}
        return self.client.post(path, data=body, follow_redirects=False, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(name="console")
def console_fixture(tmp_path: Path) -> Iterator[Console]:
    c = Console(tmp_path / "data")
    yield c.login()
    c.services.close()


@pytest.fixture(name="anonymous")
def anonymous_fixture(tmp_path: Path) -> Iterator[Console]:
    c = Console(tmp_path / "data")
    yield c
    c.services.close()
