"""Running the connect app: in the background for scripts, notebooks and tests."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .serving import serve_app

if TYPE_CHECKING:
    from .._client import AsyncToolAuth

__all__ = ["CallbackQueryFilter", "serve_client"]


class CallbackQueryFilter(logging.Filter):
    """Keeps the authorization code and state of ``/oauth/callback`` out of uvicorn's access
    log: they are single-use, but a log is the wrong place for them."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = args[2]
            if "/oauth/callback?" in path:
                record.args = (*args[:2], path.split("?", 1)[0] + "?[redacted]", *args[3:])
        return True


@asynccontextmanager
async def serve_client(
    client: AsyncToolAuth, *, host: str, port: int, access_log: bool = False
) -> AsyncIterator[str]:
    """Serve ``client``'s connect app; yields its URL. Without an explicit ``base_url`` the
    client's links point at this server while it runs."""
    await client.store()  # open (and migrate) before the first request arrives
    async with serve_app(client.asgi_app(), host=host, port=port, access_log=access_log) as url:
        client.urls.serving_at(url)
        try:
            yield url
        finally:
            client.urls.serving_at(None)
