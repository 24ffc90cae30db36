"""Sessions: one user's view of toolauth — which toolkits, which accounts, which tools."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Literal

import anyio
from pydantic import BaseModel

from .._exceptions import (
    AccountChoiceError,
    ConfigurationError,
    ConnectionRequiredError,
    ScopeRequiredError,
    ValidationError,
)
from .._loop import HomeLoop, on_home_loop
from .._models import (
    AccountIdentity,
    AuthConfig,
    AuthScheme,
    ConnectedAccount,
    ConnectionStatus,
    LinkStatus,
)
from .._settings import ConnectUrls
from .._validation import check_user_id
from ..catalog import Catalog, ToolkitDefinition
from ..events import Actor, acting_as
from ..store import Store
from .auth_configs import AuthConfigs
from .connected_accounts import ConnectedAccounts
from .connection_requests import ConnectionRequest
from .http_clients import AccountClients

if TYPE_CHECKING:
    import httpx

    from ..catalog import McpToolSpec
    from ..mcp import McpResult, McpSessions
    from ..tools import ToolSpec

__all__ = ["ResumeMode", "Session", "ToolkitConnection"]

ResumeMode = Literal["wait", "interrupt", "return"]
_RESUME_MODES = ("wait", "interrupt", "return")


class ToolkitConnection(BaseModel):
    """Where one of a session's toolkits stands for its user."""

    toolkit: str
    name: str
    status: Literal["active", "initiated", "failed", "expired", "inactive", "not_connected"]
    has_active_connection: bool
    connected_account_id: str | None = None
    auth_config_id: str | None = None
    redirect_url: str | None = None
    reason: str | None = None
    identity: AccountIdentity | None = None  # who the active account is at the provider
    # When the user has several ACTIVE accounts of the toolkit: each one's id, alias,
    # connected_as and is_default (what a tool's ``account`` argument chooses among).
    accounts: list[dict[str, object]] = []

    @property
    def connected_as(self) -> str | None:
        """ "alice@example.com": who the active account is, when known."""
        return self.identity.display if self.identity is not None else None


