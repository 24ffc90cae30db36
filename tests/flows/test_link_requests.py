"""``connected_accounts.link()`` and what it hands back, with the connect app and the demo
provider running: idempotence, reconnecting, callback URLs, the status endpoint, races."""

from __future__ import annotations

import anyio
import httpx
import pytest

from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Connect
from tests.flows.support import db_bytes, query_of, snapshot
from tests.helpers import Browser
from toolauth import (
    AsyncToolAuth,
    ConflictError,
    ConnectionTimeoutError,
    Settings,
    ValidationError,
)
from toolauth._models import ConnectionStatus, LinkStatus


async def test_link_is_idempotent_while_pending_and_returns_the_active_account_after(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo", auth_scheme="API_KEY")
    first = await ta.connected_accounts.link("alice-user", config.id)
    second = await ta.connected_accounts.link("alice-user", config.id)
    assert second.link_id == first.link_id and second.redirect_url == first.redirect_url
    assert second.connected_account_id == first.connected_account_id
    assert first.status is ConnectionStatus.INITIATED

    await browser.submit_key_form(
        first.redirect_url, {"api_key": connect.provider.issue_api_key("alice")}
    )
    await first.wait_for_connection(timeout=5)
    after = await ta.connected_accounts.link("alice-user", config.id)

    assert after.redirect_url is None and after.link_id is None
    assert after.status is ConnectionStatus.ACTIVE
    assert after.connected_account_id == first.connected_account_id
    assert (await after.wait_for_connection(timeout=1)).is_active
    assert len(await ta.connected_accounts.list(user_id="alice-user")) == 1


async def test_reinitiate_keeps_the_account_active_until_the_new_grant_replaces_the_tokens(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    first = await ta.connected_accounts.link("alice-user", config.id)
    await browser.oauth_consent(first.redirect_url)
    old = await first.wait_for_connection(timeout=5)

    # Bob signs in over Alice's account below: the app allows that change of identity.
    again = await ta.connected_accounts.link(
        "alice-user", config.id, reinitiate=True, allow_identity_change=True
    )

    assert again.link_id is not None and again.link_id != first.link_id
    assert again.connected_account_id == old.id
    assert again.status is ConnectionStatus.ACTIVE
    still = await ta.connected_accounts.get(old.id)
    assert still.is_active
    assert still.credentials["access_token"] == old.credentials["access_token"]
    # While the new link is open, the old tokens keep working.
    async with await ta.connected_accounts.http_client(old.id) as client:
        assert (await client.get("/me")).status_code == 200
    assert (
        await ta.connected_accounts.link(
            "alice-user", config.id, reinitiate=True, allow_identity_change=True
        )
    ).link_id == again.link_id

    await browser.oauth_consent(again.redirect_url, username="bob", password="builder")
    new = await again.wait_for_connection(timeout=5)

    assert new.id == old.id and new.is_active
    assert new.credentials["access_token"] != old.credentials["access_token"]
    assert new.credentials["refresh_token"] != old.credentials["refresh_token"]
    async with await ta.connected_accounts.http_client(new.id) as client:
        assert (await client.get("/me")).json()["preferred_username"] == "bob"
    assert len(await ta.connected_accounts.list(user_id="alice-user")) == 1


async def test_a_failed_account_is_reused_by_the_next_link(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    first = await ta.connected_accounts.link("alice-user", config.id)
    await browser.oauth_consent(first.redirect_url, decision="deny")
    failed = await ta.connected_accounts.get(first.connected_account_id)
    assert failed.status is ConnectionStatus.FAILED

    second = await ta.connected_accounts.link("alice-user", config.id)

    assert second.link_id != first.link_id
    assert second.connected_account_id == failed.id
    assert second.status is ConnectionStatus.INITIATED
    await browser.oauth_consent(second.redirect_url)
    account = await second.wait_for_connection(timeout=5)
    assert account.is_active and account.status_reason is None


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/steal",
        "javascript:alert(1)",
        "/relative/path",
        "//evil.example/x",
        "https://user:pw@localhost/x",
        "ftp://localhost/x",
    ],
)
async def test_a_callback_url_that_is_not_allowed_is_refused(connect: Connect, url: str) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    before = snapshot(ta)

    with pytest.raises(ValidationError) as info:
        await ta.connected_accounts.link("alice-user", config.id, callback_url=url)

    assert info.value.field == "callback_url"
    if url.startswith("https://evil"):
        assert "allowed_callback_origins" in info.value.message
        assert "https://evil.example" in info.value.message
    assert snapshot(ta) == before


async def test_an_allowed_callback_origin_receives_the_user(connect: Connect) -> None:
    # The same store, with the app's origin allowed (TOOLAUTH_ALLOWED_CALLBACK_ORIGINS) in the
    # process that makes the link and in the one that serves it: the connect app checks the
    # callback again when it sends the user there.
    env = {**connect.env, "TOOLAUTH_ALLOWED_CALLBACK_ORIGINS": "https://app.example.com"}
    async with AsyncToolAuth(settings=Settings.from_env(env)) as ta, ta.serve(port=0) as url:
        connect.provider.register_client(
            DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [f"{url}/oauth/callback"]
        )
        await _callback_to_allowed_origin(ta)


async def _callback_to_allowed_origin(ta: AsyncToolAuth) -> None:
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link(
        "alice-user", config.id, callback_url="https://app.example.com/done?from=chat"
    )
    assert req.callback_url == "https://app.example.com/done?from=chat"

    browser = Browser(stop_at="https://app.example.com")
    try:
        landing = await browser.oauth_consent(req.redirect_url)
    finally:
        await browser.aclose()

    assert landing.url.startswith("https://app.example.com/done?from=chat&status=success")
    assert query_of(landing.url)["connected_account_id"] == req.connected_account_id
    with pytest.raises(ValidationError, match="allowed_callback_origins"):
        await ta.connected_accounts.link(
            "bob-user", config.id, callback_url="https://other.example.com/done"
        )


async def test_a_disabled_config_refuses_new_links_and_open_ones(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    key_config = await ta.auth_configs.create("demo", auth_scheme="API_KEY")
    opened = await ta.connected_accounts.link("alice-user", config.id)
    opened_key = await ta.connected_accounts.link("alice-user", key_config.id)
    await ta.auth_configs.disable(config.id)
    await ta.auth_configs.disable(key_config.id)

    with pytest.raises(ConflictError, match="disabled"):
        await ta.connected_accounts.link("bob-user", config.id)
    landing = await browser.oauth_consent(opened.redirect_url)
    form = await browser.submit_key_form(
        opened_key.redirect_url, {"api_key": connect.provider.issue_api_key("alice")}
    )

    assert connect.provider.stats.authorize_requests == 0  # never sent to the provider
    assert landing.response.status_code == 403
    assert "turned off" in landing.response.text
    assert form.response.status_code == 403
    for req in (opened, opened_key):
        account = await ta.connected_accounts.get(req.connected_account_id)
        assert not account.is_active and not account.credentials


async def test_a_config_disabled_mid_flow_stops_the_code_exchange(
    connect: Connect, paused: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id)
    landing = await paused.oauth_consent(req.redirect_url)
    await ta.auth_configs.disable(config.id)

    response = await paused.http.get(landing.url)

    assert response.status_code == 403
    assert connect.provider.stats.token_requests["authorization_code"] == 0
    assert not (await ta.connected_accounts.get(req.connected_account_id)).is_active


async def test_the_status_endpoint_reports_progress_without_secrets(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user-SENTINEL", config.id)
    url = f"{connect.base_url}/api/links/{req.link_id}"

    async with httpx.AsyncClient() as http:
        pending = await http.get(url)
        await browser.oauth_consent(req.redirect_url)
        await req.wait_for_connection(timeout=5)
        completed = await http.get(url)
        unknown = await http.get(f"{connect.base_url}/api/links/ln_doesnotexist")
        not_an_id = await http.get(f"{connect.base_url}/api/links/ca_{req.link_id[3:]}")

    assert pending.status_code == 200
    assert pending.headers["cache-control"] == "no-store"
    assert pending.json() == {
        "id": req.link_id,
        "toolkit": "demo",
        "status": "PENDING",
        "connected_account_id": req.connected_account_id,
        "connected_account_status": "INITIATED",
        "expires_at": req.expires_at.isoformat(),
        "error": None,
    }
    body = completed.json()
    assert body["status"] == "COMPLETED"
    assert body["connected_account_status"] == "ACTIVE"
    account = await ta.connected_accounts.get(req.connected_account_id)
    for response in (pending, completed):
        assert "alice-user-SENTINEL" not in response.text
        assert "user_id" not in response.json()
        for secret in account.credentials.values():
            assert secret.get_secret_value() not in response.text
    assert unknown.status_code == 404 and unknown.json() == {"error": "not_found"}
    assert not_an_id.status_code == 404


async def test_ten_concurrent_links_make_one_link_and_one_account(connect: Connect) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    results = []

    async def make() -> None:
        results.append(await ta.connected_accounts.link("alice-user", config.id))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(make)

    assert len(results) == 10
    assert len({r.id for r in results}) == 1
    assert len({r.connected_account_id for r in results}) == 1
    assert len(await ta.connected_accounts.list(user_id="alice-user")) == 1
    links = [k for k, v in snapshot(ta).items() if k[0] == "link"]
    assert len(links) == 1


async def test_concurrent_links_for_different_users_stay_apart(connect: Connect) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    results = {}

    async def make(user: str) -> None:
        results[user] = await ta.connected_accounts.link(user, config.id)

    async with anyio.create_task_group() as tg:
        for n in range(5):
            tg.start_soon(make, f"user-{n}")

    assert len({r.id for r in results.values()}) == 5
    for user, req in results.items():
        assert (await ta.connected_accounts.get(req.connected_account_id)).user_id == user


async def test_waiting_times_out_when_nobody_finishes(connect: Connect) -> None:
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)

    with pytest.raises(ConnectionTimeoutError):
        await req.wait_for_connection(timeout=0.2)


async def test_oauth_tokens_are_encrypted_in_the_database_file(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id)
    await browser.oauth_consent(req.redirect_url)
    account = await req.wait_for_connection(timeout=5)

    raw = db_bytes(ta)
    for name in ("access_token", "refresh_token"):
        assert account.credentials[name].get_secret_value().encode() not in raw
    store = await ta.store()
    link = await store.get_link(req.link_id)
    assert link.status is LinkStatus.COMPLETED
    assert b"demo-client-secret-SENTINEL" not in raw
    assert link.secrets["state_secret"].get_secret_value().encode() not in raw


async def test_a_link_lives_an_hour_at_most(ta: AsyncToolAuth) -> None:
    config = await ta.auth_configs.create("openai")
    req = await ta.connected_accounts.link("u1", config.id, ttl=3600)
    assert req.expires_at is not None
    with pytest.raises(ValidationError, match="at most 3600 seconds") as info:
        await ta.connected_accounts.link("u2", config.id, ttl=3601)
    assert info.value.field == "ttl"
    assert [a.user_id for a in await ta.connected_accounts.list()] == ["u1"]


async def test_asking_again_with_another_callback_url_moves_the_open_link(connect: Connect) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    first = await ta.connected_accounts.link("alice-user", config.id)
    again = await ta.connected_accounts.link(
        "alice-user", config.id, callback_url="http://localhost:5999/app/connected"
    )
    assert again.link_id == first.link_id  # still one open link per user and config
    assert again.callback_url == "http://localhost:5999/app/connected"
    browser = Browser(stop_at="http://localhost:5999")
    try:
        landing = await browser.oauth_consent(first.redirect_url)
    finally:
        await browser.aclose()
    assert landing.url.startswith("http://localhost:5999/app/connected?status=success")
