"""Where contacts live: the ``ContactStore`` interface and its local (SQLite) and ses implementations."""

from .base import ContactStore

__all__ = ["ContactStore"]
