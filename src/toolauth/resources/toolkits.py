"""``ta.toolkits``: the catalog, plus toolkits discovered from OAuth metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._exceptions import ValidationError
from .._http import HttpPool
from .._loop import HomeLoop, on_home_loop
from .._models import AuthScheme
from .._validation import check_hosts, check_scopes
from ..catalog import Catalog, McpServerSpec, OAuth2SchemeSpec, ToolkitDefinition
from ..oauth.discovery import fetch_metadata
from ..oauth.protected_resource import discover_protected_resource

__all__ = ["Toolkits"]


class Toolkits:
    """The toolkits this client knows: ``list``, ``get``, ``register``, ``discover`` and
    ``add_mcp``."""

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

    @on_home_loop
    async def add_mcp(
        self,
        slug: str,
        *,
        url: str,
        name: str | None = None,
        description: str | None = None,
        scopes: Sequence[str] | None = None,
        replace: bool = False,
        allowed_hosts: Sequence[str] | None = None,
    ) -> ToolkitDefinition:
        """Register the remote MCP server at ``url`` (streamable HTTP) as toolkit ``slug``.

        Discovery follows MCP authorization: the server's 401 names its protected resource
        metadata (RFC 9728; else the well-known URLs), which must name ``url`` as its
        resource and an authorization server, whose metadata (RFC 8414 / OIDC, checked as in
        :meth:`discover`) must offer PKCE S256. The result is an ``OAUTH2`` toolkit whose
        authorization and token requests carry ``resource`` (RFC 8707); a managed auth config
        registers its client on first use when the server offers RFC 7591, otherwise create a
        custom auth config with your client. A server that asks for no token becomes a
        ``NO_AUTH`` toolkit. The tools are the server's own (listed when a user connects).

        Raises:
            ValidationError: metadata that names another resource or issuer, http endpoints
                off loopback, no S256 support.
            ConfigurationError: the server or its authorization server cannot be reached.
        """
        hosts = check_hosts(allowed_hosts)
        wanted = check_scopes(scopes) if scopes is not None else None
        found = await discover_protected_resource(self._http.client, url, deadline=self._deadline)
        shown = name or slug.title()
        text = description or f"Tools of the MCP server {shown}."
        if found is None:
            definition = ToolkitDefinition(
                slug=slug, name=shown, description=text, api_base_url=url,
                auth_schemes={AuthScheme.NO_AUTH: {}},  # type: ignore[dict-item]
                mcp=McpServerSpec(url=url),
            )  # fmt: skip
            return self.register(definition, replace=replace)
        issuer = found.authorization_servers[0]
        metadata = await fetch_metadata(
            self._http.client, issuer, allowed_hosts=hosts, deadline=self._deadline
        )
        # MCP authorization: a client MUST refuse an authorization server that does not
        # advertise S256 (RFC 7636 §4.2; RFC 9700 §2.1.1).
        if "S256" not in (metadata.get("code_challenge_methods_supported") or []):
            raise ValidationError(
                f"The authorization server {issuer!r} of {url} does not advertise PKCE S256 "
                "(code_challenge_methods_supported); MCP clients must refuse it.",
                field="url",
            )
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if wanted is None:
            wanted = check_scopes(list(found.scopes_supported), field="scopes_supported")
        try:
            spec = self._spec(metadata, methods, wanted).model_copy(
                update={"resource": found.resource, "pkce": True}
            )
        except ValueError as exc:
            raise ValidationError(
                f"The metadata of {issuer!r} does not make a valid toolkit: "
                f"{str(exc).splitlines()[0][:300]}",
                field="url",
            ) from None
        registration = metadata.get("registration_endpoint")
        server = McpServerSpec(
            url=url, resource=found.resource, resource_metadata_url=found.metadata_url,
            issuer=metadata["issuer"], registration_endpoint=registration,
            client_registration="dynamic" if registration else "manual",
            client_id_metadata_document_supported=bool(
                metadata.get("client_id_metadata_document_supported")
            ),
        )  # fmt: skip
        definition = ToolkitDefinition(
            slug=slug, name=shown, description=text, api_base_url=url,
            auth_schemes={AuthScheme.OAUTH2: spec}, mcp=server,
        )  # fmt: skip
        return self.register(definition, replace=replace)

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
