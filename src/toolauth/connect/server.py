"""Running the connect app: in the background for scripts, notebooks and tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .app import check_binding
from .logs import AccessLogFilter, redact_path
from .serving import serve_app, served_url

if TYPE_CHECKING:
    from .._client import AsyncToolAuth

__all__ = ["AccessLogFilter", "CallbackQueryFilter", "redact_path", "serve_client"]

CallbackQueryFilter = AccessLogFilter  # the name earlier releases exported


@asynccontextmanager
async def serve_client(
    client: AsyncToolAuth, *, host: str, port: int, access_log: bool = False
) -> AsyncIterator[str]:
    """Serve ``client``'s connect app; yields its URL. Without an explicit ``base_url`` the
    client's links point at this server while it runs."""
    if not client.settings.base_url_explicit:  # links will point at the served URL
        check_binding(client.settings, served_url(host, port), verify_user=False)
    await client.store()  # open (and migrate) before the first request arrives
    async with serve_app(client.asgi_app(), host=host, port=port, access_log=access_log) as url:
        client.urls.serving_at(url)
        try:
            yield url
        finally:
            client.urls.serving_at(None)
