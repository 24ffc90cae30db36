"""The shared store: PostgreSQL through an asyncpg connection pool, for many instances.

Every write is one transaction on a pooled connection. Updates are compare-and-swap on the
row's ``version``; ``modify`` locks the row (``SELECT ... FOR UPDATE``) so concurrent changes
queue instead of conflicting; ``open_link`` serialises on the link's ``pending_key`` with a
transaction-scoped advisory lock, and the partial unique index keeps one pending link per key
whatever happens. A commit that changes an account or a link sends
``NOTIFY toolauth_changes, '<account id>'`` from inside its transaction, so other instances
hear of it only once it is committed; :meth:`PostgresStore.watching` listens for them on one
dedicated connection while anyone waits.

URL: ``postgresql://user:password@host:5432/db?schema=toolauth&min_size=1&max_size=10``.
``schema`` keeps toolauth's tables in that schema (made on first open when missing);
``min_size``/``max_size`` size the pool; other parameters go to asyncpg (``sslmode``,
``connect_timeout``, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

from .._crypto import Keyring
from .._exceptions import (
    ConfigurationError,
    ConflictError,
    MigrationError,
    NotFoundError,
    StoreError,
)
from .._models import AuthConfig, ConnectedAccount, ConnectionLink, LinkStatus, utcnow
from . import display_url
from .base import COLUMNS as _COLUMNS
from .base import KINDS, TABLES, AccountFilter, AnyModel, Model, Store
from .migrations import load_migrations, pending_migrations

__all__ = ["CHANNEL", "PostgresStore"]

CHANNEL = "toolauth_changes"
_OWN_PARAMS = ("schema", "min_size", "max_size")
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
_CONNECT_ERRORS = (*_DB_ERRORS, asyncio.TimeoutError)

# Explicit column lists, not ``SELECT *``: a newer instance adding a column must not change
# what this one's cached statements return.
_SELECT: dict[type[Any], str] = {
    cls: f"SELECT {', '.join(columns)} FROM {TABLES[cls]}" for cls, columns in _COLUMNS.items()
}


def _masked(url: str) -> str:
    """``url`` with the password masked, in the authority and in a ``password=`` parameter."""
    shown = display_url(url)
    parts = urlsplit(shown)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(key == "password" for key, _ in query):
        return shown
    query = [(k, "***" if k == "password" else v) for k, v in query]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def _size(name: str, value: str | int | None, default: int) -> int:
    if value is None:
        return default
    try:
        size = int(value)
    except ValueError:
        size = -1
    if size < 0:
        raise ConfigurationError(
            f"{name} of the PostgreSQL pool must be a whole number of connections, got {value!r}."
        )
    return size


def _first(given: int | None, from_url: str | None) -> int | str | None:
    return given if given is not None else from_url


def _reason(exc: BaseException) -> str:
    """What went wrong, without the DETAIL line (which may quote row values)."""
    message = getattr(exc, "message", None) or str(exc).split("\n", 1)[0]
    return message or type(exc).__name__


def _rowcount(status: str) -> int:
    """Rows touched, from a command status such as ``UPDATE 1``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def _drop(conn: Any) -> None:
    """Close ``conn`` politely, or cut it if that does not work at once."""
    try:
        await asyncio.wait_for(conn.close(), 2.0)
    except (*_CONNECT_ERRORS, asyncio.CancelledError):
        conn.terminate()


class _Tx:
    """One write transaction: its connection, and the accounts whose change it announces
    (with the rows it wrote for them, when the waiters may use those instead of a read)."""

    __slots__ = ("changed", "conn")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.changed: dict[str, list[AnyModel] | None] = {}

    def touch(self, models: Iterable[AnyModel]) -> None:
        for model in models:
            if isinstance(model, ConnectedAccount):
                account_id = model.id
            elif isinstance(model, ConnectionLink):
                account_id = model.connected_account_id
            else:
                continue
            known = self.changed.setdefault(account_id, [])
            if known is not None:
                known.append(model)

    def touch_id(self, account_id: str) -> None:
        self.changed[account_id] = None  # changed in a way waiters must read back


