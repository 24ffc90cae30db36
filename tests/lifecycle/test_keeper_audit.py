"""The keeper (refresh before expiry, probe for revoked grants) and the audit log (who did
what: app, user, agent, keeper), against the demo provider on loopback."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import DEMO_CLIENT_ID, Connect
from tests.flows.support import APP_CALLBACK
from tests.helpers import Browser
from toolauth import AsyncToolAuth
from toolauth._models import ConnectedAccount, utcnow
from toolauth.events import REVOKED_REASON


async def _oauth_account(connect: Connect, user: str = "u1") -> ConnectedAccount:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    tokens = connect.provider.issue_tokens("alice", client_id=DEMO_CLIENT_ID)
    return await ta.connected_accounts.create(
        user, config.id, credentials={
            "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
            "expires_in": 3600,
        },
    )  # fmt: skip


async def test_keeper_refreshes_tokens_about_to_expire(connect: Connect) -> None:
    ta = connect.ta
    account = await _oauth_account(connect)
    keeper = ta.keeper()
    assert (await keeper.run_once()).refreshed == 0  # not due
    store = await ta.store()
    soon = utcnow() + timedelta(seconds=10)
    await store.modify(
        ConnectedAccount, account.id,
        lambda a: a.model_copy(update={"expires_at": soon, "issued_at": utcnow() - timedelta(hours=1)}),
    )  # fmt: skip
    start = await store.last_event_sequence()
    done = await keeper.run_once()
    assert done.refreshed == 1
    fresh = await ta.connected_accounts.get(account.id)
    assert fresh.expires_at is not None and fresh.expires_at > soon
    events = await ta.events.list(after=start)
    assert [str(e.type) for e in events] == ["connection.refreshed"]
    last = (await ta.audit.list(user_id="u1"))[-1]
    assert (last.action, str(last.actor), last.actor_id) == (
        "connection.refreshed", "keeper", keeper.owner,
    )  # fmt: skip


async def test_keeper_probe_marks_a_revoked_grant_expired(connect: Connect) -> None:
    ta = connect.ta
    key = connect.provider.issue_api_key("alice")
    config = await ta.auth_configs.create("demo", auth_scheme="API_KEY", type="use_custom_auth")
    account = await ta.connected_accounts.create("u1", config.id, credentials={"api_key": key})
    keeper = ta.keeper()
    done = await keeper.run_once()
    assert (done.probed, done.expired) == (1, 0)
    assert (await keeper.run_once()).probed == 0  # probed once per interval
    del connect.provider._api_keys[key]  # the user revokes the key at the provider
    # another keeper that probes every account at every round
    other = AsyncToolAuth(settings=ta.settings.with_overrides(probe_interval=0.001))
    async with other:
        done = await other.keeper().run_once()
    assert (done.probed, done.expired) == (1, 1)
    expired = await ta.connected_accounts.get(account.id)
    assert str(expired.status) == "EXPIRED"
    assert expired.status_reason and expired.status_reason.startswith(REVOKED_REASON)
    (event,) = await ta.events.list(types=["connection.revoked"])
    assert event.connected_account_id == account.id and event.status == "EXPIRED"
    assert key not in repr(await ta.audit.list()) and key not in repr(event)


async def test_the_audit_log_names_app_user_and_agent(connect: Connect) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    session = ta.create("u1", toolkits=["demo"], callback_url=APP_CALLBACK)
    request = await session.authorize("demo")
    assert request.redirect_url is not None
    browser = Browser(stop_at=APP_CALLBACK)
    try:
        await browser.oauth_consent(request.redirect_url)
    finally:
        await browser.aclose()
    await ta.connected_accounts.wait_for_connection(request.id, timeout=10)
    tools = {t.name: t for t in session.tools()}
    me = next(name for name in tools if "ME" in name or "PROFILE" in name or "USER" in name)
    await tools[me].ainvoke({})
    entries = await ta.audit.list(user_id="u1")
    seen = [(str(e.actor), e.action) for e in entries]
    assert ("app", "connection.initiated") in seen
    assert ("user", "link.opened") in seen
    assert ("user", "connection.active") in seen
    assert ("agent", "tool.call") in seen
    call = next(e for e in entries if e.action == "tool.call")
    assert call.actor_id == me and call.outcome == "ok" and call.connected_account_id == request.id
    assert {e.auth_config_id for e in entries} == {config.id}
    since = entries[-1].created_at
    assert [e.id for e in await ta.audit.list(since=since)][-1] == entries[-1].id
    assert await ta.audit.list(user_id="nobody") == []
    events, pruned = await ta.audit.prune(older_than_days=0)
    assert pruned >= len(entries) and events >= 3
    assert await ta.audit.list() == []
