"""``AsyncToolAuth``: the async client every other API hangs from."""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from ._exceptions import ClientClosedError, ConfigurationError, ToolAuthError
from ._http import HttpPool
from ._keys import key_file_path, load_keyring, uses_key_file
from ._loop import HomeLoop
from ._settings import ConnectUrls, Settings
from .catalog import Catalog
from .oauth.refresh import TokenManager
from .resources.audit import Audit
from .resources.auth_configs import AuthConfigs
from .resources.client_registrations import ClientRegistrations
from .resources.confirmations import Confirmations
from .resources.connected_accounts import ConnectedAccounts
from .resources.connection_requests import Waiter
from .resources.deliveries import Deliverer
from .resources.events import Events
from .resources.http_clients import AccountClients
from .resources.keeper import Keeper
from .resources.sessions import ResumeMode, Session
from .resources.toolkits import Toolkits
from .resources.webhooks import Webhooks
from .store import Store, display_url, open_store, store_class

if TYPE_CHECKING:
    import httpx

    from .catalog import McpToolSpec
    from .connect.flow import ConnectFlow
    from .mcp import McpSessions

log = logging.getLogger("toolauth")

__all__ = ["AsyncToolAuth"]


class AsyncToolAuth:
    """The toolauth client.

    With no arguments it keeps everything in ``./.toolauth`` (a SQLite file and a key file made
    on first use). The store opens on first use; ``async with`` closes it.

    ```python
    async with AsyncToolAuth() as ta:
        config = await ta.auth_configs.create("github", type="use_custom_auth",
            credentials={"client_id": "...", "client_secret": "..."}, scopes=["repo"])
        accounts = await ta.connected_accounts.list(user_id="user_123", status="ACTIVE")
    ```

    Args:
        database_url: ``sqlite:///path.db`` or ``postgresql://...`` (``TOOLAUTH_DATABASE_URL``).
        encryption_key: comma-separated keys; the first encrypts (``TOOLAUTH_ENCRYPTION_KEY``).
        home: folder for the embedded database and key file (``TOOLAUTH_HOME``).
        base_url: the connect app's public URL (``TOOLAUTH_BASE_URL``).
        settings: a full :class:`Settings`; the other arguments override it.
        catalog: the toolkit catalog (default: the shipped definitions and the files of
            ``TOOLAUTH_TOOLKITS_DIR``); stored definitions are kept in step with it.
        transport: an ``httpx`` transport for every call toolauth makes (tests, proxies).
    """

    def __init__(
        self,
        *,
        database_url: str | None = None,
        encryption_key: str | None = None,
        home: str | Path | None = None,
        base_url: str | None = None,
        link_ttl: float | None = None,
        allowed_callback_origins: Sequence[str] | None = None,
        settings: Settings | None = None,
        catalog: Catalog | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        overrides: dict[str, Any] = {
            "database_url": database_url,
            "encryption_key": encryption_key,
            "home": Path(home) if home is not None else None,
            "base_url": base_url,
            "link_ttl": link_ttl,
            "allowed_callback_origins": allowed_callback_origins,
        }
        if settings is None:
            settings = Settings.from_env(**overrides)
        self._settings = settings = settings.with_overrides(**overrides)
        if catalog is None:
            folder = settings.toolkits_dir
            catalog = Catalog(extra_dirs=[folder] if folder is not None else [])
        self.catalog = catalog
        self.urls = urls = ConnectUrls(settings)
        self._home = loop = HomeLoop()
        self._http = http = HttpPool(timeout=settings.http_timeout, transport=transport)
        self._store: Store | None = None
        self._open_lock: anyio.Lock | None = None
        self._closed = False
        self._guard: AsyncGenerator[None] | None = None
        store = self.store
        self.toolkits = Toolkits(
            store=store, catalog=catalog, http=http, home=loop, deadline=settings.call_deadline
        )
        self._registrations = ClientRegistrations(
            store=store, settings=settings, urls=urls, http=http
        )
        self.auth_configs = AuthConfigs(store=store, settings=settings, catalog=catalog, home=loop)
        self.tokens = TokenManager(
            store=store, settings=settings, urls=urls, catalog=catalog, http=http,
            auth_config=self.auth_configs.get,
        )  # fmt: skip
        self._clients = AccountClients(
            store=store, settings=settings, urls=urls, catalog=catalog, http=http,
            tokens=self.tokens, auth_config=self.auth_configs.get,
        )  # fmt: skip
        self._waiter = Waiter(store=store, settings=settings, home=loop)
        self.confirmations = Confirmations(store=store, settings=settings, tokens=self.tokens)
        self.connected_accounts = ConnectedAccounts(
            store=store, settings=settings, urls=urls, catalog=catalog,
            auth_configs=self.auth_configs, tokens=self.tokens, clients=self._clients,
            waiter=self._waiter, confirmations=self.confirmations,
        )  # fmt: skip
        self.events = Events(store=store, home=loop)
        self.audit = Audit(store=store, home=loop)
        self._deliverer = Deliverer(store=store, settings=settings, http=http)
        self.webhooks = Webhooks(
            store=store, settings=settings, home=loop, deliverer=self._deliverer
        )
        self._connect_flow: ConnectFlow | None = None
        self._mcp: McpSessions | None = None

    @property
    def settings(self) -> Settings:
        """The client's settings (fixed for its lifetime; make a new client to change them)."""
        return self._settings

    def __repr__(self) -> str:
        return f"AsyncToolAuth(database_url={display_url(self.settings.database_url)!r})"

    # lifecycle ---------------------------------------------------------------------------
    async def store(self) -> Store:
        """The open store, opening it (and applying migrations) on first use."""
        if self._store is not None:
            return self._store
        if self._closed:
            raise ClientClosedError(
                "This AsyncToolAuth client is closed; create a new one (closed clients do not "
                "reopen)."
            )
        if self._open_lock is None:
            self._open_lock = anyio.Lock()
        async with self._open_lock:
            if self._store is None:
                self._store = await self._open_store()
                self._home.claim()
                await self.toolkits.start(self._store)
                await self.auth_configs.refresh_configured()
                # Closed for you when the event loop ends, if you did not (with a warning).
                guard = self._guard = self._close_at_loop_end()
                await guard.__anext__()
        return self._store

    async def _close_at_loop_end(self) -> AsyncGenerator[None]:
        """An async generator the loop finalizes at its end (``shutdown_asyncgens``): a
        script that never closed its client still exits, its store closed."""
        try:
            yield
        finally:
            if not self._closed:
                warnings.warn(
                    "An AsyncToolAuth client was never closed; use `async with AsyncToolAuth() "
                    "as ta:` or `await ta.aclose()`. Closing it now.",
                    ResourceWarning,
                    stacklevel=1,
                )
                await self._close()

    async def _open_store(self) -> Store:
        backend = store_class(self.settings.database_url)  # a bad URL is the first to report
        keyring = await load_keyring(self.settings)
        store = await open_store(
            self.settings.database_url, keyring, **backend.options(self.settings)
        )
        try:
            unknown = await store.key_ids() - set(keyring.ids)
            if unknown:
                where = (
                    f"restore the key file {key_file_path(self.settings)} or "
                    if uses_key_file(self.settings)
                    else ""
                )
                raise ConfigurationError(
                    f"The database {store.display_url} holds secrets encrypted with key id(s) "
                    f"{', '.join(sorted(unknown))}, which are not configured (configured: "
                    f"{', '.join(keyring.ids)}). To read them, {where}set "
                    "TOOLAUTH_ENCRYPTION_KEY to the key(s) that wrote them."
                )
        except BaseException:
            await store.close()
            raise
        return store

    @property
    def http(self) -> httpx.AsyncClient:
        """The client's own HTTP client for provider calls (token, discovery, revocation)."""
        return self._http.client

    @property
    def connect_flow(self) -> ConnectFlow:
        """The steps of connect links, for the connect app (loaded on first use)."""
        if self._connect_flow is None:
            from .connect.flow import ConnectFlow  # loads httpx and authlib: on first use
            from .connect.links import LinkSteps

            links = LinkSteps(
                store=self.store, settings=self._settings, urls=self.urls,
                catalog=self.catalog, http=self._http, confirmations=self.confirmations,
            )  # fmt: skip
            self._connect_flow = ConnectFlow(links, self._registrations)
        return self._connect_flow

    def mcp_sessions(self) -> McpSessions:
        """The MCP sessions of this client's users (remote MCP toolkits), made on first use."""
        if self._mcp is None:
            from .mcp import McpSessions  # loads the mcp SDK: only when an MCP toolkit is used

            self._mcp = McpSessions(
                store=self.store, settings=self._settings, signer=self._clients.signer,
                on_tools=self._cache_mcp_tools,
            )  # fmt: skip
        return self._mcp

    async def _cache_mcp_tools(self, slug: str, tools: tuple[McpToolSpec, ...]) -> None:
        """Keep the tool list a server gave one user as the toolkit's cached list (the tools a
        session offers before its user connects), stored for every process."""
        definition = self.catalog.get(slug)
        if definition.mcp is None or definition.mcp.tools == tools:
            return
        server = definition.mcp.model_copy(update={"tools": tools})
        try:
            await self.toolkits.save(
                definition.model_copy(update={"mcp": server}), source="mcp", replace=True
            )
        except ToolAuthError as exc:  # the session works without the cache; say why it is stale
            log.warning("could not store the tool list of %s: %s", slug, exc.message)

    def keeper(self) -> Keeper:
        """The keeper for this client: ``await ta.keeper().run()`` refreshes tokens before
        they expire, probes accounts, and delivers webhooks until cancelled (``run_once()``
        does one round). Several keepers on one database share the work."""
        return Keeper(
            store=self.store, settings=self._settings, catalog=self.catalog,
            tokens=self.tokens, clients=self._clients, deliverer=self._deliverer,
            auth_config=self.auth_configs.get, home=self._home,
        )  # fmt: skip

    # sessions -----------------------------------------------------------------------------
    def create(
        self,
        user_id: str,
        *,
        toolkits: Sequence[str] | None = None,
        auth_configs: dict[str, str] | None = None,
        connected_accounts: dict[str, str] | None = None,
        resume: ResumeMode = "wait",
        callback_url: str | None = None,
        wait_timeout: float = 600.0,
        manage_connections_tool_name: str = "COMPOSIO_MANAGE_CONNECTIONS",
        wait_tool_name: str | None = "COMPOSIO_WAIT_FOR_CONNECTIONS",
        enable_reinitiate_all: bool = False,
    ) -> Session:
        """A :class:`Session` for ``user_id``: ``toolkits=[...]``, ``auth_configs={toolkit:
        ac_id}``, ``connected_accounts={toolkit: ca_id}``, ``resume="wait"|"interrupt"|
        "return"``, ``callback_url=``, ``wait_timeout=``; ``enable_reinitiate_all=True`` lets the
        model ask for new links over ACTIVE accounts (``reinitiate_all``)."""
        return Session(
            user_id, store=self.store, urls=self.urls, catalog=self.catalog,
            configs=self.auth_configs, accounts=self.connected_accounts,
            clients=self._clients, home=self._home, account_cache=self._settings.account_cache,
            toolkits=toolkits, auth_configs=auth_configs,
            connected_accounts=connected_accounts, resume=resume,
            callback_url=callback_url, wait_timeout=wait_timeout,
            manage_connections_tool_name=manage_connections_tool_name,
            wait_tool_name=wait_tool_name, mcp=self.mcp_sessions,
            enable_reinitiate_all=enable_reinitiate_all,
        )  # fmt: skip

    # the connect app --------------------------------------------------------------------
    def asgi_app(self, *, verify_user: Any = None) -> Any:
        """The connect app (a Starlette app) for this client, to mount or serve.

        ```python
        app.mount("/toolauth", ta.asgi_app())   # then base_url=".../toolauth"
        ```
        """
        from .connect import create_connect_app

        self.urls.app_made()
        return create_connect_app(self, verify_user=verify_user)

    def serve(self, *, host: str = "127.0.0.1", port: int = 0, access_log: bool = False) -> Any:
        """Run the connect app in the background on this event loop.

        ``async with ta.serve(port=0) as url:`` — with no explicit ``base_url`` setting, the
        client's ``base_url`` becomes the served URL while the server runs.
        """
        from .connect.server import serve_client

        return serve_client(self, host=host, port=port, access_log=access_log)

    async def open(self) -> AsyncToolAuth:
        await self.store()
        return self

    async def aclose(self) -> None:
        """Close the store and the HTTP pool. The client cannot be used afterwards."""
        await self._close()
        guard, self._guard = self._guard, None
        if guard is not None:
            await guard.aclose()

    async def _close(self) -> None:
        self._closed = True
        mcp, self._mcp = self._mcp, None
        if mcp is not None:
            await mcp.aclose()
        await self.toolkits.stop()
        store, self._store = self._store, None
        await self._deliverer.aclose()
        await self._http.aclose()
        if store is not None:
            await store.close()

    async def __aenter__(self) -> AsyncToolAuth:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
