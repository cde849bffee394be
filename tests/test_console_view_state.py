"""The contacts page's view state in its controls, and the small things a user reads there.

Every control that carries the view (search, filters, sort, page) must be inside ``#results``, the region each
htmx search swaps: a link outside it would keep the view the page was first rendered with.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

from sescontacts.model import Contact

from .support.console import Console, console_fixture, fast_kdf_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "src" / "sescontacts" / "console" / "templates"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _ViewLinks(HTMLParser):
    """Each link, form action and hidden input that carries a view parameter, and whether it is in #results."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # open elements inside #results (0: outside)
        self.inside: list[str] = []
        self.outside: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if self.depth:
            self.depth += tag not in VOID
        elif values.get("id") == "results":
            self.depth = 1
        carried = [values.get(a) or "" for a in ("href", "hx-get", "action")]
        if tag == "input" and values.get("type") == "hidden" and values.get("name") in ("q", "field", "page"):
            carried.append(f"{values.get('name')}={values.get('value')}")
        for value in carried:
            if re.search(r"(^|[?&])(q|field|page)=", value):
                (self.inside if self.depth else self.outside).append(value)

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in VOID:
            self.depth -= 1


def view_links(page: str) -> _ViewLinks:
    parser = _ViewLinks()
    parser.feed(page)
    return parser


def add(console: Console, *emails: str) -> None:
    for email in emails:
        console.store.create_contact(console.list_name, Contact(email))


def test_every_link_that_carries_the_view_is_in_the_swapped_results(console: Console) -> None:
    add(console, *(f"k{i}@keep.test" for i in range(3)), "d@drop.test")
    full = console.client.get("/", params={"q": "keep.test", "field": "domain", "size": "2"}).text
    links = view_links(full)
    assert links.outside == []
    for wanted in ("/export?q=keep.test&field=domain&size=2&format=csv", "format=json", "page="):
        assert any(wanted in html.unescape(link) for link in links.inside), (wanted, links.inside)
    # the htmx swap of another search brings its own Clear and exports
    fragment = console.client.get(
        "/", params={"q": "drop.test", "field": "domain"}, headers={"HX-Request": "true", "HX-Target": "results"}
    ).text
    text = html.unescape(fragment)
    assert "/export?q=drop.test&field=domain&format=csv" in text
    assert "/export?q=drop.test&field=domain&format=json" in text
    assert re.search(r'<a class="button small ghost" href="/" data-testid="clear">Clear</a>', fragment)
    # without a filter there is nothing to clear, and the exports are the whole list
    whole = console.client.get("/", headers={"HX-Request": "true", "HX-Target": "results"}).text
    assert 'data-testid="clear"' not in whole and 'href="/export?format=csv"' in whole


def test_counts_say_one_contact_not_one_contacts(console: Console) -> None:
    add(console, "only@one.test")
    page = " ".join(console.client.get("/").text.split())
    assert '<strong data-testid="matching">1</strong> contact </p>' in page
    assert "1 contacts" not in page
    filtered = " ".join(console.client.get("/", params={"q": "only"}).text.split())
    assert "of 1 contact</span>" in filtered
    count = console.client.get("/count", params={"q": "only"}).text
    assert "1 contact matches" in count
    add(console, "second@one.test")
    assert "2 contacts match" in console.client.get("/count", params={"q": "one.test"}).text


def test_no_bulk_bar_on_an_empty_list(console: Console) -> None:
    empty = console.client.get("/").text
    assert 'aria-label="Bulk actions"' not in empty and 'id="select-page"' not in empty
    assert "No contacts yet." in empty
    add(console, "now@there.test")
    assert 'aria-label="Bulk actions"' in console.client.get("/").text
    nothing = console.client.get("/", params={"q": "nobody-matches"}).text
    assert 'aria-label="Bulk actions"' not in nothing and "No contacts match." in nothing


def test_sortable_headers_say_how_they_sort(console: Console) -> None:
    add(console, "a@sort.test")
    by_email = console.client.get("/").text
    assert re.search(r'<th scope="col" aria-sort="ascending"><a href="/">Email', by_email)
    assert re.search(r'<th scope="col" aria-sort="none"><a href="/\?sort=updated">Last updated', by_email)
    by_date = console.client.get("/", params={"sort": "updated"}).text
    assert re.search(r'<th scope="col" aria-sort="none"><a href="/">Email', by_date)
    assert re.search(r'<th scope="col" aria-sort="descending"><a href="/\?sort=updated">Last updated', by_date)


def test_addresses_break_after_at_and_dots_and_stay_escaped(console: Console) -> None:
    add(console, "o'neil&co.x@mail.example.com")
    page = console.client.get("/").text
    assert ">o&#39;neil&amp;co.<wbr>x@<wbr>mail.<wbr>example.<wbr>com</a>" in page
    delete = console.client.get("/contacts/delete", params={"email": "o'neil&co.x@mail.example.com"}).text
    assert "<strong>o&#39;neil&amp;co.<wbr>x@<wbr>mail.<wbr>example.<wbr>com</strong>" in delete


def test_no_wording_that_only_makes_sense_to_the_authors() -> None:
    """Someone running their own copy has no "product page" or "seed format" to compare with."""
    files = [*TEMPLATES.glob("*.html"), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    phrases = re.compile(r"product page|as printed|seed format|the brief\b", re.IGNORECASE)
    found = [f"{path.name}: {m.group(0)}" for path in files for m in phrases.finditer(path.read_text())]
    assert found == []


def test_the_upload_form_has_a_progress_box_for_the_script(console: Console) -> None:
    page = console.client.get("/import").text
    # hidden until console.js fills it in from the upload's progress; the form itself posts without it
    assert re.search(r'<div class="upload-progress" data-upload-progress hidden>', page)
    assert 'action="/import/upload" enctype="multipart/form-data"' in page
