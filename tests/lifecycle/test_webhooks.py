"""Webhooks: Standard Webhooks signatures (checked against the ``standardwebhooks`` package),
the outbox written with each change, delivery at least once with backoff, disabling a failing
endpoint, the private-target rule, and deliverers that crash or run side by side."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import time
from collections import Counter
from datetime import datetime, timezone

import pytest
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as RefError

from tests.children import Child
from tests.conftest import Backend
from tests.helpers import until
from tests.lifecycle.conftest import key_config
from tests.lifecycle.receiver import Receiver
from toolauth import AsyncToolAuth, Settings, ValidationError, webhooks
from toolauth._exceptions import WebhookVerificationError
from toolauth.events import EventType

PRIVATE = {"TOOLAUTH_WEBHOOK_ALLOW_PRIVATE": "1", "TOOLAUTH_WEBHOOK_TIMEOUT": "1"}


# signatures ----------------------------------------------------------------------------------
def test_our_signatures_verify_with_the_reference_and_back() -> None:
    secret = webhooks.new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    body = b'{"type":"connection.active","timestamp":"2026-01-01T00:00:00Z","data":{}}'
    headers = webhooks.headers("ev_1", body, secret)
    assert Webhook(secret).verify(body, headers) == {
        "type": "connection.active", "timestamp": "2026-01-01T00:00:00Z", "data": {},
    }  # fmt: skip
    now = datetime.now(timezone.utc).replace(microsecond=0)
    theirs = Webhook(secret).sign("msg_2", now, body.decode())
    signed = {"webhook-id": "msg_2", "webhook-timestamp": str(int(now.timestamp())),
              "webhook-signature": theirs}  # fmt: skip
    assert webhooks.verify(body, signed, secret) == body
    assert webhooks.verify(body.decode(), {k.upper(): v for k, v in signed.items()}, secret)


def test_verify_refuses_tampering_replays_and_other_secrets() -> None:
    secret = webhooks.new_secret()
    body = b'{"a":1}'
    headers = webhooks.headers("ev_1", body, secret)
    with pytest.raises(WebhookVerificationError, match="No webhook-signature"):
        webhooks.verify(b'{"a":2}', headers, secret)
    with pytest.raises(WebhookVerificationError, match="No webhook-signature"):
        webhooks.verify(body, headers, webhooks.new_secret())
    with pytest.raises(RefError):
        Webhook(webhooks.new_secret()).verify(body, headers)
    old = webhooks.headers("ev_1", body, secret, now=time.time() - 600)
    with pytest.raises(WebhookVerificationError, match="too far from now"):
        webhooks.verify(body, old, secret)
    with pytest.raises(WebhookVerificationError, match="lacks"):
        webhooks.verify(body, {"webhook-id": "x"}, secret)
    several = {**headers, "webhook-signature": "v1,bm9wZQ== " + headers["webhook-signature"]}
    assert webhooks.verify(body, several, secret) == body  # one of several secrets matches


# endpoint URLs ---------------------------------------------------------------------------------
async def test_private_and_plain_http_targets_are_refused_by_default(ta: AsyncToolAuth) -> None:
    for url in ("http://127.0.0.1:9/hook", "https://127.0.0.1/hook", "https://10.1.2.3/h",
                "https://localhost/h", "https://[::1]/h", "https://169.254.169.254/latest",
                "https://user:pw@hooks.example.com/h", "ftp://hooks.example.com/h"):  # fmt: skip
        with pytest.raises(ValidationError) as caught:
            await ta.webhooks.create(url)
        assert caught.value.field == "url"
    with pytest.raises(ValidationError, match="TOOLAUTH_WEBHOOK_ALLOW_PRIVATE"):
        await ta.webhooks.create("https://192.168.1.10/hook")
    made = await ta.webhooks.create("https://hooks.example.com/toolauth")
    assert made.url == "https://hooks.example.com/toolauth"
    with pytest.raises(ValidationError, match="not an event type"):
        await ta.webhooks.create("https://hooks.example.com/x", events=["connection.boom"])


async def test_delivery_resolves_the_target_and_refuses_private_addresses(
    settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    """An endpoint made while private targets were allowed is not sent to by a deliverer
    that does not allow them: the address is judged again at each delivery."""
    got, url = receiver
    allowing = settings.with_overrides(webhook_allow_private=True)
    async with AsyncToolAuth(settings=allowing) as ta:
        endpoint = await ta.webhooks.create(f"{url}/ok")
        await ta.auth_configs.create("demo", type="use_custom_auth",
                                     credentials={"client_id": "i", "client_secret": "s"})  # fmt: skip
    async with AsyncToolAuth(settings=settings) as ta:
        assert await ta.webhooks.deliver() == 0
        (row,) = await ta.webhooks.deliveries(endpoint.id)
    assert got.got == []
    assert row["status"] == "PENDING" and "refused" in row["last_error"]
    assert "127.0.0.1" in row["last_error"]


# delivery --------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra_env", [PRIVATE])
async def test_each_change_is_delivered_signed(
    ta: AsyncToolAuth, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    every = await ta.webhooks.create(f"{url}/ok", description="all")
    assert every.secret is not None
    secret = every.secret.get_secret_value()
    assert secret not in repr(every) and secret not in every.model_dump_json()
    only = await ta.webhooks.create(f"{url}/ok", events=["connection.disabled"])
    assert (await ta.webhooks.get(every.id)).secret is None  # shown once
    config_id = await key_config(ta)
    account = await ta.connected_accounts.create(
        "u1", config_id, credentials={"api_key": "key-SENTINEL"}
    )
    await ta.connected_accounts.disable(account.id)
    assert await ta.webhooks.deliver() == 4  # 3 events to `every`, 1 to `only`
    assert await ta.webhooks.deliver() == 0  # delivered once
    types = Counter(r.json["type"] for r in got.got)
    assert types == {"auth_config.created": 1, "connection.active": 1, "connection.disabled": 2}
    for received in got.got:
        assert b"SENTINEL" not in received.body
        assert received.headers["content-type"] == "application/json"
        event = received.json
        ids = {received.headers["webhook-id"]}
        assert ids == {event["data"]["event_id"]}
    # every delivery to `every` verifies with its secret, by the reference implementation
    verified = []
    for received in got.got:
        with contextlib.suppress(RefError):
            verified.append(Webhook(secret).verify(received.body, received.headers))
    assert [v["type"] for v in verified] == [
        "auth_config.created", "connection.active", "connection.disabled",
    ]  # fmt: skip
    assert verified[1]["data"] == {
        "event_id": verified[1]["data"]["event_id"], "user_id": "u1", "toolkit": "keyed",
        "auth_config_id": config_id, "connected_account_id": account.id, "status": "ACTIVE",
    }  # fmt: skip
    assert (await ta.webhooks.deliveries(only.id))[0]["status"] == "DELIVERED"


@pytest.mark.parametrize(
    "extra_env",
    [{**PRIVATE, "TOOLAUTH_WEBHOOK_RETRY": "0.5,0.5", "TOOLAUTH_WEBHOOK_DISABLE_AFTER": "0"}],
)
async def test_a_failing_endpoint_is_retried_then_disabled_with_an_event(
    ta: AsyncToolAuth, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    failing = await ta.webhooks.create(f"{url}/fail", events=["auth_config.created"])
    watcher = await ta.webhooks.create(f"{url}/ok", events=["webhook.disabled"])
    await ta.auth_configs.create("demo", type="use_custom_auth",
                                 credentials={"client_id": "i", "client_secret": "s"})  # fmt: skip
    assert await ta.webhooks.deliver() == 0
    first = (await ta.webhooks.deliveries(failing.id))[0]
    assert first["attempts"] == 1 and first["last_error"] == "HTTP 500"
    assert (await ta.webhooks.get(failing.id)).failing_since is not None
    assert await ta.webhooks.deliver() == 0  # not due yet: backoff
    assert len(got.on("/fail")) == 1

    async def second_attempt() -> bool:
        await ta.webhooks.deliver()
        return len(got.on("/fail")) == 2

    deadline = time.monotonic() + 15
    while not await second_attempt():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    endpoint = await ta.webhooks.get(failing.id)
    assert not endpoint.enabled and "every delivery failed" in (endpoint.disabled_reason or "")
    await ta.webhooks.deliver()
    (note,) = got.on("/ok")
    assert note.json["type"] == "webhook.disabled"
    assert note.json["data"]["webhook_id"] == failing.id
    events = await ta.events.list(types=[EventType.WEBHOOK_DISABLED])
    assert [e.webhook_id for e in events] == [failing.id]
    assert watcher.id != failing.id
    # disabled: nothing more is tried; enabling again sends what is queued
    await ta.webhooks.deliver()
    assert len(got.on("/fail")) == 2
    await ta.webhooks.update(failing.id, url=f"{url}/ok")
    await ta.webhooks.enable(failing.id)
    deadline = time.monotonic() + 15
    while not [r for r in got.on("/ok") if r.json["type"] == "auth_config.created"]:
        await ta.webhooks.deliver()
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("extra_env", [PRIVATE])
async def test_a_slow_receiver_does_not_hold_up_the_others(
    ta: AsyncToolAuth, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    got.slow_seconds = 0.3
    await ta.webhooks.create(f"{url}/slow")
    await ta.webhooks.create(f"{url}/ok")
    await ta.auth_configs.create("demo", type="use_custom_auth",
                                 credentials={"client_id": "i", "client_secret": "s"})  # fmt: skip
    assert await ta.webhooks.deliver() == 2
    assert [r.path for r in got.got] == ["/slow", "/ok"] or [r.path for r in got.got] == [
        "/ok", "/slow",
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("extra_env", [PRIVATE])
async def test_a_deliverer_killed_mid_delivery_loses_nothing(
    ta: AsyncToolAuth, receiver: tuple[Receiver, str], settings: Settings, backend: Backend
) -> None:
    """A keeper process is SIGKILLed while its delivery is in flight; once its lease lapses,
    another deliverer sends the same delivery again (same webhook-id): at least once."""
    got, url = receiver
    await ta.webhooks.create(f"{url}/hold")
    env = {k: v for k, v in settings.environ.items() if k.startswith("TOOLAUTH_")}
    child = await Child.start("keeper", env)
    try:
        await child.read()
        await ta.auth_configs.create("demo", type="use_custom_auth",
                                     credentials={"client_id": "i", "client_secret": "s"})  # fmt: skip
        await asyncio.wait_for(got.arrived.wait(), 15)
        os.kill(child.proc.pid, signal.SIGKILL)
        await child.proc.wait()
    finally:
        await child.close()
    got.release.set()
    first = got.got[0].headers["webhook-id"]
    started = time.monotonic()
    deadline = started + 15
    while len(got.got) < 2:
        await ta.webhooks.deliver()
        assert time.monotonic() < deadline, "the delivery was lost"
        await asyncio.sleep(0.05)
    assert time.monotonic() - started > 0.5  # not before the dead deliverer's lease lapsed
    assert [r.headers["webhook-id"] for r in got.got] == [first, first]
    assert await ta.webhooks.deliver() == 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.parametrize("extra_env", [PRIVATE])
async def test_two_instances_on_postgres_never_deliver_one_event_twice(
    ta: AsyncToolAuth, receiver: tuple[Receiver, str], settings: Settings
) -> None:
    got, url = receiver
    await ta.webhooks.create(f"{url}/ok")
    config_id = await key_config(ta)
    async with AsyncToolAuth(settings=settings) as other:
        await key_config(other)
        keepers = [asyncio.create_task(c.keeper().run()) for c in (ta, other)]
        try:
            for i in range(30):
                await ta.connected_accounts.create(f"u{i}", config_id, credentials={"api_key": "k"})
            await until(lambda: len(got.got) >= 32, timeout=20)
            endpoint_id = (await ta.webhooks.list())[0].id
            deadline = time.monotonic() + 10
            while True:
                rows = await ta.webhooks.deliveries(endpoint_id)
                if {r["status"] for r in rows} == {"DELIVERED"}:
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        finally:
            for task in keepers:
                task.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
    ids = Counter(r.headers["webhook-id"] for r in got.got)
    assert len(ids) == 32 and set(ids.values()) == {1}
    assert {r["status"] for r in rows} == {"DELIVERED"} and {r["attempts"] for r in rows} == {1}
    assert ta._deliverer.sent + other._deliverer.sent == 32
