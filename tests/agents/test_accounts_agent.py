"""Scripted create_agent runs over two accounts of one toolkit: the meta tool says who each
one is, the agent acts as the one the user named by its alias, and a write the account has
no scope for gets a step-up link that keeps the account (issue 15's "Done when")."""

from __future__ import annotations

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage

from tests.agents.scripted_model import ScriptedChatModel, call, last_json, say
from tests.agents.support import User, assert_no_secrets, stream
from tests.conftest import Connect
from tests.helpers import Browser


async def connect_two_readers(connect: Connect) -> dict[str, str]:
    """Alice's account as "work" and Bob's as "personal", each connected through a session
    that exposes only DEMO_LIST_ITEMS (so their grants lack items:write)."""
    reader = connect.ta.create("app-user", toolkits=["demo"])
    reader.tools(tools=["DEMO_LIST_ITEMS"])
    ids = {}
    browser = Browser()
    try:
        for user, password, alias in (("alice", "wonderland", "work"),
                                      ("bob", "builder", "personal")):  # fmt: skip
            req = await reader.authorize("demo", alias=alias)
            landing = await browser.oauth_consent(
                req.redirect_url or "", username=user, password=password
            )
            assert landing.response.status_code == 200
            ids[alias] = req.connected_account_id
    finally:
        await browser.aclose()
    return ids


def list_personal(messages: list[BaseMessage]) -> AIMessage:
    result = last_json(messages, "COMPOSIO_MANAGE_CONNECTIONS")
    (entry,) = result["results"]
    assert entry["status"] == "active"
    assert entry["connected_as"] == "alice@example.com"  # the default: work, the first one
    assert {(a["alias"], a["connected_as"]) for a in entry["accounts"]} == {
        ("work", "alice@example.com"),
        ("personal", "bob@example.com"),
    }
    return call(("DEMO_LIST_ITEMS", {"limit": 10, "account": "personal"}))


def create_in_personal(messages: list[BaseMessage]) -> AIMessage:
    items = last_json(messages, "DEMO_LIST_ITEMS")["items"]
    assert [i["name"] for i in items] == ["Fix the roof"]  # Bob's list, not Alice's
    return call(("DEMO_CREATE_ITEM", {"name": "Buy nails", "account": "personal"}))


def show_step_up_link(messages: list[BaseMessage]) -> AIMessage:
    result = last_json(messages, "DEMO_CREATE_ITEM")
    assert result["error"] == "scope_required" and result["missing_scopes"] == ["items:write"]
    assert result["connected_as"] == "bob@example.com"
    return say(f"Your personal Demo account needs write access: {result['redirect_url']}")


async def test_the_agent_picks_an_account_by_alias_and_steps_up_its_scope(
    connect: Connect,
) -> None:
    ids = await connect_two_readers(connect)
    session = connect.ta.create("app-user", toolkits=["demo"])
    await session.toolkits()  # the session has seen both accounts: tools offer `account`
    tools = session.tools()
    listing = {t.name: t for t in tools}["DEMO_LIST_ITEMS"]
    assert "account" in listing.tool_call_schema.model_json_schema()["properties"]
    bob = User("bob")
    model = ScriptedChatModel(
        script=[
            call(("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["demo"]})),
            list_personal,
            create_in_personal,
            show_step_up_link,
            call(("DEMO_CREATE_ITEM", {"name": "Buy nails", "account": "personal"})),
            say("Added 'Buy nails' to your personal list."),
        ]
    )
    agent = create_agent(model, tools)
    before = await connect.ta.connected_accounts.get(ids["personal"])

    def on_link(payload: dict[str, object], n: int) -> None:
        assert payload["connected_account_id"] == ids["personal"]  # the same account
        bob.open_link(str(payload["redirect_url"]))

    try:
        first = await stream(
            agent, {"messages": [("user", "Add 'Buy nails' to my personal Demo list")]},
            on_link=on_link,
        )  # fmt: skip
        await bob.done()
        # The step-up landed on the same account: same id, same identity, one more scope.
        after = await connect.ta.connected_accounts.get(ids["personal"])
        assert after.identity == before.identity and "items:write" in after.scopes
        assert len(await connect.ta.connected_accounts.list(user_id="app-user")) == 2
        history = first.output["messages"]
        second = await stream(agent, {"messages": [*history, ("user", "Done, try again")]})
    finally:
        await bob.aclose()

    assert model.remaining == 0
    created = last_json(second.output["messages"], "DEMO_CREATE_ITEM")
    assert created == {"id": created["id"], "name": "Buy nails", "created": True}
    assert "Buy nails" in [i["name"] for i in connect.provider._items["bob"]]
    assert "Buy nails" not in [i["name"] for i in connect.provider._items["alice"]]
    await assert_no_secrets(connect.ta, connect.provider, first, second)
