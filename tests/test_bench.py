"""``make bench`` is the project's record of its speed; it is not run by ``make test``, so a refactor could break
it unseen (it did: a moved module, a renamed method). This runs every suite once at a toy size: it checks that
each runs to the end, not how fast (figures from a run this small mean nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY_SIZES = {
    "SESCONTACTS_BENCH_ROWS": "300",
    "SESCONTACTS_BENCH_CONTACTS": "1000",
    "SESCONTACTS_BENCH_LOAD_SECONDS": "1",
    "SESCONTACTS_BENCH_IMPORT_ROWS": "2000",
    "SESCONTACTS_BENCH_MOTO_CONTACTS": "50",
    "SESCONTACTS_BENCH_SES_CONTACTS": "100",
    "SESCONTACTS_BENCH_SES_PACED_SAMPLE": "5",
}


@pytest.mark.slow
def test_every_bench_suite_runs_to_the_end_at_a_toy_size(tmp_path: Path) -> None:
    env = {**os.environ, **TOY_SIZES, "SESCONTACTS_BENCH_OUT": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "bench"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for suite in ("## api", "## bulk", "## actions", "## console", "## ses"):
        assert f"\n{suite}\n" in result.stdout, f"{suite} did not run"
    assert "suite not present" not in result.stdout
