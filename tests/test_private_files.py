"""Folders 0700, files 0600 whatever the umask; an existing data directory tightened; symlinks never followed."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sescontacts.bulk.job_manager import ImportOptions, Job
from sescontacts.console.uploads import receive_upload
from sescontacts.private_files import (
    SharedFolderError,
    ensure_private_file,
    make_private_dir,
    open_private,
    replacing,
    secure_data_dir,
)
from sescontacts.services import Services
from sescontacts.settings import Settings
from tests.support.modes import loose, mode, usual_umask

from .support.console import Console, TestClient, fast_kdf_fixture  # noqa: F401


@pytest.fixture(autouse=True)
def _umask_022() -> Iterator[None]:
    with usual_umask():
        yield


def test_folders_are_created_0700_and_existing_ones_are_left_alone(tmp_path: Path) -> None:
    """An existing folder may be shared (/tmp, for root): only the data directory is tightened, on start."""
    os.chmod(tmp_path, 0o1777)
    make_private_dir(tmp_path / "a" / "b" / "c")
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3
    make_private_dir(tmp_path)
    assert mode(tmp_path) == 0o1777


def test_a_file_where_a_folder_is_wanted_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError):
        make_private_dir(tmp_path / "f")


def test_new_files_are_0600_and_never_replace_or_follow_what_is_there(tmp_path: Path) -> None:
    with open_private(tmp_path / "new") as out:
        out.write(b"secret")
    assert mode(tmp_path / "new") == 0o600
    with pytest.raises(FileExistsError):
        open_private(tmp_path / "new")
    outside = tmp_path / "outside"
    outside.write_text("theirs")
    (tmp_path / "link").symlink_to(outside)
    with pytest.raises(FileExistsError):
        open_private(tmp_path / "link")
    with pytest.raises(OSError) as raised:
        open_private(tmp_path / "link", new=False)
    assert raised.value.errno == errno.ELOOP
    assert outside.read_text() == "theirs" and mode(outside) == 0o644


def test_reopening_a_loose_file_of_ours_tightens_it(tmp_path: Path) -> None:
    path = tmp_path / "rejects.csv"
    path.write_text("line\n")
    assert mode(path) == 0o644
    with open_private(path, "r+b", new=False) as f:
        assert f.read() == b"line\n"
    assert mode(path) == 0o600


def test_ensure_private_file_creates_or_tightens_and_keeps_content(tmp_path: Path) -> None:
    ensure_private_file(tmp_path / "db")
    assert mode(tmp_path / "db") == 0o600 and (tmp_path / "db").read_bytes() == b""
    (tmp_path / "old").write_bytes(b"data")
    ensure_private_file(tmp_path / "old")
    assert mode(tmp_path / "old") == 0o600 and (tmp_path / "old").read_bytes() == b"data"


def test_an_existing_data_dir_is_tightened_without_following_symlinks_or_touching_the_users_files(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    (data / "uploads" / "1234").mkdir(parents=True)
    (data / "uploads" / "1234" / "contacts.csv").write_text("emailAddress\n")
    (data / "sescontacts.db").write_text("")
    os.chmod(data / "sescontacts.db", 0o664)
    script = data / "hook.sh"
    script.write_text("#!/bin/sh\n")
    os.chmod(script, 0o755)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("not ours to change")
    (data / "link").symlink_to(outside)
    was_loose = {".", "uploads", "uploads/1234", "uploads/1234/contacts.csv", "sescontacts.db", "hook.sh"}
    assert set(loose(data)) == was_loose

    (data / "jobs").mkdir(mode=0o755)
    (data / "jobs" / "7.rejects.csv").write_text("line,reason\n")
    os.chmod(data / "jobs" / "7.rejects.csv", 0o644)
    (data / "sescontacts.db-wal").write_text("")
    os.chmod(data / "sescontacts.db-wal", 0o644)

    assert secure_data_dir(data) == 8
    assert loose(data) == {"hook.sh": "0o755"}  # the user's own file in the folder is not ours to change
    assert mode(data) == 0o700 and mode(data / "uploads" / "1234" / "contacts.csv") == 0o600
    assert mode(data / "jobs") == 0o700 and mode(data / "jobs" / "7.rejects.csv") == 0o600
    assert mode(data / "sescontacts.db") == 0o600 and mode(data / "sescontacts.db-wal") == 0o600
    assert mode(outside) == 0o644
    assert secure_data_dir(data) == 0


def test_a_new_data_dir_is_created_private(tmp_path: Path) -> None:
    assert secure_data_dir(tmp_path / "new" / "data") == 0
    assert mode(tmp_path / "new") == 0o700 and mode(tmp_path / "new" / "data") == 0o700


def test_replacing_renames_a_private_file_over_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    target = tmp_path / "export.csv"
    target.symlink_to(victim)
    with replacing(target) as temporary:
        assert mode(temporary) == 0o600 and temporary.parent == tmp_path
        with open_private(temporary, new=False) as out:
            out.write(b"emailAddress\n")
    assert not target.is_symlink() and target.read_text() == "emailAddress\n" and mode(target) == 0o600
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv", "victim"]


def test_a_failed_replacement_leaves_the_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "export.csv"
    target.write_text("before")
    with pytest.raises(RuntimeError), replacing(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "before"
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]


def test_a_shared_folder_is_refused_as_data_dir_and_left_as_it_is(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o1777)
    with pytest.raises(SharedFolderError):
        secure_data_dir(tmp_path)
    assert mode(tmp_path) == 0o1777


# -- every place that writes under the data directory, under the usual umask --------------------------------


def test_services_a_job_its_rejects_and_its_scratch_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = tmp_path / "in.csv"
    source.write_text("emailAddress,unsubscribeAll\nok@example.com,false\nnope,true\n")
    services = Services.open(Settings(data_dir=data))
    during: dict[str, int] = {}

    def watch(job: Job) -> None:
        during.update({p.name.split(".", 1)[1]: mode(p) for p in (data / "jobs").iterdir()})

    try:
        services.ensure_default_list()
        services.jobs.batch_rows = services.jobs.commit_rows = 1  # watched after the first row: scratch files open
        job = services.jobs.submit(source, ImportOptions("contacts"), file_name="in.csv", run_here=True)
        done = services.jobs.run(job.id, progress=watch)
        assert done.rejected == 1 and done.rejects_path is not None
        assert during == {"rejects.csv": 0o600, "seen.db": 0o600, "seen.db-wal": 0o600, "seen.db-shm": 0o600}
        assert mode(data) == 0o700 and mode(data / "jobs") == 0o700
        assert {"sescontacts.db-wal", "sescontacts.db-shm", "credentials.json"} <= {p.name for p in data.iterdir()}
        assert loose(data) == {}
    finally:
        services.close()


def test_uploads_are_private(tmp_path: Path) -> None:
    async def receive(request: Request) -> PlainTextResponse:
        upload = await receive_upload(request, tmp_path / "data", max_bytes=1 << 20)
        return PlainTextResponse(str(upload.path))

    client = TestClient(Starlette(routes=[Route("/upload", receive, methods=["POST"])]))
    response = client.post("/upload", files={"file": ("people.csv", b"emailAddress\na@example.com\n", "text/csv")})
    stored = Path(response.text)
    assert stored.read_bytes() == b"emailAddress\na@example.com\n"
    assert [mode(p) for p in (stored, stored.parent, stored.parent.parent)] == [0o600, 0o700, 0o700]


def test_objects_fetched_from_an_s3_endpoint_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from sescontacts.sesapi.s3source import download_source

    from .support.ses import run_moto

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    with run_moto() as moto_url:
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
        s3.create_bucket(Bucket="imports")
        s3.put_object(Bucket="imports", Key="in/people.csv", Body=b"emailAddress\na@example.com\n")
        path = download_source(
            Settings(data_dir=tmp_path / "data", s3_endpoint_url=moto_url), "imports", "in/people.csv"
        )
    assert path.read_bytes() == b"emailAddress\na@example.com\n"
    assert (mode(path), mode(path.parent)) == (0o600, 0o700)


def test_the_consoles_export_folder_is_private(tmp_path: Path) -> None:
    console = Console(tmp_path / "data").login()
    try:
        response = console.client.get("/export?format=csv")
        assert response.status_code == 200 and response.text.startswith("emailAddress")
        assert mode(tmp_path / "data" / "exports") == 0o700
    finally:
        console.services.close()
