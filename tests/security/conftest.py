"""Fixtures and helpers of the security suite: a scripted browser that can stop before the
connect app's callback, an "attacker" that talks to the demo provider directly, and row
snapshots read from the SQLite file by another connection."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from tests.conftest import Connect
from tests.flows.support import APP_CALLBACK, query_of
from tests.helpers import Browser
from toolauth import AsyncToolAuth
from toolauth.store.sqlite import sqlite_path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A user's browser: follows every hop, stopping only at the app's own callback."""
    client = Browser(stop_at=APP_CALLBACK)
    yield client
    await client.aclose()


@pytest.fixture
async def paused(connect: Connect) -> AsyncIterator[Browser]:
    """A browser that stops before the connect app's OAuth callback too, so the provider's
    redirect can be inspected, tampered with or delivered later."""
    client = Browser(stop_at=(connect.base_url + "/oauth/callback", APP_CALLBACK))  # type: ignore[arg-type]
    yield client
    await client.aclose()


def row(ta: AsyncToolAuth, table: str, id: str) -> tuple[Any, ...] | None:
    """One row exactly as stored (every column, ciphertext included), read by another
    connection: any write at all changes it."""
    with closing(
        sqlite3.connect(f"file:{sqlite_path(ta.settings.database_url)}?mode=ro", uri=True)
    ) as db:
        return db.execute(f"SELECT * FROM {table} WHERE id = ?", (id,)).fetchone()


def issued_tokens(connect: Connect) -> set[str]:
    """Every access and refresh token the demo provider has issued and not revoked."""
    provider = connect.provider
    with provider._lock:
        return set(provider._access_tokens) | set(provider._refresh_tokens)


async def attacker_code(
    connect: Connect,
    *,
    redirect_uri: str,
    state: str = "attacker-state",
    code_challenge: str | None = None,
    username: str = "bob",
) -> str:
    """An authorization code the attacker obtains for themselves at the provider (auto
    consent as ``username``), with the redirect URI and PKCE challenge they choose."""
    config = connect.provider.config
    before = (config.auto_consent, config.auto_consent_user)
    config.auto_consent, config.auto_consent_user = True, username
    params = {
        "response_type": "code", "client_id": "toolauth-tests", "redirect_uri": redirect_uri,
        "state": state, "scope": "profile",
    }  # fmt: skip
    if code_challenge is not None:
        params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
    try:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{connect.provider_url}/oauth/authorize", params=params)
    finally:
        config.auto_consent, config.auto_consent_user = before
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(redirect_uri), location
    return query_of(location)["code"]
