"""Scopes as data and step-up: a session's link asks for the union of its tools' scopes; a
call needing a scope the account lacks (by its granted scopes, or the provider's 403
insufficient_scope) answers with a link for the same account, which keeps working until the
new grant lands. The demo provider on loopback, a scripted browser, both stores."""

from __future__ import annotations

import json

from tests.conftest import DEMO_CLIENT_ID, Connect
from tests.flows.support import query_of
from tests.helpers import Browser
from toolauth import ScopeRequiredError
from toolauth.tools import builtin_tools


async def call(tool, **args) -> tuple[str, dict]:
    message = await tool.ainvoke({"name": tool.name, "args": args, "id": "1", "type": "tool_call"})
    return message.status, (
        json.loads(message.content) if message.status != "error" else {"error": message.content}
    )


def scope_asked(browser_response_location: str) -> list[str]:
    return query_of(browser_response_location)["scope"].split(" ")


async def test_built_in_tools_declare_their_scopes() -> None:
    scopes = {s.name: s.scopes for s in builtin_tools(["demo", "gmail", "github"])}
    assert scopes["DEMO_LIST_ITEMS"] == ("items:read",)
    assert scopes["DEMO_CREATE_ITEM"] == ("items:write",)
    assert scopes["GMAIL_SEND_EMAIL"] == ("https://www.googleapis.com/auth/gmail.send",)
    assert scopes["GITHUB_LIST_REPOSITORIES"] == ("repo",)


async def test_a_sessions_link_asks_for_the_union_of_its_tools_scopes(
    connect: Connect, paused: Browser
) -> None:
    reader = connect.ta.create("u1", toolkits=["demo"])
    reader.tools(tools=["DEMO_LIST_ITEMS"])
    everything = connect.ta.create("u2", toolkits=["demo"])
    everything.tools()

    read_link = await reader.authorize("demo")
    all_link = await everything.authorize("demo")

    # The identity endpoint's scope (profile) and the exposed tools' scopes, in one link.
    read = (await paused.http.get(read_link.redirect_url)).headers["location"]
    assert scope_asked(read) == ["profile", "items:read"]
    both = (await paused.http.get(all_link.redirect_url)).headers["location"]
    assert scope_asked(both) == ["profile", "items:read", "items:write"]


async def connect_reader(connect: Connect, browser: Browser):
    session = connect.ta.create("app-user", toolkits=["demo"])
    tools = {t.name: t for t in session.tools(tools=["DEMO_LIST_ITEMS", "DEMO_CREATE_ITEM"])}
    reader = connect.ta.create("app-user", toolkits=["demo"])
    reader.tools(tools=["DEMO_LIST_ITEMS"])
    req = await reader.authorize("demo")
    await browser.oauth_consent(req.redirect_url)
    account = await req.wait_for_connection(timeout=5)
    assert set(account.scopes) == {"profile", "items:read"}
    return session, tools, account


async def test_a_missing_scope_gets_a_step_up_link_for_the_same_account(
    connect: Connect, browser: Browser, paused: Browser
) -> None:
    _session, tools, account = await connect_reader(connect, browser)

    status, result = await call(tools["DEMO_CREATE_ITEM"], name="Paint the fence")

    assert result["error"] == "scope_required"
    assert result["missing_scopes"] == ["items:write"]
    assert result["connected_account_id"] == account.id
    assert result["connected_as"] == "alice@example.com"
    assert "same account" in result["instruction"]
    location = (await paused.http.get(result["redirect_url"])).headers["location"]
    assert scope_asked(location) == ["profile", "items:read", "items:write"]
    # The account keeps working with its old grant while the link is open.
    status, listed = await call(tools["DEMO_LIST_ITEMS"])
    assert status != "error" and len(listed["items"]) == 2

    landing = await browser.oauth_consent(result["redirect_url"])
    assert landing.response.status_code == 200  # the grant is written before this page

    after = await connect.ta.connected_accounts.get(account.id)
    assert "items:write" in after.scopes
    assert after.id == account.id and after.identity == account.identity
    assert after.credentials["access_token"] != account.credentials["access_token"]
    status, created = await call(tools["DEMO_CREATE_ITEM"], name="Paint the fence")
    assert status != "error" and created["created"] is True
    # The old grant was replaced, and revoked at the provider.
    assert connect.provider.introspect(account.credentials["access_token"].get_secret_value()) == {
        "active": False
    }
    assert len(await connect.ta.connected_accounts.list(user_id="app-user")) == 1


