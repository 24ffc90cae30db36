"""A remote MCP server as a toolkit, end to end over real HTTP: discovery (RFC 9728, RFC
8414), dynamic client registration (RFC 7591), connect links with PKCE and ``resource`` (RFC
8707), per-user MCP sessions, refresh, revocation, and the tools' results."""

from __future__ import annotations

import logging

import pytest
from langchain_core.messages import ToolMessage

from tests.helpers import Browser
from tests.mcp.conftest import Notes
from toolauth import AsyncToolAuth
from toolauth.catalog import ToolkitDefinition

PASSWORDS = {"alice": "wonderland", "bob": "builder"}


async def connect_user(ta: AsyncToolAuth, user_id: str, username: str) -> str:
    """Connect ``user_id`` to notes as demo user ``username`` through a real connect link;
    the connected account's id."""
    session = ta.create(user_id, toolkits=["notes"])
    req = await session.authorize("notes")
    assert req.redirect_url is not None
    browser = Browser()
    try:
        landing = await browser.oauth_consent(
            req.redirect_url, username=username, password=PASSWORDS[username]
        )
    finally:
        await browser.aclose()
    assert landing.response.status_code == 200, landing.response.text
    account = await req.wait_for_connection(timeout=10)
    return account.id


async def test_add_mcp_discovers_the_authorization_server(notes: Notes) -> None:
    """MCP authorization: the 401 names the RFC 9728 metadata, which names the demo provider;
    the toolkit asks for tokens for the server's URL (RFC 8707)."""
    definition = notes.ta.toolkits.get("notes")
    assert isinstance(definition, ToolkitDefinition)
    spec = definition.oauth2()
    assert spec is not None and definition.mcp is not None
    assert definition.mcp.url == notes.url
    assert definition.mcp.resource == notes.url
    assert definition.mcp.resource_metadata_url == (
        notes.url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    )
    assert definition.mcp.issuer == notes.provider_url
    assert definition.mcp.client_registration == "dynamic"
    assert spec.resource == notes.url and spec.pkce
    assert spec.authorization_url == f"{notes.provider_url}/oauth/authorize"
    assert spec.revocation_url == f"{notes.provider_url}/oauth/revoke"
    assert definition.api_base_url == notes.url  # credentials go to the server's origin only


async def test_connect_registers_once_and_binds_tokens_to_the_server(notes: Notes) -> None:
    """RFC 7591: the first link registers a client for this deployment's redirect URI; it is
    kept encrypted in the managed auth config and reused by the next user. Every token is
    issued for the MCP server's URL (RFC 8707 §2) and the authorization request carried an
    S256 challenge (RFC 7636 §4.3)."""
    ta, provider = notes.ta, notes.provider
    await connect_user(ta, "user-a", "alice")
    await connect_user(ta, "user-b", "bob")
    assert provider.stats.registrations == 1
    (config,) = await ta.auth_configs.list(toolkit="notes")
    assert config.is_managed
    assert config.credentials["client_id"].get_secret_value().startswith("dyn_")
    assert "dyn_" not in repr(config) and "client_secret" not in config.model_dump_json()
    for user_id in ("user-a", "user-b"):
        (account,) = await ta.connected_accounts.list(user_id=user_id, toolkit="notes")
        token = account.credentials["access_token"].get_secret_value()
        assert provider.introspect(token)["aud"] == notes.url


async def test_two_users_keep_their_own_tokens_and_sessions(notes: Notes) -> None:
    """Each user's calls carry their own token: alice sees her notes, bob his, over one MCP
    session each, reused across calls (no ``initialize`` per call)."""
    ta = notes.ta
    await connect_user(ta, "user-a", "alice")
    await connect_user(ta, "user-b", "bob")
    alice, bob = ta.create("user-a", toolkits=["notes"]), ta.create("user-b", toolkits=["notes"])
    added = await alice.call_mcp_tool("notes", "add_note", {"title": "Croquet", "body": "Sat"})
    assert added.artifact["title"] == "Croquet"
    for _ in range(3):
        mine = await alice.call_mcp_tool("notes", "list_notes", {})
        theirs = await bob.call_mcp_tool("notes", "list_notes", {})
        assert [n["title"] for n in mine.artifact["notes"]] == ["Tea party", "Croquet"]
        assert [n["title"] for n in theirs.artifact["notes"]] == ["Roof"]
    sessions = ta.mcp_sessions()
    assert sessions.opened == 2
    assert len(sessions.open_sessions()) == 2


