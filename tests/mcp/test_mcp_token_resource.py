"""Tokens checked for the MCP server they were asked for (RFC 8707 §2, RFC 9068 §3): when the
authorization server says whom a token is for, a token for another resource is refused with a
clear error and never stored."""

from __future__ import annotations

import base64
import json

import pytest

from tests.helpers import Browser
from tests.mcp.conftest import Notes
from tests.mcp.test_mcp_toolkit import connect_user
from toolauth import OAuthError
from toolauth.oauth.tokens import check_resource


async def _consent(notes: Notes, user_id: str) -> str:
    req = await notes.ta.create(user_id, toolkits=["notes"]).authorize("notes")
    assert req.redirect_url is not None
    browser = Browser()
    try:
        landing = await browser.oauth_consent(
            req.redirect_url, username="alice", password="wonderland"
        )
    finally:
        await browser.aclose()
    return landing.response.text


async def test_a_token_for_another_resource_is_refused_and_not_stored(notes: Notes) -> None:
    notes.provider.config.token_response_aud = "https://other.example/mcp"
    page = await _consent(notes, "user-a")
    assert "Could not connect Notes" in page and "invalid_target" in page
    accounts = await notes.ta.connected_accounts.list(user_id="user-a", toolkit="notes")
    assert [a.status for a in accounts] == ["FAILED"]
    assert "access_token" not in accounts[0].credentials
    reason = accounts[0].status_reason or ""
    assert "another resource" in reason and "https://other.example/mcp" in reason, reason


async def test_a_token_naming_the_server_is_kept(notes: Notes) -> None:
    notes.provider.config.token_response_aud = "resource"  # aud = the grant's resource
    await connect_user(notes.ta, "user-a", "alice")
    result = await notes.ta.create("user-a", toolkits=["notes"]).call_mcp_tool(
        "notes", "list_notes", {}
    )
    assert result.artifact["total"] == 1


async def test_a_refresh_for_another_resource_is_refused(notes: Notes) -> None:
    """The refreshed token is checked too (RFC 8707 §2.2): it is not stored and the account's
    old token is not replaced by it."""
    ta, provider = notes.ta, notes.provider
    account_id = await connect_user(ta, "user-a", "alice")
    before = (await ta.connected_accounts.get(account_id)).credentials["access_token"]
    provider.config.token_response_aud = "https://other.example/mcp"
    provider.expire_access_tokens()
    with pytest.raises(Exception, match="another resource|reconnect|connect"):
        await ta.create("user-a", toolkits=["notes"]).call_mcp_tool("notes", "list_notes", {})
    assert provider.stats.refresh_requests >= 1
    after = await ta.connected_accounts.get(account_id)
    assert after.credentials["access_token"] == before


def _jwt(header: dict[str, object], payload: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(payload)}.c2ln"


def test_jwt_access_token_audience_is_checked() -> None:
    """RFC 9068 §3: an ``at+jwt`` access token names its audience; other tokens stay opaque."""
    mine = "https://mcp.example.com/mcp"
    check_resource({}, _jwt({"typ": "at+jwt"}, {"aud": [mine, "x"]}), mine)
    check_resource({}, _jwt({"typ": "JWT"}, {"aud": "https://other.example"}), mine)  # not RFC 9068
    check_resource({}, "opaque-token", mine)
    with pytest.raises(OAuthError) as raised:
        check_resource({}, _jwt({"typ": "at+jwt"}, {"aud": "https://other.example"}), mine)
    assert raised.value.error == "invalid_target"
    with pytest.raises(OAuthError):
        check_resource({"resource": "https://other.example"}, "opaque-token", mine)
    with pytest.raises(OAuthError) as malformed:
        check_resource({"aud": 5}, "opaque-token", mine)
    assert malformed.value.error == "invalid_response"
