"""Where the connect flow may send the user afterwards: only to allowed origins (RFC 9700
§4.11: no open redirectors)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlencode, urlsplit, urlunsplit

from ._exceptions import ValidationError

__all__ = [
    "check_callback_url",
    "is_loopback_host",
    "is_loopback_url",
    "with_query",
]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = parts.port if parts.port not in (None, default) else None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost`` or a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is this machine (``localhost`` or a loopback address)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return host is not None and is_loopback_host(host)


def check_callback_url(url: str, *, allowed_origins: Iterable[str], base_url: str) -> str:
    """``url`` if its origin is allowed (listed, the connect app's own, or loopback)."""
    if not isinstance(url, str) or len(url) > 2000:
        raise ValidationError("callback_url must be an absolute http(s) URL.", field="callback_url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it (RFC 3986 §3.2.3)
        parts.hostname  # noqa: B018 - and a bracketed host must be an IP literal (§3.2.2)
    except ValueError:
        raise ValidationError(
            "callback_url has an invalid port or host; give an absolute http(s) URL such as "
            "https://app.example.com/done.",
            field="callback_url",
        ) from None
    has_credentials = parts.username is not None or parts.password is not None
    if parts.scheme not in ("http", "https") or not parts.hostname or has_credentials:
        raise ValidationError(
            "callback_url must be an absolute http(s) URL without credentials.",
            field="callback_url",
        )
    allowed = {_origin(o) for o in allowed_origins} | {_origin(base_url)}
    if _origin(url) in allowed or is_loopback_host(parts.hostname):
        return url
    raise ValidationError(
        f"callback_url origin {_origin(url)} is not allowed. Add it to allowed_callback_origins "
        "(TOOLAUTH_ALLOWED_CALLBACK_ORIGINS) to send users there after connecting.",
        field="callback_url",
    )


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` added to its query string (existing ones kept)."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))
