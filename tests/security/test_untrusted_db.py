"""The database is not trusted (issue 12, point 4): whoever can write rows but does not hold
the key can neither redirect a secret nor take a usable link from a read.

Every attack here is a direct SQL write (or read) on the real store, by another connection
with no key: on SQLite (the file) and PostgreSQL. Each ends loudly (a ``DecryptionError``
naming the row, never the secret) and safely (nothing reaches the API, the attacker's host or
the provider; nothing changes).
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import Backend, Connect, read_rows
from tests.security.test_api_origins import Api, Sink, sink
from toolauth import AsyncToolAuth, CatalogError, DecryptionError, Settings
from toolauth._crypto import Keyring, generate_key
from toolauth._keys import key_file_path
from toolauth._models import ConnectedAccount
from toolauth.connect.serving import serve_app
from toolauth.store.sqlite import sqlite_path

KEY = "site-key-SENTINEL-0123456789"


@pytest.fixture
def store_env(backend: Backend) -> dict[str, str]:
    return backend.env


async def write(backend: Backend, sql: str, *args: Any) -> None:
    """One write by the attacker: another connection, no key. ``?`` placeholders."""
    if backend.name == "sqlite":
        sqlite_path(backend.url).parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(sqlite_path(backend.url))) as raw, raw:
            raw.execute(sql, args)
        return
    parts = sql.split("?")
    numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))
    await backend.execute(numbered, *args)


def site_toolkit(api_url: str) -> dict[str, Any]:
    """A toolkit whose API host is a per-account URL variable (as a Jira site is)."""
    return {
        "slug": "sited", "name": "Sited", "description": "An API on a per-account host.",
        "api_base_url": "http://{site}/api",
        "auth_schemes": {
            "API_KEY": {
                "fields": [
                    {"name": "site", "label": "Site", "secret": False},
                    {"name": "api_key", "label": "Key"},
                ],
                "placements": [{"in": "header", "name": "X-API-Key", "format": "{api_key}"}],
            },
        },
    }  # fmt: skip


class World:
    def __init__(self, ta: AsyncToolAuth, api: Api, evil: Sink, backend: Backend) -> None:
        self.ta, self.api, self.evil, self.backend = ta, api, evil, backend

    @property
    def api_host(self) -> str:
        return self.api.url.removeprefix("http://")

    @property
    def evil_host(self) -> str:
        return self.evil.url.removeprefix("http://")

    async def account(self, user: str = "alice") -> ConnectedAccount:
        config = await self.ta.auth_configs.create("sited", auth_scheme="API_KEY")
        return await self.ta.connected_accounts.create(
            user, config.id, credentials={"site": self.api_host, "api_key": KEY}
        )

    def assert_nothing_sent(self) -> None:
        assert self.evil.connections == 0 and self.api.seen == []


@pytest.fixture
async def world(ta: AsyncToolAuth, backend: Backend) -> AsyncIterator[World]:
    api = Api()
    async with serve_app(api.app) as api_url, sink() as evil:
        api.url = api_url
        await ta.toolkits.register(site_toolkit(api_url))
        yield World(ta, api, evil, backend)


def assert_altered(exc: pytest.ExceptionInfo[DecryptionError], row_id: str) -> None:
    message = str(exc.value)
    assert row_id in message and "altered" in message
    assert KEY not in message and KEY not in repr(exc.value)


async def test_an_untouched_account_signs_its_own_api(world: World) -> None:
    """The control: the same account, not tampered with, reaches its API with its key."""
    account = await world.account()
    async with await world.ta.connected_accounts.http_client(account.id) as client:
        assert (await client.get("/things")).status_code == 200
    assert [seen.headers["x-api-key"] for seen in world.api.seen] == [KEY]


@pytest.mark.parametrize(
    "column", ["user_id", "toolkit", "auth_config_id", "shared", "data", "secret"]
)
async def test_an_account_row_edited_without_the_key_fails_and_sends_nothing(
    world: World, column: str
) -> None:
    """Every column that decides whose credentials these are and where they go is bound to
    them (AEAD associated data): changing it fails the integrity check before any use."""
    account = await world.account()
    other = await world.account("mallory")  # mallory's own account, config, ciphertext
    ta = world.ta
    change: dict[str, tuple[str, tuple[Any, ...]]] = {
        "user_id": ("user_id = ?", ("eve",)),
        "toolkit": ("toolkit = ?", ("demo",)),
        "auth_config_id": ("auth_config_id = ?", (other.auth_config_id,)),
        "shared": ("shared = ?", (True,)),
        "data": ("data = ?", (f'{{"site": "{world.evil_host}"}}',)),
        "secret": (
            "secret = (SELECT secret FROM connected_accounts WHERE id = ?)", (other.id,)
        ),
    }  # fmt: skip
    clause, args = change[column]
    await write(
        world.backend, f"UPDATE connected_accounts SET {clause} WHERE id = ?", *args, account.id
    )
    with pytest.raises(DecryptionError) as caught:
        await ta.connected_accounts.get(account.id)
    assert_altered(caught, account.id)
    with pytest.raises(DecryptionError):
        await ta.connected_accounts.http_client(account.id)
    if column == "user_id":  # eve's session cannot use it either
        session = ta.create("eve", toolkits=["sited"])
        with pytest.raises(DecryptionError):
            await session.client("sited")
    world.assert_nothing_sent()
    # The others' rows are untouched and still work.
    assert (await ta.connected_accounts.get(other.id)).is_active


async def test_an_auth_config_row_edited_without_the_key_fails(
    world: World, backend: Backend
) -> None:
    """An auth config's secret is bound to its toolkit, type and scheme: a custom OAuth app's
    client secret cannot be moved to another toolkit's token endpoint."""
    ta = world.ta
    for column, value in (("toolkit", "sited"), ("type", "use_managed_auth"), ("auth_scheme", "API_KEY")):  # fmt: skip
        config = await ta.auth_configs.create(
            "demo", type="use_custom_auth",
            credentials={"client_id": "cid", "client_secret": "client-secret-SENTINEL"},
        )  # fmt: skip
        await write(backend, f"UPDATE auth_configs SET {column} = ? WHERE id = ?", value, config.id)
        with pytest.raises(DecryptionError) as caught:
            await ta.auth_configs.get(config.id)
        assert config.id in str(caught.value) and "client-secret-SENTINEL" not in str(caught.value)


