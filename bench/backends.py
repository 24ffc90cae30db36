"""The store a benchmark runs on: SQLite in its temporary home (the default), or PostgreSQL in a
fresh schema of a scratch database, dropped when the benchmark ends.

    --backend sqlite|postgres     which store (default sqlite)
    --database-url URL            the PostgreSQL database for the temporary schema (default
                                  $TOOLAUTH_BENCH_DATABASE_URL or
                                  postgresql://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from toolauth._crypto import generate_key

DEFAULT_POSTGRES_URL = os.environ.get(
    "TOOLAUTH_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_POSTGRES_URL,
        help="PostgreSQL database for the temporary schema (--backend postgres)",
    )


def with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query["schema"] = schema
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextlib.asynccontextmanager
async def postgres_schema(database_url: str, prefix: str = "toolauth_bench") -> AsyncIterator[str]:
    """A new, empty schema in ``database_url``; yields the store URL for it; drops it after."""
    import asyncpg  # type: ignore[import-untyped]

    schema = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(database_url, timeout=10)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield with_schema(database_url, schema)
    finally:
        try:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def store_env(backend: str, database_url: str) -> AsyncIterator[dict[str, str]]:
    """TOOLAUTH_* variables selecting the store: none for SQLite (the file and key file in
    TOOLAUTH_HOME); for PostgreSQL the URL of a temporary schema and a new key, which every
    process of the benchmark must share."""
    if backend == "sqlite":
        yield {}
        return
    async with postgres_schema(database_url) as url:
        yield {"TOOLAUTH_DATABASE_URL": url, "TOOLAUTH_ENCRYPTION_KEY": generate_key()}


CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-client-secret"  # a throwaway secret of the local demo


def environ(home: Path, provider_url: str) -> dict[str, str]:
    return {
        "TOOLAUTH_HOME": str(home),
        "TOOLAUTH_DEMO_PROVIDER_URL": provider_url,
        "TOOLAUTH_DEMO_CLIENT_ID": CLIENT_ID,
        "TOOLAUTH_DEMO_CLIENT_SECRET": CLIENT_SECRET,
    }
