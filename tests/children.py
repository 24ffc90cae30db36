"""Other processes on the same store, for the cross-process tests.

A child runs ``python -m tests.children <role> <settings as JSON>`` from the repository root and
talks one JSON object per line on stdin/stdout. The settings are the child's whole TOOLAUTH_*
environment: the parent's TOOLAUTH_HOME (SQLite file and key file), or its
TOOLAUTH_DATABASE_URL and TOOLAUTH_ENCRYPTION_KEY (PostgreSQL) — ``Connect.env`` carries
either. Times are ``time.monotonic()``, which on Linux is CLOCK_MONOTONIC: one clock for every
process on the machine.

Roles:
    wait     prints {"ready": t}, reads {"account_id"}, waits for it: prints {"waiting": t}
             once the wait is registered with its store, then {"status", "t"} or
             {"error", "message", "t"}.
    complete serves its own connect app, prints {"url"}, reads {"link_id"}, walks the link
             through the demo provider's login and consent; prints {"status_code", "t"}.
    calls    prints {"ready"}, reads {"account_id", "n", "path"}, makes n concurrent calls
             through ``http_client``; prints {"ok", "failed", "errors", "refresh_requests"}.
    instance one app server: serves its connect app on a free loopback port (links point at
             TOOLAUTH_BASE_URL, the public URL), prints {"url", "pid"}; then answers orders:
             {"do": "auth_config", "toolkit"} -> {"id"}; {"do": "link", "user_id",
             "auth_config_id"} -> {"link_id", "redirect_url", "connected_account_id"}.
    worker   serves nothing; prints {"ready"}, then answers orders: {"do": "discover", "slug",
             "issuer", "api_base_url", "replace"} -> {"token_url"}; {"do": "link", "user_id",
             "toolkit"} -> {"link_id", "connected_account_id"}; {"do": "refresh",
             "account_id"} -> {"status"}; {"do": "tool", "user_id", "toolkit"} -> {"result"}
             (the toolkit's GET_ME tool, ``GET /me`` below its api_base_url, through
             ``session.tools()``); an error -> {"error", "message"}.
    keeper   runs ``ta.keeper().run()`` (refresh, probe, deliver webhooks) and prints
             {"ready", "pid"}; it runs until killed or its stdin closes.
    register reads {"mcp_url", "auth_config_id"}, adds the MCP server as toolkit ``notes``,
             serves its connect app (links point at TOOLAUTH_BASE_URL), prints {"ready"};
             reads {"go"}, makes a link and opens it on its own connect app (which registers
             the OAuth client, RFC 7591, if nobody has); prints {"status_code", "client_id"}
             (the client id the redirect to the authorization server carries).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class Child:
    """The parent's handle on one child process."""

    def __init__(self, proc: asyncio.subprocess.Process, role: str) -> None:
        self.proc = proc
        self.role = role

    @classmethod
    async def start(cls, role: str, env: Mapping[str, str]) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.children", role, json.dumps(dict(env)),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=ROOT,
            # This checkout's toolauth (src/), whichever one the environment has installed.
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
        )  # fmt: skip
        return cls(proc, role)

    async def read(self, timeout: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            err = b""
            if self.proc.stderr is not None:
                err = await asyncio.wait_for(self.proc.stderr.read(), timeout)
            raise AssertionError(f"child {self.role} ended early:\n{err.decode(errors='replace')}")
        return json.loads(line)

    async def send(self, **message: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()

    async def close(self) -> None:
        if self.proc.returncode is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# -- the child side ---------------------------------------------------------------------------


def _say(**message: Any) -> None:
    print(json.dumps(message), flush=True)


async def _hear() -> dict[str, Any]:
    line = await asyncio.to_thread(sys.stdin.readline)
    if not line:
        raise SystemExit(0)
    return json.loads(line)


async def _wait(ta: Any) -> None:
    from tests.helpers import until_waiting
    from toolauth import ToolAuthError

    _say(ready=time.monotonic())
    order = await _hear()
    waiting = asyncio.create_task(
        ta.connected_accounts.wait_for_connection(
            order["account_id"], timeout=order.get("timeout", 10.0)
        )
    )
    registered = asyncio.create_task(until_waiting(await ta.store()))
    await asyncio.wait({waiting, registered}, return_when=asyncio.FIRST_COMPLETED)
    registered.cancel()
    _say(waiting=time.monotonic())
    try:
        account = await waiting
    except ToolAuthError as exc:
        _say(error=type(exc).__name__, message=str(exc), t=time.monotonic())
    else:
        _say(status=str(account.status), t=time.monotonic())


async def _complete(ta: Any, provider_user: str) -> None:
    from tests.helpers import Browser

    async with ta.serve(port=0) as url:
        _say(url=url)
        order = await _hear()
        browser = Browser()
        try:
            landing = await browser.oauth_consent(
                f"{url}/link/{order['link_id']}", username=provider_user
            )
        finally:
            await browser.aclose()
        _say(status_code=landing.response.status_code, t=time.monotonic())
        await _hear()  # stay up until the parent is done


async def _calls(ta: Any) -> None:
    _say(ready=time.monotonic())
    order = await _hear()
    client = await ta.connected_accounts.http_client(order["account_id"])
    async with client:
        results = await asyncio.gather(
            *(client.get(order.get("path", "/me")) for _ in range(order["n"])),
            return_exceptions=True,
        )
    ok = sum(1 for r in results if not isinstance(r, BaseException) and r.status_code == 200)
    errors = sorted(
        {
            f"{type(r).__name__}: {r}" if isinstance(r, BaseException) else f"HTTP {r.status_code}"
            for r in results
            if isinstance(r, BaseException) or r.status_code != 200
        }
    )
    _say(
        ok=ok, failed=len(results) - ok, errors=errors, refresh_requests=ta.tokens.refresh_requests
    )


async def _instance(ta: Any) -> None:
    async with ta.serve(port=0) as url:
        _say(url=url, pid=os.getpid())
        while True:
            order = await _hear()
            if order["do"] == "auth_config":
                config = await ta.auth_configs.create(order["toolkit"])
                _say(id=config.id)
            elif order["do"] == "link":
                req = await ta.connected_accounts.link(order["user_id"], order["auth_config_id"])
                _say(
                    link_id=req.link_id,
                    redirect_url=req.redirect_url,
                    connected_account_id=req.connected_account_id,
                )
            else:
                _say(error=f"unknown order {order!r}")


async def _worker(ta: Any) -> None:
    from toolauth import ToolAuthError
    from toolauth.tools import toolkit_tool

    _say(ready=time.monotonic())
    while True:
        order = await _hear()
        try:
            if order["do"] == "discover":
                definition = await ta.toolkits.discover(
                    order["slug"], issuer=order["issuer"], api_base_url=order["api_base_url"],
                    scopes=["profile"], replace=order.get("replace", False),
                )  # fmt: skip
                _say(token_url=definition.oauth2().token_url)
            elif order["do"] == "link":
                config = await ta.auth_configs.default(order["toolkit"])
                req = await ta.connected_accounts.link(order["user_id"], config.id)
                _say(link_id=req.link_id, connected_account_id=req.connected_account_id)
            elif order["do"] == "refresh":
                account = await ta.connected_accounts.refresh(order["account_id"])
                _say(status=str(account.status))
            elif order["do"] == "tool":

                async def get_me(client: Any) -> Any:
                    """Who the user is."""
                    response = await client.get("/me")
                    return response.json()

                spec = toolkit_tool(order["toolkit"])(get_me)
                session = ta.create(order["user_id"], toolkits=[order["toolkit"]])
                tools = {t.name: t for t in session.tools(extra=[spec], meta_tools=False)}
                _say(result=await tools[spec.name].ainvoke({}))
            else:
                _say(error="unknown", message=f"unknown order {order!r}")
        except ToolAuthError as exc:
            _say(error=type(exc).__name__, message=str(exc))


async def _keeper(ta: Any) -> None:
    running = asyncio.create_task(ta.keeper().run())
    await ta.store()
    _say(ready=time.monotonic(), pid=os.getpid())
    try:
        await _hear()
    finally:
        running.cancel()


async def _register(ta: Any) -> None:
    from urllib.parse import parse_qs, urlsplit

    import httpx

    order = await _hear()
    await ta.toolkits.add_mcp("notes", url=order["mcp_url"], name="Notes")
    async with ta.serve(port=0) as url, httpx.AsyncClient(timeout=30) as http:
        _say(ready=True)
        await _hear()
        req = await ta.connected_accounts.link(f"user-{os.getpid()}", order["auth_config_id"])
        response = await http.get(f"{url}/link/{req.link_id}")
        query = parse_qs(urlsplit(response.headers.get("location", "")).query)
        _say(status_code=response.status_code, client_id=query.get("client_id", [""])[0])


async def _main(role: str, environ: dict[str, str]) -> None:
    from toolauth import AsyncToolAuth, Settings

    async with AsyncToolAuth(settings=Settings.from_env(environ)) as ta:
        if role == "wait":
            await _wait(ta)
        elif role == "complete":
            await _complete(ta, environ.get("PROVIDER_USER", "alice"))
        elif role == "calls":
            await _calls(ta)
        elif role == "instance":
            await _instance(ta)
        elif role == "worker":
            await _worker(ta)
        elif role == "keeper":
            await _keeper(ta)
        elif role == "register":
            await _register(ta)
        else:
            raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], json.loads(sys.argv[2])))
