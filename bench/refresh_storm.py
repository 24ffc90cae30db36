"""A refresh storm: many concurrent authenticated calls on one account whose access token
has just expired, in one process and across several processes on one store (a SQLite file, or
a PostgreSQL schema with ``--backend postgres``).

The demo provider (rotating refresh tokens, reuse of a spent refresh token revokes the grant)
runs on loopback in this process; every call goes through ``connected_accounts.http_client``
to its ``/api/me``. Each round expires the access token at the provider and in the store, then
fires the calls at once. Goal: exactly 1 refresh request at the provider per round, 0 failed
calls.

    .venv/bin/python bench/refresh_storm.py [--calls 200] [--processes 4] [--rounds 5]
    .venv/bin/python bench/refresh_storm.py --backend postgres [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from backends import CLIENT_ID, CLIENT_SECRET, add_backend_arguments, environ, store_env
from httpx import Response

from toolauth import AsyncToolAuth, Settings
from toolauth._models import ConnectedAccount, utcnow
from toolauth.connect.serving import serve_app
from toolauth.demo.provider import DemoProvider


async def storm(ta: AsyncToolAuth, account_id: str, calls: int) -> dict[str, Any]:
    """``calls`` concurrent GET /me; how many failed and why."""
    async with await ta.connected_accounts.http_client(account_id) as client:
        results = await asyncio.gather(
            *(client.get("/me") for _ in range(calls)), return_exceptions=True
        )
    failed = [r for r in results if isinstance(r, BaseException) or r.status_code != 200]
    reasons = sorted(
        {f"HTTP {r.status_code}" if isinstance(r, Response) else type(r).__name__ for r in failed}
    )
    return {"ok": len(results) - len(failed), "failed": len(failed), "reasons": reasons}


async def child(env: dict[str, str]) -> None:
    """One of the other processes: a storm for each order read from stdin."""
    async with AsyncToolAuth(settings=Settings.from_env(env)) as ta:
        await ta.store()
        print(json.dumps({"ready": True}), flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            order = json.loads(line)
            result = await storm(ta, order["account_id"], order["calls"])
            print(json.dumps(result), flush=True)


async def expire(ta: AsyncToolAuth, provider: DemoProvider, account_id: str) -> None:
    provider.expire_access_tokens()
    past = utcnow() - timedelta(seconds=5)
    store = await ta.store()
    await store.modify(
        ConnectedAccount, account_id, lambda a: a.model_copy(update={"expires_at": past})
    )


class Children:
    def __init__(self, procs: list[asyncio.subprocess.Process]) -> None:
        self.procs = procs

    @classmethod
    async def start(cls, n: int, env: dict[str, str]) -> Children:
        argv = (sys.executable, __file__, "--child", json.dumps(env))
        pipe = asyncio.subprocess.PIPE
        procs = [
            await asyncio.create_subprocess_exec(*argv, stdin=pipe, stdout=pipe) for _ in range(n)
        ]
        children = cls(procs)
        await children.read_all()  # ready
        return children

    async def read_all(self) -> list[dict[str, Any]]:
        async def read(proc: asyncio.subprocess.Process) -> dict[str, Any]:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            if not line:
                raise RuntimeError("a child process ended")
            return json.loads(line)

        return await asyncio.gather(*(read(p) for p in self.procs))

    async def order(self, **order: Any) -> list[dict[str, Any]]:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(order).encode() + b"\n")
        await asyncio.gather(*(p.stdin.drain() for p in self.procs if p.stdin))
        return await self.read_all()

    async def close(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        await asyncio.gather(*(p.wait() for p in self.procs))


def report(name: str, round_: int, refreshes: int, ok: int, failed: int, took: float) -> None:
    print(
        f"{name:<12} round {round_}: refresh requests at the provider={refreshes}  "
        f"calls ok={ok} failed={failed}  ({took * 1000:.0f} ms)",
        flush=True,
    )


async def main(calls: int, processes: int, rounds: int, backend: str, database_url: str) -> None:
    provider = DemoProvider()
    with tempfile.TemporaryDirectory(prefix="toolauth-bench-") as tmp:
        async with serve_app(provider.app) as provider_url, store_env(backend, database_url) as db:
            env = {**environ(Path(tmp) / "home", provider_url), **db}  # shared with the children
            provider.register_client(CLIENT_ID, CLIENT_SECRET, ["http://127.0.0.1/unused"])
            async with AsyncToolAuth(settings=Settings.from_env(env)) as ta:
                config = await ta.auth_configs.create("demo")
                tokens = provider.issue_tokens("alice", client_id=CLIENT_ID)
                account = await ta.connected_accounts.create(
                    "storm-user", config.id, credentials={
                        "access_token": tokens["access_token"],
                        "refresh_token": tokens["refresh_token"], "expires_in": 3600,
                    },
                )  # fmt: skip
                totals = {"refreshes": 0, "failed": 0}

                dialect = (await ta.store()).dialect
                print(
                    f"{calls} concurrent calls on an expired token, {rounds} rounds each, "
                    f"on {dialect}"
                )
                for n in range(1, rounds + 1):
                    await expire(ta, provider, account.id)
                    provider.reset_stats()
                    started = time.monotonic()
                    result = await storm(ta, account.id, calls)
                    took = time.monotonic() - started
                    refreshes = provider.stats.refresh_requests
                    report("1 process", n, refreshes, result["ok"], result["failed"], took)
                    totals["refreshes"] += refreshes != 1
                    totals["failed"] += result["failed"]

                share = calls // processes
                children = await Children.start(processes, env)
                try:
                    for n in range(1, rounds + 1):
                        await expire(ta, provider, account.id)
                        provider.reset_stats()
                        started = time.monotonic()
                        results = await children.order(account_id=account.id, calls=share)
                        took = time.monotonic() - started
                        refreshes = provider.stats.refresh_requests
                        ok = sum(r["ok"] for r in results)
                        failed = sum(r["failed"] for r in results)
                        name = f"{processes} processes"
                        report(name, n, refreshes, ok, failed, took)
                        totals["refreshes"] += refreshes != 1
                        totals["failed"] += failed
                        for r in results:
                            if r["reasons"]:
                                print("  failures:", r["reasons"])
                finally:
                    await children.close()
                print(
                    f"rounds without exactly 1 refresh: {totals['refreshes']}; "
                    f"failed calls in all: {totals['failed']}"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per round, in all")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    add_backend_arguments(parser)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(json.loads(args.child)))
    else:
        asyncio.run(main(args.calls, args.processes, args.rounds, args.backend, args.database_url))
