"""Protected resource metadata: which authorization server guards an MCP server.

- RFC 9728, OAuth 2.0 Protected Resource Metadata:
  https://datatracker.ietf.org/doc/html/rfc9728
- RFC 6750 §3, the ``WWW-Authenticate: Bearer`` challenge (RFC 9728 §5.1 adds
  ``resource_metadata`` to it): https://datatracker.ietf.org/doc/html/rfc6750#section-3
- MCP authorization (2025-06-18, "Authorization Server Discovery"):
  https://modelcontextprotocol.io/specification/2025-06-18/basic/authorization

The server and every document it points at are untrusted input: each is read with the
deadline and size cap of :mod:`toolauth.oauth.calls` and checked before it is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from .._exceptions import ConfigurationError, ValidationError
from .._validation import check_server_url

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ProtectedResource",
    "bearer_challenge",
    "check_resource_metadata",
    "discover_protected_resource",
    "resource_metadata_urls",
]

_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class ProtectedResource:
    """What an MCP server's metadata says: its resource identifier and authorization servers."""

    resource: str
    authorization_servers: tuple[str, ...]
    metadata_url: str
    scopes_supported: tuple[str, ...] = ()


def bearer_challenge(header: str | None) -> dict[str, str] | None:
    """The parameters of a ``Bearer`` challenge in a ``WWW-Authenticate`` value (RFC 6750
    §3), e.g. ``{"resource_metadata": "...", "error": "invalid_token"}``; None without one."""
    if not header:
        return None
    at = header.lower().find("bearer")
    if at < 0:
        return None
    rest = header[at + len("bearer") :]
    nxt = re.search(r",\s*[A-Za-z][A-Za-z0-9_-]*\s+[A-Za-z0-9_-]+\s*=", rest)  # another scheme
    if nxt is not None:
        rest = rest[: nxt.start()]
    return {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM.finditer(rest)
    }


def resource_metadata_urls(server_url: str) -> list[str]:
    """Where a server's metadata may live without a ``resource_metadata`` hint, in order
    (RFC 9728 §3.1: the well-known suffix between host and path; then at the root)."""
    parts = urlsplit(server_url)
    path = parts.path.rstrip("/")
    urls = [
        urlunsplit(
            (parts.scheme, parts.netloc, f"/.well-known/oauth-protected-resource{path}", "", "")
        )
    ]
    if path:
        urls.append(
            urlunsplit(
                (parts.scheme, parts.netloc, "/.well-known/oauth-protected-resource", "", "")
            )
        )
    return urls


def _same_resource(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def check_resource_metadata(metadata: object, *, server_url: str, url: str) -> ProtectedResource:
    """``metadata`` (parsed JSON from ``url``) if it names ``server_url`` as its resource
    (RFC 9728 §3.3: a document for another resource MUST NOT be used) and lists at least one
    authorization server that is an https URL (http on loopback); a ``ValidationError``
    saying what is wrong otherwise."""
    if not isinstance(metadata, dict):
        raise ValidationError(
            f"The protected resource metadata at {url} is not a JSON object (RFC 9728 §3.2).",
            field="url",
        )
    resource = metadata.get("resource")
    if not isinstance(resource, str) or not _same_resource(resource, server_url):
        shown = repr(resource[:200]) if isinstance(resource, str) else type(resource).__name__
        raise ValidationError(
            f"The protected resource metadata at {url} names resource {shown}, not "
            f"{server_url!r}; refusing it (RFC 9728 §3.3). Check the server URL.",
            field="url",
        )
    servers = metadata.get("authorization_servers")
    if not isinstance(servers, list) or not servers or not all(isinstance(s, str) for s in servers):
        raise ValidationError(
            f"The protected resource metadata at {url} lists no authorization_servers "
            "(RFC 9728 §2; MCP servers that need OAuth must name one).",
            field="authorization_servers",
        )
    for server in servers:
        check_server_url(server, field=f"authorization server (in {url})", query=False)
    scopes = metadata.get("scopes_supported") or []
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ValidationError(
            f"scopes_supported in {url} must be a list of strings.", field="scopes_supported"
        )
    return ProtectedResource(
        resource=resource,
        authorization_servers=tuple(s.rstrip("/") for s in servers),
        metadata_url=url,
        scopes_supported=tuple(scopes),
    )


async def _probe(http: httpx.AsyncClient, server_url: str, deadline: float | None) -> str | None:
    """Send the server an unauthenticated MCP ``ping`` (it creates no session): the
    ``resource_metadata`` URL of a 401's Bearer challenge, ``""`` for a 401 without one, and
    None when the server did not ask for a token."""
    import anyio
    import httpx

    from .calls import call_deadline

    body = {"jsonrpc": "2.0", "id": 0, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    try:
        with anyio.fail_after(call_deadline(http, deadline)):
            response = await http.post(server_url, json=body, headers=headers)
            await response.aclose()
    except TimeoutError:
        raise ConfigurationError(f"The MCP server {server_url} did not answer in time.") from None
    except httpx.HTTPError as exc:
        raise ConfigurationError(
            f"Cannot reach the MCP server {server_url}: {exc.__class__.__name__}"
        ) from exc
    if response.status_code != 401:
        return None
    challenge = bearer_challenge(response.headers.get("www-authenticate")) or {}
    return challenge.get("resource_metadata", "")


async def discover_protected_resource(
    http: httpx.AsyncClient, server_url: str, *, deadline: float | None = None
) -> ProtectedResource | None:
    """The checked metadata of the MCP server at ``server_url`` (MCP authorization: the 401's
    ``resource_metadata``, else the RFC 9728 §3.1 well-known URLs), or None when the server
    answers without asking for a token and publishes no metadata (it needs no auth)."""
    from .calls import get_json  # loads httpx: `import toolauth` stays light

    server_url = check_server_url(server_url, field="url")
    hint = await _probe(http, server_url, deadline)
    tried: list[str] = []
    candidates = [hint] if hint else resource_metadata_urls(server_url)
    for url in candidates:
        check_server_url(url, field="resource_metadata (in the server's 401)")
        tried.append(url)
        found = await get_json(http, url, deadline=deadline)
        if found is not None:
            return check_resource_metadata(found.value, server_url=server_url, url=url)
    if hint is None:
        return None  # no 401 and no metadata: a server without auth
    raise ConfigurationError(
        f"The MCP server {server_url} asks for a token but publishes no protected resource "
        f"metadata (RFC 9728); tried {', '.join(tried)}."
    )
