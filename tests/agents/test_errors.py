"""Errors the model can act on come back as ToolMessages (status="error"); the run goes on."""

from __future__ import annotations

import httpx
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from tests.agents.scripted_model import ScriptedChatModel, call, say, tool_results
from tests.conftest import DEMO_CLIENT_ID, Connect
from toolauth.tools import check_response, toolkit_tool


@toolkit_tool("demo")
async def busy_endpoint(client: httpx.AsyncClient) -> dict[str, str]:
    """Call the Demo endpoint that is always rate limited."""
    check_response(await client.get("/rate-limited"), "Demo")
    return {"ok": "never"}


def echo_error(messages: list[BaseMessage]) -> AIMessage:
    last = tool_results(messages)[-1]
    assert last.status == "error"
    return say(f"The tool said: {last.content}")


async def test_unknown_toolkit_lists_the_valid_ones(connect: Connect) -> None:
    session = connect.ta.create("alice", toolkits=["demo", "github"])
    model = ScriptedChatModel(
        script=[call(("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["gitlab"]})), echo_error]
    )
    agent = create_agent(model, session.tools())
    result = await agent.ainvoke({"messages": [("user", "Connect GitLab")]})
    error = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert error.status == "error"
    assert "gitlab" in error.content
    assert "valid toolkits: demo, github" in error.content
    assert result["messages"][-1].content.startswith("The tool said: ")
    assert model.remaining == 0
    assert await connect.ta.connected_accounts.list(user_id="alice") == []


async def test_unknown_toolkit_in_the_wait_tool(connect: Connect) -> None:
    session = connect.ta.create("alice", toolkits=["demo"])
    model = ScriptedChatModel(
        script=[call(("COMPOSIO_WAIT_FOR_CONNECTIONS", {"toolkits": ["nope"]})), echo_error]
    )
    result = await create_agent(model, session.tools()).ainvoke({"messages": [("user", "hi")]})
    [error] = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert error.status == "error"
    assert "valid toolkits: demo" in error.content


async def test_api_error_is_a_tool_error_and_the_run_goes_on(connect: Connect) -> None:
    ta, provider = connect.ta, connect.provider
    config = await ta.auth_configs.create("demo")
    tokens = provider.issue_tokens("alice", client_id=DEMO_CLIENT_ID)
    await ta.connected_accounts.create(
        "alice", config.id,
        credentials={"access_token": tokens["access_token"],
                     "refresh_token": tokens["refresh_token"]},
    )  # fmt: skip
    session = ta.create("alice", toolkits=["demo"])
    tools = session.tools(extra=[busy_endpoint])
    assert "DEMO_BUSY_ENDPOINT" in [t.name for t in tools]

    def after_error(messages: list[BaseMessage]) -> AIMessage:
        last = tool_results(messages)[-1]
        assert last.name == "DEMO_BUSY_ENDPOINT"
        assert last.status == "error"
        assert "rate limit" in last.content
        return call("DEMO_GET_PROFILE")

    model = ScriptedChatModel(
        script=[
            call("DEMO_BUSY_ENDPOINT"),
            after_error,
            lambda m: say(f"Hi {tool_results(m)[-1].artifact['name']}"),
        ]
    )
    result = await create_agent(model, tools).ainvoke({"messages": [("user", "go")]})
    error = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert (
        error.content
        == "Demo rate limit reached (too many requests; retry later). Wait and try again after 1 s."
    )
    assert result["messages"][-1].content == "Hi Alice Liddell"
    assert tokens["access_token"] not in repr(result)
