"""Where keys come from, what happens with a wrong one, and rotation."""

import stat

import pytest

from tests.conftest import make_settings
from toolauth import AsyncToolAuth, ConfigurationError, generate_key
from toolauth.cli import main as cli

KEY = "sk-" + "R" * 40


async def _seed(settings):
    async with AsyncToolAuth(settings=settings) as ta:
        config = await ta.auth_configs.create(
            "github", type="custom", credentials={"client_id": "c", "client_secret": "s"}
        )
        key_config = await ta.auth_configs.create("openai")
        account = await ta.connected_accounts.create(
            "u", key_config.id, credentials={"api_key": KEY}
        )
    return config, account


async def _read_all(settings, config_id, account_id):
    async with AsyncToolAuth(settings=settings) as ta:
        config = await ta.auth_configs.get(config_id)
        account = await ta.connected_accounts.get(account_id)
    assert config.credentials["client_secret"].get_secret_value() == "s"
    assert account.credentials["api_key"].get_secret_value() == KEY


async def test_key_file_is_created_once_with_mode_0600(home):
    settings = make_settings(home)
    config, account = await _seed(settings)
    key_file = home / "encryption.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    before = key_file.read_text()
    await _read_all(settings, config.id, account.id)
    assert key_file.read_text() == before


async def test_missing_key_file_is_a_clear_error_not_garbage(home):
    settings = make_settings(home)
    await _seed(settings)
    (home / "encryption.key").unlink()
    with pytest.raises(ConfigurationError) as info:
        await AsyncToolAuth(settings=settings).open()
    message = str(info.value)
    assert "encryption.key" in message and "TOOLAUTH_ENCRYPTION_KEY" in message


async def test_wrong_env_key_is_a_clear_error(home):
    await _seed(make_settings(home, TOOLAUTH_ENCRYPTION_KEY=generate_key()))
    wrong = generate_key()
    with pytest.raises(ConfigurationError, match="not configured") as info:
        await AsyncToolAuth(settings=make_settings(home, TOOLAUTH_ENCRYPTION_KEY=wrong)).open()
    assert wrong not in str(info.value)


async def test_malformed_env_key_names_the_fix(home):
    with pytest.raises(ConfigurationError, match="toolauth keys generate"):
        await AsyncToolAuth(settings=make_settings(home, TOOLAUTH_ENCRYPTION_KEY="abc")).open()


async def test_a_shared_database_needs_an_explicit_key(home):
    from toolauth._keys import load_keyring

    settings = make_settings(home, TOOLAUTH_DATABASE_URL="postgresql://127.0.0.1/test")
    with pytest.raises(ConfigurationError, match="TOOLAUTH_ENCRYPTION_KEY"):
        await load_keyring(settings)
    assert not (home / "encryption.key").exists()


async def test_env_key_rotation(home, monkeypatch, capsys):
    old, new = generate_key(), generate_key()
    config, account = await _seed(make_settings(home, TOOLAUTH_ENCRYPTION_KEY=old))
    monkeypatch.setenv("TOOLAUTH_HOME", str(home))
    monkeypatch.setenv("TOOLAUTH_ENCRYPTION_KEY", f"{new},{old}")
    assert await _run_cli(["keys", "rotate"]) == 0
    assert "Re-encrypted 3 row(s)" in capsys.readouterr().out
    # the old key is no longer needed; the new one alone reads everything
    await _read_all(make_settings(home, TOOLAUTH_ENCRYPTION_KEY=new), config.id, account.id)
    with pytest.raises(ConfigurationError):
        await AsyncToolAuth(settings=make_settings(home, TOOLAUTH_ENCRYPTION_KEY=old)).open()


async def test_key_file_rotation(home, monkeypatch, capsys):
    settings = make_settings(home)
    config, account = await _seed(settings)
    before = (home / "encryption.key").read_text()
    monkeypatch.setenv("TOOLAUTH_HOME", str(home))
    monkeypatch.delenv("TOOLAUTH_ENCRYPTION_KEY", raising=False)
    assert await _run_cli(["keys", "rotate"]) == 0
    after = (home / "encryption.key").read_text()
    assert after != before and len(after.split()) == 1
    assert stat.S_IMODE((home / "encryption.key").stat().st_mode) == 0o600
    await _read_all(settings, config.id, account.id)


async def _run_cli(argv):
    import anyio

    return await anyio.to_thread.run_sync(cli, argv)


def test_keys_generate_prints_a_usable_key(capsys):
    from toolauth import Keyring

    assert cli(["keys", "generate"]) == 0
    Keyring.from_text(capsys.readouterr().out.strip())
