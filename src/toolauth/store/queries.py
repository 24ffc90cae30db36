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

__all__ = [
    "AUDIT_COLUMNS",
    "EVENT_COLUMNS",
    "POSTGRES",
    "SQLITE",
    "TOOLKIT_COLUMNS",
    "WEBHOOK_COLUMNS",
    "Dialect",
    "LifecycleQueries",
    "Queries",
    "Statement",
]

_NAME = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
_CLASSES: tuple[type[Any], ...] = (AuthConfig, ConnectedAccount, ConnectionLink)
_ACCOUNT_FILTERS = ("user_id", "toolkit", "auth_config_id", "label")
TOOLKIT_COLUMNS = (
    "slug", "source", "definition", "version", "key_id", "mac", "created_at", "updated_at",
)  # fmt: skip


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
    # what lets a claim of queued rows pass those another claim has locked ({table}: alias)
    skip_locked: str = ""
    # what makes events take numbers in commit order (a reader that has seen event N has seen
    # every event before it), if the database does not already
    lock_events: str | None = None
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
    skip_locked=" FOR UPDATE OF {table} SKIP LOCKED",
    # Held from the first event a transaction writes until it commits: sequence numbers are
    # taken in commit order, so readers following ``seq`` never step over one in flight.
    # per schema: deployments (and tests) sharing one database do not wait on each other
    lock_events=(
        "SELECT pg_advisory_xact_lock(hashtextextended("
        "'toolauth.events:' || COALESCE(current_schema(), ''), 0))"
    ),
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


EVENT_COLUMNS = (
    "seq", "id", "type", "created_at", "user_id", "toolkit", "auth_config_id",
    "connected_account_id", "webhook_id", "status", "reason",
)  # fmt: skip
AUDIT_COLUMNS = (
    "seq", "id", "created_at", "actor", "actor_id", "action", "outcome", "user_id", "toolkit",
    "auth_config_id", "connected_account_id", "detail",
)  # fmt: skip
WEBHOOK_COLUMNS = (
    "id", "url", "events", "description", "enabled", "disabled_reason", "failing_since",
    "key_id", "secret", "version", "created_at", "updated_at",
)  # fmt: skip
_DELIVERY_COLUMNS = (
    "id", "endpoint_id", "event_seq", "status", "attempts", "next_attempt_at", "last_error",
)  # fmt: skip


def _columns(columns: tuple[str, ...], skip: tuple[str, ...] = ()) -> tuple[str, str]:
    kept = [c for c in columns if c not in skip]
    return ", ".join(kept), ", ".join(f":{c}" for c in kept)


