"""Browser fixtures: one real ``sescontacts serve`` and one headless Debian Chromium for the session
(``tests/support/browser.py`` says where it comes from). Screenshots go to ``tests/artifacts/`` (gitignored)
for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support.browser import CHROMIUM, launch_chromium
from tests.support.server import ACCESS_KEY_ID, ADMIN_PASSWORD, REGION, SECRET_ACCESS_KEY, RunningServer, run_server

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("console") / "data"
    if os.environ.get("SESCONTACTS_BROWSER_BACKEND") == "ses":
        # The same tests on the ses backend: the console's server talks to a second, local server as its SES.
        with run_server(tmp_path_factory.mktemp("upstream-ses") / "data") as upstream:
            ses_env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY}
            ses_args = ["--backend", "ses", "--endpoint-url", upstream.url, "--ses-rate", "200", "--ses-burst", "20"]
            with run_server(data_dir, extra_args=["--max-upload-mb", "1", *ses_args], extra_env=ses_env) as server:
                yield server
        return
    with run_server(data_dir, extra_args=["--max-upload-mb", "1"]) as server:
        yield server


# Tests that need the local backend, each with the reason the ses backend run skips it.
_AWS_KEYS = "the local SES endpoint and its keys exist only on the local backend (on ses they are the user's SES)"
LOCAL_BACKEND_ONLY = {
    "test_aws_dialog_commands_work_in_the_aws_cli": _AWS_KEYS,
    "test_aws_page_suppression_commands_work_in_the_aws_cli": _AWS_KEYS,
    "test_bulk_action_on_all_matching_shows_live_progress": "it seeds 170,000 contacts through the local SES "
    "API's import jobs",
    "test_a_bounce_shows_on_the_contact_the_table_and_the_overview": "it feeds events with `sescontacts events "
    "import` on the server's data dir, which on the ses backend would also need the upstream's flags; the "
    "console reads events from the same local tables on both backends",
}


@pytest.fixture(autouse=True)
def _local_backend_only(request: pytest.FixtureRequest) -> None:
    reason = LOCAL_BACKEND_ONLY.get(request.node.originalname)
    if os.environ.get("SESCONTACTS_BROWSER_BACKEND") == "ses" and reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def ses(console_server: RunningServer) -> Any:
    return boto3.session.Session().client(
        "sesv2",
        endpoint_url=console_server.url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 0}),
    )


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread while
# it is open, and tests after this package that start their own loop (anyio.run) must not find it there.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make test` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, console_server: RunningServer) -> Iterator[Any]:
    """A logged-in page in a fresh browser context (its own cookies)."""
    context = browser.new_context(base_url=console_server.url, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(tab)
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def log_in(tab: Any, password: str = ADMIN_PASSWORD) -> None:
    tab.goto("/")
    assert "/login" in tab.url
    tab.get_by_label("User name").fill("admin")
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url("**/")


def tab_without_javascript(
    browser: Any, server: RunningServer, *, viewport: dict[str, int] | None = None, timeout: int = 10_000
) -> Any:
    """A logged-in tab in a new browser context with JavaScript off (close it with ``tab.context.close()``)."""
    options = {"viewport": viewport} if viewport else {}
    context = browser.new_context(base_url=server.url, java_script_enabled=False, **options)
    context.set_default_timeout(timeout)
    tab = context.new_page()
    log_in(tab)
    return tab


def shot(tab: Any, name: str, *, full_page: bool = True) -> None:
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)
