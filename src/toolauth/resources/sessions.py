"""Sessions: one user's view of toolauth — which toolkits, which accounts, which tools."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import anyio
from pydantic import BaseModel

from .._exceptions import ConfigurationError, ConnectionRequiredError, ValidationError
from .._models import AuthConfig, ConnectedAccount, ConnectionStatus, LinkStatus
from .._sync import sync_wrapped
from .._validation import check_user_id
from .connection_requests import ConnectionRequest

if TYPE_CHECKING:
    import httpx

    from .._client import AsyncToolAuth
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


@sync_wrapped
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
        client: AsyncToolAuth,
        user_id: str,
        *,
        toolkits: Sequence[str] | None = None,
        auth_configs: Mapping[str, str] | None = None,
        connected_accounts: Mapping[str, str] | None = None,
        resume: ResumeMode = "wait",
        callback_url: str | None = None,
        wait_timeout: float = 600.0,
        manage_connections_tool_name: str = "COMPOSIO_MANAGE_CONNECTIONS",
        wait_tool_name: str | None = "COMPOSIO_WAIT_FOR_CONNECTIONS",
    ) -> None:
        self._client = client
        self.user_id = check_user_id(user_id)
        catalog = client.catalog
        self.toolkit_slugs: tuple[str, ...] | None = (
            tuple(catalog.get(t).slug for t in toolkits) if toolkits is not None else None
        )
        self._auth_configs = {catalog.get(k).slug: v for k, v in (auth_configs or {}).items()}
        self._pinned = {catalog.get(k).slug: v for k, v in (connected_accounts or {}).items()}
        if resume not in _RESUME_MODES:
            raise ValidationError(
                f"resume={resume!r} is not valid; use one of {_RESUME_MODES}.", field="resume"
            )
        self.resume: ResumeMode = resume
        self.callback_url = callback_url
        self.wait_timeout = wait_timeout
        self.manage_connections_tool_name = manage_connections_tool_name
        self.wait_tool_name = wait_tool_name
        self._default_lock: anyio.Lock | None = None
        # toolkit -> (its ACTIVE account, change generation when read, monotonic deadline)
        self._active: dict[str, tuple[ConnectedAccount, int, float]] = {}

    def __repr__(self) -> str:
        return f"Session(user_id={self.user_id!r}, toolkits={self.toolkit_slugs!r})"

    # which toolkits, configs and accounts ------------------------------------------------
    def available_toolkits(self) -> list[str]:
        """The slugs this session may use: its own list, or every toolkit in the catalog."""
        if self.toolkit_slugs is not None:
            return list(self.toolkit_slugs)
        return self._client.catalog.slugs()

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

    async def auth_config(self, toolkit: str) -> AuthConfig:
        """The auth config this session connects ``toolkit`` through (a managed one is made
        on first use when the deployment has none)."""
        slug = self.check_toolkit(toolkit)
        configs = self._client.auth_configs
        if slug in self._auth_configs:
            config = await configs.get(self._auth_configs[slug])
            if config.toolkit != slug:
                raise ConfigurationError(
                    f"auth_configs[{slug!r}] is {config.id}, a {config.toolkit} config."
                )
            return config
        found = await configs.list(toolkit=slug, enabled=True)
        if found:
            return found[0]
        if self._default_lock is None:
            self._default_lock = anyio.Lock()
        async with self._default_lock:
            found = await configs.list(toolkit=slug, enabled=True)
            return found[0] if found else await configs.create(slug)

    async def account(self, toolkit: str) -> ConnectedAccount | None:
        """The user's ACTIVE account for ``toolkit`` (the pinned one, if any), or ``None``."""
        slug = self.check_toolkit(toolkit)
        accounts = self._client.connected_accounts
        pinned = self._pinned.get(slug)
        if pinned is not None:
            account = await accounts.get(pinned)
            if account.user_id != self.user_id or account.toolkit != slug:
                raise ConfigurationError(
                    f"connected_accounts[{slug!r}] does not belong to this session's user."
                )
            return account if account.is_active else None
        store = await self._client.store()
        generation = store.changes.generation
        cached = self._active.get(slug)
        if cached is not None and cached[1] == generation and time.monotonic() < cached[2]:
            return cached[0]  # nothing changed in this process, and not a second has passed
        auth_config_id = self._auth_configs.get(slug)
        found = await accounts.list(
            user_id=self.user_id, toolkit=slug, status="ACTIVE", auth_config_id=auth_config_id,
            limit=1,
        )  # fmt: skip
        if not found:
            return None
        self._active[slug] = (found[0], generation, time.monotonic() + 1.0)
        return found[0]

    # the public session API ----------------------------------------------------------------
    async def authorize(
        self, toolkit: str, *, callback_url: str | None = None, reinitiate: bool = False
    ) -> ConnectionRequest:
        """A connect link for this user and ``toolkit`` (as ``connected_accounts.link``)."""
        slug = self.check_toolkit(toolkit)
        pinned = self._pinned.get(slug)
        if pinned is not None:
            account = await self._client.connected_accounts.get(pinned)
            if account.user_id != self.user_id:
                raise ConfigurationError(
                    f"connected_accounts[{slug!r}] does not belong to this session's user."
                )
            auth_config_id = account.auth_config_id
        else:
            auth_config_id = (await self.auth_config(slug)).id
        return await self._client.connected_accounts.link(
            self.user_id, auth_config_id, callback_url=callback_url or self.callback_url,
            reinitiate=reinitiate,
        )  # fmt: skip

    async def toolkits(self) -> list[ToolkitConnection]:
        """Each of the session's toolkits with its connection state for this user."""
        return [await self.connection(slug) for slug in self.available_toolkits()]

    async def connection(self, toolkit: str) -> ToolkitConnection:
        slug = self.check_toolkit(toolkit)
        definition = self._client.catalog.get(slug)
        active = await self.account(slug)
        pinned = self._pinned.get(slug)
        latest: list[ConnectedAccount] = []
        if active is None and pinned is not None:
            latest = [await self._client.connected_accounts.get(pinned)]  # checked by account()
        elif active is None:
            latest = await self._client.connected_accounts.list(
                user_id=self.user_id, toolkit=slug, auth_config_id=self._auth_configs.get(slug),
                limit=1,
            )  # fmt: skip
        if latest and latest[0].is_active:  # it became ACTIVE between the two reads
            active = latest[0]
        if active is not None:
            return ToolkitConnection(
                toolkit=slug, name=definition.name, status="active", has_active_connection=True,
                connected_account_id=active.id, auth_config_id=active.auth_config_id,
            )  # fmt: skip
        if not latest:
            return ToolkitConnection(
                toolkit=slug, name=definition.name, status="not_connected",
                has_active_connection=False, auth_config_id=self._auth_configs.get(slug),
            )  # fmt: skip
        account = latest[0]
        store = await self._client.store()
        link = await store.latest_link(account.id)
        redirect_url = None
        if link is not None and link.is_usable():
            redirect_url = f"{self._client.settings.base_url}/link/{link.id}"
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

    async def client(self, toolkit: str) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` signed as this user's ACTIVE ``toolkit`` account.

        Raises ``ConnectionRequiredError`` when the user has not connected it.
        """
        slug = self.check_toolkit(toolkit)
        account = await self.account(slug)
        if account is None:
            raise ConnectionRequiredError(slug)
        from .http_clients import account_http_client

        return await account_http_client(self._client, account)

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