class LifecycleQueries:
    """Events, the webhook outbox, the audit log and the keeper's probe schedule."""

    def __init__(self, dialect: Dialect) -> None:
        sql, now, until = dialect.compile, dialect.lease_now, dialect.lease_until
        events = ", ".join(EVENT_COLUMNS)
        names, values = _columns(EVENT_COLUMNS, skip=("seq",))
        self.lock_events = sql(dialect.lock_events) if dialect.lock_events else None
        self.insert_event = sql(f"INSERT INTO events ({names}) VALUES ({values}) RETURNING seq")
        self.last_event = sql("SELECT COALESCE(MAX(seq), 0) AS seq FROM events")
        self.events_by_seq = sql(f"SELECT {events} FROM events WHERE seq = :seq")
        self.prune_events = sql("DELETE FROM events WHERE created_at < :before")
        names, values = _columns(AUDIT_COLUMNS, skip=("seq",))
        self.insert_audit = sql(f"INSERT INTO audit_log ({names}) VALUES ({values})")
        self.prune_audit = sql("DELETE FROM audit_log WHERE created_at < :before")
        # webhook endpoints
        hooks = ", ".join(WEBHOOK_COLUMNS)
        names, values = _columns(WEBHOOK_COLUMNS)
        self.insert_webhook = sql(f"INSERT INTO webhook_endpoints ({names}) VALUES ({values})")
        self.get_webhook = sql(f"SELECT {hooks} FROM webhook_endpoints WHERE id = :id")
        # NO KEY UPDATE: outbox rows referencing the endpoint may still be added meanwhile
        no_key = dialect.for_update.replace("UPDATE", "NO KEY UPDATE")
        self.get_webhook_locked = sql(
            f"SELECT {hooks} FROM webhook_endpoints WHERE id = :id{no_key}"
        )
        self.list_webhooks = sql(f"SELECT {hooks} FROM webhook_endpoints ORDER BY created_at, id")
        self.enabled_webhooks = sql("SELECT id, events FROM webhook_endpoints WHERE enabled")
        assignments = ", ".join(
            f"{c} = :{c}" for c in WEBHOOK_COLUMNS if c not in ("id", "created_at")
        )
        self.update_webhook = sql(
            f"UPDATE webhook_endpoints SET {assignments} WHERE id = :id AND version = :expected"
        )
        self.delete_webhook = sql("DELETE FROM webhook_endpoints WHERE id = :id")
        self.other_key_webhooks = sql(
            f"SELECT {hooks} FROM webhook_endpoints WHERE key_id <> :primary{dialect.for_update}"
        )
        self.reencrypt_webhook = sql(
            "UPDATE webhook_endpoints SET key_id = :key_id, secret = :secret WHERE id = :id"
        )
        # the outbox
        names, values = _columns(
            ("id", "endpoint_id", "event_seq", "status", "next_attempt_at", "created_at",
             "updated_at")
        )  # fmt: skip
        self.insert_delivery = sql(f"INSERT INTO webhook_deliveries ({names}) VALUES ({values})")
        free = f"(lease_until IS NULL OR lease_until < {now})"
        due = f"status = 'PENDING' AND next_attempt_at <= {now} AND {free}"
        pick = (
            "SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e "
            f"ON e.id = d.endpoint_id WHERE e.enabled AND d.status = 'PENDING' "
            f"AND d.next_attempt_at <= {now} AND (d.lease_until IS NULL OR d.lease_until < {now}) "
            f"ORDER BY d.event_seq, d.id LIMIT :limit{dialect.skip_locked.format(table='d')}"
        )
        # The outer condition is checked again on each row once its lock is ours (PostgreSQL
        # re-reads a row another claim just updated), so two claims never take one delivery.
        self.claim_deliveries = sql(
            f"UPDATE webhook_deliveries SET lease_owner = :owner, lease_until = {until}, "
            f"attempts = attempts + 1 WHERE id IN ({pick}) AND {due} "
            f"RETURNING {', '.join(_DELIVERY_COLUMNS)}"
        )
        self.delivered = sql(
            "UPDATE webhook_deliveries SET status = 'DELIVERED', lease_owner = NULL, "
            "lease_until = NULL, last_error = NULL, updated_at = :now "
            "WHERE id = :id AND lease_owner = :owner"
        )
        self.retry_delivery = sql(
            "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL, "
            "next_attempt_at = :retry_at, last_error = :error, updated_at = :now "
            "WHERE id = :id AND lease_owner = :owner"
        )
        self.deliveries_of = sql(
            f"SELECT {', '.join(_DELIVERY_COLUMNS)} FROM webhook_deliveries "
            "WHERE endpoint_id = :endpoint_id ORDER BY event_seq, id"
        )
        # the keeper
        self.due_refreshes = sql(
            "SELECT id FROM connected_accounts WHERE status = 'ACTIVE' AND expires_at IS NOT NULL "
            "AND expires_at <= :before AND (refresh_lease_until IS NULL OR "
            f"refresh_lease_until < {now}) ORDER BY expires_at LIMIT :limit"
        )
        self.schedule_probes = sql(
            "INSERT INTO keeper_probes (connected_account_id) SELECT id FROM connected_accounts "
            "WHERE status = 'ACTIVE' ON CONFLICT (connected_account_id) DO NOTHING"
        )
        probe_due = f"(probed_at IS NULL OR probed_at < :due) AND {free}"
        pick = (
            "SELECT p.connected_account_id FROM keeper_probes p JOIN connected_accounts a "
            "ON a.id = p.connected_account_id WHERE a.status = 'ACTIVE' "
            "AND (p.probed_at IS NULL OR p.probed_at < :due) "
            f"AND (p.lease_until IS NULL OR p.lease_until < {now}) "
            f"ORDER BY p.probed_at NULLS FIRST LIMIT :limit{dialect.skip_locked.format(table='p')}"
        )
        self.claim_probes = sql(
            f"UPDATE keeper_probes SET lease_owner = :owner, lease_until = {until} "
            f"WHERE connected_account_id IN ({pick}) AND {probe_due} "
            "RETURNING connected_account_id"
        )
        self.probed = sql(
            "UPDATE keeper_probes SET probed_at = :now, lease_owner = NULL, lease_until = NULL "
            "WHERE connected_account_id = :id AND lease_owner = :owner"
        )

    def list_events(
        self,
        dialect: Dialect,
        *,
        after: int,
        types: tuple[str, ...] | None,
        user_id: str | None,
        limit: int,
    ) -> tuple[Statement, dict[str, Any]]:
        """Events after sequence ``after``, oldest first, of ``types`` and ``user_id`` when
        given."""
        values: dict[str, Any] = {"after": after, "limit": limit}
        where = "seq > :after"
        if types:
            clause, named = dialect.any_of("type", list(types))
            where += f" AND {clause}"
            values.update(named)
        if user_id is not None:
            where += " AND user_id = :user_id"
            values["user_id"] = user_id
        columns = ", ".join(EVENT_COLUMNS)
        text = f"SELECT {columns} FROM events WHERE {where} ORDER BY seq LIMIT :limit"
        return dialect.compile(text), values

    def list_audit(
        self, dialect: Dialect, *, user_id: str | None, since: Any, limit: int
    ) -> tuple[Statement, dict[str, Any]]:
        values: dict[str, Any] = {"limit": limit}
        clauses = []
        if user_id is not None:
            clauses.append("user_id = :user_id")
            values["user_id"] = user_id
        if since is not None:
            clauses.append("created_at >= :since")
            values["since"] = since
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        text = f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log{where} ORDER BY seq LIMIT :limit"
        return dialect.compile(text), values


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
        self.config_account_rows = sql(
            f"{_select(ConnectedAccount)} WHERE auth_config_id = :id ORDER BY created_at, id"
        )
        self.life = LifecycleQueries(dialect)

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
            "version = :version, key_id = :key_id, mac = :mac, updated_at = :updated_at "
            "WHERE slug = :slug AND version = :expected"
        )
        self.other_key_toolkits = sql(f"{toolkit} WHERE key_id <> :primary{lock}")
        self.remac_toolkit = sql(
            "UPDATE toolkits SET key_id = :key_id, mac = :mac "
            "WHERE slug = :slug AND version = :version"
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
