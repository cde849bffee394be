"""The contacts page's pages and counts (issue 14 item 8): Previous and First page next to Next with every
search, filter and sort, on full pages and htmx fragments; the page-size control; "Count exactly" beside a
capped count; a page link that was changed or made for another search; both backends."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from sescontacts.console.views import contacts as contacts_view
from sescontacts.console.views import filters
from sescontacts.model import OPT_IN

from .support.console import Console, console_fixture, fast_kdf_fixture  # noqa: F401
from .test_console_contacts import emails_on, moto_upstream, moto_url, seed, ses_console  # noqa: F401

HTMX = {"HX-Request": "true", "HX-Target": "results"}


def link(page: str, rel: str) -> str | None:
    match = re.search(rf'rel="{rel}" href="([^"]+)"', page)
    return html.unescape(match.group(1)) if match else None


def position(page: str) -> str:
    match = re.search(r'data-testid="position">([^<]*)<', page)
    assert match, "no position text"
    return html.unescape(match.group(1)).replace("\N{EN DASH}", "-")  # compared with a plain hyphen


def get(console: Console, url: str, *, htmx: bool = False) -> str:
    response = console.client.get(url, headers=HTMX if htmx else {})
    assert response.status_code == 200, response.text
    return response.text


def walk(console: Console, params: dict[str, str], *, pages: int = 4, htmx: bool = False) -> None:
    """Next ``pages - 1`` times, then Previous as many: each page back has the rows and the URL it had going
    forward (so the browser's Back and a bookmark agree), and the first page has neither Previous nor First."""
    size = int(params["size"])
    url = "/?" + urlencode(params)
    forward: list[tuple[str, list[str]]] = []
    for n in range(pages):
        page = get(console, url, htmx=htmx)
        rows = emails_on(page)
        assert len(rows) == size, (n, url)
        assert position(page).startswith(f"Showing {n * size + 1}-{n * size + size}")
        forward.append((url, rows))
        if n < pages - 1:
            url = link(page, "next") or ""
            assert url, f"no next page after page {n + 1}"
    seen = [row for _url, rows in forward for row in rows]
    assert len(set(seen)) == len(seen)  # keyset pages never repeat a row
    for n in range(pages - 2, -1, -1):
        previous = link(page, "prev")
        assert previous is not None, f"no previous page on page {n + 2}"
        if n:
            assert previous == forward[n][0]
        page = get(console, previous, htmx=htmx)
        assert emails_on(page) == forward[n][1], f"page {n + 1} going back"
        assert ("First page" in page) == (n > 1)  # from the third page on; the second's Previous is the first
    assert link(page, "prev") is None and "First page" not in page
    assert "page" not in parse_qs(urlsplit(previous).query)  # the first page's URL has no page at all


@pytest.mark.parametrize(
    "params",
    [
        {"q": "user", "size": "5"},
        {"q": "user", "field": "prefix", "size": "5", "sort": "updated"},
        {"q": "acme.com", "field": "domain", "size": "5"},
        {"q": "Company = other", "field": "attribute", "size": "5", "sort": "updated"},
        {"q": "Company = Other", "field": "attribute", "exact": "1", "size": "4"},
        {"status": OPT_IN, "size": "5"},
        {"topic": "news", "status": OPT_IN, "size": "5", "sort": "updated"},
        {"size": "6"},
    ],
)
def test_previous_page_walks_back_through_every_search(console: Console, params: dict[str, str]) -> None:
    seed(console, 40)
    walk(console, params)


def test_previous_page_in_htmx_fragments(console: Console) -> None:
    """The pager is in #results, so an htmx swap brings the links of the page it shows."""
    seed(console, 40)
    walk(console, {"q": "example.org", "field": "domain", "size": "4"}, htmx=True)


def test_position_says_of_how_many_when_the_page_knows(console: Console) -> None:
    seed(console, 12)
    assert position(get(console, "/?size=5")) == "Showing 1-5 of 12"
    last = link(get(console, link(get(console, "/?size=5"), "next") or ""), "next")
    assert position(get(console, last or "")) == "Showing 11-12 of 12"
    # a search's count comes later, from /count: the pager does not wait for it
    assert position(get(console, "/?q=user&size=5")) == "Showing 1-5"


def test_page_size_control_keeps_the_view_and_starts_at_the_first_page(console: Console) -> None:
    """The control is a select in the filter form: the form carries every part of the view but the page, so a
    new size (submitted without JavaScript, or by htmx on change) always shows the first page."""
    seed(console, 40)
    first = get(console, "/?q=user&topic=news&status=OPT_IN&sort=updated&size=5")
    second = get(console, link(first, "next") or "")
    form = re.search(r'<form class="filters".*?</form>', second, re.S)
    assert form and 'name="page"' not in form.group(0)
    select = re.search(r'<select id="size" name="size">(.*?)</select>', form.group(0), re.S)
    assert select, "no page-size control in the filter form"
    options = re.findall(r'<option value="(\d+)" (selected)?', select.group(1))
    assert options == [("5", "selected"), ("25", ""), ("50", ""), ("100", ""), ("200", ""), ("500", "")]
    # what the form sends when 25 is chosen: the view's fields, no page
    sent = {"q": "user", "field": "email", "topic": "news", "status": OPT_IN, "sort": "updated", "size": "25"}
    response = console.client.get("/?" + urlencode(sent), headers=HTMX)
    assert response.headers["hx-push-url"] == "/?q=user&status=OPT_IN&topic=news&sort=updated&size=25"
    assert len(emails_on(response.text)) == 25 and position(response.text) == "Showing 1-25"
    assert link(response.text, "prev") is None
    everyone = get(console, "/?q=user&size=500")
    assert len(emails_on(everyone)) == 40 and link(everyone, "next") is None
    # the default size is left out of the URL; the select still shows it chosen
    assert '<option value="50" selected>' in get(console, "/")


def test_a_changed_or_foreign_page_link_is_a_clear_message(console: Console) -> None:
    seed(console, 40)
    page2 = get(console, link(get(console, "/?q=user&size=5"), "next") or "")
    page3_url = link(page2, "next") or ""
    tokens = parse_qs(urlsplit(page3_url).query)["page"][0].split(".")
    assert len(tokens) == 2  # page 3 carries its own token and page 2's
    second = tokens[1]
    changed = second[:10] + ("A" if second[10] != "A" else "B") + second[11:]
    page3 = get(console, page3_url.replace(second, changed))
    assert len(emails_on(page3)) == 5  # this page's own token is fine
    broken = get(console, link(page3, "prev") or "")  # the changed one is page 2's
    foreign = get(console, page3_url.replace("q=user", "q=acme"))
    for page in (broken, foreign, get(console, "/?q=user&size=5&page=.."), get(console, "/?page=%7E3")):
        text = html.unescape(page)
        assert contacts_view.BAD_PAGE in text and "Traceback" not in text
        assert emails_on(page) == [] and "No contacts match" not in text
        first = re.search(r'<a href="([^"]*)">Go to the first page</a>', page)
        assert first and "page=" not in first.group(1)


def test_a_long_walk_keeps_the_newest_pages_and_counts_the_others(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``PAGE_CHARS`` the oldest tokens are dropped and counted: the page numbers stay right, Previous
    works down to the oldest page kept, and below it First page is what is left."""
    seed(console, 40)
    monkeypatch.setattr(filters, "PAGE_CHARS", 250)
    url = "/?size=5"
    pages: list[list[str]] = []
    for n in range(8):
        page = get(console, url)
        assert position(page) == f"Showing {5 * n + 1}-{5 * n + 5} of 40"
        pages.append(emails_on(page))
        url = link(page, "next") or ""
        if url:
            assert len(parse_qs(urlsplit(url).query)["page"][0]) <= 250
    assert not url and "~" in parse_qs(urlsplit(link(page, "prev") or "").query)["page"][0]
    n = 7
    while previous := link(page, "prev"):
        page, n = get(console, previous), n - 1
        assert emails_on(page) == pages[n] and position(page).startswith(f"Showing {5 * n + 1}-")
    assert 0 < n < 7 and "First page" in page  # the bottom of the kept tokens: only First page left
    first = re.search(r'href="([^"]+)" [^>]*>« First page', page)
    assert first and emails_on(get(console, html.unescape(first.group(1)))) == pages[0]


def test_count_exactly_on_request(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    """A capped count offers "Count exactly": in place with htmx, and as a page of its own without JavaScript."""
    seed(console, 12)
    monkeypatch.setattr(contacts_view, "COUNT_CAP", 3)
    capped = console.client.get("/count", params={"q": "user", "size": "5"}, headers={"HX-Request": "true"}).text
    assert '<strong data-testid="matching">3+</strong>' in capped
    exactly = re.search(r'href="([^"]+)" hx-get="([^"]+)" [^>]*data-testid="count-exactly"', capped)
    assert exactly and html.unescape(exactly.group(1)) == "/count?q=user&size=5&full=1"
    assert exactly.group(2) == exactly.group(1)
    fragment = console.client.get(html.unescape(exactly.group(2)), headers={"HX-Request": "true"}).text
    assert fragment == '<span class="matching-count"><strong data-testid="matching">12</strong></span>'
    # without JavaScript: the count page, its Count exactly button, then the number with its noun
    page = get(console, "/count?q=user")
    assert "3+ contacts match" in page and 'href="/count?q=user&amp;full=1" data-testid="count-exactly"' in page
    page = get(console, "/count?q=user&full=1")
    assert "12 contacts match" in page and "count-exactly" not in page
    assert "1 contact matches" in get(console, "/count?q=user01&full=1")
    # a count under the cap offers nothing more
    small = console.client.get("/count", params={"q": "user0"}, headers={"HX-Request": "true"}).text
    assert "3+" in small
    monkeypatch.setattr(contacts_view, "COUNT_CAP", 100)
    small = console.client.get("/count", params={"q": "user0"}, headers={"HX-Request": "true"}).text
    assert ">10</strong>" in small and "count-exactly" not in small


def test_ses_backend_pages_back_and_counts_exactly_from_its_mirror(
    tmp_path: Path,
    moto_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ses backend's console reads its mirror (a local store): the same tokens, the same pages back, the
    same exact count."""
    upstream = moto_upstream(moto_url, monkeypatch)
    upstream.create_contact_list(ContactListName="contacts")
    for i in range(20):
        upstream.create_contact(
            ContactListName="contacts",
            EmailAddress=f"m{i:02d}@{'mirror.test' if i % 4 else 'other.test'}",
            AttributesData='{"Plan": "pro"}' if i % 2 else '{"Plan": "free"}',
        )
    console = ses_console(tmp_path, moto_url)
    try:
        console.login()
        console.store.sync_now(full=True)
        walk(console, {"q": "mirror.test", "field": "domain", "size": "3"})
        walk(console, {"q": "Plan = PRO", "field": "attribute", "size": "2", "sort": "updated"})
        monkeypatch.setattr(contacts_view, "COUNT_CAP", 4)
        capped = console.client.get("/count", params={"q": "m"}, headers={"HX-Request": "true"}).text
        assert ">4+</strong>" in capped and "count-exactly" in capped
        assert "20 contacts match" in get(console, "/count?q=m&full=1")
    finally:
        console.services.close()
