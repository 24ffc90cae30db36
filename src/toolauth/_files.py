"""Files that hold secrets: the home folder is private (0700), the key file and the SQLite
database are the owner's alone (0600). A home others can read is reported, not changed."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["private_file", "private_folder"]

log = logging.getLogger("toolauth.files")


def private_folder(path: Path) -> None:
    """Make ``path`` (and missing parents) with mode 0700; warn when it already exists and
    its group or others may read it."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "%s holds toolauth's secrets but others may read it (mode %o): run `chmod 700 %s`.",
            path, mode, path,
        )  # fmt: skip


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (its folder private too)."""
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
