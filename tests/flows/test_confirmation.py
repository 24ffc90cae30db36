"""Link binding across processes: a connect app on a public ``base_url`` that cannot tell who
the browser is (no ``verify_user``) holds the provider's grant, encrypted, until the app that
knows its signed-in user calls ``connected_accounts.confirm(code, user_id=...)``; a grant left
unconfirmed is erased and revoked. Reconnecting an ACTIVE account keeps the old grant until
the new one is the account's, then revokes it. Over real HTTP against the demo provider, on
SQLite and PostgreSQL; the public name resolves to loopback in the test browser only."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import anyio
import httpx
import pytest

from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Connect
from tests.flows.support import APP_CALLBACK, db_bytes, demo_variant, query_of, snapshot
from tests.helpers import Browser, free_port, until
from toolauth import (
    AsyncToolAuth,
    ConfigurationError,
    ConfirmationError,
    ConnectedAccount,
    ConnectionFailedError,
    ConnectionStatus,
    ConnectionTimeoutError,
    Settings,
    ToolAuth,
)
from toolauth._models import LinkStatus, utcnow
from toolauth.connect.serving import serve_app
from toolauth.resources.confirmations import HeldGrant

PUBLIC_HOST = "connect.example"
CONFIRM_URL = "http://localhost:5999/app/confirm"


@dataclass
class Public:
    """A connect app served at a public-looking base_url with a confirm URL, no verify_user."""

    ta: AsyncToolAuth
    base_url: str
    connect: Connect

    def browser(self, stop_at: str = "http://localhost:5999/") -> Browser:
        return Browser(stop_at=stop_at, hosts={PUBLIC_HOST})


@pytest.fixture
def public_env() -> dict[str, str]:
    return {"TOOLAUTH_CONFIRM_URL": CONFIRM_URL}


@pytest.fixture
async def public(connect: Connect, public_env: dict[str, str]) -> AsyncIterator[Public]:
    port = free_port()
    base_url = f"http://{PUBLIC_HOST}:{port}"
    env = {**connect.env, "TOOLAUTH_BASE_URL": base_url, **public_env}
    async with (
        AsyncToolAuth(settings=Settings.from_env(env)) as ta,
        serve_app(ta.asgi_app(), port=port),
    ):
        connect.provider.register_client(
            DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [f"{base_url}/oauth/callback"]
        )
        yield Public(ta, base_url, connect)


async def consent(public: Public, link_url: str) -> dict[str, str]:
    """Walk the link through the provider's consent; the query the app was sent back with."""
    browser = public.browser()
    try:
        landing = await browser.oauth_consent(link_url)
    finally:
        await browser.aclose()
    assert landing.url.startswith("http://localhost:5999/"), landing.response.text[:300]
    return {"url": landing.url.split("?")[0], **query_of(landing.url)}


async def api_status(connect: Connect, account: ConnectedAccount | str) -> int:
    """What the demo provider's API answers to the account's access token (or a token)."""
    token = (
        account
        if isinstance(account, str)
        else account.credentials["access_token"].get_secret_value()
    )
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{connect.provider_url}/api/me", headers={"Authorization": f"Bearer {token}"}
        )
    return response.status_code


async def held_token(ta: AsyncToolAuth, link_id: str) -> str:
    link = await (await ta.store()).get_link(link_id)
    assert link is not None and link.status is LinkStatus.PENDING_CONFIRMATION
    grant = HeldGrant.of(link)
    assert grant is not None
    return grant.credentials["access_token"].get_secret_value()


async def test_the_grant_waits_for_the_apps_confirmation(
    public: Public, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="toolauth")
    ta = public.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice", config.id)
    back = await consent(public, req.redirect_url or "")
    assert back["url"] == CONFIRM_URL
    assert back["status"] == "pending_confirmation"
    assert back["connected_account_id"] == req.id
    code = back["code"]
    assert len(code) >= 43  # 256 random bits, URL-safe
    # Nothing is the account's yet, and waiters keep waiting.
    pending = await ta.connected_accounts.get(req.id)
    assert pending.status is ConnectionStatus.PENDING_CONFIRMATION and not pending.credentials
    with pytest.raises(ConnectionTimeoutError):
        await req.wait_for_connection(timeout=0.3)
    waiter = asyncio.create_task(req.wait_for_connection(timeout=20))
    # The code is stored only hashed; the held grant only encrypted.
    link = await (await ta.store()).get_link(req.link_id or "")
    assert link is not None and link.confirm_hash == hashlib.sha256(code.encode()).hexdigest()
    token = await held_token(ta, link.id)
    stored = db_bytes(ta)
    assert code.encode() not in stored and token.encode() not in stored
    assert await api_status(public.connect, token) == 200  # a real grant, held

    account = await ta.connected_accounts.confirm(code, user_id="alice")
    assert account.is_active and account.credentials["access_token"].get_secret_value() == token
    assert (await waiter).is_active  # waiters wake on the confirmation
    link = await (await ta.store()).get_link(link.id)
    assert link is not None and link.status is LinkStatus.COMPLETED and not link.secrets
    with pytest.raises(ConfirmationError) as used:  # single use
        await ta.connected_accounts.confirm(code, user_id="alice")
    assert used.value.reason == "unknown"
    assert code not in str(used.value) and code not in repr(used.value)
    assert code not in caplog.text and token not in caplog.text


