"""Token refresh: single-flight across coroutines and processes, after a 401, on a dead grant,
through provider outages; forced refresh and revocation. Real parts only: the demo provider on
loopback, a real SQLite file or PostgreSQL schema (every test runs on both), real child
processes."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import httpx
import pytest

from tests.children import Child
from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.helpers import Browser
from toolauth import (
    AsyncToolAuth,
    ConnectionRequiredError,
    ConnectionStatus,
    NotFoundError,
    Settings,
    TokenRefreshError,
)
from toolauth._models import ConnectedAccount, utcnow

FAST_RETRIES = (0.05, 0.1, 0.15)
FAST = {"TOOLAUTH_REFRESH_RETRY_DELAYS": "0.05,0.1,0.15"}


async def _account(connect, user: str = "u1", *, expires_in: float = 3600):
    """An ACTIVE demo account holding real provider tokens; returns (account, tokens)."""
    ta = connect.ta
    configs = await ta.auth_configs.list(toolkit="demo")
    config = configs[0] if configs else await ta.auth_configs.create("demo")
    tokens = connect.provider.issue_tokens("alice", client_id=DEMO_CLIENT_ID)
    account = await ta.connected_accounts.create(
        user, config.id, credentials={
            "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
            "expires_in": expires_in,
        },
    )  # fmt: skip
    return account, tokens


def _settings(connect):
    """Settings of another client on ``connect``'s store (as another process would have)."""
    return Settings.from_env(connect.env)


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        await asyncio.sleep(0.005)


async def _expire(connect, account_id: str) -> None:
    """The access token is expired at the provider, and the store knows it."""
    connect.provider.expire_access_tokens()
    store = await connect.ta.store()
    past = utcnow() - timedelta(seconds=5)
    await store.modify(
        ConnectedAccount, account_id, lambda a: a.model_copy(update={"expires_at": past})
    )


async def _token_request(connect, refresh_token: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{connect.provider_url}/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        )