# connect links --------------------------------------------------------------------------------
async def test_link_ids_are_stored_hashed_and_a_stored_key_opens_nothing(
    connect: Connect, backend: Backend, settings: Settings
) -> None:
    """The URL carries the link id; the database holds only its SHA-256 (the row's key).
    Every column of every link row is read: none holds the id, and what it holds opens
    nothing. Another client with the key still reads the link back with its URL."""
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice", config.id)
    link_id = req.link_id
    assert link_id is not None and link_id.startswith("ln_")
    stored = read_rows(ta.settings.database_url, "SELECT * FROM connection_links")
    assert len(stored) == 1
    assert all(link_id not in str(value) for value in stored[0])
    key = "sha256:" + hashlib.sha256(link_id.encode()).hexdigest()
    assert read_rows(ta.settings.database_url, "SELECT id FROM connection_links") == [(key,)]
    async with httpx.AsyncClient(base_url=connect.base_url) as http:
        for path in (f"/link/{key}", f"/api/links/{key}", f"/link/{key.split(':')[1]}"):
            assert (await http.get(path)).status_code == 404, path
        answer = await http.get(f"/api/links/{link_id}")
        assert answer.status_code == 200 and answer.json()["id"] == link_id
        assert (await http.get(f"/link/{link_id}")).status_code == 303  # to the provider
    # Another process (same store, same key) reads the link back, URL and all.
    env = {**connect.env, "TOOLAUTH_BASE_URL": connect.base_url}
    async with AsyncToolAuth(settings=Settings.from_env(env)) as other:
        again = await other.connected_accounts.link("alice", config.id)
        assert again.link_id == link_id and again.redirect_url == req.redirect_url
        session = other.create("alice", toolkits=["demo"])
        assert (await session.connection("demo")).redirect_url == req.redirect_url


