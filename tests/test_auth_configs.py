import pytest

from toolauth import (
    AuthConfigType,
    AuthScheme,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    ValidationError,
)

GITHUB_APP = {"client_id": "Iv1.custom", "client_secret": "custom-secret-SENTINEL"}


async def test_create_custom_oauth_config(ta):
    config = await ta.auth_configs.create(
        "github", type="use_custom_auth", name="My GitHub App", auth_scheme="OAUTH2",
        credentials=GITHUB_APP, scopes=["repo"],
    )  # fmt: skip
    assert config.id.startswith("ac_")
    assert config.type is AuthConfigType.CUSTOM
    assert config.auth_scheme is AuthScheme.OAUTH2
    assert config.scopes == ("repo",)
    assert config.enabled
    assert "SENTINEL" not in repr(config) + config.model_dump_json()
    fetched = await ta.auth_configs.get(config.id)
    assert fetched == config
    assert fetched.credentials["client_secret"].get_secret_value() == "custom-secret-SENTINEL"


async def test_managed_config_uses_catalog_scopes_and_settings(ta):
    config = await ta.auth_configs.create("github")
    assert config.type is AuthConfigType.MANAGED
    assert config.scopes == ta.toolkits.get("github").oauth2().default_scopes
    assert config.credentials == {}


async def test_managed_config_without_settings_names_the_variables(ta):
    with pytest.raises(ConfigurationError) as info:
        await ta.auth_configs.create("slack", type="use_managed_auth")
    assert "TOOLAUTH_SLACK_CLIENT_ID" in str(info.value)
    assert "TOOLAUTH_SLACK_CLIENT_SECRET" in str(info.value)
    assert await ta.auth_configs.list() == []


async def test_api_key_toolkit_managed_needs_no_app(ta):
    config = await ta.auth_configs.create("openai")
    assert config.auth_scheme is AuthScheme.API_KEY


@pytest.mark.parametrize(
    ("kwargs", "field", "names"),
    [
        ({"type": "use_custom_auth"}, "credentials", ["client_id", "client_secret"]),
        ({"type": "use_custom_auth", "credentials": {"client_id": "x"}}, "credentials",
         ["client_secret"]),
        ({"type": "use_custom_auth", "credentials": {**GITHUB_APP, "pw": "x"}}, "credentials",
         ["pw"]),
        ({"type": "sometimes"}, "type", ["use_managed_auth", "use_custom_auth"]),
        ({"auth_scheme": "BASIC"}, "auth_scheme", ["OAUTH2", "BEARER_TOKEN"]),
        ({"scopes": "repo"}, "scopes", ["list"]),
        ({"scopes": ["has space"]}, "scopes", ["has space"]),
        ({"credentials": GITHUB_APP}, "credentials", ["use_custom_auth"]),
        ({"name": ""}, "name", ["non-empty"]),
    ],
)  # fmt: skip
async def test_bad_input_names_field_and_allowed_values(ta, kwargs, field, names):
    with pytest.raises(ValidationError) as info:
        await ta.auth_configs.create("github", **kwargs)
    assert info.value.field == field
    for name in names:
        assert name in str(info.value)
    assert await ta.auth_configs.list() == []


async def test_unknown_toolkit_lists_known_ones(ta):
    with pytest.raises(ConfigurationError, match="github"):
        await ta.auth_configs.create("myspace")


async def test_list_filters(ta):
    gh = await ta.auth_configs.create("github")
    oa = await ta.auth_configs.create("openai")
    assert [c.id for c in await ta.auth_configs.list()] == [gh.id, oa.id]
    assert [c.id for c in await ta.auth_configs.list(toolkit="openai")] == [oa.id]
    await ta.auth_configs.disable(gh.id)
    assert [c.id for c in await ta.auth_configs.list(enabled=True)] == [oa.id]
    assert [c.id for c in await ta.auth_configs.list(enabled=False)] == [gh.id]


async def test_update_applies_every_field(ta):
    config = await ta.auth_configs.create(
        "github", type="custom", credentials=GITHUB_APP, scopes=["repo"]
    )
    updated = await ta.auth_configs.update(
        config.id, name="Renamed", scopes=["repo", "read:org"], enabled=False,
        credentials={"client_secret": "rotated-secret"},
    )  # fmt: skip
    again = await ta.auth_configs.get(config.id)
    assert again == updated
    assert (again.name, again.scopes, again.enabled) == ("Renamed", ("repo", "read:org"), False)
    assert again.credentials["client_id"].get_secret_value() == "Iv1.custom"  # merged, not dropped
    assert again.credentials["client_secret"].get_secret_value() == "rotated-secret"
    assert again.updated_at > config.updated_at
    assert again.created_at == config.created_at


async def test_update_with_bad_value_changes_nothing(ta):
    config = await ta.auth_configs.create("github", scopes=["repo"])
    with pytest.raises(ValidationError):
        await ta.auth_configs.update(config.id, name="ok", scopes=["bad scope"])
    assert await ta.auth_configs.get(config.id) == config


async def test_update_rejects_fields_that_do_not_apply(ta):
    config = await ta.auth_configs.create("openai")
    with pytest.raises(ValidationError, match="OAuth configs only"):
        await ta.auth_configs.update(config.id, scopes=["x"])
    managed = await ta.auth_configs.create("github")
    with pytest.raises(ValidationError, match="credentials"):
        await ta.auth_configs.update(managed.id, credentials={"client_secret": "x"})
    with pytest.raises(TypeError):
        await ta.auth_configs.update(config.id, toolkit="slack")


async def test_concurrent_updates_both_apply(ta):
    import anyio

    config = await ta.auth_configs.create("github", scopes=["repo"])
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: ta.auth_configs.update(config.id, name="A name"))
        tg.start_soon(lambda: ta.auth_configs.update(config.id, scopes=["user"]))
    final = await ta.auth_configs.get(config.id)
    assert (final.name, final.scopes) == ("A name", ("user",))


async def test_disable_stops_new_connections_but_keeps_accounts(ta):
    config = await ta.auth_configs.create("openai")
    account = await ta.connected_accounts.create(
        "u1", config.id, credentials={"api_key": "sk-" + "a" * 30}
    )
    await ta.auth_configs.disable(config.id)
    with pytest.raises(ConflictError, match="disabled"):
        await ta.connected_accounts.create(
            "u2", config.id, credentials={"api_key": "sk-" + "b" * 30}
        )
    assert (await ta.connected_accounts.get(account.id)).is_active
    await ta.auth_configs.enable(config.id)
    await ta.connected_accounts.create("u2", config.id, credentials={"api_key": "sk-" + "b" * 30})


async def test_delete_with_accounts_needs_force(ta):
    config = await ta.auth_configs.create("openai")
    account = await ta.connected_accounts.create(
        "u1", config.id, credentials={"api_key": "sk-" + "a" * 30}
    )
    with pytest.raises(ConflictError, match="force=True"):
        await ta.auth_configs.delete(config.id)
    assert await ta.auth_configs.get(config.id) == config
    await ta.auth_configs.delete(config.id, force=True)
    with pytest.raises(NotFoundError):
        await ta.auth_configs.get(config.id)
    with pytest.raises(NotFoundError):
        await ta.connected_accounts.get(account.id)


async def test_delete_unknown(ta):
    with pytest.raises(NotFoundError, match="ac_nope"):
        await ta.auth_configs.delete("ac_nope")
    with pytest.raises(NotFoundError):
        await ta.auth_configs.update("ac_nope", name="x")