async def test_a_wrong_user_or_code_changes_nothing(public: Public) -> None:
    ta = public.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice", config.id)
    code = (await consent(public, req.redirect_url or ""))["code"]
    before = snapshot(ta)
    for given, user, reason in [
        (code, "mallory", "wrong_user"),
        ("x" * 43, "alice", "unknown"),
        (code[:-1], "alice", "unknown"),
        ("", "alice", "unknown"),
    ]:
        with pytest.raises(ConfirmationError) as refused:
            await ta.connected_accounts.confirm(given, user_id=user)
        assert refused.value.reason == reason and refused.value.error == "confirmation_failed"
        assert code not in refused.value.message
    assert snapshot(ta) == before  # not one row written
    assert (await ta.connected_accounts.confirm(code, user_id="alice")).is_active


async def test_a_link_with_a_callback_url_is_confirmed_there_and_sync_works(
    public: Public,
) -> None:
    ta = public.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice", config.id, callback_url=APP_CALLBACK)
    back = await consent(public, req.redirect_url or "")
    assert back["url"] == APP_CALLBACK and back["status"] == "pending_confirmation"
    # The sync client confirms through the same proxy as every other method.
    sync = ToolAuth(settings=ta.settings)
    try:
        account = await anyio.to_thread.run_sync(
            lambda: sync.connected_accounts.confirm(back["code"], user_id="alice")
        )
    finally:
        await anyio.to_thread.run_sync(sync.close)
    assert account.is_active and account.id == req.id
    assert (await req.wait_for_connection(timeout=5)).is_active


async def test_an_unconfirmed_grant_is_erased_and_revoked(public: Public) -> None:
    """The sweep, run with a clock past the confirmation's time: the held grant is gone from
    the store and dead at the provider; the code then says it expired."""
    ta = public.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice", config.id)
    code = (await consent(public, req.redirect_url or ""))["code"]
    token = await held_token(ta, req.link_id or "")
    assert await ta.confirmations.sweep() == 0  # not yet due
    later = utcnow() + timedelta(seconds=ta.settings.confirm_ttl + 1)
    assert await ta.confirmations.sweep(now=later) == 1
    assert await api_status(public.connect, token) == 401  # revoked at the provider
    link = await (await ta.store()).get_link(req.link_id or "")
    assert link is not None and link.status is LinkStatus.FAILED and not link.secrets
    assert link.error == "not_confirmed"
    account = await ta.connected_accounts.get(req.id)
    assert account.status is ConnectionStatus.FAILED and not account.credentials
    with pytest.raises(ConnectionFailedError, match="did not confirm"):
        await req.wait_for_connection(timeout=5)
    with pytest.raises(ConfirmationError) as late:
        await ta.connected_accounts.confirm(code, user_id="alice")
    assert late.value.reason == "expired"


@pytest.mark.parametrize("public_env", [{"TOOLAUTH_CONFIRM_URL": CONFIRM_URL,
                                         "TOOLAUTH_CONFIRM_TTL": "0.3"}])  # fmt: skip
async def test_the_serving_app_sweeps_in_the_background(public: Public) -> None:
    ta = public.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice", config.id)
    await consent(public, req.redirect_url or "")
    token = await held_token(ta, req.link_id or "")
    revoked = public.connect.provider.stats.revocations
    # Nobody confirms: the app's own sweeper erases the grant, then revokes it.
    await until(lambda: public.connect.provider.stats.revocations > revoked)
    link = await (await ta.store()).get_link(req.link_id or "")
    assert link is not None and link.status is LinkStatus.FAILED and not link.secrets
    assert (await ta.connected_accounts.get(req.id)).status is ConnectionStatus.FAILED
    assert await api_status(public.connect, token) == 401


