"""``ta.toolkits``: the catalog, plus toolkits discovered from OAuth metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._http import HttpPool
from .._loop import HomeLoop, on_home_loop
from .._models import AuthScheme
from ..catalog import Catalog, OAuth2SchemeSpec, ToolkitDefinition
from ..oauth.discovery import fetch_metadata

__all__ = ["Toolkits"]


class Toolkits:
    """The toolkits this client knows: ``list``, ``get``, ``register`` and ``discover``."""

    def __init__(self, *, catalog: Catalog, http: HttpPool, home: HomeLoop) -> None:
        self._catalog = catalog
        self._http = http
        self._home = home

    def list(self, *, category: str | None = None) -> list[ToolkitDefinition]:
        return self._catalog.list(category=category)

    def get(self, slug: str) -> ToolkitDefinition:
        return self._catalog.get(slug)

    def register(
        self, definition: ToolkitDefinition | Mapping[str, Any], *, replace: bool = False
    ) -> ToolkitDefinition:
        return self._catalog.register(definition, replace=replace)

    @on_home_loop
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
        metadata = await fetch_metadata(self._http.client, issuer)
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
        return self._catalog.register(definition, replace=replace)
