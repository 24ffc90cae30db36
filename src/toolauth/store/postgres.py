"""The shared store: PostgreSQL through an asyncpg connection pool, for many instances.

Every write is one transaction on a pooled connection. Updates are compare-and-swap on the
row's ``version``; ``modify`` locks the row (``SELECT ... FOR UPDATE``) so concurrent changes
queue instead of conflicting; ``open_link`` serialises on the link's ``pending_key`` with a
transaction-scoped advisory lock, and the partial unique index keeps one pending link per key
whatever happens. A commit that changes an account or a link sends
``NOTIFY toolauth_changes, '<account id>'`` from inside its transaction, so other instances
hear of it only once it is committed; :meth:`PostgresStore.watching` listens for them on one
dedicated connection while anyone waits (see :mod:`toolauth.store.listen`).

URL: ``postgresql://user:password@host:5432/db?schema=toolauth&min_size=1&max_size=10``.
``schema`` keeps toolauth's tables in that schema (made on first open when missing);
``min_size``/``max_size`` size the pool; other parameters go to asyncpg (``sslmode``,
``connect_timeout``, ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

from .._crypto import Keyring
from .._exceptions import ConfigurationError, ConflictError, StoreError
from . import display_url
from .listen import CONNECT_ERRORS, DB_ERRORS, Listener, reason
from .queries import POSTGRES, Queries, Statement
from .sql import NO_VALUES, Clash, ScriptError, SQLStore, Tx

__all__ = ["CHANNEL", "PostgresStore"]

CHANNEL = "toolauth_changes"
_OWN_PARAMS = ("schema", "min_size", "max_size")


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


def _rowcount(status: str) -> int:
    """Rows touched, from a command status such as ``UPDATE 1``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class _Connection:
    """The shared methods' view of an asyncpg connection (see ``sql.Connection``)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def fetch(
        self, stmt: Statement, values: Mapping[str, Any] = NO_VALUES
    ) -> list[dict[str, Any]]:
        return [dict(row) for row in await self.conn.fetch(stmt.sql, *stmt.args(values))]

    async def execute(self, stmt: Statement, values: Mapping[str, Any] = NO_VALUES) -> int:
        try:
            return _rowcount(await self.conn.execute(stmt.sql, *stmt.args(values)))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise Clash(
                f"The write conflicts with another row ({reason(exc)}); nothing was changed.",
                reason(exc),
            ) from exc

    async def executemany(self, stmt: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        await self.conn.executemany(stmt.sql, [stmt.args(row) for row in rows])

    async def script(self, sql: str) -> None:
        try:
            await self.conn.execute(sql)
        except asyncpg.PostgresError as exc:
            raise ScriptError(reason(exc)) from exc


class PostgresStore(SQLStore):
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
        listen_check: seconds between checks of the LISTEN connection; it closes when nobody
            has waited for changes this long.
        listen_timeout: seconds a waiter waits for LISTEN to start.
        reconnect_delay: first wait before the LISTEN connection reconnects; doubles up to
            ``reconnect_max_delay``.
        close_timeout: seconds ``close`` waits for busy connections before cutting them.
    """

    queries = Queries(POSTGRES)

    def __init__(
        self,
        url: str,
        keyring: Keyring,
        *,
        schema: str | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
        listen_check: float = 15.0,
        listen_timeout: float = 10.0,
        reconnect_delay: float = 0.05,
        reconnect_max_delay: float = 2.0,
        close_timeout: float = 10.0,
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
        self.close_timeout = close_timeout
        settings = {"search_path": _quote(self.schema)} if self.schema else {}
        self._connect_kwargs: dict[str, Any] = {"server_settings": settings} if settings else {}
        self._pool: Any = None
        # Server pids of this store's pool connections: NOTIFYs they send are our own commits,
        # already published with their rows, so the listener skips their echo.
        self._own_pids: set[int] = set()
        self.listener = Listener(
            self._connect_listener,
            CHANNEL,
            self._notified,
            self.changes.publish_all,
            self._display_url,
            check=listen_check,
            timeout=listen_timeout,
            reconnect_delay=reconnect_delay,
            reconnect_max_delay=reconnect_max_delay,
        )

    @property
    def display_url(self) -> str:
        return self._display_url

    # lifecycle ---------------------------------------------------------------------------
    async def _connect(self) -> bool:
        if self._pool is not None:
            return False
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self.min_size,
                max_size=self.max_size,
                init=self._adopt,
                **self._connect_kwargs,
            )
        except ValueError as exc:  # asyncpg's ClientConfigurationError is one too
            raise ConfigurationError(
                f"Cannot use the PostgreSQL URL {self.display_url}: {reason(exc)}"
            ) from None
        except CONNECT_ERRORS as exc:
            raise StoreError(
                f"Cannot connect to the PostgreSQL database {self.display_url}: {reason(exc)}"
            ) from exc
        return True

    async def _adopt(self, conn: Any) -> None:
        """A new pool connection: remember its server pid while it lives."""
        pid = conn.get_server_pid()
        self._own_pids.add(pid)
        conn.add_termination_listener(lambda _closed: self._own_pids.discard(pid))

    async def close(self) -> None:
        await self.listener.aclose(StoreError(f"The store {self.display_url} was closed."))
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self.close_timeout)
            except CONNECT_ERRORS:
                pool.terminate()  # a connection still busy after the timeout: cut them all
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

    # transactions and reads --------------------------------------------------------------
    @asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        """Driver errors as ``StoreError``; constraint violations, deadlocks and serialisation
        failures as ``ConflictError``."""
        try:
            yield
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
            raise ConflictError(
                f"A concurrent transaction changed the same rows ({reason(exc)}); try again."
            ) from exc
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise ConflictError(
                f"The write conflicts with another row ({reason(exc)}); nothing was changed."
            ) from exc
        except DB_ERRORS as exc:
            raise StoreError(f"{doing} {self.display_url} failed: {reason(exc)}") from exc

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tx]:
        """One write transaction; the accounts it touched are announced (NOTIFY) inside it,
        so other instances hear of them on commit, and published here, with the rows written,
        as soon as the commit returns. The listener ignores the echo of our own NOTIFY (see
        :meth:`_notified`), so every NOTIFY sent here must be published here: when the
        outcome is unknown (the commit failed or was cancelled), without rows, so waiters
        read the state back."""
        announced: Tx | None = None
        published = False
        try:
            async with self._errors("Writing to"), self._live_pool.acquire() as conn:
                async with conn.transaction():
                    tx = Tx(_Connection(conn))
                    yield tx
                    if tx.changed:
                        announced = tx
                        await conn.execute(
                            "SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id",
                            CHANNEL,
                            list(tx.changed),
                        )
                tx.publish(self.changes)  # committed
                published = True
        finally:
            if announced is not None and not published:
                announced.publish(self.changes, with_rows=False)

    @asynccontextmanager
    async def _migration(self) -> AsyncIterator[_Connection]:
        """A transaction-scoped advisory lock makes instances that start together take turns:
        the first applies the migrations, the others find nothing left to do."""
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
            yield _Connection(conn)

    async def _select(
        self, stmt: Statement, values: Mapping[str, Any] = NO_VALUES
    ) -> list[dict[str, Any]]:
        return await self._fetch(stmt.sql, *stmt.args(values))

    async def _fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async with self._errors("Reading"):
            rows = await self._live_pool.fetch(sql, *args)
        return [dict(row) for row in rows]

    # change notifications ----------------------------------------------------------------
    @asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        # Our own commits ring once: published directly with their rows; their echo is
        # skipped (``_notified``).
        self._check_open()
        async with self.listener.watching():
            yield

    @property
    def _watchers(self) -> int:
        return self.listener.watchers

    async def _connect_listener(self, timeout: float) -> Any:
        return await asyncpg.connect(self._dsn, timeout=timeout, **self._connect_kwargs)

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        if pid in self._own_pids:
            # Our own commit: ``_transaction`` publishes it with the rows it wrote. Ringing
            # again without them would make a waiter here read back what it was just handed.
            return
        if payload:
            self.changes.publish(payload)
        else:
            self.changes.publish_all()
