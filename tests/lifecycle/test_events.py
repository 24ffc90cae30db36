"""Every state change of an account or an auth config emits one event, written in the
transaction of the change; subscribers get them in commit order, here and in other processes."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from pydantic import SecretStr

from tests.conftest import Backend, Connect
from tests.flows.support import APP_CALLBACK
from tests.helpers import Browser, until
from tests.lifecycle.conftest import key_config
from toolauth import AsyncToolAuth, ConflictError
from toolauth._models import ConnectedAccount, ConnectionStatus
from toolauth.events import REVOKED_REASON, Event, EventType


async def _types(ta: AsyncToolAuth, after: int = 0) -> list[str]:
    return [str(e.type) for e in await ta.events.list(after=after, limit=1000)]


async def _last(ta: AsyncToolAuth) -> int:
    return await (await ta.store()).last_event_sequence()


async def test_auth_config_changes_emit_one_event_each(ta: AsyncToolAuth) -> None:
    config = await ta.auth_configs.create(
        "demo", type="use_custom_auth", credentials={"client_id": "i", "client_secret": "s"}
    )
    await ta.auth_configs.update(config.id, name="renamed")
    await ta.auth_configs.disable(config.id)
    await ta.auth_configs.enable(config.id)
    await ta.auth_configs.delete(config.id)
    events = await ta.events.list()
    assert [str(e.type) for e in events] == [
        "auth_config.created",
        "auth_config.updated",
        "auth_config.disabled",
        "auth_config.enabled",
        "auth_config.deleted",
    ]
    assert {e.auth_config_id for e in events} == {config.id}
    assert all(e.toolkit == "demo" for e in events)
    assert [e.sequence for e in events] == sorted(e.sequence for e in events)


async def test_account_lifecycle_emits_each_event(ta: AsyncToolAuth) -> None:
    config_id = await key_config(ta)
    start = await _last(ta)
    account = await ta.connected_accounts.create(
        "u1", config_id, credentials={"api_key": "key-SENTINEL"}
    )
    await ta.connected_accounts.disable(account.id)
    await ta.connected_accounts.enable(account.id)
    store = await ta.store()
    await store.modify(
        ConnectedAccount, account.id,
        lambda a: a.model_copy(update={"status": ConnectionStatus.EXPIRED,
                                       "status_reason": "refresh failed: invalid_grant"}),
    )  # fmt: skip
    await store.modify(
        ConnectedAccount,
        account.id,
        lambda a: a.model_copy(
            update={"status": ConnectionStatus.EXPIRED, "status_reason": f"{REVOKED_REASON}: 401"}
        ),
    )  # fmt: skip  (no status change: no event)
    await store.modify(
        ConnectedAccount, account.id,
        lambda a: a.model_copy(update={"status": ConnectionStatus.ACTIVE,
                                       "status_reason": None}),
    )  # fmt: skip
    await store.modify(
        ConnectedAccount, account.id,
        lambda a: a.model_copy(update={"status": ConnectionStatus.EXPIRED,
                                       "status_reason": f"{REVOKED_REASON}: 401"}),
    )  # fmt: skip
    await store.modify(ConnectedAccount, account.id, lambda a: a.model_copy(
        update={"status": ConnectionStatus.ACTIVE, "status_reason": None}))  # fmt: skip
    await store.modify(ConnectedAccount, account.id, lambda a: a.model_copy(
        update={"credentials": {"api_key": SecretStr("new-SENTINEL")}}
    ))  # fmt: skip
    await ta.connected_accounts.delete(account.id)
    events = await ta.events.list(after=start)
    assert [str(e.type) for e in events] == [
        "connection.active",
        "connection.disabled",
        "connection.enabled",
        "connection.expired",
        "connection.active",
        "connection.revoked",
        "connection.active",
        "connection.refreshed",
        "connection.deleted",
    ]
    assert {(e.user_id, e.toolkit, e.connected_account_id, e.auth_config_id) for e in events} == {
        ("u1", "keyed", account.id, config_id)
    }
    assert events[1].reason == "disabled by the app" and events[1].status == "INACTIVE"
    assert events[5].reason == f"{REVOKED_REASON}: 401"


async def test_a_change_that_fails_emits_nothing(ta: AsyncToolAuth) -> None:
    config_id = await key_config(ta)
    account = await ta.connected_accounts.create("u1", config_id, credentials={"api_key": "k"})
    await ta.connected_accounts.disable(account.id)  # stays; then a write that loses its race
    start = await _last(ta)
    entries = await ta.audit.list()
    stale = account.model_copy(update={"status": ConnectionStatus.FAILED})
    with pytest.raises(ConflictError):
        await (await ta.store()).save(stale)
    assert await ta.events.list(after=start) == []
    assert await ta.audit.list() == entries  # nor an audit entry


async def test_deleting_a_config_with_its_accounts_emits_their_deletion(ta: AsyncToolAuth) -> None:
    config_id = await key_config(ta)
    a = await ta.connected_accounts.create("u1", config_id, credentials={"api_key": "k1"})
    b = await ta.connected_accounts.create("u2", config_id, credentials={"api_key": "k2"})
    start = await _last(ta)
    await ta.auth_configs.delete(config_id, force=True)
    events = await ta.events.list(after=start)
    assert [(str(e.type), e.connected_account_id or e.auth_config_id) for e in events] == [
        ("connection.deleted", a.id),
        ("connection.deleted", b.id),
        ("auth_config.deleted", config_id),
    ]


async def test_oauth_link_emits_initiated_then_active(connect: Connect) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    start = await _last(ta)
    request = await ta.connected_accounts.link("u1", config.id, callback_url=APP_CALLBACK)
    assert request.redirect_url is not None
    browser = Browser(stop_at=APP_CALLBACK)
    try:
        await browser.oauth_consent(request.redirect_url)
        await ta.connected_accounts.wait_for_connection(request.id, timeout=10)
        # connecting again while ACTIVE: a new grant through a link is "active" again
        again = await ta.connected_accounts.link(
            "u1", config.id, callback_url=APP_CALLBACK, reinitiate=True
        )
        assert again.redirect_url is not None
        await browser.oauth_consent(again.redirect_url)
    finally:
        await browser.aclose()
    account = await ta.connected_accounts.refresh(request.id)
    assert account.is_active
    events = await ta.events.list(after=start)
    assert [str(e.type) for e in events] == [
        "connection.initiated",
        "connection.active",
        "connection.active",
        "connection.refreshed",
    ]
    assert {e.connected_account_id for e in events} == {request.id}


async def test_denied_consent_emits_failed(connect: Connect) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    start = await _last(ta)
    request = await ta.connected_accounts.link("u1", config.id, callback_url=APP_CALLBACK)
    assert request.redirect_url is not None
    browser = Browser(stop_at=APP_CALLBACK)
    try:
        await browser.oauth_consent(request.redirect_url, decision="deny")
    finally:
        await browser.aclose()
    events = await ta.events.list(after=start)
    assert [str(e.type) for e in events] == ["connection.initiated", "connection.failed"]
    assert events[1].status == "FAILED"


# subscribe ----------------------------------------------------------------------------------
async def _collect(stream: Any, n: int) -> list[Event]:
    found = []
    async for event in stream:
        found.append(event)
        if len(found) == n:
            break
    return found


async def test_subscribe_delivers_in_order_with_filters(ta: AsyncToolAuth) -> None:
    config_id = await key_config(ta)
    async with (
        ta.events.subscribe(user_id="u1") as mine,
        ta.events.subscribe(types=["connection.disabled"]) as disabled,
    ):
        a = await ta.connected_accounts.create("u1", config_id, credentials={"api_key": "k"})
        b = await ta.connected_accounts.create("u2", config_id, credentials={"api_key": "k"})
        await ta.connected_accounts.disable(b.id)
        await ta.connected_accounts.disable(a.id)
        got = await asyncio.wait_for(_collect(mine, 2), 10)
        assert [(str(e.type), e.connected_account_id) for e in got] == [
            ("connection.active", a.id),
            ("connection.disabled", a.id),
        ]
        got = await asyncio.wait_for(_collect(disabled, 2), 10)
        assert [e.connected_account_id for e in got] == [b.id, a.id]
        assert await mine.next(timeout=0.05) is None  # nothing else for u1


async def test_subscribe_starts_now_or_after_a_sequence(ta: AsyncToolAuth) -> None:
    config_id = await key_config(ta)
    first = await ta.events.list()
    stream = ta.events.subscribe(after=first[-1].sequence - 1)
    try:
        event = await stream.next(timeout=5)
        assert event is not None and event.id == first[-1].id
    finally:
        await stream.aclose()
    async with ta.events.subscribe() as now:
        assert await now.next(timeout=0.05) is None  # the past is not replayed
        await ta.connected_accounts.create("u1", config_id, credentials={"api_key": "k"})
        event = await now.next(timeout=5)
        assert event is not None and event.type is EventType.CONNECTION_ACTIVE


def test_unknown_event_type_is_refused(ta: AsyncToolAuth) -> None:
    with pytest.raises(Exception, match="is not an event type"):
        ta.events.subscribe(types=["connection.exploded"])


async def test_events_of_another_process_reach_subscribers(
    ta: AsyncToolAuth, backend: Backend, settings: Any
) -> None:
    """Another client on the same store (its own connection, as another process has) writes;
    this one's subscriber hears it through the store's change feed (SQLite's data_version
    watcher, PostgreSQL's LISTEN)."""
    config_id = await key_config(ta)
    async with AsyncToolAuth(settings=settings) as other:
        await key_config(other)
        async with ta.events.subscribe(types=["connection.active", "connection.disabled"]) as s:
            await s.next(timeout=0.01)  # started: listening
            made = await other.connected_accounts.create(
                "u9", config_id, credentials={"api_key": "k"}
            )
            await other.connected_accounts.disable(made.id)
            got = await asyncio.wait_for(_collect(s, 2), 10)
    assert [str(e.type) for e in got] == ["connection.active", "connection.disabled"]
    assert {e.connected_account_id for e in got} == {made.id}


def test_every_connection_status_has_its_event() -> None:
    """A status added to ``ConnectionStatus`` (as PENDING_CONFIRMATION was) is an event too:
    the mapping from a row's before/after to its event knows every status."""
    from toolauth import ConnectionStatus
    from toolauth.events.types import _STATUS_EVENTS

    assert set(_STATUS_EVENTS) == set(ConnectionStatus)
    assert len(set(_STATUS_EVENTS.values())) == len(ConnectionStatus)


async def test_a_stream_nobody_holds_stops_listening(ta: AsyncToolAuth) -> None:
    """A stream left without ``aclose`` (a ``return`` out of ``async for`` in a task that
    ended, or simply dropped) gives its place on the change feed back once collected."""
    store = await ta.store()
    before = store._watchers  # type: ignore[attr-defined]
    await ta.auth_configs.create("openai")  # an event to read

    async def first_event() -> Event:
        async for event in ta.events.subscribe(after=0):
            return event  # leaves the stream open
        raise AssertionError("the stream ended")

    assert (await asyncio.create_task(first_event())).type is EventType.AUTH_CONFIG_CREATED
    gc.collect()
    await until(lambda: store._watchers == before)  # type: ignore[attr-defined]

    stream = ta.events.subscribe(after=0)
    assert await stream.next(timeout=5) is not None
    assert store._watchers == before + 1  # type: ignore[attr-defined]
    del stream
    gc.collect()
    await until(lambda: store._watchers == before)  # type: ignore[attr-defined]

    async with ta.events.subscribe() as closed:  # closed explicitly: given back at once
        assert store._watchers == before + 1  # type: ignore[attr-defined]
    assert store._watchers == before  # type: ignore[attr-defined]
    with pytest.raises(StopAsyncIteration):
        await closed.next(timeout=0)
