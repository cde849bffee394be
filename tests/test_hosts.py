"""The Host check in front of the whole server (console and SES API), through the real ASGI app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient  # its httpx deprecation: pyproject's filterwarnings

from sescontacts.server.app import build_app
from sescontacts.server.hosts import allowed_hosts, default_hosts, host_name, startup_warning

from .support.console import open_services

SES_PATH = "/v2/email/contact-lists"


@pytest.fixture(name="client_for")
def client_for_fixture(tmp_path: Path) -> Iterator[object]:
    opened = []

    def make(**settings: object) -> TestClient:
        services = open_services(tmp_path / f"data{len(opened)}", **settings)
        opened.append(services)
        return TestClient(build_app(services), base_url="http://127.0.0.1:8000")

    yield make
    for services in opened:
        services.close()


def test_the_bound_loopback_names_are_answered(client_for) -> None:
    client = client_for(host="127.0.0.1")
    for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST", "127.0.0.1"):
        assert client.get("/login", headers={"Host": host}).status_code == 200, host


def test_another_host_name_is_refused_before_routing(client_for) -> None:
    client = client_for(host="127.0.0.1")
    console = client.get("/login", headers={"Host": "rebound.evil.example"})
    assert console.status_code == 400
    assert console.headers["content-type"].startswith("text/plain")
    assert "does not answer to the host 'rebound.evil.example'" in console.text and "--allowed-hosts" in console.text
    # a route that would otherwise redirect to the login page is not reached either
    assert client.get("/", headers={"Host": "evil.example"}, follow_redirects=False).status_code == 400
    api = client.get(SES_PATH, headers={"Host": "evil.example:8000"})
    assert api.status_code == 400
    assert api.headers["x-amzn-errortype"] == "BadRequestException"
    assert api.json() == {
        "__type": "BadRequestException",
        "message": "This server does not answer to the host 'evil.example:8000'.",
    }


def test_allowed_hosts_replace_the_default(client_for) -> None:
    client = client_for(host="127.0.0.1", allowed_hosts=("contacts.example.com",))
    assert client.get("/login", headers={"Host": "contacts.example.com"}).status_code == 200
    assert client.get("/login", headers={"Host": "127.0.0.1:8000"}).status_code == 400


def test_a_wildcard_bind_answers_any_host_and_says_so(client_for) -> None:
    client = client_for(host="0.0.0.0")
    assert client.get("/login", headers={"Host": "whatever.example"}).status_code == 200
    assert "--allowed-hosts" in (startup_warning((), "0.0.0.0") or "")
    assert startup_warning((), "127.0.0.1") is None
    assert startup_warning(("*",), "0.0.0.0") is None


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("Example.COM:8000", "example.com"),
        ("example.com.", "example.com"),
        ("[::1]:8000", "::1"),
        ("::1", "::1"),
        ("127.0.0.1:80", "127.0.0.1"),
        ("evil.example@127.0.0.1", None),
        ("a b", None),
        ("", None),
        ("[::1", None),
        ("host:port", None),
    ],
)
def test_host_name(value: str, name: str | None) -> None:
    assert host_name(value) == name


def test_defaults() -> None:
    assert default_hosts("127.0.0.1") == {"127.0.0.1", "localhost"}
    assert default_hosts("::1") == {"::1", "localhost"}
    assert default_hosts("localhost") == {"localhost", "127.0.0.1", "::1"}
    assert default_hosts("192.0.2.10") == {"192.0.2.10"}
    assert default_hosts("::") is None
    assert allowed_hosts(("*", "a.example"), "127.0.0.1") is None
