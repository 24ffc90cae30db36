"""Several instances behind a load balancer, sharing one PostgreSQL schema.

Two app-server processes (``tests.children`` role ``instance``: the library plus its connect
app, as an app that mounts it would run) are configured identically, as a real deployment
would be: the same database URL and encryption key, and ``TOOLAUTH_BASE_URL`` set to the
public URL, which is a small loopback load balancer in this process. Nothing is sticky: the
balancer sends ``/link/*`` to A and ``/oauth/callback`` to B, so the flow starts on one
instance and must finish on the other (the state cookie A set comes back to B; B finds the
link and its PKCE verifier in the database). A waiter in a third process wakes through
LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.children import Child
from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, PgSchema, postgres_schema
from tests.helpers import Browser
from toolauth import AsyncToolAuth, ConnectionStatus, Settings
from toolauth._crypto import generate_key
from toolauth.connect.serving import serve_app
from toolauth.demo.provider import DemoProvider

# Hop-by-hop headers, and those the balancer sets itself.
_DROPPED = {
    b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"host",
    b"content-length", b"content-encoding", b"proxy-connection", b"trailer",
}  # fmt: skip


@dataclass
class Hop:
    path: str
    instance: str
    status: int
    started: float
    ended: float


class LoadBalancer:
    """A reverse proxy by path prefix: the first matching route's instance gets the request,
    with X-Forwarded-* headers; cookies and redirects pass through untouched."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, str, str]] = []  # (path prefix, instance name, its URL)
        self.hops: list[Hop] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        name, upstream = next((n, u) for p, n, u in self.routes if scope["path"].startswith(p))
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _DROPPED]
        headers += [
            (b"x-forwarded-for", scope["client"][0].encode()),
            (b"x-forwarded-proto", b"http"),
            (b"x-forwarded-host", host.encode("latin-1")),
        ]
        target = upstream + scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        started = time.monotonic()
        # A client per request: the balancer keeps no cookie jar of its own.
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.request(scope["method"], target, headers=headers, content=body)
        self.hops.append(Hop(scope["path"], name, response.status_code, started, time.monotonic()))
        out = [(k, v) for k, v in response.headers.raw if k.lower() not in _DROPPED]
        out.append((b"content-length", str(len(response.content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        await send({"type": "http.response.body", "body": response.content})


@pytest.fixture
async def pg() -> AsyncIterator[PgSchema]:
    async with postgres_schema() as schema:
        yield schema


@pytest.mark.slow
async def test_a_link_started_on_one_instance_finishes_on_another_and_wakes_a_third_process(
    pg: PgSchema, tmp_path: Path
) -> None:
    demo = DemoProvider()
    balancer = LoadBalancer()
    async with serve_app(demo.app) as provider_url, serve_app(balancer) as public_url:
        env = {  # every process: the same database, key and public URL
            "TOOLAUTH_HOME": str(tmp_path / "unused-home"),
            "TOOLAUTH_DATABASE_URL": pg.url,
            "TOOLAUTH_ENCRYPTION_KEY": generate_key(),
            "TOOLAUTH_BASE_URL": public_url,
            "TOOLAUTH_DEMO_PROVIDER_URL": provider_url,
            "TOOLAUTH_DEMO_CLIENT_ID": DEMO_CLIENT_ID,
            "TOOLAUTH_DEMO_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        }
        # The one redirect URI to register with the provider: the public URL's callback.
        demo.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [f"{public_url}/oauth/callback"])
        a, b, waiter = [await Child.start(role, env) for role in ("instance", "instance", "wait")]
        try:
            started = await asyncio.gather(a.read(), b.read(), waiter.read())
            (a_url, a_pid), (b_url, b_pid) = [(s["url"], s["pid"]) for s in started[:2]]
            assert a_pid != b_pid and os.getpid() not in (a_pid, b_pid)
            balancer.routes = [("/link/", "A", a_url), ("/oauth/callback", "B", b_url)]

            await a.send(do="auth_config", toolkit="demo")
            config_id = (await a.read())["id"]
            await a.send(do="link", user_id="alice-user", auth_config_id=config_id)
            link = await a.read()
            assert link["redirect_url"] == f"{public_url}/link/{link['link_id']}"
            account_id = link["connected_account_id"]

            await waiter.send(account_id=account_id, timeout=20)
            assert "waiting" in await waiter.read()  # it is inside wait_for_connection
            browser = Browser()
            try:
                landing = await browser.oauth_consent(link["redirect_url"])
            finally:
                await browser.aclose()
            woke = await waiter.read(timeout=20)
        finally:
            for child in (a, b, waiter):
                await child.close()

        assert landing.response.status_code == 200, landing.response.text
        assert "connected" in landing.response.text.lower()
        assert [(h.path.split("/")[1], h.instance, h.status) for h in balancer.hops] == [
            ("link", "A", 303),
            ("oauth", "B", 200),
        ]
        callback = balancer.hops[1]
        assert woke.get("status") == "ACTIVE", woke
        # Woken by B's commit (not before the callback arrived), well within 2 s of it.
        assert callback.started < woke["t"] < callback.ended + 2.0, (callback, woke)

        async with AsyncToolAuth(settings=Settings.from_env(env)) as ta:
            account = await ta.connected_accounts.get(account_id)
            assert account.status is ConnectionStatus.ACTIVE
            async with await ta.connected_accounts.http_client(account_id) as client:
                me = await client.get("/me")
            assert me.json()["preferred_username"] == "alice"
            assert demo.stats.token_requests["authorization_code"] == 1
