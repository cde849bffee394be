"""Seeding a local server's account suppression list straight into its database file: the entries SES had
before a test (or a benchmark) begins, with their own LastUpdateTime, in seconds instead of one API call each."""

from __future__ import annotations

from pathlib import Path

from sescontacts.db import Database
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.settings import DATABASE_FILE_NAME
from sescontacts.store.sqlite.suppression import SqliteSuppressionList
from sescontacts.suppression import BOUNCE, COMPLAINT, SuppressedDestination


def suppressed_address(i: int, prefix: str = "s") -> str:
    return f"{prefix}{i:07d}@example.com"


def _database(data_dir: Path) -> Database:
    data_dir.mkdir(parents=True, exist_ok=True)
    return Database(data_dir / DATABASE_FILE_NAME, PRODUCT_SCHEMA)


def clear_suppressed(data_dir: Path) -> None:
    """Empty the suppression list of the server whose data dir is ``data_dir``."""
    db = _database(data_dir)
    try:
        with db.write() as conn:
            conn.execute("DELETE FROM suppressed_destinations")
    finally:
        db.close()


def seed_suppressed(data_dir: Path, count: int, *, at: float, prefix: str = "s", batch: int = 10_000) -> None:
    """``count`` entries in the suppression list of the server whose data dir is ``data_dir`` (running or not:
    it reads each request from the file), every seventh a COMPLAINT, all last updated ``at``."""
    db = _database(data_dir)
    try:
        suppression = SqliteSuppressionList(db)
        for start in range(0, count, batch):
            suppression.store_entries(
                SuppressedDestination(suppressed_address(i, prefix), COMPLAINT if i % 7 == 0 else BOUNCE, at)
                for i in range(start, min(count, start + batch))
            )
    finally:
        db.close()
