"""The database locked by someone else: another connection holds ``BEGIN EXCLUSIVE``.

Longer than the busy timeout, a write fails with a clear ``StoreError`` and leaves nothing
half-written (the user's retry then works); shorter, the write waits and succeeds.

Provider faults (the token endpoint answering 500, timing out, sending invalid JSON or
invalid_grant) are covered in ``tests/refresh/test_refresh.py`` and
``tests/flows/test_oauth_links.py``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import anyio
import pytest

from tests.conftest import Connect
from tests.flows.support import APP_CALLBACK, query_of, snapshot, to_callback
from tests.helpers import Browser, hidden_fields
from toolauth import AsyncToolAuth, StoreError
from toolauth._crypto import Keyring, generate_key
from toolauth._ids import new_id
from toolauth._models import ConnectedAccount, ConnectionStatus, LinkStatus, utcnow
from toolauth.store.sqlite import SQLiteStore, sqlite_path


@contextmanager
def exclusive(path: Path, *, release_after: float | None = None) -> Iterator[threading.Event]:
    """Another connection holds ``BEGIN EXCLUSIVE`` on ``path`` until the block ends, or
    until ``release_after`` seconds (released from a thread); yields "released"."""
    released = threading.Event()
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("BEGIN EXCLUSIVE")
    lock = threading.Lock()

    def release() -> None:
        with lock:
            if not released.is_set():
                db.execute("ROLLBACK")
                released.set()

    timer = threading.Timer(release_after, release) if release_after is not None else None
    if timer is not None:
        timer.start()
    try:
        yield released
    finally:
        if timer is not None:
            timer.cancel()
        release()
        db.close()


def account(user: str, config_id: str) -> ConnectedAccount:
    now = utcnow()
    return ConnectedAccount(
        id=new_id("ca"), user_id=user, toolkit="openai", auth_config_id=config_id,
        status=ConnectionStatus.ACTIVE, created_at=now, updated_at=now,
    )  # fmt: skip


def rows(path: Path) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return db.execute(
            "SELECT id, version, secret FROM connected_accounts ORDER BY id"
        ).fetchall()


async def test_locked_longer_than_the_busy_timeout_is_a_clear_error_and_writes_nothing(
    tmp_path: Path,
) -> None:
    ring = Keyring.from_text(generate_key())
    path = tmp_path / "busy.db"
    store = SQLiteStore(f"sqlite:///{path}", ring, busy_timeout=0.3)
    await store.open()
    try:
        kept = account("before", "ac_x")
        async with store._write() as db:  # the config row the account needs
            await db.execute(
                "INSERT INTO auth_configs (id, toolkit, name, type, auth_scheme, scopes, enabled,"
                " key_id, secret, version, created_at, updated_at) VALUES "
                "('ac_x', 'openai', 'n', 'use_managed_auth', 'API_KEY', '[]', 1, 'k', x'00', 1,"
                " '2020-01-01', '2020-01-01')"
            )  # fmt: skip
        await store.create_account(kept)
        before = rows(path)
        changed = kept.model_copy(update={"status": ConnectionStatus.INACTIVE})
        fresh = account("during", "ac_x")
        attempts = {
            "create": lambda: store.create_account(fresh),
            "save": lambda: store.save(changed),
            "modify": lambda: store.modify(ConnectedAccount, kept.id, lambda a: changed),
            "delete": lambda: store.delete_account(kept.id),
        }
        with exclusive(path):
            for what, attempt in attempts.items():
                started = time.monotonic()
                with pytest.raises(StoreError, match="busy or locked") as info:
                    await attempt()
                waited = time.monotonic() - started
                assert 0.25 < waited < 3, (what, waited)  # it waited its busy timeout, no more
                assert str(path) in str(info.value)
                reads = await store.get_account(kept.id)  # readers are not blocked (WAL)
                assert reads is not None and reads.version == kept.version
        assert rows(path) == before  # nothing half-written
        assert await store.get_account(fresh.id) is None
        saved = await store.modify(ConnectedAccount, kept.id, lambda a: changed)  # works again
        assert saved.status is ConnectionStatus.INACTIVE
    finally:
        await store.close()


async def test_locked_shorter_than_the_busy_timeout_waits_and_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "home" / "toolauth.db"
    async with AsyncToolAuth(home=tmp_path / "home") as ta:  # the default busy timeout, 10 s
        config = await ta.auth_configs.create("openai")
        with exclusive(path, release_after=0.4) as released:
            started = time.monotonic()
            created = await ta.connected_accounts.create(
                "waiter", config.id, credentials={"api_key": "sk-" + "w" * 40}
            )
            waited = time.monotonic() - started
            assert released.is_set()
        assert waited >= 0.35
        got = await ta.connected_accounts.get(created.id)
        assert got.credentials["api_key"].get_secret_value() == "sk-" + "w" * 40


async def _short_busy_timeout(ta: AsyncToolAuth, seconds: float) -> None:
    """The connect app's store gives up after ``seconds`` instead of 10 (the setting is
    TOOLAUTH_SQLITE_BUSY_TIMEOUT; the fixture's client is already open, so set the pragma)."""
    store = await ta.store()
    await store._fetch(f"PRAGMA busy_timeout = {int(seconds * 1000)}")


