"""Running the connect app: in the background for scripts, notebooks and tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from .._serve import serve_app

if TYPE_CHECKING:
    from .._client import AsyncToolAuth

__all__ = ["serve_client"]


@asynccontextmanager
async def serve_client(client: AsyncToolAuth, *, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``client``'s connect app; yields its URL. Without an explicit ``base_url`` the
    client's links point at this server while it runs."""
    await client.store()  # open (and migrate) before the first request arrives
    async with serve_app(client.asgi_app(), host=host, port=port) as url:
        before = client.settings
        if not before.base_url_explicit:
            client.settings = replace(before, base_url=url)
        try:
            yield url
        finally:
            client.settings = before
