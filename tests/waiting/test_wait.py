"""Waiting for a connection: push-based, in this process and across processes, and cheap when
nobody waits. Real parts only: the demo provider and the connect app on loopback, a real SQLite
file or PostgreSQL schema (every test runs on both), real child processes."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.children import Child
from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, make_settings, sqlite_only
from tests.helpers import Browser, until, until_waiting
from toolauth import (
    AsyncToolAuth,
    ConnectionFailedError,
    ConnectionStatus,
    ConnectionTimeoutError,
    ToolAuth,
)


async def _consent_later(
    url: str, *, store=None, delay: float = 0.0, decision: str = "allow"
) -> float:
    """Walk a connect link once somebody waits on ``store`` (or after ``delay``); returns the
    monotonic time the flow ended."""
    if store is not None:
        await until_waiting(store)
    await asyncio.sleep(delay)
    browser = Browser()
    try:
        landing = await browser.oauth_consent(url, decision=decision)
    finally:
        await browser.aclose()
    expected = 200 if decision == "allow" else 400
    assert landing.response.status_code == expected, landing.response.text
    return time.monotonic()


def _watch_stopped(store) -> bool:
    """SQLite: the ``PRAGMA data_version`` watcher is not running."""
    task = store._watch_task
    return task is None or task.done()


def _nobody_watches(store) -> bool:
    """No waiter is registered with the store; on SQLite its watcher has stopped too (on
    PostgreSQL the LISTEN connection lingers by design, see ``listen_check``)."""
    if store._watchers:
        return False
    return store.dialect != "sqlite" or _watch_stopped(store)


async def test_wait_returns_the_active_account_as_soon_as_the_flow_completes(connect):
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("u1", config.id)
    completing = asyncio.create_task(_consent_later(req.redirect_url, store=await ta.store()))
    account = await req.wait_for_connection(timeout=10)
    woke = time.monotonic()
    done = await completing
    assert account.id == req.connected_account_id
    assert account.status is ConnectionStatus.ACTIVE
    assert account.credentials["access_token"].get_secret_value()
    # The waiter woke on the commit, before (or right after) the browser got its answer.
    assert woke - done < 0.5


async def test_wait_by_account_id(connect):
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("u1", config.id)
    completing = asyncio.create_task(_consent_later(req.redirect_url, store=await ta.store()))
    account = await ta.connected_accounts.wait_for_connection(req.connected_account_id, timeout=10)
    await completing
    assert (account.id, account.status) == (req.connected_account_id, ConnectionStatus.ACTIVE)


async def test_denied_consent_raises_with_the_reason(connect):
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("u1", config.id)
    completing = asyncio.create_task(
        _consent_later(req.redirect_url, store=await ta.store(), decision="deny")
    )
    with pytest.raises(ConnectionFailedError) as info:
        await req.wait_for_connection(timeout=10)
    await completing
    assert info.value.status == "FAILED"
    assert info.value.connected_account_id == req.connected_account_id
    assert info.value.reason == '"the user denied the request"'  # quoted: the provider's words
    assert "the user denied the request" in str(info.value)
    # By id too: the account itself ended FAILED.
    with pytest.raises(ConnectionFailedError, match="denied"):
        await ta.connected_accounts.wait_for_connection(req.connected_account_id, timeout=5)


async def test_timeout_raises_connection_timeout_error(connect):
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("u1", config.id)
    started = time.monotonic()
    with pytest.raises(ConnectionTimeoutError) as info:
        await req.wait_for_connection(timeout=0.3)
    assert 0.25 < time.monotonic() - started < 2
    assert isinstance(info.value, TimeoutError)
    assert info.value.connected_account_id == req.connected_account_id
    with pytest.raises(TimeoutError):
        await ta.connected_accounts.wait_for_connection(req.connected_account_id, timeout=0.1)


@pytest.mark.parametrize("timeout", [None, 60.0])
async def test_a_wait_ends_when_its_link_expires(connect, timeout):
    """The default timeout is the link's remaining life, and no wait outlives the link: at
    its expiry the waiter hears "link expired" at once (not after its own 60 s)."""
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("u1", config.id, ttl=1)
    req2 = await ta.connected_accounts.link("u2", config.id, ttl=1)

    async def ends_after(wait) -> float:
        started = time.monotonic()
        with pytest.raises(ConnectionFailedError, match="the connect link expired") as info:
            await wait
        assert info.value.status == "EXPIRED"
        return time.monotonic() - started

    # On the request, and by id (the link comes from the account's pending link).
    took = await asyncio.gather(
        ends_after(req.wait_for_connection(timeout)),
        ends_after(
            ta.connected_accounts.wait_for_connection(req2.connected_account_id, timeout=timeout)
        ),
    )
    assert all(0.5 < t < 3 for t in took), took
    assert (await ta.connected_accounts.link("u1", config.id)).link_id != req.link_id


@pytest.mark.parametrize("by", ["request", "id"])
async def test_disabling_the_account_ends_the_wait(connect, by):
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("u1", config.id)
    if by == "request":
        waiting = asyncio.create_task(req.wait_for_connection(timeout=10))
    else:
        waiting = asyncio.create_task(
            ta.connected_accounts.wait_for_connection(req.connected_account_id, timeout=10)
        )
    await until_waiting(await ta.store())
    assert not waiting.done()
    await ta.connected_accounts.disable(req.connected_account_id)
    with pytest.raises(ConnectionFailedError) as info:
        await asyncio.wait_for(waiting, 5)
    assert info.value.status == "INACTIVE"
    assert info.value.reason == "disabled by the app"


async def test_already_active_account_returns_at_once(connect):
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    tokens = connect.provider.issue_tokens("alice", client_id=DEMO_CLIENT_ID)
    account = await ta.connected_accounts.create(
        "u1", config.id, credentials={"access_token": tokens["access_token"]}
    )
    req = await ta.connected_accounts.link("u1", config.id)
    assert req.redirect_url is None
    assert (await req.wait_for_connection(timeout=0.5)).id == account.id
    assert (await ta.connected_accounts.wait_for_connection(account.id, timeout=0.5)).is_active


def test_sync_client_waits(home, store_env):
    from toolauth.connect.serving import serve_app_in_thread
    from toolauth.demo.provider import DemoProvider, ProviderConfig

    demo = DemoProvider(ProviderConfig(auto_consent=True))
    with serve_app_in_thread(demo.app) as provider_url:
        settings = make_settings(
            home, **store_env, TOOLAUTH_DEMO_PROVIDER_URL=provider_url, TOOLAUTH_DEMO_CLIENT_ID=DEMO_CLIENT_ID,
            TOOLAUTH_DEMO_CLIENT_SECRET=DEMO_CLIENT_SECRET,
        )  # fmt: skip
        with ToolAuth(settings=settings) as ta, ta.serve(port=0) as base_url:
            demo.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [f"{base_url}/oauth/callback"])
            config = ta.auth_configs.create("demo")
            req = ta.connected_accounts.link("u1", config.id)
            ended: list[float] = []
            browser = threading.Thread(
                target=lambda: ended.append(
                    asyncio.run(
                        _consent_later(req.redirect_url, delay=0.2)
                    )  # the sync waiter is in
                )
            )
            browser.start()
            try:
                account = req.wait_for_connection(timeout=10)
            finally:
                browser.join(10)
            assert account.is_active
            assert ended, "the browser thread failed"
            with pytest.raises(ConnectionTimeoutError):
                ta.connected_accounts.link("u2", config.id).wait_for_connection(timeout=0.2)


@sqlite_only
async def test_watcher_stops_when_nobody_waits(connect):
    ta = connect.ta
    store = await ta.store()
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("u1", config.id)
    assert _watch_stopped(store)
    waiters = [
        asyncio.create_task(req.wait_for_connection(timeout=10)),
        asyncio.create_task(ta.connected_accounts.wait_for_connection(req.connected_account_id)),
    ]
    await until_waiting(store, 2)
    assert not _watch_stopped(store)  # someone waits: changes from other processes are watched
    await _consent_later(req.redirect_url)
    await asyncio.gather(*waiters)
    other = await ta.connected_accounts.link("u2", config.id)
    with pytest.raises(ConnectionTimeoutError):
        await other.wait_for_connection(timeout=0.05)
    await until(lambda: _watch_stopped(store))  # it notices at its next look
    assert store._watchers == 0


# -- across processes ---------------------------------------------------------------------------


async def test_a_waiter_in_another_process_wakes_when_this_process_completes(connect):
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("u1", config.id)
    child = await Child.start("wait", connect.env)  # the same store (URL and key)
    try:
        await child.read()  # ready
        await child.send(account_id=req.connected_account_id, timeout=15)
        assert "waiting" in await child.read()  # the child is inside wait_for_connection
        done = await _consent_later(req.redirect_url)
        woke = await child.read(timeout=20)
    finally:
        await child.close()
    assert woke.get("status") == "ACTIVE", woke
    assert woke["t"] - done < 2.0  # typically a few ms (bench/resume_latency.py)


async def test_a_waiter_here_wakes_when_another_process_completes(provider, home, store_env):
    demo, provider_url = provider
    env = {
        "TOOLAUTH_HOME": str(home),
        **store_env,  # the child shares this store: the same URL and key
        "TOOLAUTH_DEMO_PROVIDER_URL": provider_url,
        "TOOLAUTH_DEMO_CLIENT_ID": DEMO_CLIENT_ID,
        "TOOLAUTH_DEMO_CLIENT_SECRET": DEMO_CLIENT_SECRET,
    }
    async with AsyncToolAuth(settings=make_settings(home, **env)) as ta:
        config = await ta.auth_configs.create("demo")
        req = await ta.connected_accounts.link("u1", config.id)
        child = await Child.start("complete", env)
        try:
            child_url = (await child.read())["url"]
            demo.register_client(
                DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [f"{child_url}/oauth/callback"]
            )
            waiting = asyncio.create_task(req.wait_for_connection(timeout=15))
            await until_waiting(await ta.store())
            assert not waiting.done()
            await child.send(link_id=req.link_id)
            account = await asyncio.wait_for(waiting, 20)
            woke = time.monotonic()
            done = await child.read()
            await child.send(stop=True)
        finally:
            await child.close()
        assert done["status_code"] == 200
        assert account.status is ConnectionStatus.ACTIVE
        assert woke - done["t"] < 2.0
        store = await ta.store()
        await until(lambda: _nobody_watches(store))
