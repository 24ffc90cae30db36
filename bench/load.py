"""Load: 1,000 concurrent waiters and 5,000 completed links against one SQLite store.

Every link goes through the connect flow the connect app runs for a key link, without HTTP:
``connected_accounts.link()`` (account INITIATED + link row), ``connect_flow.begin()`` (the
form, its CSRF token saved on the link), ``connect_flow.submit_form()`` (the CSRF check, then
the same single transaction the OAuth callback ends with: link COMPLETED + account ACTIVE with
its encrypted key). The toolkit is a copy of the demo's API-key scheme without a test request,
so nothing leaves the process. While the links complete, 1,000 of them have a
``wait_for_connection()`` waiting; at the end every row is read back and decrypted.

Prints how many waiters woke, how many links completed, whether any was lost, throughput, and
the process's RSS at start / middle / end (plus every 1,000 links) to show it stays flat.

    .venv/bin/python bench/load.py                      # 5,000 links, 1,000 waiters
    .venv/bin/python bench/load.py --links 2000 --waiters 500 --concurrency 50
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from toolauth import AsyncToolAuth, ConnectionStatus
from toolauth._models import LinkStatus
from toolauth.connect.steps import KeyForm, Page, Redirect
from toolauth.store.sqlite import sqlite_path

TOOLKIT = {
    "slug": "bench_key",
    "name": "Bench Key",
    "description": "An API-key toolkit with no test request: completion is store work only.",
    "api_base_url": "http://127.0.0.1:9/api",
    "auth_schemes": {
        "API_KEY": {
            "fields": [{"name": "api_key", "label": "API key", "secret": True}],
            "placements": [{"in": "header", "name": "X-API-Key", "format": "{api_key}"}],
        }
    },
}


def rss_mib() -> float:
    """The current resident set size (Linux /proc), in MiB."""
    with open(f"/proc/{os.getpid()}/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def key_for(n: int) -> str:
    return f"bench-key-{n:06d}-" + "k" * 24


def check_file(home: Path) -> tuple[str, float]:
    """SQLite's own integrity check of the file, and the size of the file and its WAL (MiB)."""
    with closing(sqlite3.connect(sqlite_path(f"sqlite:///{home / 'toolauth.db'}"))) as db:
        integrity = str(db.execute("PRAGMA integrity_check").fetchone()[0])
    return integrity, sum(p.stat().st_size for p in home.glob("toolauth.db*")) / 2**20


