"""The contacts page's search: several conditions at once (AND), attribute values ignoring case unless asked,
addresses by prefix; the URL, the filter form without JavaScript, the export and "all N matching" agree."""

from __future__ import annotations

import html
import re

import orjson

from sescontacts.model import OPT_IN, Contact, ContactQuery, Topic

from .support.console import Console, console_fixture, fast_kdf_fixture  # noqa: F401
from .test_console_contacts import emails_on

COMPANIES = ["ACME Inc", "acme inc", "Acme Inc", "ACME Ltd", "Globex"]


def seed(console: Console) -> set[str]:
    """30 contacts: companies in several cases, every other at example.com, every third opted in to news;
    returns those matching ``Company = acme inc`` AND opted in to news AND domain example.com AND address
    containing "ann"."""
    store, name = console.store, console.list_name
    store.update_list(name, topics=[Topic("news", "News", "OPT_OUT")])
    expected = set()
    for i in range(30):
        email = f"{'ann' if i % 4 else 'bob'}{i:02d}@{'example.com' if i % 2 else 'other.org'}"
        company = COMPANIES[i % len(COMPANIES)]
        opted = i % 3 == 0
        attributes = {"Company": company, "Plan": "pro"} if i % 7 else {"Company": company}
        store.create_contact(
            name,
            Contact(
                email,
                topic_preferences={"news": OPT_IN} if opted else {},
                attributes_data=orjson.dumps(attributes).decode(),
            ),
        )
        if company.casefold() == "acme inc" and opted and i % 2 and "ann" in email:
            expected.add(email)
    assert len(expected) >= 2  # the example says something
    return expected


FOUR = [
    ("q", "Company = acme inc"),
    ("field", "attribute"),
    ("q", "example.com"),
    ("field", "domain"),
    ("q", "ann"),
    ("field", "email"),
    ("topic", "news"),
    ("status", OPT_IN),
]


def hidden_inputs(page: str) -> list[tuple[str, str]]:
    """The view the bulk bar posts back (its hidden inputs, in order)."""
    form = page[page.index('id="bulk-form"') :] if 'id="bulk-form"' in page else page
    return [
        (html.unescape(k), html.unescape(v))
        for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form)
        if k != "csrf_token"
    ]


def as_form(pairs: list[tuple[str, str]]) -> dict[str, object]:
    """Form fields as a browser posts them (a repeated name keeps its values in order)."""
    form: dict[str, list[str]] = {}
    for key, value in pairs:
        form.setdefault(key, []).append(value)
    return dict(form)


def test_several_conditions_in_the_url_are_all_required(console: Console) -> None:
    expected = seed(console)
    page = console.client.get("/", params=FOUR).text
    assert set(emails_on(page)) == expected
    assert f'data-testid="matching">{len(expected)}<' in page
    # The form shows each condition as a row, with its field chosen.
    assert re.findall(r'name="q" type="search" value="([^"]*)"', page) == ["Company = acme inc", "example.com", "ann"]
    assert len(re.findall(r'name="remove" value="\d"', page)) == 2
    # The canonical URL keeps every condition, in order.
    fragment = console.client.get("/", params=FOUR, headers={"HX-Request": "true", "HX-Target": "results"})
    assert fragment.headers["hx-push-url"] == (
        "/?q=Company+%3D+acme+inc&field=attribute&q=example.com&field=domain&q=ann&field=email&status=OPT_IN&topic=news"
    )


def test_attribute_values_ignore_case_unless_exact_is_ticked(console: Console) -> None:
    seed(console)
    insensitive = console.client.get("/", params={"q": "Company = ACME INC", "field": "attribute"}).text
    assert len(emails_on(insensitive)) == 18  # ACME Inc, acme inc, Acme Inc: 3 of every 5
    assert 'id="exact" name="exact" value="1" >' in insensitive  # not ticked
    exact = console.client.get("/", params={"q": "Company = ACME Inc", "field": "attribute", "exact": "1"}).text
    assert emails_on(exact) == sorted(
        f"{'ann' if i % 4 else 'bob'}{i:02d}@{'example.com' if i % 2 else 'other.org'}" for i in range(0, 30, 5)
    )
    assert 'id="exact" name="exact" value="1" checked>' in exact
    assert re.search(r'href="/export\?[^"]*exact=1', exact)  # the export finds what the table shows


