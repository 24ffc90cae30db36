"""OAuth Client ID Metadata Documents: a client whose ``client_id`` is the URL of a JSON
document that describes it, so an authorization server needs no registration step.

- draft-ietf-oauth-client-id-metadata-document, OAuth Client ID Metadata Document:
  https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
- MCP authorization (2025-11-25), "Client ID Metadata Documents" and the order of preference
  of client registration mechanisms:
  https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization

The connect app serves each MCP toolkit's document at ``{base_url}/clients/<slug>.json``; the
document names the connect app's exact redirect URI and is a public client (PKCE, no secret).
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from .._callbacks import is_loopback_url
from ..catalog import ToolkitDefinition

__all__ = [
    "RegistrationMode",
    "client_metadata_document",
    "client_metadata_url",
    "registration_mode",
]

RegistrationMode = Literal["metadata_document", "dynamic", "manual", "none"]
"""How a managed auth config of an MCP toolkit gets its OAuth client on this deployment."""


def client_metadata_url(base_url: str, slug: str) -> str | None:
    """The ``client_id`` of toolkit ``slug``'s document under ``base_url``; ``None`` when
    ``base_url`` cannot serve one. The draft's "Client Identifier" rules: an https URL with a
    path, no fragment, no dot segments (and no query, a SHOULD we keep); http only on
    loopback, as everywhere here."""
    parts = urlsplit(base_url)
    if parts.query or parts.fragment or not parts.hostname:
        return None
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_url(base_url)):
        return None
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        return None
    return f"{base_url.rstrip('/')}/clients/{slug}.json"


def client_metadata_document(
    client_id: str, *, client_name: str, redirect_uri: str
) -> dict[str, Any]:
    """The document served at ``client_id`` (the draft's "Client Metadata": its
    ``client_id`` is the URL itself, simple string comparison). A public client:
    ``token_endpoint_auth_method`` ``none`` (shared-secret methods are forbidden there), so
    PKCE (RFC 7636) protects the code; ``redirect_uris`` is the connect app's one redirect
    URI (RFC 9700 §4.1.3)."""
    return {
        "client_id": client_id,
        "client_name": client_name,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }


def registration_mode(definition: ToolkitDefinition, base_url: str) -> RegistrationMode:
    """How a managed config of ``definition`` gets its client, in MCP's order of preference
    (a custom auth config's own client comes first and is not decided here): a client ID
    metadata document when the authorization server supports them and ``base_url`` can serve
    one, else dynamic registration (RFC 7591) when offered, else ``manual`` (a custom config or
    ``TOOLAUTH_<TOOLKIT>_CLIENT_ID``/``_SECRET``); ``none`` for a server without auth."""
    mcp = definition.mcp
    if mcp is None or definition.oauth2() is None:
        return "none"
    supported = (
        mcp.client_id_metadata_document_supported or mcp.client_registration == "metadata_document"
    )
    if supported and client_metadata_url(base_url, definition.slug) is not None:
        return "metadata_document"
    if mcp.registration_endpoint is not None:
        return "dynamic"
    return "manual"
