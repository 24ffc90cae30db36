"""One suite every store backend must pass, through the ``Store`` interface only: each test runs
on SQLite (a file in the test's home) and on PostgreSQL (a fresh schema of the test database;
set TOOLAUTH_TEST_DATABASE_URL to use another server), through the ``backend`` fixture of
tests/conftest.py. Dialect extras live in test_sqlite.py and test_postgres.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta, timezone
from typing import Any

import anyio
import pytest

from tests.conftest import Backend
from toolauth import ConflictError, DecryptionError, MigrationError
from toolauth._crypto import Keyring, generate_key
from toolauth._exceptions import NotFoundError, StoreError
from toolauth._ids import new_id
from toolauth._models import (
    AuthConfig,
    AuthConfigType,
    AuthScheme,
    ConnectedAccount,
    ConnectionLink,
    ConnectionStatus,
    LinkStatus,
    utcnow,
)
from toolauth.store import AccountFilter, Store
from toolauth.store.migrations import load_migrations

CLIENT_SECRET = "client-secret-SENTINEL"
ACCESS_TOKEN = "access-token-SENTINEL"


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()


# models -------------------------------------------------------------------------------------
def make_config(toolkit: str = "github", **fields: Any) -> AuthConfig:
    now = fields.pop("created_at", None) or utcnow()
    values: dict[str, Any] = {
        "id": new_id("ac"), "toolkit": toolkit, "name": f"{toolkit} app",
        "type": AuthConfigType.CUSTOM, "auth_scheme": AuthScheme.OAUTH2,
        "scopes": ("repo", "read:user"), "created_at": now, "updated_at": now,
        "credentials": {"client_id": "cid", "client_secret": CLIENT_SECRET},
    }  # fmt: skip
    values.update(fields)
    return AuthConfig(**values)


def make_account(config: AuthConfig, user_id: str = "alice", **fields: Any) -> ConnectedAccount:
    now = fields.pop("created_at", None) or utcnow()
    values: dict[str, Any] = {
        "id": new_id("ca"), "user_id": user_id, "toolkit": config.toolkit,
        "auth_config_id": config.id, "status": ConnectionStatus.ACTIVE,
        "scopes": ("repo",), "expires_at": now + timedelta(hours=1),
        "data": {"login": user_id, "nested": {"n": 1, "list": [1, 2]}},
        "created_at": now, "updated_at": now,
        "credentials": {"access_token": ACCESS_TOKEN, "refresh_token": "refresh-SENTINEL"},
    }  # fmt: skip
    values.update(fields)
    return ConnectedAccount(**values)


def make_link(account: ConnectedAccount, pending_key: str | None = None, **fields: Any) -> ConnectionLink:  # fmt: skip
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_id("ln"), "connected_account_id": account.id, "user_id": account.user_id,
        "toolkit": account.toolkit, "auth_config_id": account.auth_config_id,
        "auth_scheme": AuthScheme.OAUTH2, "status": LinkStatus.PENDING,
        "pending_key": pending_key or f"{account.user_id}\x1f{account.auth_config_id}\x1f",
        "callback_url": "https://app.example/done", "expires_at": now + timedelta(minutes=10),
        "created_at": now, "updated_at": now, "secrets": {"code_verifier": "verifier-SENTINEL"},
    }  # fmt: skip
    values.update(fields)
    return ConnectionLink(**values)


async def rings(bell: Any, timeout: float = 2.0) -> bool:
    """Whether ``bell`` rings within ``timeout`` seconds."""
    with anyio.move_on_after(timeout):
        await bell.wait()
        return True
    return False


# migrations ---------------------------------------------------------------------------------
async def test_migrates_from_empty_and_reopens(backend: Backend):
    latest = len(load_migrations(backend.name))
    first = await backend.open()
    assert await first.schema_version() == latest
    again = await backend.open()
    assert await again.migrate() == []
    assert await again.schema_version() == latest


async def test_instances_starting_together_migrate_once(backend: Backend):
    stores = await asyncio.gather(*(backend.open() for _ in range(4)))
    latest = len(load_migrations(backend.name))
    assert [await s.schema_version() for s in stores] == [latest] * 4
    rows = await stores[0]._fetch("SELECT COUNT(*) AS n FROM schema_migrations")
    assert rows[0]["n"] == latest


async def test_newer_schema_is_refused(backend: Backend):
    await backend.open()
    await backend.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) "
        "VALUES (999, 'future', '2030-01-01T00:00:00+00:00')"
    )
    with pytest.raises(MigrationError, match=r"schema version 999, newer .* Upgrade toolauth"):
        await backend.open()


# auth configs -------------------------------------------------------------------------------
async def test_auth_config_crud(store: Store):
    start = utcnow()
    github = make_config("github", created_at=start)
    slack = make_config("slack", created_at=start + timedelta(seconds=1), enabled=False)
    for config in (github, slack):
        await store.create_auth_config(config)
    assert await store.get_auth_config(github.id) == github
    got = await store.get_auth_config(slack.id)
    assert got.credentials["client_secret"].get_secret_value() == CLIENT_SECRET
    assert got.scopes == ("repo", "read:user") and got.enabled is False
    assert await store.get_auth_config("ac_missing") is None
    assert [c.id for c in await store.list_auth_configs()] == [github.id, slack.id]
    assert [c.id for c in await store.list_auth_configs(toolkit="slack")] == [slack.id]
    assert [c.id for c in await store.list_auth_configs(enabled=True)] == [github.id]
    assert await store.list_auth_configs(toolkit="slack", enabled=True) == []

    (renamed,) = await store.save(github.model_copy(update={"name": "renamed"}))
    assert renamed.version == github.version + 1
    assert (await store.get_auth_config(github.id)).name == "renamed"
    with pytest.raises(ConflictError, match="read it again"):
        await store.save(github.model_copy(update={"name": "stale"}))
    with pytest.raises(ConflictError, match=github.id):
        await store.create_auth_config(github)  # the id is taken

    assert await store.delete_auth_config(slack.id, with_accounts=False) == []
    assert await store.get_auth_config(slack.id) is None
    with pytest.raises(NotFoundError, match="ac_missing"):
        await store.delete_auth_config("ac_missing", with_accounts=True)


# connected accounts ---------------------------------------------------------------------------
async def test_account_crud_and_secrets(store: Store):
    config = make_config()
    await store.create_auth_config(config)
    account = make_account(config, label="work")
    await store.create_account(account)
    got = await store.get_account(account.id)
    assert got == account
    assert got.credentials["access_token"].get_secret_value() == ACCESS_TOKEN
    assert got.data == {"login": "alice", "nested": {"n": 1, "list": [1, 2]}}
    assert got.expires_at == account.expires_at
    with pytest.raises(ConflictError):
        await store.create_account(account)  # the id is taken
    with pytest.raises(ConflictError):
        await store.create_account(make_account(make_config()))  # its config does not exist
    assert await store.delete_account(account.id) is True
    assert await store.get_account(account.id) is None
    assert await store.delete_account(account.id) is False


async def test_list_accounts_filters_and_order(store: Store):
    github, slack = make_config("github"), make_config("slack")
    for config in (github, slack):
        await store.create_auth_config(config)
    start = utcnow()
    rows = [
        ("a", github, ConnectionStatus.ACTIVE, None),
        ("b", github, ConnectionStatus.INITIATED, None),
        ("a", slack, ConnectionStatus.ACTIVE, "work"),
        ("a", github, ConnectionStatus.FAILED, "work"),
    ]
    made = []
    for i, (user, config, status, label) in enumerate(rows):
        account = make_account(
            config, user, status=status, label=label, created_at=start + timedelta(seconds=i)
        )
        await store.create_account(account)
        made.append(account.id)
    newest_first = made[::-1]

    async def ids(**where: Any) -> list[str]:
        return [a.id for a in await store.list_accounts(AccountFilter(**where))]

    assert await ids() == newest_first
    assert await ids(user_id="a") == [made[3], made[2], made[0]]
    assert await ids(toolkit="slack") == [made[2]]
    assert await ids(auth_config_id=github.id, user_id="a") == [made[3], made[0]]
    assert await ids(statuses=[ConnectionStatus.ACTIVE]) == [made[2], made[0]]
    assert await ids(statuses=[ConnectionStatus.INITIATED, ConnectionStatus.FAILED]) == [
        made[3],
        made[1],
    ]
    assert await ids(label="work", toolkit="github") == [made[3]]
    assert await ids(limit=2) == newest_first[:2]
    assert await ids(user_id="nobody") == []


# writes ---------------------------------------------------------------------------------------
async def test_save_is_compare_and_swap_and_all_or_nothing(store: Store):
    config = make_config()
    await store.create_auth_config(config)
    account = make_account(config)
    await store.create_account(account)
    first = await store.save_account(account.model_copy(update={"label": "first"}))
    assert first.version == account.version + 1
    with pytest.raises(ConflictError, match="read it again"):
        await store.save_account(account.model_copy(update={"label": "stale"}))
    assert (await store.get_account(account.id)).label == "first"

    # One stale model in a batch: nothing of the batch is written.
    await store.save(config)  # now the config is ahead of our copy
    with pytest.raises(ConflictError):
        await store.save(first.model_copy(update={"label": "second"}), config)
    assert (await store.get_account(account.id)).label == "first"
    saved = await store.save(first.model_copy(update={"label": "second"}))
    assert [m.version for m in saved] == [first.version + 1]
    with pytest.raises(ConflictError):
        await store.save_account(make_account(config))  # never created


async def test_modify_serialises_concurrent_changes(store: Store):
    config = make_config()
    await store.create_auth_config(config)
    account = make_account(config, data={"n": 0})
    await store.create_account(account)

    def bump(current: ConnectedAccount) -> ConnectedAccount:
        return current.model_copy(update={"data": {"n": current.data["n"] + 1}})

    await asyncio.gather(*(store.modify(ConnectedAccount, account.id, bump) for _ in range(50)))
    final = await store.get_account(account.id)
    assert final.data == {"n": 50}
    assert final.version == account.version + 50

    class Boom(Exception):
        pass

    def fail(current: ConnectedAccount) -> ConnectedAccount:
        raise Boom

    with pytest.raises(Boom):
        await store.modify(ConnectedAccount, account.id, fail)
    assert (await store.get_account(account.id)).version == final.version
    with pytest.raises(NotFoundError, match="ca_missing"):
        await store.modify(ConnectedAccount, "ca_missing", bump)
    renamed = await store.modify(
        AuthConfig, config.id, lambda c: c.model_copy(update={"name": "x"})
    )
    assert renamed.name == "x" and renamed.version == config.version + 1


# connect links --------------------------------------------------------------------------------
async def test_open_link_is_idempotent_and_expires_old_links(store: Store):
    config = make_config()
    await store.create_auth_config(config)
    account = make_account(config, status=ConnectionStatus.INITIATED)
    link = make_link(account)
    assert await store.open_link(link, account, new=True, update=False) == (link, True)
    assert await store.get_account(account.id) == account

    other = make_account(config, status=ConnectionStatus.INITIATED)
    found, created = await store.open_link(
        make_link(other, link.pending_key), other, new=True, update=False
    )
    assert (found, created) == (link, False)
    assert await store.get_account(other.id) is None  # nothing else was written
    assert (await store.get_link(link.id)).secrets["code_verifier"].get_secret_value() == (
        "verifier-SENTINEL"
    )
    assert await store.latest_link(account.id) == link

    # A pending link past its expiry is marked EXPIRED, and a new one is opened.
    stale = make_link(account, "stale-key", expires_at=utcnow() - timedelta(seconds=1))
    assert (await store.open_link(stale, account, new=False, update=False))[1] is True
    fresh = make_link(account, "stale-key")
    assert (await store.open_link(fresh, account, new=False, update=False))[1] is True
    expired = await store.get_link(stale.id)
    assert expired.status is LinkStatus.EXPIRED and expired.version == stale.version + 1

    # update=True writes the account over its row, compare-and-swap.
    again = make_link(account, "reconnect")
    moved = account.model_copy(update={"status_reason": "reconnecting"})
    assert (await store.open_link(again, moved, new=False, update=True))[1] is True
    assert (await store.get_account(account.id)).status_reason == "reconnecting"
    with pytest.raises(ConflictError):
        await store.open_link(make_link(account, "late"), moved, new=False, update=True)
    assert await store.get_link_by_state("no-such-state") is None


async def test_open_link_race_creates_exactly_one(store: Store):
    config = make_config()
    await store.create_auth_config(config)
    key = f"bob\x1f{config.id}\x1f"

    async def attempt() -> tuple[ConnectionLink, bool]:
        account = make_account(config, "bob", status=ConnectionStatus.INITIATED)
        return await store.open_link(make_link(account, key), account, new=True, update=False)

    results = await asyncio.gather(*(attempt() for _ in range(10)), return_exceptions=True)
    assert all(isinstance(r, (tuple, ConflictError)) for r in results), results
    opened = [r for r in results if isinstance(r, tuple)]
    winners = [link for link, created in opened if created]
    assert len(winners) == 1
    assert {link.id for link, _ in opened} == {winners[0].id}
    accounts = await store.list_accounts(AccountFilter(user_id="bob"))
    assert [a.id for a in accounts] == [winners[0].connected_account_id]


async def test_link_by_state_and_delete_cascade(store: Store):
    config = make_config()
    await store.create_auth_config(config)
    accounts = [make_account(config, user) for user in ("a", "b")]
    links = []
    for account in accounts:
        link = make_link(account)
        await store.open_link(link, account, new=True, update=False)
        links.append(link)
    (with_state,) = await store.save(links[0].model_copy(update={"state_hash": "h-1"}))
    assert await store.get_link_by_state("h-1") == with_state

    assert await store.delete_account(accounts[0].id) is True
    assert await store.get_link(links[0].id) is None
    assert await store.get_link_by_state("h-1") is None
    assert await store.latest_link(accounts[0].id) is None

    with pytest.raises(ConflictError, match="still has 1 connected account"):
        await store.delete_auth_config(config.id, with_accounts=False)
    assert await store.get_link(links[1].id) is not None
    assert await store.delete_auth_config(config.id, with_accounts=True) == [accounts[1].id]
    assert await store.get_account(accounts[1].id) is None
    assert await store.get_link(links[1].id) is None
    assert await store.get_auth_config(config.id) is None


# points in time ---------------------------------------------------------------------------------
EAST, WEST = timezone(timedelta(hours=5)), timezone(timedelta(hours=-5))


async def test_times_compare_as_times_whatever_their_offset(store: Store):
    """Order and expiry follow the instant, not how it was written: an earlier time written
    with a later-looking offset still sorts first and still counts as past."""
    config = make_config()
    await store.create_auth_config(config)
    start = utcnow()
    first = make_account(config, "a", created_at=start.astimezone(EAST))
    second = make_account(config, "b", created_at=(start + timedelta(seconds=1)).astimezone(WEST))
    third = make_account(config, "c", created_at=start + timedelta(seconds=1, microseconds=1))
    for account in (third, first, second):
        await store.create_account(account)
    listed = await store.list_accounts(AccountFilter(auth_config_id=config.id))
    assert [a.id for a in listed] == [third.id, second.id, first.id]
    assert listed[2].created_at == first.created_at  # the same instant, read back

    # One minute past, written as a time that reads five hours ahead: expired all the same.
    past = (utcnow() - timedelta(minutes=1)).astimezone(EAST)
    stale = make_link(first, "east", expires_at=past)
    assert (await store.open_link(stale, first, new=False, update=False))[1] is True
    fresh = make_link(first, "east")
    assert await store.open_link(fresh, first, new=False, update=False) == (fresh, True)
    assert (await store.get_link(stale.id)).status is LinkStatus.EXPIRED


async def test_whole_and_fractional_seconds_compare_in_order(store: Store):
    config = make_config()
    await store.create_auth_config(config)
    whole = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    times = [whole - timedelta(microseconds=1), whole, whole + timedelta(microseconds=1)]
    made = [make_account(config, f"u{i}", created_at=t) for i, t in enumerate(times)]
    for account in reversed(made):
        await store.create_account(account)
    listed = await store.list_accounts(AccountFilter(auth_config_id=config.id))
    assert [a.created_at for a in listed] == times[::-1]


# refresh leases -------------------------------------------------------------------------------
async def test_refresh_lease(store: Store):
    config = make_config()
    await store.create_auth_config(config)
    account = make_account(config)
    await store.create_account(account)
    assert await store.try_refresh_lease(account.id, "one", 30) is True
    assert await store.try_refresh_lease(account.id, "two", 30) is False
    assert await store.try_refresh_lease(account.id, "one", 30) is True  # its own lease
    await store.release_refresh_lease(account.id, "two")  # not the holder: nothing happens
    assert await store.try_refresh_lease(account.id, "two", 30) is False
    await store.release_refresh_lease(account.id, "one")
    assert await store.try_refresh_lease(account.id, "two", 0.3) is True
    assert await store.try_refresh_lease(account.id, "one", 30) is False
    await asyncio.sleep(0.5)  # the lease lapses
    assert await store.try_refresh_lease(account.id, "one", 30) is True
    await store.save_account(account)  # saving the account ends the refresh
    assert await store.try_refresh_lease(account.id, "two", 30) is True
    assert await store.try_refresh_lease("ca_missing", "one", 30) is False


# change notifications -------------------------------------------------------------------------
async def test_commits_ring_the_accounts_bell(store: Store):
    config = make_config()
    await store.create_auth_config(config)
    account, bystander = make_account(config, "a"), make_account(config, "b")
    await store.create_account(bystander)
    with (
        store.changes.subscribe(account.id) as bell,
        store.changes.subscribe(bystander.id) as other,
    ):
        await store.create_account(account)
        assert await rings(bell)
        account = await store.save_account(account.model_copy(update={"label": "x"}))
        assert await rings(bell)
        account = await store.modify(ConnectedAccount, account.id, lambda a: a.model_copy())
        assert await rings(bell)
        link = make_link(account)
        await store.open_link(link, account, new=False, update=False)
        assert await rings(bell)
        await store.save(link.model_copy(update={"status": LinkStatus.COMPLETED}))
        assert await rings(bell)
        assert await store.try_refresh_lease(account.id, "me", 30)
        await store.release_refresh_lease(account.id, "me")
        assert await rings(bell)
        assert not await rings(other, timeout=0.05)
        assert await store.delete_account(account.id)
        assert await rings(bell)
        assert not await rings(other, timeout=0.05)
        await store.delete_auth_config(config.id, with_accounts=True)
        assert await rings(other)


async def test_watching_hears_commits_of_another_store(backend: Backend):
    here, there = await backend.open(), await backend.open()
    config = make_config()
    await here.create_auth_config(config)
    account = make_account(config)
    await here.create_account(account)
    with here.changes.subscribe(account.id) as bell:
        async with here.watching():
            await there.save_account(account.model_copy(update={"label": "elsewhere"}))
            assert await rings(bell)
    assert (await here.get_account(account.id)).label == "elsewhere"


# keys -----------------------------------------------------------------------------------------
async def test_key_rotation(backend: Backend):
    old_key, new_key = generate_key(), generate_key()
    old = Keyring.from_text(old_key)
    store = await backend.open(old)
    config = make_config()
    await store.create_auth_config(config)
    account = make_account(config)
    link = make_link(account)
    await store.open_link(link, account, new=True, update=False)

    both = Keyring.from_text(f"{new_key},{old_key}")
    rotating = await backend.open(both)
    assert await rotating.key_ids() == {old.primary_id, both.primary_id}
    assert await rotating.rotate_keys() == 3
    assert await rotating.key_ids() == {both.primary_id}
    assert await rotating.rotate_keys() == 0

    fresh = await backend.open(Keyring.from_text(new_key))
    assert await fresh.get_auth_config(config.id) == config
    assert await fresh.get_account(account.id) == account
    assert await fresh.get_link(link.id) == link
    with pytest.raises(DecryptionError, match="not configured"):
        await store.get_account(account.id)  # the old key alone no longer reads it


async def test_a_closed_store_says_so(backend: Backend):
    store = await backend.open()
    await store.close()
    await store.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        await store.get_account("ca_any")
