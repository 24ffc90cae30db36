"""Shared fixtures: every test gets its own TOOLAUTH_HOME (a real folder with a real SQLite
file) and settings built from a clean environment, so the developer's shell never leaks in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from toolauth import AsyncToolAuth, Settings


def make_settings(home: Path, **env: str) -> Settings:
    return Settings.from_env({"TOOLAUTH_HOME": str(home), **env})


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path) -> Settings:
    return make_settings(
        home,
        TOOLAUTH_GITHUB_CLIENT_ID="managed-github-id",
        TOOLAUTH_GITHUB_CLIENT_SECRET="managed-github-secret-SENTINEL",
    )


@pytest.fixture
async def ta(settings: Settings) -> AsyncIterator[AsyncToolAuth]:
    async with AsyncToolAuth(settings=settings) as client:
        yield client
