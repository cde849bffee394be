"""Shared by every test module; keep it tiny."""

from __future__ import annotations

import pytest

# The contract's backends live in a support module (the teardown checks a throttled store surfaced no throttle):
# rewrite its asserts so failures show the values.
pytest.register_assert_rewrite("tests.support.stores")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs(*capabilities): skip unless the backend under test has these capabilities (test_store_contract)",
    )
