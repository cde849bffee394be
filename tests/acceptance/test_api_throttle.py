"""``serve --throttle RATE[:BURST]``: over the rate, the local API answers exactly as SES throttles.

SES answers a contact action over its rate (about one a second) with 429 ``TooManyRequestsException``, the
code in ``x-amzn-ErrorType`` and the JSON body, and no ``Retry-After`` (docs/ses-fidelity.md, A12). The ses
backend's pacer is tested against this answer, so it must be SES's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.api_http import signed_request
from tests.acceptance.conftest import make_client
from tests.support.server import RunningServer, run_server


@pytest.fixture(scope="module")
def throttled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # One request, then one per 1,000 s: the second request is over the rate however slow the machine is.
    data_dir: Path = tmp_path_factory.mktemp("throttled") / "data"
    with run_server(data_dir, extra_args=["--throttle", "0.001:1"]) as server:
        yield server


def test_a_request_over_the_rate_gets_ses_throttle_answer(throttled_server: RunningServer) -> None:
    first = signed_request(throttled_server.url, "GET", "/v2/email/contact-lists")
    assert first[0] == 200

    status, headers, body = signed_request(throttled_server.url, "GET", "/v2/email/contact-lists")

    assert status == 429
    assert headers["x-amzn-errortype"] == "TooManyRequestsException"
    assert body["__type"] == "TooManyRequestsException"
    assert "retry-after" not in headers
    ses = make_client(throttled_server.url)
    with pytest.raises(ses.exceptions.TooManyRequestsException):
        ses.list_contact_lists()
