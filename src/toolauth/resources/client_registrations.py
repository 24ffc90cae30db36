"""OAuth clients registered for managed auth configs of remote MCP servers (RFC 7591).

An MCP server's authorization server usually knows nothing of this deployment. When its
metadata offers dynamic client registration (``registration_endpoint``), the first connect
link of a managed config registers a client for this deployment's exact redirect URI and keeps
it, encrypted, in the auth config's credentials; every later link, refresh and revocation
uses it. A new redirect URI (the connect app moved) registers again. A custom auth config
with the app's own client always wins: it is used as it is.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable

import anyio
from pydantic import SecretStr

from .._http import HttpPool
from .._models import AuthConfig
from .._settings import ConnectUrls, Settings
from ..catalog import ToolkitDefinition
from ..oauth.client_app import REGISTERED_FOR as _REGISTERED_FOR
from ..store import Store

__all__ = ["ClientRegistrations"]


class ClientRegistrations:
    """Makes sure a managed MCP auth config holds a client registered for this deployment."""

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        settings: Settings,
        urls: ConnectUrls,
        http: HttpPool,
    ) -> None:
        self._store = store
        self._settings = settings
        self._urls = urls
        self._http = http
        self._locks: weakref.WeakValueDictionary[str, anyio.Lock] = weakref.WeakValueDictionary()

    @staticmethod
    def _registered(config: AuthConfig, redirect_uri: str) -> bool:
        kept = config.credentials.get(_REGISTERED_FOR)
        return (
            "client_id" in config.credentials
            and kept is not None
            and kept.get_secret_value() == redirect_uri
        )

    async def ensure(self, config: AuthConfig, definition: ToolkitDefinition) -> AuthConfig:
        """``config``, with a registered client when it is a managed config of an MCP toolkit
        whose authorization server registers clients; registered once per redirect URI, however
        many links start at the same moment in this process."""
        mcp, spec = definition.mcp, definition.oauth2()
        if (
            mcp is None
            or spec is None
            or mcp.client_registration != "dynamic"
            or mcp.registration_endpoint is None
            or not config.is_managed
        ):
            return config
        redirect_uri = self._urls.redirect_uri
        if self._registered(config, redirect_uri):
            return config
        lock = self._locks.get(config.id)
        if lock is None:
            lock = self._locks[config.id] = anyio.Lock()
        async with lock:
            store = await self._store()
            current = await store.get_auth_config(config.id) or config
            if self._registered(current, redirect_uri):
                return current
            from ..oauth.registration import register_client  # needs httpx: on first use

            client = await register_client(
                self._http.client, mcp.registration_endpoint, redirect_uri=redirect_uri,
                client_name=f"toolauth: {definition.name}",
                auth_method=spec.token_endpoint_auth_method, scopes=current.scopes,
                deadline=self._settings.call_deadline,
            )  # fmt: skip
            credentials = {
                "client_id": SecretStr(client.client_id),
                _REGISTERED_FOR: SecretStr(redirect_uri),
            }
            if client.client_secret is not None:
                credentials["client_secret"] = SecretStr(client.client_secret)

            def apply(row: AuthConfig) -> AuthConfig:
                return row.model_copy(update={"credentials": credentials})

            return await store.modify(AuthConfig, config.id, apply)
