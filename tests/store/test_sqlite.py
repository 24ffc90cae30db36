"""The SQLite store on real files: migrations, transactions, encryption at rest, processes."""

import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from toolauth import AsyncToolAuth, ConflictError, DecryptionError, MigrationError
from toolauth._crypto import Keyring, generate_key
from toolauth._models import ConnectionLink, LinkStatus, utcnow
from toolauth.store import AccountFilter, open_store
from toolauth.store.base import COLUMNS, TABLES
from toolauth.store.migrations import load_migrations
from toolauth.store.sqlite import SQLiteStore

from .legacy import legacy_row
from .test_contract import make_account, make_config, make_link

KEY = "sk-" + "S" * 40  # a sentinel API key


def _url(tmp_path):
    return f"sqlite:///{tmp_path / 'db.sqlite'}"


async def test_migrates_from_empty_and_reopens(tmp_path):
    ring = Keyring.from_text(generate_key())
    store = SQLiteStore(_url(tmp_path), ring)
    await store.open()
    latest = len(load_migrations("sqlite"))
    assert await store.schema_version() == latest
    await store.close()
    again = SQLiteStore(_url(tmp_path), ring)
    await again.open()
    assert await again.migrate() == []  # nothing pending
    assert await again.schema_version() == latest
    await again.close()
    with sqlite3.connect(tmp_path / "db.sqlite") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"auth_configs", "connected_accounts", "schema_migrations"} <= tables
    assert "connected_accounts_by_user" in indexes


async def test_newer_schema_is_refused(tmp_path):
    ring = Keyring.from_text(generate_key())
    store = SQLiteStore(_url(tmp_path), ring)
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "db.sqlite") as raw:
        raw.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'now')")
    with pytest.raises(MigrationError, match="Upgrade toolauth"):
        await SQLiteStore(_url(tmp_path), ring).open()


# Columns that schema 2 did not have yet (added by schemas 4, 5, 6 and 9).
_LATER = {
    "is_default", "shared", "issued_at", "confirm_hash", "aad_version", "identity", "alias",
    "allow_identity_change",
}  # fmt: skip
_LATER_LINK = {"scopes"}  # links only: the other tables had scopes from the start


def _old_columns(model) -> list[str]:
    later = _LATER | (_LATER_LINK if isinstance(model, ConnectionLink) else set())
    return [c for c in COLUMNS[type(model)] if c not in later]


def _old_row(ring: Keyring, model) -> list:
    """``model``'s row as schema 2 stored it: times as ``datetime.isoformat()`` text, the
    secrets under version-1 associated data, a link under its clear id."""
    row = legacy_row(ring, model)
    return [
        row[c].isoformat() if isinstance(row[c], datetime) else row[c] for c in _old_columns(model)
    ]


