"""A scripted create_agent run over two accounts of one toolkit: the meta tool says who each
one is, and the agent acts as the one the user named by its alias."""

from __future__ import annotations

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage

from tests.agents.scripted_model import ScriptedChatModel, call, last_json, say
from tests.agents.support import assert_no_secrets, stream
from tests.conftest import Connect
from tests.helpers import Browser


async def connect_two(connect: Connect) -> None:
    config = await connect.ta.auth_configs.create("demo")
    browser = Browser()
    try:
        for user, password, alias in (("alice", "wonderland", "work"),
                                      ("bob", "builder", "personal")):  # fmt: skip
            req = await connect.ta.connected_accounts.link("app-user", config.id, alias=alias)
            landing = await browser.oauth_consent(
                req.redirect_url or "", username=user, password=password
            )
            assert landing.response.status_code == 200
    finally:
        await browser.aclose()


def pick_personal(messages: list[BaseMessage]) -> AIMessage:
    result = last_json(messages, "COMPOSIO_MANAGE_CONNECTIONS")
    (entry,) = result["results"]
    assert entry["status"] == "active"
    assert entry["connected_as"] == "alice@example.com"  # the default: work
    assert {(a["alias"], a["connected_as"]) for a in entry["accounts"]} == {
        ("work", "alice@example.com"),
        ("personal", "bob@example.com"),
    }
    return call(("DEMO_LIST_ITEMS", {"limit": 10, "account": "personal"}))


def answer(messages: list[BaseMessage]) -> AIMessage:
    items = last_json(messages, "DEMO_LIST_ITEMS")["items"]
    return say("Your personal Demo items: " + "; ".join(i["name"] for i in items))


async def test_the_agent_acts_as_the_account_the_user_named(connect: Connect) -> None:
    await connect_two(connect)
    session = connect.ta.create("app-user", toolkits=["demo"])
    await session.toolkits()  # the session has seen both accounts: tools offer `account`
    tools = session.tools()
    listing = {t.name: t for t in tools}["DEMO_LIST_ITEMS"]
    assert "account" in listing.tool_call_schema.model_json_schema()["properties"]
    model = ScriptedChatModel(
        script=[call(("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["demo"]})), pick_personal,
                answer]
    )  # fmt: skip
    agent = create_agent(model, tools)

    run = await stream(agent, {"messages": [("user", "What is on my personal Demo list?")]})

    assert model.remaining == 0
    final = run.output["messages"][-1].content
    assert final == "Your personal Demo items: Fix the roof"  # bob's, not alice's
    await assert_no_secrets(connect.ta, connect.provider, run)
