"""Bulk topic changes in the console (issue 14, item 10): opt the checked rows, or all N matching, in to or out
of one topic, after a page that asks which topic and a confirmation with the numbers; opting in says how many
had opted out of it themselves and how many stay unsubscribed from everything."""

from __future__ import annotations

import html
import re

from sescontacts.model import OPT_IN, OPT_OUT, Contact, Topic

from .support.console import Console, console_fixture, fast_kdf_fixture  # noqa: F401
from .test_console_contacts import job_page_when_done, worker_fixture  # noqa: F401

EVERYONE = ["a@acme.com", "b@acme.com", "c@acme.com", "d@acme.com", "e@acme.com"]


def seed(console: Console) -> None:
    """Offers (OPT_OUT by default): a opted out, b opted in, c unsubscribed from all, d both unsubscribed and
    opted out (and out of News), e no choice; z elsewhere, opted out."""
    store, name = console.store, console.list_name
    store.update_list(name, topics=[Topic("news", "News", OPT_IN), Topic("offers", "Special <offers>", OPT_OUT)])
    for contact in (
        Contact("a@acme.com", topic_preferences={"offers": OPT_OUT}, attributes_data='{"Name": "A"}'),
        Contact("b@acme.com", topic_preferences={"offers": OPT_IN}),
        Contact("c@acme.com", unsubscribe_all=True),
        Contact("d@acme.com", unsubscribe_all=True, topic_preferences={"offers": OPT_OUT, "news": OPT_OUT}),
        Contact("e@acme.com"),
        Contact("z@example.org", topic_preferences={"offers": OPT_OUT}),
    ):
        store.create_contact(name, contact)


