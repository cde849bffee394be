"""The import dialog's mapping step, server side: a CSV from elsewhere is mapped column by column, previewed,
dry-run and imported with the mapping; the mapping is remembered per header; the template CSV."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from sescontacts.model import ContactQuery, Topic

from .support.console import Console, fast_kdf_fixture  # noqa: F401
from .test_console_import import upload, wait_done

FIXTURES = Path(__file__).parent / "fixtures"
MAILCHIMP = (FIXTURES / "mailchimp-export.csv").read_bytes()
# What the form sends for the Mailchimp fixture's nine columns.
MAILCHIMP_FORM = {
    "field.0": "email",
    "field.1": "attribute",
    "name.1": "FirstName",
    "type.1": "string",
    "field.2": "attribute",
    "name.2": "LastName",
    "field.3": "skip",
    "field.4": "skip",
    "field.5": "attribute",
    "name.5": "Rating",
    "type.5": "number",
    "field.6": "skip",
    "field.7": "topic:news",
    "field.8": "attribute",
    "name.8": "Tags",
    "type.8": "string",
}


@pytest.fixture(name="importer")
def importer_fixture(tmp_path: Path) -> Iterator[Console]:
    console = Console(tmp_path / "data")
    console.services.start()
    console.login()
    console.store.update_list(console.list_name, topics=[Topic("news", "News")])
    yield console
    console.services.close()


def text_of(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def upload_id_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["upload"][0]


def selected(page: str, name: str) -> str:
    """The selected option's value of the select named ``name``."""
    select = re.search(rf'<select [^>]*name="{re.escape(name)}"[^>]*>(.*?)</select>', page, re.S)
    assert select, name
    found = re.search(r'<option value="([^"]*)" selected', select.group(1))
    assert found, select.group(1)
    return html.unescape(found.group(1))


def test_the_page_s_format_goes_straight_to_the_dry_run(importer: Console) -> None:
    location = upload(importer, (FIXTURES / "page-example.csv").read_bytes())
    response = importer.client.get(location, follow_redirects=False)
    assert response.status_code == 200 and "Dry run" in response.text and "Map columns" not in response.text


