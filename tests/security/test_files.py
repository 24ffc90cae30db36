"""The files that hold secrets are the owner's alone: TOOLAUTH_HOME 0700, the key file and
the SQLite database (and its WAL) 0600; a home others may read is reported."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from toolauth import AsyncToolAuth


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_home_and_its_files_are_private(tmp_path: Path) -> None:
    home = tmp_path / "deep" / "home"
    async with AsyncToolAuth(home=home) as ta:
        await ta.auth_configs.create("openai")
        assert mode(home) == 0o700
        files = {p.name: mode(p) for p in home.iterdir()}
    assert files["encryption.key"] == 0o600
    assert files["toolauth.db"] == 0o600
    assert all(m & 0o077 == 0 for m in files.values()), files  # -wal and -shm too


async def test_a_home_others_can_read_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "shared"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    caplog.set_level(logging.WARNING, logger="toolauth.files")
    async with AsyncToolAuth(home=home) as ta:
        await ta.auth_configs.list()
    warned = [r.getMessage() for r in caplog.records if r.name == "toolauth.files"]
    assert warned and f"chmod 700 {home}" in warned[0] and "755" in warned[0]
    assert mode(home) == 0o755  # reported, not changed behind the owner's back
