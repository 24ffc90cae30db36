"""Authorization server metadata: where to find it and how to check it.

- RFC 8414, OAuth 2.0 Authorization Server Metadata:
  https://datatracker.ietf.org/doc/html/rfc8414
- OpenID Connect Discovery 1.0: https://openid.net/specs/openid-connect-discovery-1_0.html
- RFC 9700 §4.4 (mix-up) and §4.11 (open redirection): the metadata decides where users and
  client secrets are sent, so it is checked as hostile input.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .._exceptions import ConfigurationError, ValidationError
from .._validation import check_server_url

if TYPE_CHECKING:
    import httpx

__all__ = ["ENDPOINTS", "LISTS", "check_metadata", "fetch_metadata", "metadata_urls"]

ENDPOINTS = {
    "authorization_endpoint": True,  # required (RFC 8414 §2, for the code grant)
    "token_endpoint": True,
    "revocation_endpoint": False,
    "userinfo_endpoint": False,
    "registration_endpoint": False,  # RFC 8414 §2, for RFC 7591
}
LISTS = (
    "scopes_supported",
    "token_endpoint_auth_methods_supported",
    "code_challenge_methods_supported",
    "grant_types_supported",
)


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


def check_issuer(issuer: object) -> str:
    """An issuer identifier: an https URL (http on loopback) without query or fragment
    (RFC 8414 §2)."""
    return check_server_url(issuer, field="issuer", query=False)


def check_metadata(
    metadata: object, *, issuer: str, url: str, allowed_hosts: Iterable[str] = ()
) -> dict[str, Any]:
    """``metadata`` (parsed JSON from ``url``) if it is an object naming ``issuer`` whose
    endpoints are https URLs (http on loopback) on the issuer's host or one of
    ``allowed_hosts``, and whose lists are lists of strings; a ``ValidationError`` saying what
    is wrong otherwise."""
    if not isinstance(metadata, dict):
        raise ValidationError(
            f"The metadata at {url} is not a JSON object (RFC 8414 §3.2).", field="issuer"
        )
    named = metadata.get("issuer")
    # RFC 8414 §3.3: the issuer in the metadata must be the one we asked for.
    if not isinstance(named, str) or named.rstrip("/") != issuer.rstrip("/"):
        shown = repr(named[:200]) if isinstance(named, str) else type(named).__name__
        raise ValidationError(
            f"The metadata at {url} names issuer {shown}, not {issuer!r}; refusing it "
            "(RFC 8414 §3.3).",
            field="issuer",
        )
    host = urlsplit(issuer).hostname or ""
    hosts = {host, *allowed_hosts}
    for name, required in ENDPOINTS.items():
        value = metadata.get(name)
        if value is None and not required:
            continue
        if value is None or value == "":
            raise ValidationError(f"The metadata at {url} has no {name}.", field=name)
        check_server_url(value, field=f"{name} (in the metadata at {url})", hosts=hosts)
    for name in LISTS:
        value = metadata.get(name)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise ValidationError(
                f"{name} in the metadata at {url} must be a list of strings.", field=name
            )
    return metadata


async def fetch_metadata(
    http: httpx.AsyncClient,
    issuer: str,
    *,
    allowed_hosts: Iterable[str] = (),
    deadline: float | None = None,
) -> dict[str, Any]:
    """``issuer``'s metadata, checked (:func:`check_metadata`,
    `RFC 8414, Section 3 <https://datatracker.ietf.org/doc/html/rfc8414#section-3>`_).

    Each request has the overall deadline and the size cap of every call to an authorization
    server (:mod:`toolauth.oauth.calls`). An issuer that cannot be reached or publishes no
    metadata is a ``ConfigurationError``; metadata that is malformed or breaks the rules above
    is a ``ValidationError``.
    """

    from .calls import get_json  # needs httpx

    issuer = check_issuer(issuer)
    tried = []
    for url in metadata_urls(issuer):
        tried.append(url)
        found = await get_json(http, url, deadline=deadline, field="issuer")
        if found is None:
            continue
        return check_metadata(found.value, issuer=issuer, url=url, allowed_hosts=allowed_hosts)
    raise ConfigurationError(f"No OAuth metadata for issuer {issuer!r}; tried {', '.join(tried)}.")
