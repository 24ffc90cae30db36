"""The embedded store: one SQLite file through aiosqlite.

WAL journal (readers never block the writer), a busy timeout for writers in other processes,
``BEGIN IMMEDIATE`` for every write so a transaction never has to upgrade its lock half-way.
One connection per store, used by one coroutine at a time. Points in time are stored as
fixed-width UTC text (``2026-01-01T00:00:00.000000Z``), so they compare and sort as text.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import aiosqlite

from .._crypto import Keyring
from .._exceptions import ConfigurationError, ConflictError, StoreError
from .._files import private_file
from .._loop import cancel_and_wait
from .queries import SQLITE, Queries, Statement
from .sql import NO_VALUES, Clash, ScriptError, SQLStore, Tx

if TYPE_CHECKING:
    from .._settings import Settings

__all__ = ["SQLiteStore", "sqlite_path"]

_TIMESTAMPS = (
    "created_at", "updated_at", "expires_at", "issued_at", "completed_at", "refresh_lease_until",
    "failing_since", "next_attempt_at", "lease_until", "probed_at",
)  # fmt: skip
_BOOLEANS = ("enabled", "is_default", "shared", "allow_identity_change")


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


def format_timestamp(value: datetime) -> str:
    """``value`` in UTC, always with microseconds: ``2026-01-01T00:00:00.000000Z``.
    A naive datetime is taken as UTC (as PostgreSQL's timestamptz does)."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def parse_timestamp(value: str | datetime | None) -> datetime | None:
    """A stored point in time back as an aware datetime (older ISO forms are read too)."""
    if value is None or isinstance(value, datetime):
        return value
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    return datetime.fromisoformat(value)


def _to_sql(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _params(stmt: Statement, values: Mapping[str, Any]) -> list[Any]:
    return [_to_sql(value) for value in stmt.args(values)]


def _from_sql(row: Mapping[str, Any] | aiosqlite.Row) -> dict[str, Any]:
    values = dict(row)
    for column in _TIMESTAMPS:
        if column in values:
            values[column] = parse_timestamp(values[column])
    for column in _BOOLEANS:
        if column in values:
            values[column] = bool(values[column])
    return values


class _Connection:
    """The shared methods' view of the aiosqlite connection (see ``sql.Connection``)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def script(self, sql: str) -> None:
        try:
            await self.db.execute(sql)
        except sqlite3.Error as exc:
            raise ScriptError(str(exc)) from exc

    async def fetch(
        self, stmt: Statement, values: Mapping[str, Any] = NO_VALUES
    ) -> list[dict[str, Any]]:
        async with self.db.execute(stmt.sql, _params(stmt, values)) as cursor:
            return [_from_sql(row) for row in await cursor.fetchall()]

    async def execute(self, stmt: Statement, values: Mapping[str, Any] = NO_VALUES) -> int:
        try:
            async with self.db.execute(stmt.sql, _params(stmt, values)) as cursor:
                return cursor.rowcount
        except sqlite3.IntegrityError as exc:
            # A uniqueness or reference rule said no: the same answer PostgreSQL gives.
            raise Clash(f"The change clashes with stored data: {exc}", str(exc)) from exc

    async def executemany(self, stmt: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        await self.db.executemany(stmt.sql, [_params(stmt, row) for row in rows])


class SQLiteStore(SQLStore):
    """A ``Store`` in one SQLite file. Safe for several processes on one machine.

    Args:
        url: ``sqlite:///relative.db`` or ``sqlite:////absolute.db``.
        keyring: the keys that encrypt secrets at rest.
        busy_timeout: seconds a write waits for another process's lock before giving up.
        watch_interval: seconds between two looks at ``PRAGMA data_version`` while anyone
            waits for changes made by other processes.
    """

    queries = Queries(SQLITE)

    @classmethod
    def options(cls, settings: Settings) -> dict[str, Any]:
        return {
            "busy_timeout": settings.sqlite_busy_timeout,
            "watch_interval": settings.watch_interval,
        }

    def __init__(
        self,
        url: str,
        keyring: Keyring,
        *,
        busy_timeout: float = 10.0,
        watch_interval: float = 0.01,
    ) -> None:
        super().__init__(keyring)
        self.path = sqlite_path(url)
        self.busy_timeout = busy_timeout
        self.watch_interval = watch_interval
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._watchers = 0
        self._watch_task: asyncio.Task[None] | None = None

    @property
    def display_url(self) -> str:
        return f"sqlite:///{self.path}"

    # lifecycle ---------------------------------------------------------------------------
    async def _connect(self) -> bool:
        if self._db is not None:
            return False
        await asyncio.to_thread(private_file, self.path)  # 0600, in a 0700 folder
        try:
            db = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot open the SQLite database {self.path}: {exc}") from exc
        db.row_factory = aiosqlite.Row
        try:
            await db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(f"Cannot use the SQLite database {self.path}: {exc}") from exc
        self._db = db
        return True

    async def close(self) -> None:
        task, self._watch_task = self._watch_task, None
        await cancel_and_wait(task)
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("The store is closed; open it first (async with AsyncToolAuth()).")
        return self._db

    # transactions and reads --------------------------------------------------------------
    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error."""
        async with self._lock:
            db = self._conn
            try:
                await self._begin(db)
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

    @staticmethod
    async def _begin(db: aiosqlite.Connection) -> None:
        try:
            await db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "within a transaction" not in str(exc):
                raise
            # A write cancelled mid-way (its task cancelled while BEGIN or the body ran on the
            # connection's thread) left its transaction open: it must not commit. We hold the
            # lock, so it is ours to undo.
            await db.execute("ROLLBACK")
            await db.execute("BEGIN IMMEDIATE")

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        async with self._write() as db:
            tx = Tx(_Connection(db))
            yield tx
        tx.publish(self.changes)  # committed

    @asynccontextmanager
    async def _migration(self) -> AsyncIterator[_Connection]:
        async with self._write() as db:
            yield _Connection(db)

    async def _select(
        self, stmt: Statement, values: Mapping[str, Any] = NO_VALUES
    ) -> list[dict[str, Any]]:
        return await self._fetch(stmt.sql, _params(stmt, values))

    async def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        async with self._lock:
            try:
                # One job on the connection's thread, run to the end even if this task is
                # cancelled: a cursor left half-read would hold its read snapshot open, and
                # every later read on the connection would see the database as it was then.
                rows = await self._conn.execute_fetchall(sql, tuple(params))
            except sqlite3.Error as exc:
                raise StoreError(f"Reading {self.path} failed: {exc}") from exc
        return [_from_sql(row) for row in rows]

    # change notifications ----------------------------------------------------------------
    @asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        # Commits on this connection publish directly; ``PRAGMA data_version`` changes only
        # when *another* connection (another process) commits, so polling it is cheap and
        # never wakes waiters for our own writes.
        if self._watch_task is None or self._watch_task.done():
            # Take the baseline before the caller reads any state: a commit landing between
            # the caller's first read and the watcher's first look must still count.
            baseline = await self._data_version()
            if self._watch_task is None or self._watch_task.done():
                self._watch_task = asyncio.create_task(
                    self._watch(baseline), name="toolauth-sqlite-watch"
                )
        self._watchers += 1  # counted once watched: a counted waiter always has a watcher
        try:
            yield
        finally:
            self._watchers -= 1

    async def _data_version(self) -> int:
        async with self._lock:
            rows = list(await self._conn.execute_fetchall("PRAGMA data_version"))  # as _fetch
        return int(rows[0][0]) if rows else 0

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
