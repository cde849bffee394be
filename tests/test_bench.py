"""``make bench`` is the project's record of its speed; it is not run by ``make test``, so a refactor could break
it unseen (it did: a moved module, a renamed method). This runs every suite once at a toy size: it checks that
each runs to the end, not how fast (figures from a run this small mean nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
TOY_SIZES = {
    "SESCONTACTS_BENCH_ROWS": "300",
    "SESCONTACTS_BENCH_CONTACTS": "1000",
    "SESCONTACTS_BENCH_LOAD_SECONDS": "1",
    "SESCONTACTS_BENCH_IMPORT_ROWS": "2000",
    "SESCONTACTS_BENCH_MOTO_CONTACTS": "50",
    "SESCONTACTS_BENCH_SES_CONTACTS": "100",
    "SESCONTACTS_BENCH_SES_PACED_SAMPLE": "5",
    "SESCONTACTS_BENCH_SES_SUPPRESSED": "2500",
    "SESCONTACTS_BENCH_BROWSER_RUNS": "2",
    "SESCONTACTS_BENCH_SCALE_ROWS": "2000",
    "SESCONTACTS_BENCH_SCALE_PAGES": "2",
    "SESCONTACTS_BENCH_SCALE_SCAN_RUNS": "2",
    "SESCONTACTS_BENCH_SCALE_WRITE_RUNS": "2",
    "SESCONTACTS_BENCH_SCALE_QUIET_SECONDS": "1",
    "SESCONTACTS_BENCH_INDEX_CONTACTS": "1000",
    "SESCONTACTS_BENCH_INDEX_WRITES": "40",
    "SESCONTACTS_BENCH_EVENTS": "2000",
}


@pytest.mark.slow
@pytest.mark.timeout(900)  # every suite, the console's browser side included, on a shared 2-core box
def test_every_bench_suite_runs_to_the_end_at_a_toy_size(tmp_path: Path) -> None:
    env = {**os.environ, **TOY_SIZES, "SESCONTACTS_BENCH_OUT": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "bench"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for suite in ("## api", "## bulk", "## actions", "## console", "## ses", "## scale", "## events", "## history"):
        assert f"\n{suite}\n" in result.stdout, f"{suite} did not run"
    assert "suite not present" not in result.stdout
    assert "suppression list, first walk of 2,500 addresses" in result.stdout
    if Path(CHROMIUM).exists():
        browser_side = result.stdout.split("browser side:")[-1].split("## ses")[0]
        assert "| email substring, none |" in browser_side, "the console's browser side did not run"
        assert "answered by Chromium itself" in browser_side, "no static-page floor next to the page loads"
    assert "### what grows with N" in result.stdout