@pytest.mark.parametrize(
    "column", ["user_id", "connected_account_id", "callback_url", "redirect_uri", "auth_config_id"]
)
async def test_a_link_row_edited_without_the_key_opens_nothing(
    connect: Connect, backend: Backend, column: str
) -> None:
    """A link's secrets are bound to its user, account, config, redirect URI and callback
    URL: redirecting any of them breaks the link loudly; nothing is sent to the provider and
    the victim's account is not touched."""
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    victim = await ta.connected_accounts.link("alice", config.id)
    mine = await ta.connected_accounts.link("mallory", config.id)
    key = "sha256:" + hashlib.sha256(str(victim.link_id).encode()).hexdigest()
    value = {
        "user_id": "mallory",
        "connected_account_id": mine.connected_account_id,
        "callback_url": "https://evil.example/steal",
        "redirect_uri": "https://evil.example/oauth/callback",
        "auth_config_id": (await ta.auth_configs.create("demo", name="other")).id,
    }[column]
    await write(backend, f"UPDATE connection_links SET {column} = ? WHERE id = ?", value, key)
    before = connect.provider.config.auto_consent
    async with httpx.AsyncClient(base_url=connect.base_url) as http:
        page = await http.get(f"/link/{victim.link_id}")
    assert page.status_code == 500 and "altered" in page.text
    assert str(victim.link_id) not in page.text and "location" not in page.headers
    assert connect.provider.config.auto_consent == before
    assert (
        await ta.connected_accounts.get(victim.connected_account_id)
    ).status.value == "INITIATED"


async def test_a_stored_toolkit_edited_without_the_key_is_not_used(world: World) -> None:
    """A stored definition decides where secrets go (its API and token URLs): pointed at the
    attacker's host in the database, another process refuses it by name and sends nothing
    there; the key holder repairs it by storing it again, and a rotation keeps it valid."""
    account = await world.account()
    await write(
        world.backend,
        "UPDATE toolkits SET definition = replace(definition, 'http://{site}/api', ?) "
        "WHERE slug = 'sited'",
        f"{world.evil.url}/api",
    )
    async with AsyncToolAuth(settings=world.ta.settings) as other:  # as another process
        await other.store()
        with pytest.raises(CatalogError, match="without the encryption key") as refused:
            other.toolkits.get("sited")
        assert "sited" in str(refused.value)
        with pytest.raises(CatalogError):
            await other.connected_accounts.http_client(account.id)
        world.assert_nothing_sent()
        await other.toolkits.register(site_toolkit(world.api.url))  # the key holder repairs it
        assert other.toolkits.get("sited").api_base_url == "http://{site}/api"
    store = await world.ta.store()
    old = world.backend.key
    if world.backend.name == "sqlite":  # the key file in TOOLAUTH_HOME
        old = key_file_path(world.ta.settings).read_text()
    rotated = await world.backend.open(Keyring.from_text(f"{generate_key()},{old}"))
    await rotated.rotate_keys()
    (row,) = await rotated.list_toolkits()
    assert row.key_id == rotated.keyring.primary_id and not row.altered
    await write(world.backend, "UPDATE toolkits SET source = 'file' WHERE slug = 'sited'")
    (row,) = await rotated.list_toolkits()
    assert row.altered
    del store


# upgrade from the previous schema --------------------------------------------------------------
async def test_keys_rotate_with_the_bound_associated_data(world: World) -> None:
    """``toolauth keys rotate`` rewrites rows with the bound associated data: they still read,
    and an edit after the rotation still fails."""
    account = await world.account()
    store = await world.ta.store()
    old = world.backend.key
    if world.backend.name == "sqlite":  # the key file in TOOLAUTH_HOME
        old = key_file_path(world.ta.settings).read_text()
    ring = Keyring.from_text(f"{generate_key()},{old}")
    rotated = await world.backend.open(ring)
    assert await rotated.rotate_keys() >= 2
    again = await rotated.get_account(account.id)
    assert again is not None and again.credentials["api_key"].get_secret_value() == KEY
    await write(
        world.backend, "UPDATE connected_accounts SET user_id = 'mallory' WHERE id = ?", account.id
    )
    with pytest.raises(DecryptionError):
        await rotated.get_account(account.id)
    del store


# upgrade from the previous schema ---------------------------------------------------------------
_PREVIOUS = {"sqlite": 4, "postgres": 3}  # the schema version before the bound data


