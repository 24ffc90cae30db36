"""What SECURITY.md says about webhooks, each claim tested here or in ``test_webhooks.py``:
the signing secret is encrypted at rest and re-encrypted by a key rotation, deliveries do not
follow redirects, and a delivery connects to the address it checked (DNS rebinding).

DNS and the internet lie outside this machine, so two stand-ins replace them: ``Rebinding``
is a name server whose answers change (public first, then loopback), ``Internet`` the network
beyond loopback, which these tests may not reach (connecting there fails; loopback connects
for real)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import httpcore
import pytest

from tests.conftest import Backend, make_settings, read_rows
from tests.lifecycle.receiver import Receiver
from toolauth import AsyncToolAuth, Settings, generate_key, webhooks
from toolauth._http import HttpPool
from toolauth.resources.deliveries import Deliverer

PRIVATE = {"TOOLAUTH_WEBHOOK_ALLOW_PRIVATE": "1", "TOOLAUTH_WEBHOOK_TIMEOUT": "2"}


def _client(home: Path, backend: Backend, key: str) -> AsyncToolAuth:
    env = {"TOOLAUTH_DATABASE_URL": backend.url, "TOOLAUTH_ENCRYPTION_KEY": key, **PRIVATE}
    return AsyncToolAuth(settings=make_settings(home, **env))


async def test_webhook_secret_is_encrypted_and_rotates_with_the_keys(
    home: Path, backend: Backend, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    old, new = generate_key(), generate_key()
    async with _client(home, backend, old) as ta:
        endpoint = await ta.webhooks.create(f"{url}/ok")
        assert endpoint.secret is not None
        secret = endpoint.secret.get_secret_value()
        assert (await ta.webhooks.get(endpoint.id)).secret is None  # shown once
        assert [e.secret for e in await ta.webhooks.list()] == [None]
    (row,) = read_rows(backend.url, "SELECT secret, key_id FROM webhook_endpoints")
    stored = bytes(row[0])
    assert secret.encode() not in stored and secret.removeprefix("whsec_").encode() not in stored
    async with _client(home, backend, f"{new},{old}") as ta:
        store = await ta.store()
        assert await store.rotate_keys() >= 1
        assert await store.key_ids() == {store.keyring.primary_id}
    (after,) = read_rows(backend.url, "SELECT key_id FROM webhook_endpoints")
    assert after[0] != row[1]
    async with _client(home, backend, new) as ta:  # the new key alone signs with the secret
        await ta.auth_configs.create("openai")
        assert await ta.webhooks.deliver() == 1
    (hit,) = got.on("/ok")
    assert webhooks.verify(hit.body, hit.headers, secret) == hit.body


@pytest.mark.parametrize("extra_env", [PRIVATE])
async def test_a_delivery_does_not_follow_redirects(
    ta: AsyncToolAuth, receiver: tuple[Receiver, str]
) -> None:
    got, url = receiver
    endpoint = await ta.webhooks.create(f"{url}/redirect")
    await ta.auth_configs.create("openai")
    assert await ta.webhooks.deliver() == 0
    assert [r.path for r in got.got] == ["/redirect"]  # never /ok
    (row,) = await ta.webhooks.deliveries(endpoint.id)
    assert row["status"] == "PENDING" and row["last_error"] == "HTTP 307"


# DNS rebinding ---------------------------------------------------------------------------------
PUBLIC = "93.184.216.34"  # a global address: never reached, ``Internet`` refuses it
HOST = "hooks.rebind.example"  # reserved (RFC 2606): the system resolver knows nothing of it


class Rebinding:
    """A name server that answers ``answers`` in turn (the last one from then on)."""

    def __init__(self, *answers: str) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return [self.answers[min(len(self.asked), len(self.answers)) - 1]]


class Internet(httpcore.AsyncNetworkBackend):
    """Sockets: real ones to loopback; beyond it, a failure to connect (recorded)."""

    def __init__(self) -> None:
        self.real = httpcore.AnyIOBackend()
        self.tried: list[str] = []

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None, socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        self.tried.append(host)
        if not ipaddress.ip_address(host).is_loopback:
            raise httpcore.ConnectError(f"{host} is beyond loopback: unreachable in tests")
        return await self.real.connect_tcp(host, port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self.real.sleep(seconds)


def _deliverer(
    ta: AsyncToolAuth, settings: Settings, resolver: Rebinding, network: Internet
) -> Deliverer:
    http = HttpPool(timeout=5)
    return Deliverer(
        store=ta.store, settings=settings, http=http, resolver=resolver, network=network
    )


@pytest.mark.parametrize("extra_env", [{"TOOLAUTH_WEBHOOK_RETRY": "0,0"}])
async def test_a_name_that_rebinds_to_loopback_is_never_connected_to(
    settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    """The name answers a public address, then 127.0.0.1 (the receiver listens there, over
    plain http). Each attempt resolves once and connects only to what that answer said."""
    got, url = receiver
    port = url.rsplit(":", 1)[1]
    allowing = settings.with_overrides(webhook_allow_private=True)
    async with AsyncToolAuth(settings=allowing) as ta:  # http and any name, at creation
        endpoint = await ta.webhooks.create(f"http://{HOST}:{port}/ok")
    async with AsyncToolAuth(settings=settings) as ta:
        await ta.auth_configs.create("openai")
        dns, internet = Rebinding(PUBLIC, "127.0.0.1"), Internet()
        deliverer = _deliverer(ta, settings, dns, internet)
        try:
            assert await deliverer.run_once() == 0  # public: connected there (and failed)
            (first,) = await ta.webhooks.deliveries(endpoint.id)
            assert dns.asked == [HOST] and internet.tried == [PUBLIC]
            assert first["last_error"] == "ConnectError"
            assert await deliverer.run_once() == 0  # now loopback: refused, never connected
            (second,) = await ta.webhooks.deliveries(endpoint.id)
        finally:
            await deliverer.aclose()
    assert dns.asked == [HOST, HOST] and internet.tried == [PUBLIC]
    assert second["status"] == "PENDING" and second["attempts"] == 2
    assert second["last_error"].startswith(f"refused: {HOST} resolves to a non-public")
    assert "127.0.0.1" in second["last_error"]
    assert got.got == []


@pytest.mark.parametrize("extra_env", [{"TOOLAUTH_WEBHOOK_ALLOW_PRIVATE": "1"}])
async def test_a_delivery_connects_to_the_address_it_resolved(
    ta: AsyncToolAuth, settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    """Private targets allowed: the name (unknown to the system resolver) is sent to the
    address our resolver gave, with the name in the Host header."""
    got, url = receiver
    port = url.rsplit(":", 1)[1]
    endpoint = await ta.webhooks.create(f"http://{HOST}:{port}/ok")
    await ta.auth_configs.create("openai")
    dns, internet = Rebinding("127.0.0.1"), Internet()
    deliverer = _deliverer(ta, settings, dns, internet)
    try:
        assert await deliverer.run_once() == 1
    finally:
        await deliverer.aclose()
    assert dns.asked == [HOST] and internet.tried == ["127.0.0.1"]
    (hit,) = got.on("/ok")
    assert hit.headers["host"] == f"{HOST}:{port}"
    assert (await ta.webhooks.deliveries(endpoint.id))[0]["status"] == "DELIVERED"