async def test_a_providers_insufficient_scope_answer_leads_to_a_step_up(
    connect: Connect, paused: Browser
) -> None:
    config = await connect.ta.auth_configs.create("demo")
    tokens = connect.provider.issue_tokens(
        "alice", client_id=DEMO_CLIENT_ID, scopes=["profile", "items:read"]
    )
    # The app imported the tokens; the account's record claims every scope of the config.
    account = await connect.ta.connected_accounts.create(
        "app-user", config.id, credentials={"access_token": tokens["access_token"]}
    )
    assert "items:write" in account.scopes
    session = connect.ta.create("app-user", toolkits=["demo"])
    tools = {t.name: t for t in session.tools()}

    _status, result = await call(tools["DEMO_CREATE_ITEM"], name="Paint the fence")

    # RFC 6750 §3.1: 403 with error="insufficient_scope", scope="items:write".
    assert result["error"] == "scope_required"
    assert result["missing_scopes"] == ["items:write"]
    assert result["connected_account_id"] == account.id
    assert tokens["access_token"] not in json.dumps(result)
    location = (await paused.http.get(result["redirect_url"])).headers["location"]
    assert "items:write" in scope_asked(location)
    with_client = await connect.ta.connected_accounts.get(account.id)
    assert with_client.is_active  # still usable for what it could do


async def test_incremental_providers_get_only_the_missing_scopes(
    connect: Connect, browser: Browser, paused: Browser
) -> None:
    session, _tools, account = await connect_reader(connect, browser)
    data = connect.ta.toolkits.get("demo").model_dump(mode="json", by_alias=True)
    data["incremental_auth"] = True
    await connect.ta.toolkits.register(data, replace=True, override=True)

    req = await session.step_up(account.id, ["items:write"])

    location = (await paused.http.get(req.redirect_url)).headers["location"]
    query = query_of(location)
    assert query["scope"] == "items:write"
    assert query["include_granted_scopes"] == "true"
    assert req.connected_account_id == account.id


async def test_scope_required_is_a_connection_required_error() -> None:
    error = ScopeRequiredError("demo", ("items:write",), connected_account_id="ca_x")
    assert error.scopes == ("items:write",) and error.error == "scope_required"
    assert "items:write" in error.message


async def test_an_incremental_step_up_extends_the_grant_and_keeps_the_old_one(
    connect: Connect, browser: Browser
) -> None:
    session, tools, account = await connect_reader(connect, browser)
    data = connect.ta.toolkits.get("demo").model_dump(mode="json", by_alias=True)
    data["incremental_auth"] = True
    await connect.ta.toolkits.register(data, replace=True, override=True)
    old_token = account.credentials["access_token"].get_secret_value()

    req = await session.step_up(account.id, ["items:write"])
    landing = await browser.oauth_consent(req.redirect_url or "")

    assert landing.response.status_code == 200
    after = await connect.ta.connected_accounts.get(account.id)
    # The provider extended the grant (include_granted_scopes=true): every scope, one grant.
    assert set(after.scopes) == {"profile", "items:read", "items:write"}
    status, created = await call(tools["DEMO_CREATE_ITEM"], name="Paint the fence")
    assert status != "error" and created["created"] is True
    # Not revoked: revoking the old token would have ended the extended grant too.
    assert connect.provider.introspect(old_token)["active"] is True
