"""Account lookup latency with 1,000,000 connected accounts, on SQLite and on PostgreSQL.

Every tool call starts with two store reads: find the user's ACTIVE account for the toolkit
(``list_accounts(AccountFilter(user_id, toolkit, statuses=[ACTIVE], limit=1))``) and read it
by id (``get_account(id)``). This loads ``--accounts`` rows (200,000 users x 5 toolkits, 90%
ACTIVE), then times both calls through the store's public methods for random users, decrypted
models included. Goal: p99 <= 1 ms on SQLite, <= 2 ms on PostgreSQL.

Every row is real and decryptable: its secrets are encrypted with the store's keyring under
the row's own associated data, exactly as ``encode_row`` does (checked against it, and every
lookup decrypts the row it finds). Loading is bulk: SQLite ``executemany`` in one transaction,
PostgreSQL binary ``COPY``. SQLite lives in a temporary folder, PostgreSQL in a temporary
schema (``--database-url``, default the test database); both are removed at the end.

    .venv/bin/python bench/lookup.py                        # both backends, 1M accounts, ~3 min
    .venv/bin/python bench/lookup.py --backend sqlite --accounts 200000 --lookups 2000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from backends import DEFAULT_POSTGRES_URL, postgres_schema

from toolauth._crypto import Keyring, generate_key
from toolauth._ids import new_id
from toolauth._models import AuthConfig, AuthConfigType, AuthScheme, ConnectedAccount
from toolauth._models import ConnectionStatus as Status
from toolauth.store import AccountFilter, Store, store_class
from toolauth.store.rows import COLUMNS as ROW_COLUMNS
from toolauth.store.rows import encode_row

TOOLKITS = ("github", "gmail", "slack", "notion", "linear")
COLUMNS = ROW_COLUMNS[ConnectedAccount]
OTHER_STATUSES = (Status.EXPIRED, Status.INACTIVE, Status.FAILED)
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Population:
    """The accounts to load, generated on the fly (the same layout for every backend), and
    the ACTIVE ones chosen as lookup targets: (id, user_id, toolkit)."""

    def __init__(self, keyring: Keyring, configs: dict[str, str], n: int, targets: int) -> None:
        self.keyring = keyring
        self.configs = configs
        self.n = n
        self.rng = random.Random(20260101)
        self.pick = set(self.rng.sample(range(n), min(n, targets * 2)))
        self.targets: list[tuple[str, str, str]] = []

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` as ``encode_row`` makes it (python values, before the driver's turn)."""
        toolkit = TOOLKITS[i % len(TOOLKITS)]
        user_id = f"user-{i // len(TOOLKITS):07d}"
        status = Status.ACTIVE if self.rng.random() < 0.9 else self.rng.choice(OTHER_STATUSES)
        account_id = new_id("ca")
        created = START + timedelta(milliseconds=i)
        secrets_ = {
            "access_token": f"tok_{os.urandom(15).hex()}",
            "refresh_token": f"ref_{os.urandom(15).hex()}",
        }
        key_id, blob = self.keyring.encrypt(
            json.dumps(secrets_).encode(), aad=f"connected_accounts:{account_id}".encode()
        )
        if i in self.pick and status is Status.ACTIVE:
            self.targets.append((account_id, user_id, toolkit))
        return {
            "id": account_id, "user_id": user_id, "toolkit": toolkit,
            "auth_config_id": self.configs[toolkit], "status": str(status),
            "status_reason": None, "scopes": json.dumps(["repo"]),
            "expires_at": created + timedelta(hours=1), "issued_at": created, "label": None,
            "shared": False,
            "data": json.dumps({"login": user_id}), "key_id": key_id, "secret": blob,
            "version": 1, "created_at": created, "updated_at": created,
        }  # fmt: skip

    def rows(self) -> Iterator[dict[str, Any]]:
        for i in range(self.n):
            yield self.row(i)


def check_codec(keyring: Keyring, configs: dict[str, str]) -> None:
    """The bulk rows have exactly the columns ``encode_row`` writes for the same account."""
    row = Population(keyring, configs, 1, 0).row(0)
    account = ConnectedAccount(
        id=row["id"], user_id=row["user_id"], toolkit=row["toolkit"],
        auth_config_id=row["auth_config_id"], status=Status(row["status"]), scopes=("repo",),
        expires_at=row["expires_at"], issued_at=row["issued_at"], data={"login": row["user_id"]},
        created_at=row["created_at"], updated_at=row["updated_at"],
        credentials={"access_token": "x", "refresh_token": "y"},
    )  # fmt: skip
    real = encode_row(keyring, account)
    for column in COLUMNS:
        if column != "secret":
            assert real[column] == row[column], (column, real[column], row[column])
    assert set(real) == set(COLUMNS), set(real) ^ set(COLUMNS)


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return (
        f"p50={statistics.median(ms):6.3f} ms  p99={p99:6.3f} ms  "
        f"mean={statistics.fmean(ms):6.3f} ms  max={ms[-1]:7.3f} ms"
    )


