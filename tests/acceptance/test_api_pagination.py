"""Keyset pagination under writes: 2,500 contacts paged at PageSize 1000 while contacts are added between
pages; every original contact is returned exactly once."""

from __future__ import annotations

from typing import Any

from .conftest import unique_name


def test_every_contact_exactly_once_while_contacts_are_added(ses: Any) -> None:
    name = unique_name("pages")
    ses.create_contact_list(ContactListName=name)
    originals = {f"user{i:05d}@example.com" for i in range(2500)}
    for address in sorted(originals):
        ses.create_contact(ContactListName=name, EmailAddress=address)

    seen: list[str] = []
    added = 0
    kwargs: dict[str, Any] = {"ContactListName": name, "PageSize": 1000}
    pages = 0
    while True:
        page = ses.list_contacts(**kwargs)
        pages += 1
        assert len(page["Contacts"]) <= 1000
        seen += [c["EmailAddress"] for c in page["Contacts"]]
        # New contacts both before and after the cursor: they may or may not show up, originals must not move.
        for address in (f"aaa-new{pages}@example.com", f"user{pages:05d}-late@example.com", f"zzz-new{pages}@x.com"):
            ses.create_contact(ContactListName=name, EmailAddress=address)
            added += 1
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]

    assert pages >= 3
    assert len(seen) == len(set(seen)), "a contact was returned twice"
    assert originals <= set(seen), f"missing: {sorted(originals - set(seen))[:5]}"
    assert added == 3 * pages
    ses.delete_contact_list(ContactListName=name)
