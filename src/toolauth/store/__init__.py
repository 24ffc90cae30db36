"""Stores: where auth configs and connected accounts live, encrypted at rest.

``open_store(url, keyring)`` picks the backend from the URL scheme and imports its driver only
then (``sqlite:///`` → aiosqlite, ``postgresql://`` → asyncpg).
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit

from .._crypto import Keyring
from .._exceptions import ConfigurationError
from .._settings import display_url
from .base import AccountFilter, Store, ToolkitRow
from .changes import ANY, ChangeHub, Subscription

__all__ = [
    "ANY",
    "AccountFilter",
    "ChangeHub",
    "Store",
    "Subscription",
    "ToolkitRow",
    "display_url",
    "open_store",
    "store_class",
]

BACKENDS = {
    "sqlite": "toolauth.store.sqlite:SQLiteStore",
    "sqlite3": "toolauth.store.sqlite:SQLiteStore",
    "postgres": "toolauth.store.postgres:PostgresStore",
    "postgresql": "toolauth.store.postgres:PostgresStore",
}


def store_class(url: str) -> type[Store]:
    scheme = urlsplit(url).scheme.split("+")[0]
    target = BACKENDS.get(scheme)
    if target is None:
        raise ConfigurationError(
            f"Unsupported database URL scheme {scheme!r}; use sqlite:///path.db or "
            "postgresql://user@host/db."
        )
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"The {scheme} store needs an extra: pip install 'toolauth[postgres]' ({exc})."
        ) from exc
    cls: type[Store] = getattr(module, attr)
    return cls


async def open_store(url: str, keyring: Keyring, **options: Any) -> Store:
    """An open store for ``url`` with its migrations applied; ``options`` go to the backend's
    constructor (e.g. ``busy_timeout`` for SQLite, ``listen_check`` for PostgreSQL)."""
    backend: Any = store_class(url)  # each backend takes (url, keyring, **options)
    store: Store = backend(url, keyring, **options)
    await store.open()
    return store
