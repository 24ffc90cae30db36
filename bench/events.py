"""Event fan-out: how long from a state change to an in-process subscriber and to a loopback
webhook receiver, and how many webhook deliveries per second one deliverer sends.

Each run disables or enables one API-key account (one transaction: the account, its event,
its outbox row and its audit entry). The clock starts just before the call (so the write and
its commit are included) and stops when ``ta.events.subscribe()`` yields the event, and when
the receiver (uvicorn on loopback, in this process) has read the POST that the keeper running
in this process sent. Throughput: N events queued for one endpoint, then ``ta.webhooks.
deliver()`` until all are taken.

    .venv/bin/python bench/events.py [--runs 300] [--backlog 500]
    .venv/bin/python bench/events.py --backend postgres [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from backends import add_backend_arguments, store_env
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from toolauth import AsyncToolAuth, Settings
from toolauth.connect.serving import serve_app


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _main(runs: int, backlog: int, backend: str, database_url: str) -> None:
    arrived: dict[str, float] = {}
    waiting: dict[str, asyncio.Event] = {}

    async def hook(request: Request) -> Response:
        body = await request.body()
        now = time.perf_counter()
        key = request.headers["webhook-id"]
        arrived[key] = now
        waiting.setdefault(key, asyncio.Event()).set()
        return Response(status_code=204 if body else 400)

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with tempfile.TemporaryDirectory() as home:
        async with store_env(backend, database_url) as env, serve_app(receiver) as url:
            settings = Settings.from_env({
                "TOOLAUTH_HOME": str(Path(home)), **env,
                "TOOLAUTH_WEBHOOK_ALLOW_PRIVATE": "1", "TOOLAUTH_PROBE_INTERVAL": "0",
            })  # fmt: skip
            async with AsyncToolAuth(settings=settings) as ta:
                await ta.toolkits.register({
                    "slug": "keyed", "name": "Keyed", "description": "bench",
                    "api_base_url": "https://api.keyed.example",
                    "auth_schemes": {"API_KEY": {
                        "fields": [{"name": "api_key", "label": "Key", "secret": True}],
                        "placements": [{"in": "header", "name": "X-Key", "format": "{api_key}"}],
                    }},
                })  # fmt: skip
                config = await ta.auth_configs.create("keyed", type="use_custom_auth")
                account = await ta.connected_accounts.create(
                    "bench", config.id, credentials={"api_key": "k" * 20}
                )
                await ta.webhooks.create(f"{url}/hook")
                keeper = asyncio.create_task(ta.keeper().run())
                to_sub: list[float] = []
                to_hook: list[float] = []
                try:
                    async with ta.events.subscribe(user_id="bench") as stream:
                        await stream.next(timeout=0.01)
                        for i in range(runs):
                            change = (
                                ta.connected_accounts.disable
                                if i % 2 == 0
                                else ta.connected_accounts.enable
                            )
                            start = time.perf_counter()
                            await change(account.id)
                            event = await stream.next(timeout=10)
                            assert event is not None
                            to_sub.append(time.perf_counter() - start)
                            bell = waiting.setdefault(event.id, asyncio.Event())
                            await asyncio.wait_for(bell.wait(), 10)
                            to_hook.append(arrived[event.id] - start)
                finally:
                    keeper.cancel()
                    await asyncio.gather(keeper, return_exceptions=True)
                # throughput: a backlog, then one deliverer drains it
                for i in range(backlog):
                    change = (
                        ta.connected_accounts.disable
                        if i % 2 == 0
                        else ta.connected_accounts.enable
                    )
                    await change(account.id)
                before = len(arrived)
                start = time.perf_counter()
                while len(arrived) - before < backlog:
                    await ta.webhooks.deliver()
                took = time.perf_counter() - start

    ms = 1000
    print(f"backend {backend}, {runs} state changes, load average {_load()}")
    print(f"{'to':32} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, values in (("in-process subscriber", to_sub), ("loopback webhook receiver", to_hook)):
        print(
            f"{name:32} {_pct(values, 0.5) * ms:8.2f} {_pct(values, 0.99) * ms:8.2f} "
            f"{statistics.fmean(values) * ms:8.2f}"
        )
    print(f"delivery throughput: {backlog} deliveries in {took:.2f} s = {backlog / took:.0f}/s")


def _load() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--backlog", type=int, default=500)
    add_backend_arguments(parser)
    args = parser.parse_args()
    asyncio.run(_main(args.runs, args.backlog, args.backend, args.database_url))


if __name__ == "__main__":
    sys.exit(main())
