"""What toolauth adds to one authenticated API call.

The demo provider runs in its own process on loopback (so its work does not share this
process's event loop or GIL); this process makes the same call, GET /api/items?limit=20,
five ways:

    raw httpx (reused client)     httpx.AsyncClient with a fixed Bearer token, kept open
    raw httpx (new client/call)   the same, but a new AsyncClient for every call
    session.client (reused)       ``c = await session.client("demo")`` once, then c.get(...)
    session.client (per call)     ``async with await session.client("demo") as c`` each call
                                  (what a toolkit tool does)
    DEMO_LIST_ITEMS tool.ainvoke  the LangChain tool: args schema, callbacks, the result
                                  trimmed and dumped as JSON for the model

Run: .venv/bin/python bench/tool_overhead.py [--calls 500] [--warmup 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from _timing import measure_interleaved  # bench/ (the script's folder is on sys.path)

CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-client-secret"
LIMIT = 20


# -- the provider process --------------------------------------------------------------------


async def _serve_provider() -> None:
    from toolauth.connect.serving import serve_app
    from toolauth.demo.provider import DemoProvider, ProviderConfig

    demo = DemoProvider(ProviderConfig(access_token_ttl=86_400))
    demo.register_client(CLIENT_ID, CLIENT_SECRET, ["http://127.0.0.1/callback"])
    for i in range(LIMIT):
        demo._add_item("alice", f"Bench item {i}")
    tokens = demo.issue_tokens("alice", client_id=CLIENT_ID)
    async with serve_app(demo.app) as url:
        print(json.dumps({"url": url, "tokens": tokens}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF


# -- the measurements -------------------------------------------------------------------------


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]


def _bench(calls: int, warmup: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-provider"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        started = json.loads(proc.stdout.readline())
        asyncio.run(_run(started["url"], started["tokens"], calls, warmup))
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=10)


async def _run(provider_url: str, tokens: dict[str, Any], calls: int, warmup: int) -> None:
    from toolauth import AsyncToolAuth, Settings

    api = f"{provider_url}/api"
    home = Path(tempfile.mkdtemp(prefix="toolauth-bench-"))
    settings = Settings.from_env({
        "TOOLAUTH_HOME": str(home), "TOOLAUTH_DEMO_PROVIDER_URL": provider_url,
        "TOOLAUTH_DEMO_CLIENT_ID": CLIENT_ID, "TOOLAUTH_DEMO_CLIENT_SECRET": CLIENT_SECRET,
    })  # fmt: skip
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    params = {"limit": LIMIT}
    async with (
        AsyncToolAuth(settings=settings) as ta,
        httpx.AsyncClient(base_url=api, headers=bearer) as raw,
    ):
        config = await ta.auth_configs.create("demo")
        await ta.connected_accounts.create(
            "alice", config.id,
            credentials={k: tokens[k] for k in ("access_token", "refresh_token")},
        )  # fmt: skip
        session = ta.create("alice", toolkits=["demo"])
        tool = {t.name: t for t in session.tools()}["DEMO_LIST_ITEMS"]
        signed = await session.client("demo")

        async def raw_reused() -> None:
            response = await raw.get("/items", params=params)
            response.raise_for_status()
            response.json()

        async def raw_new_client() -> None:
            async with httpx.AsyncClient(base_url=api, headers=bearer) as fresh:
                response = await fresh.get("/items", params=params)
                response.raise_for_status()
                response.json()

        async def client_reused() -> None:
            response = await signed.get("/items", params=params)
            response.raise_for_status()
            response.json()

        async def client_per_call() -> None:
            async with await session.client("demo") as client:
                response = await client.get("/items", params=params)
                response.raise_for_status()
                response.json()

        async def tool_call() -> None:
            content = await tool.ainvoke({"limit": LIMIT})
            assert '"items"' in content

        variants = {
            "raw httpx (reused client)": raw_reused,
            "raw httpx (new client/call)": raw_new_client,
            "session.client (reused)": client_reused,
            "session.client (per call)": client_per_call,
            "DEMO_LIST_ITEMS tool.ainvoke": tool_call,
        }
        samples = await measure_interleaved(variants, calls, warmup)
        await signed.aclose()

    base, _ = _stats(samples["raw httpx (reused client)"])
    print(f"GET /api/items?limit={LIMIT} on loopback; {calls} calls each after {warmup} warm-up")
    print(f"{'variant':32} {'median ms':>10} {'p90 ms':>8} {'x raw':>7}")
    for name, values in samples.items():
        median, p90 = _stats(values)
        print(f"{name:32} {median * 1e3:10.3f} {p90 * 1e3:8.3f} {median / base:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--serve-provider", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_provider:
        asyncio.run(_serve_provider())
    else:
        _bench(args.calls, args.warmup)


if __name__ == "__main__":
    main()
