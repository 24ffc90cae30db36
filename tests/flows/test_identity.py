"""Who an account is at the provider: captured when a connection completes (OAuth through the
toolkit's identity endpoint, key schemes through their test endpoint), shown by the session,
and kept when a reconnect signs in as someone else. The demo provider on loopback, a scripted
browser, both stores."""

from __future__ import annotations

from tests.conftest import Connect
from tests.flows.support import APP_CALLBACK, to_callback
from tests.helpers import Browser
from toolauth._models import AccountIdentity, ConnectionStatus, LinkStatus


async def connect_as(connect: Connect, browser: Browser, user: str, password: str, **link_kw):
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("app-user", config.id, **link_kw)
    landing = await browser.oauth_consent(req.redirect_url, username=user, password=password)
    return req, landing


async def test_an_oauth_connection_records_who_it_is_at_the_provider(
    connect: Connect, browser: Browser
) -> None:
    req, landing = await connect_as(connect, browser, "alice", "wonderland")

    assert landing.response.status_code == 200, landing.response.text
    account = await connect.ta.connected_accounts.get(req.connected_account_id)
    assert account.status is ConnectionStatus.ACTIVE
    assert account.identity is not None
    assert account.identity.email == "alice@example.com"
    assert account.identity.login == "alice"
    assert account.identity.name == "Alice Liddell"
    assert account.identity.id and len(account.identity.id) == 24
    # Plain data: in the model's JSON (its secrets are not), and back from a fresh read.
    dumped = account.model_dump_json()
    assert "alice@example.com" in dumped and "access_token" not in dumped
    session = connect.ta.create("app-user", toolkits=["demo"])
    (conn,) = await session.toolkits()
    assert conn.has_active_connection and conn.connected_as == "alice@example.com"
    assert conn.identity == account.identity
    # The meta tool's result says who, so the agent can tell the user.
    tools = {t.name: t for t in session.tools()}
    result = await tools["COMPOSIO_MANAGE_CONNECTIONS"].ainvoke({"toolkits": ["demo"]})
    assert '"connected_as":"alice@example.com"' in result
    assert "connected as alice@example.com" in result


async def test_a_key_connection_records_its_identity_through_the_test_endpoint(
    connect: Connect, browser: Browser
) -> None:
    key = connect.provider.issue_api_key("bob")
    config = await connect.ta.auth_configs.create("demo", auth_scheme="API_KEY")
    req = await connect.ta.connected_accounts.link("app-user", config.id)

    landing = await browser.submit_key_form(req.redirect_url, {"api_key": key})

    assert landing.response.status_code == 200, landing.response.text
    account = await connect.ta.connected_accounts.get(req.connected_account_id)
    assert account.identity == AccountIdentity(
        id=account.identity.id if account.identity else None, login="bob",
        email="bob@example.com", name="Bob Builder",
    )  # fmt: skip
    assert key not in account.model_dump_json() and key not in repr(account)


async def test_reconnecting_as_another_identity_is_refused_and_the_old_grant_kept(
    connect: Connect, browser: Browser
) -> None:
    req, _ = await connect_as(connect, browser, "alice", "wonderland")
    before = await connect.ta.connected_accounts.get(req.connected_account_id)
    revocations = connect.provider.stats.revocations

    again = await connect.ta.connected_accounts.link(
        "app-user", before.auth_config_id, reinitiate=True, callback_url=APP_CALLBACK
    )
    landing = await browser.oauth_consent(again.redirect_url, username="bob", password="builder")

    assert landing.response.status_code == 409
    page = landing.response.text
    assert "bob@example.com" in page and "alice@example.com" in page
    assert "Nothing was changed" in page
    after = await connect.ta.connected_accounts.get(req.connected_account_id)
    assert after.status is ConnectionStatus.ACTIVE and after.identity == before.identity
    assert after.credentials["access_token"].get_secret_value() == (
        before.credentials["access_token"].get_secret_value()
    )
    assert after.credentials["access_token"].get_secret_value() not in page
    store = await connect.ta.store()
    link = await store.get_link(again.link_id)
    assert link.status is LinkStatus.FAILED and link.error == "identity_mismatch"
    assert connect.provider.stats.revocations > revocations  # bob's unused grant, revoked
    # The old grant still works at the provider.
    session = connect.ta.create("app-user", toolkits=["demo"])
    async with await session.client("demo") as client:
        assert (await client.get("/me")).json()["preferred_username"] == "alice"


