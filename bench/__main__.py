"""Run every benchmark suite (or the ones named: ``python -m bench api bulk``) and print their figures.

Each suite is a module in this package with ``run(report)``; ``report`` prints a line and keeps it for the
summary written to ``bench/out/results.md``.
"""

from __future__ import annotations

import importlib
import os
import platform
import sqlite3
import sys
import time
from pathlib import Path

SUITES = ["api", "bulk", "actions", "console", "ses", "scale", "events", "history"]
# Where results.md goes; SESCONTACTS_BENCH_OUT moves it (the smoke test must not overwrite a real record).
OUT = Path(os.environ.get("SESCONTACTS_BENCH_OUT") or Path(__file__).parent / "out")


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)


def main(argv: list[str]) -> int:
    names = argv or SUITES
    report = Report()
    report(f"# sescontacts benchmarks, {time.strftime('%Y-%m-%d %H:%M')}")
    report(f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, {platform.machine()}")
    for name in names:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bench.{name}":
                raise  # a suite that imports what no longer exists is broken, not absent
            report(f"\n## {name}: suite not present")
            continue
        report(f"\n## {name}")
        module.run(report)
    OUT.mkdir(exist_ok=True)
    (OUT / "results.md").write_text("\n".join(report.lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
