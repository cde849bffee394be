"""Server-side sessions as stored (accounts/sessions.py): start, find, end, expiry, and a login's race."""

from __future__ import annotations

from sescontacts.accounts.sessions import SESSION_MAX_AGE, Sessions
from sescontacts.accounts.users import Users
from sescontacts.db import Database

from .support.accounts import database_fixture, fast_kdf_fixture  # noqa: F401

PASSWORD = "correct horse battery"


def test_a_session_is_found_until_it_ends(database: Database) -> None:
    users, sessions = Users(database), Sessions(database)
    admin = users.add("admin", PASSWORD)
    first, second = sessions.start(admin), sessions.start(admin)
    assert first and second and first != second
    active = sessions.find(first)
    assert active is not None and active.user == admin
    assert sessions.count("admin") == 2
    sessions.end(first)
    assert sessions.find(first) is None and sessions.find(second) is not None
    assert sessions.end_all("admin") == 1
    assert sessions.find(second) is None and sessions.count("admin") == 0


def test_the_table_holds_no_live_session_id(database: Database) -> None:
    sessions = Sessions(database)
    sid = sessions.start(Users(database).add("admin", PASSWORD))
    assert sid is not None
    stored = [row[0] for row in database.reader().execute("SELECT id FROM console_sessions")]
    assert stored and sid not in stored


def test_an_expired_session_is_not_found_and_is_pruned_by_the_next_start(database: Database) -> None:
    users, sessions = Users(database), Sessions(database)
    admin = users.add("admin", PASSWORD)
    old = sessions.start(admin)
    assert old is not None
    with database.write() as conn:
        conn.execute("UPDATE console_sessions SET created = created - ?", (SESSION_MAX_AGE + 1,))
    assert sessions.find(old) is None and sessions.count("admin") == 0
    sessions.start(admin)
    assert database.reader().execute("SELECT count(*) FROM console_sessions").fetchone()[0] == 1


def test_a_login_whose_password_check_overlapped_a_password_change_gets_no_session(database: Database) -> None:
    """A login checks the password (~100 ms of scrypt), then starts its session. A password change (or removal)
    in between ends every session *before* that one exists: it must not begin, or someone who keeps logging
    in with the old password keeps a session past the change (a real server gave 3 of 26 such logins one)."""
    users, sessions = Users(database), Sessions(database)
    users.ensure_admin(PASSWORD)
    checked = users.authenticate("admin", PASSWORD)
    assert checked is not None
    users.set_password("admin", "another password")
    assert sessions.start(checked) is None
    assert sessions.count("admin") == 0
    users.remove("admin")
    users.add("admin", PASSWORD)  # the same name again, even with the same password: another account
    assert sessions.start(checked) is None
    fresh = users.authenticate("admin", PASSWORD)
    assert fresh is not None and sessions.start(fresh) is not None
