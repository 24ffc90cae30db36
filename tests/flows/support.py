"""Helpers shared by the end-to-end connect-link tests: the app's callback, store snapshots
read from the database by another connection (the raw SQLite file, or the PostgreSQL schema),
and toolkit definitions registered for the key schemes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, read_rows
from tests.helpers import Browser, Landing
from toolauth import AsyncToolAuth
from toolauth.store.sqlite import sqlite_path

__all__ = [
    "APP_CALLBACK",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "basic_toolkit",
    "bearer_toolkit",
    "db_bytes",
    "demo_variant",
    "query_of",
    "snapshot",
    "to_callback",
]

# Where the app wants users back. Loopback origins are allowed by default; the scripted
# browser stops there instead of fetching it.
APP_CALLBACK = "http://localhost:5999/app/connected"


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _is_sqlite(ta: AsyncToolAuth) -> bool:
    return urlsplit(ta.settings.database_url).scheme.startswith("sqlite")


def snapshot(ta: AsyncToolAuth) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Every account and link row as (status, version, ...), read from the database by
    another connection: any write at all shows up as a changed version."""
    url = ta.settings.database_url
    found: dict[tuple[str, str], tuple[Any, ...]] = {}
    for row in read_rows(url, "SELECT id, status, version, key_id, secret FROM connected_accounts"):
        found[("account", row[0])] = (*row[1:4], bytes(row[4]))
    for row in read_rows(
        url, "SELECT id, status, version, state_hash, secret FROM connection_links"
    ):
        found[("link", row[0])] = (*row[1:4], bytes(row[4]))
    return found


def db_bytes(ta: AsyncToolAuth) -> bytes:
    """Where a plaintext secret would show: on SQLite the raw bytes of the database file and
    its WAL; on PostgreSQL every value of every table in the store's schema as stored (text as
    UTF-8, ``bytea`` as its raw bytes, JSON as its text)."""
    if _is_sqlite(ta):
        path = sqlite_path(ta.settings.database_url)
        return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
    url = ta.settings.database_url
    tables = read_rows(
        url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    assert len(tables) >= 4, tables
    chunks = []
    for (table,) in tables:
        for row in read_rows(url, f'SELECT * FROM "{table}"'):
            for value in row:
                if isinstance(value, (bytes, bytearray, memoryview)):
                    chunks.append(bytes(value))
                elif value is not None:
                    chunks.append(str(value).encode())
    return b"\n".join(chunks)


async def demo_variant(ta: AsyncToolAuth, *, slug: str = "demo", **oauth: Any) -> None:
    """Register a copy of the demo toolkit with some OAUTH2 fields changed."""
    data = ta.toolkits.get("demo").model_dump(mode="json", by_alias=True, exclude_none=True)
    data["slug"] = slug
    data["auth_schemes"]["OAUTH2"].update(oauth)
    await ta.toolkits.register(data, replace=True, override=slug == "demo")


def bearer_toolkit(*, name: str = "Demo Bearer") -> dict[str, Any]:
    return {
        "slug": "demo_bearer",
        "name": name,
        "description": "The demo provider's API with a bearer token.",
        "api_base_url": "{demo_provider_url}/api",
        "auth_schemes": {
            "BEARER_TOKEN": {
                "fields": [
                    {
                        "name": "token",
                        "label": "Access token",
                        "help": "A token the demo provider issued.",
                        "secret": True,
                        "pattern": "^[A-Za-z0-9_-]{20,}$",
                    }
                ],
                "placements": [
                    {"in": "header", "name": "Authorization", "format": "Bearer {token}"}
                ],
                "test_request": {"method": "GET", "path": "/me"},
            }
        },
    }


def basic_toolkit() -> dict[str, Any]:
    return {
        "slug": "demo_basic",
        "name": "Demo Basic",
        "description": "The demo provider's API with a username and password.",
        "api_base_url": "{demo_provider_url}/api",
        "auth_schemes": {
            "BASIC": {
                "fields": [
                    {"name": "username", "label": "Username", "secret": False},
                    {"name": "password", "label": "Password", "secret": True},
                ],
                "placements": [{"in": "basic", "username": "{username}", "password": "{password}"}],
                "test_request": {"method": "GET", "path": "/me"},
            }
        },
    }


async def to_callback(browser: Browser, link_url: str, **consent: str) -> Landing:
    """Walk a link through the provider's login and consent, stopping before our callback
    (the browser must have ``stop_at`` set to the connect app's callback URL)."""
    landing = await browser.oauth_consent(link_url, **consent)
    assert "/oauth/callback?" in landing.url, (landing.url, landing.response.text[:500])
    return landing
