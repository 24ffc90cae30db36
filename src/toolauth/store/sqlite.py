"""The embedded store: one SQLite file through aiosqlite.

WAL journal (readers never block the writer), a busy timeout for writers in other processes,
``BEGIN IMMEDIATE`` for every write so a transaction never has to upgrade its lock half-way.
One connection per store, used by one coroutine at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosqlite
import anyio

from .._crypto import Keyring
from .._exceptions import (
    ConfigurationError,
    ConflictError,
    MigrationError,
    NotFoundError,
    StoreError,
)
from .._models import AuthConfig, ConnectedAccount, ConnectionLink, LinkStatus, utcnow
from .base import COLUMNS as _COLUMNS
from .base import KINDS, TABLES, AccountFilter, AnyModel, Model, Store, parse_timestamp
from .migrations import load_migrations, pending_migrations

__all__ = ["SQLiteStore", "sqlite_path"]

_TIMESTAMPS = ("created_at", "updated_at", "expires_at", "completed_at", "refresh_lease_until")


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("sqlite", "sqlite3") or not parts.path.startswith("/"):
        raise ConfigurationError(
            f"{url!r} is not a SQLite URL; use sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db."
        )
    path = unquote(parts.path[1:])
    if not path or path == ":memory:":
        raise ConfigurationError("toolauth needs a SQLite file, not an in-memory database.")
    return Path(path)


def _to_sql(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _from_sql(row: Mapping[str, Any] | aiosqlite.Row) -> dict[str, Any]:
    values = dict(row)
    for column in _TIMESTAMPS:
        if column in values:
            values[column] = parse_timestamp(values[column])
    if "enabled" in values:
        values["enabled"] = bool(values["enabled"])
    return values


class SQLiteStore(Store):
    """A ``Store`` in one SQLite file. Safe for several processes on one machine."""

    dialect = "sqlite"

    def __init__(self, url: str, keyring: Keyring, *, busy_timeout: float = 10.0) -> None:
        super().__init__(keyring)
        self.path = sqlite_path(url)
        self._busy_ms = int(busy_timeout * 1000)
        self._db: aiosqlite.Connection | None = None
        self._lock = anyio.Lock()
        self._watchers = 0
        self._watch_task: asyncio.Task[None] | None = None
        self.watch_interval = 0.01  # seconds between two reads of PRAGMA data_version

    @property
    def display_url(self) -> str:
        return f"sqlite:///{self.path}"

    def __repr__(self) -> str:
        return f"SQLiteStore({self.display_url!r})"

    # lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self._db is not None:
            return
        await anyio.to_thread.run_sync(lambda: self.path.parent.mkdir(parents=True, exist_ok=True))
        try:
            db = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot open the SQLite database {self.path}: {exc}") from exc
        db.row_factory = aiosqlite.Row
        try:
            await db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(f"Cannot use the SQLite database {self.path}: {exc}") from exc
        self._db = db
        try:
            await self.migrate()
            async with self._write() as tx:
                await tx.execute(
                    "INSERT OR IGNORE INTO encryption_keys (key_id, created_at) VALUES (?, ?)",
                    (self.keyring.primary_id, utcnow().isoformat()),
                )
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        task, self._watch_task = self._watch_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("The store is closed; open it first (async with AsyncToolAuth()).")
        return self._db

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error."""
        async with self._lock:
            db = self._conn
            try:
                await db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"The database {self.path} is busy or locked: {exc}") from exc
            try:
                yield db
            except sqlite3.IntegrityError as exc:
                await db.execute("ROLLBACK")
                # A uniqueness or reference rule said no: the same answer PostgreSQL gives.
                raise ConflictError(f"The change clashes with stored data: {exc}") from exc
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            try:
                await db.execute("COMMIT")
            except sqlite3.Error as exc:
                await db.execute("ROLLBACK")
                raise StoreError(f"Could not commit to {self.path}: {exc}") from exc

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        # Commits on this connection publish directly; ``PRAGMA data_version`` changes only
        # when *another* connection (another process) commits, so polling it is cheap and
        # never wakes waiters for our own writes.
        self._watchers += 1
        try:
            if self._watch_task is None or self._watch_task.done():
                # Take the baseline before the caller reads any state: a commit landing
                # between the caller's first read and the watcher's first look must still
                # count as a change.
                baseline = await self._data_version()
                if self._watch_task is None or self._watch_task.done():
                    self._watch_task = asyncio.create_task(
                        self._watch(baseline), name="toolauth-sqlite-watch"
                    )
            yield
        finally:
            self._watchers -= 1

    async def _data_version(self) -> int:
        async with self._lock, self._conn.execute("PRAGMA data_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def _watch(self, last: int) -> None:
        try:
            while self._watchers > 0 and self._db is not None:
                await asyncio.sleep(self.watch_interval)
                current = await self._data_version()
                if current != last:
                    last = current
                    self.changes.publish_all()
        except (StoreError, sqlite3.Error, ValueError):
            self.changes.publish_all()  # let waiters re-read (and see the error themselves)
        finally:
            if self._watch_task is asyncio.current_task():
                self._watch_task = None

    async def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        async with self._lock:
            try:
                async with self._conn.execute(sql, tuple(params)) as cursor:
                    rows = await cursor.fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"Reading {self.path} failed: {exc}") from exc
        return [_from_sql(row) for row in rows]

    async def migrate(self) -> list[int]:
        """Apply pending migrations in one transaction; returns the versions applied."""
        migrations = load_migrations(self.dialect)
        async with self._write() as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            async with db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as c:
                row = await c.fetchone()
            current = int(row[0]) if row else 0
            applied = []
            for migration in pending_migrations(migrations, current, str(self.path)):
                try:
                    for statement in migration.statements:
                        await db.execute(statement)
                except sqlite3.Error as exc:
                    raise MigrationError(
                        f"Migration {migration.version:04d}_{migration.name} failed on "
                        f"{self.path}: {exc}. Nothing was changed."
                    ) from exc
                await db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, utcnow().isoformat()),
                )
                applied.append(migration.version)
        return applied

    async def schema_version(self) -> int:
        rows = await self._fetch("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        return int(rows[0]["v"])

    # generic row operations --------------------------------------------------------------
    async def _insert_in(self, db: aiosqlite.Connection, model: AnyModel) -> None:
        cls = type(model)
        row = self._encode(model)
        columns = _COLUMNS[cls]
        sql = (
            f"INSERT INTO {TABLES[cls]} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        await db.execute(sql, [_to_sql(row[c]) for c in columns])

    async def _insert(self, model: AnyModel) -> None:
        async with self._write() as db:
            try:
                await self._insert_in(db, model)
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"Cannot store {model.id}: {exc}") from exc
        if isinstance(model, ConnectedAccount):
            self.changes.publish(model.id)

    async def _get(self, cls: type[Model], id: str) -> Model | None:
        rows = await self._fetch(f"SELECT * FROM {TABLES[cls]} WHERE id = ?", (id,))
        return self._decode(cls, rows[0]) if rows else None

    async def _update_in(self, db: aiosqlite.Connection, model: Model) -> Model:
        """Write ``model`` over its row if the row still has ``model.version``."""
        cls = type(model)
        new = self._bump(model)
        row: dict[str, Any] = self._encode(new)
        columns: list[str] = [c for c in _COLUMNS[cls] if c not in ("id", "created_at")]
        assignments = [f"{c} = ?" for c in columns]
        if cls is ConnectedAccount:  # a saved account is no longer being refreshed
            assignments += ["refresh_lease_until = NULL", "refresh_lease_owner = NULL"]
        sql = f"UPDATE {TABLES[cls]} SET {', '.join(assignments)} WHERE id = ? AND version = ?"
        cursor = await db.execute(
            sql, [*(_to_sql(row[c]) for c in columns), model.id, model.version]
        )
        if cursor.rowcount != 1:
            raise ConflictError(
                f"{model.id} changed since it was read (or was deleted); read it again."
            )
        return new

    def _published(self, models: Iterable[AnyModel]) -> None:
        for model in models:
            if isinstance(model, ConnectedAccount):
                self.changes.publish(model.id, model)
            elif isinstance(model, ConnectionLink):
                self.changes.publish(model.connected_account_id, model)

    async def save(self, *models: AnyModel) -> list[Any]:
        async with self._write() as db:
            saved = [await self._update_in(db, model) for model in models]  # type: ignore[type-var]
        self._published(saved)
        return saved

    async def modify(self, cls: type[Model], id: str, change: Callable[[Model], Model]) -> Model:
        async with self._write() as db:
            async with db.execute(f"SELECT * FROM {TABLES[cls]} WHERE id = ?", (id,)) as cursor:
                row = await cursor.fetchone()
            if row is None:
                raise NotFoundError(KINDS[cls], id)
            current = self._decode(cls, _from_sql(row))
            new = await self._update_in(db, change(current))
        self._published([new])
        return new

    # auth configs ------------------------------------------------------------------------
    async def list_auth_configs(
        self, *, toolkit: str | None = None, enabled: bool | None = None
    ) -> list[AuthConfig]:
        clauses: list[str] = []
        params: list[Any] = []
        if toolkit is not None:
            clauses.append("toolkit = ?")
            params.append(toolkit)
        if enabled is not None:
            clauses.append("enabled = ?")
            params.append(int(enabled))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._fetch(
            f"SELECT * FROM auth_configs {where} ORDER BY created_at, id",
            params,
        )
        return [self._decode(AuthConfig, r) for r in rows]

    async def delete_auth_config(self, id: str, *, with_accounts: bool) -> list[str]:
        async with self._write() as db:
            async with db.execute(
                "SELECT id FROM connected_accounts WHERE auth_config_id = ?", (id,)
            ) as cursor:
                account_ids = [row[0] for row in await cursor.fetchall()]
            if account_ids and not with_accounts:
                raise ConflictError(
                    f"Auth config {id} still has {len(account_ids)} connected account(s). "
                    "Delete them first, disable the config instead, or pass force=True to "
                    "delete the config with its accounts."
                )
            await db.execute("DELETE FROM connection_links WHERE auth_config_id = ?", (id,))
            await db.execute("DELETE FROM connected_accounts WHERE auth_config_id = ?", (id,))
            cursor = await db.execute("DELETE FROM auth_configs WHERE id = ?", (id,))
            if cursor.rowcount != 1:
                raise NotFoundError("auth config", id)
        for account_id in account_ids:
            self.changes.publish(account_id)
        return account_ids

    # connected accounts ------------------------------------------------------------------
    async def list_accounts(self, where: AccountFilter) -> list[ConnectedAccount]:
        clauses, params = [], []
        for column in ("user_id", "toolkit", "auth_config_id", "label"):
            value = getattr(where, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if where.statuses:
            clauses.append(f"status IN ({', '.join('?' for _ in where.statuses)})")
            params.extend(str(s) for s in where.statuses)
        sql = "SELECT * FROM connected_accounts"
        if clauses:
            sql += f" WHERE {' AND '.join(clauses)}"
        sql += " ORDER BY created_at DESC, id"
        if where.limit is not None:
            sql += " LIMIT ?"
            params.append(where.limit)
        return [self._decode(ConnectedAccount, r) for r in await self._fetch(sql, params)]

    async def count_accounts(self, *, auth_config_id: str) -> int:
        rows = await self._fetch(
            "SELECT COUNT(*) AS n FROM connected_accounts WHERE auth_config_id = ?",
            (auth_config_id,),
        )
        return int(rows[0]["n"])

    async def delete_account(self, id: str) -> bool:
        async with self._write() as db:
            await db.execute("DELETE FROM connection_links WHERE connected_account_id = ?", (id,))
            cursor = await db.execute("DELETE FROM connected_accounts WHERE id = ?", (id,))
            deleted = cursor.rowcount == 1
        if deleted:
            self.changes.publish(id)
        return deleted

    async def try_refresh_lease(self, id: str, owner: str, seconds: float) -> bool:
        now = utcnow()
        until = now.timestamp() + seconds
        from datetime import datetime, timezone

        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE connected_accounts SET refresh_lease_until = ?, refresh_lease_owner = ? "
                "WHERE id = ? AND (refresh_lease_until IS NULL OR refresh_lease_until < ? "
                "OR refresh_lease_owner = ?)",
                (datetime.fromtimestamp(until, timezone.utc).isoformat(), owner, id,
                 now.isoformat(), owner),
            )  # fmt: skip
            return cursor.rowcount == 1

    async def release_refresh_lease(self, id: str, owner: str) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE connected_accounts SET refresh_lease_until = NULL, "
                "refresh_lease_owner = NULL WHERE id = ? AND refresh_lease_owner = ?",
                (id, owner),
            )
        self.changes.publish(id)

    # connect links -----------------------------------------------------------------------
    async def open_link(
        self, link: ConnectionLink, account: ConnectedAccount, *, new: bool, update: bool
    ) -> tuple[ConnectionLink, bool]:
        now = utcnow().isoformat()
        async with self._write() as db:
            await db.execute(
                "UPDATE connection_links SET status = ?, updated_at = ?, version = version + 1 "
                "WHERE pending_key = ? AND status = ? AND expires_at <= ?",
                (str(LinkStatus.EXPIRED), now, link.pending_key, str(LinkStatus.PENDING), now),
            )
            async with db.execute(
                "SELECT * FROM connection_links WHERE pending_key = ? AND status = ?",
                (link.pending_key, str(LinkStatus.PENDING)),
            ) as cursor:
                found = await cursor.fetchone()
            if found is not None:
                return self._decode(ConnectionLink, _from_sql(found)), False
            try:
                if new:
                    await self._insert_in(db, account)
                elif update:
                    await self._update_in(db, account)
                await self._insert_in(db, link)
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"Another link was opened at the same time: {exc}") from exc
        self.changes.publish(account.id)
        return link, True

    async def get_link_by_state(self, state_hash: str) -> ConnectionLink | None:
        rows = await self._fetch(
            "SELECT * FROM connection_links WHERE state_hash = ?", (state_hash,)
        )
        return self._decode(ConnectionLink, rows[0]) if rows else None

    async def latest_link(self, connected_account_id: str) -> ConnectionLink | None:
        rows = await self._fetch(
            "SELECT * FROM connection_links WHERE connected_account_id = ? "
            "ORDER BY created_at DESC, id LIMIT 1",
            (connected_account_id,),
        )
        return self._decode(ConnectionLink, rows[0]) if rows else None

    # keys --------------------------------------------------------------------------------
    async def key_ids(self) -> set[str]:
        rows = await self._fetch("SELECT key_id FROM encryption_keys")
        return {r["key_id"] for r in rows}

    async def rotate_keys(self) -> int:
        rewritten = 0
        async with self._write() as db:
            classes: tuple[type[AnyModel], ...] = (AuthConfig, ConnectedAccount, ConnectionLink)
            for cls in classes:
                table = TABLES[cls]
                async with db.execute(
                    f"SELECT * FROM {table} WHERE key_id != ?",
                    (self.keyring.primary_id,),
                ) as cursor:
                    rows = [_from_sql(r) for r in await cursor.fetchall()]
                for raw in rows:
                    row = self._encode(self._decode(cls, raw))  # type: ignore[type-var]
                    await db.execute(
                        f"UPDATE {table} SET key_id = ?, secret = ? WHERE id = ?",
                        (row["key_id"], row["secret"], raw["id"]),
                    )
                    rewritten += 1
            await db.execute(
                "DELETE FROM encryption_keys WHERE key_id != ?", (self.keyring.primary_id,)
            )
        return rewritten
