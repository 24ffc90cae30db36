"""``ta.toolkits``: the catalog, plus toolkits discovered from OAuth metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._exceptions import ValidationError
from .._http import HttpPool
from .._loop import HomeLoop, on_home_loop
from .._models import AuthScheme
from .._validation import check_hosts, check_scopes
from ..catalog import Catalog, OAuth2SchemeSpec, ToolkitDefinition
from ..oauth.discovery import fetch_metadata

__all__ = ["Toolkits"]


class Toolkits:
    """The toolkits this client knows: ``list``, ``get``, ``register`` and ``discover``."""

    def __init__(
        self, *, catalog: Catalog, http: HttpPool, home: HomeLoop, deadline: float | None = None
    ) -> None:
        self._catalog = catalog
        self._http = http
        self._home = home
        self._deadline = deadline  # the settings' call_deadline: discovery is a provider call

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
        allowed_hosts: Sequence[str] | None = None,
    ) -> ToolkitDefinition:
        """Build and register an OAUTH2 toolkit from ``issuer``'s published metadata.

        The metadata is checked before anything is registered (RFC 8414 §3.3, RFC 9700 §4.4):
        the issuer and every endpoint must be https URLs (http only on a loopback address),
        the metadata must name ``issuer`` itself, and endpoints must be on the issuer's host
        unless their hosts are in ``allowed_hosts`` (e.g. ``["login.example.com"]`` when
        ``https://example.com`` has its token endpoint there). Malformed metadata (not JSON,
        not an object, endpoints that are not absolute URLs, lists that are not lists) is a
        ``ValidationError``; an issuer that cannot be reached is a ``ConfigurationError``.
        """
        hosts = check_hosts(allowed_hosts)
        wanted = check_scopes(scopes) if scopes is not None else None
        metadata = await fetch_metadata(
            self._http.client, issuer, allowed_hosts=hosts, deadline=self._deadline
        )
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if wanted is None:  # the issuer's scopes, which must then be valid scope-tokens
            wanted = check_scopes(metadata.get("scopes_supported"), field="scopes_supported")
        try:
            spec = self._spec(metadata, methods, wanted)
        except ValueError as exc:  # pydantic's: a value the catalog schema refuses
            raise ValidationError(
                f"The metadata of {issuer!r} does not make a valid toolkit: "
                f"{str(exc).splitlines()[0][:300]}",
                field="issuer",
            ) from None
        definition = ToolkitDefinition(
            slug=slug,
            name=name or slug.title(),
            description=f"Discovered from {issuer}.",
            api_base_url=api_base_url or issuer,
            auth_schemes={AuthScheme.OAUTH2: spec},
        )
        return self._catalog.register(definition, replace=replace)

    @staticmethod
    def _spec(
        metadata: Mapping[str, Any], methods: Sequence[str], scopes: Sequence[str]
    ) -> OAuth2SchemeSpec:
        return OAuth2SchemeSpec(
            authorization_url=metadata["authorization_endpoint"],
            issuer=metadata["issuer"],
            token_url=metadata["token_endpoint"],
            revocation_url=metadata.get("revocation_endpoint"),
            userinfo_url=metadata.get("userinfo_endpoint"),
            default_scopes=tuple(scopes),
            token_endpoint_auth_method="client_secret_basic"
            if "client_secret_basic" in methods
            else "client_secret_post",
            pkce="S256" in (metadata.get("code_challenge_methods_supported") or ["S256"]),
            issues_refresh_tokens="refresh_token"
            in (metadata.get("grant_types_supported") or ["refresh_token"]),
        )