async def test_an_old_database_gets_fixed_width_times(tmp_path):
    """Schema 3 rewrites schema 2's isoformat() times as fixed-width UTC text, microseconds
    kept, so text order is time order; the rows read back as they were written."""
    ring = Keyring.from_text(generate_key())
    east = timezone(timedelta(hours=5))
    start = utcnow().replace(microsecond=0)
    config = make_config(created_at=start - timedelta(days=1))
    early = make_account(config, "early", created_at=start.astimezone(east))  # reads later
    late = make_account(config, "late", created_at=start + timedelta(microseconds=999_999))
    stale = make_link(early, "k", expires_at=(utcnow() - timedelta(minutes=1)).astimezone(east))
    with sqlite3.connect(tmp_path / "db.sqlite") as raw:
        raw.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at TEXT NOT NULL)"
        )
        for migration in load_migrations("sqlite")[:2]:
            for statement in migration.statements:
                raw.execute(statement)
            raw.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (migration.version, migration.name, start.isoformat()),
            )
        raw.execute(
            "INSERT INTO encryption_keys VALUES (?, ?)", (ring.primary_id, start.isoformat())
        )
        for model in (config, early, late, stale):
            columns = _old_columns(model)
            raw.execute(
                f"INSERT INTO {TABLES[type(model)]} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})",
                _old_row(ring, model),
            )
        raw.execute(
            "UPDATE connected_accounts SET refresh_lease_until = ?, refresh_lease_owner = 'gone' "
            "WHERE id = ?", ((utcnow() - timedelta(minutes=1)).astimezone(east).isoformat(), late.id)
        )  # fmt: skip

    store = SQLiteStore(_url(tmp_path), ring)
    await store.open()
    try:
        assert await store.schema_version() == len(load_migrations("sqlite"))
        assert await store.get_account(early.id) == early
        assert await store.get_link(stale.id) == stale
        listed = await store.list_accounts(AccountFilter())
        assert [a.id for a in listed] == [late.id, early.id]
        assert await store.try_refresh_lease(late.id, "me", 30)  # the old lease has lapsed
        fresh = make_link(early, "k")
        assert (await store.open_link(fresh, early, new=False, update=False))[1] is True
        assert (await store.get_link(stale.id)).status is LinkStatus.EXPIRED
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "db.sqlite") as raw:
        times = raw.execute(
            "SELECT created_at, updated_at FROM connected_accounts UNION ALL "
            "SELECT created_at, applied_at FROM encryption_keys, schema_migrations"
        ).fetchall()
        assert (late.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),) * 2 in times
    assert all(len(t) == 27 and t.endswith("Z") for pair in times for t in pair), times


async def test_account_lookup_uses_the_user_index(ta):
    store = await ta.store()
    rows = await store._fetch(
        "EXPLAIN QUERY PLAN SELECT * FROM connected_accounts "
        "WHERE user_id = ? AND toolkit = ? AND status = ?", ("u", "github", "ACTIVE")
    )  # fmt: skip
    assert any("connected_accounts_by_user" in str(r["detail"]) for r in rows)


async def test_stale_write_is_a_conflict_and_changes_nothing(ta):
    config = await ta.auth_configs.create("openai")
    account = await ta.connected_accounts.create("u", config.id, credentials={"api_key": KEY})
    store = await ta.store()
    first = await store.save_account(account.model_copy(update={"label": "first"}))
    with pytest.raises(ConflictError, match="read it again"):
        await store.save_account(account.model_copy(update={"label": "stale"}))
    assert (await store.get_account(account.id)).label == "first"
    assert first.version == account.version + 1


async def test_failed_transaction_rolls_back(ta):
    config = await ta.auth_configs.create("openai")
    store = await ta.store()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with store._write() as db:
            await db.execute("UPDATE auth_configs SET name = 'half' WHERE id = ?", (config.id,))
            raise Boom
    assert (await ta.auth_configs.get(config.id)).name == config.name


async def test_secrets_are_not_in_any_file_of_the_home(ta, home):
    config = await ta.auth_configs.create(
        "github", type="custom",
        credentials={"client_id": "cid", "client_secret": "CLIENT-SECRET-SENTINEL"},
    )  # fmt: skip
    await ta.connected_accounts.create(
        "u", config.id,
        credentials={"access_token": "ACCESS-SENTINEL", "refresh_token": "REFRESH-SENTINEL"},
    )  # fmt: skip
    basic = await ta.auth_configs.create("twilio")
    await ta.connected_accounts.create(
        "u", basic.id,
        credentials={"account_sid": "AC" + "0" * 32, "auth_token": "0123456789abcdef0123456789abcdef"},
    )  # fmt: skip
    await ta.aclose()  # flush the WAL into the main file as well
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "toolauth.db" for p in files)
    for path in files:
        raw = path.read_bytes()
        for sentinel in (b"CLIENT-SECRET-SENTINEL", b"ACCESS-SENTINEL", b"REFRESH-SENTINEL",
                         b"0123456789abcdef0123456789abcdef"):  # fmt: skip
            assert sentinel not in raw, (path, sentinel)


