"""OAuth clients of managed auth configs of remote MCP servers: client ID metadata
documents, or registered ones (RFC 7591).

MCP's order of preference: a custom auth config's own client (used as it is); then, when the
authorization server supports client ID metadata documents (``oauth/client_metadata.py``)
and the connect app's URL can serve one, the document's URL as ``client_id`` (a public client:
nothing is sent to the authorization server beforehand, the first link writes the URL into
the config); then dynamic registration (RFC 7591) as below. A config that already holds a
registered client for this redirect URI keeps it (its accounts' refresh tokens belong to it).

An MCP server's authorization server usually knows nothing of this deployment. When its
metadata offers dynamic client registration (``registration_endpoint``), the first connect
link of a managed config registers a client for this deployment's exact redirect URI and keeps
it, encrypted, in the auth config's credentials (with the redirect URI and the issuer it was
registered with); every later link, refresh and revocation uses it. A new redirect URI (the
connect app moved) registers again. A custom auth config with the app's own client always
wins: it is used as it is.

Once per issuer, across processes:

- A managed config of another MCP toolkit already holding a client of the same issuer for the
  same redirect URI lends it: nothing is registered (two servers behind one authorization
  server share one client).
- Otherwise processes race for a claim written into the config's row with ``Store.modify``
  (one write transaction: a compare-and-swap). The one that wins registers and writes the
  client; the others wait for that write (the store's change feed, or a look every
  ``TOOLAUTH_REFRESH_LEASE_POLL`` seconds) and use the winner's client. A claim whose holder
  died lapses after the registration's deadline, and the next link claims again.
"""

from __future__ import annotations

import secrets
import time
import weakref
from collections.abc import Awaitable, Callable

import anyio
from pydantic import SecretStr

from .._http import HttpPool
from .._models import AuthConfig
from .._settings import ConnectUrls, Settings
from ..catalog import ToolkitDefinition
from ..oauth.client_app import REGISTERED_FOR as _REGISTERED_FOR
from ..oauth.client_metadata import client_metadata_url, registration_mode
from ..store import Store

__all__ = ["ClientRegistrations"]

