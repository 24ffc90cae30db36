"""HTTP clients signed as a connected account, on its toolkit's API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._exceptions import ConnectionRequiredError
from .._http import HttpPool
from .._models import AuthConfig, ConnectedAccount
from .._settings import ConnectUrls, Settings
from ..catalog import ApiKeySchemeSpec, Catalog, CredentialPlacement, OAuth2SchemeSpec
from ..catalog.templates import render
from ..oauth.refresh import TokenManager
from ..store import Store

if TYPE_CHECKING:
    import httpx

    from ..catalog import ToolkitDefinition
    from .account_auth import AccountAuth

__all__ = ["AccountClients"]


class AccountClients:
    """Makes ``httpx.AsyncClient``s whose requests carry one account's credentials."""

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        settings: Settings,
        urls: ConnectUrls,
        catalog: Catalog,
        http: HttpPool,
        tokens: TokenManager,
        auth_config: Callable[[str], Awaitable[AuthConfig]],
    ) -> None:
        self._store = store
        self._settings = settings
        self._urls = urls
        self._catalog = catalog
        self._http = http
        self._tokens = tokens
        self._auth_config = auth_config
        # auth config id -> (toolkit definition, credential placements); a config's scheme
        # never changes, so this only goes stale when the definition is replaced.
        self._placements: dict[str, tuple[ToolkitDefinition, tuple[CredentialPlacement, ...]]] = {}

    async def client(self, account: ConnectedAccount, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` on the toolkit's API base URL, signed as ``account``.

        It sends the account's credentials to the toolkit's API origins only: the base URL's,
        and those the catalog lists in ``api_origins``. A request to any other URL raises
        :class:`~toolauth.ToolApiError` and is not sent; a redirect followed to another origin
        goes without credentials."""
        import httpx  # loaded on first use: `import toolauth` stays light

        from .account_auth import guard_client  # needs httpx too

        base_url, auth = await self.signer(account)
        definition = self._catalog.get(account.toolkit)
        if "transport" not in kwargs and "verify" not in kwargs:
            kwargs["transport"] = self._http.api_transport  # one pool for every account
        timeout = self._settings.api_timeout
        client = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            headers={"User-Agent": "toolauth", **definition.default_headers},
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            **kwargs,
        )
        return guard_client(client, auth.origins, auth.placements)

    async def signer(self, account: ConnectedAccount) -> tuple[str, AccountAuth]:
        """The toolkit's API base URL for ``account`` and the ``httpx.Auth`` that signs
        requests as it (to the API's origins only), for clients built elsewhere (the MCP hop).
        """
        from .account_auth import AccountAuth, ApiOrigins  # needs httpx

        if not account.is_active:
            raise ConnectionRequiredError(account.toolkit, account.id, account.status.value)
        store = await self._store()
        generation = store.changes.generation
        definition = await self._catalog.resolve(account.toolkit)
        placements = await self._placements_of(account, definition)
        # The deployment's values win: an account's data (a site, a region) fills only the
        # placeholders the deployment leaves open, never its base_url or provider URL.
        variables = {**{
            k: str(v) for k, v in account.data.items() if isinstance(v, str)
        }, **self._urls.variables}  # fmt: skip
        # TOOLAUTH_<TOOLKIT>_API_BASE_URL points a toolkit elsewhere (GitHub Enterprise, a fake).
        override = self._settings.environ.get(f"TOOLAUTH_{definition.slug.upper()}_API_BASE_URL")
        base_url = render(override or definition.api_base_url, variables, what="api_base_url")
        origins = ApiOrigins(definition.slug, (base_url, *definition.api_origins))
        auth = AccountAuth(
            account.id, placements, store=self._store, tokens=self._tokens,
            cache_seconds=self._settings.account_cache, origins=origins,
            seed=(account, generation),
        )  # fmt: skip
        return base_url, auth

    async def _placements_of(
        self, account: ConnectedAccount, definition: ToolkitDefinition
    ) -> tuple[CredentialPlacement, ...]:
        """How the account's credentials go on a request: from its config's scheme and the
        toolkit's definition, cached per config and definition."""
        cached = self._placements.get(account.auth_config_id)
        if cached is not None and cached[0] is definition:
            return cached[1]
        config = await self._auth_config(account.auth_config_id)
        spec = definition.scheme(config.auth_scheme)
        found: tuple[CredentialPlacement, ...] = ()
        if isinstance(spec, OAuth2SchemeSpec):
            found = (spec.placement,)
        elif isinstance(spec, ApiKeySchemeSpec):
            found = spec.placements
        self._placements[account.auth_config_id] = (definition, found)
        return found
