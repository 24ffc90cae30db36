"""``ta.auth_configs``: how this deployment connects to each toolkit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pydantic import SecretStr

from .._exceptions import ConflictError, NotFoundError, ValidationError
from .._ids import new_id
from .._loop import HomeLoop, on_home_loop
from .._models import AuthConfig, AuthConfigType, AuthScheme, utcnow
from .._settings import Settings
from .._validation import check_credentials, check_scopes, check_text
from ..auth.fields import split_fields
from ..catalog import ApiKeySchemeSpec, Catalog, OAuth2SchemeSpec, ToolkitDefinition
from ..store import Store

__all__ = ["AuthConfigs"]

_OAUTH_APP_KEYS = ("client_id", "client_secret")


class _Unset:
    """What an argument left out of ``update`` is: no change."""

    def __repr__(self) -> str:
        return "<unchanged>"


_UNSET: Any = _Unset()


class AuthConfigs:
    """Create, read, update, enable, disable and delete auth configs."""

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        settings: Settings,
        catalog: Catalog,
        home: HomeLoop,
    ) -> None:
        self._store = store
        self._settings = settings
        self._catalog = catalog
        self._home = home
        self._configured: set[str] = set()  # toolkits with an enabled config, as last seen

    def configured_toolkits(self) -> set[str]:
        """Toolkits with an enabled auth config, as this client last saw the store (it looks
        when the store opens and whenever configs are listed, made or changed)."""
        return set(self._configured)

    def connectable_without_config(self, definition: ToolkitDefinition) -> bool:
        """Whether a user can connect ``definition`` with no config made by the app: a
        managed OAuth app is in the environment, or the default scheme is a typed key or
        no auth at all."""
        if definition.default_scheme is not AuthScheme.OAUTH2 or registers_clients(definition):
            return True
        prefix = f"TOOLAUTH_{definition.slug.upper()}_"
        env = self._settings.environ
        return bool(env.get(prefix + "CLIENT_ID") and env.get(prefix + "CLIENT_SECRET"))

    @on_home_loop
    async def refresh_configured(self) -> set[str]:
        """Read again which toolkits have an enabled auth config."""
        store = await self._store()
        found = await store.list_auth_configs(toolkit=None, enabled=True)
        self._configured = {c.toolkit for c in found}
        return set(self._configured)

    @on_home_loop
    async def create(
        self,
        toolkit: str,
        *,
        type: AuthConfigType | str = AuthConfigType.MANAGED,
        name: str | None = None,
        auth_scheme: AuthScheme | str | None = None,
        credentials: dict[str, Any] | None = None,
        scopes: Sequence[str] | None = None,
    ) -> AuthConfig:
        """Create an auth config for ``toolkit``.

        Managed configs take their OAuth app from ``TOOLAUTH_<TOOLKIT>_CLIENT_ID`` /
        ``_CLIENT_SECRET``; custom ones carry their own ``credentials``: an OAuth app's
        ``client_id`` / ``client_secret``, or, for ``API_KEY`` / ``BEARER_TOKEN`` / ``BASIC``,
        the credential itself (the scheme's fields, e.g. ``{"api_key": ...}``), which every
        user of the config then shares with no link. Scopes default to the catalog's.
        """
        return await self._create(
            toolkit, type=type, name=name, auth_scheme=auth_scheme, credentials=credentials,
            scopes=scopes,
        )  # fmt: skip

    @on_home_loop
    async def default(self, toolkit: str) -> AuthConfig:
        """The config sessions connect ``toolkit`` through when none is given: the oldest
        enabled one, else a managed one made once, however many sessions, coroutines or
        processes ask at the same moment (the store keeps one default per toolkit)."""
        slug = (await self._catalog.resolve(toolkit)).slug
        found = await self.list(toolkit=slug, enabled=True)
        if found:
            return found[0]
        try:
            return await self._create(slug, default=True)
        except ConflictError:  # another one made it first
            found = await self.list(toolkit=slug, enabled=True)
            if found:
                return found[0]
            raise ConflictError(
                f"The default {slug} auth config is disabled; enable it or create another."
            ) from None

    async def _create(
        self,
        toolkit: str,
        *,
        type: AuthConfigType | str = AuthConfigType.MANAGED,
        name: str | None = None,
        auth_scheme: AuthScheme | str | None = None,
        credentials: dict[str, Any] | None = None,
        scopes: Sequence[str] | None = None,
        default: bool = False,
    ) -> AuthConfig:
        definition = await self._catalog.resolve(toolkit)
        kind = AuthConfigType.parse(type, field="type")
        scheme = (
            definition.default_scheme
            if auth_scheme is None
            else AuthScheme.parse(auth_scheme, field="auth_scheme")
        )
        spec = definition.scheme(scheme)
        if spec is None:
            allowed = ", ".join(s.value for s in definition.auth_schemes)
            raise ValidationError(
                f"Toolkit {definition.slug!r} does not support auth_scheme {scheme.value!r}; "
                f"it supports {allowed}.",
                field="auth_scheme",
            )
        is_oauth = isinstance(spec, OAuth2SchemeSpec)
        if kind is AuthConfigType.MANAGED:
            if credentials:
                raise ValidationError(
                    "A managed auth config takes its OAuth app from settings; to use your own "
                    "credentials, pass type='use_custom_auth'.",
                    field="credentials",
                )
            if is_oauth and not registers_clients(definition):
                self._settings.managed_oauth_app(definition.slug)  # clear error if unset
            secrets = {}
        elif is_oauth:
            keys = _OAUTH_APP_KEYS
            secrets = check_credentials(credentials, allowed=keys, required=keys)
        else:
            secrets = _shared_credentials(spec, credentials)
        if scopes is not None and not is_oauth:
            raise ValidationError(
                f"scopes apply to OAuth configs only; {scheme.value} has none.", field="scopes"
            )
        default_scopes = spec.default_scopes if isinstance(spec, OAuth2SchemeSpec) else ()
        now = utcnow()
        config = AuthConfig(
            id=new_id("ac"),
            toolkit=definition.slug,
            name=check_text(name, field="name")
            if name is not None
            else f"{definition.name} ({'managed' if kind is AuthConfigType.MANAGED else 'custom'})",
            type=kind,
            auth_scheme=scheme,
            scopes=check_scopes(scopes) if scopes is not None else default_scopes,
            enabled=True,
            is_default=default,
            created_at=now,
            updated_at=now,
            credentials=secrets,
        )
        store = await self._store()
        await store.create_auth_config(config)
        self._configured.add(config.toolkit)
        return config

    @on_home_loop
    async def get(self, id: str) -> AuthConfig:
        store = await self._store()
        config = await store.get_auth_config(id)
        if config is None:
            raise NotFoundError("auth config", id)
        return config

    @on_home_loop
    async def list(
        self, *, toolkit: str | None = None, enabled: bool | None = None
    ) -> list[AuthConfig]:
        """Auth configs, oldest first; only one toolkit's, or only enabled ones, when asked."""
        store = await self._store()
        slug = (await self._catalog.resolve(toolkit)).slug if toolkit is not None else None
        found = await store.list_auth_configs(toolkit=slug, enabled=enabled)
        if slug is None and enabled is not False:
            self._configured = {c.toolkit for c in found if c.enabled}
        return found

    @on_home_loop
    async def update(
        self,
        id: str,
        *,
        name: str = _UNSET,
        scopes: Sequence[str] = _UNSET,
        credentials: dict[str, Any] = _UNSET,
        enabled: bool = _UNSET,
    ) -> AuthConfig:
        """Apply every field given. ``credentials`` merge into the stored ones (rotate a secret
        by passing just ``client_secret``)."""
        changes: dict[str, Any] = {}
        if name is not _UNSET:
            changes["name"] = check_text(name, field="name")
        if enabled is not _UNSET:
            if not isinstance(enabled, bool):
                raise ValidationError("enabled must be True or False.", field="enabled")
            changes["enabled"] = enabled
        if scopes is not _UNSET:
            changes["scopes"] = check_scopes(scopes)
        catalog = self._catalog

        def apply(current: AuthConfig) -> AuthConfig:
            update = dict(changes)
            spec = catalog.get(current.toolkit).scheme(current.auth_scheme)
            is_oauth = isinstance(spec, OAuth2SchemeSpec)
            if "scopes" in update and not is_oauth:
                raise ValidationError(
                    f"scopes apply to OAuth configs only; {current.auth_scheme.value} has none.",
                    field="scopes",
                )
            if credentials is not _UNSET:
                if current.is_managed:
                    raise ValidationError(
                        "A managed config takes its credentials from settings; this one has "
                        "none to update.",
                        field="credentials",
                    )
                if is_oauth:
                    given = check_credentials(credentials, allowed=_OAUTH_APP_KEYS, required=())
                    update["credentials"] = {**current.credentials, **given}
                else:  # a shared credential: replaced whole, for every user at once
                    update["credentials"] = _shared_credentials(spec, credentials)
            return current.model_copy(update=update)

        store = await self._store()
        found = await store.get_auth_config(id)
        if found is not None:  # its toolkit may be one another process stored: know it first
            await catalog.resolve(found.toolkit)
        updated = await store.modify(AuthConfig, id, apply)
        await self.refresh_configured()
        return updated

    @on_home_loop
    async def enable(self, id: str) -> AuthConfig:
        return await self.update(id, enabled=True)

    @on_home_loop
    async def disable(self, id: str) -> AuthConfig:
        """Stop new connections through this config; existing accounts keep working."""
        return await self.update(id, enabled=False)

    @on_home_loop
    async def delete(self, id: str, *, force: bool = False) -> None:
        """Delete a config. One that still has accounts needs ``force=True`` (which deletes
        them too) — otherwise ``ConflictError`` says so and nothing changes."""
        store = await self._store()
        await store.delete_auth_config(id, with_accounts=force)
        await self.refresh_configured()


def registers_clients(definition: ToolkitDefinition) -> bool:
    """Whether a managed config of ``definition`` gets its OAuth client by registering one
    (an MCP server whose authorization server offers RFC 7591) or as the URL of a client ID
    metadata document the connect app serves, not from settings."""
    return definition.mcp is not None and definition.mcp.client_registration in (
        "dynamic",
        "metadata_document",
    )


def _shared_credentials(
    spec: object, credentials: Mapping[str, Any] | None
) -> dict[str, SecretStr]:
    """The credential a key-scheme config shares with its users: the scheme's fields, all
    kept encrypted. None given: the users connect their own through links."""
    if not credentials:
        return {}
    if not isinstance(spec, ApiKeySchemeSpec):
        raise ValidationError("This auth scheme takes no credentials.", field="credentials")
    if not isinstance(credentials, Mapping):
        raise ValidationError(
            "credentials must be a dict of the scheme's fields.", field="credentials"
        )
    secret, plain = split_fields(spec, dict(credentials))
    return {**secret, **{k: SecretStr(v) for k, v in plain.items()}}
