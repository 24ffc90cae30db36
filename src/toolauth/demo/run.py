"""``toolauth demo``: a short offline tour of the library on a throw-away database."""

from __future__ import annotations

import tempfile

from .._client import AsyncToolAuth
from .._settings import Settings


async def run_demo(settings: Settings) -> str:
    """Create an auth config and an account in a temporary home, and show what is stored."""
    with tempfile.TemporaryDirectory(prefix="toolauth-demo-") as home:
        async with AsyncToolAuth(
            settings=settings.with_overrides(
                home=home, database_url=f"sqlite:///{home}/toolauth.db"
            )
        ) as ta:
            lines = [f"toolauth demo — a throw-away database in {home}", "", "Toolkits:"]
            for toolkit in ta.toolkits.list():
                schemes = ", ".join(s.value for s in toolkit.auth_schemes)
                lines.append(f"  {toolkit.slug:16} {toolkit.name:18} {schemes}")
            config = await ta.auth_configs.create(
                "github",
                type="use_custom_auth",
                name="My GitHub App",
                credentials={"client_id": "Iv1.demo", "client_secret": "demo-client-secret"},
                scopes=["repo", "read:user"],
            )
            key_config = await ta.auth_configs.create("demo", auth_scheme="API_KEY")
            account = await ta.connected_accounts.create(
                "user_123", key_config.id, credentials={"api_key": "demo_0123456789abcdef"}
            )
            lines += [
                "",
                f"Created auth config {config.id} ({config.name}, scopes {list(config.scopes)})",
                f"Connected account {account.id} for user_123: {account.status.value}",
                f"repr never shows a secret: {account!r}"[:160] + "…",
                "",
                "Run `make test` for the test suite.",
            ]
    return "\n".join(lines)
