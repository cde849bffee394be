"""What the search index costs single writes at 100,000 contacts: the write's own CPU (its triggers log the
change) and the indexer's CPU to apply it, for new addresses that come as a run at one place (an API client's
user1001@, user1002@, ...) and for addresses spread over the list, drained at once or as they come.

Part of the api suite: the indexer runs in the server's process, so its CPU is the API's too (one client's
server CPU per call, the 32 clients' tail)."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

CONTACTS = int(os.environ.get("SESCONTACTS_BENCH_INDEX_CONTACTS", "100000"))
WRITES = int(os.environ.get("SESCONTACTS_BENCH_INDEX_WRITES", "3000"))
AS_THEY_COME = 10  # writes between two drains when the indexer keeps up with a busy client


def run(report: Callable[[str], None], seed: Callable[[Path, int], None], list_name: str) -> None:
    from sescontacts.model import Contact
    from sescontacts.services import Services
    from sescontacts.settings import Settings
    from sescontacts.store.sqlite import SearchIndexer

    contacts = CONTACTS
    report(f"\n### the search index's cost for single writes at {contacts:,} contacts, {WRITES:,} new contacts")
    report("| new addresses | drained | write CPU a contact (its trigger included) | indexer CPU a contact |")
    report("|---|---|---:|---:|")
    rnd = random.Random(7)
    cases = {
        "a run at one place": [f"run{i:06d}@example.com" for i in range(WRITES)],
        "spread over the list": [f"user{rnd.randrange(contacts):06d}.{i}@example.com" for i in range(WRITES)],
    }
    with tempfile.TemporaryDirectory(prefix="sescontacts-bench-index-") as tmp:
        seeded = Path(tmp) / "seeded"
        seed(seeded, contacts)  # the index built, as on a server that has run a while
        for label, emails in cases.items():
            for every in (WRITES, AS_THEY_COME):
                data_dir = Path(tmp) / "data"
                shutil.rmtree(data_dir, ignore_errors=True)
                shutil.copytree(seeded, data_dir)
                services = Services.open(Settings(data_dir=data_dir))
                try:
                    indexer = SearchIndexer(services.db)
                    write_cpu = drain_cpu = 0.0
                    for start in range(0, len(emails), every):
                        t = time.process_time()
                        for i, email in enumerate(emails[start : start + every], start):
                            services.store.create_contact(list_name, Contact(email, attributes_data=f'{{"n": {i}}}'))
                        write_cpu += time.process_time() - t
                        t = time.process_time()
                        indexer.catch_up()
                        drain_cpu += time.process_time() - t
                finally:
                    services.close()
                drained = "at once" if every == WRITES else f"every {every} writes"
                report(
                    f"| {label} | {drained} | {write_cpu / len(emails) * 1e6:,.0f} us | "
                    f"{drain_cpu / len(emails) * 1e6:,.0f} us ({drain_cpu / write_cpu:.1f}x the write) |"
                )
