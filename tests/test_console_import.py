"""The Import Contacts dialog in process: streaming upload, size cap, preview and dry run, job, rejects."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sescontacts.model import ContactQuery

from .support.console import Console, fast_kdf_fixture  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures"
CSV = (
    b"emailAddress,unsubscribeAll,attributesData\n"
    b'john.doe@example.com,false,"{""Name"": ""John"", ""Company"": ""ACM Inc""}"\n'
    b'jane.smith@example.com,true,"{""Name"": ""Jane"", ""Company"": null}"\n'
    b"not-an-address,false,\n"
)


@pytest.fixture(name="importer")
def importer_fixture(tmp_path: Path) -> Iterator[Console]:
    console = Console(tmp_path / "data", max_upload_bytes=4096)
    console.services.start()  # the import worker
    yield console.login()
    console.services.close()


def upload(console: Console, content: bytes, name: str = "people.csv", action: str = "add") -> str:
    response = console.client.post(
        "/import/upload",
        files={"file": (name, content, "text/csv")},
        data={"csrf_token": console.csrf, "action": action},  # the token first, as the page's form sends it
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return response.headers["location"]


def wait_done(console: Console, url: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page = console.client.get(url).text
        state = re.search(r'data-state="(\w+)"', page).group(1)  # type: ignore[union-attr]
        if state not in ("queued", "running"):
            return page
        time.sleep(0.05)  # polling the job record the worker updates, as the dialog does
    raise AssertionError("import did not finish")


def test_upload_streams_to_the_uploads_folder_and_previews_a_dry_run(importer: Console) -> None:
    location = upload(importer, CSV)
    upload_id = re.search(r"upload=([0-9a-f]{32})", location).group(1)  # type: ignore[union-attr]
    stored = importer.services.settings.data_dir / "uploads" / upload_id / "people.csv"
    assert stored.read_bytes() == CSV
    preview = importer.client.get(location).text
    text = html.unescape(re.sub(r"<[^>]+>", " ", preview))
    assert "Dry run" in text and "3 rows read; nothing has been written yet" in text
    assert re.search(r'data-count="created">2<', preview) and re.search(r'data-count="rejected">1<', preview)
    assert "there is no @" in text and "john.doe@example.com" in text
    assert importer.store.count_contacts(importer.list_name, ContactQuery()).value == 0  # dry run wrote nothing


def test_import_runs_as_a_job_with_progress_rejects_and_history(importer: Console) -> None:
    location = upload(importer, CSV)
    upload_id = re.search(r"upload=([0-9a-f]{32})", location).group(1)  # type: ignore[union-attr]
    started = importer.post("/import/start", {"upload": upload_id, "action": "add"})
    job_url = started.headers["location"]
    assert job_url.startswith("/import/jobs/")
    page = wait_done(importer, job_url)
    assert 'data-state="completed"' in page
    fragment = importer.client.get(job_url, headers={"HX-Request": "true", "HX-Target": "job-progress"}).text
    assert fragment.startswith('<div id="job-progress"') and "every 1s" not in fragment  # polling stops
    rejects = importer.client.get(job_url + "/rejects.csv")
    assert rejects.status_code == 200 and "not-an-address" in rejects.text and "there is no @" in rejects.text
    assert "attachment" in rejects.headers["content-disposition"]
    jane = importer.store.get_contact(importer.list_name, "jane.smith@example.com")
    assert jane.unsubscribe_all and jane.attributes() == {"Name": "Jane", "Company": None}
    history = importer.client.get("/import").text
    assert "people.csv" in history and "completed" in history
    # the same file with Delete contacts removes them
    location = upload(importer, CSV, action="delete")
    assert "action=delete" in location
    upload_id = re.search(r"upload=([0-9a-f]{32})", location).group(1)  # type: ignore[union-attr]
    started = importer.post("/import/start", {"upload": upload_id, "action": "delete"})
    wait_done(importer, started.headers["location"])
    assert importer.store.count_contacts(importer.list_name, ContactQuery()).value == 0


def test_upload_over_the_cap_is_refused_with_a_clear_message(importer: Console) -> None:
    big = b"emailAddress\n" + b"someone@example.com\n" * 400  # 8 KB, the cap is 4 KiB
    response = importer.client.post(
        "/import/upload", files={"file": ("big.csv", big, "text/csv")}, headers={"X-CSRF-Token": importer.csrf}
    )
    assert response.status_code == 413
    assert "larger than the 4.0 KiB limit" in html.unescape(response.text)
    assert "--max-upload-mb" in response.text
    assert not list((importer.services.settings.data_dir / "uploads").iterdir())  # nothing left behind


def test_upload_without_a_file_is_a_message(importer: Console) -> None:
    response = importer.client.post(
        "/import/upload", files={"file": ("empty.csv", b"", "text/csv")}, headers={"X-CSRF-Token": importer.csrf}
    )
    assert response.status_code == 400 and "Choose a CSV or JSON file" in response.text


def test_unknown_job_and_upload(importer: Console) -> None:
    assert importer.client.get("/import/jobs/nope").status_code == 404
    response = importer.client.get("/import/preview?upload=../../etc", follow_redirects=False)
    assert response.status_code == 303


@pytest.mark.parametrize(
    ("given", "safe"),
    [("../../etc/passwd", "passwd"), ("C:\\Users\\x\\list.csv", "list.csv"), ("<b>.csv", "_b_.csv"), ("...", "upload")],
)
def test_uploaded_file_names_cannot_escape_the_uploads_folder(given: str, safe: str) -> None:
    from sescontacts.console.uploads import safe_file_name

    assert safe_file_name(given) == safe


def test_a_running_import_is_shown_on_the_contacts_page(tmp_path: Path) -> None:
    from sescontacts.bulk.report import ImportOptions

    console = Console(tmp_path / "data").login()  # no worker started: the job stays queued
    file = tmp_path / "queued.csv"
    file.write_bytes(CSV)
    job = console.services.jobs.submit(file, ImportOptions(contact_list=console.list_name), file_name="queued.csv")
    page = console.client.get("/").text
    assert "Importing <strong>queued.csv</strong>" in page and f"/import/jobs/{job.id}" in page
    console.services.close()


def test_the_job_page_counts_rows_kept_opted_out(importer: Console) -> None:
    """The product's import keeps an explicit topic opt-out as it keeps unsubscribe-all; the job page counts
    both, and the dialog's option says that it lifts both."""
    from sescontacts.model import Contact, Topic

    importer.store.update_list(importer.list_name, topics=[Topic("news", "News")])
    importer.store.create_contact(importer.list_name, Contact("out@example.com", topic_preferences={"news": "OPT_OUT"}))
    page = importer.client.get("/import").text
    assert "Let the file opt contacts back in (unsubscribe-all and topic opt-outs)" in html.unescape(page)
    location = upload(importer, b"emailAddress,topicPreferences.news\nout@example.com,OPT_IN\n")
    assert re.search(r'data-count="kept_opted_out">1<', importer.client.get(location).text)  # the dry run
    upload_id = re.search(r"upload=([0-9a-f]{32})", location).group(1)  # type: ignore[union-attr]
    page = wait_done(
        importer, importer.post("/import/start", {"upload": upload_id, "action": "add"}).headers["location"]
    )
    assert re.search(r'data-count="kept_opted_out">1<', page) and "Kept opted out" in page
    assert dict(importer.store.get_contact(importer.list_name, "out@example.com").topic_preferences) == {
        "news": "OPT_OUT"
    }


def test_a_suppression_list_import_job_says_so_on_the_contacts_and_job_pages(tmp_path: Path) -> None:
    """Issue 12: a CreateImportJob into the account's suppression list runs on the same engine; the console
    must not call it an import of contacts."""
    from sescontacts.bulk.report import ImportOptions
    from sescontacts.bulk.suppression_import import SUPPRESSION_KIND, SUPPRESSION_LIST

    console = Console(tmp_path / "data").login()  # no worker started: the job stays queued
    file = tmp_path / "suppress.csv"
    file.write_text("ann@example.com,BOUNCE\n")
    options = ImportOptions(contact_list=SUPPRESSION_LIST, action="delete", format="csv")
    job = console.services.jobs.submit(file, options, file_name="s3://b/suppress.csv", kind=SUPPRESSION_KIND)
    page = console.client.get("/").text
    assert "Importing <strong>s3://b/suppress.csv</strong> (delete, the suppression list)" in page
    job_page = " ".join(html.unescape(console.client.get(f"/import/jobs/{job.id}").text).split())
    assert "· Remove from the account's suppression list" in job_page and "Delete contacts" not in job_page
    console.services.close()
