"""Login attempts as stored (accounts/login_limit.py): the per-pair and per-address limits, and lifting them."""

from __future__ import annotations

from sescontacts.accounts.login_limit import ADDRESS_ATTEMPTS, LOGIN_WINDOW, PAIR_ATTEMPTS, LoginLimiter
from sescontacts.accounts.users import Users
from sescontacts.db import Database

from .support.accounts import database_fixture, fast_kdf_fixture  # noqa: F401


def test_the_pair_limit_refuses_until_the_window_passes_and_other_pairs_go_on(database: Database) -> None:
    limiter = LoginLimiter(database)
    assert [limiter.reserve("10.0.0.1", "Admin").retry_after for _ in range(PAIR_ATTEMPTS)] == [0] * PAIR_ATTEMPTS
    refused = limiter.reserve("10.0.0.1", "admin")  # names are counted case-insensitively
    assert 0 < refused.retry_after <= LOGIN_WINDOW + 1
    assert limiter.reserve("10.0.0.2", "admin").retry_after == 0  # another address
    assert limiter.reserve("10.0.0.1", "carol").retry_after == 0  # another name


def test_a_success_forgives_its_pair(database: Database) -> None:
    limiter = LoginLimiter(database)
    attempts = [limiter.reserve("10.0.0.1", "admin") for _ in range(PAIR_ATTEMPTS)]
    limiter.succeeded(attempts[-1])
    assert limiter.reserve("10.0.0.1", "admin").retry_after == 0


def test_the_address_limit_stops_a_spray_and_a_password_change_lifts_it(database: Database) -> None:
    limiter = LoginLimiter(database)
    for i in range(ADDRESS_ATTEMPTS):
        assert limiter.reserve("10.0.0.1", f"user{i}").retry_after == 0
    assert limiter.reserve("10.0.0.1", "admin").retry_after > 0
    users = Users(database)
    users.add("admin", "admin password")
    users.set_password("admin", "a new password")  # what `sescontacts users set-password` does
    assert limiter.reserve("10.0.0.1", "admin").retry_after == 0
