"""The product database's schema: every table owner of ``sescontacts.db``, in the order they are created.

The one place that lists them. Each owner declares its own :class:`~sescontacts.db.Migrations` next to the
code that uses its tables; this module sits above those owners (``db.py`` sits below and imports none of
them) and is what ``Services.open`` and the CLI pass to ``Database``. A file opened with it has every table,
whichever modules a command imports, so no code has to migrate again later to catch up.

Adding a table: append a step to its owner's ``Migrations`` (never edit or reorder shipped steps: versions
count per owner). Adding an owner: declare its ``Migrations`` and append it here. Both keep every existing
data dir opening. No owner's tables refer to another's, so the order only fixes how a new file is built.
"""

from __future__ import annotations

from .accounts import schema as accounts_schema
from .bulk import job_records, undo_conflicts
from .db import Migrations
from .events import schema as events_schema
from .store import sqlite
from .store.ses import sync_schema
from .store.sqlite import history, suppression

PRODUCT_SCHEMA: tuple[Migrations, ...] = (
    sqlite.MIGRATIONS,  # "contacts": lists, topics, contacts, daily additions (and the attributes SQL function)
    sync_schema.MIGRATIONS,  # "ses_sync": the ses backend's mirror sync state (empty on the local backend)
    job_records.MIGRATIONS,  # "bulk": import and bulk-action job records
    accounts_schema.MIGRATIONS,  # "console": console users, sessions, login attempts
    suppression.MIGRATIONS,  # "suppression": the account suppression list (the ses backend's mirror of it)
    events_schema.MIGRATIONS,  # "events": bounce and complaint events, per-address marks, daily counts
    events_schema.SNS_MIGRATIONS,  # "sns": SNS message IDs the events endpoint accepted (redeliveries)
    history.MIGRATIONS,  # "history": every change to a contact and who made it (recorded by the writes)
    undo_conflicts.MIGRATIONS,  # "undo": the contacts an undo met changed again since the job (its conflicts)
)
