"""PostgreSQL extras: LISTEN/NOTIFY across instances, a dropped listener, several processes,
the schema's types and indexes, pool settings, and passwords kept out of URLs and errors.
Each test runs in a fresh schema of the test database (see ``postgres_schema``)."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from subprocess import PIPE

import anyio
import pytest

from tests.conftest import PgSchema, postgres_schema, with_query
from toolauth import ConflictError
from toolauth._crypto import Keyring, generate_key
from toolauth._exceptions import ConfigurationError, StoreError
from toolauth._models import ConnectedAccount
from toolauth.store import open_store
from toolauth.store.migrations import load_migrations
from toolauth.store.postgres import PostgresStore

from .test_contract import make_account, make_config, make_link, rings

asyncpg = pytest.importorskip("asyncpg")

PASSWORD = "pg-password-SENTINEL"


@pytest.fixture
async def pg() -> AsyncIterator[PgSchema]:
    async with postgres_schema() as schema:
        yield schema


@pytest.fixture
def key() -> str:
    return generate_key()


@pytest.fixture
async def stores(pg: PgSchema, key: str) -> AsyncIterator[list[PostgresStore]]:
    """Two instances on one schema, as two app servers would be."""
    opened = []
    try:
        for _ in range(2):
            store = PostgresStore(pg.url, Keyring.from_text(key))
            await store.open()
            opened.append(store)
        yield opened
    finally:
        for store in opened:
            await store.close()


async def _account(store: PostgresStore) -> ConnectedAccount:
    config = make_config()
    await store.create_auth_config(config)
    account = make_account(config)
    await store.create_account(account)
    return account


# notifications across instances ---------------------------------------------------------------
async def test_waiter_wakes_when_another_instance_saves(stores):
    here, there = stores
    account = await _account(here)
    with here.changes.subscribe(account.id) as bell:
        async with here.watching():
            started = time.monotonic()
            await there.save_account(account.model_copy(update={"label": "there"}))
            assert await rings(bell, timeout=1.0)
            assert time.monotonic() - started < 1.0
    assert (await here.get_account(account.id)).label == "there"


async def test_our_own_commits_ring_once_with_their_rows(stores):
    """A waiter here is handed the rows this store committed; the echo of its own NOTIFY does
    not ring again (that would make it read them back). Other instances' commits still ring,
    without rows."""
    here, there = stores
    account = await _account(here)
    with here.changes.subscribe(account.id) as bell:
        async with here.watching():
            saved = await here.save_account(account.model_copy(update={"label": "here"}))
            await asyncio.sleep(0.3)  # the echo of our NOTIFY has come back by now
            assert await bell.wait() == [saved]
            assert not await rings(bell, timeout=0.2)
            await there.save_account(saved.model_copy(update={"label": "there"}))
            with anyio.fail_after(1.0):
                assert await bell.wait() is None  # not shown the rows: read them


async def test_nothing_is_announced_for_a_rolled_back_write(stores):
    here, there = stores
    account = await _account(here)

    def fail(current: ConnectedAccount) -> ConnectedAccount:
        raise RuntimeError("changed my mind")

    with here.changes.subscribe(account.id) as bell:
        async with here.watching():
            with pytest.raises(RuntimeError):
                await there.modify(ConnectedAccount, account.id, fail)
            assert not await rings(bell, timeout=0.3)
            await there.modify(ConnectedAccount, account.id, lambda a: a.model_copy())
            assert await rings(bell, timeout=1.0)


async def test_a_dropped_listener_reconnects_and_wakes_waiters(stores, pg):
    here, there = stores
    account = await _account(here)
    with here.changes.subscribe(account.id) as bell:
        async with here.watching():
            pid = here.listener.conn.get_server_pid()
            assert await pg.admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            # Whatever happened while nobody listened, waiters are told to look again.
            assert await rings(bell, timeout=2.0)
            assert here.listener.conn is not None
            assert here.listener.conn.get_server_pid() != pid
            await there.save_account(account.model_copy(update={"label": "after"}))
            assert await rings(bell, timeout=1.0)
        # A new waiter after the drop is served by the new connection.
        async with here.watching():
            await there.modify(ConnectedAccount, account.id, lambda a: a.model_copy())
            assert await rings(bell, timeout=1.0)


async def test_the_listener_closes_when_nobody_waits(stores, pg, key):
    _, there = stores
    here = PostgresStore(pg.url, Keyring.from_text(key), listen_check=0.05)
    await here.open()
    try:
        account = await _account(here)
        async with here.watching():
            pid = here.listener.conn.get_server_pid()
            task = here.listener.task
        await asyncio.wait_for(task, 5)  # it retires itself once nobody watches
        assert here.listener.task is None and here.listener.conn is None
        with here.changes.subscribe(account.id) as bell:
            async with here.watching():  # and opens again on demand
                assert here.listener.conn.get_server_pid() != pid
                await there.save_account(account)
                assert await rings(bell, timeout=1.0)
    finally:
        await here.close()


async def test_watching_a_closed_store_says_so(stores):
    here, _ = stores
    await here.close()
    with pytest.raises(StoreError, match="closed"):
        async with here.watching():
            pass


# several processes --------------------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from toolauth import AsyncToolAuth, Settings
    from toolauth._models import ConnectedAccount

    def bump(account):
        return account.model_copy(update={"data": {"n": account.data["n"] + 1}})

    async def main(config_id, shared_id, tag, n):
        async with AsyncToolAuth(settings=Settings.from_env()) as ta:
            store = await ta.store()
            for i in range(n):
                await ta.connected_accounts.create(
                    f"{tag}-{i}", config_id, credentials={"api_key": "sk-" + "x" * 30})
                await ta.auth_configs.update(config_id, name=f"{tag}-{i}")
                await store.modify(ConnectedAccount, shared_id, bump)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    """
)