async def _api_me(connect, access_token: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(
            f"{connect.provider_url}/api/me", headers={"Authorization": f"Bearer {access_token}"}
        )


def _secrets_of(*accounts: ConnectedAccount) -> list[str]:
    found = [DEMO_CLIENT_SECRET]
    for account in accounts:
        found += [v.get_secret_value() for v in account.credentials.values()]
    return [s for s in found if len(s) > 8]


def _assert_no_secrets(secrets: list[str], *things: object, caplog=None) -> None:
    texts = []
    for thing in things:
        seen = thing
        while seen is not None:  # the exception, its cause and its context
            texts += [str(seen), repr(seen)]
            seen = (seen.__cause__ or seen.__context__) if isinstance(seen, BaseException) else None
    if caplog is not None:
        texts += [r.getMessage() for r in caplog.records]
    for secret in secrets:
        for text in texts:
            assert secret not in text


# -- single flight ------------------------------------------------------------------------------


async def test_200_concurrent_calls_on_an_expired_token_refresh_once(connect, caplog):
    caplog.set_level(logging.DEBUG)
    ta, demo = connect.ta, connect.provider
    account, tokens = await _account(connect)
    await _expire(connect, account.id)
    demo.reset_stats()
    async with await ta.connected_accounts.http_client(account.id) as client:
        results = await asyncio.gather(*(client.get("/me") for _ in range(200)), return_exceptions=True)  # fmt: skip
        auth_repr = repr(client.auth)
    failed = [r for r in results if isinstance(r, BaseException) or r.status_code != 200]
    assert failed == []
    assert demo.stats.refresh_requests == 1
    assert ta.tokens.refresh_requests == 1
    assert demo.stats.failed_auth == 0  # nobody called the API with the expired token
    fresh = await ta.connected_accounts.get(account.id)
    assert fresh.status is ConnectionStatus.ACTIVE
    assert fresh.expires_at > utcnow() + timedelta(minutes=30)
    new_refresh = fresh.credentials["refresh_token"].get_secret_value()
    assert new_refresh != tokens["refresh_token"]  # the rotated refresh token is stored
    assert fresh.credentials["access_token"].get_secret_value() != tokens["access_token"]
    _assert_no_secrets(_secrets_of(account, fresh), auth_repr, fresh, caplog=caplog)
    old = await _token_request(connect, tokens["refresh_token"])  # spent: no longer works
    assert (old.status_code, old.json()["error"]) == (400, "invalid_grant")


async def test_concurrent_calls_across_4_processes_refresh_once(connect):
    ta, demo = connect.ta, connect.provider
    account, tokens = await _account(connect)
    await _expire(connect, account.id)
    # The children share this client's store: connect.env carries its URL and key.
    children = await asyncio.gather(*(Child.start("calls", connect.env) for _ in range(4)))
    try:
        await asyncio.gather(*(c.read() for c in children))  # all ready
        demo.reset_stats()
        for child in children:
            await child.send(account_id=account.id, n=50)
        results = await asyncio.gather(*(c.read(timeout=60) for c in children))
    finally:
        await asyncio.gather(*(c.close() for c in children))
    assert [r["failed"] for r in results] == [0, 0, 0, 0], results
    assert sum(r["ok"] for r in results) == 200
    assert demo.stats.refresh_requests == 1
    assert sum(r["refresh_requests"] for r in results) == 1
    fresh = await ta.connected_accounts.get(account.id)
    assert fresh.credentials["refresh_token"].get_secret_value() != tokens["refresh_token"]
    old = await _token_request(connect, tokens["refresh_token"])
    assert old.json()["error"] == "invalid_grant"


async def test_401_on_a_token_the_store_thinks_valid_refreshes_once_and_retries(connect):
    ta, demo = connect.ta, connect.provider
    account, tokens = await _account(connect)
    demo.expire_access_tokens()  # the store still says: valid for an hour
    demo.reset_stats()
    async with await ta.connected_accounts.http_client(account.id) as client:
        response = await client.get("/me")
    assert response.status_code == 200
    assert response.json()["preferred_username"] == "alice"
    assert demo.stats.refresh_requests == 1
    assert demo.stats.api_requests == 2  # the rejected call, then its one retry
    assert demo.stats.failed_auth == 1
    fresh = await ta.connected_accounts.get(account.id)
    assert fresh.credentials["access_token"].get_secret_value() != tokens["access_token"]


async def test_many_concurrent_401s_share_one_refresh(connect):
    ta, demo = connect.ta, connect.provider
    account, _ = await _account(connect)
    demo.expire_access_tokens()
    demo.reset_stats()
    async with await ta.connected_accounts.http_client(account.id) as client:
        results = await asyncio.gather(*(client.get("/me") for _ in range(50)))
    assert [r.status_code for r in results] == [200] * 50
    assert demo.stats.refresh_requests == 1


async def test_a_401_after_a_refresh_is_returned_not_retried_forever(connect):
    ta, demo = connect.ta, connect.provider
    account, _ = await _account(connect)
    demo.config.access_token_ttl = 0  # every token the provider issues is born expired
    demo.expire_access_tokens()
    demo.reset_stats()
    async with await ta.connected_accounts.http_client(account.id) as client:
        response = await client.get("/me")
    assert response.status_code == 401
    assert demo.stats.api_requests == 2
    assert demo.stats.refresh_requests == 1


# -- a dead grant -------------------------------------------------------------------------------


async def test_invalid_grant_expires_the_account_and_a_new_link_reconnects_it(connect, caplog):
    caplog.set_level(logging.DEBUG)
    ta, demo = connect.ta, connect.provider
    account, tokens = await _account(connect)
    await _expire(connect, account.id)
    demo.config.token_endpoint_fault = "invalid_grant"
    demo.config.fault_only_refresh = True
    async with await ta.connected_accounts.http_client(account.id) as client:
        with pytest.raises(TokenRefreshError) as info:
            await client.get("/me")
        assert info.value.retryable is False
        assert info.value.error == "invalid_grant"
        assert "EXPIRED" in str(info.value) and "reconnect" in str(info.value)
        expired = await ta.connected_accounts.get(account.id)
        assert expired.status is ConnectionStatus.EXPIRED
        assert "invalid_grant" in expired.status_reason
        assert "the grant was rejected" in expired.status_reason
        assert demo.stats.refresh_requests == 1  # a dead grant is not retried
        with pytest.raises(ConnectionRequiredError) as required:
            await client.get("/me")
        assert required.value.status == "EXPIRED"
        assert demo.stats.refresh_requests == 1
        _assert_no_secrets(_secrets_of(account), info.value, required.value, caplog=caplog)

        # A later link for the same user and config reconnects the same account.
        req = await ta.connected_accounts.link("u1", account.auth_config_id)
        assert req.connected_account_id == account.id
        assert req.redirect_url is not None
        browser = Browser()
        try:
            landing = await browser.oauth_consent(req.redirect_url)
        finally:
            await browser.aclose()
        assert landing.response.status_code == 200, landing.response.text
        reconnected = await req.wait_for_connection(timeout=5)
        assert reconnected.status is ConnectionStatus.ACTIVE
        assert reconnected.status_reason is None
        response = await client.get("/me")  # the same client works again
        assert response.status_code == 200
    assert reconnected.credentials["refresh_token"].get_secret_value() != tokens["refresh_token"]


async def test_invalid_grant_seen_by_other_waiters_is_not_sent_again(connect):
    """Calls queued behind a refresh that finds the grant dead, here and on another connection
    (another client on the same database, as another process would be), do not spend the
    dead refresh token again."""
    ta, demo = connect.ta, connect.provider
    account, tokens = await _account(connect)
    await _expire(connect, account.id)
    async with httpx.AsyncClient() as http:  # the user revoked the grant at the provider
        revoked = await http.post(
            f"{connect.provider_url}/oauth/revoke", data={"token": tokens["refresh_token"]},
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        )  # fmt: skip
    assert revoked.status_code == 200
    demo.config.token_endpoint_fault = "timeout"  # slow, then invalid_grant
    demo.config.fault_delay = 0.3
    demo.config.fault_only_refresh = True
    demo.reset_stats()
    async with AsyncToolAuth(settings=_settings(connect)) as other:

        async def calls(client: AsyncToolAuth) -> list[object]:
            async with await client.connected_accounts.http_client(account.id) as http:
                return await asyncio.gather(*(http.get("/me") for _ in range(10)), return_exceptions=True)  # fmt: skip

        async def later() -> list[object]:
            await _until(lambda: demo.stats.refresh_requests == 1)  # it holds the lease
            return await calls(other)

        here, there = await asyncio.gather(calls(ta), later())
    assert all(isinstance(r, (TokenRefreshError, ConnectionRequiredError)) for r in here + there)
    assert any(isinstance(r, TokenRefreshError) for r in here)
    assert demo.stats.refresh_requests == 1
    expired = await ta.connected_accounts.get(account.id)
    assert expired.status is ConnectionStatus.EXPIRED
    assert "unknown or revoked refresh token" in expired.status_reason


# -- provider outages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "extra_env"),
    # "timeout": the provider answers after 1 s; the client gives up after 0.2 s.
    [("500", FAST), ("timeout", {**FAST, "TOOLAUTH_HTTP_TIMEOUT": "0.2"})],
)
async def test_provider_outage_is_retried_with_backoff_and_changes_nothing(connect, caplog, fault):
    caplog.set_level(logging.DEBUG)
    ta, demo = connect.ta, connect.provider
    if fault == "timeout":
        demo.config.fault_delay = 1.0
    account, _ = await _account(connect)
    await _expire(connect, account.id)
    before = await ta.connected_accounts.get(account.id)
    demo.config.token_endpoint_fault = fault
    demo.config.fault_only_refresh = True
    demo.reset_stats()
    started = time.monotonic()
    async with await ta.connected_accounts.http_client(account.id) as client:
        with pytest.raises(TokenRefreshError) as info:
            await client.get("/me")
    elapsed = time.monotonic() - started
    attempts = 1 + len(FAST_RETRIES)
    assert demo.stats.refresh_requests == attempts
    assert ta.tokens.refresh_requests == attempts
    assert elapsed >= sum(FAST_RETRIES)  # backed off between attempts
    assert info.value.retryable is True
    message = str(info.value)
    assert account.id in message
    assert "unchanged" in message and "try again later" in message
    expected = "HTTP 500" if fault == "500" else "timed out"
    assert expected in message
    after = await ta.connected_accounts.get(account.id)
    assert after.status is ConnectionStatus.ACTIVE
    assert after.status_reason is None
    assert after.credentials == before.credentials
    assert after.version == before.version
    _assert_no_secrets(_secrets_of(account), info.value, caplog=caplog)
    if fault == "500":
        demo.config.token_endpoint_fault = None  # the provider is back: the next call refreshes
        async with await ta.connected_accounts.http_client(account.id) as client:
            assert (await client.get("/me")).status_code == 200
        assert demo.stats.refresh_requests == attempts + 1