async def make_configs(store: Store) -> dict[str, str]:
    configs = {}
    for toolkit in TOOLKITS:
        now = datetime.now(timezone.utc)
        config = AuthConfig(
            id=new_id("ac"), toolkit=toolkit, name=f"{toolkit} app",
            type=AuthConfigType.CUSTOM, auth_scheme=AuthScheme.OAUTH2, scopes=("repo",),
            created_at=now, updated_at=now,
            credentials={"client_id": "cid", "client_secret": "bench-secret"},
        )  # fmt: skip
        await store.create_auth_config(config)
        configs[toolkit] = config.id
    return configs


async def load_sqlite(store: Any, people: Population) -> None:
    from toolauth.store.sqlite import _to_sql

    def insert() -> None:
        with contextlib.closing(sqlite3.connect(store.path, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                f"INSERT INTO connected_accounts ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in COLUMNS)})",
                ([_to_sql(row[c]) for c in COLUMNS] for row in people.rows()),
            )
            db.execute("COMMIT")
            db.execute("ANALYZE")

    await asyncio.to_thread(insert)


async def load_postgres(store: Any, people: Population) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(store._dsn, **store._connect_kwargs)
    try:
        await conn.copy_records_to_table(
            "connected_accounts",
            records=(tuple(row[c] for c in COLUMNS) for row in people.rows()),
            columns=COLUMNS,
            schema_name=store.schema,
        )
        await conn.execute("ANALYZE connected_accounts")
    finally:
        await conn.close()


async def plan(store: Any, user_id: str, toolkit: str) -> str:
    """How the database runs the lookup (the index it uses)."""
    if store.dialect == "sqlite":
        rows = await store._fetch(
            "EXPLAIN QUERY PLAN SELECT * FROM connected_accounts WHERE user_id = ? AND "
            "toolkit = ? AND status IN (?) ORDER BY created_at DESC, id LIMIT 1",
            (user_id, toolkit, "ACTIVE"),
        )
        return "; ".join(r["detail"] for r in rows)
    rows = await store._fetch(
        "EXPLAIN SELECT * FROM connected_accounts WHERE user_id = $1 AND toolkit = $2 AND "
        "status = ANY($3::text[]) ORDER BY created_at DESC, id LIMIT 1",
        user_id,
        toolkit,
        ["ACTIVE"],
    )
    return "; ".join(r["QUERY PLAN"].strip() for r in rows if "Scan" in r["QUERY PLAN"])


async def measure(name: str, url: str, accounts: int, lookups: int) -> None:
    keyring = Keyring.from_text(generate_key())
    store: Any = store_class(url)(url, keyring)
    await store.open()
    try:
        configs = await make_configs(store)
        check_codec(keyring, configs)
        people = Population(keyring, configs, accounts, lookups)
        started = time.monotonic()
        await (load_sqlite if name == "sqlite" else load_postgres)(store, people)
        took = time.monotonic() - started
        print(
            f"{name:<8} loaded {accounts:,} accounts in {took:.1f} s "
            f"({accounts / took:,.0f} rows/s, encryption included)",
            flush=True,
        )
        targets = people.targets[:lookups]
        random.Random(7).shuffle(targets)
        _, user_id, toolkit = targets[0]
        print(f"{name:<8} plan: {await plan(store, user_id, toolkit)}")

        async def find(user_id: str, toolkit: str) -> list[ConnectedAccount]:
            where = AccountFilter(
                user_id=user_id, toolkit=toolkit, statuses=[Status.ACTIVE], limit=1
            )
            return await store.list_accounts(where)

        for account_id, user_id, toolkit in targets[:200]:  # warm up
            await find(user_id, toolkit)
            await store.get_account(account_id)
        found_times, get_times = [], []
        clock = time.perf_counter
        for account_id, user_id, toolkit in targets:
            t0 = clock()
            found = await find(user_id, toolkit)
            t1 = clock()
            account = await store.get_account(account_id)
            t2 = clock()
            found_times.append(t1 - t0)
            get_times.append(t2 - t1)
            assert [a.id for a in found] == [account_id], (found, account_id)
            assert account is not None
            assert account.credentials["access_token"].get_secret_value().startswith("tok_")
        n = len(targets)
        for what, samples in (
            ("list_accounts(user, toolkit, ACTIVE, limit=1)", found_times),
            ("get_account(id)", get_times),
        ):
            print(f"{name:<8} {what:<46} x{n}: {percentiles(samples)}")
    finally:
        await store.close()


async def main(backends: list[str], accounts: int, lookups: int, database_url: str) -> None:
    print(f"{accounts:,} accounts, {lookups} lookups of each kind per backend", flush=True)
    for name in backends:
        started = time.monotonic()
        if name == "sqlite":
            with tempfile.TemporaryDirectory(prefix="toolauth-bench-") as tmp:
                await measure(name, f"sqlite:///{Path(tmp) / 'lookup.db'}", accounts, lookups)
        else:
            async with postgres_schema(database_url, "toolauth_lookup") as url:
                await measure(name, url, accounts, lookups)
        print(f"{name:<8} total {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    chosen = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    asyncio.run(main(chosen, args.accounts, args.lookups, args.database_url))
