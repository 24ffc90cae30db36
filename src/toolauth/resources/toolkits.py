"""``ta.toolkits``: the catalog, plus discovery of OAuth servers (RFC 8414, OpenID Discovery)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .._exceptions import ConfigurationError
from .._models import AuthScheme
from .._sync import sync_wrapped
from ..catalog import OAuth2SchemeSpec, ToolkitDefinition

if TYPE_CHECKING:
    from .._client import AsyncToolAuth

__all__ = ["Toolkits", "metadata_urls"]


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


@sync_wrapped
class Toolkits:
    """The toolkits this client knows: ``list``, ``get``, ``register`` and ``discover``."""

    def __init__(self, client: AsyncToolAuth) -> None:
        self._client = client

    def list(self, *, category: str | None = None) -> list[ToolkitDefinition]:
        return self._client.catalog.list(category=category)

    def get(self, slug: str) -> ToolkitDefinition:
        return self._client.catalog.get(slug)

    def register(
        self, definition: ToolkitDefinition | Mapping[str, Any], *, replace: bool = False
    ) -> ToolkitDefinition:
        return self._client.catalog.register(definition, replace=replace)

    async def discover(
        self,
        slug: str,
        *,
        issuer: str,
        name: str | None = None,
        api_base_url: str | None = None,
        scopes: Sequence[str] | None = None,
        replace: bool = False,
    ) -> ToolkitDefinition:
        """Build and register an OAUTH2 toolkit from ``issuer``'s published metadata."""
        import httpx

        http = self._client.http
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
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        supported = metadata.get("scopes_supported") or []
        spec = OAuth2SchemeSpec(
            authorization_url=metadata["authorization_endpoint"],
            issuer=metadata["issuer"],
            token_url=metadata["token_endpoint"],
            revocation_url=metadata.get("revocation_endpoint"),
            userinfo_url=metadata.get("userinfo_endpoint"),
            default_scopes=tuple(scopes if scopes is not None else supported),
            token_endpoint_auth_method="client_secret_basic"
            if "client_secret_basic" in methods
            else "client_secret_post",
            pkce="S256" in (metadata.get("code_challenge_methods_supported") or ["S256"]),
            issues_refresh_tokens="refresh_token"
            in (metadata.get("grant_types_supported") or ["refresh_token"]),
        )
        definition = ToolkitDefinition(
            slug=slug,
            name=name or slug.title(),
            description=f"Discovered from {issuer}.",
            api_base_url=api_base_url or issuer,
            auth_schemes={AuthScheme.OAUTH2: spec},
        )
        return self._client.catalog.register(definition, replace=replace)
