"""The local SQLite store: the shared ContactStore contract, plus what only the local store does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sescontacts.db import Database
from sescontacts.store.sqlite import SqliteContactStore
from tests.store_contract import *  # noqa: F403 - the contract's tests run here
from tests.store_contract import ContactStore


@pytest.fixture
def list_name() -> str:
    return "contacts"


@pytest.fixture
def store(tmp_path: Path, list_name: str) -> Iterator[SqliteContactStore]:
    contact_store = SqliteContactStore(Database(tmp_path / "store.db"))
    contact_store.create_list(list_name)
    yield contact_store
    contact_store.close()


@pytest.fixture
def unlimited_store(tmp_path: Path) -> Iterator[ContactStore]:
    contact_store = SqliteContactStore(Database(tmp_path / "unlimited.db"), max_lists=None)
    yield contact_store
    contact_store.close()