def _env(url: str, key: str, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLAUTH_")}
    env.update(
        TOOLAUTH_HOME=str(tmp_path / "home"),
        TOOLAUTH_DATABASE_URL=url,
        TOOLAUTH_ENCRYPTION_KEY=key,
    )
    return env


async def test_two_processes_writing_at_once_lose_nothing(pg, key, tmp_path):
    from toolauth import AsyncToolAuth, Settings

    env = _env(pg.url, key, tmp_path)
    async with AsyncToolAuth(settings=Settings.from_env(env)) as ta:
        config = await ta.auth_configs.create("openai")
        store = await ta.store()
        shared = make_account(config, "shared", data={"n": 0})
        await store.create_account(shared)
        n = 20
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", WRITER, config.id, shared.id, tag, str(n), env=env
            )
            for tag in ("p1", "p2")
        ]
        assert [await asyncio.wait_for(p.wait(), 60) for p in procs] == [0, 0]
        accounts = await ta.connected_accounts.list(auth_config_id=config.id)
        assert sorted(a.user_id for a in accounts if a.id != shared.id) == sorted(
            f"{t}-{i}" for t in ("p1", "p2") for i in range(n)
        )
        assert all(
            a.credentials["api_key"].get_secret_value() == "sk-" + "x" * 30
            for a in accounts
            if a.id != shared.id
        )
        assert (await ta.auth_configs.get(config.id)).version == 1 + 2 * n
        final = await store.get_account(shared.id)
        assert final.data == {"n": 2 * n}  # every modification applied, none overwritten


async def test_migrate_command_on_postgres(pg, key, tmp_path):
    schema = pg.schema + "_cli"
    url = with_query(pg.url.replace("postgres@", f"postgres:{PASSWORD}@"), schema=schema)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "toolauth", "migrate",
            env=_env(url, key, tmp_path), stdout=PIPE, stderr=PIPE,
        )  # fmt: skip
        out, err = (b.decode() for b in await asyncio.wait_for(proc.communicate(), 60))
    finally:
        await pg.admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    assert proc.returncode == 0, err
    assert f"is at schema version {len(load_migrations('postgres'))}" in out
    assert ":***@" in out
    assert PASSWORD not in out + err


