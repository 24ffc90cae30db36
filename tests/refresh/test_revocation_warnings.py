"""A revocation that fails or cannot be made is visible (issue 12, point 9): deleting an
OAuth account still succeeds, and a WARNING names the account and the reason, never a token.

Real HTTP: the demo provider on loopback, a port where nothing listens (the provider is
down), a small Starlette app answering 503 (the provider is failing)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Connect
from tests.helpers import free_port
from toolauth import AsyncToolAuth, NotFoundError, Settings
from toolauth._models import ConnectedAccount
from toolauth.connect.serving import serve_app


async def _oauth_account(
    connect: Connect, toolkit: str = "demo", *, custom: bool = False
) -> tuple[ConnectedAccount, list[str]]:
    ta = connect.ta
    if custom:
        config = await ta.auth_configs.create(
            toolkit, type="use_custom_auth",
            credentials={"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET},
        )  # fmt: skip
    else:
        config = await ta.auth_configs.create(toolkit)
    tokens = connect.provider.issue_tokens("alice", client_id=DEMO_CLIENT_ID)
    account = await ta.connected_accounts.create(
        "u1", config.id, credentials={
            "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
            "expires_in": 3600,
        },
    )  # fmt: skip
    return account, [tokens["access_token"], tokens["refresh_token"], DEMO_CLIENT_SECRET]


def _warnings(caplog: pytest.LogCaptureFixture, account_id: str) -> list[str]:
    records = [r for r in caplog.records if r.name == "toolauth.tokens"]
    found = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    return [message for message in found if account_id in message]


def _assert_no_secret(caplog: pytest.LogCaptureFixture, secrets: list[str]) -> None:
    for record in caplog.records:
        for secret in secrets:
            assert secret not in record.getMessage()


async def _failing_provider(request: Request) -> Response:
    return PlainTextResponse("down for maintenance", status_code=503)


@pytest.fixture
async def failing_provider_url() -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/{path:path}", _failing_provider, methods=["GET", "POST"])])
    async with serve_app(app) as url:
        yield url


@pytest.mark.parametrize("down", ["unreachable", "answering 503"])
async def test_a_revocation_the_provider_does_not_take_is_a_warning(
    connect: Connect, caplog: pytest.LogCaptureFixture, failing_provider_url: str, down: str
) -> None:
    caplog.set_level(logging.DEBUG)
    account, secrets = await _oauth_account(connect)
    where = f"http://127.0.0.1:{free_port()}" if down == "unreachable" else failing_provider_url
    env = {**connect.env, "TOOLAUTH_DEMO_PROVIDER_URL": where}
    async with AsyncToolAuth(settings=Settings.from_env(env)) as other:
        await other.connected_accounts.delete(account.id)  # the delete itself succeeds
        with pytest.raises(NotFoundError):
            await other.connected_accounts.get(account.id)
    [warning] = _warnings(caplog, account.id)
    assert "not revoked at the provider" in warning
    assert f"{where}/oauth/revoke did not accept the refresh_token or the access_token" in warning
    _assert_no_secret(caplog, secrets)
    # It was not revoked: the provider (back) still honours the refresh token.
    assert connect.provider.stats.revocations == 0


async def test_a_toolkit_without_a_revocation_endpoint_is_a_warning(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = connect.provider_url
    definition: dict[str, Any] = {
        "slug": "norevoke", "name": "No Revoke", "description": "OAuth without RFC 7009.",
        "api_base_url": f"{url}/api",
        "auth_schemes": {"OAUTH2": {
            "authorization_url": f"{url}/oauth/authorize", "token_url": f"{url}/oauth/token",
        }},
    }  # fmt: skip
    await connect.ta.toolkits.register(definition)
    account, secrets = await _oauth_account(connect, "norevoke", custom=True)
    await connect.ta.connected_accounts.delete(account.id)
    [warning] = _warnings(caplog, account.id)
    assert "norevoke has no revocation endpoint" in warning
    _assert_no_secret(caplog, secrets)


async def test_a_revocation_without_an_oauth_app_is_a_warning(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """The managed OAuth app is no longer configured (its variables were removed)."""
    caplog.set_level(logging.DEBUG)
    account, secrets = await _oauth_account(connect)
    env = {k: v for k, v in connect.env.items() if not k.startswith("TOOLAUTH_DEMO_CLIENT_")}
    async with AsyncToolAuth(settings=Settings.from_env(env)) as other:
        await other.connected_accounts.delete(account.id)
    [warning] = _warnings(caplog, account.id)
    assert "no OAuth app to revoke with" in warning
    assert "TOOLAUTH_DEMO_CLIENT_ID" in warning
    _assert_no_secret(caplog, secrets)
    assert connect.provider.stats.revocations == 0


async def test_a_successful_revocation_and_an_api_key_account_warn_nothing(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account, _ = await _oauth_account(connect)
    await connect.ta.connected_accounts.delete(account.id)
    assert connect.provider.stats.revocations >= 1
    key_config = await connect.ta.auth_configs.create("demo", auth_scheme="API_KEY")
    keyed = await connect.ta.connected_accounts.create(
        "u1", key_config.id, credentials={"api_key": connect.provider.issue_api_key("alice")}
    )
    await connect.ta.connected_accounts.delete(keyed.id)
    assert _warnings(caplog, account.id) == []
    assert _warnings(caplog, keyed.id) == []