async def run(links: int, waiters: int, concurrency: int, home: Path) -> int:
    started = time.perf_counter()
    memory: list[tuple[str, float]] = []
    async with AsyncToolAuth(home=home, base_url="http://127.0.0.1:8765") as ta:
        await ta.toolkits.register(TOOLKIT)
        config = await ta.auth_configs.create("bench_key")
        flow = ta.connect_flow
        gate = asyncio.Semaphore(concurrency)

        # 1. open the links (one INITIATED account and one PENDING link each)
        async def open_one(n: int) -> Any:
            async with gate:
                return await ta.connected_accounts.link(f"user-{n:06d}", config.id)

        t0 = time.perf_counter()
        requests = await asyncio.gather(*(open_one(n) for n in range(links)))
        opened_s = time.perf_counter() - t0

        # 2. the waiters: wait_for_connection on the first `waiters` links, all at once
        woke_at: dict[int, float] = {}

        async def wait_one(n: int) -> str:
            try:
                account = await requests[n].wait_for_connection(timeout=600)
            except Exception as exc:
                return type(exc).__name__
            woke_at[n] = time.perf_counter()
            ok = account.is_active and account.credentials["api_key"].get_secret_value() == key_for(
                n
            )
            return "active" if ok else "wrong"

        waiting = [asyncio.create_task(wait_one(n)) for n in range(waiters)]
        await asyncio.sleep(0.5)  # every waiter subscribed and asleep
        store = await ta.store()
        gc.collect()
        memory.append(("start (links open, waiters asleep)", rss_mib()))

        # 3. complete every link through the connect flow's form steps
        completed_at: dict[int, float] = {}
        outcomes: dict[str, int] = {}
        done = 0

        async def complete_one(n: int) -> None:
            nonlocal done
            async with gate:
                req = requests[n]
                form = await flow.begin(req.link_id)
                assert isinstance(form, KeyForm), form
                step = await flow.submit_form(
                    req.link_id,
                    {"csrf_token": form.csrf_token, "api_key": key_for(n)},
                    form.csrf_token,
                )
                completed_at[n] = time.perf_counter()
            kind = "completed" if isinstance(step, (Redirect, Page)) and (
                isinstance(step, Redirect) or step.tone == "success"
            ) else f"failed: {getattr(step, 'error', step)}"  # fmt: skip
            outcomes[kind] = outcomes.get(kind, 0) + 1
            done += 1
            if done % 1000 == 0:
                memory.append((f"{done} links completed", rss_mib()))
            if done == links // 2:
                gc.collect()
                memory.append(("middle", rss_mib()))

        t1 = time.perf_counter()
        await asyncio.gather(*(complete_one(n) for n in range(links)))
        completed_s = time.perf_counter() - t1
        results = await asyncio.wait_for(asyncio.gather(*waiting), timeout=120)
        gc.collect()
        memory.append(("end (all completed, waiters returned)", rss_mib()))

        # 4. read everything back: every account ACTIVE with its own key, every link COMPLETED
        accounts = await ta.connected_accounts.list(auth_config_id=config.id)
        lost = []
        for account in accounts:
            n = int(account.user_id.split("-")[1])
            if not account.is_active or account.credentials[
                "api_key"
            ].get_secret_value() != key_for(n):
                lost.append(account.id)
        link_states: dict[str, int] = {}
        for req in requests:
            link = await store.get_link(req.link_id)
            status = link.status.value if link else "missing"
            link_states[status] = link_states.get(status, 0) + 1
        active = sum(a.status is ConnectionStatus.ACTIVE for a in accounts)
        latencies = sorted(
            (woke_at[n] - completed_at[n]) * 1000 for n in woke_at if n in completed_at
        )
    integrity, size = check_file(home)

    woke = sum(r == "active" for r in results)
    print(f"links opened:       {links} in {opened_s:.1f} s ({links / opened_s:.0f}/s)")
    print(f"links completed:    {outcomes} in {completed_s:.1f} s ({links / completed_s:.0f}/s), "
          f"concurrency {concurrency}")  # fmt: skip
    print(f"link rows:          {link_states}")
    print(f"accounts ACTIVE:    {active} of {len(accounts)}; lost or wrong: {len(lost)}")
    print(f"waiters woke:       {woke} of {waiters} (other outcomes: "
          f"{ {r for r in results if r != 'active'} or 'none'})")  # fmt: skip
    if latencies:
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"wake after commit:  p50 {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms, "
              f"max {latencies[-1]:.2f} ms")  # fmt: skip
    for label, mib in memory:
        print(f"RSS {label:40} {mib:7.1f} MiB")
    print(
        f"peak RSS (ru_maxrss): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB"
    )
    print(f"database: {size:.1f} MiB, integrity_check: {integrity}")
    print(f"wall: {time.perf_counter() - started:.1f} s")
    ok = (
        woke == waiters and active == links == len(accounts) and not lost
        and link_states == {LinkStatus.COMPLETED.value: links} and integrity == "ok"
    )  # fmt: skip
    print("result:", "OK — none lost" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--links", type=int, default=5000)
    parser.add_argument("--waiters", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    if args.waiters > args.links:
        parser.error("--waiters cannot exceed --links")
    with tempfile.TemporaryDirectory(prefix="toolauth-load-") as tmp:
        return asyncio.run(run(args.links, args.waiters, args.concurrency, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
