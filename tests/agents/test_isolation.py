"""A session only ever sees its own user's accounts and data."""

from __future__ import annotations

import json

import pytest
from langchain.agents import create_agent

from tests.agents.scripted_model import ScriptedChatModel, call, say, tool_results
from tests.agents.support import User, assert_no_secrets, stream
from tests.conftest import Connect
from toolauth import ConfigurationError


async def test_user_b_never_gets_user_a_account_or_data(connect: Connect, user: User) -> None:
    ta = connect.ta
    alice = ta.create("user-a", toolkits=["demo"])
    request = await alice.authorize("demo")
    user.open_link(request.redirect_url)
    await user.done()
    a_account = (await alice.connection("demo")).connected_account_id
    assert (await alice.connection("demo")).status == "active"

    bob = ta.create("user-b", toolkits=["demo"], resume="return")
    tools = {t.name: t for t in bob.tools()}
    for name in ("DEMO_LIST_ITEMS", "DEMO_GET_PROFILE"):
        needed = json.loads(await tools[name].ainvoke({}))
        assert needed["error"] == "connection_required"
        assert needed["connected_account_id"] != a_account
    assert (await bob.connection("demo")).status == "initiated"
    meta = json.loads(await tools["COMPOSIO_MANAGE_CONNECTIONS"].ainvoke({"toolkits": ["demo"]}))
    assert meta["summary"]["initiated"] == 1

    # B connects their own provider user; each sees only their own items
    bob_user = User("bob")
    try:
        bob_user.open_link(meta["results"][0]["redirect_url"])
        await bob_user.done()
    finally:
        await bob_user.aclose()
    model = ScriptedChatModel(
        script=[call("DEMO_LIST_ITEMS"), lambda m: say(tool_results(m)[-1].content)]
    )
    run = await stream(create_agent(model, bob.tools()), {"messages": [("user", "items?")]})
    assert json.loads(run.output["messages"][-1].content)["items"][0]["name"] == "Fix the roof"
    a_items = json.loads(await alice.tools(tools=["DEMO_LIST_ITEMS"])[0].ainvoke({}))
    assert "Fix the roof" not in str(a_items)
    assert {a.user_id for a in await ta.connected_accounts.list(user_id="user-b")} == {"user-b"}
    await assert_no_secrets(ta, connect.provider, run.events, run.output, a_items)


async def test_pinning_another_users_account_is_refused(connect: Connect, user: User) -> None:
    ta = connect.ta
    alice = ta.create("user-a", toolkits=["demo"])
    request = await alice.authorize("demo")
    user.open_link(request.redirect_url)
    await user.done()
    thief = ta.create(
        "user-b", toolkits=["demo"], connected_accounts={"demo": request.connected_account_id}
    )
    tools = {t.name: t for t in thief.tools()}
    message = await tools["DEMO_LIST_ITEMS"].ainvoke(
        {"type": "tool_call", "id": "x", "name": "DEMO_LIST_ITEMS", "args": {}}
    )
    assert message.status == "error"
    assert "does not belong" in message.content
    assert "white rabbit" not in message.content
    with pytest.raises(ConfigurationError):
        await thief.client("demo")
    with pytest.raises(ConfigurationError):
        await thief.authorize("demo")
    meta = await tools["COMPOSIO_MANAGE_CONNECTIONS"].ainvoke(
        {"type": "tool_call", "id": "y", "name": "COMPOSIO_MANAGE_CONNECTIONS",
         "args": {"toolkits": ["demo"]}}
    )  # fmt: skip
    assert meta.status == "error"
    assert "does not belong" in meta.content
