"""The sync client drives the async core: same results, same errors."""

import pytest

from toolauth import AsyncToolAuth, NotFoundError, ToolAuth, ValidationError

KEY = "sk-" + "y" * 40


def test_sync_and_async_parity(settings):
    with ToolAuth(settings=settings) as ta:
        config = ta.auth_configs.create("openai", name="Sync config")
        account = ta.connected_accounts.create("u", config.id, credentials={"api_key": KEY})
        assert ta.auth_configs.get(config.id) == config
        assert ta.connected_accounts.list(user_id="u") == [account]
        assert [t.slug for t in ta.toolkits.list()] == ta.catalog.slugs()
        assert ta.connected_accounts.disable(account.id).status == "INACTIVE"
        with pytest.raises(NotFoundError):
            ta.auth_configs.get("ac_missing")
        with pytest.raises(ValidationError):
            ta.auth_configs.create("openai", type="bogus")
        assert "ToolAuth(" in repr(ta)

    import anyio

    async def read_async():
        async with AsyncToolAuth(settings=settings) as client:
            return await client.auth_configs.get(config.id), await client.connected_accounts.list()

    got_config, accounts = anyio.run(read_async)
    assert got_config == config
    assert [a.id for a in accounts] == [account.id]


def test_closed_client_says_so(settings):
    ta = ToolAuth(settings=settings)
    ta.close()
    with pytest.raises(RuntimeError, match="closed"):
        ta.auth_configs.list()
    ta.close()  # twice is fine
