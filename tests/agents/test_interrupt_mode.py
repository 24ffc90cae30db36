"""resume="interrupt": the run pauses with a typed connect-link interrupt; after the user
connects, ``resume_when_connected`` builds the Command that finishes the run."""

from __future__ import annotations

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from tests.agents.scripted_model import ScriptedChatModel, call, last_json, say
from tests.agents.support import User, assert_no_secrets, link_key, links_in_db, stream
from tests.conftest import Connect
from toolauth.langchain import connect_link_interrupts, resume_when_connected

PAYLOAD_KEYS = {
    "type", "v", "toolkit", "toolkit_name", "redirect_url", "connection_request_id", "link_id",
    "connected_account_id", "expires_at",
}  # fmt: skip


def list_once_active(messages: list[BaseMessage]) -> AIMessage:
    result = last_json(messages, "COMPOSIO_MANAGE_CONNECTIONS")
    assert result["results"][0]["status"] == "active", result
    return call("DEMO_LIST_ITEMS")


def answer(messages: list[BaseMessage]) -> AIMessage:
    items = last_json(messages, "DEMO_LIST_ITEMS")["items"]
    return say("Items: " + ", ".join(i["name"] for i in items))


async def test_interrupt_then_resume_when_connected(connect: Connect, user: User) -> None:
    ta = connect.ta
    session = ta.create("alice", toolkits=["demo"], resume="interrupt")
    model = ScriptedChatModel(
        script=[call("DEMO_LIST_ITEMS"), call(("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["demo"]})),
                list_once_active, answer]
    )  # fmt: skip
    agent = create_agent(model, session.tools(), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "interrupt-1"}}

    first = await stream(agent, {"messages": [("user", "Show my Demo items")]}, config)
    snapshot = await agent.aget_state(config)
    pending = connect_link_interrupts(snapshot.interrupts)
    assert len(pending) == 1
    payload = pending[0].value
    assert set(payload) == PAYLOAD_KEYS
    assert payload["type"] == "toolauth.connect_link"
    assert payload["v"] == 1
    assert payload["toolkit"] == "demo"
    assert payload["redirect_url"].endswith("/link/" + payload["link_id"])
    # the run stopped inside the meta tool: no ToolMessage for it yet
    assert snapshot.next == ("tools",)
    assert not [m for m in snapshot.values["messages"] if m.name == "COMPOSIO_MANAGE_CONNECTIONS"]
    # the DEMO_LIST_ITEMS "connection required" and the interrupt carry the same link
    assert [ln["link_id"] for ln in first.links] == [payload["link_id"]] * 2

    user.open_link(payload["redirect_url"])
    await user.done()
    cmd = await resume_when_connected(agent, config, ta, timeout=10)
    assert isinstance(cmd, Command)
    assert cmd.resume == {
        pending[0].id: {"status": "ACTIVE", "connected_account_id": payload["connected_account_id"]}
    }

    second = await stream(agent, cmd, config)
    assert second.links == []  # the re-run tool made no new link
    messages = second.output["messages"]
    assert "Follow the white rabbit" in messages[-1].content
    assert model.remaining == 0
    assert (await agent.aget_state(config)).interrupts == ()
    assert [ln["id"] for ln in links_in_db(ta, "alice")] == [link_key(payload["link_id"])]
    accounts = await ta.connected_accounts.list(user_id="alice")
    assert [(a.id, a.status) for a in accounts] == [(payload["connected_account_id"], "ACTIVE")]
    meta = [m for m in messages if isinstance(m, ToolMessage) and m.name.startswith("COMPOSIO")]
    assert len(meta) == 1
    assert meta[0].artifact["results"][0]["connected_account_id"] == payload["connected_account_id"]
    assert await resume_when_connected(agent, config, ta) is None  # nothing left to resume

    await assert_no_secrets(
        ta, connect.provider, first.events, second.events, messages, snapshot.interrupts, cmd
    )


async def test_ainvoke_reports_the_interrupt(connect: Connect, user: User) -> None:
    """The same flow with plain ``ainvoke``: the interrupt is in ``result["__interrupt__"]``."""
    ta = connect.ta
    session = ta.create("alice", toolkits=["demo"], resume="interrupt")
    model = ScriptedChatModel(
        script=[call(("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["demo"]})), list_once_active,
                answer]
    )  # fmt: skip
    agent = create_agent(model, session.tools(), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "interrupt-2"}}
    result = await agent.ainvoke({"messages": [("user", "Show my Demo items")]}, config)
    [interrupt] = connect_link_interrupts(result["__interrupt__"])
    user.open_link(interrupt.value["redirect_url"])
    cmd = await resume_when_connected(agent, config, ta, timeout=10)
    await user.done()
    result = await agent.ainvoke(cmd, config)
    assert "Have tea with the Hatter" in result["messages"][-1].content
    await assert_no_secrets(ta, connect.provider, result, interrupt)


async def test_two_toolkits_pause_one_after_the_other(connect: Connect, user: User) -> None:
    """One meta call for two toolkits: after the first is connected and resumed, the run pauses
    again for the second instead of handing the first answer to the second link."""
    ta = connect.ta
    await ta.auth_configs.create(
        "github", type="use_custom_auth",
        credentials={"client_id": "gh-app", "client_secret": "gh-secret-SENTINEL"},
    )  # fmt: skip
    session = ta.create("alice", toolkits=["demo", "github"], resume="interrupt")
    both = ("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["demo", "github"]})
    model = ScriptedChatModel(
        script=[call(both), lambda m: say(str(last_json(m, "COMPOSIO_MANAGE_CONNECTIONS")))]
    )
    agent = create_agent(model, session.tools(), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "two-toolkits"}}

    await stream(agent, {"messages": [("user", "Connect Demo and GitHub")]}, config)
    [demo] = connect_link_interrupts((await agent.aget_state(config)).interrupts)
    assert demo.value["toolkit"] == "demo"
    user.open_link(demo.value["redirect_url"])
    await user.done()
    await stream(agent, await resume_when_connected(agent, config, ta, timeout=10), config)

    [github] = connect_link_interrupts((await agent.aget_state(config)).interrupts)
    assert github.value["toolkit"] == "github"  # paused again, for GitHub this time
    # the user does not finish GitHub: resume with the time-out and report it
    cmd = await resume_when_connected(agent, config, ta, timeout=0.2)
    assert cmd.resume[github.id]["status"] == "INITIATED"
    final = await stream(agent, cmd, config)
    result = last_json(final.output["messages"], "COMPOSIO_MANAGE_CONNECTIONS")
    assert {r["toolkit"]: r["status"] for r in result["results"]} == {
        "demo": "active",
        "github": "initiated",
    }
    assert result["results"][1]["redirect_url"] == github.value["redirect_url"]
    assert "has not connected GitHub yet" in result["results"][1]["instruction"]
    assert len(links_in_db(ta, "alice")) == 2  # one per toolkit, none made on the re-runs


async def test_denied_consent_is_reported_as_failed(connect: Connect, user: User) -> None:
    ta = connect.ta
    session = ta.create("alice", toolkits=["demo"], resume="interrupt")
    model = ScriptedChatModel(
        script=[
            call(("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["demo"]})),
            lambda m: say(str(last_json(m, "COMPOSIO_MANAGE_CONNECTIONS"))),
        ]
    )
    agent = create_agent(model, session.tools(), checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "denied"}}
    await stream(agent, {"messages": [("user", "Connect Demo")]}, config)
    [pending] = connect_link_interrupts((await agent.aget_state(config)).interrupts)
    user.open_link(pending.value["redirect_url"], decision="deny")
    await user.done(status=400)
    cmd = await resume_when_connected(agent, config, ta, timeout=10)
    assert cmd.resume[pending.id]["status"] == "FAILED"
    final = await stream(agent, cmd, config)
    [entry] = last_json(final.output["messages"], "COMPOSIO_MANAGE_CONNECTIONS")["results"]
    assert entry["status"] == "failed"
    assert entry["error_message"] == '"the user denied the request"'  # the provider's words
    assert entry["redirect_url"] is None