@pytest.mark.parametrize("extra_env", [FAST])
async def test_concurrent_calls_during_an_outage_share_one_series_of_attempts(connect):
    ta, demo = connect.ta, connect.provider
    account, _ = await _account(connect)
    await _expire(connect, account.id)
    demo.config.token_endpoint_fault = "500"
    demo.config.fault_only_refresh = True
    demo.reset_stats()
    started = time.monotonic()
    async with await ta.connected_accounts.http_client(account.id) as client:
        results = await asyncio.gather(*(client.get("/me") for _ in range(20)), return_exceptions=True)  # fmt: skip
    assert all(isinstance(r, TokenRefreshError) and r.retryable for r in results), results
    assert demo.stats.refresh_requests == 1 + len(FAST_RETRIES)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(  # a retry delay longer than the lease
    "extra_env", [{"TOOLAUTH_REFRESH_LEASE": "0.3", "TOOLAUTH_REFRESH_RETRY_DELAYS": "0.4"}]
)
async def test_a_slow_refresh_keeps_its_lease(connect):
    """Retries that outlast the lease renew it, so no other process can take over and spend
    the same refresh token."""
    ta, demo = connect.ta, connect.provider
    account, _ = await _account(connect)
    await _expire(connect, account.id)
    demo.config.token_endpoint_fault = "500"
    demo.config.fault_only_refresh = True
    store = await ta.store()
    refreshing = asyncio.create_task(ta.connected_accounts.refresh(account.id))
    await _until(lambda: demo.stats.refresh_requests == 1)
    demo.config.token_endpoint_fault = "timeout"  # the retry is slow: 0.3 s, then answered
    demo.config.fault_delay = 0.3
    await _until(lambda: demo.stats.refresh_requests == 2)  # in flight, past the first lease
    taken = await store.try_refresh_lease(account.id, "another-process", 5)
    await refreshing  # the slow provider did answer
    assert not taken
    assert demo.stats.refresh_requests == 2


