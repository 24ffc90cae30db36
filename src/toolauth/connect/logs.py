"""What the connect app writes to logs: never a link id (the URL is the link) nor a query
string (the callback's code and state, a confirmation code).

:class:`AccessLogFilter` goes on uvicorn's access logger by itself wherever toolauth makes a
connect app (``ta.asgi_app()``, ``ta.serve()``, ``toolauth serve``): in that process, every
access line has its link ids replaced by ``[link]`` and its query string by ``[redacted]``,
whichever app served the request.
"""

from __future__ import annotations

import logging
import re

__all__ = ["AccessLogFilter", "install_access_log_filter", "redact_path"]

# A link id in a URL is the link itself (whoever holds it may open it): never logged. Any
# segment after /link/ or /links/ is taken for one, whatever it looks like (a mistyped or
# percent-encoded id may still be the link), and so is an ``ln_...`` token anywhere.
_AFTER_LINK = re.compile(r"(?<=/link/)[^/?#]+|(?<=/links/)[^/?#]+")
_LINK_ID = re.compile(r"ln_[A-Za-z0-9_%-]+")


def redact_path(path: str) -> str:
    """``path`` fit for a log: every query string and every link id replaced."""
    base, has_query, _ = path.partition("?")
    base = _LINK_ID.sub("[link]", _AFTER_LINK.sub("[link]", base))
    return base + ("?[redacted]" if has_query else "")


class AccessLogFilter(logging.Filter):
    """Keeps secrets out of uvicorn's access log on every route: link ids in paths, and query
    strings (the callback's code and state; single-use, but a log is the wrong place)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def install_access_log_filter() -> None:
    """Put an :class:`AccessLogFilter` on ``uvicorn.access`` (once per process)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogFilter) for f in logger.filters):
        logger.addFilter(AccessLogFilter())
