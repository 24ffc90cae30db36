"""Two tool calls that need the same connection at once share one link and both resume."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from tests.agents.scripted_model import ScriptedChatModel, call, say, tool_results
from tests.agents.support import User, assert_no_secrets, link_key, links_in_db, stream
from tests.conftest import Connect
from toolauth.langchain import connect_link_interrupts, resume_when_connected

MANAGE = ("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["demo"]})


def both_need_the_same_link(messages: list[BaseMessage]) -> AIMessage:
    results = [m.artifact for m in tool_results(messages)]
    assert [r["error"] for r in results] == ["connection_required"] * 2
    assert results[0]["redirect_url"] == results[1]["redirect_url"]
    return call(MANAGE, MANAGE)


def both_active(messages: list[BaseMessage]) -> AIMessage:
    metas = [m.artifact for m in tool_results(messages, "COMPOSIO_MANAGE_CONNECTIONS")]
    assert len(metas) == 2
    assert [r["results"][0]["status"] for r in metas] == ["active", "active"]
    assert (
        metas[0]["results"][0]["connected_account_id"]
        == (metas[1]["results"][0]["connected_account_id"])
    )
    return call("DEMO_LIST_ITEMS", "DEMO_GET_PROFILE")


def answer(messages: list[BaseMessage]) -> AIMessage:
    by_name = {m.name: m.artifact for m in tool_results(messages)[-2:]}
    name = by_name["DEMO_GET_PROFILE"]["name"]
    items = [i["name"] for i in by_name["DEMO_LIST_ITEMS"]["items"]]
    return say(f"{name} has {', '.join(items)}")


def check_one_link(ta: Any, links: list[dict[str, Any]]) -> str:
    ids = {ln["link_id"] for ln in links}
    assert len(ids) == 1, links
    assert [ln["id"] for ln in links_in_db(ta, "alice")] == [link_key(i) for i in ids]
    return ids.pop()


async def test_parallel_calls_share_one_link_in_wait_mode(connect: Connect, user: User) -> None:
    ta = connect.ta
    session = ta.create("alice", toolkits=["demo"])
    model = ScriptedChatModel(
        script=[call("DEMO_LIST_ITEMS", "DEMO_GET_PROFILE"), both_need_the_same_link, both_active,
                answer]
    )  # fmt: skip
    agent = create_agent(model, session.tools())

    def on_link(payload: dict[str, Any], n: int) -> None:
        if n == 4:  # both meta tools are waiting now
            user.open_link(payload["redirect_url"], delay=0.05)

    run = await stream(agent, {"messages": [("user", "Who am I on Demo and what do I have?")]},
                       on_link=on_link)  # fmt: skip
    await user.done()
    assert len(run.links) == 4
    check_one_link(ta, run.links)
    final = run.output["messages"][-1].content
    assert final == "Alice Liddell has Follow the white rabbit, Have tea with the Hatter"
    assert len(await ta.connected_accounts.list(user_id="alice")) == 1
    await assert_no_secrets(ta, connect.provider, run.events, run.output)


async def test_parallel_calls_share_one_link_in_interrupt_mode(
    connect: Connect, user: User
) -> None:
    ta = connect.ta
    session = ta.create("alice", toolkits=["demo"], resume="interrupt")
    model = ScriptedChatModel(
        script=[call("DEMO_LIST_ITEMS", "DEMO_GET_PROFILE"), both_need_the_same_link, both_active,
                answer]
    )  # fmt: skip
    agent = create_agent(model, session.tools(), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "parallel"}}

    first = await stream(agent, {"messages": [("user", "Who am I on Demo?")]}, config)
    pending = connect_link_interrupts((await agent.aget_state(config)).interrupts)
    assert len(pending) == 2
    assert len({i.id for i in pending}) == 2
    request_id = check_one_link(ta, [i.value for i in pending] + first.links)

    user.open_link(pending[0].value["redirect_url"])
    cmd = await resume_when_connected(agent, config, ta, timeout=10)
    await user.done()
    assert set(cmd.resume) == {i.id for i in pending}
    assert all(v["status"] == "ACTIVE" for v in cmd.resume.values())

    second = await stream(agent, cmd, config)
    assert second.links == []
    messages = second.output["messages"]
    assert messages[-1].content.startswith("Alice Liddell has Follow the white rabbit")
    metas = [m for m in messages if isinstance(m, ToolMessage) and m.name.startswith("COMPOSIO")]
    assert len(metas) == 2
    assert [ln["id"] for ln in links_in_db(ta, "alice")] == [link_key(request_id)]
    assert len(await ta.connected_accounts.list(user_id="alice")) == 1
    await assert_no_secrets(ta, connect.provider, first.events, second.events, messages, pending)