async def test_a_database_of_the_previous_schema_is_upgraded_then_bound(backend: Backend) -> None:
    """A database made by the previous release (its migrations, its rows: version-1
    associated data, a link stored under its clear id) opens with this one: every row reads
    back as it was, is rewritten with the bound associated data, and the link moves to the
    hash of its id. From then on the same edits fail."""
    from tests.store.legacy import legacy_row
    from tests.store.test_contract import make_account, make_config, make_link
    from toolauth.store.migrations import load_migrations
    from toolauth.store.rows import COLUMNS, TABLES
    from toolauth.store.sqlite import format_timestamp

    ring = backend.keyring
    config = make_config()
    account = make_account(config, "alice").model_copy(update={"data": {"site": "a.example"}})
    link = make_link(account, "k")
    await write(backend, "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                f"name TEXT NOT NULL, applied_at {'TEXT' if backend.name == 'sqlite' else 'TIMESTAMPTZ'} NOT NULL)")  # fmt: skip

    def value(v: Any) -> Any:
        if backend.name == "sqlite" and hasattr(v, "tzinfo"):
            return format_timestamp(v)
        return v

    for migration in load_migrations(backend.name)[: _PREVIOUS[backend.name]]:
        for statement in migration.statements:
            await write(backend, statement)
        await write(backend, "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    migration.version, migration.name, value(config.created_at))  # fmt: skip
    await write(backend, "INSERT INTO encryption_keys VALUES (?, ?)", ring.primary_id, value(config.created_at))  # fmt: skip
    for model in (config, account, link):
        row = legacy_row(ring, model)
        table = TABLES[type(model)]
        if backend.name == "sqlite":  # the columns the previous release's table had
            had = {r[1] for r in read_rows(backend.url, f"PRAGMA table_info({table})")}
        else:
            had = {r[0] for r in read_rows(backend.url, "SELECT column_name FROM "
                   f"information_schema.columns WHERE table_name = '{table}' "
                   "AND table_schema = current_schema()")}  # fmt: skip
        columns = [c for c in COLUMNS[type(model)] if c in had]
        await write(
            backend,
            f"INSERT INTO {TABLES[type(model)]} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})",
            *(value(row[c]) for c in columns),
        )

    store = await backend.open()
    assert await store.schema_version() == len(load_migrations(backend.name))
    assert await store.get_auth_config(config.id) == config
    assert await store.get_account(account.id) == account
    assert await store.get_link(link.id) == link
    key = "sha256:" + hashlib.sha256(link.id.encode()).hexdigest()
    for table in ("auth_configs", "connected_accounts", "connection_links"):
        assert {r[0] for r in read_rows(backend.url, f"SELECT aad_version FROM {table}")} == {2}
    assert read_rows(backend.url, "SELECT id FROM connection_links") == [(key,)]
    stored = read_rows(backend.url, "SELECT * FROM connection_links")
    assert all(link.id not in str(v) for v in stored[0])
    # Now bound: the edit the old rows let through fails, the version marker cannot undo it.
    await write(backend, "UPDATE connected_accounts SET user_id = 'eve', aad_version = 1 WHERE id = ?", account.id)  # fmt: skip
    with pytest.raises(DecryptionError, match=account.id):
        await store.get_account(account.id)
    await write(backend, "UPDATE connected_accounts SET user_id = 'alice', aad_version = 2 WHERE id = ?", account.id)  # fmt: skip
    assert await store.get_account(account.id) == account
    # And the next open finds nothing left to upgrade.
    again = await backend.open()
    assert await again.get_link(link.id) == link


# per-account data never overrides the deployment ------------------------------------------------
async def test_account_data_never_overrides_the_deployments_urls(world: World) -> None:
    """Even written with the key (a catalog field or a provider answer of the same name),
    an account's ``data`` fills only the URL placeholders the deployment leaves open: the
    deployment's ``demo_provider_url`` and ``base_url`` win, so the API origin stays put."""
    ta = world.ta
    config = await ta.auth_configs.create("demo", type="use_custom_auth",
                                          credentials={"client_id": "c", "client_secret": "s"})  # fmt: skip
    created = await ta.connected_accounts.create(
        "alice", config.id, credentials={"access_token": "at-SENTINEL-0001"}
    )
    store = await ta.store()
    evil = {"demo_provider_url": world.evil.url, "base_url": world.evil.url, "site": "x"}
    account = await store.save_account(created.model_copy(update={"data": evil}))
    expected = ta.settings.url_variables["demo_provider_url"] + "/api"
    async with await ta.connected_accounts.http_client(account.id) as client:
        assert str(client.base_url).rstrip("/") == expected
        with contextlib.suppress(httpx.HTTPError):
            await client.get("/me")
    assert world.evil.connections == 0
