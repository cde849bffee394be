"""Files and folders only their owner can read: everything sescontacts writes holds secrets or personal data.

The data directory holds the console's session-signing secret, password hashes, the SES API keys and every
contact; the import files, rejects and exports hold addresses too. So every folder sescontacts creates is
0700 and every file 0600, whatever the umask, and an existing data directory is tightened to that
(``secure_data_dir``). Modes are set explicitly rather than trusting the process umask, so they hold for
library use (tests, ``Services.open``) as much as for the CLI, which also sets a 0o077 umask as a second line.

Files are opened with ``O_NOFOLLOW`` (and ``O_EXCL`` where a new file is meant): a symlink planted where we
are about to write makes the open fail instead of writing through it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

from .settings import DATABASE_FILE_NAME

DIR_MODE = 0o700
FILE_MODE = 0o600
# Permission bits for the group and other users: none of them may be set on what we create.
OTHERS = 0o077

_OPEN_FLAGS = {
    "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "w+b": os.O_RDWR | os.O_CREAT | os.O_TRUNC,
    "r+b": os.O_RDWR,
}


def make_private_dir(path: Path) -> Path:
    """``mkdir -p`` where every folder created is 0700 whatever the umask.

    Folders that already existed are left as they are: they may not be ours to change (a home directory, or
    /tmp when running as root). The data directory is tightened once, by ``secure_data_dir``.
    """
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first: tightened below
            os.mkdir(folder, DIR_MODE)  # never looser than 0700, even for an instant
            os.chmod(folder, DIR_MODE)  # and exactly 0700 even under a umask that strips owner bits
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a directory")
    return path


def open_private(path: Path, mode: Literal["wb", "w+b", "r+b"] = "wb", *, new: bool = True) -> IO[bytes]:
    """Open ``path`` as a binary file only its owner can read and write (0600 whatever the umask).

    ``new``: the file must not exist yet (``O_EXCL``), for names we just made up. Either way a symlink at
    ``path`` is refused (``O_NOFOLLOW``) rather than written through. An existing file of ours is tightened.
    """
    flags = _OPEN_FLAGS[mode] | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_EXCL if new else 0)
    fd = os.open(path, flags, FILE_MODE)
    try:
        _restrict(fd)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def ensure_private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist, or tighten it; its content is left alone.

    For files another library creates by name, SQLite first of all: it gives a database's ``-wal`` and
    ``-shm`` files the mode of the database file, so a 0600 database keeps its companions 0600 too.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        _restrict(fd)
    finally:
        os.close(fd)


def _restrict(fd: int) -> None:
    """0600 for a file we own that is looser (or, under a strange umask, lacks our own read/write)."""
    info = os.fstat(fd)
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & (OTHERS | FILE_MODE) != FILE_MODE:
        os.fchmod(fd, stat.S_IMODE(info.st_mode) & ~OTHERS | FILE_MODE)


def tighten(path: Path) -> bool:
    """Take group and other permissions off one file or folder of ours (never through a symlink).

    True when it changed something. Entries of other users are left alone: we could not change them anyway.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid() or not stat.S_IMODE(info.st_mode) & OTHERS:
        return False
    try:
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~OTHERS)
    except OSError:  # a file system without Unix modes: nothing we can do, and nothing to report
        return False
    return True


class SharedFolderError(Exception):
    """The data directory is a folder for everyone (sticky, like /tmp): it cannot be made private."""


# What sescontacts keeps at the top of a data directory: only these are tightened, with everything under the
# folders. A data dir pointed at a folder that also holds the user's own files (a home directory, a project)
# must not have those files' permissions changed behind the user's back.
OWN_FILE_PREFIXES = (DATABASE_FILE_NAME, "credentials.json")
OWN_FOLDERS = ("uploads", "jobs", "exports", "s3-downloads", "s3")


def secure_data_dir(data_dir: Path) -> int:
    """Create the data directory 0700, or tighten an existing one and what sescontacts keeps in it.

    Returns how many files and folders were readable (or writable) by other users and are no longer, so the
    caller can say so once. Symlinks are not followed: what they point to is not ours to change. Entries the
    user put there themselves (anything not named in OWN_FILE_PREFIXES / OWN_FOLDERS) are left alone.
    """
    data_dir = Path(data_dir)
    changed = 0
    if data_dir.is_dir():
        real = Path(os.path.realpath(data_dir))  # a symlinked data dir: the folder it points to is the data dir
        if real.stat().st_mode & stat.S_ISVTX:
            raise SharedFolderError(f"{data_dir} is a folder shared by all users; use a folder of its own in it")
        changed += tighten(real)
    make_private_dir(data_dir)
    for entry in os.scandir(data_dir):
        if entry.name.startswith(OWN_FILE_PREFIXES):
            changed += tighten(Path(entry.path))
        elif entry.name in OWN_FOLDERS and not entry.is_symlink():
            changed += tighten(Path(entry.path))
            for folder, dirs, files in os.walk(entry.path):
                for name in (*dirs, *files):
                    changed += tighten(Path(folder, name))
    return changed


@contextlib.contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A new empty 0600 file next to ``target``, renamed over it when the block ends without error.

    The rename replaces whatever is at ``target``, a symlink included, instead of writing through it; readers
    never see a half-written file; a failed block leaves ``target`` as it was. Open the yielded path with
    ``open_private(path, new=False)``.
    """
    target = Path(target)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
    open_private(temporary).close()
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
