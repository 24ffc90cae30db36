"""Running the connect app: in the background for scripts, notebooks and tests."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .serving import serve_app

if TYPE_CHECKING:
    from .._client import AsyncToolAuth

__all__ = ["AccessLogFilter", "CallbackQueryFilter", "redact_path", "serve_client"]

# A link id in a URL is the link itself (whoever holds it may open it): never logged.
_LINK_ID = re.compile(r"(?<=/)ln_[A-Za-z0-9_-]+")


def redact_path(path: str) -> str:
    """``path`` fit for a log: every query string and every link id replaced."""
    base, has_query, _ = path.partition("?")
    return _LINK_ID.sub("[link]", base) + ("?[redacted]" if has_query else "")


class AccessLogFilter(logging.Filter):
    """Keeps secrets out of uvicorn's access log on every route: link ids in paths, and query
    strings (the callback's code and state; single-use, but a log is the wrong place)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


CallbackQueryFilter = AccessLogFilter  # the name earlier releases exported


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
