"""``reinitiate_all`` is the app's choice: the meta tool offers it (in its schema) and obeys it
only on a session made with ``enable_reinitiate_all=True``; otherwise the model cannot ask for
a new link over an ACTIVE account, while a missing or EXPIRED one still gets a normal link."""

from __future__ import annotations

from typing import Any

import pytest

from toolauth import AsyncToolAuth, ConnectionStatus

pytestmark = pytest.mark.parametrize(
    "extra_env", [{"TOOLAUTH_DEMO_CLIENT_ID": "id", "TOOLAUTH_DEMO_CLIENT_SECRET": "secret"}]
)


def call(tool: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": tool.name, "args": args, "id": "call-1", "type": "tool_call"}


async def manage(ta: AsyncToolAuth, user: str, **session: Any) -> tuple[Any, dict[str, Any]]:
    tools = {
        t.name: t for t in ta.create(user, toolkits=["demo"], resume="return", **session).tools()
    }
    tool = tools["COMPOSIO_MANAGE_CONNECTIONS"]
    message = await tool.ainvoke(call(tool, {"toolkits": ["demo"], "reinitiate_all": True}))
    return tool, message.artifact["results"][0]


async def test_reinitiate_all_is_offered_and_obeyed_only_when_the_app_enables_it(
    ta: AsyncToolAuth,
) -> None:
    config = await ta.auth_configs.create("demo")
    await ta.connected_accounts.create("alice", config.id, credentials={"access_token": "t" * 30})
    tool, result = await manage(ta, "alice")
    assert "reinitiate_all" not in tool.args  # not in the schema the model sees
    assert result["redirect_url"] is None and not result["was_reinitiated"]
    tool, result = await manage(ta, "alice", enable_reinitiate_all=True)
    assert "reinitiate_all" in tool.args
    assert result["redirect_url"] and result["was_reinitiated"]
    # The account stays ACTIVE with its grant while the new link is open.
    (account,) = await ta.connected_accounts.list(user_id="alice")
    assert account.is_active and account.credentials["access_token"].get_secret_value() == "t" * 30


async def test_an_expired_account_gets_a_normal_link_without_reinitiate_all(
    ta: AsyncToolAuth,
) -> None:
    config = await ta.auth_configs.create("demo")
    account = await ta.connected_accounts.create(
        "bob", config.id, credentials={"access_token": "t" * 30}
    )
    store = await ta.store()
    await store.save(account.model_copy(update={"status": ConnectionStatus.EXPIRED}))
    _, result = await manage(ta, "bob")
    assert result["redirect_url"] and not result["was_reinitiated"]