# schema ---------------------------------------------------------------------------------------
async def test_schema_types_and_indexes(stores, pg):
    await stores[0].open()  # opening twice is a no-op
    types = dict(
        await pg.admin.fetch(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = $1",
            pg.schema,
        )
    )
    assert types["connected_accounts.created_at"] == "timestamp with time zone"
    assert types["connected_accounts.refresh_lease_until"] == "timestamp with time zone"
    assert types["connected_accounts.secret"] == "bytea"
    assert types["connected_accounts.data"] == "jsonb"
    assert types["auth_configs.enabled"] == "boolean"
    indexes = dict(
        await pg.admin.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1", pg.schema
        )
    )
    assert "(user_id, toolkit, status)" in indexes["connected_accounts_by_user"]
    assert "UNIQUE" in indexes["connection_links_one_pending"]
    assert "WHERE (status = 'PENDING'::text)" in indexes["connection_links_one_pending"]
    assert "WHERE (state_hash IS NOT NULL)" in indexes["connection_links_by_state"]
    versions = await pg.admin.fetch("SELECT version, name FROM schema_migrations ORDER BY 1")
    assert [tuple(r) for r in versions] == [
        (m.version, m.name) for m in load_migrations("postgres")
    ]
    assert versions[1]["name"] == "connection_links"
    assert (
        "UNIQUE" in indexes["auth_configs_one_default"]
        and "is_default" in indexes["auth_configs_one_default"]
    )


async def test_account_lookup_uses_the_user_index(stores):
    async with stores[0]._live_pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = await conn.fetch(
            "EXPLAIN SELECT * FROM connected_accounts "
            "WHERE user_id = 'u' AND toolkit = 'github' AND status = 'ACTIVE'"
        )
    assert any("connected_accounts_by_user" in row[0] for row in plan)


async def test_a_missing_schema_is_created(pg, key):
    schema = pg.schema + "_new"
    store = PostgresStore(pg.base_url, Keyring.from_text(key), schema=schema)
    try:
        await store.open()
        assert await store.schema_version() == len(load_migrations("postgres"))
        assert await pg.admin.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
    finally:
        await store.close()
        await pg.admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_one_link_per_state(stores):
    store = stores[0]
    config = make_config()
    await store.create_auth_config(config)
    links = []
    for user in ("a", "b"):
        account = make_account(config, user)
        link = make_link(account)
        await store.open_link(link, account, new=True, update=False)
        links.append(link)
    await store.save(links[0].model_copy(update={"state_hash": "h"}))
    with pytest.raises(ConflictError, match="connection_links_by_state"):
        await store.save(links[1].model_copy(update={"state_hash": "h"}))


# configuration and secrets ------------------------------------------------------------------
async def test_pool_size_from_the_url_or_the_constructor(pg, key):
    ring = Keyring.from_text(key)
    store = await open_store(with_query(pg.url, min_size="0", max_size="3"), ring)
    try:
        assert (store._pool.get_min_size(), store._pool.get_max_size()) == (0, 3)
        assert "max_size=3" in store.display_url
    finally:
        await store.close()
    assert PostgresStore(pg.url, ring, max_size=4).max_size == 4
    assert PostgresStore(with_query(pg.url, max_size="4"), ring, max_size=2).max_size == 2
    for bad in ({"max_size": "many"}, {"max_size": "0"}, {"min_size": "5", "max_size": "2"}):
        with pytest.raises(ConfigurationError, match="max_size"):
            PostgresStore(with_query(pg.url, **bad), ring)


async def test_the_password_is_masked(pg, key):
    ring = Keyring.from_text(key)
    url = pg.url.replace("postgres@", f"postgres:{PASSWORD}@")
    store = PostgresStore(url, ring)  # trust authentication: any password is accepted
    try:
        await store.open()
        assert PASSWORD not in store.display_url and PASSWORD not in repr(store)
        assert "postgres:***@127.0.0.1" in store.display_url
        await store.close()
        with pytest.raises(StoreError) as closed:
            await store.get_account("ca_x")
        assert PASSWORD not in str(closed.value)
    finally:
        await store.close()

    in_query = PostgresStore(with_query(pg.base_url, password=PASSWORD), ring)
    assert PASSWORD not in in_query.display_url and "password=***" in in_query.display_url

    unreachable = PostgresStore(
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test?password={PASSWORD}", ring
    )
    with pytest.raises(StoreError, match="Cannot connect") as info:
        await unreachable.open()
    chain, error = [], info.value
    while error is not None:
        chain.append(f"{error!s} {error!r}")
        error = error.__cause__ or error.__context__
    assert all(PASSWORD not in text for text in chain)
    assert "***" in str(info.value)

    with pytest.raises(ConfigurationError) as wrong:
        PostgresStore(f"mysql://root:{PASSWORD}@db/x", ring)
    assert PASSWORD not in str(wrong.value)
