"""A refresh slower than its lease keeps the lease (issue 12, point 7): a heartbeat renews it
while the token request is in flight, so no other process takes over and spends the same
(rotating) refresh token. Also: how often a waiter looks at a refresh another process holds
is the ``refresh_lease_poll`` setting.

Real parts: the demo provider on loopback (behind an ASGI wrapper that says when a token
request arrives, so the tests wait on that instead of polling), the store on SQLite and on
PostgreSQL, and a second store connection or client standing for another process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import DEMO_CLIENT_ID, Connect
from toolauth import AsyncToolAuth, ConnectionStatus, Settings
from toolauth._models import ConnectedAccount
from toolauth.connect.serving import serve_app
from toolauth.store import Store

LEASE = 0.5
SLOW = {"TOOLAUTH_REFRESH_LEASE": str(LEASE), "TOOLAUTH_REFRESH_LEASE_POLL": "0.05"}


class TokenRequests:
    """The demo provider's app, counting the token requests that reach it and saying when
    one arrives."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self.count = 0
        self.arrived = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/oauth/token":
            self.count += 1
            self.arrived.set()
        await self._app(scope, receive, send)


@contextlib.asynccontextmanager
async def watched_client(connect: Connect) -> AsyncIterator[tuple[AsyncToolAuth, TokenRequests]]:
    """A client on ``connect``'s store whose demo provider is the same one, reached through
    a :class:`TokenRequests` wrapper."""
    watched = TokenRequests(connect.provider.app)
    async with serve_app(watched) as url:
        env = {**connect.env, "TOOLAUTH_DEMO_PROVIDER_URL": url}
        async with AsyncToolAuth(settings=Settings.from_env(env)) as ta:
            yield ta, watched


@pytest.fixture
async def other_store(connect: Connect) -> AsyncIterator[Store]:
    """Another connection to ``connect``'s database, as another process would have."""
    async with AsyncToolAuth(settings=Settings.from_env(connect.env)) as other:
        yield await other.store()


async def _account(connect: Connect) -> tuple[ConnectedAccount, dict[str, Any]]:
    config = await connect.ta.auth_configs.create("demo")
    tokens = connect.provider.issue_tokens("alice", client_id=DEMO_CLIENT_ID)
    account = await connect.ta.connected_accounts.create(
        "u1", config.id, credentials={
            "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
            "expires_in": 3600,
        },
    )  # fmt: skip
    return account, tokens


def _slow_provider(connect: Connect, delay: float) -> None:
    """The token endpoint answers refreshes normally, after ``delay`` seconds."""
    config = connect.provider.config
    config.token_endpoint_fault = "timeout"
    config.fault_delay = delay
    config.fault_only_refresh = True


@pytest.mark.parametrize("extra_env", [SLOW])
async def test_a_refresh_three_leases_long_keeps_its_lease_from_another_process(
    connect: Connect, other_store: Store
) -> None:
    account, tokens = await _account(connect)
    _slow_provider(connect, 3 * LEASE)
    other = other_store
    async with watched_client(connect) as (ta, requests):
        refreshing = asyncio.create_task(ta.connected_accounts.refresh(account.id))
        await requests.arrived.wait()  # in flight; the provider answers in 3 leases
        started = time.monotonic()
        attempts = 0
        while not refreshing.done():
            taken = await other.try_refresh_lease(account.id, "another-process", LEASE)
            assert not taken, f"another process took the lease after {time.monotonic() - started:.2f} s"  # fmt: skip
            attempts += 1
            await asyncio.wait({refreshing}, timeout=LEASE / 5)  # try again soon, or stop
        fresh = await refreshing
    held = time.monotonic() - started
    assert held > 2 * LEASE  # the lease was kept well past its length
    assert attempts >= 10
    assert requests.count == 1  # exactly one refresh request reached the provider
    assert connect.provider.stats.refresh_requests == 1
    assert fresh.status is ConnectionStatus.ACTIVE
    assert fresh.credentials["refresh_token"].get_secret_value() != tokens["refresh_token"]
    # Done: the lease is free for the next refresh.
    assert await other.try_refresh_lease(account.id, "another-process", LEASE)


@pytest.mark.parametrize("extra_env", [SLOW])
async def test_another_client_waits_for_a_slow_refresh_instead_of_spending_the_token(
    connect: Connect,
) -> None:
    """Another client (as another process would) forces a refresh while a slow one is in
    flight: it waits for the first one's result instead of spending the same rotating refresh
    token, which would have revoked the whole grant (RFC 9700 §4.14.2)."""
    account, tokens = await _account(connect)
    _slow_provider(connect, 3 * LEASE)
    async with watched_client(connect) as (ta, requests):
        first = asyncio.create_task(ta.connected_accounts.refresh(account.id))
        await requests.arrived.wait()
        second = await connect.ta.connected_accounts.refresh(account.id)  # another client
        fresh = await first
    assert requests.count == 1
    assert connect.provider.stats.refresh_requests == 1
    assert second.credentials == fresh.credentials  # it got the first one's result
    assert second.status is ConnectionStatus.ACTIVE
    assert fresh.credentials["refresh_token"].get_secret_value() != tokens["refresh_token"]
    connect.provider.config.token_endpoint_fault = None  # the new grant works
    async with await connect.ta.connected_accounts.http_client(account.id) as client:
        assert (await client.get("/me")).status_code == 200


@pytest.mark.parametrize(
    "extra_env", [{"TOOLAUTH_REFRESH_LEASE": "5", "TOOLAUTH_REFRESH_LEASE_POLL": "0.05"}]
)
async def test_a_waiter_looks_again_every_refresh_lease_poll(
    connect: Connect, other_store: Store
) -> None:
    """A process that died holding the lease writes nothing that would wake a waiter: the
    waiter finds the lapsed lease by looking again every ``refresh_lease_poll`` seconds (here
    0.05 s, not the default 1 s)."""
    assert connect.ta.settings.refresh_lease_poll == 0.05
    assert Settings.from_env({}).refresh_lease_poll == 1.0
    account, _ = await _account(connect)
    other = other_store
    assert await other.try_refresh_lease(account.id, "a-dead-process", 0.2)
    started = time.monotonic()
    fresh = await connect.ta.connected_accounts.refresh(account.id)
    elapsed = time.monotonic() - started
    assert 0.1 <= elapsed < 0.9, elapsed  # the lapse seen within a few polls, not after 1 s
    assert fresh.version > account.version
    assert connect.provider.stats.refresh_requests == 1
