from datetime import timedelta

import pytest

from toolauth import ConflictError, ConnectionStatus, NotFoundError, ValidationError
from toolauth._models import utcnow

KEY = "sk-" + "k" * 40


async def test_create_api_key_account_and_read_it_back(ta):
    config = await ta.auth_configs.create("openai")
    account = await ta.connected_accounts.create("user_1", config.id, credentials={"api_key": KEY})
    assert account.id.startswith("ca_")
    assert (account.user_id, account.toolkit, account.status) == ("user_1", "openai", "ACTIVE")
    fetched = await ta.connected_accounts.get(account.id)
    assert fetched == account
    assert fetched.credentials["api_key"].get_secret_value() == KEY
    assert KEY not in repr(fetched) + fetched.model_dump_json()


async def test_basic_scheme_splits_plain_and_secret_fields(ta):
    config = await ta.auth_configs.create("jira", auth_scheme="BASIC")
    account = await ta.connected_accounts.create(
        "u", config.id,
        credentials={"site": "acme", "email": "a@acme.test", "api_token": "tok-SENTINEL"},
    )  # fmt: skip
    assert account.data == {"site": "acme", "email": "a@acme.test"}
    assert set(account.credentials) == {"api_token"}


@pytest.mark.parametrize(
    ("credentials", "field"),
    [({}, "api_key"), ({"api_key": "nope"}, "api_key"), ({"api_key": KEY, "x": "1"}, "x")],
)
async def test_bad_fields_name_the_field(ta, credentials, field):
    config = await ta.auth_configs.create("openai")
    with pytest.raises(ValidationError) as info:
        await ta.connected_accounts.create("u", config.id, credentials=credentials)
    assert info.value.field == field
    assert "nope" not in str(info.value)  # the rejected value is never echoed
    assert await ta.connected_accounts.list() == []


async def test_oauth_tokens_import(ta):
    config = await ta.auth_configs.create("github")
    account = await ta.connected_accounts.create(
        "u",
        config.id,
        credentials={"access_token": "gho_x", "refresh_token": "r", "expires_in": 60},
    )
    assert account.expires_at is not None
    assert timedelta(seconds=50) < account.expires_at - utcnow() <= timedelta(seconds=60)
    assert account.scopes == config.scopes


async def test_list_filters_and_order(ta):
    openai = await ta.auth_configs.create("openai")
    github = await ta.auth_configs.create("github")
    a1 = await ta.connected_accounts.create("u1", openai.id, credentials={"api_key": KEY})
    a2 = await ta.connected_accounts.create("u1", github.id, credentials={"access_token": "t"})
    a3 = await ta.connected_accounts.create(
        "u2", github.id, credentials={"access_token": "t"}, label="work"
    )
    await ta.connected_accounts.disable(a2.id)

    def ids(accounts):
        return [a.id for a in accounts]

    assert ids(await ta.connected_accounts.list()) == [a3.id, a2.id, a1.id]
    assert ids(await ta.connected_accounts.list(user_id="u1")) == [a2.id, a1.id]
    assert ids(await ta.connected_accounts.list(user_id="u1", status="ACTIVE")) == [a1.id]
    assert ids(await ta.connected_accounts.list(toolkit="github")) == [a3.id, a2.id]
    assert ids(await ta.connected_accounts.list(status=["ACTIVE", "INACTIVE"], limit=2)) == [
        a3.id, a2.id,
    ]  # fmt: skip
    assert ids(await ta.connected_accounts.list(auth_config_id=openai.id)) == [a1.id]
    assert ids(await ta.connected_accounts.list(label="work")) == [a3.id]
    with pytest.raises(ValidationError, match="'ACTIVE'"):
        await ta.connected_accounts.list(status="DONE")


async def test_disable_enable_delete(ta):
    config = await ta.auth_configs.create("openai")
    account = await ta.connected_accounts.create("u", config.id, credentials={"api_key": KEY})
    disabled = await ta.connected_accounts.disable(account.id)
    assert disabled.status is ConnectionStatus.INACTIVE
    assert disabled.status_reason
    assert disabled.credentials == account.credentials  # kept
    enabled = await ta.connected_accounts.enable(account.id)
    assert enabled.status is ConnectionStatus.ACTIVE and enabled.status_reason is None
    await ta.connected_accounts.delete(account.id)
    with pytest.raises(NotFoundError):
        await ta.connected_accounts.get(account.id)
    with pytest.raises(NotFoundError):
        await ta.connected_accounts.delete(account.id)


async def test_account_without_credentials_cannot_be_enabled(ta):
    from toolauth._ids import new_id
    from toolauth._models import ConnectedAccount

    config = await ta.auth_configs.create("github")
    now = utcnow()
    pending = ConnectedAccount(
        id=new_id("ca"), user_id="u", toolkit="github", auth_config_id=config.id,
        status=ConnectionStatus.INITIATED, created_at=now, updated_at=now,
    )  # fmt: skip
    await (await ta.store()).create_account(pending)
    with pytest.raises(ConflictError, match="finish connecting"):
        await ta.connected_accounts.enable(pending.id)
