"""A job run in a child process and killed with SIGKILL between two of its batches, at a chosen one: how the
kill-and-resume tests (bulk actions, undo) stop a job where they want it, with no sleep as sync."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Sequence


def kill_between_batches(code: str, args: Sequence[str], kill: Callable[[str, int], bool]) -> str:
    """Run ``python -c code *args``: a child that prints ``JOB_ID STATE BATCHES`` after each committed batch and
    waits for a line on stdin before the next. It is SIGKILLed at the first line for which ``kill(state,
    batches)`` holds; the job's ID."""
    with subprocess.Popen(
        [sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdin is not None and child.stdout is not None
        job_id = ""
        for line in child.stdout:
            job_id, state, batches = line.split()
            if kill(state, int(batches)):
                child.send_signal(signal.SIGKILL)
                break
            child.stdin.write("\n")
            child.stdin.flush()
    assert child.returncode == -signal.SIGKILL
    return job_id
