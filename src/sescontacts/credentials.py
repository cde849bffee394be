"""The access key pair the local SES API accepts (SigV4).

From ``SESCONTACTS_ACCESS_KEY_ID`` / ``SESCONTACTS_SECRET_ACCESS_KEY`` when set; otherwise generated once on
first start and kept in ``<data dir>/credentials.json`` with 0600 permissions. Never logged.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from .private_files import make_private_dir, open_private, tighten

FILE_NAME = "credentials.json"


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str
    source: str  # where it came from, for the console's AWS API page and `sescontacts credentials`

    def __repr__(self) -> str:  # keep the secret out of tracebacks and logs
        return f"AccessKey(access_key_id={self.access_key_id!r}, source={self.source!r})"


def _generate() -> tuple[str, str]:
    alphabet = string.ascii_uppercase + string.digits
    key_id = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
    secret = secrets.token_urlsafe(30)[:40]
    return key_id, secret


def load_or_create(data_dir: Path, environ: dict[str, str] | None = None) -> AccessKey:
    env = os.environ if environ is None else environ
    key_id, secret = env.get("SESCONTACTS_ACCESS_KEY_ID"), env.get("SESCONTACTS_SECRET_ACCESS_KEY")
    if key_id and secret:
        return AccessKey(key_id, secret, "environment (SESCONTACTS_ACCESS_KEY_ID / SESCONTACTS_SECRET_ACCESS_KEY)")
    path = data_dir / FILE_NAME
    if not path.exists():
        _create(path)
    tighten(path)  # a copy restored from a backup may have come back 0644
    return AccessKey(*_read(path), str(path))


class DamagedCredentialsFile(OSError):
    """credentials.json is there but holds no key pair (emptied by a full disk, truncated, hand-edited).

    An OSError naming the file, so that whatever reports a data-dir file it cannot open says this one too,
    in one line, instead of a JSONDecodeError traceback.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(
            errno.EINVAL,
            "it holds no access key pair (damaged?); restore it from a backup, or remove it to generate new keys",
            str(path),
        )


def _read(path: Path) -> tuple[str, str]:
    try:
        data = json.loads(path.read_bytes())
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
        raise DamagedCredentialsFile(path) from None
    key_id, secret = (
        (data.get("access_key_id"), data.get("secret_access_key")) if isinstance(data, dict) else (None, None)
    )
    if not (isinstance(key_id, str) and key_id and isinstance(secret, str) and secret):
        raise DamagedCredentialsFile(path)
    return key_id, secret


def _create(path: Path) -> None:
    """Write a new key pair to a private temporary file, then link it into place.

    The link is atomic and fails if the file exists, so two processes starting at once (``serve`` and
    ``credentials``) agree on one key pair, and nobody ever reads a half-written file.
    """
    make_private_dir(path.parent)
    key_id, secret = _generate()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        with open_private(temporary) as handle:
            handle.write(json.dumps({"access_key_id": key_id, "secret_access_key": secret}).encode())
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race: use its keys
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
