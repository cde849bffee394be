"""Shared by every test module; keep it tiny."""

from __future__ import annotations

import pytest

# The contract suite is imported by test modules; rewrite its asserts so failures show the values.
pytest.register_assert_rewrite("tests.store_contract")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs(*capabilities): skip unless the store under test has these capabilities (store_contract)"
    )
