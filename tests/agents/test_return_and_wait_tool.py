"""resume="return" hands the link back at once; COMPOSIO_WAIT_FOR_CONNECTIONS waits for it."""

from __future__ import annotations

import json
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from tests.agents.scripted_model import ScriptedChatModel, call, last_json, say
from tests.agents.support import User, assert_no_secrets, stream
from tests.conftest import Connect
from toolauth import AsyncToolAuth

MANAGE = ("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["demo"]})


def show_link(messages: list[BaseMessage]) -> AIMessage:
    result = last_json(messages, "COMPOSIO_MANAGE_CONNECTIONS")
    entry = result["results"][0]
    assert entry["status"] == "initiated"
    assert result["summary"]["initiated"] == 1
    assert "Call this tool again" in result["message"]
    return say(f"Please connect Demo: {entry['redirect_url']}")


async def test_return_mode_hands_back_the_link(connect: Connect, user: User) -> None:
    ta = connect.ta
    session = ta.create("alice", toolkits=["demo"], resume="return")

    def active_now(messages: list[BaseMessage]) -> AIMessage:
        assert last_json(messages, "COMPOSIO_MANAGE_CONNECTIONS")["summary"]["active"] == 1
        return call(("DEMO_LIST_ITEMS", {"limit": 1}))

    def answer(messages: list[BaseMessage]) -> AIMessage:
        return say(last_json(messages, "DEMO_LIST_ITEMS")["items"][0]["name"])

    model = ScriptedChatModel(script=[call(MANAGE), show_link, call(MANAGE), active_now, answer])
    agent = create_agent(model, session.tools(), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "return"}}

    first = await stream(agent, {"messages": [("user", "What is my first Demo item?")]}, config)
    reply = first.output["messages"][-1].content
    assert reply.startswith("Please connect Demo: http://127.0.0.1")
    assert [ln["redirect_url"] for ln in first.links] == [reply.split(": ", 1)[1]]
    assert (await session.connection("demo")).status == "initiated"

    user.open_link(first.links[0]["redirect_url"])
    await user.done()
    second = await stream(agent, {"messages": [("user", "Done, I connected it.")]}, config)
    assert second.links == []
    assert second.output["messages"][-1].content == "Follow the white rabbit"
    await assert_no_secrets(ta, connect.provider, first.events, second.events, second.output)


async def _github_link(ta: AsyncToolAuth) -> None:
    """A custom GitHub OAuth app, so a GitHub link can be opened (and left pending)."""
    await ta.auth_configs.create(
        "github", type="use_custom_auth",
        credentials={"client_id": "gh-app", "client_secret": "gh-secret-SENTINEL"},
    )  # fmt: skip


async def _wait_tool_run(connect: Connect, user: User, mode: str, toolkits: list[str]) -> Any:
    ta = connect.ta
    session = ta.create("alice", toolkits=["demo", "github"], resume="return", wait_timeout=15)

    def wait(messages: list[BaseMessage]) -> AIMessage:
        result = last_json(messages, "COMPOSIO_MANAGE_CONNECTIONS")
        assert result["summary"]["initiated"] == len(toolkits)
        return call(("COMPOSIO_WAIT_FOR_CONNECTIONS", {"toolkits": toolkits, "mode": mode}))

    def report(messages: list[BaseMessage]) -> AIMessage:
        return say(json.dumps(last_json(messages, "COMPOSIO_WAIT_FOR_CONNECTIONS")))

    model = ScriptedChatModel(
        script=[call(("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": toolkits})), wait, report]
    )
    agent = create_agent(model, session.tools())

    def on_link(payload: dict[str, Any], n: int) -> None:
        if payload["toolkit"] == "demo":
            user.open_link(payload["redirect_url"], delay=0.2)

    run = await stream(agent, {"messages": [("user", "Connect my apps")]}, on_link=on_link)
    await user.done()
    waited = [m for m in run.output["messages"] if isinstance(m, ToolMessage)][-1]
    assert waited.name == "COMPOSIO_WAIT_FOR_CONNECTIONS"
    assert waited.status == "success"
    await assert_no_secrets(ta, connect.provider, run.events, run.output)
    return waited.artifact


async def test_wait_tool_all_wakes_when_the_flow_completes(connect: Connect, user: User) -> None:
    result = await _wait_tool_run(connect, user, "all", ["demo"])
    assert result["all_active"] is True, result
    assert [(r["toolkit"], r["status"]) for r in result["results"]] == [("demo", "active")]


async def test_wait_tool_any_wakes_on_the_first_connection(connect: Connect, user: User) -> None:
    await _github_link(connect.ta)
    result = await _wait_tool_run(connect, user, "any", ["demo", "github"])
    assert result["all_active"] is False
    statuses = {r["toolkit"]: r["status"] for r in result["results"]}
    assert statuses == {"demo": "active", "github": "initiated"}
