"""The background WAL checkpointer the server starts (db.start_checkpointer), which keeps disk flushes out of
SES API writes: the writer stops auto-checkpointing, the WAL is still checkpointed, and stopping restores."""

from __future__ import annotations

import time
from pathlib import Path

from sescontacts.db import Database


def _autocheckpoint(db: Database) -> int:
    return int(db._writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def test_checkpointer_takes_over_and_hands_back(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db", ())
    with db.write() as conn:
        conn.execute("CREATE TABLE t (x TEXT)")
    db.start_checkpointer(interval=0.01)
    db.start_checkpointer(interval=0.01)  # idempotent
    assert _autocheckpoint(db) == 0
    size_before = db.path.stat().st_size
    for i in range(50):
        with db.write() as conn:
            conn.execute("INSERT INTO t VALUES (?)", (str(i) * 20_000,))
    # Nothing here checkpoints (auto-checkpoint is off), so the pages reach the main file only through the
    # background thread. Poll for that (no sleep-as-synchronisation).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and db.path.stat().st_size < size_before + 1_000_000:
        time.sleep(0.01)
    assert db.path.stat().st_size >= size_before + 1_000_000
    db.stop_checkpointer()
    assert _autocheckpoint(db) == 1000
    db.start_checkpointer()
    db.close()  # stops it too
    assert db._checkpointer is None
