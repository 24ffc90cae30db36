"""Where webhooks may go: absolute http(s) URLs without credentials (as callback URLs), https
unless the target is allowed to be private, and never loopback, private, link-local or
otherwise non-public addresses unless ``TOOLAUTH_WEBHOOK_ALLOW_PRIVATE`` is set (an endpoint
URL must not turn toolauth into a way to reach the internal network: SSRF)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from .._exceptions import ValidationError

__all__ = ["RefusedTargetError", "check_endpoint_url", "is_public_address", "refused"]


class RefusedTargetError(Exception):
    """A delivery's target may not be sent to: it resolves to a non-public address, or not
    at all (the message says which, and never holds a secret)."""


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_endpoint_url(url: str, *, allow_private: bool) -> str:
    """``url`` when webhooks may be sent there (a literal address is judged now; host names
    are resolved and judged again at each delivery)."""
    if not isinstance(url, str) or len(url) > 2000:
        raise ValidationError("url must be an absolute https URL.", field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it (RFC 3986 §3.2.3)
        host = parts.hostname
    except ValueError:
        raise ValidationError(
            "url has an invalid port or host; give an absolute https URL such as "
            "https://app.example.com/webhooks/toolauth.",
            field="url",
        ) from None
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        raise ValidationError(
            "url must be an absolute http(s) URL without credentials.", field="url"
        )
    if parts.fragment:
        raise ValidationError("url must not have a #fragment.", field="url")
    if not allow_private:
        if parts.scheme != "https":
            raise ValidationError(
                "url must use https (plain http is allowed only for private targets, with "
                "TOOLAUTH_WEBHOOK_ALLOW_PRIVATE=1).",
                field="url",
            )
        if host == "localhost" or host.endswith(".localhost") or _private_literal(host):
            raise ValidationError(
                f"url points at a loopback or private address ({host}); webhooks go to public "
                "hosts only. Set TOOLAUTH_WEBHOOK_ALLOW_PRIVATE=1 to allow private targets "
                "(tests, an internal receiver).",
                field="url",
            )
    return url


def _private_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return not is_public_address(host)


def refused(addresses: Iterable[str]) -> list[str]:
    """Of the addresses a host name resolved to, those that are not public."""
    return [a for a in addresses if not is_public_address(a)]