async def test_a_reconnect_keeps_the_old_grant_until_confirmed_then_revokes_it(
    public: Public,
) -> None:
    ta = public.ta
    config = await ta.auth_configs.create("demo")
    first = await ta.connected_accounts.link("alice", config.id)
    code = (await consent(public, first.redirect_url or ""))["code"]
    old = await ta.connected_accounts.confirm(code, user_id="alice")
    again = await ta.connected_accounts.link("alice", config.id, reinitiate=True)
    assert again.id == old.id and again.redirect_url is not None
    code = (await consent(public, again.redirect_url))["code"]
    meanwhile = await ta.connected_accounts.get(old.id)
    assert meanwhile.is_active and meanwhile.credentials == old.credentials
    assert await api_status(public.connect, old) == 200  # still the account's working grant
    new = await ta.connected_accounts.confirm(code, user_id="alice")
    assert new.id == old.id and new.credentials != old.credentials
    assert await api_status(public.connect, new) == 200
    assert await api_status(public.connect, old) == 401  # the old grant was revoked


async def test_a_loopback_reconnect_replaces_and_revokes_the_old_grant(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    first = await ta.connected_accounts.link("bob", config.id, callback_url=APP_CALLBACK)
    await browser.oauth_consent(first.redirect_url or "")
    old = await first.wait_for_connection(timeout=5)
    again = await ta.connected_accounts.link("bob", config.id, reinitiate=True)
    landing = await browser.oauth_consent(again.redirect_url or "")
    assert landing.response.status_code == 200  # loopback: completes directly
    new = await ta.connected_accounts.get(old.id)
    assert new.is_active and new.credentials != old.credentials
    assert await api_status(connect, new) == 200
    assert await api_status(connect, old) == 401


async def test_a_failed_revocation_of_the_old_grant_is_a_warning(
    connect: Connect, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    first = await ta.connected_accounts.link("carol", config.id, callback_url=APP_CALLBACK)
    await browser.oauth_consent(first.redirect_url or "")
    old = await first.wait_for_connection(timeout=5)
    # The provider's revocation endpoint is unreachable from now on.
    await demo_variant(ta, revocation_url=f"http://127.0.0.1:{free_port()}/oauth/revoke")
    again = await ta.connected_accounts.link("carol", config.id, reinitiate=True)
    caplog.set_level(logging.WARNING)
    await browser.oauth_consent(again.redirect_url or "")
    new = await ta.connected_accounts.get(old.id)
    assert new.is_active and new.credentials != old.credentials  # the reconnect still lands
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(old.id in m and "not revoked" in m for m in warned), warned
    for value in (*old.credentials.values(), *new.credentials.values()):
        assert value.get_secret_value() not in caplog.text


def test_a_public_app_without_binding_refuses_to_start(
    tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"TOOLAUTH_HOME": str(tmp_path), "TOOLAUTH_BASE_URL": "https://connect.example.com"}
    ta = AsyncToolAuth(settings=Settings.from_env(env))
    with pytest.raises(ConfigurationError) as refused:
        ta.asgi_app()
    message = refused.value.message
    assert "verify_user" in message and "TOOLAUTH_CONFIRM_URL" in message
    assert "TOOLAUTH_UNVERIFIED_LINKS=1" in message
    ta.asgi_app(verify_user=lambda request: None)  # either way is enough
    confirming = AsyncToolAuth(
        settings=Settings.from_env(
            {**env, "TOOLAUTH_CONFIRM_URL": "https://connect.example.com/confirm"}
        )
    )
    confirming.asgi_app()
    elsewhere = AsyncToolAuth(
        settings=Settings.from_env({**env, "TOOLAUTH_CONFIRM_URL": "https://evil.example/c"})
    )
    with pytest.raises(ConfigurationError, match="TOOLAUTH_CONFIRM_URL"):
        elsewhere.asgi_app()
    caplog.set_level(logging.WARNING)
    opted_out = AsyncToolAuth(settings=Settings.from_env({**env, "TOOLAUTH_UNVERIFIED_LINKS": "1"}))
    opted_out.asgi_app()
    assert any(
        r.levelno == logging.WARNING and "UNVERIFIED CONNECT LINKS" in r.getMessage()
        for r in caplog.records
    )


async def test_serving_on_a_public_interface_refuses_too(tmp_path: object) -> None:
    async with AsyncToolAuth(settings=Settings.from_env({"TOOLAUTH_HOME": str(tmp_path)})) as ta:
        with pytest.raises(ConfigurationError, match="verify_user"):
            async with ta.serve(host="0.0.0.0", port=0):
                pass


@pytest.mark.parametrize("public_env", [{"TOOLAUTH_UNVERIFIED_LINKS": "1"}])
async def test_the_opt_out_completes_links_directly(public: Public) -> None:
    ta = public.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice", config.id, callback_url=APP_CALLBACK)
    back = await consent(public, req.redirect_url or "")
    assert back["status"] == "success" and "code" not in back
    assert (await req.wait_for_connection(timeout=5)).is_active