class PostgresStore(Store):
    """A ``Store`` in PostgreSQL, shared by any number of processes and machines.

    Every instance must use the same ``TOOLAUTH_ENCRYPTION_KEY``. Migrations run at open, once,
    however many instances start together.

    ```python
    store = PostgresStore("postgresql://toolauth@db/app?schema=toolauth", keyring)
    await store.open()
    ```

    Args:
        url: ``postgresql://`` URL; ``schema``, ``min_size`` and ``max_size`` are read from its
            query, the rest goes to asyncpg.
        keyring: the keys that encrypt secrets at rest.
        schema: the schema for toolauth's tables (overrides ``?schema=``).
        min_size: connections the pool keeps open (overrides ``?min_size=``; default 1).
        max_size: most connections the pool opens (overrides ``?max_size=``; default 10).
    """

    dialect = "postgres"

    def __init__(
        self,
        url: str,
        keyring: Keyring,
        *,
        schema: str | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
    ) -> None:
        super().__init__(keyring)
        parts = urlsplit(url)
        if parts.scheme.split("+")[0] not in ("postgres", "postgresql"):
            raise ConfigurationError(
                f"{_masked(url)!r} is not a PostgreSQL URL; use postgresql://user@host/db."
            )
        query = parse_qsl(parts.query, keep_blank_values=True)
        own = {k: v for k, v in query if k in _OWN_PARAMS}
        rest = [(k, v) for k, v in query if k not in _OWN_PARAMS]
        self._dsn = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(rest)))
        self._display_url = _masked(url)
        self.schema = schema if schema is not None else own.get("schema") or None
        if self.schema is not None and (not self.schema or "\x00" in self.schema):
            raise ConfigurationError(f"{self.schema!r} is not a usable schema name.")
        self.min_size = _size("min_size", _first(min_size, own.get("min_size")), 1)
        self.max_size = _size("max_size", _first(max_size, own.get("max_size")), 10)
        if self.max_size < 1 or self.min_size > self.max_size:
            raise ConfigurationError(
                f"The PostgreSQL pool needs 1 <= max_size and min_size <= max_size "
                f"(got min_size={self.min_size}, max_size={self.max_size})."
            )
        settings = {"search_path": _quote(self.schema)} if self.schema else {}
        self._connect_kwargs: dict[str, Any] = {"server_settings": settings} if settings else {}
        self._pool: Any = None
        # Server pids of this store's pool connections: NOTIFYs they send are our own commits,
        # already published with their rows, so the listener skips their echo.
        self._own_pids: set[int] = set()
        # LISTEN: one connection, opened by the first watcher, closed when nobody has waited
        # for ``listen_check`` seconds; checked every ``listen_check`` seconds while in use.
        self._watchers = 0
        self._listen_task: asyncio.Task[None] | None = None
        self._listen_conn: Any = None
        self._listen_attempt: asyncio.Future[BaseException | None] | None = None
        self.listen_check = 15.0
        self.listen_timeout = 10.0  # how long watching() waits for LISTEN to start
        self.reconnect_delay = 0.05  # first wait before reconnecting; doubles up to the max
        self.reconnect_max_delay = 2.0

    @property
    def display_url(self) -> str:
        return self._display_url

    def __repr__(self) -> str:
        return f"PostgresStore({self.display_url!r})"

    # lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self.min_size,
                max_size=self.max_size,
                init=self._adopt,
                **self._connect_kwargs,
            )
        except ValueError as exc:  # asyncpg's ClientConfigurationError is one too
            raise ConfigurationError(
                f"Cannot use the PostgreSQL URL {self.display_url}: {_reason(exc)}"
            ) from None
        except _CONNECT_ERRORS as exc:
            raise StoreError(
                f"Cannot connect to the PostgreSQL database {self.display_url}: {_reason(exc)}"
            ) from exc
        self._pool = pool
        try:
            await self.migrate()
            async with self._write() as tx:
                await tx.conn.execute(
                    "INSERT INTO encryption_keys (key_id, created_at) VALUES ($1, $2) "
                    "ON CONFLICT (key_id) DO NOTHING",
                    self.keyring.primary_id,
                    utcnow(),
                )
        except BaseException:
            await self.close()
            raise

    async def _adopt(self, conn: Any) -> None:
        """A new pool connection: remember its server pid while it lives."""
        pid = conn.get_server_pid()
        self._own_pids.add(pid)
        conn.add_termination_listener(lambda _closed: self._own_pids.discard(pid))

    async def close(self) -> None:
        task, self._listen_task = self._listen_task, None
        self._settle(StoreError(f"The store {self.display_url} was closed."))
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10.0)
            except _CONNECT_ERRORS:
                pool.terminate()  # a connection still busy after 10 s: cut them all
            except asyncio.CancelledError:
                pool.terminate()
                raise

    @property
    def _live_pool(self) -> Any:
        self._check_open()
        return self._pool

    def _check_open(self) -> None:
        if self._pool is None:
            raise StoreError("The store is closed; open it first (async with AsyncToolAuth()).")

    @asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        """Driver errors as ``StoreError``; constraint violations, deadlocks and serialisation
        failures as ``ConflictError``."""
        try:
            yield
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
            raise ConflictError(
                f"A concurrent transaction changed the same rows ({_reason(exc)}); try again."
            ) from exc
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise ConflictError(
                f"The write conflicts with another row ({_reason(exc)}); nothing was changed."
            ) from exc
        except _DB_ERRORS as exc:
            raise StoreError(f"{doing} {self.display_url} failed: {_reason(exc)}") from exc

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[_Tx]:
        """One write transaction; the accounts it touched are announced (NOTIFY) inside it,
        so other instances hear of them on commit, and published here, with the rows written,
        as soon as the commit returns. The listener ignores the echo of our own NOTIFY (see
        :meth:`_notified`), so every NOTIFY sent here must be published here: when the
        outcome is unknown (the commit failed or was cancelled), without rows, so waiters
        read the state back."""
        announced: _Tx | None = None
        published = False
        try:
            async with self._errors("Writing to"), self._live_pool.acquire() as conn:
                async with conn.transaction():
                    tx = _Tx(conn)
                    yield tx
                    if tx.changed:
                        announced = tx
                        await conn.execute(
                            "SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id",
                            CHANNEL,
                            list(tx.changed),
                        )
                for account_id, models in tx.changed.items():  # committed
                    self.changes.publish(account_id, *(models or ()))
                published = True
        finally:
            if announced is not None and not published:
                for account_id in announced.changed:
                    self.changes.publish(account_id)

    async def _fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async with self._errors("Reading"):
            rows = await self._live_pool.fetch(sql, *args)
        return [dict(row) for row in rows]

    async def migrate(self) -> list[int]:
        """Apply pending migrations in one transaction; returns the versions applied.

        A transaction-scoped advisory lock makes instances that start together take turns:
        the first applies the migrations, the others find nothing left to do.
        """
        migrations = load_migrations(self.dialect)
        async with (
            self._errors("Migrating"),
            self._live_pool.acquire() as conn,
            conn.transaction(),
        ):
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended("
                "'toolauth.migrate:' || COALESCE($1, current_schema(), ''), 0))",
                self.schema,
            )
            if self.schema is not None and not await conn.fetchval(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1", self.schema
            ):
                await conn.execute(f"CREATE SCHEMA {_quote(self.schema)}")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            )
            current = int(
                await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            )
            applied = []
            for migration in pending_migrations(migrations, current, self.display_url):
                try:
                    for statement in migration.statements:
                        await conn.execute(statement)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(
                        f"Migration {migration.version:04d}_{migration.name} failed on "
                        f"{self.display_url}: {_reason(exc)}. Nothing was changed."
                    ) from exc
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    utcnow(),
                )
                applied.append(migration.version)
        return applied

    async def schema_version(self) -> int:
        rows = await self._fetch("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        return int(rows[0]["v"])

    # change notifications ----------------------------------------------------------------
    @asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        # LISTEN is running before this yields, so a commit landing between the caller's
        # first read and its wait still rings. Our own commits ring once: published directly
        # with their rows; their echo is skipped (``_notified``).
        self._check_open()
        self._watchers += 1
        try:
            await self._listening()
            yield
        finally:
            self._watchers -= 1

    async def _listening(self) -> None:
        """Return once the LISTEN connection is up, starting it if need be."""
        if self._listen_conn is not None:
            return
        if self._listen_attempt is None or self._listen_attempt.done():
            self._listen_attempt = asyncio.get_running_loop().create_future()
        attempt = self._listen_attempt
        if self._listen_task is None or self._listen_task.done():
            self._listen_task = asyncio.create_task(self._listen(), name="toolauth-postgres-listen")
        try:
            error = await asyncio.wait_for(asyncio.shield(attempt), self.listen_timeout)
        except asyncio.TimeoutError:
            raise StoreError(
                f"Could not listen for changes on {self.display_url} within "
                f"{self.listen_timeout:g} s."
            ) from None
        if error is not None:
            raise StoreError(
                f"Cannot listen for changes on {self.display_url}: {_reason(error)}"
            ) from error

    def _settle(self, error: BaseException | None) -> None:
        attempt = self._listen_attempt
        if attempt is not None and not attempt.done():
            attempt.set_result(error)

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        if pid in self._own_pids:
            # Our own commit: ``_write`` publishes it with the rows it wrote. Ringing again
            # without them would make a waiter here read back what it was just handed.
            return
        if payload:
            self.changes.publish(payload)
        else:
            self.changes.publish_all()

    async def _open_listener(self) -> tuple[Any, asyncio.Event]:
        conn = await asyncpg.connect(self._dsn, timeout=self.listen_timeout, **self._connect_kwargs)
        lost = asyncio.Event()

        def on_lost(closed: Any) -> None:
            lost.set()
            if self._listen_conn is closed:
                self._listen_conn = None

        try:
            conn.add_termination_listener(on_lost)
            await conn.add_listener(CHANNEL, self._notified)
        except BaseException:
            await _drop(conn)
            raise
        return conn, lost

    async def _listen(self) -> None:
        """Hold the LISTEN connection while anyone watches; reconnect (with backoff) when it
        drops, then wake every waiter, since changes made meanwhile went unheard."""
        me = asyncio.current_task()
        loop = asyncio.get_running_loop()
        delay = self.reconnect_delay
        reconnecting = False
        try:
            while self._listen_task is me:
                try:
                    conn, lost = await self._open_listener()
                except _CONNECT_ERRORS as exc:
                    if self._listen_task is not me:
                        return
                    self._settle(exc)
                    if self._watchers == 0:
                        self._listen_task = None
                        return
                    await asyncio.sleep(delay)
                    delay = min(2 * delay, self.reconnect_max_delay)
                    continue
                since = loop.time()
                try:
                    if self._listen_task is not me:
                        return
                    if not lost.is_set():
                        self._listen_conn = conn
                        self._settle(None)
                        if reconnecting:
                            self.changes.publish_all()
                        reconnecting = True
                        await self._hold(conn, lost)
                finally:
                    if self._listen_conn is conn:
                        self._listen_conn = None
                    await _drop(conn)
                if self._listen_task is not me:
                    return
                if loop.time() - since > 1.0:  # it worked for a while: start backing off anew
                    delay = self.reconnect_delay
                await asyncio.sleep(delay)
                delay = min(2 * delay, self.reconnect_max_delay)
        finally:
            if self._listen_task is me:
                self._listen_task = None

    async def _hold(self, conn: Any, lost: asyncio.Event) -> None:
        """Return when the connection is lost, or (having retired this task) when nobody has
        watched for ``listen_check`` seconds."""
        me = asyncio.current_task()
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(lost.wait(), self.listen_check)
            if self._listen_task is not me:
                return
            if lost.is_set():
                break
            if self._watchers == 0:
                self._listen_task = None  # retired: a new watcher starts a new listener
                self._listen_conn = None
                return
            try:  # a half-open TCP connection would otherwise go unnoticed
                await asyncio.wait_for(conn.fetchval("SELECT 1"), self.listen_check)
            except _CONNECT_ERRORS:
                break
        self._listen_conn = None
        if self._watchers == 0:
            self._listen_task = None

    # generic row operations --------------------------------------------------------------
    async def _insert_in(self, conn: Any, model: AnyModel) -> None:
        cls = type(model)
        row = self._encode(model)
        columns = _COLUMNS[cls]
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        await conn.execute(
            f"INSERT INTO {TABLES[cls]} ({', '.join(columns)}) VALUES ({placeholders})",
            *(row[c] for c in columns),
        )

    async def _insert(self, model: AnyModel) -> None:
        async with self._write() as tx:
            try:
                await self._insert_in(tx.conn, model)
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise ConflictError(f"Cannot store {model.id}: {_reason(exc)}") from exc
            if isinstance(model, ConnectedAccount):
                tx.touch_id(model.id)

    async def _get(self, cls: type[Model], id: str) -> Model | None:
        rows = await self._fetch(f"{_SELECT[cls]} WHERE id = $1", id)
        return self._decode(cls, rows[0]) if rows else None

    async def _update_in(self, conn: Any, model: Any) -> Any:
        """Write ``model`` over its row if the row still has ``model.version``."""
        cls = type(model)
        new = self._bump(model)
        row = self._encode(new)
        columns = [c for c in _COLUMNS[cls] if c not in ("id", "created_at")]
        assignments = [f"{c} = ${i}" for i, c in enumerate(columns, start=1)]
        if cls is ConnectedAccount:  # a saved account is no longer being refreshed
            assignments += ["refresh_lease_until = NULL", "refresh_lease_owner = NULL"]
        n = len(columns)
        status = await conn.execute(
            f"UPDATE {TABLES[cls]} SET {', '.join(assignments)} "
            f"WHERE id = ${n + 1} AND version = ${n + 2}",
            *(row[c] for c in columns),
            model.id,
            model.version,
        )
        if _rowcount(status) != 1:
            raise ConflictError(
                f"{model.id} changed since it was read (or was deleted); read it again."
            )
        return new

    async def save(self, *models: AnyModel) -> list[Any]:
        async with self._write() as tx:
            saved = [await self._update_in(tx.conn, model) for model in models]
            tx.touch(saved)
        return saved

    async def modify(self, cls: type[Model], id: str, change: Callable[[Model], Model]) -> Model:
        async with self._write() as tx:
            row = await tx.conn.fetchrow(f"{_SELECT[cls]} WHERE id = $1 FOR UPDATE", id)
            if row is None:
                raise NotFoundError(KINDS[cls], id)
            current = self._decode(cls, dict(row))
            new: Model = await self._update_in(tx.conn, change(current))
            tx.touch([new])
        return new

    # auth configs ------------------------------------------------------------------------
    async def list_auth_configs(
        self, *, toolkit: str | None = None, enabled: bool | None = None
    ) -> list[AuthConfig]:
        clauses: list[str] = []
        params: list[Any] = []
        if toolkit is not None:
            params.append(toolkit)
            clauses.append(f"toolkit = ${len(params)}")
        if enabled is not None:
            params.append(enabled)
            clauses.append(f"enabled = ${len(params)}")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._fetch(f"{_SELECT[AuthConfig]}{where} ORDER BY created_at, id", *params)
        return [self._decode(AuthConfig, r) for r in rows]

    async def delete_auth_config(self, id: str, *, with_accounts: bool) -> list[str]:
        async with self._write() as tx:
            conn = tx.conn
            # Locking the config keeps new accounts for it out (their foreign key check waits
            # for this lock, then fails) until this transaction ends.
            locked = await conn.fetchval("SELECT 1 FROM auth_configs WHERE id = $1 FOR UPDATE", id)
            if locked is None:
                raise NotFoundError("auth config", id)
            account_ids = [
                r["id"]
                for r in await conn.fetch(
                    "SELECT id FROM connected_accounts WHERE auth_config_id = $1 "
                    "ORDER BY created_at, id",
                    id,
                )
            ]
            if account_ids and not with_accounts:
                raise ConflictError(
                    f"Auth config {id} still has {len(account_ids)} connected account(s). "
                    "Delete them first, disable the config instead, or pass force=True to "
                    "delete the config with its accounts."
                )
            await conn.execute("DELETE FROM connection_links WHERE auth_config_id = $1", id)
            await conn.execute("DELETE FROM connected_accounts WHERE auth_config_id = $1", id)
            await conn.execute("DELETE FROM auth_configs WHERE id = $1", id)
            for account_id in account_ids:
                tx.touch_id(account_id)
        return account_ids

    # connected accounts ------------------------------------------------------------------
    async def list_accounts(self, where: AccountFilter) -> list[ConnectedAccount]:
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("user_id", "toolkit", "auth_config_id", "label"):
            value = getattr(where, column)
            if value is not None:
                params.append(value)
                clauses.append(f"{column} = ${len(params)}")
        if where.statuses:
            params.append([str(s) for s in where.statuses])
            clauses.append(f"status = ANY(${len(params)}::text[])")
        sql = _SELECT[ConnectedAccount]
        if clauses:
            sql += f" WHERE {' AND '.join(clauses)}"
        sql += " ORDER BY created_at DESC, id"
        if where.limit is not None:
            params.append(where.limit)
            sql += f" LIMIT ${len(params)}"
        return [self._decode(ConnectedAccount, r) for r in await self._fetch(sql, *params)]

    async def count_accounts(self, *, auth_config_id: str) -> int:
        rows = await self._fetch(
            "SELECT COUNT(*) AS n FROM connected_accounts WHERE auth_config_id = $1",
            auth_config_id,
        )
        return int(rows[0]["n"])

    async def delete_account(self, id: str) -> bool:
        async with self._write() as tx:
            await tx.conn.execute(
                "DELETE FROM connection_links WHERE connected_account_id = $1", id
            )
            status = await tx.conn.execute("DELETE FROM connected_accounts WHERE id = $1", id)
            deleted = _rowcount(status) == 1
            if deleted:
                tx.touch_id(id)
        return deleted

    async def try_refresh_lease(self, id: str, owner: str, seconds: float) -> bool:
        # The database clock decides, so instances with skewed clocks agree on expiry.
        async with self._errors("Writing to"):
            status = await self._live_pool.execute(
                "UPDATE connected_accounts SET refresh_lease_until = now() + "
                "make_interval(secs => $3), refresh_lease_owner = $2 WHERE id = $1 AND "
                "(refresh_lease_until IS NULL OR refresh_lease_until < now() "
                "OR refresh_lease_owner = $2)",
                id,
                owner,
                float(seconds),
            )
        return _rowcount(status) == 1

    async def release_refresh_lease(self, id: str, owner: str) -> None:
        async with self._write() as tx:
            await tx.conn.execute(
                "UPDATE connected_accounts SET refresh_lease_until = NULL, "
                "refresh_lease_owner = NULL WHERE id = $1 AND refresh_lease_owner = $2",
                id,
                owner,
            )
            tx.touch_id(id)  # waiters for the lease look again

    # connect links -----------------------------------------------------------------------
    async def open_link(
        self, link: ConnectionLink, account: ConnectedAccount, *, new: bool, update: bool
    ) -> tuple[ConnectionLink, bool]:
        now = utcnow()
        async with self._write() as tx:
            conn = tx.conn
            # Opens of one pending_key take turns, so a racing open finds the winner's link
            # (as with SQLite's single writer) instead of failing on the unique index.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                f"toolauth.link:{link.pending_key}",
            )
            expired = await conn.fetch(
                "UPDATE connection_links SET status = $1, updated_at = $2, version = version + 1 "
                "WHERE pending_key = $3 AND status = $4 AND expires_at <= $2 "
                "RETURNING connected_account_id",
                str(LinkStatus.EXPIRED),
                now,
                link.pending_key,
                str(LinkStatus.PENDING),
            )
            for row in expired:
                tx.touch_id(row["connected_account_id"])
            found = await conn.fetchrow(
                f"{_SELECT[ConnectionLink]} WHERE pending_key = $1 AND status = $2",
                link.pending_key,
                str(LinkStatus.PENDING),
            )
            if found is not None:
                return self._decode(ConnectionLink, dict(found)), False
            try:
                if new:
                    await self._insert_in(conn, account)
                elif update:
                    await self._update_in(conn, account)
                await self._insert_in(conn, link)
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise ConflictError(
                    f"Another link was opened at the same time: {_reason(exc)}"
                ) from exc
            tx.touch_id(account.id)
        return link, True

    async def get_link_by_state(self, state_hash: str) -> ConnectionLink | None:
        rows = await self._fetch(f"{_SELECT[ConnectionLink]} WHERE state_hash = $1", state_hash)
        return self._decode(ConnectionLink, rows[0]) if rows else None

    async def latest_link(self, connected_account_id: str) -> ConnectionLink | None:
        rows = await self._fetch(
            f"{_SELECT[ConnectionLink]} WHERE connected_account_id = $1 "
            "ORDER BY created_at DESC, id LIMIT 1",
            connected_account_id,
        )
        return self._decode(ConnectionLink, rows[0]) if rows else None

    # keys --------------------------------------------------------------------------------
    async def key_ids(self) -> set[str]:
        rows = await self._fetch("SELECT key_id FROM encryption_keys")
        return {r["key_id"] for r in rows}

    async def rotate_keys(self) -> int:
        primary = self.keyring.primary_id
        rewritten = 0
        async with self._write() as tx:
            conn = tx.conn
            classes: tuple[Any, ...] = (AuthConfig, ConnectedAccount, ConnectionLink)
            for cls in classes:
                rows = await conn.fetch(f"{_SELECT[cls]} WHERE key_id <> $1 FOR UPDATE", primary)
                updates = []
                for raw in rows:
                    row = self._encode(self._decode(cls, dict(raw)))
                    updates.append((row["key_id"], row["secret"], raw["id"]))
                if updates:
                    await conn.executemany(
                        f"UPDATE {TABLES[cls]} SET key_id = $1, secret = $2 WHERE id = $3",
                        updates,
                    )
                rewritten += len(updates)
            await conn.execute(
                "INSERT INTO encryption_keys (key_id, created_at) VALUES ($1, $2) "
                "ON CONFLICT (key_id) DO NOTHING",
                primary,
                utcnow(),
            )
            await conn.execute("DELETE FROM encryption_keys WHERE key_id <> $1", primary)
        return rewritten
