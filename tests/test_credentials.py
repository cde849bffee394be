"""The local SES API's access keys: generated once, private to the user, overridable, never printed by repr."""

from __future__ import annotations

import json
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sescontacts.credentials import FILE_NAME, load_or_create
from tests.support.modes import mode, usual_umask


def test_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_or_create(tmp_path / "data", environ={})
    second = load_or_create(tmp_path / "data", environ={})
    assert (first.access_key_id, first.secret_access_key) == (second.access_key_id, second.secret_access_key)
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", first.access_key_id)
    assert len(first.secret_access_key) == 40
    assert first.source == str(tmp_path / "data" / FILE_NAME)
    stored = json.loads((tmp_path / "data" / FILE_NAME).read_text())
    assert stored == {"access_key_id": first.access_key_id, "secret_access_key": first.secret_access_key}


def test_each_data_dir_gets_its_own_keys(tmp_path: Path) -> None:
    a, b = load_or_create(tmp_path / "a", environ={}), load_or_create(tmp_path / "b", environ={})
    assert a.access_key_id != b.access_key_id and a.secret_access_key != b.secret_access_key


def test_file_is_readable_by_the_owner_only(tmp_path: Path) -> None:
    load_or_create(tmp_path, environ={})
    assert stat.S_IMODE((tmp_path / FILE_NAME).stat().st_mode) == 0o600


def test_environment_overrides_and_writes_nothing(tmp_path: Path) -> None:
    env = {"SESCONTACTS_ACCESS_KEY_ID": "AKIAFROMENV", "SESCONTACTS_SECRET_ACCESS_KEY": "env-secret"}
    key = load_or_create(tmp_path, environ=env)
    assert (key.access_key_id, key.secret_access_key) == ("AKIAFROMENV", "env-secret")
    assert "SESCONTACTS_ACCESS_KEY_ID" in key.source
    assert not (tmp_path / FILE_NAME).exists()


def test_environment_override_wins_over_a_stored_file(tmp_path: Path) -> None:
    stored = load_or_create(tmp_path, environ={})
    env = {"SESCONTACTS_ACCESS_KEY_ID": "AKIAFROMENV", "SESCONTACTS_SECRET_ACCESS_KEY": "env-secret"}
    assert load_or_create(tmp_path, environ=env).access_key_id == "AKIAFROMENV"
    assert load_or_create(tmp_path, environ={}).access_key_id == stored.access_key_id


def test_half_an_override_is_ignored(tmp_path: Path) -> None:
    key = load_or_create(tmp_path, environ={"SESCONTACTS_ACCESS_KEY_ID": "AKIAFROMENV"})
    assert key.access_key_id != "AKIAFROMENV"


def test_secret_not_in_repr_or_str(tmp_path: Path) -> None:
    key = load_or_create(tmp_path, environ={})
    assert key.secret_access_key not in repr(key)
    assert key.secret_access_key not in str(key)
    assert key.secret_access_key not in f"{key!r} {[key]} { ({'k': key}) }"
    assert key.access_key_id in repr(key)


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    """``sescontacts serve`` and ``sescontacts credentials`` started together must not crash or disagree."""
    with ThreadPoolExecutor(16) as pool:
        keys = list(pool.map(lambda _: load_or_create(tmp_path, environ={}), range(64)))
    assert len({(k.access_key_id, k.secret_access_key) for k in keys}) == 1
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]  # no temporary files left behind


def test_the_data_dir_it_creates_is_private_under_the_usual_umask(tmp_path: Path) -> None:
    with usual_umask():
        load_or_create(tmp_path / "data", environ={})
    assert mode(tmp_path / "data") == 0o700 and mode(tmp_path / "data" / FILE_NAME) == 0o600


def test_a_key_file_restored_readable_by_others_is_tightened(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, environ={})
    os.chmod(tmp_path / FILE_NAME, 0o644)
    assert load_or_create(tmp_path, environ={}).access_key_id == first.access_key_id
    assert mode(tmp_path / FILE_NAME) == 0o600
