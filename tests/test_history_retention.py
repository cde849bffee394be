"""How long the contact history is kept (history_retention.py): the background pruner deletes what is older
than the retention, and a retention of 0 days records nothing until a server starts with more again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sescontacts.db import Database
from sescontacts.history import ChangeQuery
from sescontacts.history_retention import DAY, HistoryPruner
from sescontacts.model import Contact
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.services import Services
from sescontacts.settings import Settings
from sescontacts.store.sqlite import SqliteContactStore
from sescontacts.store.sqlite.history import SqliteContactHistory

LIST = "contacts"
T0 = 1_790_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[SqliteContactStore]:
    store = SqliteContactStore(Database(tmp_path / "r.db", PRODUCT_SCHEMA), clock=clock)
    store.create_list(LIST)
    yield store
    store.close()


def test_the_pruner_deletes_what_is_older_than_the_retention(store: SqliteContactStore, clock: Clock) -> None:
    history = SqliteContactHistory(store.db, store.identity)
    for i in range(5):  # created 200 days ago
        store.create_contact(LIST, Contact(f"old{i}@example.com"))
    clock.now = T0 + 100 * DAY
    store.update_contact(LIST, Contact("old0@example.com", unsubscribe_all=True))  # 100 days ago
    clock.now = T0 + 200 * DAY
    store.create_contact(LIST, Contact("new@example.com"))  # today
    pruner = HistoryPruner(history, 180, batch=2, clock=clock)
    assert pruner.run_once() == 5  # three batches: 2, 2, 1
    assert [c.op for c in history.contact_history(LIST, "old0@example.com")] == ["updated"]
    assert history.contact_history(LIST, "old1@example.com") == []
    assert [c.op for c in history.contact_history(LIST, "new@example.com")] == ["created"]
    assert pruner.run_once() == 0
    assert HistoryPruner(history, 90, clock=clock).run_once() == 1  # the update, 100 days old
    assert [c.op for c in history.contact_history(LIST, "new@example.com")] == ["created"]


def test_a_stopped_pruner_ends_its_pruning(store: SqliteContactStore, clock: Clock) -> None:
    history = SqliteContactHistory(store.db, store.identity)
    for i in range(3):
        store.create_contact(LIST, Contact(f"c{i}@example.com"))
    clock.now = T0 + 365 * DAY
    pruner = HistoryPruner(history, 1, batch=1, clock=clock)
    pruner.start()
    pruner.stop()  # before its first interval: the pruning that would follow does nothing
    assert pruner.run_once() == 0
    assert len(history.changes(LIST, ChangeQuery()).items) == 3


def _serve(data_dir: Path, days: int) -> Services:
    services = Services.open(Settings(data_dir=data_dir, history_retention_days=days))
    services.ensure_default_list()
    return services


def test_retention_0_records_nothing_and_more_days_record_again(tmp_path: Path) -> None:
    services = _serve(tmp_path, 0)
    services.store.create_contact(LIST, Contact("off@example.com"))
    services.close()
    # A command other than serve (no retention setting) leaves it as the server set it.
    services = Services.open(Settings(data_dir=tmp_path))
    services.store.create_contact(LIST, Contact("cli@example.com"))
    services.close()
    services = _serve(tmp_path, 30)
    try:
        services.store.create_contact(LIST, Contact("on@example.com"))
        history = services.history
        assert history.contact_history(LIST, "off@example.com") == []
        assert history.contact_history(LIST, "cli@example.com") == []
        assert [c.op for c in history.contact_history(LIST, "on@example.com")] == ["created"]
    finally:
        services.close()
