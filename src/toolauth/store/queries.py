"""Every SQL statement of the store, written once and built for each dialect.

Statements are written with named values (``:id``); a :class:`Dialect` turns them into its
driver's placeholders (``?`` for sqlite3, ``$1`` for asyncpg) and says how the few things the
two databases spell differently are spelled. Explicit column lists, never ``SELECT *``: a newer
instance adding a column must not change what this one's statements return.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._models import AuthConfig, ConnectedAccount, ConnectionLink
from .base import AccountFilter
from .rows import COLUMNS, TABLES

__all__ = ["POSTGRES", "SQLITE", "TOOLKIT_COLUMNS", "Dialect", "Queries", "Statement"]

_NAME = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
_CLASSES: tuple[type[Any], ...] = (AuthConfig, ConnectedAccount, ConnectionLink)
_ACCOUNT_FILTERS = ("user_id", "toolkit", "auth_config_id", "label")
TOOLKIT_COLUMNS = ("slug", "source", "definition", "version", "created_at", "updated_at")


@dataclass(frozen=True)
class Statement:
    """SQL in a driver's placeholder style, and the names of the values it takes, in order."""

    sql: str
    names: tuple[str, ...]

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        return [values[name] for name in self.names]


@dataclass(frozen=True)
class Dialect:
    """How one database spells what the shared statements need."""

    name: str
    numbered: bool  # ``$1, $2`` (one number a name) rather than ``?`` (one a use)
    timestamp: str  # the column type of a point in time
    for_update: str  # what locks the rows a read-modify-write reads
    lease_now: str  # the clock refresh leases are judged by
    lease_until: str  # when a lease taken now ends
    lock_pending_key: str | None  # what serialises ``open_link`` per pending key, if needed
    any_array: bool  # ``= ANY(array)`` rather than ``IN (...)``
    _cache: dict[str, Statement] = field(default_factory=dict, compare=False, repr=False)

    def compile(self, text: str) -> Statement:
        """``text`` with its ``:names`` turned into this dialect's placeholders."""
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        names: list[str] = []

        def placeholder(match: re.Match[str]) -> str:
            name = match[1]
            if not self.numbered:
                names.append(name)
                return "?"
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        statement = Statement(_NAME.sub(placeholder, text), tuple(names))
        self._cache[text] = statement
        return statement

    def any_of(self, column: str, values: Sequence[str]) -> tuple[str, dict[str, Any]]:
        """A clause: ``column`` is one of ``values``; with the values it names."""
        if self.any_array:
            return f"{column} = ANY(:{column}_any::text[])", {f"{column}_any": list(values)}
        named = {f"{column}_{i}": value for i, value in enumerate(values)}
        return f"{column} IN ({', '.join(f':{name}' for name in named)})", named


SQLITE = Dialect(
    name="sqlite",
    numbered=False,
    timestamp="TEXT",
    for_update="",  # one writer at a time: BEGIN IMMEDIATE already holds the lock
    lease_now=":now",
    lease_until=":until",
    lock_pending_key=None,  # one writer at a time
    any_array=False,
)
POSTGRES = Dialect(
    name="postgres",
    numbered=True,
    timestamp="TIMESTAMPTZ",
    for_update=" FOR UPDATE",
    # The database clock decides, so instances with skewed clocks agree on expiry.
    lease_now="now()",
    lease_until="now() + make_interval(secs => :seconds)",
    # Opens of one pending_key take turns, so a racing open finds the winner's link (as with
    # SQLite's single writer) instead of failing on the unique index.
    lock_pending_key="SELECT pg_advisory_xact_lock(hashtextextended(:lock, 0))",
    any_array=True,
)


def _select(cls: type[Any]) -> str:
    return f"SELECT {', '.join(COLUMNS[cls])} FROM {TABLES[cls]}"


def _insert(cls: type[Any]) -> str:
    columns = COLUMNS[cls]
    values = ", ".join(f":{c}" for c in columns)
    return f"INSERT INTO {TABLES[cls]} ({', '.join(columns)}) VALUES ({values})"


def _update(cls: type[Any]) -> str:
    """Compare-and-swap: write every column if the row still has version ``:expected``."""
    assignments = [f"{c} = :{c}" for c in COLUMNS[cls] if c not in ("id", "created_at")]
    if cls is ConnectedAccount:  # a saved account is no longer being refreshed
        assignments += ["refresh_lease_until = NULL", "refresh_lease_owner = NULL"]
    return (
        f"UPDATE {TABLES[cls]} SET {', '.join(assignments)} WHERE id = :id AND version = :expected"
    )


