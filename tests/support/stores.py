"""The backends the ContactStore contract (tests/test_store_contract.py) runs on, and how to open each one.

A backend is named (the id in the contract's test ids), says how to open a fresh store holding one empty list,
what it cannot do (``capabilities``) and which tests it skips, each with the reason. Servers are started once
per backend (:func:`open_backend` is entered by a module-scoped fixture) and stores are opened per test.

The backend-specific modules (test_store_sqlite.py, test_store_ses.py) open their stores with the same
helpers (:func:`sqlite_store`, :func:`run_ses_server`, :func:`local_ses_store`), so a store under the contract
and a store under a backend's own tests are built alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sescontacts.db import Database
from sescontacts.model import Contact, ContactQuery, Count, ListedContact, Page
from sescontacts.schema import PRODUCT_SCHEMA
from sescontacts.settings import OBSERVED
from sescontacts.store.base import ContactStore
from sescontacts.store.ses import SesContactStore
from sescontacts.store.ses.pacer import Pacer
from sescontacts.store.sqlite import SearchIndexer, SqliteContactStore

from .server import RunningServer, run_server
from .ses import MOTO_KEY, clean_env, reset_moto, run_moto, ses_store

#: What a backend may be unable to do. A backend lists what it can in ``Backend.capabilities``; contract tests
#: marked ``@pytest.mark.needs("<capability>")`` are skipped, with the reason, where it is missing.
ALL_CAPABILITIES: frozenset[str] = frozenset(
    {
        "pagination",  # ListContacts pages and NextToken (moto returns everything in one page)
        "duplicate_check",  # CreateContact of an existing address fails (moto overwrites)
        "search",  # email substring, domain and attribute filters, sort by updated
        "counts",  # count_contacts and list_stats
        "bulk",  # upsert_contacts / delete_contacts
        "tags",  # TagResource / UntagResource on the list
        # Addresses differing only in case (or Unicode composition) are one contact: the local backend's rule,
        # and the ses backend's when its SES ignores case (our server does; moto, like SES perhaps, does not)
        "case_insensitive_identity",
    }
)

#: The ``store`` the contract runs on. The local backend runs twice: as a command-line process has it (no search
#: index built: searches scan), and with its search index caught up before every read (searches take the
#: index's paths). The ses backend against our own server runs twice: unthrottled, and throttled
#: (``--throttle 100:5``) while the client's pacer asks for twice that (200/s), so throttles really happen and
#: must never reach a test as an error; its mirror's search index is kept by a running indexer, as the
#: server's is.
CONTRACT_BACKENDS = ("sqlite", "sqlite-indexed", "ses-local", "ses-local-throttled", "ses-moto")
#: The kinds of backend, for contract tests that reach no server (lifting SES's quota): throttling is moot.
BACKEND_KINDS = ("sqlite", "ses-local", "ses-moto")
QUOTA_SKIP = "only the local backend can lift SES's one-list-per-region quota"

THROTTLED = "100:5"
# What the SES API cannot express, so the ses backend cannot do it either (skipped there, with the reason).
SES_LIMITS = {
    "test_update_replaces_everything_by_default": "our server (as a probe saw SES do) merges UpdateContact's topic "
    "preferences by topic name: an explicit preference can be changed, not removed, and the store says so "
    "(test_ses_update_semantics.py runs it on both readings)",
}

# moto is a second opinion, not an oracle. Its known deviations, each skipped through capabilities or by name:
# - no pagination: ListContacts ignores PageSize/NextToken (the mirror pages instead, but our own paging of SES
#   in the sync cannot be exercised there);
# - no duplicate check: CreateContact of an existing address silently overwrites it;
# - GetContactList returns no Tags, so tags cannot be read back;
# - timestamps are ISO strings (botocore parses them; the store rounds to milliseconds either way);
# - ListContacts filters are ignored (the store never sends them: filters are answered by the mirror).
MOTO_DEVIATIONS = {
    "pagination": "moto returns every contact in one page and ignores NextToken",
    "duplicate_check": "moto overwrites on a duplicate CreateContact instead of AlreadyExistsException",
    "tags": "moto's GetContactList does not return Tags",
}
# Not a deviation: SES may key contacts by the exact address too (unverified). The ses backend then follows it,
# keeping each spelling a contact of its own (tested in test_store_ses_moto.py).
MOTO_EXACT_IDENTITY = {
    "case_insensitive_identity": "moto keys contacts by the exact address, so the ses backend keeps spellings apart"
}
# Tests that check a behaviour moto does not have, with the reason (skipped on moto only).
MOTO_SKIPS = {
    "test_a_second_list_is_refused_with_ses_quota_message": "moto has no one-list-per-region quota",
    "test_missing_list_is_not_found_for_every_operation": "moto's message lacks SES's final period",
    "test_update_replaces_everything_by_default": "moto keeps AttributesData when UpdateContact omits it",
    "test_upsert_replaces_or_merges_attributes": "moto keeps AttributesData when UpdateContact omits it",
    "test_upsert_replace_record_clears_omitted_attributes": "moto keeps AttributesData when UpdateContact omits it",
}


@dataclass(frozen=True)
class Backend:
    """One backend under the contract: how to open a fresh store, what it cannot do, and why."""

    name: str
    #: ``(folder, list_name)`` -> a store holding exactly one empty list ``list_name``, closed on exit.
    open_store: Callable[[Path, str], AbstractContextManager[ContactStore]]
    capabilities: frozenset[str] = ALL_CAPABILITIES
    #: test function name -> the reason it is skipped on this backend, as the report prints it.
    skips: Mapping[str, str] = field(default_factory=dict)

    def skip_reason(self, test_name: str, needs: Iterable[str]) -> str | None:
        """Why ``test_name`` (needing ``needs``) cannot run here, or None when it can."""
        missing = [name for name in needs if name not in self.capabilities]
        if missing:
            return f"this backend does not support: {', '.join(missing)}"
        return self.skips.get(test_name)


@contextmanager
def open_backend(name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """The backend ``name`` (one of :data:`CONTRACT_BACKENDS`) with its server running until exit."""
    if name == "sqlite":
        yield Backend(name, lambda folder, list_name: sqlite_store(folder / "store.db", list_name))
    elif name == "sqlite-indexed":
        yield Backend(name, lambda folder, list_name: sqlite_store(folder / "store.db", list_name, indexed=True))
    elif name in ("ses-local", "ses-local-throttled"):
        throttled = name == "ses-local-throttled"
        with run_ses_server(tmp_path_factory, throttled=throttled) as server:
            yield Backend(
                name,
                lambda folder, list_name: local_ses_store(folder, server, list_name, throttled=throttled),
                skips={test: f"SES limit: {reason}" for test, reason in SES_LIMITS.items()},
            )
    elif name == "ses-moto":
        clean_env()
        with run_moto() as moto_url:
            yield Backend(
                name,
                lambda folder, list_name: moto_store(folder, moto_url, list_name),
                capabilities=ALL_CAPABILITIES - set(MOTO_DEVIATIONS) - set(MOTO_EXACT_IDENTITY),
                skips={test: f"moto deviation: {reason}" for test, reason in MOTO_SKIPS.items()},
            )
    else:
        raise ValueError(f"no such backend: {name}")


class IndexedSqliteStore(SqliteContactStore):
    """The local store with its search index caught up before every read (the server's indexer, run in the
    caller's thread), so that searches take the index's paths."""

    def list_contacts(self, list_name: str, query: ContactQuery = ContactQuery(), **kwargs: Any) -> Page[Contact]:  # noqa: B008
        SearchIndexer(self.db).catch_up()
        return super().list_contacts(list_name, query, **kwargs)

    def list_contact_items(
        self,
        list_name: str,
        query: ContactQuery = ContactQuery(),  # noqa: B008
        **kwargs: Any,
    ) -> Page[ListedContact]:
        SearchIndexer(self.db).catch_up()
        return super().list_contact_items(list_name, query, **kwargs)

    def count_contacts(self, list_name: str, query: ContactQuery, *, cap: int | None = None) -> Count:
        SearchIndexer(self.db).catch_up()
        return super().count_contacts(list_name, query, cap=cap)


@contextmanager
def sqlite_store(
    path: Path, list_name: str | None = None, *, max_lists: int | None = 1, indexed: bool = False
) -> Iterator[SqliteContactStore]:
    """A local store in the file ``path``, holding the empty list ``list_name`` if one is named; ``indexed``:
    its search index caught up before every read (:class:`IndexedSqliteStore`)."""
    kind = IndexedSqliteStore if indexed else SqliteContactStore
    store = kind(Database(path, PRODUCT_SCHEMA), max_lists=max_lists)
    try:
        if list_name is not None:
            store.create_list(list_name)
        yield store
    finally:
        store.close()


@contextmanager
def run_ses_server(
    tmp_path_factory: pytest.TempPathFactory, *, throttled: bool, semantics: str = OBSERVED
) -> Iterator[RunningServer]:
    """``sescontacts serve`` as the SES endpoint, throttled to ``THROTTLED`` if asked, applying UpdateContact
    and UpdateContactList as ``semantics`` (``--ses-semantics``) says."""
    clean_env()
    kind = "throttled" if throttled else "unthrottled"
    extra = ["--throttle", THROTTLED] if throttled else []
    extra += ["--ses-semantics", semantics]
    with run_server(tmp_path_factory.mktemp(f"ses-{kind}-{semantics}"), extra_args=extra) as running:
        running.env["throttled"] = kind
        yield running


@contextmanager
def local_ses_store(
    folder: Path, server: RunningServer, list_name: str, *, throttled: bool
) -> Iterator[SesContactStore]:
    """A ses store on ``server`` holding only the empty list ``list_name``; no throttle may surface as an error."""
    # Against the throttled server the client asks for twice the allowed rate: throttles must be absorbed.
    pacer = Pacer(200, 10, base_backoff=0.02, max_backoff=0.2) if throttled else Pacer(1000, 100)
    store = ses_store(folder / "mirror.db", server.url, pacer=pacer)
    indexer = SearchIndexer(store.mirror.db, interval=0.01)
    indexer.start()
    try:
        for existing in store.list_lists().items:
            store.delete_list(existing.name)
        store.create_list(list_name)
        yield store
        assert pacer.stats.surfaced == 0
    finally:
        indexer.stop()
        store.close()


@contextmanager
def moto_store(folder: Path, moto_url: str, list_name: str) -> Iterator[SesContactStore]:
    """A ses store on a freshly reset moto, holding only the empty list ``list_name``."""
    reset_moto(moto_url)
    store = ses_store(folder / "mirror.db", moto_url, key=MOTO_KEY)
    try:
        store.create_list(list_name)
        yield store
    finally:
        store.close()


# -- reading a store whole --------------------------------------------------------------------------------


def all_pages(
    store: ContactStore,
    list_name: str,
    query: ContactQuery | None = None,
    page_size: int = 1000,
) -> list[Contact]:
    """Every contact the query selects, following NextToken to the end (empty pages included)."""
    query = query or ContactQuery()
    contacts: list[Contact] = []
    token: str | None = None
    for _ in range(10_000):
        page = store.list_contacts(list_name, query, page_size=page_size, token=token)
        assert len(page.items) <= page_size
        contacts += page.items
        token = page.next_token
        if token is None:
            return contacts
    raise AssertionError("NextToken never ended")


def emails(contacts: Iterable[Contact]) -> list[str]:
    return [c.email for c in contacts]


def vm_steps(store: SqliteContactStore, query: ContactQuery, list_name: str = "contacts") -> int:
    """SQLite's virtual machine steps for every page and the counts of ``query`` (a measure of rows read: a
    test compares it at two list sizes)."""
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0

    reader = store.db.reader()
    reader.set_progress_handler(tick, 1)
    try:
        all_pages(store, list_name, query)
        store.count_contacts(list_name, query)
        store.count_contacts(list_name, query, cap=10)
    finally:
        reader.set_progress_handler(None, 1)
    return steps[0]
