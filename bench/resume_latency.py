"""How long after the callback commits the account does ``wait_for_connection`` return?

Every run walks a real connect link: the connect app and the demo provider (with
``auto_consent``) on loopback, the real OAuth callback (code exchange, then one store
transaction). The clock starts when the callback's ``store.save(...)`` of the completed link
and ACTIVE account returns, and stops when the waiter has the ACTIVE account in hand.

Waiters measured:
    same process    ``req.wait_for_connection()`` next to the connect app (in-process push)
    other process   a second Python process on the same store: on SQLite its watcher sees
                    ``PRAGMA data_version`` move; on PostgreSQL its LISTEN connection hears
                    the commit's NOTIFY
    1 s polling     a reference waiter that reads the account and link once a second

Times across processes use ``time.monotonic()`` (CLOCK_MONOTONIC, one clock for the machine
on Linux).

    .venv/bin/python bench/resume_latency.py [--runs 200]
    .venv/bin/python bench/resume_latency.py --backend postgres [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from backends import CLIENT_ID, CLIENT_SECRET, add_backend_arguments, environ, store_env

from toolauth import AsyncToolAuth, Settings
from toolauth._models import ConnectionLink, LinkStatus
from toolauth.connect.serving import serve_app
from toolauth.demo.provider import DemoProvider, ProviderConfig

# -- the waiter in another process -------------------------------------------------------------


async def child(env: dict[str, str]) -> None:
    """Wait for each account id read from stdin; print when each wait returned."""
    async with AsyncToolAuth(settings=Settings.from_env(env)) as ta:
        await ta.store()
        print(json.dumps({"ready": True}), flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            account_id = json.loads(line)["account_id"]
            print(json.dumps({"waiting": account_id}), flush=True)
            account = await ta.connected_accounts.wait_for_connection(account_id, timeout=30)
            woke = time.monotonic()
            print(json.dumps({"t": woke, "status": str(account.status)}), flush=True)


# -- the parent ---------------------------------------------------------------------------------


class Bench:
    def __init__(self, ta: AsyncToolAuth, config_id: str) -> None:
        self.ta = ta
        self.config_id = config_id
        self.committed: dict[str, float] = {}  # link id -> when the callback's save returned
        self.n = 0
        self.browser = httpx.AsyncClient(follow_redirects=True, timeout=10)

    async def instrument(self) -> None:
        store = await self.ta.store()
        save = store.save

        async def timed_save(*models: Any) -> list[Any]:
            saved = await save(*models)
            now = time.monotonic()
            for model in saved:
                if isinstance(model, ConnectionLink) and model.status is LinkStatus.COMPLETED:
                    self.committed[model.id] = now
            return saved

        store.save = timed_save  # type: ignore[method-assign]

    async def link(self) -> Any:
        self.n += 1
        return await self.ta.connected_accounts.link(f"user-{self.n}", self.config_id)

    async def complete(self, url: str) -> None:
        """The user's browser: link -> provider (auto consent) -> callback -> done page."""
        self.browser.cookies.clear()
        response = await self.browser.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"the flow ended with HTTP {response.status_code}")


def summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return (
        f"{name:<15} runs={len(ms):<4} p50={p50:8.2f} ms  p99={p99:8.2f} ms  "
        f"min={ms[0]:7.2f} ms  max={ms[-1]:8.2f} ms  below 0: {sum(m < 0 for m in ms)}"
    )


async def same_process(bench: Bench, runs: int) -> list[float]:
    async def wait(req: Any) -> float:
        await req.wait_for_connection(timeout=30)
        return time.monotonic()

    samples = []
    for _ in range(runs):
        req = await bench.link()
        waiter = asyncio.create_task(wait(req))
        await asyncio.sleep(0.002)  # the waiter is subscribed
        await bench.complete(req.redirect_url)
        samples.append(await waiter - bench.committed[req.link_id])
    return samples


async def other_process(bench: Bench, runs: int, env: dict[str, str]) -> list[float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", json.dumps(env),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    assert proc.stdout is not None

    async def read() -> dict[str, Any]:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)  # type: ignore[union-attr]
        if not line:
            raise RuntimeError("the waiting process ended")
        return json.loads(line)

    samples = []
    try:
        await read()  # ready
        for _ in range(runs):
            req = await bench.link()
            proc.stdin.write(json.dumps({"account_id": req.connected_account_id}).encode() + b"\n")
            await proc.stdin.drain()
            await read()  # waiting
            await asyncio.sleep(0.02)  # inside wait_for_connection by now
            await bench.complete(req.redirect_url)
            woke = await read()
            assert woke["status"] == "ACTIVE", woke
            samples.append(woke["t"] - bench.committed[req.link_id])
    finally:
        proc.stdin.close()
        await proc.wait()
    return samples


async def polling(bench: Bench, runs: int, batch: int = 50) -> list[float]:
    """The reference: read the account and its link once a second until it is connected."""
    store = await bench.ta.store()

    async def poller(account_id: str, link_id: str) -> float:
        await asyncio.sleep(random.random())  # a random phase, as a real poller would have
        while True:
            account = await store.get_account(account_id)
            link = await store.get_link(link_id)
            if account and link and account.is_active and link.status is LinkStatus.COMPLETED:
                return time.monotonic()
            await asyncio.sleep(1.0)

    samples = []
    for start in range(0, runs, batch):
        reqs = [await bench.link() for _ in range(min(batch, runs - start))]
        pollers = [asyncio.create_task(poller(r.connected_account_id, r.link_id)) for r in reqs]
        await asyncio.sleep(1.0)
        for req in reqs:
            await bench.complete(req.redirect_url)
        for req, task in zip(reqs, pollers, strict=True):
            samples.append(await task - bench.committed[req.link_id])
    return samples


async def main(runs: int, backend: str, database_url: str) -> None:
    provider = DemoProvider(ProviderConfig(auto_consent=True))
    with tempfile.TemporaryDirectory(prefix="toolauth-bench-") as tmp:
        async with serve_app(provider.app) as provider_url, store_env(backend, database_url) as db:
            env = {**environ(Path(tmp) / "home", provider_url), **db}  # shared with the child
            async with AsyncToolAuth(settings=Settings.from_env(env)) as ta, ta.serve() as url:
                provider.register_client(CLIENT_ID, CLIENT_SECRET, [f"{url}/oauth/callback"])
                config = await ta.auth_configs.create("demo")
                bench = Bench(ta, config.id)
                await bench.instrument()
                await same_process(bench, 10)  # warm up
                store = await ta.store()
                print(
                    f"callback commit -> wait_for_connection returns, {runs} runs each, "
                    f"on {store.dialect}"
                )
                for name, measure in (
                    ("same process", same_process(bench, runs)),
                    ("other process", other_process(bench, runs, env)),
                    ("1 s polling", polling(bench, runs)),
                ):
                    started = time.monotonic()
                    samples = await measure
                    took = time.monotonic() - started
                    print(f"{summary(name, samples)}  ({took:.1f} s)", flush=True)
                await bench.browser.aclose()
                if store.dialect == "sqlite":
                    print(f"watcher interval {store.watch_interval * 1000:g} ms")  # type: ignore[attr-defined]
                else:
                    print("other process: woken by LISTEN/NOTIFY")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    add_backend_arguments(parser)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(json.loads(args.child)))
    else:
        asyncio.run(main(args.runs, args.backend, args.database_url))
