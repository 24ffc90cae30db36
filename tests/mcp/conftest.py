"""A real remote MCP server for the MCP toolkit tests: the Notes server (``mcp`` SDK,
streamable HTTP) on a loopback port, an OAuth protected resource whose tokens come from the
demo provider (served by ``served_provider``). Runs on every store backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Backend, InBackground, ServedProvider
from tests.helpers import free_port
from toolauth import AsyncToolAuth, Settings
from toolauth.connect.serving import serve_app
from toolauth.demo.notes_mcp import NotesStore, notes_app
from toolauth.demo.provider import DemoProvider


@pytest.fixture
def store_env(backend: Backend) -> dict[str, str]:
    return backend.env


@dataclass
class Notes:
    """The served Notes MCP server, its provider, and a toolauth client serving its connect
    app with the server registered as toolkit ``notes``."""

    ta: AsyncToolAuth
    url: str
    provider: DemoProvider
    provider_url: str
    store: NotesStore
    base_url: str


@pytest.fixture
async def notes(
    home: Path,
    served_provider: ServedProvider,
    store_env: dict[str, str],
    extra_env: dict[str, str],
) -> AsyncIterator[Notes]:
    provider, provider_url = served_provider.demo, served_provider.url
    store = NotesStore()
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    app = notes_app(url, issuer=provider_url, introspect=provider.introspect, store=store)
    settings = Settings.from_env({"TOOLAUTH_HOME": str(home), **store_env, **extra_env})
    async with (
        InBackground(serve_app(app, port=port)),
        AsyncToolAuth(settings=settings) as ta,
        ta.serve(port=0) as base_url,
    ):
        await ta.toolkits.add_mcp("notes", url=url, name="Notes")
        yield Notes(ta, url, provider, provider_url, store, base_url)
