"""The console's users as stored (accounts/users.py): add, authenticate, set a password, remove, first admin."""

from __future__ import annotations

from pathlib import Path

import pytest

from sescontacts.accounts.sessions import Sessions
from sescontacts.accounts.users import ADMIN, Users
from sescontacts.db import Database
from sescontacts.errors import BadRequest, NotFound
from sescontacts.schema import PRODUCT_SCHEMA

from .support.accounts import database_fixture, fast_kdf_fixture  # noqa: F401


def test_ensure_admin_uses_the_given_password_or_generates_one(database: Database, tmp_path: Path) -> None:
    users = Users(database)
    generated = users.ensure_admin(None)
    assert generated and len(generated) >= 16
    assert users.authenticate(ADMIN, generated) is not None
    assert users.ensure_admin("whatever") is None  # only on first start
    other = Database(tmp_path / "b" / "sescontacts.db", PRODUCT_SCHEMA)
    users = Users(other)
    assert users.ensure_admin("from the environment") is None
    assert users.authenticate(ADMIN, "from the environment") is not None
    other.close()


def test_add_authenticate_set_password_remove(database: Database) -> None:
    users = Users(database)
    added = users.add("carol", "carol password")
    assert users.get("carol") == added and [u.name for u in users.list()] == ["carol"]
    with pytest.raises(BadRequest, match="already exists"):
        users.add("carol", "another password")
    assert users.authenticate("carol", "wrong password") is None
    assert users.authenticate("nobody", "carol password") is None
    users.set_password("carol", "a new password")
    assert users.authenticate("carol", "carol password") is None
    assert users.authenticate("carol", "a new password") is not None
    users.remove("carol")
    assert users.get("carol") is None
    with pytest.raises(NotFound, match="No user named carol"):
        users.remove("carol")
    with pytest.raises(NotFound):
        users.set_password("carol", "a new password")


def test_a_password_change_or_removal_ends_the_users_sessions(database: Database) -> None:
    users, sessions = Users(database), Sessions(database)
    carol, dave = users.add("carol", "carol password"), users.add("dave", "dave password")
    assert sessions.start(carol) and sessions.start(dave)
    users.set_password("carol", "a new password")
    assert sessions.count("carol") == 0 and sessions.count("dave") == 1
    users.remove("dave")
    assert sessions.count("dave") == 0
