"""The tools of a sync ``ToolAuth`` session work from plain sync code (``invoke``), from
another event loop (``ainvoke`` under ``asyncio.run``) and inside a sync agent run; the tools
of an ``AsyncToolAuth`` session work from a worker thread."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import ToolMessage

from tests.agents.scripted_model import ScriptedChatModel, call, say, tool_results
from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Connect, make_settings
from toolauth import ToolAuth
from toolauth._loop import InsideLoopError
from toolauth.connect.serving import serve_app_in_thread
from toolauth.demo.provider import DemoProvider

ITEMS = ["Follow the white rabbit", "Have tea with the Hatter"]


@pytest.fixture
def sync_client(home: Path) -> Iterator[tuple[ToolAuth, DemoProvider]]:
    """A sync client whose alice already has an ACTIVE demo account (tokens minted by the
    provider, which is served from its own thread)."""
    demo = DemoProvider()
    demo.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, ["http://127.0.0.1/cb"])
    with serve_app_in_thread(demo.app) as provider_url:
        settings = make_settings(
            home, TOOLAUTH_DEMO_PROVIDER_URL=provider_url,
            TOOLAUTH_DEMO_CLIENT_ID=DEMO_CLIENT_ID, TOOLAUTH_DEMO_CLIENT_SECRET=DEMO_CLIENT_SECRET,
        )  # fmt: skip
        with ToolAuth(settings=settings) as ta:
            config = ta.auth_configs.create("demo")
            tokens = demo.issue_tokens("alice", client_id=DEMO_CLIENT_ID)
            ta.connected_accounts.create(
                "alice", config.id,
                credentials={k: tokens[k] for k in ("access_token", "refresh_token")},
            )  # fmt: skip
            yield ta, demo


def _tools(ta: ToolAuth, user_id: str = "alice", **options: Any) -> dict[str, Any]:
    return {t.name: t for t in ta.create(user_id, toolkits=["demo"], **options).tools()}


def test_invoke_from_plain_sync_code(sync_client: tuple[ToolAuth, DemoProvider]) -> None:
    ta, _ = sync_client
    tools = _tools(ta)
    content = tools["DEMO_LIST_ITEMS"].invoke({"limit": 5})
    assert [i["name"] for i in json.loads(content)["items"]] == ITEMS
    message = tools["DEMO_GET_PROFILE"].invoke(
        {"type": "tool_call", "id": "c1", "name": "DEMO_GET_PROFILE", "args": {}}
    )
    assert isinstance(message, ToolMessage)
    assert message.artifact["email"] == "alice@example.com"
    created = tools["DEMO_CREATE_ITEM"].invoke({"name": "Paint the roses red"})
    assert json.loads(created)["created"] is True
    meta = json.loads(tools["COMPOSIO_MANAGE_CONNECTIONS"].invoke({"toolkits": ["demo"]}))
    assert meta["summary"]["active"] == 1


def test_ainvoke_from_another_event_loop(sync_client: tuple[ToolAuth, DemoProvider]) -> None:
    ta, _ = sync_client
    tools = _tools(ta)

    async def main() -> list[Any]:
        return await asyncio.gather(
            tools["DEMO_LIST_ITEMS"].ainvoke({}), tools["DEMO_GET_PROFILE"].ainvoke({})
        )

    items, profile = asyncio.run(main())
    assert [i["name"] for i in json.loads(items)["items"]] == ITEMS
    assert json.loads(profile)["name"] == "Alice Liddell"
    # and again from a second, fresh loop
    assert json.loads(asyncio.run(tools["DEMO_GET_PROFILE"].ainvoke({})))["sub"]


def test_sync_connection_required_and_return_mode(
    sync_client: tuple[ToolAuth, DemoProvider],
) -> None:
    ta, _ = sync_client
    tools = _tools(ta, "carol", resume="return")
    needed = json.loads(tools["DEMO_LIST_ITEMS"].invoke({}))
    assert needed["error"] == "connection_required"
    meta = json.loads(tools["COMPOSIO_MANAGE_CONNECTIONS"].invoke({"toolkits": ["demo"]}))
    assert meta["results"][0]["redirect_url"] == needed["redirect_url"]


def test_sync_agent_run(sync_client: tuple[ToolAuth, DemoProvider]) -> None:
    ta, _ = sync_client
    session = ta.create("alice", toolkits=["demo"])
    model = ScriptedChatModel(
        script=[
            call("DEMO_LIST_ITEMS", "DEMO_GET_PROFILE"),
            lambda m: say(
                ", ".join(
                    i["name"] for i in tool_results(m, "DEMO_LIST_ITEMS")[-1].artifact["items"]
                )
            ),
        ]
    )
    result = create_agent(model, session.tools()).invoke({"messages": [("user", "items?")]})
    assert result["messages"][-1].content == ", ".join(ITEMS)
    assert all(m.status == "success" for m in tool_results(result["messages"]))


async def test_async_client_tools_from_a_worker_thread(connect: Connect) -> None:
    ta, provider = connect.ta, connect.provider
    config = await ta.auth_configs.create("demo")
    tokens = provider.issue_tokens("alice", client_id=DEMO_CLIENT_ID)
    await ta.connected_accounts.create(
        "alice", config.id, credentials={"access_token": tokens["access_token"]}
    )
    tool = {t.name: t for t in ta.create("alice", toolkits=["demo"]).tools()}["DEMO_GET_PROFILE"]
    profile = await asyncio.to_thread(tool.invoke, {})
    assert json.loads(profile)["name"] == "Alice Liddell"
    # invoked synchronously on the client's own loop: a clear error for the caller (not an
    # observation for the model, not a deadlock)
    with pytest.raises(InsideLoopError, match="use `await tool.ainvoke"):
        tool.invoke({"type": "tool_call", "id": "c9", "name": tool.name, "args": {}})


@pytest.mark.parametrize("first_call", ["invoke", "ainvoke"])
def test_a_tool_call_can_be_the_sync_clients_first_use(home: Path, first_call: str) -> None:
    """The store opens on the client's own loop thread even when a tool call, run under a
    short-lived event loop, is the first thing that touches it."""
    settings = make_settings(
        home, TOOLAUTH_DEMO_PROVIDER_URL="http://127.0.0.1:9",
        TOOLAUTH_DEMO_CLIENT_ID=DEMO_CLIENT_ID, TOOLAUTH_DEMO_CLIENT_SECRET=DEMO_CLIENT_SECRET,
    )  # fmt: skip
    with ToolAuth(settings=settings) as ta:
        meta = _tools(ta, "dave", resume="return")["COMPOSIO_MANAGE_CONNECTIONS"]
        args = {"toolkits": ["demo"]}
        if first_call == "invoke":
            first = json.loads(meta.invoke(args))
        else:
            first = json.loads(asyncio.run(meta.ainvoke(args)))
        second = json.loads(meta.invoke(args))
        assert first["results"][0]["status"] == "initiated"
        assert second["results"][0]["redirect_url"] == first["results"][0]["redirect_url"]
        assert len(ta.connected_accounts.list(user_id="dave")) == 1
