"""The sync API is whole: nothing reached through ``ToolAuth`` returns an awaitable, and every
method of the async API that does I/O is awaitable (the sync face blocks on exactly those)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from tests.conftest import Connect
from toolauth import AsyncToolAuth, ConnectionRequest, Session, Settings, ToolAuth
from toolauth.demo.browser import complete_in_background
from toolauth.resources.auth_configs import AuthConfigs
from toolauth.resources.connected_accounts import ConnectedAccounts
from toolauth.resources.toolkits import Toolkits

# Methods of the async API that do no I/O: plain calls on both faces.
PURE = {
    Toolkits: {"list", "get", "source"},
    AuthConfigs: {"configured_toolkits", "connectable_without_config"},
    ConnectedAccounts: set(),
    Session: {
        "available_toolkits",
        "check_toolkit",
        "expose",
        "several_accounts",
        "toolkit",
        "tools",
    },
    ConnectionRequest: set(),
}


def _public_methods(cls: type[Any]) -> dict[str, Any]:
    return {
        name: member
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and inspect.isfunction(member)
    }


def test_every_async_method_that_does_io_is_awaitable() -> None:
    for cls, pure in PURE.items():
        for name, method in _public_methods(cls).items():
            if name in pure:
                assert not inspect.iscoroutinefunction(method), f"{cls.__name__}.{name}"
            else:
                assert inspect.iscoroutinefunction(method), (
                    f"{cls.__name__}.{name} does I/O but is not a coroutine function"
                )


def _not_awaitable(value: Any, where: str) -> Any:
    assert not inspect.isawaitable(value), f"{where} returned an awaitable"
    for item in value if isinstance(value, list) else [value]:
        assert not inspect.isawaitable(item), f"{where} returned a list of awaitables"
    return value


async def test_nothing_through_the_sync_client_returns_an_awaitable(connect: Connect) -> None:
    """Every method of every object the sync client hands out, called for real (from a worker
    thread: the connect app serves on this test's loop meanwhile)."""
    await asyncio.to_thread(_walk_sync_api, connect)


def _walk_sync_api(connect: Connect) -> None:
    settings = Settings.from_env({**connect.env, "TOOLAUTH_HOME": str(connect.ta.settings.home)})
    key = connect.provider.issue_api_key("alice")
    with ToolAuth(settings=settings, base_url=connect.base_url) as ta:
        w = _not_awaitable
        configs, accounts = ta.auth_configs, ta.connected_accounts
        oauth = w(configs.create("demo"), "auth_configs.create")
        keyed = w(configs.create("demo", auth_scheme="API_KEY"), "auth_configs.create")
        w(configs.default("demo"), "auth_configs.default")
        w(configs.list(toolkit="demo"), "auth_configs.list")
        w(configs.get(oauth.id), "auth_configs.get")
        w(configs.update(oauth.id, name="renamed"), "auth_configs.update")
        w(configs.disable(keyed.id), "auth_configs.disable")
        w(configs.enable(keyed.id), "auth_configs.enable")
        w(configs.refresh_configured(), "auth_configs.refresh_configured")
        w(ta.toolkits.list(), "toolkits.list")
        weather = {"slug": "weather", "name": "Weather", "description": "A public API.",
                   "api_base_url": "https://weather.test", "auth_schemes": {"NO_AUTH": {}}}  # fmt: skip
        w(ta.toolkits.register(weather), "toolkits.register")
        w(ta.toolkits.remove("weather"), "toolkits.remove")

        session = w(ta.create("user_123", toolkits=["demo"]), "create")
        assert not inspect.iscoroutinefunction(session.authorize)
        w(session.available_toolkits(), "session.available_toolkits")
        w(session.auth_config("demo"), "session.auth_config")
        w(session.account("demo"), "session.account")
        w(session.toolkits(), "session.toolkits")
        w(session.connection("demo"), "session.connection")
        req = w(session.authorize("demo"), "session.authorize")
        assert req.redirect_url and req.id.startswith("ca_") and req.link_id.startswith("ln_")
        user = complete_in_background(req.redirect_url, delay=0)
        user.join(10)
        assert user.error is None, user.error
        account = w(req.wait_for_connection(timeout=10), "wait_for_connection")
        assert account.is_active and account.id == req.id
        w(session.wait_for_connections(["demo"], timeout=1), "session.wait_for_connections")
        client = w(session.client("demo"), "session.client")
        w(session.tools(), "session.tools")

        keyed_req = w(accounts.link("user_123", keyed.id), "connected_accounts.link")
        imported = w(
            accounts.create("user_456", keyed.id, credentials={"api_key": key}),
            "connected_accounts.create",
        )
        w(accounts.get(imported.id), "connected_accounts.get")
        w(accounts.list(user_id="user_123"), "connected_accounts.list")
        w(accounts.wait_for_connection(account.id, timeout=1), "wait_for_connection")
        w(accounts.http_client(imported.id), "connected_accounts.http_client")
        w(accounts.refresh(account.id), "connected_accounts.refresh")
        w(accounts.disable(imported.id), "connected_accounts.disable")
        w(accounts.enable(imported.id), "connected_accounts.enable")
        w(accounts.delete(imported.id), "connected_accounts.delete")
        assert keyed_req.link_id is not None
        assert type(client).__name__ == "AsyncClient"  # httpx's own type, used with ainvoke


async def test_async_client_methods_are_awaited_not_blocking(ta: AsyncToolAuth) -> None:
    config = await ta.auth_configs.create("openai")
    assert inspect.isawaitable(coro := ta.auth_configs.get(config.id))
    assert (await coro).id == config.id


def test_reading_a_sessions_toolkits_makes_nothing_and_needs_no_oauth_app(
    tmp_path: Any,
) -> None:
    """A new user's script: a session with GitHub (no OAuth app configured yet) and an
    API-key toolkit. ``session.toolkits()`` says GitHub is not connected, and creates no auth
    config (one is made when a link is: ``authorize`` then says which app to configure)."""
    from toolauth import ConfigurationError

    ta = ToolAuth(settings=Settings.from_env({"TOOLAUTH_HOME": str(tmp_path)}))
    try:
        openai = ta.auth_configs.create("openai")
        ta.connected_accounts.create(
            "user_123", openai.id, credentials={"api_key": "sk-proj-0123456789abcdefghij"}
        )
        session = ta.create("user_123", toolkits=["github", "openai"])
        states = {c.toolkit: c.status for c in session.toolkits()}
        assert states == {"github": "not_connected", "openai": "active"}
        assert ta.auth_configs.list(toolkit="github") == []
        with pytest.raises(ConfigurationError, match="TOOLAUTH_GITHUB_CLIENT_ID"):
            session.authorize("github")
    finally:
        ta.close()