async def test_the_app_may_allow_an_identity_change(connect: Connect, browser: Browser) -> None:
    req, _ = await connect_as(connect, browser, "alice", "wonderland")
    account = await connect.ta.connected_accounts.get(req.connected_account_id)

    again = await connect.ta.connected_accounts.link(
        "app-user", account.auth_config_id, reinitiate=True, allow_identity_change=True
    )
    landing = await browser.oauth_consent(again.redirect_url, username="bob", password="builder")

    assert landing.response.status_code == 200, landing.response.text
    after = await connect.ta.connected_accounts.get(req.connected_account_id)
    assert after.id == account.id and after.identity is not None
    assert after.identity.login == "bob"


async def test_reconnecting_as_the_same_identity_replaces_the_grant(
    connect: Connect, browser: Browser
) -> None:
    req, _ = await connect_as(connect, browser, "alice", "wonderland")
    before = await connect.ta.connected_accounts.get(req.connected_account_id)

    again = await connect.ta.connected_accounts.link(
        "app-user", before.auth_config_id, reinitiate=True
    )
    landing = await browser.oauth_consent(again.redirect_url)

    assert landing.response.status_code == 200
    after = await connect.ta.connected_accounts.get(req.connected_account_id)
    assert after.identity == before.identity
    assert after.credentials["access_token"].get_secret_value() != (
        before.credentials["access_token"].get_secret_value()
    )


async def test_an_identity_endpoint_that_fails_does_not_lose_the_connection(
    connect: Connect, paused: Browser
) -> None:
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("app-user", config.id)
    landing = await to_callback(paused, req.redirect_url)
    # The provider issues a token its API refuses at once (it has expired when asked).
    connect.provider.config.access_token_ttl = 0
    done = await paused.get(landing.url)

    assert done.response.status_code == 200
    account = await connect.ta.connected_accounts.get(req.connected_account_id)
    assert account.status is ConnectionStatus.ACTIVE and account.identity is None


async def test_an_openid_connection_takes_its_identity_from_the_id_token(
    connect: Connect, browser: Browser
) -> None:
    from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
    from toolauth.demo.provider import SCOPES

    connect.provider.register_client(
        DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [f"{connect.base_url}/oauth/callback"],
        scopes={**SCOPES, "openid": "Sign you in"},
    )  # fmt: skip
    data = connect.ta.toolkits.get("demo").model_dump(mode="json", by_alias=True)
    data["identity"] = None  # no identity endpoint, no userinfo: only the ID token can tell
    data["auth_schemes"]["OAUTH2"]["userinfo_url"] = None
    data["auth_schemes"]["OAUTH2"]["default_scopes"] = ["openid", "items:read"]
    await connect.ta.toolkits.register(data, replace=True, override=True)
    api_calls = connect.provider.stats.api_requests

    req, landing = await connect_as(connect, browser, "bob", "builder")

    assert landing.response.status_code == 200, landing.response.text
    account = await connect.ta.connected_accounts.get(req.connected_account_id)
    assert account.identity is not None
    assert (account.identity.login, account.identity.email) == ("bob", "bob@example.com")
    assert account.identity.name == "Bob Builder" and account.identity.id
    assert connect.provider.stats.api_requests == api_calls  # no API call was needed
    id_token = account.credentials["id_token"].get_secret_value()
    assert id_token not in account.model_dump_json()
