"""Shared fixtures: every test gets its own TOOLAUTH_HOME (a real folder with a real SQLite
file) and settings built from a clean environment, so the developer's shell never leaks in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from toolauth import AsyncToolAuth, Settings
from toolauth._serve import serve_app
from toolauth.demo.provider import DemoProvider

DEMO_CLIENT_ID = "toolauth-tests"
DEMO_CLIENT_SECRET = "demo-client-secret-SENTINEL"


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


@pytest.fixture
async def provider() -> AsyncIterator[tuple[DemoProvider, str]]:
    """The demo OAuth provider on a free loopback port: (provider, its URL)."""
    demo = DemoProvider()
    async with serve_app(demo.app) as url:
        yield demo, url


@dataclass
class Connect:
    """A client whose connect app is served on loopback, next to the demo provider."""

    ta: AsyncToolAuth
    base_url: str
    provider: DemoProvider
    provider_url: str


@pytest.fixture
async def connect(home: Path, provider: tuple[DemoProvider, str]) -> AsyncIterator[Connect]:
    demo, provider_url = provider
    settings = make_settings(
        home,
        TOOLAUTH_DEMO_PROVIDER_URL=provider_url,
        TOOLAUTH_DEMO_CLIENT_ID=DEMO_CLIENT_ID,
        TOOLAUTH_DEMO_CLIENT_SECRET=DEMO_CLIENT_SECRET,
    )
    async with AsyncToolAuth(settings=settings) as ta, ta.serve(port=0) as base_url:
        demo.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [f"{base_url}/oauth/callback"])
        yield Connect(ta, base_url, demo, provider_url)
