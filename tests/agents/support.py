"""Helpers for the agent tests: the "user" on the other side of the chat, a streamed run
that records every event, store snapshots, and the no-token check."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, SecretStr

from tests.conftest import DEMO_CLIENT_SECRET
from tests.helpers import Browser, Landing
from toolauth import AsyncToolAuth
from toolauth.demo.provider import DemoProvider
from toolauth.langchain import CONNECT_LINK_EVENT
from toolauth.store.sqlite import sqlite_path


class User:
    """The person in the chat: opens connect links in a (scripted) browser, in the background,
    while the agent keeps running."""

    def __init__(self, username: str = "alice", password: str | None = None) -> None:
        self.browser = Browser()
        self.username = username
        self.password = password or {"alice": "wonderland", "bob": "builder"}[username]
        self.tasks: list[asyncio.Task[Landing]] = []
        self.opened: list[str] = []

    def open_link(self, url: str, *, delay: float = 0.0, decision: str = "allow") -> None:
        """Start completing the OAuth flow for ``url`` (after ``delay`` seconds), answering
        the consent page with ``decision``."""
        self.opened.append(url)

        async def consent() -> Landing:
            await asyncio.sleep(delay)
            return await self.browser.oauth_consent(
                url, username=self.username, password=self.password, decision=decision
            )

        self.tasks.append(asyncio.create_task(consent()))

    async def done(self, status: int = 200) -> list[Landing]:
        landings = list(await asyncio.gather(*self.tasks))
        for landing in landings:
            assert landing.response.status_code == status, landing.response.text[:500]
        return landings

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.browser.aclose()


@dataclass
class Run:
    """One streamed agent run: the graph's final output and everything that went by."""

    output: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def links(self) -> list[dict[str, Any]]:
        """The connect-link payloads of the custom events, in order."""
        return [
            e["data"]
            for e in self.events
            if e["event"] == "on_custom_event" and e["name"] == CONNECT_LINK_EVENT
        ]


async def stream(
    agent: Any,
    inputs: Any,
    config: Any = None,
    *,
    on_link: Callable[[dict[str, Any], int], None] | None = None,
) -> Run:
    """``agent.astream_events(version="v2")``, calling ``on_link(payload, n)`` on the n-th
    (1-based) ``toolauth.connect_link`` event as it arrives."""
    run = Run()
    async for event in agent.astream_events(inputs, config, version="v2"):
        run.events.append(event)
        if event["event"] == "on_custom_event" and event["name"] == CONNECT_LINK_EVENT:
            if on_link is not None:
                on_link(event["data"], len(run.links))
        elif event["event"] == "on_chain_end" and not event.get("parent_ids"):
            run.output = event["data"].get("output")
    return run


def links_in_db(ta: AsyncToolAuth, user_id: str) -> list[dict[str, Any]]:
    """Every connect link row of ``user_id``, read from the SQLite file. Its ``id`` is the
    key the link is stored under (the SHA-256 of the link id, see :func:`link_key`)."""
    with closing(sqlite3.connect(sqlite_path(ta.settings.database_url))) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT id, status, connected_account_id FROM connection_links WHERE user_id = ? "
            "ORDER BY created_at",
            (user_id,),
        ).fetchall()
    return [dict(r) for r in rows]


def link_key(link_id: str) -> str:
    """The ``id`` column of link ``link_id``: the store never holds the id itself."""
    return "sha256:" + hashlib.sha256(link_id.encode()).hexdigest()


# -- no token anywhere ---------------------------------------------------------------------


async def secret_values(ta: AsyncToolAuth, provider: DemoProvider) -> set[str]:
    """Every token stored for any account, every token the provider issued, the client
    secret."""
    values = {DEMO_CLIENT_SECRET}
    for listed in await ta.connected_accounts.list():
        account = await ta.connected_accounts.get(listed.id)
        for key, value in account.credentials.items():
            if key != "token_type" and isinstance(value, SecretStr):
                values.add(value.get_secret_value())
    with provider._lock:
        values |= set(provider._access_tokens) | set(provider._refresh_tokens)
    return {v for v in values if len(v) >= 8}


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return repr(value)


def serialise(*things: Any) -> str:
    """Everything the app (and the model) could see, as JSON and as repr."""
    parts = []
    for thing in things:
        parts.append(json.dumps(thing, default=_plain, ensure_ascii=False))
        parts.append(repr(thing))
    return "\n".join(parts)


async def assert_no_secrets(
    ta: AsyncToolAuth, provider: DemoProvider, *things: Any, min_tokens: int = 1
) -> None:
    """No token or client secret in ``things`` (messages, events, artifacts, interrupts)."""
    values = await secret_values(ta, provider)
    assert len(values) >= min_tokens + 1, "expected tokens to check against"
    text = serialise(*things)
    leaked = [v[:6] + "…" for v in values if v in text]
    assert not leaked, f"secrets leaked into agent-visible output: {leaked}"
