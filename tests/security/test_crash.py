"""The connect server killed with SIGKILL in the middle of a burst of callbacks.

``toolauth serve`` runs in a child process on a fixed loopback port and the shared SQLite
file; the demo provider (auto consent) runs here, behind a gate on its token endpoint: the
first exchanges pass, later ones are held until the kill, so callbacks are in flight when it
lands. Fifty users walk their links at once; part-way, the server is killed. Every account
must then be ACTIVE with working tokens, or FAILED, or INITIATED with its link still usable —
and after a restart on the same port and database, every INITIATED one connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, make_settings
from tests.flows.support import APP_CALLBACK, query_of
from tests.helpers import Browser, free_port
from toolauth import AsyncToolAuth, ConnectionStatus
from toolauth._models import LinkStatus
from toolauth.connect.serving import serve_app
from toolauth.demo.provider import DemoProvider, ProviderConfig
from toolauth.store.sqlite import sqlite_path

USERS = 50
KILL_AFTER_ACTIVE = 15
ROOT = Path(__file__).resolve().parents[2]


class TokenGate:
    """The provider's app with its token endpoint gated: the first ``let_through`` exchanges
    pass; later ones wait (``held`` is set) until ``opened`` is. A held exchange belongs to a
    callback that has spent its state and saved nothing yet: killed there, it is in flight."""

    def __init__(self, app: Any, let_through: int) -> None:
        self.app = app
        self.let_through = let_through
        self.held = asyncio.Event()
        self.opened = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/oauth/token":
            if self.let_through > 0:
                self.let_through -= 1
            else:
                self.held.set()
                await self.opened.wait()
        await self.app(scope, receive, send)


async def start_server(env: dict[str, str], port: int, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "toolauth", "serve", "--host", "127.0.0.1", "--port", str(port),
            env={**os.environ, **env, "PYTHONPATH": str(ROOT / "src")}, cwd=ROOT,
            stdout=out, stderr=out,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while True:
            assert proc.returncode is None, log.read_text()[-2000:]
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return proc
            assert time.monotonic() < deadline, "the connect server did not start"
            await anyio.sleep(0.02)  # a poll: the other process has no event to wait on


async def walk(link_url: str) -> str:
    """One user's browser: link → provider (auto consent) → our callback → the app."""
    browser = Browser(stop_at=APP_CALLBACK)
    try:
        landing = await browser.get(link_url)
        return query_of(landing.url).get("status", f"http {landing.response.status_code}")
    except httpx.HTTPError as exc:
        return type(exc).__name__
    finally:
        await browser.aclose()


@pytest.mark.slow
async def test_sigkill_mid_burst_loses_nothing_and_every_link_finishes_after_restart(
    home: Path, tmp_path: Path
) -> None:
    provider = DemoProvider(ProviderConfig(auto_consent=True))
    gate = TokenGate(provider.app, let_through=KILL_AFTER_ACTIVE)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    async with serve_app(gate) as provider_url:
        env = {
            "TOOLAUTH_HOME": str(home), "TOOLAUTH_BASE_URL": base_url,
            "TOOLAUTH_DEMO_PROVIDER_URL": provider_url,
            "TOOLAUTH_DEMO_CLIENT_ID": DEMO_CLIENT_ID,
            "TOOLAUTH_DEMO_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        }  # fmt: skip
        provider.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [f"{base_url}/oauth/callback"])
        async with AsyncToolAuth(settings=make_settings(home, **env)) as ta:
            config = await ta.auth_configs.create("demo")
            requests = [
                await ta.connected_accounts.link(
                    f"user-{n:02}", config.id, callback_url=APP_CALLBACK
                )
                for n in range(USERS)
            ]
            server = await start_server(env, port, log)
            try:
                outcomes: dict[str, str] = {}
                connected = asyncio.Event()  # KILL_AFTER_ACTIVE users are back, connected

                async def user(n: int) -> None:
                    await anyio.sleep(n * 0.02)  # a burst spread over one second
                    outcomes[requests[n].id] = await walk(requests[n].redirect_url)
                    if sum(o == "success" for o in outcomes.values()) >= KILL_AFTER_ACTIVE:
                        connected.set()

                async with anyio.create_task_group() as tg:
                    for n in range(USERS):
                        tg.start_soon(user, n)
                    with anyio.fail_after(60):
                        await connected.wait()
                        await gate.held.wait()
                    server.send_signal(signal.SIGKILL)
                    assert await server.wait() == -signal.SIGKILL
                    gate.opened.set()  # the held exchanges answer a dead server

                at_kill = Counter(a.status for a in await ta.connected_accounts.list())
                assert at_kill[ConnectionStatus.ACTIVE] >= KILL_AFTER_ACTIVE
                assert at_kill[ConnectionStatus.INITIATED] >= 1, at_kill  # killed mid-burst
                assert sum(o == "success" for o in outcomes.values()) < USERS
                store = await ta.store()
                in_flight = 0
                for req in requests:
                    account = await ta.connected_accounts.get(req.connected_account_id)
                    link = await store.get_link(req.link_id)
                    if account.status is ConnectionStatus.ACTIVE:
                        assert link.status is LinkStatus.COMPLETED
                        assert {"access_token", "refresh_token"} <= set(account.credentials)
                    elif account.status is ConnectionStatus.INITIATED:
                        assert not account.credentials
                        assert link.status is LinkStatus.PENDING and link.is_usable(), link
                        in_flight += (
                            link.state_hash is None and "state_secret" in link.secrets
                        )  # callback under way
                    else:
                        assert account.status is ConnectionStatus.FAILED
                        assert link.status is LinkStatus.FAILED

                assert in_flight >= 1  # some callbacks died between spending the state and saving
                server = await start_server(env, port, log)  # same port, same database
                unfinished = [
                    r for r in requests
                    if not (await ta.connected_accounts.get(r.connected_account_id)).is_active
                ]  # fmt: skip
                results = await asyncio.gather(*(walk(r.redirect_url) for r in unfinished))
                assert results == ["success"] * len(unfinished), results
            finally:
                if server.returncode is None:
                    server.send_signal(signal.SIGKILL)
                    await server.wait()

            accounts = await ta.connected_accounts.list()
            assert len(accounts) == USERS
            assert sorted(a.user_id for a in accounts) == [f"user-{n:02}" for n in range(USERS)]
            for account in accounts:  # every row decrypts, and every token works
                assert account.is_active
                async with await ta.connected_accounts.http_client(account.id) as client:
                    assert (await client.get("/me")).status_code == 200
            for req in requests:
                assert (await store.get_link(req.link_id)).status is LinkStatus.COMPLETED
            for listed in await store.list_auth_configs():
                assert listed.id == config.id
    with closing(sqlite3.connect(sqlite_path(ta.settings.database_url))) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM connection_links").fetchone() == (USERS,)
    print(f"at the kill: {dict(at_kill)}, callbacks in flight: {in_flight}")
