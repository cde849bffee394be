"""File modes under the usual umask: what another local user could read in the data directory.

Tests that check modes run under ``os.umask(0o022)`` (the common default, which makes new files 0644), so a
file created without an explicit mode shows up as group/world-readable.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path | str) -> int:
    """Permission bits of ``path`` itself (a symlink is not followed)."""
    return stat.S_IMODE(os.lstat(path).st_mode)


def loose(root: Path) -> dict[str, str]:
    """Every file or folder under ``root`` (itself included) that another user could read, with its mode."""
    found = {}
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink() and mode(path) & 0o077:
            found[str(path.relative_to(root))] = oct(mode(path))
    return found
