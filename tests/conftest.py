"""Shared fixtures: every test gets its own TOOLAUTH_HOME (a real folder with a real SQLite
file) and settings built from a clean environment, so the developer's shell never leaks in.

The store backend: ``connect``, ``settings`` and ``ta`` use the embedded SQLite file in
``home`` unless the test's directory overrides ``store_env`` with the ``backend`` fixture
(tests/flows, tests/waiting, tests/refresh do), which runs each such test twice: on SQLite and
on PostgreSQL (a fresh schema of the test database per test, dropped afterwards; set
TOOLAUTH_TEST_DATABASE_URL to use another server). A test that needs SQLite itself (its file,
its PRAGMAs, its watcher) says so with ``@sqlite_only``. Without a PostgreSQL server the
PostgreSQL half is skipped, and fails instead on CI (CI=true), where the server is required.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, NoReturn, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from toolauth import AsyncToolAuth, Settings
from toolauth._crypto import Keyring, generate_key
from toolauth.connect.serving import serve_app
from toolauth.demo.provider import DemoProvider
from toolauth.store import Store, display_url, store_class
from toolauth.store.sqlite import sqlite_path

DEMO_CLIENT_ID = "toolauth-tests"
DEMO_CLIENT_SECRET = "demo-client-secret-SENTINEL"
POSTGRES_URL = os.environ.get(
    "TOOLAUTH_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgres")
T = TypeVar("T")

# On a test in a directory that runs on every backend: run it on SQLite only.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``slow`` tests first (in their order), so pytest-xdist starts them at once instead
    of leaving the last worker running one while the others idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def make_settings(home: Path, **env: str) -> Settings:
    return Settings.from_env({"TOOLAUTH_HOME": str(home), **env})


# PostgreSQL: a fresh schema per test --------------------------------------------------------
def postgres_unavailable(reason: str) -> NoReturn:
    """The one rule for a missing PostgreSQL: fail on CI (CI=true), where it is required;
    skip anywhere else."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` set in its query string."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class PgSchema:
    """A schema of its own in the test database, and an admin connection next to it."""

    base_url: str
    schema: str
    admin: Any  # asyncpg.Connection, with search_path set to the schema

    @property
    def url(self) -> str:
        return with_query(self.base_url, schema=self.schema)


@contextlib.asynccontextmanager
async def postgres_schema(base_url: str = POSTGRES_URL) -> AsyncIterator[PgSchema]:
    """Create a randomly named schema, yield it, drop it (CASCADE). Without a server (or
    without asyncpg): see :func:`postgres_unavailable`."""
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError as exc:
        postgres_unavailable(f"asyncpg is not installed ({exc}): pip install 'toolauth[postgres]'")
    try:
        admin = await asyncpg.connect(base_url, timeout=5)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        postgres_unavailable(
            f"PostgreSQL is not reachable at {display_url(base_url)} ({exc!r}); start it or "
            "point TOOLAUTH_TEST_DATABASE_URL at one."
        )
    schema = f"toolauth_test_{secrets.token_hex(6)}"
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        await admin.execute(f'SET search_path TO "{schema}"')
        yield PgSchema(base_url, schema, admin)
    finally:
        try:
            await admin.execute("SET lock_timeout = '20s'")  # never hang on a leftover session
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await admin.close()


# one store backend per test: SQLite or PostgreSQL ---------------------------------------------
@dataclass
class Backend:
    """One database for one test.

    ``env`` is what to add to a TOOLAUTH_* environment to use it: nothing for SQLite (the
    default file and key file in ``home``), the URL and a key for PostgreSQL. ``open()`` opens
    a bare store on it (closed at the end); ``execute`` runs raw SQL on another connection.
    """

    name: str
    url: str
    env: dict[str, str]
    execute: Callable[[str], Any]  # async; raw SQL, for what the interface cannot do
    key: str = field(default_factory=generate_key, repr=False)
    opened: list[Store] = field(default_factory=list)

    @property
    def keyring(self) -> Keyring:
        return Keyring.from_text(self.key)

    async def open(self, keyring: Keyring | None = None) -> Store:
        store = store_class(self.url)(self.url, keyring or self.keyring)
        await store.open()
        self.opened.append(store)
        return store

    async def aclose(self) -> None:
        for store in reversed(self.opened):
            await store.close()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, home: Path) -> AsyncIterator[Backend]:
    """Each store backend in turn: SQLite in ``home``, PostgreSQL in a fresh schema."""
    if request.param == "sqlite":
        url = make_settings(home).database_url
        path = sqlite_path(url)

        async def execute(sql: str) -> None:
            with contextlib.closing(sqlite3.connect(path)) as raw, raw:
                raw.execute(sql)

        found = Backend("sqlite", url, {}, execute)
        try:
            yield found
        finally:
            await found.aclose()
        return
    async with postgres_schema() as pg:
        found = Backend("postgres", pg.url, {}, pg.admin.execute)
        found.env = {"TOOLAUTH_DATABASE_URL": pg.url, "TOOLAUTH_ENCRYPTION_KEY": found.key}
        try:
            yield found
        finally:
            await found.aclose()


