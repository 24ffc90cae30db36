"""An agent meets an unconnected user, connects the MCP server in the chat and calls its
tools in the same run (``create_agent`` with a scripted model, everything else real)."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from tests.agents.scripted_model import ScriptedChatModel, call, last_json, say
from tests.agents.support import User, stream
from tests.mcp.conftest import Notes


def manage_after_link(messages: list[BaseMessage]) -> AIMessage:
    needed = last_json(messages, "NOTES_CALL_TOOL")
    assert needed["error"] == "connection_required"
    return call(("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["notes"]}))


def list_once_connected(messages: list[BaseMessage]) -> AIMessage:
    assert last_json(messages, "COMPOSIO_MANAGE_CONNECTIONS")["results"][0]["status"] == "active"
    return call(("NOTES_CALL_TOOL", {"tool": "list_notes"}))


def answer(messages: list[BaseMessage]) -> AIMessage:
    notes = last_json(messages, "NOTES_CALL_TOOL")["notes"]
    return say("Your notes: " + "; ".join(n["title"] for n in notes))


async def test_agent_connects_the_mcp_server_in_chat_and_calls_its_tool(notes: Notes) -> None:
    user = User("alice")
    session = notes.ta.create("user-a", toolkits=["notes"])
    model = ScriptedChatModel(
        script=[
            call(("NOTES_CALL_TOOL", {"tool": "list_notes"})),
            manage_after_link,
            list_once_connected,
            answer,
        ]
    )
    agent = create_agent(model, session.tools())

    def on_link(payload: dict[str, Any], n: int) -> None:
        if n == 2:  # the meta tool's link: the user opens it while the tool waits
            user.open_link(payload["redirect_url"], delay=0.05)

    try:
        run = await stream(agent, {"messages": [("user", "What are my notes?")]}, on_link=on_link)
        await user.done()
    finally:
        await user.aclose()
    assert model.remaining == 0
    messages = run.output["messages"]
    assert messages[-1].content == "Your notes: Tea party"
    assert [m.type for m in messages].count("human") == 1
    tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
    assert [m.status for m in tool_messages] == ["success"] * 3
    assert tool_messages[-1].artifact == {
        "notes": [{"id": "n_1", "title": "Tea party", "body": "Bring jam tarts."}],
        "total": 1,
    }
    assert run.links[0]["toolkit"] == "notes"
    assert notes.provider.stats.registrations == 1
