"""``AsyncToolAuth``: the async client every other API hangs from."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from ._exceptions import ConfigurationError
from ._keys import key_file_path, load_keyring, uses_key_file
from ._loops import HomeLoop
from ._settings import Settings
from .catalog import Catalog
from .resources.auth_configs import AuthConfigs
from .resources.connected_accounts import ConnectedAccounts
from .resources.sessions import Session
from .resources.toolkits import Toolkits
from .store import Store, display_url, open_store, store_class

if TYPE_CHECKING:
    import httpx

    from .connect.flow import ConnectFlow
    from .oauth.refresh import TokenManager
    from .resources.http_clients import SharedTransport

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
        catalog: the toolkit catalog (default: the shipped definitions).
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
        self.settings = settings.with_overrides(**overrides)
        self.catalog = catalog if catalog is not None else Catalog()
        self.toolkits = Toolkits(self)
        self.auth_configs = AuthConfigs(self)
        self.connected_accounts = ConnectedAccounts(self)
        self._tokens: TokenManager | None = None
        self._connect_flow: ConnectFlow | None = None
        self.home = HomeLoop()
        self._store: Store | None = None
        self._http: httpx.AsyncClient | None = None
        self._api_transport: SharedTransport | None = None
        # auth config id -> (toolkit definition, credential placements); a config's scheme
        # never changes, so this only goes stale when the definition is replaced.
        self._placements: dict[str, tuple[Any, tuple[Any, ...]]] = {}
        self._open_lock: anyio.Lock | None = None

    def __repr__(self) -> str:
        return f"AsyncToolAuth(database_url={display_url(self.settings.database_url)!r})"

    # lifecycle ---------------------------------------------------------------------------
    async def store(self) -> Store:
        """The open store, opening it (and applying migrations) on first use."""
        if self._store is not None:
            return self._store
        if self._open_lock is None:
            self._open_lock = anyio.Lock()
        async with self._open_lock:
            if self._store is None:
                self._store = await self._open_store()
                self.home.claim()
        return self._store

    async def _open_store(self) -> Store:
        store_class(self.settings.database_url)  # an unusable URL is the first thing to report
        keyring = await load_keyring(self.settings)
        store = await open_store(self.settings.database_url, keyring)
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
    def api_transport(self) -> httpx.AsyncBaseTransport:
        """The connection pool that every account's API client shares (closed with us)."""
        if self._api_transport is None:
            import httpx

            from .resources.http_clients import SharedTransport

            self._api_transport = SharedTransport(
                httpx.AsyncHTTPTransport(limits=httpx.Limits(max_keepalive_connections=20))
            )
        return self._api_transport

    @property
    def http(self) -> httpx.AsyncClient:
        """The client's own HTTP client for provider calls (token, discovery, revocation)."""
        if self._http is None:
            import httpx  # loaded on first use: `import toolauth` stays light

            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(10.0, connect=5.0),
                headers={"User-Agent": "toolauth"},
                follow_redirects=False,
            )
        return self._http

    @property
    def tokens(self) -> TokenManager:
        """Refresh and revocation of OAuth tokens (loaded on first use)."""
        if self._tokens is None:
            from .oauth.refresh import TokenManager

            self._tokens = TokenManager(self)
        return self._tokens

    @property
    def connect_flow(self) -> ConnectFlow:
        """The steps of connect links, for the connect app (loaded on first use)."""
        if self._connect_flow is None:
            from .connect.flow import ConnectFlow

            self._connect_flow = ConnectFlow(self)
        return self._connect_flow

    # sessions -----------------------------------------------------------------------------
    def create(self, user_id: str, **options: Any) -> Session:
        """A :class:`Session` for ``user_id``: ``toolkits=[...]``, ``auth_configs={toolkit:
        ac_id}``, ``connected_accounts={toolkit: ca_id}``, ``resume="wait"|"interrupt"|
        "return"``, ``callback_url=``, ``wait_timeout=``."""
        return Session(self, user_id, **options)

    # the connect app --------------------------------------------------------------------
    def asgi_app(self) -> Any:
        """The connect app (a Starlette app) for this client, to mount or serve.

        ```python
        app.mount("/toolauth", ta.asgi_app())   # then base_url=".../toolauth"
        ```
        """
        from .connect import create_connect_app

        return create_connect_app(self)

    def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> Any:
        """Run the connect app in the background on this event loop.

        ``async with ta.serve(port=0) as url:`` — with no explicit ``base_url`` setting, the
        client's ``base_url`` becomes the served URL while the server runs.
        """
        from .connect.server import serve_client

        return serve_client(self, host=host, port=port)

    async def open(self) -> AsyncToolAuth:
        await self.store()
        return self

    async def aclose(self) -> None:
        store, self._store = self._store, None
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
        transport, self._api_transport = self._api_transport, None
        if transport is not None:
            await transport.close()
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
