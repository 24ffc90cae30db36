"""A client's life: a script that never closes it still exits (with a ResourceWarning), and a
closed client says so instead of quietly opening again."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from toolauth import AsyncToolAuth, ClientClosedError, Settings, ToolAuth


def test_a_script_that_never_closes_its_client_still_exits(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio
        from toolauth import AsyncToolAuth

        async def main():
            ta = AsyncToolAuth()          # no `async with`, no aclose()
            print(len(await ta.auth_configs.list()))

        asyncio.run(main())
        print("script ended")
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", "-c", script],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["0", "script ended"]
    assert "ResourceWarning: An AsyncToolAuth client was never closed" in done.stderr
    assert "async with AsyncToolAuth() as ta" in done.stderr


async def test_a_closed_async_client_does_not_reopen(settings: Settings) -> None:
    ta = AsyncToolAuth(settings=settings)
    await ta.auth_configs.list()
    await ta.aclose()
    with pytest.raises(ClientClosedError, match="closed; create a new one"):
        await ta.auth_configs.list()
    with pytest.raises(ClientClosedError):
        async with ta:
            pass
    await ta.aclose()  # twice is fine


async def test_a_closed_client_never_opened_does_not_open(settings: Settings) -> None:
    ta = AsyncToolAuth(settings=settings)
    await ta.aclose()
    with pytest.raises(ClientClosedError):
        await ta.create("u1").toolkits()
    assert not (settings.home / "toolauth.db").exists()


def test_a_closed_sync_client_says_so(settings: Settings) -> None:
    ta = ToolAuth(settings=settings)
    ta.auth_configs.list()
    ta.close()
    with pytest.raises(ClientClosedError, match="closed"):
        ta.auth_configs.list()
