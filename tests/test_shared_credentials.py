"""Auth configs that carry the credential itself (shared by every user of the config), NO_AUTH
toolkits, and the one default auth config per toolkit — over real HTTP to the demo provider,
on the real stores."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import Connect, read_rows
from toolauth import AsyncToolAuth, AuthScheme, ConnectionStatus, Settings, ValidationError
from toolauth._models import ConnectedAccount, utcnow
from toolauth.connect.serving import serve_app


@pytest.fixture
def store_env(backend) -> dict[str, str]:
    """Every test here runs on SQLite and on PostgreSQL."""
    return backend.env


async def test_a_shared_key_connects_every_user_at_once(connect: Connect) -> None:
    ta = connect.ta
    key = connect.provider.issue_api_key("alice")
    config = await ta.auth_configs.create(
        "demo", type="use_custom_auth", name="Demo key", auth_scheme="API_KEY",
        credentials={"api_key": key},
    )  # fmt: skip
    assert config.is_shared and key not in repr(config)

    for user in ("u1", "u2"):
        req = await ta.create(user).authorize("demo")
        assert req.redirect_url is None and req.link_id is None
        assert req.status is ConnectionStatus.ACTIVE
        account = await req.wait_for_connection()
        assert account.shared and account.is_active and not account.credentials
        async with await ta.connected_accounts.http_client(account.id) as client:
            me = await client.get("/me")
        assert me.status_code == 200 and me.json()["preferred_username"] == "alice"

    listed = await ta.connected_accounts.list(auth_config_id=config.id)
    assert sorted(a.user_id for a in listed) == ["u1", "u2"] and all(a.shared for a in listed)
    # The secret is stored once, encrypted, on the config; the accounts hold none.
    db = read_rows(ta.settings.database_url, "SELECT secret FROM auth_configs")
    assert all(key.encode() not in bytes(row[0]) for row in db)
    assert read_rows(ta.settings.database_url, "SELECT count(*) FROM connection_links") == [
        (0,)
    ]  # no link was made


async def test_a_session_uses_a_shared_config_without_asking(connect: Connect) -> None:
    ta = connect.ta
    key = connect.provider.issue_api_key("alice")
    await ta.auth_configs.create(
        "demo", type="use_custom_auth", auth_scheme="API_KEY", credentials={"api_key": key}
    )
    session = ta.create("new-user", toolkits=["demo"])
    (connection,) = await session.toolkits()
    assert connection.status == "active" and connection.has_active_connection
    async with await session.client("demo") as client:
        assert (await client.get("/me")).status_code == 200


async def test_updating_the_shared_key_applies_to_every_user_at_once(connect: Connect) -> None:
    ta, demo = connect.ta, connect.provider
    old, new = demo.issue_api_key("alice"), demo.issue_api_key("bob")
    config = await ta.auth_configs.create(
        "demo", type="use_custom_auth", auth_scheme="API_KEY", credentials={"api_key": old}
    )
    req = await ta.connected_accounts.link("u1", config.id)
    async with await ta.connected_accounts.http_client(req.id) as client:
        assert (await client.get("/me")).json()["preferred_username"] == "alice"
        await ta.auth_configs.update(config.id, credentials={"api_key": new})
        # the same client, at once
        assert (await client.get("/me")).json()["preferred_username"] == "bob"


async def test_a_shared_key_is_checked_against_the_schemes_fields(ta: AsyncToolAuth) -> None:
    with pytest.raises(ValidationError) as info:
        await ta.auth_configs.create(
            "demo", type="use_custom_auth", auth_scheme="API_KEY", credentials={"token": "x"}
        )
    assert info.value.field == "token" and "api_key" in info.value.message
    with pytest.raises(ValidationError, match="expected format"):
        await ta.auth_configs.create(
            "demo", type="use_custom_auth", auth_scheme="API_KEY", credentials={"api_key": "no"}
        )
    assert await ta.auth_configs.list() == []


async def test_a_no_auth_toolkit_is_connected_at_once_and_sends_nothing(ta: AsyncToolAuth) -> None:
    seen: list[dict[str, str]] = []

    async def echo(request: Request) -> JSONResponse:
        seen.append(dict(request.headers))
        return JSONResponse({"ok": True})

    api = Starlette(routes=[Route("/status", echo)])
    async with serve_app(api) as url:
        await ta.toolkits.register({
            "slug": "openapi", "name": "Open API", "description": "A public API.",
            "api_base_url": url, "auth_schemes": {"NO_AUTH": {}},
        })  # fmt: skip
        config = await ta.auth_configs.create("openapi")
        assert config.auth_scheme is AuthScheme.NO_AUTH and config.is_shared
        req = await ta.create("u1", toolkits=["openapi"]).authorize("openapi")
        assert req.redirect_url is None and req.status is ConnectionStatus.ACTIVE
        async with await ta.connected_accounts.http_client(req.id) as client:
            assert (await client.get("/status")).json() == {"ok": True}
    assert "authorization" not in seen[0] and "x-api-key" not in seen[0]


async def test_the_default_config_is_made_once_however_many_ask(connect: Connect) -> None:
    """Eight clients (eight store connections, as eight processes would have) ask for the
    default demo config at the same moment: one is made, all get it."""
    clients = [AsyncToolAuth(settings=Settings.from_env(connect.env)) for _ in range(8)]
    try:
        configs = await asyncio.gather(*(c.create(f"u{i}").auth_config("demo")
                                         for i, c in enumerate(clients)))  # fmt: skip
    finally:
        for client in clients:
            await client.aclose()
    assert len({c.id for c in configs}) == 1 and configs[0].is_default
    assert [c.id for c in await connect.ta.auth_configs.list(toolkit="demo")] == [configs[0].id]


async def test_refresh_timing_reads_the_token_issue_time_not_updated_at(ta: AsyncToolAuth) -> None:
    """Disabling, enabling or relabelling an account moves ``updated_at``; the refresh margin
    (half the token's life at most) is measured from when the token was issued."""
    now = utcnow()
    from datetime import timedelta

    from pydantic import SecretStr

    account = ConnectedAccount(
        id="ca_x", user_id="u", toolkit="demo", auth_config_id="ac_x",
        status=ConnectionStatus.ACTIVE, expires_at=now + timedelta(seconds=40),
        issued_at=now - timedelta(seconds=60), created_at=now, updated_at=now,
        credentials={"access_token": SecretStr("a"), "refresh_token": SecretStr("r")},
    )  # fmt: skip
    # 100 s of life, 40 left: inside the margin (min(60 s, 50 s)), however fresh updated_at is.
    assert ta.tokens.needs_refresh(account)
    assert not ta.tokens.needs_refresh(account.model_copy(update={"issued_at": now}))


async def test_a_link_on_a_shared_config_needs_no_connect_app(connect: Connect) -> None:
    key = connect.provider.issue_api_key("alice")
    config = await connect.ta.auth_configs.create(
        "demo", type="use_custom_auth", auth_scheme="API_KEY", credentials={"api_key": key}
    )
    req = await connect.ta.connected_accounts.link("u1", config.id)
    async with httpx.AsyncClient() as http:
        status = await http.get(f"{connect.base_url}/api/links/{req.id}")
    assert status.status_code == 404  # an account id is no link
