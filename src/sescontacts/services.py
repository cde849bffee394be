"""Everything a running sescontacts holds, built once from settings and shared by all surfaces.

The console, the SES API and the CLI receive a ``Services`` and reach contacts only through
``services.store`` (a ``ContactStore``); nothing else opens the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .background import BackgroundWork
from .bulk.job_manager import JobManager
from .bulk.suppression_import import SUPPRESSION_KIND, SuppressionImport
from .bulk.undo import UNDO_KIND, Undo
from .credentials import AccessKey, load_or_create
from .db import Database
from .events.added import AddedContactRules
from .events.ingest import EventIngest
from .history_retention import HistoryPruner, apply_retention
from .private_files import make_private_dir
from .schema import PRODUCT_SCHEMA
from .settings import LOCAL_ACCOUNT_ID, Settings
from .store.base import ContactHistory, ContactStore, SuppressionList, SyncedStore
from .store.sqlite import SearchIndexer, SqliteContactStore
from .store.sqlite.history import SqliteContactHistory
from .store.sqlite.suppression import SqliteSuppressionList


@dataclass
class Services:
    settings: Settings
    db: Database
    store: ContactStore
    access_key: AccessKey
    # The account's suppression list (account-level, not per contact list): SES's own on the ses backend.
    suppression: SuppressionList
    # Every change to a contact and who made it (both backends: the product database's own record).
    history: ContactHistory
    # What every serving process runs on start-up and shutdown (the server runs these hooks).
    on_start: list[Callable[[], None]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    # The work one process per data dir runs (the search indexer, the job worker, the ses mirror's sync):
    # started with on_start in whichever process owns it (background.py).
    background: BackgroundWork = field(init=False)
    # Import jobs (bulk/job_manager.py): records in the same database, one worker run as background work.
    jobs: JobManager = field(init=False)
    # Undo of a job (bulk/undo.py): a job of its own kind, and the conflicts it lists for the user.
    undo: Undo = field(init=False)
    # Bounce and complaint events: recorded, and acted on by each list's rules (events/ingest.py).
    events: EventIngest = field(init=False)

    @classmethod
    def open(cls, settings: Settings, *, group: str | None = None) -> Services:
        """``group``: the id the processes of one ``serve --workers N`` share (see ``JobManager``)."""
        make_private_dir(settings.data_dir)
        db = Database(settings.database_path, PRODUCT_SCHEMA)
        store: ContactStore
        suppression: SuppressionList
        if settings.backend == "local":
            store = SqliteContactStore(
                db, region=settings.region, account_id=LOCAL_ACCOUNT_ID, max_lists=settings.max_contact_lists
            )
            suppression = SqliteSuppressionList(db)
        elif settings.backend == "ses":
            from .store.ses import SesContactStore

            ses_store = SesContactStore.open(settings, db)
            # SES's own list: written through to SES, read from its mirror, walked by the store's sync.
            store, suppression = ses_store, ses_store.suppression
        else:
            raise ValueError(f"unknown backend {settings.backend!r}: choose local or ses")
        services = cls(
            settings=settings,
            db=db,
            store=store,
            access_key=load_or_create(settings.data_dir),
            suppression=suppression,
            history=SqliteContactHistory(db, store.identity),
        )
        # WAL checkpoints off the request path while running (db.start_checkpointer says why): in every process,
        # since each turns SQLite's inline auto-checkpoint off for its own connection.
        services.on_start.append(db.start_checkpointer)
        services.on_stop.append(db.stop_checkpointer)
        background = services.background = BackgroundWork(db.path.with_name(f"{db.path.name}-background"))
        services.on_start.append(background.start)
        services.on_stop.append(background.stop)
        # The search index of every list in the file (the local store's, the ses mirror's), built and kept
        # current off the request path (store/sqlite/search_index.py).
        indexer = SearchIndexer(db)
        background.add(indexer.start, indexer.stop)
        if isinstance(store, SyncedStore):  # the ses backend's mirror sync: on start, then on its schedule
            background.add(store.start_sync, store.stop_sync)
        services.jobs = JobManager(db, store, settings.data_dir, group=group)
        services.jobs.runners[SUPPRESSION_KIND] = SuppressionImport(db, services.suppression)
        services.undo = Undo(db, store, services.history, services.jobs)
        services.jobs.runners[UNDO_KIND] = services.undo
        background.add(services.jobs.start, services.jobs.stop)
        if settings.history_retention_days is not None:  # serve's setting (history_retention.py)
            apply_retention(services.history, settings.history_retention_days)
            pruner = HistoryPruner(services.history, settings.history_retention_days)
            background.add(pruner.start, pruner.stop)
        services.events = EventIngest(db, store)
        # Contacts added after their address bounced or complained get the list's rule (events/added.py).
        added = AddedContactRules(services.events)
        background.add(added.start, added.stop)
        if settings.events_queue_url:  # one process per data dir polls the queue
            from .events.sqs import open_queue

            queue = open_queue(services.events, settings, settings.events_queue_url)
            background.add(queue.start, queue.stop)
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