def test_addresses_by_prefix(console: Console) -> None:
    seed(console)
    page = console.client.get("/", params={"q": "BOB1", "field": "prefix"}).text
    assert emails_on(page) == ["bob12@other.org", "bob16@other.org"]
    assert '<option value="prefix" selected>Email starts with</option>' in page
    assert console.client.get("/", params={"q": "ob1", "field": "prefix"}).text.count('name="email" value=') == 0


def test_add_and_remove_condition_rows_without_javascript(console: Console) -> None:
    """ "Add condition" submits the form and gets it back with one more (empty) row; "Remove" drops its row.
    Neither is part of the view's URL; with htmx the page's main part is swapped, not just the results."""
    seed(console)
    one = [("q", "Company = acme inc"), ("field", "attribute")]
    added = console.client.get("/", params=[*one, ("add", "1")]).text
    assert re.findall(r'name="q" type="search" value="([^"]*)"', added) == ["Company = acme inc", ""]
    assert '<select id="field-2" name="field">' in added and "add=1" not in added
    # The empty row searches nothing: the same rows as the one condition.
    assert emails_on(added) == emails_on(console.client.get("/", params=one).text)
    removed = console.client.get("/", params=[*FOUR, ("remove", "1")]).text
    assert re.findall(r'name="q" type="search" value="([^"]*)"', removed) == ["Company = acme inc", "ann"]
    assert "remove=" not in removed.split('id="results"')[1]
    swapped = console.client.get(
        "/", params=[*one, ("add", "1")], headers={"HX-Request": "true", "HX-Target": "results"}
    )
    assert swapped.headers["hx-retarget"] == "#main" and swapped.headers["hx-reswap"] == "outerHTML"
    assert swapped.headers["hx-push-url"] == "/?q=Company+%3D+acme+inc&field=attribute"
    assert '<main id="main"' in swapped.text


def test_export_and_bulk_all_matching_use_the_same_conditions(console: Console) -> None:
    expected = seed(console)
    page = console.client.get("/", params=FOUR).text
    link = html.unescape(re.search(r'href="([^"]+)" data-export="csv"', page).group(1))  # type: ignore[union-attr]
    csv = console.client.get(link).text.strip().splitlines()
    assert {line.split(",")[0] for line in csv[1:]} == expected
    json_link = link.replace("format=csv", "format=json")
    assert {orjson.loads(line)["emailAddress"] for line in console.client.get(json_link).text.splitlines()} == expected
    # The bulk bar posts the view back; "all N matching" counts and acts on exactly those contacts.
    view = hidden_inputs(page)
    assert [v for k, v in view if k == "q"] == ["Company = acme inc", "example.com", "ann"]
    confirm = console.post("/contacts/bulk", as_form([("action", "unsubscribe"), ("all", "1"), *view]))
    assert f"{len(expected)} contacts will change" in confirm.text
    assert (
        "matching <em>attribute “Company = acme inc”, domain is “example.com”, email contains “ann”, "
        "topic news opted in</em>" in html.unescape(confirm.text)
    )
    posted = hidden_inputs(confirm.text)
    assert posted == [("action", "unsubscribe"), ("confirm", "1"), *view, ("all", "1")]
    started = console.post("/contacts/bulk", as_form(posted))
    job_id = started.headers["location"].rsplit("/", 1)[1]
    done = console.services.jobs.run(job_id)
    assert done.counts["updated"] == len(expected)
    gone = {c.email for c in console.store.list_contacts(console.list_name, ContactQuery(status="OPT_OUT")).items}
    assert gone == expected
