"""The data dir's background work in one process: the flock goes to one owner, and over to another when the
owner stops or dies (a real child process killed with SIGKILL; no mocks)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sescontacts.background import BackgroundWork, Periodic

POLL = 0.02


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.01)  # the polling interval, not a synchronisation sleep


def work(lock: Path, log: list[str], name: str) -> BackgroundWork:
    background = BackgroundWork(lock, poll=POLL)
    background.add(lambda: log.append(f"{name} started"), lambda: log.append(f"{name} stopped"))
    return background


def test_one_owner_then_the_other_when_it_stops(tmp_path: Path) -> None:
    lock, log = tmp_path / "db-background", []
    first, second = work(lock, log, "first"), work(lock, log, "second")
    first.start()
    second.start()
    try:
        assert first.owned and not second.owned and log == ["first started"]
        first.stop()
        wait_for(
            "the second taking over and starting its work", lambda: second.owned and log[-1:] == ["second started"]
        )
        assert log == ["first started", "first stopped", "second started"]
    finally:
        first.stop()
        second.stop()
    assert log[-1] == "second stopped" and not second.owned
    assert lock.read_text() == ""  # no pid of a process that no longer owns the work


def test_a_failing_start_hook_gives_the_work_back(tmp_path: Path) -> None:
    lock, log = tmp_path / "db-background", []
    broken = BackgroundWork(lock, poll=POLL)
    broken.add(lambda: log.append("indexer started"), lambda: log.append("indexer stopped"))

    def fail() -> None:
        raise RuntimeError("database is locked")

    broken.add(fail, lambda: log.append("never"))
    with pytest.raises(RuntimeError):
        broken.start()
    assert log == ["indexer started", "indexer stopped"] and not broken.owned
    other = work(lock, log, "other")
    other.start()
    try:
        assert other.owned
    finally:
        other.stop()


def test_a_killed_owner_process_is_replaced(tmp_path: Path) -> None:
    lock = tmp_path / "db-background"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from sescontacts.background import BackgroundWork
                work = BackgroundWork({str(lock)!r})
                work.add(lambda: print("owner", flush=True), lambda: None)
                work.start()
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    here = work(lock, log, "here")
    try:
        assert child.stdout is not None and child.stdout.readline() == "owner\n"
        assert lock.read_text().split()[0] == str(child.pid)
        here.start()
        assert not here.owned and log == []
        child.send_signal(signal.SIGKILL)
        child.wait()
        wait_for("this process taking over and starting its work", lambda: here.owned and log == ["here started"])
        assert log == ["here started"] and lock.read_text().split()[0] != str(child.pid)
    finally:
        here.stop()
        if child.poll() is None:
            child.kill()
            child.wait()
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()


def test_a_periodic_step_that_fails_is_logged_and_the_next_runs(caplog: pytest.LogCaptureFixture) -> None:
    steps: list[int] = []

    def step() -> None:
        steps.append(len(steps))
        if len(steps) == 1:
            raise ValueError("the database is busy")

    periodic = Periodic("test-step", "a test step", step, interval=0.001, errors=(ValueError,))
    periodic.start()
    try:
        wait_for("a step after the failed one", lambda: len(steps) >= 2)
    finally:
        periodic.stop()
    assert "a test step: the database is busy" in caplog.text
