"""resume="wait": one agent run, no user message in between; the meta tool waits for the user
to finish on the provider's page and the agent carries on by itself."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from tests.agents.scripted_model import ScriptedChatModel, call, last_json, say
from tests.agents.support import User, assert_no_secrets, link_key, links_in_db, stream
from tests.conftest import Connect

ALICE_ITEMS = ("Follow the white rabbit", "Have tea with the Hatter")


def answer_with_items(messages: list[BaseMessage]) -> AIMessage:
    items = last_json(messages, "DEMO_LIST_ITEMS")["items"]
    return say("Your Demo items: " + "; ".join(i["name"] for i in items))


def manage_after_connection_required(messages: list[BaseMessage]) -> AIMessage:
    needed = last_json(messages, "DEMO_LIST_ITEMS")
    assert needed["error"] == "connection_required"
    assert needed["redirect_url"].startswith("http://127.0.0.1")
    return call(("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["demo"]}))


def list_again_once_active(messages: list[BaseMessage]) -> AIMessage:
    result = last_json(messages, "COMPOSIO_MANAGE_CONNECTIONS")
    assert result["summary"] == {"total": 1, "active": 1, "initiated": 0, "failed": 0}
    assert result["results"][0]["status"] == "active"
    return call(("DEMO_LIST_ITEMS", {"limit": 10}))


async def test_agent_connects_and_resumes_by_itself(connect: Connect, user: User) -> None:
    ta = connect.ta
    session = ta.create("alice", toolkits=["demo"])
    model = ScriptedChatModel(
        script=[
            call(("DEMO_LIST_ITEMS", {"limit": 10})),
            manage_after_connection_required,
            list_again_once_active,
            answer_with_items,
        ]
    )
    agent = create_agent(model, session.tools())

    def on_link(payload: dict[str, Any], n: int) -> None:
        if n == 2:  # the meta tool's link: the user opens it while the tool waits
            user.open_link(payload["redirect_url"], delay=0.05)

    run = await stream(agent, {"messages": [("user", "What is on my Demo list?")]}, on_link=on_link)
    await user.done()

    assert model.remaining == 0
    assert "COMPOSIO_MANAGE_CONNECTIONS" in model.bound_tools
    messages = run.output["messages"]
    final = messages[-1]
    assert isinstance(final, AIMessage)
    assert not final.tool_calls
    for name in ALICE_ITEMS:
        assert name in final.content
    # the user typed one message; everything else is the agent and its tools
    assert [m.type for m in messages].count("human") == 1

    # both tools announced the same link, once each, typed and versioned
    assert len(run.links) == 2
    first, second = run.links
    assert first == second
    assert first["type"] == "toolauth.connect_link"
    assert first["v"] == 1
    assert first["toolkit"] == "demo"
    assert first["redirect_url"].endswith("/link/" + first["link_id"])
    assert [ln["id"] for ln in links_in_db(ta, "alice")] == [link_key(first["link_id"])]

    accounts = await ta.connected_accounts.list(user_id="alice")
    assert [a.status for a in accounts] == ["ACTIVE"]
    tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
    assert [m.status for m in tool_messages] == ["success"] * 3
    assert tool_messages[-1].artifact["items"][0]["name"] in ALICE_ITEMS

    await assert_no_secrets(
        ta, connect.provider, messages, [m.artifact for m in tool_messages], run.events
    )


async def test_session_connection_gives_the_link_too(connect: Connect, user: User) -> None:
    """The user side can also take the link from ``session.connection`` (no event stream)."""
    ta = connect.ta
    session = ta.create("alice", toolkits=["demo"])

    async def user_side() -> None:
        for _ in range(500):  # poll, as a UI without the event stream would
            conn = await session.connection("demo")
            if conn.redirect_url is not None:
                break
            await asyncio.sleep(0.02)
        assert conn.status == "initiated"
        assert conn.redirect_url is not None
        user.open_link(conn.redirect_url)

    model = ScriptedChatModel(
        script=[
            call(("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["demo"]})),
            list_again_once_active,
            answer_with_items,
        ]
    )
    agent = create_agent(model, session.tools())
    watcher = asyncio.create_task(user_side())
    result = await agent.ainvoke({"messages": [("user", "List my Demo items")]})
    await watcher
    await user.done()
    assert ALICE_ITEMS[0] in result["messages"][-1].content
    assert (await session.connection("demo")).status == "active"
    await assert_no_secrets(ta, connect.provider, result)


async def test_denied_consent_ends_the_wait_as_failed(connect: Connect, user: User) -> None:
    session = connect.ta.create("alice", toolkits=["demo"])
    model = ScriptedChatModel(
        script=[
            call(("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["demo"]})),
            lambda m: say(str(last_json(m, "COMPOSIO_MANAGE_CONNECTIONS"))),
        ]
    )

    def on_link(payload: dict[str, Any], n: int) -> None:
        user.open_link(payload["redirect_url"], decision="deny")

    run = await stream(
        create_agent(model, session.tools()), {"messages": [("user", "hi")]}, on_link=on_link
    )
    await user.done(status=400)
    [entry] = last_json(run.output["messages"], "COMPOSIO_MANAGE_CONNECTIONS")["results"]
    assert entry["status"] == "failed"
    assert entry["error_message"] == '"the user denied the request"'  # the provider's words
