"""Configuration that explains itself: strings where lists are expected, the database that
moves with its home, the toolkits a session offers, and a link nobody serves."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import Connect
from toolauth import AsyncToolAuth, ConfigurationError, Settings


def test_callback_origins_take_a_list_or_a_comma_separated_string(tmp_path: Path) -> None:
    wanted = ("https://a.example", "https://b.example")
    for given in (
        "https://a.example, https://b.example/",
        ["https://a.example", "https://b.example"],
    ):
        ta = AsyncToolAuth(home=tmp_path, allowed_callback_origins=given)  # type: ignore[arg-type]
        assert ta.settings.allowed_callback_origins == wanted
    with pytest.raises(ConfigurationError, match="list of origins or a comma-separated string"):
        AsyncToolAuth(home=tmp_path, allowed_callback_origins=42)  # type: ignore[arg-type]


def test_the_default_database_moves_with_home(tmp_path: Path) -> None:
    moved = Settings.from_env({}).with_overrides(home=tmp_path / "elsewhere")
    assert moved.database_url == f"sqlite:///{tmp_path / 'elsewhere' / 'toolauth.db'}"
    chosen = Settings.from_env({"TOOLAUTH_DATABASE_URL": "sqlite:///fixed.db"})
    assert chosen.with_overrides(home=tmp_path).database_url == "sqlite:///fixed.db"
    assert AsyncToolAuth(home=tmp_path).settings.database_url.startswith(f"sqlite:///{tmp_path}")


async def test_a_string_of_toolkits_is_toolkits_not_letters(ta: AsyncToolAuth) -> None:
    assert ta.create("u1", toolkits="github").available_toolkits() == ["github"]
    assert ta.create("u1", toolkits="github, gmail").available_toolkits() == ["github", "gmail"]


async def test_a_session_offers_what_a_user_can_connect(tmp_path: Path) -> None:
    async with AsyncToolAuth(settings=Settings.from_env({"TOOLAUTH_HOME": str(tmp_path)})) as ta:
        offered = ta.create("u1").available_toolkits()
        # OAuth toolkits need an app: none in this environment (and never the demo's).
        assert "github" not in offered and "gmail" not in offered and "demo" not in offered
        assert "openai" in offered  # the user types a key: nothing for the app to set up
        await ta.auth_configs.create(
            "gmail", type="use_custom_auth", credentials={"client_id": "i", "client_secret": "s"}
        )
        assert "gmail" in ta.create("u1").available_toolkits()
    env = {
        "TOOLAUTH_HOME": str(tmp_path),
        "TOOLAUTH_GITHUB_CLIENT_ID": "id",
        "TOOLAUTH_GITHUB_CLIENT_SECRET": "secret",
    }
    async with AsyncToolAuth(settings=Settings.from_env(env)) as ta:
        offered = ta.create("u1").available_toolkits()
        assert "github" in offered and "gmail" in offered  # env app; a config in the store


async def test_a_link_nobody_serves_is_reported_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="toolauth.links")
    async with AsyncToolAuth(home=tmp_path) as ta:
        config = await ta.auth_configs.create("openai")
        await ta.connected_accounts.link("u1", config.id)
        await ta.connected_accounts.link("u2", config.id)
    warned = [r.getMessage() for r in caplog.records if r.name == "toolauth.links"]
    assert len(warned) == 1
    assert "no connect app of this client serves it" in warned[0]
    assert "toolauth serve" in warned[0] and "ta.asgi_app()" in warned[0]


async def test_a_served_link_is_not_reported(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="toolauth.links")
    config = await connect.ta.auth_configs.create("demo")
    await connect.ta.connected_accounts.link("u1", config.id)
    assert [r for r in caplog.records if r.name == "toolauth.links"] == []
