"""Helpers for tests of the stored accounts: a cheap KDF, a product database on a temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sescontacts.accounts import passwords
from sescontacts.db import Database
from sescontacts.schema import PRODUCT_SCHEMA


@pytest.fixture(autouse=True, name="fast_kdf")
def fast_kdf_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt at full strength costs ~0.1 s a hash; tests that are not about the KDF use a cheap one."""
    monkeypatch.setattr(passwords, "SCRYPT_N", 2**10)


@pytest.fixture(name="database")
def database_fixture(tmp_path: Path) -> Iterator[Database]:
    """The product database (every owner's tables, the accounts' among them) on a temp dir."""
    database = Database(tmp_path / "data" / "sescontacts.db", PRODUCT_SCHEMA)
    yield database
    database.close()
