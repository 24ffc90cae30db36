"""Putting a connected account's credentials onto an outgoing request."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Mapping, Sequence

import httpx
from pydantic import SecretStr

from ..catalog import CredentialPlacement
from ..catalog.templates import render

__all__ = ["apply_placements", "credential_values"]

_REDACTED = "REDACTED"


class _QueryCredentialFilter(logging.Filter):
    """httpx logs every request's URL at INFO (``HTTP Request: GET https://…?key=…``): this
    hides the values of the query parameters toolauth put credentials in (RFC 6750 §5.3:
    URLs end up in logs)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: frozenset[str] = frozenset()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.names and isinstance(record.args, tuple):
            record.args = tuple(
                self._redact(a) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True

    def _redact(self, url: httpx.URL) -> httpx.URL:
        for name in self.names & set(url.params.keys()):
            url = url.copy_set_param(name, _REDACTED)
        return url


_query_filter = _QueryCredentialFilter()
_query_lock = threading.Lock()


def _hide_in_logs(name: str) -> None:
    if name in _query_filter.names:
        return
    with _query_lock:
        if not _query_filter.names:
            logging.getLogger("httpx").addFilter(_query_filter)
        _query_filter.names = _query_filter.names | {name}


def credential_values(
    credentials: Mapping[str, SecretStr], data: Mapping[str, object]
) -> dict[str, str]:
    """Every value a placement template may use: the plain fields and the secrets."""
    values = {k: str(v) for k, v in data.items() if isinstance(v, (str, int))}
    values.update({k: v.get_secret_value() for k, v in credentials.items()})
    return values


def apply_placements(
    request: httpx.Request, placements: Sequence[CredentialPlacement], values: Mapping[str, str]
) -> None:
    """Set each placement's header, query parameter or Basic credentials on ``request``."""
    for placement in placements:
        if placement.in_ == "basic":
            user = render(placement.username or "", values, what="Basic auth")
            password = render(placement.password or "", values, what="Basic auth")
            pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            request.headers["Authorization"] = f"Basic {pair}"
        elif placement.in_ == "header":
            value = render(placement.format or "", values, what=f"header {placement.name}")
            request.headers[placement.name or ""] = value
        else:
            value = render(placement.format or "", values, what=f"query {placement.name}")
            _hide_in_logs(placement.name or "")
            request.url = request.url.copy_merge_params({placement.name or "": value})