async def test_tampered_row_gives_a_clear_error(ta, home):
    config = await ta.auth_configs.create("openai")
    a = await ta.connected_accounts.create("u", config.id, credentials={"api_key": KEY})
    b = await ta.connected_accounts.create("v", config.id, credentials={"api_key": KEY})
    store = await ta.store()
    async with store._write() as db:  # copy b's ciphertext into a's row
        await db.execute(
            "UPDATE connected_accounts SET secret = (SELECT secret FROM connected_accounts "
            "WHERE id = ?) WHERE id = ?", (b.id, a.id)
        )  # fmt: skip
    with pytest.raises(DecryptionError, match=a.id) as info:
        await ta.connected_accounts.get(a.id)
    assert KEY not in str(info.value)
    assert (await ta.connected_accounts.get(b.id)).is_active


async def test_list_uses_the_filter_object(ta):
    config = await ta.auth_configs.create("openai")
    for user in ("a", "b", "a"):
        await ta.connected_accounts.create(user, config.id, credentials={"api_key": KEY})
    store = await ta.store()
    assert len(await store.list_accounts(AccountFilter(user_id="a"))) == 2
    assert len(await store.list_accounts(AccountFilter(limit=1))) == 1


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from toolauth import AsyncToolAuth, Settings

    async def main(home, config_id, tag, n):
        settings = Settings.from_env({"TOOLAUTH_HOME": home})
        async with AsyncToolAuth(settings=settings) as ta:
            for i in range(n):
                await ta.connected_accounts.create(
                    f"{tag}-{i}", config_id, credentials={"api_key": "sk-" + "x" * 30})
                await ta.auth_configs.update(config_id, name=f"{tag}-{i}")

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    """
)


async def test_two_processes_writing_at_once_lose_nothing(settings, home):
    async with AsyncToolAuth(settings=settings) as ta:
        config = await ta.auth_configs.create("openai")
    n = 60
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(home), config.id, tag, str(n)])
        for tag in ("p1", "p2")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    async with AsyncToolAuth(settings=settings) as ta:
        accounts = await ta.connected_accounts.list(auth_config_id=config.id)
        assert sorted(a.user_id for a in accounts) == sorted(
            f"{t}-{i}" for t in ("p1", "p2") for i in range(n)
        )
        assert all(
            a.credentials["api_key"].get_secret_value() == "sk-" + "x" * 30 for a in accounts
        )
        final = await ta.auth_configs.get(config.id)
        assert final.version == 1 + 2 * n  # every update applied, none overwritten


def test_display_url_masks_passwords_only():
    from toolauth.store import display_url

    assert display_url("sqlite:///a/b.db") == "sqlite:///a/b.db"
    assert display_url("postgresql://u:pw@h:5432/db?sslmode=require") == (
        "postgresql://u:***@h:5432/db?sslmode=require"
    )
    assert display_url("postgresql://h/db?user=u&password=pw") == (
        "postgresql://h/db?user=u&password=***"
    )


async def test_open_store_passes_the_knobs_to_the_backend(tmp_path):
    store = await open_store(
        _url(tmp_path), Keyring.from_text(generate_key()), busy_timeout=0.5, watch_interval=0.02
    )
    try:
        assert (store.busy_timeout, store.watch_interval) == (0.5, 0.02)
        rows = await store._fetch("PRAGMA busy_timeout")
        assert rows[0]["timeout"] == 500
    finally:
        await store.close()


async def test_a_write_abandoned_mid_transaction_is_undone_by_the_next_one(tmp_path):
    """A task cancelled while its write ran on the connection's thread can leave a transaction
    open; the next write rolls it back (nothing of it commits) and goes on."""
    store = SQLiteStore(_url(tmp_path), Keyring.from_text(generate_key()))
    await store.open()
    try:
        config = make_config()
        db = store._conn
        await db.execute("BEGIN IMMEDIATE")  # what the cancelled write left behind
        await db.execute("INSERT INTO encryption_keys (key_id, created_at) VALUES ('ghost', 'x')")
        await store.create_auth_config(config)
        assert await store.get_auth_config(config.id) == config
        rows = await store._fetch("SELECT key_id FROM encryption_keys WHERE key_id = 'ghost'")
        assert rows == []
    finally:
        await store.close()
