"""Escaping, topics, the AWS API page, the overview and the vendored static files."""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

import orjson

from sescontacts.console import app as console_app
from sescontacts.console.gate import CSP
from sescontacts.model import OPT_IN, OPT_OUT, Contact, Topic

from .support.console import Console, console_fixture, fast_kdf_fixture  # noqa: F401

PAYLOADS = ['<script>alert("x")</script>', '"onmouseover="alert(1)', "'><img src=x onerror=alert(1)>", "{{7*7}}"]
TEMPLATES = Path(console_app.__file__).parent / "templates"


def test_user_supplied_values_are_escaped_everywhere(console: Console) -> None:
    attributes = {p: p for p in PAYLOADS}
    console.store.update_list(console.list_name, topics=[Topic("xss", PAYLOADS[0], OPT_IN, PAYLOADS[1])])
    console.store.create_contact(
        console.list_name, Contact("o'brien+x@example.com", attributes_data=orjson.dumps(attributes).decode())
    )
    pages = [
        console.client.get("/").text,
        console.client.get("/contacts/edit", params={"email": "o'brien+x@example.com"}).text,
        console.client.get("/topics").text,
        console.client.get("/topics/delete", params={"name": "xss"}).text,
        console.client.get("/", params={"q": PAYLOADS[0]}).text,
        console.client.get("/", params={"q": PAYLOADS[2], "field": "attribute"}).text,
    ]
    assert "{{7*7}}" in html.unescape(pages[1])  # the edit form shows it as text, never evaluated
    for page in pages:
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert '"onmouseover="' not in page


def test_security_headers(console: Console) -> None:
    response = console.client.get("/")
    assert response.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "server-timing" in response.headers


def test_templates_have_no_inline_script_and_no_cdn() -> None:
    for path in TEMPLATES.glob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path.name
        assert "https://" not in text and "http://" not in text, path.name
        assert "|safe" not in text.replace(" ", "") and "Markup(" not in text, path.name


def test_vendored_htmx_is_pinned_and_checked() -> None:
    path = console_app.STATIC / console_app.HTMX_FILE
    assert re.fullmatch(r"htmx-2\.0\.\d+\.min\.js", path.name)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == console_app.HTMX_SHA256
    assert 'version:"2.0.' in path.read_text().replace(" ", "")


def test_static_files_are_served(console: Console) -> None:
    assert console.client.get(f"/static/{console_app.HTMX_FILE}").status_code == 200
    css = console.client.get("/static/console.css")
    assert css.status_code == 200 and ":focus-visible" in css.text


def test_topics_add_edit_delete_with_inline_rules(console: Console) -> None:
    ok = console.post("/topics", {"name": "news", "display_name": "News", "default_status": "OPT_IN"})
    assert ok.status_code == 303
    bad = console.post("/topics", {"name": "bad name!", "display_name": "Bad"})
    assert bad.status_code == 400 and 'id="name-error"' in bad.text and "alphanumeric" in bad.text
    dup = console.post("/topics", {"name": "news", "display_name": "Again"})
    assert dup.status_code == 400 and "already exists" in dup.text
    blank = console.post("/topics", {"name": "x", "display_name": ""})
    assert blank.status_code == 400 and 'id="display_name-error"' in blank.text
    for i in range(19):
        assert console.post("/topics", {"name": f"t{i}", "display_name": f"T{i}"}).status_code == 303
    full = console.post("/topics", {"name": "one-too-many", "display_name": "No"})
    assert full.status_code == 400 and "at most 20 topics" in full.text
    edit = console.post("/topics", {"original": "news", "name": "ignored", "display_name": "Newsletter"})
    assert edit.status_code == 303
    topic = console.store.get_list(console.list_name).topic("news")
    assert topic is not None and topic.display_name == "Newsletter"
    assert console.post("/topics/delete", {"name": "news"}).status_code == 303
    assert console.store.get_list(console.list_name).topic("news") is None


def test_topic_counts_shown(console: Console) -> None:
    console.store.update_list(console.list_name, topics=[Topic("news", "News", OPT_IN)])
    console.store.create_contact(console.list_name, Contact("a@example.com"))
    console.store.create_contact(console.list_name, Contact("b@example.com", unsubscribe_all=True))
    page = console.client.get("/topics").text
    cells = re.findall(r'<td class="num">([^<]+)</td>', page)
    assert cells == ["1", "1"]


