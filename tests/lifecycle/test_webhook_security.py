"""What SECURITY.md says about webhooks, each claim tested here or in ``test_webhooks.py``:
the signing secret is encrypted at rest and re-encrypted by a key rotation, and deliveries do
not follow redirects."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Backend, make_settings, read_rows
from tests.lifecycle.receiver import Receiver
from toolauth import AsyncToolAuth, generate_key, webhooks

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
