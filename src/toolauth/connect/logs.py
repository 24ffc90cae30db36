"""What the connect app writes to logs: never a link id (the URL is the link) nor a query
string (the callback's code and state)."""

from __future__ import annotations

import logging
import re

__all__ = ["AccessLogFilter", "redact_path"]

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