@pytest.mark.parametrize("extra_env", [FAST])
async def test_outage_before_expiry_keeps_using_the_still_valid_token(connect, backend):
    """An early refresh that fails does not fail a call the current token can still make."""
    ta, demo = connect.ta, connect.provider
    account, _ = await _account(connect, expires_in=30)
    # Issued an hour ago, valid 30 s more: inside the refresh margin.
    issued = (utcnow() - timedelta(hours=1)).isoformat()
    await backend.execute(
        f"UPDATE connected_accounts SET issued_at = '{issued}' WHERE id = '{account.id}'"
    )
    assert ta.tokens.needs_refresh(await ta.connected_accounts.get(account.id))
    demo.config.token_endpoint_fault = "500"
    demo.config.fault_only_refresh = True
    demo.reset_stats()
    async with await ta.connected_accounts.http_client(account.id) as client:
        response = await client.get("/me")
    assert response.status_code == 200
    assert demo.stats.refresh_requests == 1 + len(FAST_RETRIES)


# -- changes made while a refresh is in flight ----------------------------------------------------


async def test_an_account_disabled_during_a_refresh_stays_disabled(connect):
    ta, demo = connect.ta, connect.provider
    account, _ = await _account(connect)
    demo.config.token_endpoint_fault = "timeout"  # answers normally after fault_delay
    demo.config.fault_delay = 0.3
    demo.config.fault_only_refresh = True
    refreshing = asyncio.create_task(ta.connected_accounts.refresh(account.id))
    await _until(lambda: demo.stats.refresh_requests == 1)  # the refresh is in flight
    await ta.connected_accounts.disable(account.id)
    refreshed = await refreshing
    assert demo.stats.refresh_requests == 1
    assert refreshed.status is ConnectionStatus.INACTIVE
    assert (await ta.connected_accounts.get(account.id)).status is ConnectionStatus.INACTIVE