async def test_session_tools_are_the_servers_tools(notes: Notes) -> None:
    """The server's tools as LangChain tools: slug-prefixed names, the server's JSON schema,
    structured content as the artifact, ``isError`` as an error observation."""
    ta = notes.ta
    before = [t.name for t in ta.create("user-a", toolkits=["notes"]).tools()]
    assert before[0] == "NOTES_CALL_TOOL"  # nobody has listed the tools yet: the dispatcher
    await connect_user(ta, "user-a", "alice")
    session = ta.create("user-a", toolkits=["notes"])
    assert (await session.mcp_tools("notes"))[0].name in {
        "list_notes",
        "add_note",
        "delete_all_notes",
    }
    tools = {t.name: t for t in session.tools()}
    assert {"NOTES_LIST_NOTES", "NOTES_ADD_NOTE", "NOTES_DELETE_ALL_NOTES"} <= set(tools)
    add = tools["NOTES_ADD_NOTE"]
    assert isinstance(add.args_schema, dict)
    assert set(add.args_schema["properties"]) == {"title", "body"}
    assert add.args_schema["required"] == ["title"]
    message = await add.ainvoke(
        {"type": "tool_call", "id": "c1", "name": add.name, "args": {"title": "Hat"}}
    )
    assert isinstance(message, ToolMessage) and message.status == "success"
    assert message.artifact["title"] == "Hat"
    failed = await tools["NOTES_DELETE_ALL_NOTES"].ainvoke(
        {"type": "tool_call", "id": "c2", "name": "NOTES_DELETE_ALL_NOTES", "args": {}}
    )
    assert failed.status == "error"
    assert "deleting notes is disabled" in str(failed.content)
    # a new session (any user) now offers the named tools from the cached list
    other = [t.name for t in ta.create("user-c", toolkits=["notes"]).tools()]
    assert "NOTES_LIST_NOTES" in other and "NOTES_CALL_TOOL" not in other


async def test_unconnected_user_gets_a_connect_link(notes: Notes) -> None:
    session = notes.ta.create("user-a", toolkits=["notes"])
    (tool,) = [t for t in session.tools() if t.name == "NOTES_CALL_TOOL"]
    message = await tool.ainvoke(
        {"type": "tool_call", "id": "c1", "name": tool.name, "args": {"tool": "list_notes"}}
    )
    assert message.artifact["error"] == "connection_required"
    assert message.artifact["redirect_url"].startswith(notes.base_url + "/link/ln_")


async def test_refresh_after_expiry(notes: Notes) -> None:
    """An expired access token is refreshed once (with the same ``resource``, RFC 8707 §2.2)
    after the server's 401, and the call goes through."""
    ta, provider = notes.ta, notes.provider
    await connect_user(ta, "user-a", "alice")
    session = ta.create("user-a", toolkits=["notes"])
    await session.call_mcp_tool("notes", "list_notes", {})
    provider.expire_access_tokens()
    result = await session.call_mcp_tool("notes", "list_notes", {})
    assert result.artifact["total"] == 1
    assert provider.stats.refresh_requests == 1
    (account,) = await ta.connected_accounts.list(user_id="user-a", toolkit="notes")
    assert provider.introspect(account.credentials["access_token"].get_secret_value())["aud"] == (
        notes.url
    )


async def test_delete_revokes_and_closes_the_session(notes: Notes) -> None:
    ta, provider = notes.ta, notes.provider
    account_id = await connect_user(ta, "user-a", "alice")
    session = ta.create("user-a", toolkits=["notes"])
    await session.call_mcp_tool("notes", "list_notes", {})
    account = await ta.connected_accounts.get(account_id)
    token = account.credentials["access_token"].get_secret_value()
    await ta.connected_accounts.delete(account_id)
    assert provider.stats.revocations >= 1
    assert provider.introspect(token) == {"active": False}
    await ta.mcp_sessions().close(account_id)  # already closing: returns once it has
    assert ta.mcp_sessions().open_sessions() == []
    with pytest.raises(Exception, match="connect") as raised:
        await session.call_mcp_tool("notes", "list_notes", {})
    assert token not in str(raised.value)


async def test_no_secret_in_results_or_logs(notes: Notes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ta = notes.ta
    account_id = await connect_user(ta, "user-a", "alice")
    session = ta.create("user-a", toolkits=["notes"])
    await session.mcp_tools("notes")  # lists them: the session's tools are named from now on
    tools = {t.name: t for t in session.tools()}
    message = await tools["NOTES_LIST_NOTES"].ainvoke(
        {"type": "tool_call", "id": "c1", "name": "NOTES_LIST_NOTES", "args": {}}
    )
    account = await ta.connected_accounts.get(account_id)
    (config,) = await ta.auth_configs.list(toolkit="notes")
    # every credential value but the public "token_type" ("Bearer", in any definition's JSON)
    secrets = [v.get_secret_value() for k, v in account.credentials.items() if k != "token_type"]
    secrets.append(config.credentials["client_secret"].get_secret_value())  # RFC 7591's
    # (the client id is public, RFC 6749 §2.2: it travels in the authorization URL)
    seen = " ".join([str(message.content), repr(message.artifact), caplog.text,
                     repr(ta.mcp_sessions()._entries)])  # fmt: skip
    for secret in secrets:
        assert secret not in seen
