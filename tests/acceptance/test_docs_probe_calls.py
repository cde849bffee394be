"""The calls docs/ses-fidelity.md asks a user to run on real SES, run verbatim on our server under both readings.

A user who pastes them into a shell must get answers they can read against the doc's comments, so the block is
taken from the doc as written and run with bash and the real aws CLI. Only the endpoint and the keys come from
the environment (``AWS_ENDPOINT_URL``), as they would from a user's profile.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import RunningServer, run_server

DOC = Path(__file__).resolve().parents[2] / "docs" / "ses-fidelity.md"


def probe_script() -> str:
    section = DOC.read_text().split("## Settling the unknowns", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "docs/ses-fidelity.md has no sh block under 'Settling the unknowns'"
    return match.group(1)


@pytest.fixture(params=["observed", "documented"], scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, RunningServer]]:
    """(the reading, a server applying it) in the Region the doc's block sets."""
    region = re.search(r"AWS_DEFAULT_REGION=(\S+)", probe_script())
    assert region, "the block no longer sets the Region"
    data_dir = tmp_path_factory.mktemp(f"probe-{request.param}") / "data"
    # The server makes its console's list on first start; the doc's Region has none, so lift the quota.
    args = ["--region", region.group(1), "--ses-semantics", request.param, "--max-contact-lists", "unlimited"]
    with run_server(data_dir, extra_args=args) as running:
        yield request.param, running


def test_the_probe_calls_run_and_answer_as_the_doc_says_for_each_reading(server: tuple[str, RunningServer]) -> None:
    reading, running = server
    env = {**running.aws_env, "AWS_ENDPOINT_URL": running.url}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # Each command's output is framed so the test can tell them apart; bash runs the block as a user would.
    script = "\n".join(
        f'echo "=== {line.strip()[:60]}"; {line}' if line.startswith("aws ") else line
        for line in [*probe_script().replace("\\\n", " ").splitlines(), "aws sesv2 list-contact-lists"]
    )
    run = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    outputs: dict[str, str] = {}
    for block in ("\n" + run.stdout).split("\n=== ")[1:]:
        command, _, output = block.partition("\n")
        outputs[command] = output
    documented = reading == "documented"

    # C6: our local server keeps one contact per address whatever its case (a product choice).
    assert "AlreadyExistsException" in run.stderr
    # C9: after an update naming only topic a, b's preference stays (observed) or is gone (documented).
    contact = json.loads(next(v for k, v in outputs.items() if k.startswith("aws sesv2 get-contact ")))
    kept = sorted(p["TopicName"] for p in contact["TopicPreferences"])
    assert kept == (["a"] if documented else ["a", "b"])
    # L8: after an update without --topics, the topics stay (observed) or are cleared (documented).
    contact_list = json.loads(next(v for k, v in outputs.items() if k.startswith("aws sesv2 get-contact-list")))
    assert [t["TopicName"] for t in contact_list["Topics"]] == ([] if documented else ["a", "b"])
    assert contact_list["Description"] == "changed"
    # The block cleans up after itself.
    listed = json.loads(next(v for k, v in outputs.items() if k.startswith("aws sesv2 list-contact-lists")))
    assert "probe" not in [item["ContactListName"] for item in listed["ContactLists"]]