_ISSUER = "registered_issuer"
"""The issuer a registered client belongs to (clients are shared per issuer)."""
_CLAIM = "registration_claim"
"""``"<owner> <expiry, unix seconds>"``: a process is registering this config's client."""
_DOCUMENT = "client_metadata_document"
"""Marks a client whose id is the URL of our client ID metadata document (nothing registered)."""
_CLIENT_KEYS = ("client_id", "client_secret", _REGISTERED_FOR, _ISSUER)


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
        self._owner = secrets.token_hex(8)  # this process's claims
        self._locks: weakref.WeakValueDictionary[str, anyio.Lock] = weakref.WeakValueDictionary()

    @staticmethod
    def _registered(
        config: AuthConfig, redirect_uri: str, issuer: str | None = None, *, document: bool = False
    ) -> bool:
        """Whether ``config`` holds a client for ``redirect_uri``: a registered one, or with
        ``document`` the URL of our client ID metadata document."""
        if (_DOCUMENT in config.credentials) != document:
            return False
        kept = config.credentials.get(_REGISTERED_FOR)
        if issuer is not None:
            found = config.credentials.get(_ISSUER)
            if found is None or found.get_secret_value() != issuer:
                return False
        return (
            "client_id" in config.credentials
            and kept is not None
            and kept.get_secret_value() == redirect_uri
        )

    def _claim_window(self) -> float:
        return self._settings.call_deadline + 5.0  # one registration call, with its deadline

    async def ensure(self, config: AuthConfig, definition: ToolkitDefinition) -> AuthConfig:
        """``config``, with a client when it is a managed config of an MCP toolkit: the URL
        of its client ID metadata document when the authorization server supports them, or a
        client registered once per issuer and redirect URI, however many links start at the
        same moment in however many processes."""
        mcp, spec = definition.mcp, definition.oauth2()
        if mcp is None or spec is None or not config.is_managed:
            return config
        redirect_uri = self._urls.redirect_uri
        if self._registered(config, redirect_uri):
            return config
        mode = registration_mode(definition, self._urls.base_url)
        if mode == "metadata_document":
            return await self._describe(config, definition, redirect_uri)
        if mode != "dynamic" or mcp.registration_endpoint is None:
            return config
        lock = self._locks.get(config.id)
        if lock is None:
            lock = self._locks[config.id] = anyio.Lock()
        async with lock:
            store = await self._store()
            with store.changes.subscribe(config.id) as bell:
                while True:
                    current = await self._borrow(store, config, mcp.issuer, redirect_uri)
                    if current is not None:
                        return current
                    current, mine = await self._claim(store, config.id, redirect_uri)
                    if self._registered(current, redirect_uri):
                        return current  # another process registered it meanwhile
                    if mine:
                        break
                    # Another process is registering: its write rings the bell (a process
                    # that died lets its claim lapse, so look again now and then).
                    with anyio.move_on_after(self._settings.refresh_lease_poll):
                        await bell.wait()
            try:
                return await self._register(store, current, definition, redirect_uri)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._release(store, config.id)
                raise

    async def _describe(
        self, config: AuthConfig, definition: ToolkitDefinition, redirect_uri: str
    ) -> AuthConfig:
        """``config`` with the URL of ``definition``'s client ID metadata document as its
        client (no secret: a public client), written once; every process writes the same."""
        if self._registered(config, redirect_uri, document=True):
            return config
        url = client_metadata_url(self._urls.base_url, definition.slug)
        assert url is not None  # registration_mode said the base URL can serve it
        credentials = {
            "client_id": SecretStr(url),
            _REGISTERED_FOR: SecretStr(redirect_uri),
            _DOCUMENT: SecretStr("1"),
        }

        def apply(row: AuthConfig) -> AuthConfig:
            if self._registered(row, redirect_uri) or self._registered(
                row, redirect_uri, document=True
            ):
                return row
            return row.model_copy(update={"credentials": credentials})

        store = await self._store()
        return await store.modify(AuthConfig, config.id, apply)

    async def _borrow(
        self, store: Store, config: AuthConfig, issuer: str | None, redirect_uri: str
    ) -> AuthConfig | None:
        """``config`` with the client another managed config holds for ``issuer`` and this
        redirect URI, written into its row; ``None`` when there is none."""
        if issuer is None:
            return None
        donor = next(
            (
                c
                for c in await store.list_auth_configs()
                if c.id != config.id and c.is_managed
                and self._registered(c, redirect_uri, issuer)
            ),
            None,
        )  # fmt: skip
        if donor is None:
            return None
        lent = {k: donor.credentials[k] for k in _CLIENT_KEYS if k in donor.credentials}

        def apply(row: AuthConfig) -> AuthConfig:
            if self._registered(row, redirect_uri):
                return row
            return row.model_copy(update={"credentials": lent})

        return await store.modify(AuthConfig, config.id, apply)

    async def _claim(
        self, store: Store, config_id: str, redirect_uri: str
    ) -> tuple[AuthConfig, bool]:
        """Compare-and-swap the claim into the row: (the row, whether this process holds it)."""
        now = time.time()
        mine = f"{self._owner} {now + self._claim_window():.3f}"

        def apply(row: AuthConfig) -> AuthConfig:
            if self._registered(row, redirect_uri):
                return row
            held = row.credentials.get(_CLAIM)
            if held is not None:
                owner, _, until = held.get_secret_value().partition(" ")
                if owner != self._owner and float(until or 0) > now:
                    return row  # someone else is registering
            return row.model_copy(
                update={"credentials": {**row.credentials, _CLAIM: SecretStr(mine)}}
            )

        row = await store.modify(AuthConfig, config_id, apply)
        held = row.credentials.get(_CLAIM)
        return row, held is not None and held.get_secret_value() == mine

    async def _release(self, store: Store, config_id: str) -> None:
        def apply(row: AuthConfig) -> AuthConfig:
            held = row.credentials.get(_CLAIM)
            if held is None or not held.get_secret_value().startswith(self._owner + " "):
                return row
            kept = {k: v for k, v in row.credentials.items() if k != _CLAIM}
            return row.model_copy(update={"credentials": kept})

        await store.modify(AuthConfig, config_id, apply)

    async def _register(
        self, store: Store, config: AuthConfig, definition: ToolkitDefinition, redirect_uri: str
    ) -> AuthConfig:
        mcp, spec = definition.mcp, definition.oauth2()
        assert mcp is not None
        assert mcp.registration_endpoint is not None
        assert spec is not None
        from ..oauth.registration import register_client  # needs httpx: on first use

        client = await register_client(
            self._http.client, mcp.registration_endpoint, redirect_uri=redirect_uri,
            client_name=f"toolauth: {definition.name}",
            auth_method=spec.token_endpoint_auth_method, scopes=config.scopes,
            deadline=self._settings.call_deadline,
        )  # fmt: skip
        credentials = {
            "client_id": SecretStr(client.client_id),
            _REGISTERED_FOR: SecretStr(redirect_uri),
        }
        if mcp.issuer is not None:
            credentials[_ISSUER] = SecretStr(mcp.issuer)
        if client.client_secret is not None:
            credentials["client_secret"] = SecretStr(client.client_secret)

        def apply(row: AuthConfig) -> AuthConfig:
            return row.model_copy(update={"credentials": credentials})  # the claim goes too

        return await store.modify(AuthConfig, config.id, apply)
