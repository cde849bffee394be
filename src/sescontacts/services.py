"""Everything a running sescontacts holds, built once from settings and shared by all surfaces.

The console, the SES API and the CLI receive a ``Services`` and reach contacts only through
``services.store`` (a ``ContactStore``); nothing else opens the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .bulk.job_manager import JobManager
from .credentials import AccessKey, load_or_create
from .db import Database
from .private_files import make_private_dir
from .schema import PRODUCT_SCHEMA
from .settings import LOCAL_ACCOUNT_ID, Settings
from .store.base import ContactStore, SyncedStore
from .store.sqlite import SearchIndexer, SqliteContactStore


@dataclass
class Services:
    settings: Settings
    db: Database
    store: ContactStore
    access_key: AccessKey
    # Background work (the import job runner, the ses mirror's sync) registers here; the server runs these
    # on start-up and shutdown, the CLI for the duration of a command.
    on_start: list[Callable[[], None]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    # Import jobs (bulk/job_manager.py): records in the same database, one worker started with on_start.
    jobs: JobManager = field(init=False)

    @classmethod
    def open(cls, settings: Settings) -> Services:
        make_private_dir(settings.data_dir)
        db = Database(settings.database_path, PRODUCT_SCHEMA)
        store: ContactStore
        if settings.backend == "local":
            store = SqliteContactStore(
                db, region=settings.region, account_id=LOCAL_ACCOUNT_ID, max_lists=settings.max_contact_lists
            )
        elif settings.backend == "ses":
            from .store.ses import SesContactStore

            store = SesContactStore.open(settings, db)
        else:
            raise ValueError(f"unknown backend {settings.backend!r}: choose local or ses")
        services = cls(settings=settings, db=db, store=store, access_key=load_or_create(settings.data_dir))
        # WAL checkpoints off the request path while running (db.start_checkpointer says why).
        services.on_start.append(db.start_checkpointer)
        services.on_stop.append(db.stop_checkpointer)
        # The search index of every list in the file (the local store's, the ses mirror's), built and kept
        # current off the request path (store/sqlite/search_index.py).
        indexer = SearchIndexer(db)
        services.on_start.append(indexer.start)
        services.on_stop.append(indexer.stop)
        if isinstance(store, SyncedStore):  # the ses backend's mirror sync: on start, then on its schedule
            services.on_start.append(store.start_sync)
            services.on_stop.append(store.stop_sync)
        services.jobs = JobManager(db, store, settings.data_dir)
        services.on_start.append(services.jobs.start)
        services.on_stop.append(services.jobs.stop)
        return services

    def ensure_default_list(self) -> bool:
        """Create the configured list on first start. True when it was created now."""
        from .errors import NotFound

        try:
            self.store.get_list(self.settings.contact_list)
        except NotFound:
            if self.store.list_lists(page_size=1).items:
                return False  # another list holds the one-list quota; keep it
            self.store.create_list(self.settings.contact_list)
            return True
        return False

    def start(self) -> None:
        for hook in self.on_start:
            hook()

    def close(self) -> None:
        for hook in reversed(self.on_stop):
            hook()
        self.store.close()