@pytest.fixture
def extra_env() -> dict[str, str]:
    """More TOOLAUTH_* settings for ``connect``/``settings``/``ta`` (timeouts, delays): a test
    overrides it with ``@pytest.mark.parametrize("extra_env", [{...}])``."""
    return {}


@pytest.fixture
def store_env() -> dict[str, str]:
    """TOOLAUTH_* variables choosing the store of ``connect``/``settings``/``ta``: none here
    (SQLite in ``home``). A directory whose tests run on every backend overrides it with
    ``backend.env``."""
    return {}


def read_rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of a read-only query, by a connection of its own (not the store's). Sync, so
    a test can call it between two awaits; on PostgreSQL it runs in a worker thread."""
    if urlsplit(database_url).scheme.startswith("sqlite"):
        uri = f"file:{sqlite_path(database_url)}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            return [tuple(row) for row in db.execute(sql)]

    import asyncpg

    from toolauth.store.postgres import PostgresStore

    where = PostgresStore(database_url, Keyring.from_text(generate_key()))

    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(where._dsn, timeout=10, **where._connect_kwargs)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    result: list[list[tuple[Any, ...]]] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(fetch()))
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(30)
    if failure:
        raise failure[0]
    assert result, f"reading {display_url(database_url)} took more than 30 s"
    return result[0]


# clients ----------------------------------------------------------------------------------------
@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path, store_env: dict[str, str], extra_env: dict[str, str]) -> Settings:
    return make_settings(
        home,
        **store_env,
        **extra_env,
        TOOLAUTH_GITHUB_CLIENT_ID="managed-github-id",
        TOOLAUTH_GITHUB_CLIENT_SECRET="managed-github-secret-SENTINEL",
    )


@pytest.fixture
async def ta(settings: Settings) -> AsyncIterator[AsyncToolAuth]:
    async with AsyncToolAuth(settings=settings) as client:
        yield client


class InBackground(Generic[T]):
    """An async context manager entered and exited in a task of its own, so that its exit can
    run while other teardown does: ``stop()`` asks it to exit, ``async with`` waits for that.

    A uvicorn server takes ~0.1 s to stop (its shutdown sleeps 0.1 s before it waits for open
    connections); two servers stopped one after the other would cost that twice a test.
    """

    def __init__(self, manager: contextlib.AbstractAsyncContextManager[T]) -> None:
        self._manager = manager
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> T:
        entered: asyncio.Future[T] = asyncio.get_running_loop().create_future()

        async def run() -> None:
            try:
                async with self._manager as value:
                    entered.set_result(value)
                    await self._stop.wait()
            except BaseException as exc:
                if entered.done():
                    raise
                entered.set_exception(exc)

        self._task = asyncio.create_task(run())
        return await entered

    def stop(self) -> None:
        self._stop.set()

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task


@dataclass
class ServedProvider:
    demo: DemoProvider
    url: str
    server: InBackground[str]


@pytest.fixture
async def served_provider() -> AsyncIterator[ServedProvider]:
    """The demo OAuth provider on a free loopback port, and a way to stop its server early."""
    demo = DemoProvider()
    server = InBackground(serve_app(demo.app))
    async with server as url:
        yield ServedProvider(demo, url, server)


@pytest.fixture
def provider(served_provider: ServedProvider) -> tuple[DemoProvider, str]:
    """The demo OAuth provider on a free loopback port: (provider, its URL)."""
    return served_provider.demo, served_provider.url


@dataclass
class Connect:
    """A client whose connect app is served on loopback, next to the demo provider.

    ``env`` is the client's environment (home, store, demo provider): another process started
    with it shares the client's store and provider."""

    ta: AsyncToolAuth
    base_url: str
    provider: DemoProvider
    provider_url: str
    env: dict[str, str] = field(default_factory=dict, repr=False)


@pytest.fixture
async def connect(
    home: Path,
    served_provider: ServedProvider,
    store_env: dict[str, str],
    extra_env: dict[str, str],
) -> AsyncIterator[Connect]:
    demo, provider_url = served_provider.demo, served_provider.url
    env = {
        "TOOLAUTH_HOME": str(home),
        **store_env,
        **extra_env,
        "TOOLAUTH_DEMO_PROVIDER_URL": provider_url,
        "TOOLAUTH_DEMO_CLIENT_ID": DEMO_CLIENT_ID,
        "TOOLAUTH_DEMO_CLIENT_SECRET": DEMO_CLIENT_SECRET,
    }
    async with AsyncToolAuth(settings=Settings.from_env(env)) as ta, ta.serve(port=0) as base_url:
        demo.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [f"{base_url}/oauth/callback"])
        try:
            yield Connect(ta, base_url, demo, provider_url, env)
        finally:
            served_provider.server.stop()  # the provider's server stops while this one does