class Queries:
    """The store's statements in one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        sql, lock = dialect.compile, dialect.for_update
        self.get = {cls: sql(f"{_select(cls)} WHERE id = :id") for cls in _CLASSES}
        self.get_locked = {cls: sql(f"{_select(cls)} WHERE id = :id{lock}") for cls in _CLASSES}
        self.insert = {cls: sql(_insert(cls)) for cls in _CLASSES}
        self.update = {cls: sql(_update(cls)) for cls in _CLASSES}
        # migrations and keys
        self.create_migrations = sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            f"name TEXT NOT NULL, applied_at {dialect.timestamp} NOT NULL)"
        )
        self.schema_version = sql("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        self.record_migration = sql(
            "INSERT INTO schema_migrations (version, name, applied_at) "
            "VALUES (:version, :name, :now)"
        )
        self.key_ids = sql("SELECT key_id FROM encryption_keys")
        self.add_key = sql(
            "INSERT INTO encryption_keys (key_id, created_at) VALUES (:key_id, :now) "
            "ON CONFLICT (key_id) DO NOTHING"
        )
        self.drop_other_keys = sql("DELETE FROM encryption_keys WHERE key_id <> :primary")
        self.other_keys = {
            cls: sql(f"{_select(cls)} WHERE key_id <> :primary{lock}") for cls in _CLASSES
        }
        # A row's secret written again (another key, or associated data of a newer version);
        # a link read under its clear id (version 1) moves to the key of its id.
        self.rewrite = {
            cls: sql(
                f"UPDATE {TABLES[cls]} SET id = :id, key_id = :key_id, secret = :secret, "
                "aad_version = :aad_version WHERE id = :old_id"
            )
            for cls in _CLASSES
        }
        self.old_aad = {
            cls: sql(f"{_select(cls)} WHERE aad_version < :aad_version{lock}") for cls in _CLASSES
        }
        # auth configs
        self.lock_config = sql(f"SELECT 1 AS found FROM auth_configs WHERE id = :id{lock}")
        self.config_accounts = sql(
            "SELECT id FROM connected_accounts WHERE auth_config_id = :id ORDER BY created_at, id"
        )
        self.delete_config_links = sql("DELETE FROM connection_links WHERE auth_config_id = :id")
        self.delete_config_accounts = sql(
            "DELETE FROM connected_accounts WHERE auth_config_id = :id"
        )
        self.delete_config = sql("DELETE FROM auth_configs WHERE id = :id")
        # connected accounts
        self.delete_account_links = sql(
            "DELETE FROM connection_links WHERE connected_account_id = :id"
        )
        self.delete_account = sql("DELETE FROM connected_accounts WHERE id = :id")
        self.take_lease = sql(
            f"UPDATE connected_accounts SET refresh_lease_until = {dialect.lease_until}, "
            "refresh_lease_owner = :owner WHERE id = :id AND (refresh_lease_until IS NULL "
            f"OR refresh_lease_until < {dialect.lease_now} OR refresh_lease_owner = :owner)"
        )
        self.release_lease = sql(
            "UPDATE connected_accounts SET refresh_lease_until = NULL, refresh_lease_owner = NULL "
            "WHERE id = :id AND refresh_lease_owner = :owner"
        )
        # connect links
        pending = "pending_key = :key AND status = :pending"
        self.lock_pending_key = sql(dialect.lock_pending_key) if dialect.lock_pending_key else None
        self.expiring_links = sql(
            f"SELECT connected_account_id FROM connection_links WHERE {pending} "
            "AND expires_at <= :now"
        )
        self.expire_links = sql(
            "UPDATE connection_links SET status = :expired, updated_at = :now, "
            f"version = version + 1 WHERE {pending} AND expires_at <= :now"
        )
        self.pending_link = sql(f"{_select(ConnectionLink)} WHERE {pending}")
        self.link_by_state = sql(f"{_select(ConnectionLink)} WHERE state_hash = :state_hash")
        self.link_by_confirm = sql(f"{_select(ConnectionLink)} WHERE confirm_hash = :confirm_hash")
        self.unconfirmed_links = sql(
            f"{_select(ConnectionLink)} WHERE status = :status AND expires_at <= :now "
            "ORDER BY expires_at, id"
        )
        self.latest_link = sql(
            f"{_select(ConnectionLink)} WHERE connected_account_id = :id "
            "ORDER BY created_at DESC, id LIMIT 1"
        )

        # toolkit definitions
        toolkit = f"SELECT {', '.join(TOOLKIT_COLUMNS)} FROM toolkits"
        self.list_toolkits = sql(f"{toolkit} ORDER BY slug")
        self.get_toolkit = sql(f"{toolkit} WHERE slug = :slug")
        self.get_toolkit_locked = sql(f"{toolkit} WHERE slug = :slug{lock}")
        self.insert_toolkit = sql(
            f"INSERT INTO toolkits ({', '.join(TOOLKIT_COLUMNS)}) "
            f"VALUES ({', '.join(f':{c}' for c in TOOLKIT_COLUMNS)})"
        )
        self.update_toolkit = sql(
            "UPDATE toolkits SET source = :source, definition = :definition, "
            "version = :version, updated_at = :updated_at "
            "WHERE slug = :slug AND version = :expected"
        )
        self.delete_toolkit = sql("DELETE FROM toolkits WHERE slug = :slug")
        self.toolkit_configs = sql(
            "SELECT id FROM auth_configs WHERE toolkit = :slug ORDER BY created_at, id"
        )

    def list_auth_configs(
        self, toolkit: str | None, enabled: bool | None
    ) -> tuple[Statement, dict[str, Any]]:
        values = {
            name: value
            for name, value in (("toolkit", toolkit), ("enabled", enabled))
            if value is not None
        }
        where = " AND ".join(f"{name} = :{name}" for name in values)
        text = f"{_select(AuthConfig)}{f' WHERE {where}' if where else ''} ORDER BY created_at, id"
        return self.dialect.compile(text), values

    def list_accounts(self, where: AccountFilter) -> tuple[Statement, dict[str, Any]]:
        values: dict[str, Any] = {
            name: getattr(where, name)
            for name in _ACCOUNT_FILTERS
            if getattr(where, name) is not None
        }
        clauses = [f"{name} = :{name}" for name in values]
        if where.statuses:
            clause, named = self.dialect.any_of("status", [str(s) for s in where.statuses])
            clauses.append(clause)
            values.update(named)
        text = _select(ConnectedAccount)
        if clauses:
            text += f" WHERE {' AND '.join(clauses)}"
        text += " ORDER BY created_at DESC, id"
        if where.limit is not None:
            text += " LIMIT :limit"
            values["limit"] = where.limit
        return self.dialect.compile(text), values