class Session:
    """A user-scoped view: authorize toolkits, check connections, make tools.

    ```python
    session = ta.create("user_123", toolkits=["github", "gmail"])
    tools = session.tools()                       # LangChain tools + the meta tool
    req = await session.authorize("github", callback_url="https://app.example/done")
    ```

    A session only ever reads or uses accounts of its own ``user_id``.
    """

    def __init__(
        self,
        user_id: str,
        *,
        store: Callable[[], Awaitable[Store]],
        urls: ConnectUrls,
        catalog: Catalog,
        configs: AuthConfigs,
        accounts: ConnectedAccounts,
        clients: AccountClients,
        home: HomeLoop,
        account_cache: float = 1.0,
        toolkits: Sequence[str] | None = None,
        auth_configs: Mapping[str, str] | None = None,
        connected_accounts: Mapping[str, str] | None = None,
        resume: ResumeMode = "wait",
        callback_url: str | None = None,
        wait_timeout: float = 600.0,
        manage_connections_tool_name: str = "COMPOSIO_MANAGE_CONNECTIONS",
        wait_tool_name: str | None = "COMPOSIO_WAIT_FOR_CONNECTIONS",
        mcp: Callable[[], McpSessions] | None = None,
        enable_reinitiate_all: bool = False,
    ) -> None:
        self._mcp = mcp
        self._store = store
        self._urls = urls
        self._catalog = catalog
        self._configs = configs
        self._accounts = accounts
        self._clients = clients
        self._home = home
        self._account_cache = account_cache
        self.user_id = check_user_id(user_id)
        if isinstance(toolkits, str):  # "github" or "github,gmail", never its letters
            toolkits = [t for t in toolkits.split(",") if t.strip()]
        # Slugs this process has not seen yet are looked up in the store on first use (another
        # process may have stored them); an unknown one fails there.
        self._unresolved: set[str] = set()
        self.toolkit_slugs: tuple[str, ...] | None = (
            tuple(self._slug(t) for t in toolkits) if toolkits is not None else None
        )
        self._auth_configs = {self._slug(k): v for k, v in (auth_configs or {}).items()}
        self._pinned = {self._slug(k): v for k, v in (connected_accounts or {}).items()}
        if resume not in _RESUME_MODES:
            raise ValidationError(
                f"resume={resume!r} is not valid; use one of {_RESUME_MODES}.", field="resume"
            )
        self.resume: ResumeMode = resume
        self.callback_url = callback_url
        self.wait_timeout = wait_timeout
        self.manage_connections_tool_name = manage_connections_tool_name
        self.wait_tool_name = wait_tool_name
        # The app's choice, never the model's: whether the meta tool offers reinitiate_all.
        self.enable_reinitiate_all = bool(enable_reinitiate_all)
        # toolkit -> (its ACTIVE account, change generation when read, monotonic deadline)
        self._active: dict[str, tuple[ConnectedAccount, int, float]] = {}
        # toolkit -> the user's ACTIVE accounts when last read (several: tools offer a choice)
        self._seen: dict[str, tuple[ConnectedAccount, ...]] = {}
        # toolkit -> the union of the scopes of the tools this session exposes (None: one of
        # them declares none, so the auth config's scopes are asked for)
        self._exposed: dict[str, tuple[str, ...] | None] = {}

    def __repr__(self) -> str:
        return f"Session(user_id={self.user_id!r}, toolkits={self.toolkit_slugs!r})"

    def _slug(self, toolkit: str) -> str:
        name = toolkit.strip().lower() if isinstance(toolkit, str) else ""
        if name in self._catalog or not name:
            return self._catalog.get(name).slug  # an empty name fails here, listing the known
        self._unresolved.add(name)
        return name

    async def _check(self, toolkit: str) -> str:
        """:meth:`check_toolkit`, once the session's slugs are known (read from the store)."""
        for slug in sorted(self._unresolved):
            await self._catalog.resolve(slug)
            self._unresolved.discard(slug)
        return self.check_toolkit(toolkit)

    # which toolkits, configs and accounts ------------------------------------------------
    def available_toolkits(self) -> list[str]:
        """The slugs this session may use: its own list, or else the toolkits a user can
        actually connect here — those with an auth config (given to the session, or enabled
        in the store as far as this client has seen), those whose OAuth app is in the
        environment (``TOOLAUTH_<TOOLKIT>_CLIENT_ID``/``_SECRET``), and those a user connects
        by typing a key or that need no auth."""
        if self.toolkit_slugs is not None:
            return list(self.toolkit_slugs)
        configured = self._configs.configured_toolkits() | set(self._auth_configs)
        return [
            d.slug
            for d in self._catalog.list()
            if d.slug in configured or self._configs.connectable_without_config(d)
        ]

    def toolkit(self, toolkit: str) -> ToolkitDefinition:
        """The definition of one of this session's toolkits (its name, schemes, API)."""
        return self._catalog.get(self.check_toolkit(toolkit))

    def check_toolkit(self, toolkit: str) -> str:
        """The slug of ``toolkit`` if this session may use it; otherwise an error listing them."""
        slug = toolkit.strip().lower() if isinstance(toolkit, str) else ""
        allowed = self.available_toolkits()
        if slug not in allowed:
            raise ValidationError(
                f"Unknown toolkit {toolkit!r} for this session; valid toolkits: "
                f"{', '.join(allowed)}.",
                field="toolkits",
            )
        return slug

    @on_home_loop
    async def auth_config(self, toolkit: str) -> AuthConfig:
        """The auth config this session connects ``toolkit`` through (a managed one is made
        on first use when the deployment has none)."""
        slug = await self._check(toolkit)
        configs = self._configs
        if slug in self._auth_configs:
            config = await configs.get(self._auth_configs[slug])
            if config.toolkit != slug:
                raise ConfigurationError(
                    f"auth_configs[{slug!r}] is {config.id}, a {config.toolkit} config."
                )
            return config
        return await configs.default(slug)

    async def _existing_config(self, slug: str) -> AuthConfig | None:
        """The config this session would connect ``slug`` through, if one exists yet; for a
        toolkit that asks for no auth, its default config, made on first use (every user is
        connected through it at once)."""
        if slug in self._auth_configs:
            return await self.auth_config(slug)
        found = await self._configs.list(toolkit=slug, enabled=True)
        if found:
            return found[0]
        definition = await self._catalog.resolve(slug)
        if definition.default_scheme is AuthScheme.NO_AUTH:
            return await self._configs.default(slug)
        return None

    @on_home_loop
    async def account(self, toolkit: str, choice: str | None = None) -> ConnectedAccount | None:
        """The user's ACTIVE account for ``toolkit``, or ``None``: the pinned one, else the
        one ``choice`` names (its alias, identity login or email, or id), else the default.

        With several ACTIVE accounts and no default (or a ``choice`` naming none of them),
        ``AccountChoiceError`` lists them: never a guess."""
        slug = await self._check(toolkit)
        accounts = self._accounts
        pinned = self._pinned.get(slug)
        if pinned is not None:
            account = await accounts.get(pinned)
            if account.user_id != self.user_id or account.toolkit != slug:
                raise ConfigurationError(
                    f"connected_accounts[{slug!r}] does not belong to this session's user."
                )
            return account if account.is_active else None
        store = await self._store()
        generation = store.changes.generation
        cached = self._active.get(slug)
        if (
            choice is None
            and cached is not None
            and cached[1] == generation
            and time.monotonic() < cached[2]
        ):
            return cached[0]  # nothing changed in this process, and not a second has passed
        auth_config_id = self._auth_configs.get(slug)
        found = await accounts.list(
            user_id=self.user_id, toolkit=slug, status="ACTIVE", auth_config_id=auth_config_id,
        )  # fmt: skip
        self._seen[slug] = tuple(found)
        if choice is not None:
            return _chosen(slug, found, choice)
        if not found:
            # Reading a state makes nothing: only a shared config the app already made can
            # connect the user here (a managed one is made when a link is, in authorize).
            config = await self._existing_config(slug)
            if config is None or not config.is_shared or not config.enabled:
                return None
            # A shared credential: every user of the config is connected at once, no link.
            req = await self._accounts.link(self.user_id, config.id)
            found = [await self._accounts.get(req.connected_account_id)]
        default = next((a for a in found if a.is_default), None)
        if default is None and len(found) > 1 and any(a.alias for a in found):
            raise AccountChoiceError(slug, _choices(found))  # several, none the default
        account = default or found[0]  # the default, or the newest (no aliases in play)
        self._active[slug] = (account, generation, time.monotonic() + self._account_cache)
        return account

    def several_accounts(self, toolkit: str) -> tuple[ConnectedAccount, ...]:
        """The user's ACTIVE accounts of ``toolkit`` as this session last read them, when
        there are more than one (tools then offer an ``account`` argument); else ``()``."""
        seen = self._seen.get(toolkit, ())
        return seen if len(seen) > 1 else ()

    def expose(self, specs: Iterable[ToolSpec]) -> None:
        """Note the tools this session hands out: its links ask for the union of their scopes
        (plus what reading the identity needs), per toolkit, instead of the config's."""
        for spec in specs:
            if spec.toolkit not in self._exposed or self._exposed[spec.toolkit] is not None:
                known = self._exposed.get(spec.toolkit) or ()
                self._exposed[spec.toolkit] = (
                    tuple(dict.fromkeys((*known, *spec.scopes))) if spec.scopes else None
                )

    def _scopes_for(self, config: AuthConfig) -> tuple[str, ...] | None:
        """What this session's link asks for: the union of its tools' scopes on a managed
        OAuth config (a custom config's scopes are the app's choice); None: the config's."""
        exposed = self._exposed.get(config.toolkit)
        if not exposed or not config.is_managed or config.auth_scheme is not AuthScheme.OAUTH2:
            return None
        identity = self._catalog.get(config.toolkit).identity
        extra = identity.scopes if identity is not None else ()
        union = dict.fromkeys((*extra, *exposed))
        order = {scope: i for i, scope in enumerate(config.scopes)}  # the config's order first
        return tuple(sorted(union, key=lambda s: order.get(s, len(order))))

    @on_home_loop
    async def step_up(self, connected_account_id: str, scopes: Sequence[str]) -> ConnectionRequest:
        """A link that adds ``scopes`` to one of this user's accounts: the same account (its
        alias and identity), which keeps working with its old grant until the new one lands.

        Where the catalog says the provider adds scopes to a grant (``incremental_auth``:
        Google's ``include_granted_scopes=true``) the link asks for the missing scopes only;
        elsewhere for the account's scopes and the missing ones."""
        account = await self._accounts.get(connected_account_id)
        if account.user_id != self.user_id:
            raise ConfigurationError("That connected account does not belong to this session.")
        missing = tuple(s for s in dict.fromkeys(scopes) if s not in account.scopes)
        definition = await self._catalog.resolve(account.toolkit)
        config = await self._configs.get(account.auth_config_id)
        if definition.incremental_auth:
            wanted = missing
        else:
            base = account.scopes or self._scopes_for(config) or config.scopes
            wanted = tuple(dict.fromkeys((*base, *missing)))
        return await self._accounts.link(
            self.user_id, account.auth_config_id, callback_url=self.callback_url,
            label=account.label, alias=account.alias, scopes=wanted or None,
            reinitiate=not missing,
        )  # fmt: skip

    # the public session API ----------------------------------------------------------------
    @on_home_loop
    async def authorize(
        self,
        toolkit: str,
        *,
        callback_url: str | None = None,
        reinitiate: bool = False,
        alias: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> ConnectionRequest:
        """A connect link for this user and ``toolkit`` (as ``connected_accounts.link``).

        ``alias`` adds (or reconnects) the account of that name instead of the default one;
        ``scopes``: what the link asks for instead of the auth config's."""
        slug = await self._check(toolkit)
        pinned = self._pinned.get(slug)
        if pinned is not None:
            account = await self._accounts.get(pinned)
            if account.user_id != self.user_id:
                raise ConfigurationError(
                    f"connected_accounts[{slug!r}] does not belong to this session's user."
                )
            auth_config_id = account.auth_config_id
        else:
            config = await self.auth_config(slug)
            auth_config_id = config.id
            if scopes is None:
                scopes = self._scopes_for(config)
        return await self._accounts.link(
            self.user_id, auth_config_id, callback_url=callback_url or self.callback_url,
            reinitiate=reinitiate, alias=alias, scopes=scopes,
        )  # fmt: skip

    @on_home_loop
    async def toolkits(self) -> list[ToolkitConnection]:
        """Each of the session's toolkits with its connection state for this user."""
        return [await self.connection(slug) for slug in self.available_toolkits()]

    @on_home_loop
    async def connection(self, toolkit: str) -> ToolkitConnection:
        slug = await self._check(toolkit)
        definition = await self._catalog.resolve(slug)
        try:
            active = await self.account(slug)
        except AccountChoiceError:  # several, none the default: connected all the same
            active = self._seen[slug][0]
        several = self.several_accounts(slug)
        pinned = self._pinned.get(slug)
        latest: list[ConnectedAccount] = []
        if active is None and pinned is not None:
            latest = [await self._accounts.get(pinned)]  # checked by account()
        elif active is None:
            latest = await self._accounts.list(
                user_id=self.user_id, toolkit=slug, auth_config_id=self._auth_configs.get(slug),
                limit=1,
            )  # fmt: skip
        if latest and latest[0].is_active:  # it became ACTIVE between the two reads
            active = latest[0]
        if active is not None:
            return ToolkitConnection(
                toolkit=slug, name=definition.name, status="active", has_active_connection=True,
                connected_account_id=active.id, auth_config_id=active.auth_config_id,
                identity=active.identity, accounts=_choices(several),
            )  # fmt: skip
        if not latest:
            return ToolkitConnection(
                toolkit=slug, name=definition.name, status="not_connected",
                has_active_connection=False, auth_config_id=self._auth_configs.get(slug),
            )  # fmt: skip
        account = latest[0]
        store = await self._store()
        link = await store.latest_link(account.id)
        redirect_url = None
        if link is not None and link.is_usable():
            redirect_url = self._urls.link(link.id)
        status = account.status.value.lower()
        if (
            account.status is ConnectionStatus.INITIATED
            and link is not None
            and link.status is LinkStatus.FAILED
        ):
            status = "failed"
        return ToolkitConnection(
            toolkit=slug, name=definition.name, status=status,  # type: ignore[arg-type]
            has_active_connection=False, connected_account_id=account.id,
            auth_config_id=account.auth_config_id, redirect_url=redirect_url,
            reason=account.status_reason,
        )  # fmt: skip

    @on_home_loop
    async def client(self, toolkit: str, account: str | None = None) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` signed as this user's ACTIVE ``toolkit`` account (the
        default, or the one ``account`` names: alias, login, email or id).

        Raises ``ConnectionRequiredError`` when the user has not connected it,
        ``AccountChoiceError`` when it cannot be told which account to use.
        """
        slug = await self._check(toolkit)
        found = await self.account(slug, account)
        if found is None:
            raise ConnectionRequiredError(slug)
        return await self._clients.client(found)

    @on_home_loop
    async def execute(self, spec: ToolSpec, args: BaseModel, account: str | None = None) -> Any:
        """Run a toolkit tool as this user: ``spec.run`` with a client signed as their
        ACTIVE account, the default or the one ``account`` names (``ConnectionRequiredError``
        when they have not connected)."""
        with acting_as(Actor.AGENT, spec.name):  # a refresh it causes is the agent's doing
            slug = await self._check(spec.toolkit)
            found = await self.account(slug, account)
            if found is None:
                raise ConnectionRequiredError(slug)
            missing = tuple(s for s in spec.scopes if s not in found.scopes)
            if missing and found.scopes:  # known from the granted scopes
                raise ScopeRequiredError(slug, missing, connected_account_id=found.id)
            outcome = "error"
            try:
                async with await self._clients.client(found) as client:
                    try:
                        result = await spec.run(client, args)
                    except ScopeRequiredError as exc:  # the provider said so (RFC 6750 §3.1)
                        needed = exc.scopes or spec.scopes
                        raise ScopeRequiredError(
                            slug, needed, connected_account_id=found.id
                        ) from None
                outcome = "ok"
                return result
            finally:
                store = await self._store()
                await store.record_audit(
                    "tool.call", outcome=outcome, user_id=found.user_id, toolkit=slug,
                    auth_config_id=found.auth_config_id, connected_account_id=found.id,
                    detail=spec.name,
                )  # fmt: skip

    def _mcp_toolkit(self, toolkit: str) -> ToolkitDefinition:
        definition = self.toolkit(toolkit)
        if definition.mcp is None or self._mcp is None:
            raise ValidationError(
                f"{definition.slug!r} is not an MCP toolkit (add one with ta.toolkits.add_mcp).",
                field="toolkit",
            )
        return definition

    @on_home_loop
    async def mcp_tools(self, toolkit: str) -> tuple[McpToolSpec, ...]:
        """The tools of MCP toolkit ``toolkit``: listed by the server for this user when they
        are connected, else the list last seen for any user (possibly empty)."""
        definition = self._mcp_toolkit(toolkit)
        assert definition.mcp is not None
        assert self._mcp is not None
        account = await self.account(definition.slug)
        if account is None:
            return definition.mcp.tools
        return await self._mcp().list_tools(account, definition)

    @on_home_loop
    async def call_mcp_tool(
        self, toolkit: str, tool: str, arguments: Mapping[str, Any]
    ) -> McpResult:
        """Call ``tool`` of MCP toolkit ``toolkit`` as this user, over their own MCP session
        (``ConnectionRequiredError`` when they have not connected)."""
        definition = self._mcp_toolkit(toolkit)
        assert self._mcp is not None
        account = await self.account(definition.slug)
        if account is None:
            raise ConnectionRequiredError(definition.slug)
        return await self._mcp().call(account, definition, tool, dict(arguments))

    @on_home_loop
    async def wait_for_connections(
        self,
        toolkits: Sequence[str],
        *,
        mode: Literal["any", "all"] = "all",
        timeout: float | None = None,
    ) -> dict[str, ToolkitConnection]:
        """Wait until every one (``mode="all"``) or any one (``"any"``) of ``toolkits`` is
        connected, or none is still connecting; each toolkit's state when it returns (after
        ``timeout`` seconds at most, default ``wait_timeout``)."""
        slugs = [await self._check(t) for t in toolkits]
        store = await self._store()

        async def states() -> dict[str, ToolkitConnection]:
            return {slug: await self.connection(slug) for slug in slugs}

        def finished(now: dict[str, ToolkitConnection]) -> bool:
            if mode == "any" and any(c.has_active_connection for c in now.values()):
                return True
            return all(c.status != "initiated" for c in now.values())

        now = await states()
        ids = [c.connected_account_id for c in now.values() if c.connected_account_id]
        with ExitStack() as stack:
            bells = [stack.enter_context(store.changes.subscribe(i)) for i in ids]
            async with store.watching():
                with anyio.move_on_after(self.wait_timeout if timeout is None else timeout):
                    while not finished(now) and bells:
                        await _first_ring(bells)
                        now = await states()
        return now

    def tools(
        self,
        toolkits: Iterable[str] | None = None,
        tools: Iterable[str] | None = None,
        *,
        extra: Iterable[ToolSpec] = (),
        meta_tools: bool = True,
    ) -> list[Any]:
        """LangChain tools for this session: the toolkits' tools (all the session's toolkits,
        or ``toolkits``; only the names in ``tools`` when given), your own ``extra`` tools, and
        the meta tool(s). They work with ``ainvoke`` and ``invoke``."""
        from ..langchain import session_tools

        return session_tools(self, toolkits=toolkits, names=tools, extra=extra, meta=meta_tools)


def _choices(accounts: Iterable[ConnectedAccount]) -> list[dict[str, object]]:
    """The accounts as the model may choose among them: no secret, nothing but names."""
    return [
        {
            "id": a.id, "alias": a.alias, "is_default": a.is_default,
            "connected_as": a.identity.display if a.identity is not None else None,
        }
        for a in accounts
    ]  # fmt: skip


def _chosen(slug: str, accounts: list[ConnectedAccount], choice: str) -> ConnectedAccount | None:
    """The one account ``choice`` names: id, alias, or identity login or email."""
    wanted = choice.strip().casefold()
    if not accounts:
        return None
    rules: tuple[Callable[[ConnectedAccount], bool], ...] = (
        lambda a: a.id == choice.strip(),
        lambda a: (a.alias or "").casefold() == wanted,
        lambda a: a.identity is not None and wanted in a.identity.names(),
    )
    for rule in rules:
        matches = [a for a in accounts if rule(a)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise AccountChoiceError(slug, _choices(matches), asked=choice)
    raise AccountChoiceError(slug, _choices(accounts), asked=choice)


async def _first_ring(bells: list[Any]) -> None:
    """Return when any of the bells rings."""
    async with anyio.create_task_group() as group:

        async def ring(bell: Any) -> None:
            await bell.wait()
            group.cancel_scope.cancel()

        for bell in bells:
            group.start_soon(ring, bell)