def test_aws_page_has_real_values_and_no_secret(console: Console) -> None:
    page = console.client.get("/aws").text
    secret = console.services.access_key.secret_access_key
    assert secret not in page
    assert "sescontacts credentials" in page
    text = html.unescape(page)
    assert "aws sesv2 list-contacts" in text and "--contact-list-name contacts" in text
    assert "--region us-east-1" in text and "--endpoint-url http://testserver" in text
    assert text.count("aws sesv2 ") >= 5
    assert "import boto3" in text
    dialog = console.client.get("/aws", headers={"HX-Request": "true"}).text
    assert "<html" not in dialog and 'id="dialog-title"' in dialog


def test_unknown_page_is_a_friendly_404(console: Console) -> None:
    response = console.client.get("/nope")
    assert response.status_code == 404 and "There is no page at this address" in response.text


def test_export_follows_the_current_filter(console: Console) -> None:
    for i in range(5):
        console.store.create_contact(
            console.list_name, Contact(f"e{i}@{'keep' if i % 2 else 'drop'}.test", attributes_data='{"Name": "N"}')
        )
    csv = console.client.get("/export", params={"format": "csv", "q": "keep.test", "field": "domain"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("emailAddress,unsubscribeAll,attributesData")
    assert sorted(line.split(",")[0] for line in lines[1:]) == ["e1@keep.test", "e3@keep.test"]
    json_lines = console.client.get("/export", params={"format": "json"}).text.strip().splitlines()
    assert len(json_lines) == 5 and orjson.loads(json_lines[0])["emailAddress"] == "e0@drop.test"
    assert not list((console.services.settings.data_dir / "exports").iterdir())  # removed once sent


def test_a_default_of_opted_in_asks_first_with_the_number_it_opts_in(console: Console) -> None:
    """Item 7a: a topic's default turned to OPT_IN opts in everyone who never chose; the console says how many
    and saves only when a plain form (no JavaScript) is posted again with the confirmation."""
    name = console.list_name
    console.store.update_list(name, topics=[Topic("news", "News", OPT_OUT)])
    for i in range(3):
        console.store.create_contact(name, Contact(f"never{i}@example.com"))
    console.store.create_contact(name, Contact("chose@example.com", topic_preferences={"news": OPT_OUT}))
    console.store.create_contact(name, Contact("gone@example.com", unsubscribe_all=True))
    form = {"original": "news", "name": "news", "display_name": "News!", "default_status": OPT_IN}
    asked = console.post("/topics", form)
    text = " ".join(html.unescape(asked.text).split())
    assert asked.status_code == 200 and "Opt in 3 contacts to news?" in text
    assert '<input type="hidden" name="confirm_opt_in" value="1">' in asked.text
    assert 'name="default_status" value="OPT_IN"' in asked.text and 'name="display_name" value="News!"' in asked.text
    assert console.store.get_list(name).topic("news") == Topic("news", "News", OPT_OUT)  # nothing saved yet
    saved = console.post("/topics", {**form, "confirm_opt_in": "1"})
    assert saved.status_code == 303
    assert console.store.get_list(name).topic("news") == Topic("news", "News!", OPT_IN)
    # already OPT_IN: editing it again asks nothing; a new topic opted in by default counts every subscriber
    assert console.post("/topics", {**form, "display_name": "News"}).status_code == 303
    new = console.post("/topics", {"name": "offers", "display_name": "Offers", "default_status": OPT_IN})
    assert "Opt in 4 contacts to offers?" in " ".join(html.unescape(new.text).split())
    assert console.store.get_list(name).topic("offers") is None
    # a name SES refuses is an inline error, not a confirmation
    bad = console.post("/topics", {"name": "bad name!", "display_name": "Bad", "default_status": OPT_IN})
    assert bad.status_code == 400 and "alphanumeric" in bad.text


def test_aws_update_command_is_filled_in_from_a_chosen_contact(console: Console) -> None:
    """Item 7c: SES's UpdateContact replaces the whole contact; the page's example, pasted for an unsubscribed
    contact, resubscribed them and wiped their attributes. For a chosen contact it carries its current state."""
    import shlex

    name = console.list_name
    console.store.update_list(name, topics=[Topic("news", "News", OPT_IN)])
    attributes = '{"Name": "O\'Neil", "Plan": "pro"}'
    console.store.create_contact(
        name,
        Contact(
            "gone@example.com", unsubscribe_all=True, topic_preferences={"news": OPT_OUT}, attributes_data=attributes
        ),
    )
    edit = console.client.get("/contacts/edit", params={"email": "gone@example.com"}).text
    assert 'href="/aws?email=gone%40example.com">AWS CLI commands for this contact</a>' in edit
    page = console.client.get("/aws", params={"email": "gone@example.com"}).text
    commands = [html.unescape(c) for c in re.findall(r'<code data-command="\d">(.*?)</code>', page, re.S)]
    update = shlex.split(commands[3].replace("\\\n", " "))
    assert update[:3] == ["aws", "sesv2", "update-contact"] and "--unsubscribe-all" in update
    assert orjson.loads(update[update.index("--topic-preferences") + 1]) == [
        {"TopicName": "news", "SubscriptionStatus": "OPT_OUT"}
    ]
    assert update[update.index("--attributes-data") + 1] == attributes
    note = " ".join(html.unescape(re.sub(r"<[^>]+>", "", page.split('data-testid="update-note">')[1])).split())
    assert note.startswith("SES's UpdateContact replaces the whole contact; it does not merge.")
    assert "filled in from gone@example.com as it is stored now (unsubscribed from all, 1 topic choice" in note
    # a subscribed contact without attributes: --no-unsubscribe-all, nothing else to keep
    console.store.create_contact(name, Contact("here@example.com"))
    page = console.client.get("/aws", params={"email": "here@example.com"}).text
    update = shlex.split(
        html.unescape(re.findall(r'<code data-command="3">(.*?)</code>', page, re.S)[0]).replace("\\\n", " ")
    )
    assert update[-1] == "--no-unsubscribe-all" and "--attributes-data" not in update
    # the example address, or one not on the list: the example, and the sentence that says why to choose one
    example = console.client.get("/aws", params={"email": "nobody@example.com"}).text
    assert "Enter a contact's address above" in example and "--no-unsubscribe-all" not in example


def test_aws_page_has_the_suppression_list_commands_for_the_chosen_address(console: Console) -> None:
    """Issue 12: the account's suppression list, ready to paste: the endpoint and region of this server, the
    address chosen above, and no contact list (the suppression list is the account's)."""
    import shlex

    for headers in ({}, {"HX-Request": "true"}):
        page = console.client.get("/aws", params={"email": "o'neil@example.com"}, headers=headers).text
        found = re.findall(r'<code data-suppression-command="\d">(.*?)</code>', page, re.S)
        commands = [shlex.split(html.unescape(c).replace("\\\n", " ")) for c in found]
        assert [c[2] for c in commands] == [
            "list-suppressed-destinations",
            "get-suppressed-destination",
            "put-suppressed-destination",
            "delete-suppressed-destination",
            "get-account",
        ]
        for command in commands:
            assert command[3:7] == ["--endpoint-url", "http://testserver", "--region", "us-east-1"]
            assert "--contact-list-name" not in command
        for command in commands[1:4]:
            assert command[command.index("--email-address") + 1] == "o'neil@example.com"
        assert commands[2][-2:] == ["--reason", "BOUNCE"]
        assert "The suppression list</strong> is the account's" in page


def _list_deleted_then_created_from_the_console(console: Console) -> None:
    name = console.list_name
    console.store.delete_list(name)  # as `aws sesv2 delete-contact-list` does
    for path in ("/", "/topics", "/contacts/edit?email=a%40example.com", "/count?q=a"):
        page = console.client.get(path)
        assert page.status_code == 404 and 'data-testid="list-missing"' in page.text, path
        assert f"The contact list {name} does not exist" in page.text and 'action="/list/create"' in page.text
        assert 'href="/">Back to contacts' not in page.text  # the link that led back to the same error
    fragment = console.client.get("/", headers={"HX-Request": "true", "HX-Target": "results"})
    assert fragment.status_code == 204 and fragment.headers["hx-refresh"] == "true"
    assert console.client.post("/list/create", data={"topics": ""}).status_code == 403  # CSRF as everywhere
    bad = console.post("/list/create", {"topics": "news, News\nbad name!, Bad"})
    assert bad.status_code == 400 and 'id="topics-error"' in bad.text and "alphanumeric" in bad.text
    assert "news, News\nbad name!, Bad</textarea>" in html.unescape(bad.text)  # what was typed stays
    created = console.post("/list/create", {"topics": "news, Monthly news\n\noffers"})
    assert created.status_code == 303 and created.headers["location"] == "/"
    home = console.client.get("/")
    assert home.status_code == 200 and f"Created the list {name}." in home.text
    assert console.store.get_list(name).topics == (
        Topic("news", "Monthly news", OPT_OUT),
        Topic("offers", "offers", OPT_OUT),
    )
    again = console.post("/list/create", {"topics": ""})  # a second tab's form: nothing to do
    assert again.status_code == 303 and "exists already" in console.client.get("/").text


def test_a_deleted_list_can_be_created_again_from_any_page(console: Console) -> None:
    """Item 5, local backend: every page offers to create the list (with CSRF), then the console works."""
    _list_deleted_then_created_from_the_console(console)