async def test_a_reconnect_during_a_refresh_keeps_the_new_grant(connect):
    ta, demo = connect.ta, connect.provider
    account, tokens = await _account(connect)
    demo.config.token_endpoint_fault = "timeout"
    demo.config.fault_delay = 1.2
    demo.config.fault_only_refresh = True
    refreshing = asyncio.create_task(ta.connected_accounts.refresh(account.id))
    await _until(lambda: demo.stats.refresh_requests == 1)  # the refresh is in flight
    req = await ta.connected_accounts.link("u1", account.auth_config_id, reinitiate=True)
    browser = Browser()
    try:
        landing = await browser.oauth_consent(req.redirect_url)
    finally:
        await browser.aclose()
    assert landing.response.status_code == 200, landing.response.text
    reconnected = await req.wait_for_connection(timeout=5)
    assert not refreshing.done()
    await refreshing
    assert demo.stats.refresh_requests == 1
    kept = await ta.connected_accounts.get(account.id)
    assert kept.credentials == reconnected.credentials  # the new grant's tokens, not the old's
    new_refresh = kept.credentials["refresh_token"].get_secret_value()
    assert new_refresh != tokens["refresh_token"]
    demo.config.token_endpoint_fault = None
    assert (await _token_request(connect, new_refresh)).status_code == 200


async def test_a_streamed_body_is_sent_again_after_a_401(connect):
    ta, demo = connect.ta, connect.provider
    account, _ = await _account(connect)
    demo.expire_access_tokens()

    async def body():
        yield b'{"name": '
        yield b'"streamed"}'

    async with await ta.connected_accounts.http_client(account.id) as client:
        response = await client.post(
            "/items", content=body(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "streamed"
    assert demo.stats.refresh_requests == 1


# -- forced refresh and revocation ----------------------------------------------------------------


async def test_refresh_forces_one_refresh(connect):
    ta, demo = connect.ta, connect.provider
    account, tokens = await _account(connect)
    demo.reset_stats()
    fresh = await ta.connected_accounts.refresh(account.id)
    assert demo.stats.refresh_requests == 1
    assert fresh.version > account.version
    assert fresh.credentials["access_token"].get_secret_value() != tokens["access_token"]
    assert fresh.credentials["refresh_token"].get_secret_value() != tokens["refresh_token"]
    assert fresh.expires_at > account.expires_at
    assert fresh == await ta.connected_accounts.get(account.id)
    assert (await _api_me(connect, fresh.credentials["access_token"].get_secret_value())).is_success
    assert (await _token_request(connect, tokens["refresh_token"])).status_code == 400


async def test_refresh_of_an_account_without_refresh_token_says_so(connect, caplog):
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    tokens = connect.provider.issue_tokens("alice", client_id=DEMO_CLIENT_ID)
    account = await ta.connected_accounts.create(
        "u9", config.id, credentials={"access_token": tokens["access_token"]}
    )
    with pytest.raises(TokenRefreshError) as info:
        await ta.connected_accounts.refresh(account.id)
    assert info.value.retryable is False
    assert "no refresh token" in str(info.value)
    _assert_no_secrets([tokens["access_token"]], info.value, caplog=caplog)


async def test_delete_revokes_the_tokens_at_the_provider(connect):
    ta, demo = connect.ta, connect.provider
    account, tokens = await _account(connect)
    assert (await _api_me(connect, tokens["access_token"])).status_code == 200
    demo.reset_stats()
    await ta.connected_accounts.delete(account.id)
    assert demo.stats.revocations >= 1
    assert demo.stats.token_auth_methods["client_secret_basic"] >= 1
    assert (await _api_me(connect, tokens["access_token"])).status_code == 401
    refused = await _token_request(connect, tokens["refresh_token"])
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    with pytest.raises(NotFoundError):
        await ta.connected_accounts.get(account.id)
