"""OAuth 2.0 connect links end to end: our connect app and the demo provider on loopback, a
scripted browser, real SQLite files."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from datetime import timedelta

import anyio
import httpx
import pytest

from tests.conftest import Connect
from tests.flows.support import (
    APP_CALLBACK,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    demo_variant,
    query_of,
    snapshot,
    to_callback,
)
from tests.helpers import Browser, until, until_waiting
from toolauth import AsyncToolAuth, ConnectionFailedError, ConnectionTimeoutError, Settings
from toolauth._models import ConnectedAccount, ConnectionStatus, LinkStatus, utcnow

DEMO_SCOPES = ("profile", "items:read", "items:write")


async def link_of(connect: Connect, link_id: str):
    store = await connect.ta.store()
    return await store.get_link(link_id)


async def test_the_redirect_to_the_provider_is_a_complete_pkce_request(
    connect: Connect, paused: Browser
) -> None:
    await demo_variant(
        connect.ta, authorization_params={"prompt": "consent", "access_type": "offline"}
    )
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)

    response = await paused.http.get(req.redirect_url)

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(f"{connect.provider_url}/oauth/authorize?")
    q = query_of(location)
    assert q["response_type"] == "code"
    assert q["client_id"] == DEMO_CLIENT_ID
    assert q["redirect_uri"] == f"{connect.base_url}/oauth/callback"
    assert q["scope"].split(" ") == list(DEMO_SCOPES)
    assert q["code_challenge_method"] == "S256"
    assert len(q["code_challenge"]) == 43
    assert len(q["state"]) >= 43
    assert q["prompt"] == "consent"
    assert q["access_type"] == "offline"
    assert "client_secret" not in location and DEMO_CLIENT_SECRET not in location
    # The state is bound to this browser by a cookie (a value derived from the opening, not
    # the state itself); the store finds the link by the hash of the state's link part and
    # keeps the secrets the openings derive from encrypted.
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/oauth/callback" in cookie
    assert q["state"] not in response.headers["set-cookie"]
    link_part, _, opening = q["state"].partition(".")
    assert len(link_part) >= 43 and len(opening) >= 22
    link = await link_of(connect, req.link_id)
    assert link.state_hash == hashlib.sha256(link_part.encode()).hexdigest()
    assert "state_secret" in link.secrets and "code_verifier" not in link.secrets

    # Each opening (a second tab, a chat app's link preview) gets a state and verifier of
    # its own, for the same link.
    again = query_of((await paused.http.get(req.redirect_url)).headers["location"])
    assert again["state"] != q["state"] and again["state"].startswith(f"{link_part}.")
    assert again["code_challenge"] != q["code_challenge"]


async def test_success_sends_the_user_to_the_callback_url_without_any_token(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id, callback_url=APP_CALLBACK)
    before = utcnow()

    landing = await browser.oauth_consent(req.redirect_url)

    assert landing.url.startswith(APP_CALLBACK + "?")
    assert landing.response.status_code == 303
    assert query_of(landing.url) == {
        "status": "success",
        "connected_account_id": req.connected_account_id,
    }
    account = await req.wait_for_connection(timeout=5)
    assert account.id == req.connected_account_id
    assert account.status is ConnectionStatus.ACTIVE
    assert account.user_id == "alice-user"
    assert set(account.credentials) >= {"access_token", "refresh_token"}
    assert account.scopes == DEMO_SCOPES
    assert before + timedelta(seconds=3500) < account.expires_at < utcnow() + timedelta(hours=1)
    link = await link_of(connect, req.link_id)
    assert link.status is LinkStatus.COMPLETED
    assert link.state_hash is None
    secret_values = [v.get_secret_value() for v in account.credentials.values()]
    for hop in browser.hops:
        assert not {"access_token", "refresh_token", "id_token"} & set(query_of(hop))
        for value in secret_values:
            if len(value) > 8:
                assert value not in hop

    async with await ta.connected_accounts.http_client(account.id) as client:
        me = await client.get("/me")
        items = await client.get("/items")
    assert me.status_code == 200 and me.json()["preferred_username"] == "alice"
    assert items.status_code == 200 and items.json()["total"] == 2


async def test_without_callback_url_the_user_sees_the_connected_page(
    connect: Connect, browser: Browser
) -> None:
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)

    landing = await browser.oauth_consent(req.redirect_url, username="bob", password="builder")

    assert landing.url.startswith(f"{connect.base_url}/oauth/callback?")
    assert landing.response.status_code == 200
    assert "Demo connected" in landing.response.text
    assert "Connected — you can close this window" in landing.response.text
    assert "toolauth_state" in landing.response.headers["set-cookie"]  # the state cookie is cleared
    assert "max-age=0" in landing.response.headers["set-cookie"].lower()
    account = await req.wait_for_connection(timeout=5)
    async with await connect.ta.connected_accounts.http_client(account.id) as client:
        assert (await client.get("/me")).json()["preferred_username"] == "bob"


async def test_denied_consent_fails_the_link_and_wakes_the_waiter(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id, callback_url=APP_CALLBACK)
    failures: list[ConnectionFailedError] = []

    async def wait() -> None:
        with pytest.raises(ConnectionFailedError) as info:
            await req.wait_for_connection(timeout=10)
        failures.append(info.value)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await until_waiting(await ta.store())
        landing = await browser.oauth_consent(req.redirect_url, decision="deny")

    q = query_of(landing.url)
    assert q == {
        "status": "failed",
        "connected_account_id": req.connected_account_id,
        "error": "access_denied",
    }
    account = await ta.connected_accounts.get(req.connected_account_id)
    assert account.status is ConnectionStatus.FAILED
    assert account.status_reason == '"the user denied the request"'  # the provider's words
    assert not account.credentials
    link = await link_of(connect, req.link_id)
    assert link.status is LinkStatus.FAILED
    assert link.error == "access_denied"
    (failure,) = failures
    assert failure.connected_account_id == account.id
    assert failure.reason == '"the user denied the request"'  # quoted: the provider's words
    with pytest.raises(ConnectionFailedError, match="denied"):
        await req.wait_for_connection(timeout=1)
    # The link is spent: opening it again shows the ended page, not the provider.
    again = await browser.get(req.redirect_url)
    assert again.response.status_code == 410
    assert "link_failed" in again.response.text


async def test_a_callback_without_state_is_refused_and_changes_nothing(
    connect: Connect, paused: Browser
) -> None:
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)
    landing = await to_callback(paused, req.redirect_url)
    before = snapshot(connect.ta)
    code = query_of(landing.url)["code"]

    response = await paused.http.get(f"{connect.base_url}/oauth/callback", params={"code": code})

    assert response.status_code == 400
    assert "Missing state" in response.text
    assert snapshot(connect.ta) == before
    assert connect.provider.stats.token_requests["authorization_code"] == 0


async def test_a_forged_state_is_refused_and_the_real_one_still_works(
    connect: Connect, paused: Browser
) -> None:
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)
    landing = await to_callback(paused, req.redirect_url)
    before = snapshot(connect.ta)
    q = query_of(landing.url)
    forged = secrets.token_urlsafe(32)

    response = await paused.http.get(
        f"{connect.base_url}/oauth/callback", params={"code": q["code"], "state": forged}
    )

    assert response.status_code == 400
    assert "invalid_state" in response.text
    assert snapshot(connect.ta) == before
    assert connect.provider.stats.token_requests["authorization_code"] == 0
    paused.stop_at = None
    done = await paused.get(landing.url)
    assert done.response.status_code == 200, done.response.text
    assert (await connect.ta.connected_accounts.get(req.connected_account_id)).is_active


async def test_a_replayed_callback_is_refused_and_changes_nothing(
    connect: Connect, paused: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id)
    landing = await to_callback(paused, req.redirect_url)
    first = await paused.get(landing.url)
    assert first.response.status_code == 200
    account = await ta.connected_accounts.get(req.connected_account_id)
    before = snapshot(ta)

    replay = await paused.http.get(landing.url)

    assert replay.status_code in (400, 409)
    assert "already" in replay.text.lower() or "used" in replay.text.lower()
    assert snapshot(ta) == before
    assert connect.provider.stats.token_requests["authorization_code"] == 1
    after = await ta.connected_accounts.get(account.id)
    assert after.credentials["access_token"] == account.credentials["access_token"]


async def test_a_callback_from_another_browser_is_refused_without_burning_the_state(
    connect: Connect, paused: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id)
    landing = await to_callback(paused, req.redirect_url)
    before = snapshot(ta)

    async with httpx.AsyncClient() as elsewhere:
        response = await elsewhere.get(landing.url)

    assert response.status_code == 400
    assert "same browser" in response.text
    assert snapshot(ta) == before
    assert connect.provider.stats.token_requests["authorization_code"] == 0
    paused.stop_at = None
    done = await paused.get(landing.url)
    assert done.response.status_code == 200, done.response.text
    assert (await ta.connected_accounts.get(req.connected_account_id)).is_active


async def test_an_issuer_mismatch_fails_the_link(connect: Connect, browser: Browser) -> None:
    ta = connect.ta
    connect.provider.config.send_iss_in_redirect = True
    await demo_variant(ta, issuer="https://login.other.example")
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id, callback_url=APP_CALLBACK)

    landing = await browser.oauth_consent(req.redirect_url)

    assert query_of(landing.url)["status"] == "failed"
    assert query_of(landing.url)["error"] == "issuer_mismatch"
    assert connect.provider.stats.token_requests["authorization_code"] == 0  # code never sent
    account = await ta.connected_accounts.get(req.connected_account_id)
    assert account.status is ConnectionStatus.FAILED
    assert not account.credentials
    link = await link_of(connect, req.link_id)
    assert link.status is LinkStatus.FAILED and link.error == "issuer_mismatch"
    with pytest.raises(ConnectionFailedError):
        await req.wait_for_connection(timeout=1)


async def test_the_right_issuer_is_accepted(connect: Connect, paused: Browser) -> None:
    connect.provider.config.send_iss_in_redirect = True
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)

    landing = await to_callback(paused, req.redirect_url)
    assert query_of(landing.url)["iss"] == connect.provider_url
    done = await paused.get(landing.url)

    assert done.response.status_code == 200, done.response.text
    assert (await req.wait_for_connection(timeout=5)).is_active


async def test_an_expired_link_is_refused_on_open_and_on_callback(
    connect: Connect, paused: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    started = await ta.connected_accounts.link("alice-user", config.id, ttl=1)
    unopened = await ta.connected_accounts.link("bob-user", config.id, ttl=1)
    landing = await to_callback(paused, started.redirect_url)
    await anyio.sleep(max(0.0, (started.expires_at - utcnow()).total_seconds()) + 0.05)

    callback = await paused.http.get(landing.url)
    opened = await paused.http.get(unopened.redirect_url)
    reopened = await paused.http.get(started.redirect_url)

    for response in (callback, opened, reopened):
        assert response.status_code == 410
        assert "expired" in response.text
    assert connect.provider.stats.token_requests["authorization_code"] == 0
    for req in (started, unopened):
        assert (await link_of(connect, req.link_id)).status is LinkStatus.EXPIRED
        account = await ta.connected_accounts.get(req.connected_account_id)
        assert not account.is_active and not account.credentials
        with pytest.raises(ConnectionFailedError, match="expired"):
            await req.wait_for_connection(timeout=1)


@pytest.mark.parametrize("fault", ["500", "timeout", "invalid_json"])
async def test_a_provider_outage_keeps_the_link_open_for_a_retry(
    connect: Connect, browser: Browser, fault: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        ta, base_url = connect.ta, connect.base_url
        if fault == "timeout":
            # Our own timeout, made short so the test is quick; the provider answers after it.
            settings = Settings.from_env({**connect.env, "TOOLAUTH_HTTP_TIMEOUT": "0.3"})
            ta = await stack.enter_async_context(AsyncToolAuth(settings=settings))
            base_url = await stack.enter_async_context(ta.serve(port=0))
            connect.provider.register_client(
                DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [f"{base_url}/oauth/callback"]
            )
            connect.provider.config.fault_delay = 0.6
        await _outage_then_retry(connect, browser, ta, base_url, fault)


async def _outage_then_retry(
    connect: Connect, browser: Browser, ta: AsyncToolAuth, base_url: str, fault: str
) -> None:
    connect.provider.config.token_endpoint_fault = fault  # type: ignore[assignment]
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id, callback_url=APP_CALLBACK)

    landing = await browser.oauth_consent(req.redirect_url)

    assert landing.url.startswith(f"{base_url}/oauth/callback?")
    assert landing.response.status_code == 502
    assert "Demo is not answering" in landing.response.text
    assert "Nothing was saved" in landing.response.text
    assert req.redirect_url in landing.response.text  # the "try again" button
    account = await ta.connected_accounts.get(req.connected_account_id)
    assert account.status is ConnectionStatus.INITIATED and not account.credentials
    assert (await link_of(connect, req.link_id)).status is LinkStatus.PENDING

    connect.provider.config.token_endpoint_fault = None
    retry = await browser.oauth_consent(req.redirect_url)

    assert query_of(retry.url)["status"] == "success"
    assert (await req.wait_for_connection(timeout=5)).is_active
    assert (await ta.connected_accounts.get(req.connected_account_id)).is_active


async def test_invalid_grant_at_code_exchange_fails_the_link(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    connect.provider.config.token_endpoint_fault = "invalid_grant"
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id, callback_url=APP_CALLBACK)

    landing = await browser.oauth_consent(req.redirect_url)

    assert query_of(landing.url)["status"] == "failed"
    assert query_of(landing.url)["error"] == "invalid_grant"
    account = await ta.connected_accounts.get(req.connected_account_id)
    assert account.status is ConnectionStatus.FAILED
    assert account.status_reason == '"the grant was rejected"'  # the provider's words
    assert (await link_of(connect, req.link_id)).status is LinkStatus.FAILED
    with pytest.raises(ConnectionFailedError, match="the grant was rejected"):
        await req.wait_for_connection(timeout=1)


async def test_a_completed_link_opened_again_says_already_connected(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id)
    await browser.oauth_consent(req.redirect_url)
    assert (await req.wait_for_connection(timeout=5)).is_active
    before = snapshot(ta)

    again = await browser.get(req.redirect_url)

    assert again.url == req.redirect_url  # no redirect to the provider
    assert again.response.status_code == 410
    assert "Already connected" in again.response.text
    assert snapshot(ta) == before
    assert connect.provider.stats.authorize_requests == 1


async def test_a_custom_auth_config_uses_its_own_oauth_app(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    connect.provider.register_client(
        "custom-app", "custom-secret-SENTINEL", [f"{connect.base_url}/oauth/callback"]
    )
    config = await ta.auth_configs.create(
        "demo",
        type="use_custom_auth",
        credentials={"client_id": "custom-app", "client_secret": "custom-secret-SENTINEL"},
        scopes=["profile"],
    )
    req = await ta.connected_accounts.link("alice-user", config.id, callback_url=APP_CALLBACK)

    first = await browser.http.get(req.redirect_url)
    q = query_of(first.headers["location"])
    assert q["client_id"] == "custom-app"
    assert q["scope"] == "profile"
    assert q["code_challenge_method"] == "S256" and q["code_challenge"]
    landing = await browser.oauth_consent(req.redirect_url)

    assert query_of(landing.url)["status"] == "success"
    account = await req.wait_for_connection(timeout=5)
    assert account.scopes == ("profile",)
    assert connect.provider.stats.token_auth_methods == {"client_secret_basic": 1}
    async with await ta.connected_accounts.http_client(account.id) as client:
        assert (await client.get("/me")).status_code == 200
        assert (await client.get("/items")).status_code == 403  # not granted


async def test_client_secret_post_and_no_pkce_when_the_catalog_says_so(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    connect.provider.config.require_pkce = False
    await demo_variant(ta, pkce=False, token_endpoint_auth_method="client_secret_post")
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id, callback_url=APP_CALLBACK)

    first = await browser.http.get(req.redirect_url)
    q = query_of(first.headers["location"])
    assert "code_challenge" not in q and "code_challenge_method" not in q
    landing = await browser.oauth_consent(req.redirect_url)

    assert query_of(landing.url)["status"] == "success"
    assert (await req.wait_for_connection(timeout=5)).is_active
    assert connect.provider.stats.token_auth_methods == {"client_secret_post": 1}


async def test_a_link_for_user_a_never_connects_user_b(connect: Connect, browser: Browser) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    for_a = await ta.connected_accounts.link("user-a", config.id, callback_url=APP_CALLBACK)
    for_b = await ta.connected_accounts.link("user-b", config.id, callback_url=APP_CALLBACK)
    assert for_a.connected_account_id != for_b.connected_account_id
    results: dict[str, object] = {}

    async def wait_b() -> None:
        try:
            results["b"] = await for_b.wait_for_connection(timeout=1.0)
        except ConnectionTimeoutError as exc:
            results["b"] = exc

    async def wait_b_account() -> None:
        try:
            results["b_account"] = await ta.connected_accounts.wait_for_connection(
                for_b.connected_account_id, timeout=1.0
            )
        except ConnectionTimeoutError as exc:
            results["b_account"] = exc

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_b)
        tg.start_soon(wait_b_account)
        await until_waiting(await ta.store(), 2)
        # Bob happens to finish A's link (it is a bearer link): it connects A, not Bob's user.
        landing = await browser.oauth_consent(
            for_a.redirect_url, username="bob", password="builder"
        )
        assert query_of(landing.url)["connected_account_id"] == for_a.connected_account_id

    assert isinstance(results["b"], ConnectionTimeoutError)
    assert isinstance(results["b_account"], ConnectionTimeoutError)
    a = await for_a.wait_for_connection(timeout=1)
    assert a.user_id == "user-a" and a.is_active
    b = await ta.connected_accounts.get(for_b.connected_account_id)
    assert b.user_id == "user-b" and b.status is ConnectionStatus.INITIATED
    assert not b.credentials
    assert [x.id for x in await ta.connected_accounts.list(user_id="user-b", status="ACTIVE")] == []
    assert [x.id for x in await ta.connected_accounts.list(user_id="user-a")] == [a.id]
    assert (await link_of(connect, for_b.link_id)).status is LinkStatus.PENDING


async def test_two_links_open_in_one_browser_both_complete(
    connect: Connect, paused: Browser
) -> None:
    """The agent asks for two toolkits at once; the user opens both links, then finishes
    them in the other order, in the same browser."""
    ta = connect.ta
    first_config = await ta.auth_configs.create("demo")
    second_config = await ta.auth_configs.create(
        "demo",
        type="use_custom_auth",
        credentials={"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET},
    )
    first = await ta.connected_accounts.link("alice-user", first_config.id)
    second = await ta.connected_accounts.link("alice-user", second_config.id)

    to_first = await to_callback(paused, first.redirect_url)
    to_second = await to_callback(paused, second.redirect_url)
    paused.stop_at = None
    done_first = await paused.get(to_first.url)
    done_second = await paused.get(to_second.url)

    assert done_first.response.status_code == 200, done_first.response.text
    assert done_second.response.status_code == 200, done_second.response.text
    assert (await first.wait_for_connection(timeout=5)).is_active
    assert (await second.wait_for_connection(timeout=5)).is_active


async def test_a_temporarily_unavailable_authorization_response_keeps_the_link_open(
    connect: Connect, paused: Browser
) -> None:
    """RFC 6749 §4.1.2.1: the provider may answer the authorization request with
    ``temporarily_unavailable``; the user can try again with the same link."""
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id)
    landing = await to_callback(paused, req.redirect_url)
    state = query_of(landing.url)["state"]

    response = await paused.http.get(
        f"{connect.base_url}/oauth/callback",
        params={"error": "temporarily_unavailable", "error_description": "down", "state": state},
    )

    assert response.status_code == 502
    assert "Demo is not answering" in response.text
    assert (await link_of(connect, req.link_id)).status is LinkStatus.PENDING
    account = await ta.connected_accounts.get(req.connected_account_id)
    assert account.status is ConnectionStatus.INITIATED
    paused.stop_at = None
    retry = await paused.oauth_consent(req.redirect_url)
    assert retry.response.status_code == 200, retry.response.text
    assert (await req.wait_for_connection(timeout=5)).is_active


async def test_a_link_preview_does_not_break_the_users_open_tab(
    connect: Connect, browser: Browser
) -> None:
    """A chat app's unfurler fetching the link (another client, no cookies) must not void the
    attempt the user already started."""
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("preview-user", config.id)
    first = await browser.http.get(req.redirect_url)  # the user's tab: cookie set, then away
    async with httpx.AsyncClient() as unfurler:
        for _ in range(3):
            assert (await unfurler.get(req.redirect_url)).status_code == 303
    landing = await browser.oauth_consent(req.redirect_url)
    assert landing.response.status_code == 200
    assert first.status_code == 303
    assert (await req.wait_for_connection(timeout=5)).is_active


async def test_a_key_form_survives_a_link_preview(connect: Connect, browser: Browser) -> None:
    from tests.helpers import hidden_fields

    config = await connect.ta.auth_configs.create("demo", auth_scheme="API_KEY")
    req = await connect.ta.connected_accounts.link("preview-key", config.id)
    page = await browser.get(req.redirect_url)
    fields = hidden_fields(page.response.text)
    async with httpx.AsyncClient() as unfurler:
        assert (await unfurler.get(req.redirect_url)).status_code == 200
    key = connect.provider.issue_api_key("alice")
    landing = await browser.post(req.redirect_url, {**fields, "api_key": key})
    assert landing.response.status_code == 200, landing.response.text
    assert (await req.wait_for_connection(timeout=5)).is_active


async def test_an_account_written_during_the_code_exchange_still_connects(
    connect: Connect, paused: Browser
) -> None:
    """Something else writes the account while the callback waits for the token endpoint (a
    refresh of the grant this one replaces, an app relabelling it): the new grant is written
    over the account as it is now, not refused as a used link."""
    ta, demo = connect.ta, connect.provider
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id, callback_url=APP_CALLBACK)
    landing = await to_callback(paused, req.redirect_url)
    demo.config.token_endpoint_fault = "timeout"  # slow, then answered
    demo.config.fault_delay = 0.5
    demo.reset_stats()
    callback = asyncio.create_task(paused.http.get(landing.url))
    await until(lambda: demo.stats.token_requests["authorization_code"] == 1)  # in flight
    store = await ta.store()
    await store.modify(
        ConnectedAccount, req.id, lambda a: a.model_copy(update={"label": "renamed meanwhile"})
    )
    answered = await callback
    assert answered.status_code == 303, answered.text
    assert query_of(answered.headers["location"])["status"] == "success"
    account = await req.wait_for_connection(timeout=5)
    assert account.is_active and account.label == "renamed meanwhile"


async def test_a_callback_url_changed_in_the_database_is_not_followed(
    connect: Connect, browser: Browser, backend
) -> None:
    """RFC 9700 §4.11: a row edited to point elsewhere sends nobody to the other origin. The
    callback URL is bound to the link's secrets (the edit fails their integrity check, see
    tests/security/test_untrusted_db.py), and checked again when the user is sent there."""
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id, callback_url=APP_CALLBACK)
    key = "sha256:" + hashlib.sha256(str(req.link_id).encode()).hexdigest()
    await backend.execute(
        f"UPDATE connection_links SET callback_url = 'https://evil.example/steal' WHERE id = '{key}'"
    )
    landing = await browser.oauth_consent(req.redirect_url)
    assert "evil.example" not in landing.url
    assert landing.response.status_code == 500 and "altered" in landing.response.text
