"""One MCP session per (connected account, server), reused across tool calls.

An MCP session costs an ``initialize`` round trip (and the server keeps state for it), so
each account's session stays open in a task of the client's event loop and serves every call
made as that account. It closes when it has been idle for ``TOOLAUTH_MCP_IDLE_TIMEOUT``
seconds, when the account changes so that it is no longer ACTIVE (disabled, expired, deleted,
reconnecting), when the server drops it, and when the toolauth client closes. The next call
opens a new one. Sessions are never shared between accounts, so never between users.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError, UrlElicitationRequiredError

from .._exceptions import ConnectionRequiredError, ToolApiError, ToolAuthError
from .._models import ConnectedAccount
from .._settings import Settings
from ..catalog import McpToolSpec, ToolkitDefinition
from ..store import Store
from .auth import McpAuth
from .results import McpResult, tool_result

__all__ = ["McpSessions", "UrlElicitation"]

log = logging.getLogger("toolauth.mcp")

Signer = Callable[[ConnectedAccount], Awaitable[tuple[str, Any]]]


@dataclass(frozen=True)
class UrlElicitation:
    """A server asks the user to open a URL (MCP URL-mode elicitation), e.g. for its own
    third-party authorization: shown in the chat like a connect link."""

    url: str
    message: str


class McpElicitationRequired(ToolAuthError):
    """A tool call needs the user to open a URL first."""

    error = "url_elicitation_required"

    def __init__(self, toolkit: str, elicitations: list[UrlElicitation]) -> None:
        super().__init__(
            f"{toolkit} asks the user to open a page first: "
            + "; ".join(e.message or e.url for e in elicitations)
        )
        self.toolkit = toolkit
        self.elicitations = elicitations


@dataclass
class _Entry:
    account: ConnectedAccount
    url: str
    auth: McpAuth
    ready: anyio.Event = field(default_factory=anyio.Event)
    closed: anyio.Event = field(default_factory=anyio.Event)
    stop: anyio.Event = field(default_factory=anyio.Event)
    session: ClientSession | None = None
    tools: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    busy: int = 0
    last_used: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None


class McpSessions:
    """The MCP sessions of one toolauth client, by account id."""

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        settings: Settings,
        signer: Signer,
        on_tools: Callable[[str, tuple[McpToolSpec, ...]], Awaitable[None]],
    ) -> None:
        self._store = store
        self._settings = settings
        self._signer = signer
        self._on_tools = on_tools
        self._entries: dict[str, _Entry] = {}
        self._opening: dict[str, anyio.Lock] = {}
        self.opened = 0  # sessions initialized by this client (tests and benchmarks)

    def open_sessions(self) -> list[str]:
        """The account ids with an open session."""
        return [k for k, e in self._entries.items() if not e.closed.is_set()]

    async def _entry(self, account: ConnectedAccount, definition: ToolkitDefinition) -> _Entry:
        if not account.is_active:
            raise ConnectionRequiredError(account.toolkit, account.id, account.status.value)
        assert definition.mcp is not None
        lock = self._opening.setdefault(account.id, anyio.Lock())
        async with lock:
            entry = self._entries.get(account.id)
            if entry is not None and not entry.closed.is_set():
                return entry
            _, inner = await self._signer(account)
            entry = _Entry(account=account, url=definition.mcp.url, auth=McpAuth(inner))
            entry.task = asyncio.get_running_loop().create_task(
                self._run(entry, definition.slug), name=f"toolauth mcp {account.id}"
            )
            self._entries[account.id] = entry
            await entry.ready.wait()
            if entry.session is None:
                raise self._failure(entry, definition)
            return entry

    def _failure(self, entry: _Entry, definition: ToolkitDefinition) -> ToolAuthError:
        if entry.auth.failure is not None:
            return entry.auth.failure
        challenge = entry.auth.challenge
        name = definition.name
        if challenge is not None:
            known = definition.mcp.resource_metadata_url if definition.mcp else None
            hint = challenge.get("resource_metadata")
            if hint and known and hint != known:
                return ToolApiError(
                    f"{name} now names other authorization metadata ({hint}, not {known}): its "
                    "authorization changed. Tell the user; the app must register the server "
                    "again (ta.toolkits.add_mcp(..., replace=True))."
                )
            return ToolApiError(
                f"{name} refused the user's credentials. Ask the user to reconnect {name} "
                "(call the connection manager tool with reinitiate_all=true)."
            )
        kind = type(entry.error).__name__ if entry.error is not None else "closed"
        return ToolApiError(
            f"Could not talk to the MCP server of {name} ({kind}). Try again in a moment; if "
            "it keeps failing, tell the user."
        )

    async def _run(self, entry: _Entry, slug: str) -> None:
        """Open the session, serve calls until idle, stopped or the account changes; close."""
        store = await self._store()
        timeout = httpx2.Timeout(
            self._settings.api_timeout, read=max(300.0, self._settings.api_timeout)
        )
        try:
            with store.changes.subscribe(entry.account.id) as bell:
                async with (
                    httpx2.AsyncClient(auth=entry.auth, timeout=timeout) as http,
                    streamable_http_client(entry.url, http_client=http) as (read, write),
                    ClientSession(read, write) as session,
                ):
                    with anyio.fail_after(self._settings.api_timeout):
                        await session.initialize()
                        listed = await session.list_tools()
                    self.opened += 1
                    entry.tools = list(listed.tools)
                    await self._on_tools(slug, tuple(_tool_spec(t) for t in listed.tools))
                    entry.session = session
                    entry.ready.set()
                    await self._serve(entry, bell, store)
        except Exception as exc:  # reported to callers through entry.error / auth.failure
            entry.error = exc
            log.warning("MCP session of %s ended: %s", entry.account.id, type(exc).__name__)
        finally:
            entry.session = None
            entry.closed.set()
            entry.ready.set()
            if self._entries.get(entry.account.id) is entry:
                del self._entries[entry.account.id]

    async def _serve(self, entry: _Entry, bell: Any, store: Store) -> None:
        idle = self._settings.mcp_idle_timeout
        while not entry.stop.is_set():
            rang = False
            with anyio.move_on_after(max(0.01, entry.last_used + idle - time.monotonic())):
                async with anyio.create_task_group() as group:

                    async def on_stop() -> None:
                        await entry.stop.wait()
                        group.cancel_scope.cancel()

                    async def on_change() -> None:
                        nonlocal rang
                        await bell.wait()
                        rang = True
                        group.cancel_scope.cancel()

                    group.start_soon(on_stop)
                    group.start_soon(on_change)
            if rang:
                current = await store.get_account(entry.account.id)
                if current is None or not current.is_active:
                    return  # deleted, disabled, expired or reconnecting: this session ends
                continue
            if entry.busy == 0 and time.monotonic() - entry.last_used >= idle:
                return

    async def list_tools(
        self, account: ConnectedAccount, definition: ToolkitDefinition
    ) -> tuple[McpToolSpec, ...]:
        """The server's tools as ``account`` sees them (listed when its session opened)."""
        entry = await self._entry(account, definition)
        return tuple(_tool_spec(t) for t in entry.tools)

    async def call(
        self,
        account: ConnectedAccount,
        definition: ToolkitDefinition,
        tool: str,
        arguments: dict[str, Any],
    ) -> McpResult:
        """Call ``tool`` as ``account``: its result, or a ``ToolAuthError`` the model reads."""
        entry = await self._entry(account, definition)
        session = entry.session
        if session is None:
            raise self._failure(entry, definition)
        entry.busy += 1
        entry.last_used = time.monotonic()
        result: Any = None
        try:
            with anyio.move_on_after(self._settings.api_timeout) as timer:
                async with anyio.create_task_group() as group:

                    async def watch() -> None:
                        await entry.closed.wait()
                        group.cancel_scope.cancel()

                    group.start_soon(watch)
                    try:
                        result = await session.call_tool(tool, arguments)
                    finally:
                        group.cancel_scope.cancel()
        except UrlElicitationRequiredError as exc:
            found = [UrlElicitation(str(e.url), e.message) for e in exc.elicitations]
            raise McpElicitationRequired(definition.name, found) from None
        except MCPError as exc:
            if entry.auth.failure is not None or entry.auth.challenge is not None:
                raise self._failure(entry, definition) from None
            raise ToolApiError(
                f"{definition.name} could not run {tool}: {str(exc.error.message)[:300]}"
            ) from None
        finally:
            entry.busy -= 1
            entry.last_used = time.monotonic()
        if result is None:
            if timer.cancelled_caught:
                raise ToolApiError(
                    f"{definition.name} did not answer {tool} within "
                    f"{self._settings.api_timeout:g} s. It may have run: check before retrying."
                )
            raise self._failure(entry, definition)
        return tool_result(result, toolkit=definition.name, tool=tool)

    async def close(self, account_id: str) -> None:
        """Close ``account_id``'s session, if open (the next call opens a new one)."""
        entry = self._entries.get(account_id)
        if entry is not None:
            entry.stop.set()
            await entry.closed.wait()

    async def aclose(self) -> None:
        for account_id in list(self._entries):
            await self.close(account_id)


def _tool_spec(tool: Any) -> McpToolSpec:
    return McpToolSpec(
        name=tool.name,
        description=tool.description or "",
        input_schema=dict(tool.input_schema or {"type": "object"}),
    )