async def test_a_key_form_sent_while_the_database_is_locked_saves_nothing_and_can_be_retried(
    connect: Connect,
) -> None:
    ta = connect.ta
    await _short_busy_timeout(ta, 0.3)
    config = await ta.auth_configs.create("demo", auth_scheme="API_KEY")
    req = await ta.connected_accounts.link("locked-user", config.id, callback_url=APP_CALLBACK)
    key = connect.provider.issue_api_key("alice")
    browser = Browser(stop_at=APP_CALLBACK)
    try:
        form = hidden_fields((await browser.get(req.redirect_url)).response.text)
        before = snapshot(ta)
        with exclusive(sqlite_path(ta.settings.database_url)):
            locked = await browser.http.post(req.redirect_url, data={**form, "api_key": key})
        assert locked.status_code == 500
        assert "Nothing was saved" in locked.text
        assert locked.headers["content-security-policy"].startswith("default-src 'none'")
        assert key not in locked.text
        assert snapshot(ta) == before
        retry = await browser.post(req.redirect_url, {**form, "api_key": key})
        assert query_of(retry.url)["status"] == "success"
        assert (await req.wait_for_connection(timeout=5)).is_active
    finally:
        await browser.aclose()


async def test_a_database_locked_when_the_tokens_come_back_leaves_the_link_open(
    connect: Connect,
) -> None:
    """The worst moment: the code was exchanged, and the store cannot take the tokens. The
    account stays INITIATED without credentials, the link stays PENDING, and opening it again
    connects the user."""
    ta, provider = connect.ta, connect.provider
    await _short_busy_timeout(ta, 0.3)
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("unlucky", config.id, callback_url=APP_CALLBACK)
    browser = Browser(stop_at=(connect.base_url + "/oauth/callback", APP_CALLBACK))  # type: ignore[arg-type]
    try:
        landing = await to_callback(browser, req.redirect_url)
        provider.config.token_endpoint_fault, provider.config.fault_delay = "timeout", 0.5
        path = sqlite_path(ta.settings.database_url)
        result: dict[str, object] = {}

        async def deliver() -> None:
            result["response"] = await browser.http.get(landing.url)

        async with anyio.create_task_group() as tg:
            tg.start_soon(deliver)
            while provider.stats.token_requests["authorization_code"] == 0:  # noqa: ASYNC110
                await anyio.sleep(0.005)
            with exclusive(path, release_after=1.5):
                await anyio.sleep(1.0)  # the tokens come back while it is locked
        provider.config.token_endpoint_fault = None
        response = result["response"]
        assert response.status_code == 500 and "Nothing was saved" in response.text  # type: ignore[attr-defined]
        account = await ta.connected_accounts.get(req.connected_account_id)
        assert account.status is ConnectionStatus.INITIATED and not account.credentials
        link = await (await ta.store()).get_link(req.link_id)
        assert link.status is LinkStatus.PENDING and link.is_usable()

        browser.stop_at = APP_CALLBACK
        retry = await browser.oauth_consent(req.redirect_url)
        assert query_of(retry.url)["status"] == "success"
        assert (await req.wait_for_connection(timeout=5)).is_active
        assert provider.stats.token_requests["authorization_code"] == 2
    finally:
        await browser.aclose()