def test_a_mailchimp_export_opens_the_mapping_step_filled_in_from_its_names(importer: Console) -> None:
    location = upload(importer, MAILCHIMP, name="members.csv")
    response = importer.client.get(location, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/import/map?upload=")
    page = importer.client.get(response.headers["location"]).text
    text = text_of(page)
    assert "Map columns" in text and "members.csv" in text and "9 columns" in text
    assert selected(page, "field.0") == "email"  # "Email Address" recognised
    assert selected(page, "field.1") == "attribute" and 'name="name.1" value="First Name"' in page
    assert selected(page, "type.1") == "string"
    assert "Topic news (opt in/out)" in text
    # A few values of each column, the quoted one with its comma whole.
    assert "12 High St, Leeds, LS1 1AA" in text and "Stone, Jr." in text
    # The first rows as the suggested mapping reads them: every other column a string attribute.
    assert 'data-testid="mapping-preview"' in page
    assert "ann.lee@example.com" in text and "First Name Ann" in text and "MEMBER_RATING 4" in text
    assert "Email Address: there is no @" in text  # the reject names the file's column


def test_preview_shows_the_rows_with_the_chosen_mapping_and_keeps_the_form(importer: Console) -> None:
    location = upload(importer, MAILCHIMP)
    response = importer.post(
        "/import/map", {"upload": upload_id_of(location), "action": "add", "do": "preview", **MAILCHIMP_FORM}
    )
    assert response.status_code == 200
    page = response.text
    text = text_of(page)
    assert "FirstName Ann" in text and "Rating 4" in text and "news opted in" in text and "news opted out" in text
    assert "Address" not in re.sub(r"Email Address", "", text.split("First rows with this mapping")[1])  # skipped
    assert selected(page, "field.7") == "topic:news" and selected(page, "type.5") == "number"
    assert importer.store.count_contacts(importer.list_name, ContactQuery()).value == 0


def test_continue_with_a_stale_token_shows_the_mapping_as_chosen_and_remembers_nothing(importer: Console) -> None:
    """Logged out and in again in another tab: Continue is refused, the step comes back with the user's choices
    and a fresh token, and the mapping is remembered only once they press Continue again."""
    location = upload(importer, MAILCHIMP)
    old = importer.csrf
    importer.post("/logout")
    importer.login()
    form = {"upload": upload_id_of(location), "action": "add", "do": "continue", "csrf_token": old, **MAILCHIMP_FORM}
    refused = importer.client.post("/import/map", data=form, headers={"Origin": "http://testserver"})
    assert refused.status_code == 403 and "Map columns" in text_of(refused.text)
    assert selected(refused.text, "field.7") == "topic:news" and selected(refused.text, "type.5") == "number"
    assert f'value="{importer.csrf}"' in refused.text
    fresh = importer.client.get(location, follow_redirects=False)
    assert fresh.headers["location"].startswith("/import/map?")  # nothing remembered: still the names' mapping
    page = importer.client.get(fresh.headers["location"]).text
    assert "saved" not in text_of(page).lower() and selected(page, "field.7") != "topic:news"


def test_continue_remembers_the_mapping_then_dry_run_and_import_use_it(importer: Console) -> None:
    location = upload(importer, MAILCHIMP)
    upload_id = upload_id_of(location)
    response = importer.post("/import/map", {"upload": upload_id, "action": "add", "do": "continue", **MAILCHIMP_FORM})
    assert response.status_code == 303
    preview_url = response.headers["location"]
    maps = parse_qs(urlsplit(preview_url).query)["map"]
    assert "MEMBER_RATING=attribute:Rating:number" in maps and "Newsletter=topic:news" in maps
    page = importer.client.get(preview_url).text
    text = text_of(page)
    assert "Dry run" in text and "4 rows read" in text
    assert re.search(r'data-count="created">3<', page) and re.search(r'data-count="rejected">1<', page)
    assert "Email Address" in text and "there is no @" in text  # the rejected row: line, column, reason
    assert 'data-testid="mapping-summary"' in page and "change the mapping" in text
    hidden = re.findall(r'<input type="hidden" name="map" value="([^"]*)">', page)
    assert "MEMBER_RATING=attribute:Rating:number" in [html.unescape(v) for v in hidden]
    form = {"upload": upload_id, "action": "add", "map": [html.unescape(v) for v in hidden]}
    job_page = wait_done(importer, importer.post("/import/start", form).headers["location"])
    assert 'data-state="completed"' in job_page and re.search(r'data-count="created">3<', job_page)
    contact = importer.store.get_contact(importer.list_name, "bob.stone@example.org")
    assert json.loads(contact.attributes_data or "") == {"FirstName": "Bob", "LastName": "Stone, Jr.", "Rating": 2}
    assert dict(contact.topic_preferences) == {"news": "OPT_OUT"}
    rejects = importer.client.get(
        job_page.split('href="')[0] and re.search(r'href="(/import/jobs/[^"]+/rejects.csv)"', job_page).group(1)
    )  # type: ignore[union-attr]
    assert rejects.text.splitlines()[1] == "5,not-an-address,Email Address,there is no @"

    # The next file with the same columns (in another order) opens with the mapping remembered.
    reordered = b"First Name,Email Address,Last Name,Address,Phone Number,MEMBER_RATING,OPTIN_TIME,Newsletter,TAGS\n"
    location = upload(importer, reordered + b"Eve,eve@example.com,Moss,,,1,,yes,\n")
    page = importer.client.get(importer.client.get(location, follow_redirects=False).headers["location"]).text
    assert 'data-testid="saved-mapping"' in page
    assert selected(page, "field.1") == "email" and 'name="name.0" value="FirstName"' in page
    assert selected(page, "field.7") == "topic:news" and selected(page, "type.5") == "number"


def test_a_mapping_that_cannot_work_stays_on_the_step_with_the_reason(importer: Console) -> None:
    location = upload(importer, MAILCHIMP)
    form = {"upload": upload_id_of(location), "action": "add", "do": "continue", **MAILCHIMP_FORM, "field.0": "skip"}
    response = importer.post("/import/map", form)
    assert response.status_code == 400
    assert "This mapping cannot be used: no emailAddress column" in text_of(response.text)
    form = {**form, "field.0": "email", "field.1": "email"}
    response = importer.post("/import/map", form)
    assert response.status_code == 400
    assert "the columns 'Email Address' and 'First Name' are both the address" in text_of(response.text)
    assert importer.services.jobs.mappings.recall(MAILCHIMP.decode().splitlines()[0].split(",")) is None


def test_change_the_mapping_from_the_dry_run(importer: Console) -> None:
    location = upload(importer, b"mail,Score\nann@example.com,3\n")
    first = importer.client.get(importer.client.get(location, follow_redirects=False).headers["location"]).text
    assert selected(first, "field.0") == "email" and selected(first, "field.1") == "attribute"
    form = {"upload": upload_id_of(location), "do": "continue", "field.0": "email", "field.1": "attribute"}
    preview_url = importer.post("/import/map", {**form, "name.1": "Score", "type.1": "number"}).headers["location"]
    page = importer.client.get(preview_url).text
    change = html.unescape(re.search(r'href="(/import/map\?[^"]+)"', page).group(1))  # type: ignore[union-attr]
    again = importer.client.get(change).text
    assert selected(again, "type.1") == "number" and "Score 3" in text_of(again)


def test_the_mapping_step_escapes_the_file_s_names_and_values(importer: Console) -> None:
    location = upload(importer, b'email,<b>x</b>\nann@example.com,"<script>alert(1)</script>"\n')
    page = importer.client.get(importer.client.get(location, follow_redirects=False).headers["location"]).text
    assert "<script>alert(1)</script>" not in page and "<b>x</b>" not in page
    assert "&lt;script&gt;" in page


def test_the_mapping_form_needs_the_csrf_token(importer: Console) -> None:
    location = upload(importer, MAILCHIMP)
    response = importer.client.post(
        "/import/map",
        data={"upload": upload_id_of(location), "do": "continue", **MAILCHIMP_FORM},
        follow_redirects=False,
    )
    assert response.status_code == 403


def test_the_template_csv_has_the_page_s_columns_and_the_list_s_topics(importer: Console) -> None:
    page = importer.client.get("/import").text
    assert 'href="/import/template.csv"' in page
    response = importer.client.get("/import/template.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    lines = response.text.splitlines()
    assert lines[0] == "emailAddress,unsubscribeAll,attributesData,topicPreferences.news"
    location = upload(importer, response.content, name="template.csv")
    preview = importer.client.get(location, follow_redirects=False)
    assert preview.status_code == 200 and re.search(r'data-count="created">1<', preview.text)  # no mapping step


def test_a_column_without_a_name_is_skipped(importer: Console) -> None:
    location = upload(importer, b"email,name,\nann@example.com,Ann,\n")
    page = importer.client.get(importer.client.get(location, follow_redirects=False).headers["location"]).text
    assert "A column without a name is skipped." in page and 'name="field.2"' not in page
    form = {"upload": upload_id_of(location), "do": "continue", "field.0": "email", "field.1": "attribute"}
    preview_url = importer.post("/import/map", {**form, "name.1": "Name"}).headers["location"]
    assert "map=name%3Dattribute%3AName%3Astring" in preview_url
    assert re.search(r'data-count="created">1<', importer.client.get(preview_url).text)
