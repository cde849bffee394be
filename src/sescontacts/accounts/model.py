"""The account record the package's modules pass around: a plain typed record, no I/O.

Its own module so that ``sessions.py`` (which returns a session's user) and ``users.py`` (which ends a user's
sessions when the password changes) both stand on it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    """A console account as stored in ``console_users``; the hash carries its own scrypt parameters."""

    name: str
    password_hash: str
    created: float
