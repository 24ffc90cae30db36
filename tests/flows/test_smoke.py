from tests.helpers import Browser


async def test_oauth_link_end_to_end(connect):
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id)
    assert req.redirect_url.startswith(connect.base_url + "/link/ln_")
    browser = Browser()
    landing = await browser.oauth_consent(req.redirect_url)
    assert landing.response.status_code == 200, landing.response.text
    assert "connected" in landing.response.text.lower()
    account = await req.wait_for_connection(timeout=5)
    assert account.is_active
    client = await ta.connected_accounts.http_client(account.id)
    me = await client.get("/me")
    assert me.status_code == 200
    assert me.json()["preferred_username"] == "alice" or "alice" in me.text
    await client.aclose()
    await browser.aclose()


def test_sync_client_serves_and_links(home, provider, store_env):
    from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, make_settings
    from toolauth import ToolAuth

    demo, provider_url = provider
    settings = make_settings(
        home, **store_env, TOOLAUTH_DEMO_PROVIDER_URL=provider_url,
        TOOLAUTH_DEMO_CLIENT_ID=DEMO_CLIENT_ID, TOOLAUTH_DEMO_CLIENT_SECRET=DEMO_CLIENT_SECRET,
    )  # fmt: skip
    with ToolAuth(settings=settings) as ta, ta.serve(port=0) as base_url:
        demo.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [f"{base_url}/oauth/callback"])
        config = ta.auth_configs.create("demo", auth_scheme="API_KEY")
        req = ta.connected_accounts.link("u", config.id)
        assert req.redirect_url.startswith(base_url)
        assert ta.connected_accounts.link("u", config.id).link_id == req.link_id  # idempotent


async def test_the_client_uses_the_backend_under_test(connect, backend):
    store = await connect.ta.store()
    assert store.dialect == backend.name
    if backend.name == "postgres":
        assert connect.ta.settings.database_url == backend.url
        assert connect.env["TOOLAUTH_ENCRYPTION_KEY"] == backend.key
