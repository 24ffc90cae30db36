"""Authorization server metadata: where to find it and how to check it.

- RFC 8414, OAuth 2.0 Authorization Server Metadata:
  https://datatracker.ietf.org/doc/html/rfc8414
- OpenID Connect Discovery 1.0: https://openid.net/specs/openid-connect-discovery-1_0.html
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .._exceptions import ConfigurationError

if TYPE_CHECKING:
    import httpx

__all__ = ["fetch_metadata", "metadata_urls"]


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may live, in the order to try them.

    RFC 8414 §3.1 inserts ``/.well-known/oauth-authorization-server`` between host and path;
    OpenID Connect Discovery 1.0 §4 appends ``/.well-known/openid-configuration``.
    """
    parts = urlsplit(issuer.rstrip("/"))
    path = parts.path
    rfc8414 = urlunsplit(
        (parts.scheme, parts.netloc, f"/.well-known/oauth-authorization-server{path}", "", "")
    )
    oidc = urlunsplit(
        (parts.scheme, parts.netloc, f"{path}/.well-known/openid-configuration", "", "")
    )
    return [rfc8414, oidc]


async def fetch_metadata(http: httpx.AsyncClient, issuer: str) -> dict[str, Any]:
    """``issuer``'s metadata, checked to name that issuer and its two endpoints
    (`RFC 8414, Section 3 <https://datatracker.ietf.org/doc/html/rfc8414#section-3>`_)."""
    import httpx  # loaded on first use: `import toolauth` stays light

    metadata: dict[str, Any] | None = None
    tried = []
    for url in metadata_urls(issuer):
        tried.append(url)
        try:
            response = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ConfigurationError(f"Cannot reach {url}: {exc.__class__.__name__}") from exc
        if response.status_code == 200:
            metadata = response.json()
            break
    if metadata is None:
        raise ConfigurationError(
            f"No OAuth metadata for issuer {issuer!r}; tried {', '.join(tried)}."
        )
    # RFC 8414 §3.3: the issuer in the metadata must be the one we asked for.
    if str(metadata.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise ConfigurationError(
            f"The metadata at {url} names issuer {metadata.get('issuer')!r}, not {issuer!r}; "
            "refusing it (RFC 8414 §3.3)."
        )
    for field in ("authorization_endpoint", "token_endpoint"):
        if not metadata.get(field):
            raise ConfigurationError(f"The metadata at {url} has no {field}.")
    return metadata
