"""The "console" owner's tables in the product database: users, login attempts, sessions.

The owner keeps the name "console" and its steps keep their order even though the code left ``console/``:
``schema_versions`` counts steps per owner name, so every existing data dir migrates only by both staying.
Listed in ``sescontacts.schema.PRODUCT_SCHEMA``.
"""

from __future__ import annotations

from ..db import Migrations
from .login_limit import create_login_attempts_table
from .sessions import create_sessions_table
from .users import create_users_table

MIGRATIONS = Migrations("console", (create_users_table, create_login_attempts_table, create_sessions_table))
