"""No token reaches the agent side: not in a message, an artifact, a streamed event (callback
events or LangGraph's stream modes), an interrupt or a resume Command — also after a refresh."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage
from langgraph.checkpoint.memory import InMemorySaver

from tests.agents.scripted_model import ScriptedChatModel, call, say, tool_results
from tests.agents.support import User, assert_no_secrets, secret_values, stream
from tests.conftest import Connect
from toolauth.langchain import CONNECT_LINK_EVENT, connect_link_interrupts, resume_when_connected

MANAGE = ("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["demo"]})


def answer(messages: list[BaseMessage]) -> AIMessage:
    return say(" | ".join(str(m.content) for m in tool_results(messages)))


async def test_stream_modes_and_refresh_carry_no_token(connect: Connect, user: User) -> None:
    ta, provider = connect.ta, connect.provider
    session = ta.create("alice", toolkits=["demo"])
    model = ScriptedChatModel(
        script=[call("DEMO_GET_PROFILE"), call(MANAGE), call("DEMO_LIST_ITEMS"), answer]
    )
    agent = create_agent(model, session.tools())
    chunks: list[Any] = []
    async for mode, chunk in agent.astream(
        {"messages": [("user", "hi")]}, stream_mode=["custom", "updates", "messages", "values"]
    ):
        chunks.append((mode, chunk))
        if mode == "custom" and chunk.get("type") == CONNECT_LINK_EVENT and not user.tasks:
            user.open_link(chunk["redirect_url"], delay=0.1)
    await user.done()
    custom = [c for m, c in chunks if m == "custom"]
    assert len(custom) == 2  # the stream writer carries the same typed payload
    assert custom[0] == custom[1]
    assert custom[0]["type"] == CONNECT_LINK_EVENT
    final = chunks[-1][1]["messages"]
    assert "white rabbit" in final[-1].content
    before = await secret_values(ta, provider)
    await assert_no_secrets(
        ta, provider, chunks, final, [getattr(m, "artifact", None) for m in final]
    )

    # the access token expires: the next call refreshes it, still out of sight
    provider.expire_access_tokens()
    model.script += [call("DEMO_GET_PROFILE"), answer]
    run = await stream(agent, {"messages": [*final, ("user", "again")]})
    assert "Alice Liddell" in run.output["messages"][-1].content
    after = await secret_values(ta, provider)
    assert after - before, "the refresh should have minted a new access token"
    await assert_no_secrets(ta, provider, run.events, run.output, chunks, min_tokens=3)


async def test_interrupt_values_and_command_carry_no_token(connect: Connect, user: User) -> None:
    ta = connect.ta
    session = ta.create("alice", toolkits=["demo"], resume="interrupt")
    model = ScriptedChatModel(
        script=[call(MANAGE, "DEMO_LIST_ITEMS"), call("DEMO_LIST_ITEMS"), answer]
    )
    agent = create_agent(model, session.tools(), checkpointer=InMemorySaver())
    config: dict[str, Any] = {"configurable": {"thread_id": "tokens"}}
    first = await stream(agent, {"messages": [("user", "hi")]}, config)
    [pending] = connect_link_interrupts((await agent.aget_state(config)).interrupts)
    user.open_link(pending.value["redirect_url"])
    cmd = await resume_when_connected(agent, config, ta, timeout=10)
    await user.done()
    second = await stream(agent, cmd, config)
    state = await agent.aget_state(config)
    assert "white rabbit" in second.output["messages"][-1].content
    await assert_no_secrets(
        ta, connect.provider, first.events, second.events, pending, cmd, state.values
    )