def words(page: str) -> str:
    """The page's text as a user reads it: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def preferences(console: Console, email: str) -> dict[str, str]:
    return dict(console.store.get_contact(console.list_name, email).topic_preferences)


def test_the_bulk_bar_offers_topic_changes_only_on_a_list_with_topics(console: Console) -> None:
    console.store.create_contact(console.list_name, Contact("first@example.net"))
    assert "topic_opt_in" not in console.client.get("/").text
    seed(console)
    page = console.client.get("/").text
    assert 'value="topic_opt_in" class="button small">Opt in to topic…</button>' in page
    assert 'value="topic_opt_out" class="button small">Opt out of topic…</button>' in page


def test_opting_checked_rows_in_asks_which_topic_then_says_who_opted_out_and_who_stays_unsubscribed(
    console: Console,
) -> None:
    seed(console)
    chooser = console.post("/contacts/bulk", {"action": "topic_opt_in", "email": EVERYONE})
    assert chooser.status_code == 200 and 'data-testid="topic-choice"' in chooser.text
    assert 'name="bulk_topic" value="news"' in chooser.text and 'name="bulk_topic" value="offers"' in chooser.text
    assert "Special &lt;offers&gt;" in chooser.text  # the display name, escaped
    assert 'name="confirm"' not in chooser.text  # nothing is done from this page
    assert preferences(console, "a@acme.com") == {"offers": OPT_OUT}

    confirm = console.post("/contacts/bulk", {"action": "topic_opt_in", "bulk_topic": "offers", "email": EVERYONE})
    text = words(confirm.text)
    assert "Opt in to Special <offers>: 4 contacts will change" in text  # b already is
    assert "2 of the 5 selected opted out of Special <offers> themselves: opt them in only if they asked" in text
    assert "2 are unsubscribed from all email from this list: opting in to a topic never resubscribes" in text
    assert 'name="bulk_topic" value="offers"' in confirm.text and 'name="confirm" value="1"' in confirm.text
    assert preferences(console, "a@acme.com") == {"offers": OPT_OUT}  # asked, not done

    form = {"action": "topic_opt_in", "bulk_topic": "offers", "email": EVERYONE}
    done = console.post("/contacts/bulk", {**form, "confirm": "1"})
    assert done.status_code == 303
    assert "4 contacts opted in to Special &lt;offers&gt;." in console.client.get(done.headers["location"]).text
    assert all(preferences(console, e)["offers"] == OPT_IN for e in EVERYONE)
    store, name = console.store, console.list_name
    assert [store.get_contact(name, e).unsubscribe_all for e in EVERYONE] == [False, False, True, True, False]
    assert preferences(console, "d@acme.com") == {"offers": OPT_IN, "news": OPT_OUT}
    assert store.get_contact(name, "a@acme.com").attributes_data == '{"Name": "A"}'
    assert preferences(console, "z@example.org") == {"offers": OPT_OUT}  # not selected


def test_opting_out_is_a_plain_confirmation_with_the_number(console: Console) -> None:
    seed(console)
    form = {"action": "topic_opt_out", "bulk_topic": "offers", "email": ["a@acme.com", "b@acme.com", "e@acme.com"]}
    confirm = console.post("/contacts/bulk", form)
    assert "Opt out of Special <offers>: 2 contacts will change" in words(confirm.text)  # a already is
    assert "opt-in-warning" not in confirm.text
    console.post("/contacts/bulk", {**form, "confirm": "1"})
    assert [preferences(console, e) for e in form["email"]] == [{"offers": OPT_OUT}] * 3


def test_a_topic_default_is_no_choice_so_opting_in_gives_one(console: Console) -> None:
    """News is opted in by default: e gets it as its own choice (counted), which a later default change keeps."""
    seed(console)
    confirm = console.post("/contacts/bulk", {"action": "topic_opt_in", "bulk_topic": "news", "email": ["e@acme.com"]})
    text = words(confirm.text)
    assert "1 contact will change" in text and "gets this one as its own, and counts as changing" in text
    form = {"action": "topic_opt_in", "bulk_topic": "news", "email": ["e@acme.com"], "confirm": "1"}
    console.post("/contacts/bulk", form)
    assert preferences(console, "e@acme.com") == {"news": OPT_IN}


def test_the_views_topic_filter_and_the_bulk_topic_are_two_things(console: Console) -> None:
    """All matching "opted out of News" (c and d: unsubscribed from all), opted in to Offers."""
    seed(console)
    view = {"all": "1", "topic": "news", "status": OPT_OUT}
    confirm = console.post("/contacts/bulk", {**view, "action": "topic_opt_in", "bulk_topic": "offers"})
    text = words(confirm.text)
    assert "Opt in to Special <offers>: 2 contacts will change" in text and "All 2 contacts matching" in text
    assert 'name="topic" value="news"' in confirm.text and 'name="bulk_topic" value="offers"' in confirm.text


def test_an_unknown_topic_asks_again(console: Console) -> None:
    seed(console)
    page = console.post("/contacts/bulk", {"action": "topic_opt_in", "bulk_topic": "nosuch", "email": EVERYONE})
    assert page.status_code == 200 and 'data-testid="topic-choice"' in page.text


def test_all_matching_opted_in_as_a_job(worker: Console) -> None:
    console = worker
    seed(console)
    form = {"action": "topic_opt_in", "all": "1", "q": "acme.com", "field": "domain"}
    chooser = console.post("/contacts/bulk", form)
    assert 'data-testid="topic-choice"' in chooser.text and 'name="all" value="1"' in chooser.text
    confirm = console.post("/contacts/bulk", {**form, "bulk_topic": "offers"})
    text = words(confirm.text)
    assert "Opt in to Special <offers>: 4 contacts will change" in text
    assert "All 5 contacts matching domain is “acme.com” are selected" in text
    assert "2 of them opted out of Special <offers> themselves" in text and "2 are unsubscribed from all" in text
    assert 'data-testid="bulk-job-note"' in confirm.text
    started = console.post("/contacts/bulk", {**form, "bulk_topic": "offers", "confirm": "1"})
    assert started.status_code == 303
    page = job_page_when_done(console, started.headers["location"])
    assert 'data-state="completed"' in page
    assert 'data-count="changed">4<' in page and 'data-count="unchanged">1<' in page
    text = words(page)
    assert "Opt in to Special <offers>: contacts matching domain is “acme.com”" in text
    assert "Opted in to Special <offers> 4" in text and "Already opted in to Special <offers> 1" in text
    assert all(preferences(console, e)["offers"] == OPT_IN for e in EVERYONE)
    assert preferences(console, "z@example.org") == {"offers": OPT_OUT}
    stats = console.store.list_stats(console.list_name)
    assert (stats.total, stats.unsubscribed) == (6, 2)
