"""No secret leaves the vault: run every flow and every kind of tool with secrets we can
recognise, capture everything toolauth shows to anyone, and find none of them in it.

Secrets: our own OAuth client secret, the encryption key, every access and refresh token the
demo provider issued (read from the provider and from the store at every step), every PKCE
verifier, an API key, a bearer token, a password (and the Basic pairs made from them), and the
wrong values a user typed. Captured: every tool result, ToolMessage and artifact, every
LangChain event (``astream_events`` v2 and callbacks), every log record of every logger at
DEBUG (httpx, httpcore, uvicorn, aiosqlite, toolauth), every exception we can provoke (str,
repr, cause, context, traceback), the reprs and JSON of every public object, every page and
JSON answer of the connect app, and the raw bytes of every file in TOOLAUTH_HOME, with the
client open and after it closed.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import re
import traceback
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from pydantic import BaseModel

from tests.conftest import make_settings
from tests.flows.support import basic_toolkit, bearer_toolkit, db_bytes
from tests.helpers import Browser, hidden_fields
from toolauth import AsyncToolAuth, Settings, ToolAuth, ToolAuthError
from toolauth._crypto import generate_key
from toolauth._keys import key_file_path
from toolauth.connect.serving import serve_app
from toolauth.demo.provider import DemoProvider

CLIENT_ID = "leak-test-client"
LOGGERS = ("", "httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi",
           "aiosqlite", "asyncio", "toolauth", "langchain", "langchain_core")  # fmt: skip


# -- capturing -------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        try:
            return value.model_dump(mode="json")
        except Exception:  # a tool's args_schema is a class: no JSON form
            return repr(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # what a serialiser honouring the class's own choice shows (repr=False hides a field)
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.repr}
    return repr(value)


def _exception_texts(exc: BaseException) -> list[str]:
    texts, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), "".join(traceback.format_exception(current))]
        if isinstance(current, ToolAuthError):
            texts.append(json.dumps(vars(current), default=repr))
        current = current.__cause__ or current.__context__
    return texts


class Capture(logging.Handler):
    """Everything anyone could see, labelled by where it was seen."""

    def __init__(self) -> None:
        super().__init__(1)
        self.seen: list[tuple[str, str]] = []
        self.records = 0
        self._format = logging.Formatter()

    def add(self, where: str, *things: Any) -> None:
        for thing in things:
            if isinstance(thing, BaseException):
                self.seen += [(where, t) for t in _exception_texts(thing)]
            elif isinstance(thing, (str, bytes)):
                self.seen.append(
                    (where, thing.decode("latin-1") if isinstance(thing, bytes) else thing)
                )
            else:
                self.seen.append((where, repr(thing)))
                self.seen.append((where, json.dumps(thing, default=_plain, ensure_ascii=False)))
                self.seen.append((where, str(thing)))

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        text = f"{record.name} {record.levelname} {record.getMessage()} {record.args!r}"
        if record.exc_info and record.exc_info[1] is not None:
            text += self._format.formatException(record.exc_info)
        if record.stack_info:
            text += record.stack_info
        self.seen.append((f"log {record.name}", text))

    @contextmanager
    def installed(self) -> Iterator[None]:
        saved = {name: logging.getLogger(name).level for name in LOGGERS}
        root = logging.getLogger()
        root.addHandler(self)
        try:
            self.all_debug()
            yield
        finally:
            root.removeHandler(self)
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)

    @staticmethod
    def all_debug() -> None:
        """Everything, down to uvicorn's TRACE (uvicorn sets its loggers' levels when a server
        starts, so this runs again once the servers are up)."""
        for name in LOGGERS:
            logger = logging.getLogger(name)
            logger.setLevel(1)
            logger.disabled = False

    def leaks(self, secrets: dict[str, str]) -> list[str]:
        found = []
        for name, secret in secrets.items():
            for where, text in self.seen:
                if secret in text:
                    found.append(
                        f"{name} in {where}: …{text[max(0, text.find(secret) - 80) :][:200]}…"
                    )
        return found


class Events(AsyncCallbackHandler):
    """LangChain callbacks: every tool start, end, error and custom event."""

    def __init__(self, capture: Capture, on_link: Any = None) -> None:
        self.capture = capture
        self.on_link = on_link

    async def on_tool_start(self, serialized: Any, input_str: str, **kwargs: Any) -> None:
        self.capture.add("callback on_tool_start", serialized, input_str, kwargs.get("inputs"))

    async def on_tool_end(self, output: Any, **kwargs: Any) -> None:
        self.capture.add("callback on_tool_end", output)

    async def on_tool_error(self, error: BaseException, **kwargs: Any) -> None:
        self.capture.add("callback on_tool_error", error)

    async def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.capture.add(f"callback custom {name}", data)
        if self.on_link is not None:
            self.on_link(data)


# -- the world -------------------------------------------------------------------------------------


@dataclass
class World:
    ta: AsyncToolAuth
    settings: Settings
    provider: DemoProvider
    provider_url: str
    base_url: str
    home: Path
    capture: Capture
    browser: Browser
    client_secret: str = field(repr=False)
    secrets: dict[str, str] = field(repr=False)
    # shown on purpose in URLs and forms (state, CSRF token), never stored in the clear
    db_only: dict[str, str] = field(repr=False)

    def secret(self, name: str, value: str) -> str:
        self.secrets[name] = value
        return value

    def tokens(self, where: str) -> None:
        """Remember every token the provider holds right now."""
        with self.provider._lock:
            live = list(self.provider._access_tokens) + list(self.provider._refresh_tokens)
        for n, token in enumerate(live):
            self.secrets.setdefault(f"provider token {token[:4]}… ({where} #{n})", token)

    async def account_secrets(self) -> None:
        store = await self.ta.store()
        for account in await self.ta.connected_accounts.list():
            for key, value in account.credentials.items():
                if key != "token_type":
                    self.secrets[f"{account.id}.{key}"] = value.get_secret_value()
        for config in await store.list_auth_configs():
            for key, value in config.credentials.items():
                if key == "client_secret":
                    self.secrets[f"{config.id}.{key}"] = value.get_secret_value()
        for account in await self.ta.connected_accounts.list():
            link = await store.latest_link(account.id)
            if link is None:
                continue
            for key, value in link.secrets.items():
                target = self.secrets if key in ("code_verifier", "state_secret") else self.db_only
                target[f"{link.id}.{key}"] = value.get_secret_value()

    async def status(self, link_id: str | None) -> None:
        if link_id is None:
            return
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{self.base_url}/api/links/{link_id}")
        self.capture.add(f"GET /api/links/{link_id}", str(response.headers), response.text)


@pytest.fixture
async def world(home: Path) -> AsyncIterator[World]:
    capture = Capture()
    client_secret = "cs-SENTINEL-" + base64.urlsafe_b64encode(bytes(range(9, 27))).decode()
    with capture.installed():
        provider = DemoProvider()
        async with serve_app(provider.app) as provider_url:
            settings = make_settings(
                home,
                TOOLAUTH_DEMO_PROVIDER_URL=provider_url,
                TOOLAUTH_REFRESH_RETRY_DELAYS="0.01,0.02,0.03",
                TOOLAUTH_DEMO_CLIENT_ID=CLIENT_ID,
                TOOLAUTH_DEMO_CLIENT_SECRET=client_secret,
            )
            async with AsyncToolAuth(settings=settings) as ta, ta.serve(port=0) as base_url:
                provider.register_client(CLIENT_ID, client_secret, [f"{base_url}/oauth/callback"])
                capture.all_debug()
                browser = Browser()

                async def page(response: httpx.Response) -> None:
                    await response.aread()
                    capture.add(
                        f"page {response.request.method} {response.request.url}",
                        f"{response.status_code} {response.headers}\n{response.text}",
                    )

                browser.http = httpx.AsyncClient(
                    follow_redirects=False, timeout=10, event_hooks={"response": [page]}
                )
                key_text = key_file_path(settings).read_text()
                pair = f"{quote(CLIENT_ID, safe='')}:{quote(client_secret, safe='')}"
                world = World(
                    ta, settings, provider, provider_url, base_url, home, capture, browser,
                    client_secret,
                    secrets={
                        "client secret": client_secret,
                        "client Basic pair": base64.b64encode(pair.encode()).decode(),
                        "encryption key": key_text.strip(),
                    },
                    db_only={},
                )  # fmt: skip
                try:
                    yield world
                finally:
                    await browser.aclose()


def call(tool: Any, args: dict[str, Any] | None = None, n: int = 1) -> dict[str, Any]:
    return {"type": "tool_call", "id": f"call-{tool.name}-{n}", "name": tool.name,
            "args": args or {}}  # fmt: skip


async def run_tool(w: World, tool: Any, args: dict[str, Any] | None = None, **kw: Any) -> Any:
    events = Events(w.capture, **kw)
    message = await tool.ainvoke(call(tool, args), config={"callbacks": [events]})
    w.capture.add(f"ToolMessage {tool.name}", message, message.content, message.artifact)
    return message


async def expect_error(w: World, where: str, attempt: Any) -> BaseException:
    try:
        await attempt
    except Exception as exc:
        w.capture.add(f"exception {where}", exc)
        return exc
    raise AssertionError(f"{where} did not fail")


# -- the flows ---------------------------------------------------------------------------------------


async def oauth_in_wait_mode(w: World) -> str:
    """The meta tool in wait mode, streamed with astream_events v2; the user finishes the
    link from the custom event while the tool waits."""
    session = w.ta.create("leak-oauth", toolkits=["demo"], resume="wait", wait_timeout=20)
    tools = {t.name: t for t in session.tools()}
    w.capture.add("session and tools", session, list(tools.values()))
    started: list[asyncio.Task[Any]] = []

    def on_link(payload: dict[str, Any]) -> None:
        if not started:
            started.append(asyncio.create_task(w.browser.oauth_consent(payload["redirect_url"])))

    meta = tools["COMPOSIO_MANAGE_CONNECTIONS"]
    async for event in meta.astream_events(
        call(meta, {"toolkits": ["demo"]}), version="v2", config={"callbacks": [Events(w.capture)]}
    ):
        w.capture.add(f"astream_events {event['event']}", event)
        if event["event"] == "on_custom_event":
            on_link(event["data"])
    landing = await started[0]
    assert landing.response.status_code == 200, landing.response.text
    connection = await session.connection("demo")
    assert connection.has_active_connection
    w.tokens("after the oauth link")
    await w.account_secrets()

    for name, args in (("DEMO_GET_PROFILE", {}), ("DEMO_LIST_ITEMS", {"limit": 5}),
                       ("DEMO_CREATE_ITEM", {"name": "from the leak test"})):  # fmt: skip
        message = await run_tool(w, tools[name], args)
        assert message.status == "success", message.content
    await expect_error(w, "bad tool arguments", run_tool(w, tools["DEMO_LIST_ITEMS"], {"limit": 0}))
    sync = await anyio.to_thread.run_sync(
        tools["DEMO_GET_PROFILE"].invoke, call(tools["DEMO_GET_PROFILE"])
    )
    w.capture.add("sync ToolMessage", sync, sync.artifact)

    # refresh: forced, then on a 401 after the provider expired every access token
    account_id = connection.connected_account_id
    assert account_id is not None
    refreshed = await w.ta.connected_accounts.refresh(account_id)
    w.capture.add("refreshed account", refreshed)
    w.tokens("after a forced refresh")
    w.provider.expire_access_tokens()
    message = await run_tool(w, tools["DEMO_GET_PROFILE"])
    assert message.status == "success", message.content
    w.tokens("after a refresh on 401")
    await w.account_secrets()
    async with await session.client("demo") as client:
        w.capture.add("session client", client, client.auth, client.headers, vars(client.auth))
        me = await client.get("/me")
        w.capture.add("api response", me.text)
    return account_id


async def keys_in_return_mode(w: World) -> list[str]:
    """API key, bearer token and Basic links through the meta tool in return mode and the
    key forms, with wrong values first."""
    ta, provider = w.ta, w.provider
    await ta.toolkits.register(bearer_toolkit())
    await ta.toolkits.register(basic_toolkit())
    api_config = await ta.auth_configs.create("demo", auth_scheme="API_KEY")
    api_key = w.secret("api key", provider.issue_api_key("alice"))
    bearer = w.secret(
        "bearer token", provider.issue_tokens("bob", client_id=CLIENT_ID)["access_token"]
    )
    password = w.secret("password", "pw-SENTINEL-" + generate_key()[:20])
    provider.add_user("leakuser", password, "Leak User", "leak@example.com")
    w.secret("basic pair", base64.b64encode(f"leakuser:{password}".encode()).decode())
    wrong = {
        "api_key": w.secret("rejected api key", "demo_" + generate_key()[:30]),
        "token": w.secret("rejected token", generate_key()[:40].replace("=", "x")),
        "password": w.secret("wrong password", "wrong-SENTINEL-" + generate_key()[:16]),
        "badshape": w.secret("mis-shaped key", "nope-SENTINEL-" + generate_key()[:16]),
    }
    session = ta.create(
        "leak-keys", toolkits=["demo", "demo_bearer", "demo_basic"], resume="return",
        auth_configs={"demo": api_config.id},
    )  # fmt: skip
    tools = {t.name: t for t in session.tools()}
    meta = await run_tool(
        w, tools["COMPOSIO_MANAGE_CONNECTIONS"], {"toolkits": ["demo", "demo_bearer", "demo_basic"]}
    )
    links = {r["toolkit"]: r["redirect_url"] for r in meta.artifact["results"]}
    attempts = {
        "demo": [{"api_key": wrong["badshape"]}, {"api_key": wrong["api_key"]}, {"api_key": api_key}],
        "demo_bearer": [{"token": wrong["token"]}, {"token": bearer}],
        "demo_basic": [{"username": "leakuser", "password": wrong["password"]},
                       {"username": "leakuser", "password": password}],
    }  # fmt: skip
    for toolkit, values in attempts.items():
        url = links[toolkit]
        page = await w.browser.get(url)
        await w.status(url.rsplit("/", 1)[1])
        for n, form in enumerate(values):
            page = await w.browser.post(url, {**hidden_fields(page.response.text), **form})
            assert page.response.status_code == (200 if n == len(values) - 1 else 400), (
                page.response.text
            )
        await w.status(url.rsplit("/", 1)[1])
    again = await run_tool(w, tools["COMPOSIO_MANAGE_CONNECTIONS"], {"toolkits": list(attempts)})
    assert again.artifact["summary"]["active"] == 3, again.content
    for name in ("DEMO_GET_PROFILE", "DEMO_LIST_ITEMS"):
        assert (await run_tool(w, tools[name])).status == "success"
    for toolkit in ("demo_bearer", "demo_basic"):
        async with await session.client(toolkit) as client:
            w.capture.add(f"{toolkit} client", client, client.auth)
            assert (await client.get("/me")).status_code == 200
    await w.account_secrets()
    return [r["connected_account_id"] for r in again.artifact["results"]]


QUERY_TOOLKIT = {
    "slug": "demo_query", "name": "Demo Query", "description": "A key in the query string.",
    "api_base_url": "{demo_provider_url}/api",
    "auth_schemes": {"API_KEY": {
        "fields": [{"name": "api_key", "label": "Key", "secret": True}],
        "placements": [{"in": "query", "name": "key", "format": "{api_key}"}],
        "test_request": {"method": "GET", "path": "/me"},
    }},
}  # fmt: skip


async def query_key(w: World) -> None:
    """A toolkit that puts its key in the query string (the schema allows it): httpx logs every
    request URL at INFO, so the value must be hidden there, in the form check and in calls."""
    await w.ta.toolkits.register(QUERY_TOOLKIT)
    config = await w.ta.auth_configs.create("demo_query")
    req = await w.ta.connected_accounts.link("leak-query", config.id)
    typed = w.secret("query key typed", "qk-SENTINEL-" + generate_key()[:20])
    page = await w.browser.submit_key_form(req.redirect_url, {"api_key": typed})
    assert page.response.status_code == 400  # the demo API takes no query keys
    imported = w.secret("query key imported", "qk-SENTINEL-" + generate_key()[:20])
    account = await w.ta.connected_accounts.create(
        "leak-query", config.id, credentials={"api_key": imported}
    )
    async with await w.ta.connected_accounts.http_client(account.id) as client:
        response = await client.get("/me", params={"other": "kept"})
    assert response.request.url.params["key"] == imported  # sent, just not logged
    assert any("other=kept" in t and "key=REDACTED" in t for _, t in w.capture.seen)


async def errors(w: World) -> None:
    """Every error we can provoke: bad and rejected keys, a dead grant, a provider outage,
    a broken token response, a tampered row, a wrong key, a denied link."""
    ta, provider = w.ta, w.provider
    api_config = (await ta.auth_configs.list(toolkit="demo"))[-1]
    for credentials in ({"api_key": w.secrets["mis-shaped key"]},
                        {"api_key": w.secrets["api key"], "extra": w.secrets["password"]},
                        {"apikey": w.secrets["api key"]}):  # fmt: skip
        await expect_error(w, "create with a bad key", ta.connected_accounts.create(
            "leak-errors", api_config.id, credentials=credentials))  # fmt: skip
    managed = (await ta.auth_configs.list(toolkit="demo"))[0]
    await expect_error(w, "create with an unknown token key", ta.connected_accounts.create(
        "leak-errors", managed.id, credentials={"acces_token": w.secrets["bearer token"]}))  # fmt: skip
    custom = await ta.auth_configs.create(
        "demo", type="use_custom_auth", credentials={"client_id": CLIENT_ID, "client_secret": w.client_secret},
    )  # fmt: skip
    w.capture.add("custom config", custom, await ta.auth_configs.get(custom.id))
    await expect_error(w, "custom config with a bad key", ta.auth_configs.create(
        "demo", type="use_custom_auth",
        credentials={"client_id": CLIENT_ID, "client_secret": w.client_secret, "x": w.secrets["password"]},
    ))  # fmt: skip

    def imported(user: str) -> Any:
        tokens = provider.issue_tokens("alice", client_id=CLIENT_ID)
        return ta.connected_accounts.create(user, custom.id, credentials={
            "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
            "expires_in": 3600})  # fmt: skip

    outage = await imported("leak-outage")
    dead = await imported("leak-dead")
    w.tokens("imported accounts")
    provider.config.fault_only_refresh = True
    for fault in ("500", "invalid_json"):
        provider.config.token_endpoint_fault = fault  # type: ignore[assignment]
        await expect_error(w, f"refresh on {fault}", ta.connected_accounts.refresh(outage.id))
    provider.config.token_endpoint_fault = "invalid_grant"
    await expect_error(w, "refresh on invalid_grant", ta.connected_accounts.refresh(dead.id))
    provider.config.token_endpoint_fault = None
    w.capture.add("expired account", await ta.connected_accounts.get(dead.id))
    pinned = ta.create("leak-dead", toolkits=["demo"], connected_accounts={"demo": dead.id})
    [tool] = pinned.tools(tools=["DEMO_GET_PROFILE"], meta_tools=False)
    await run_tool(w, tool)
    await expect_error(w, "client of an expired account", pinned.client("demo"))
    await expect_error(
        w, "http_client of an expired account", ta.connected_accounts.http_client(dead.id)
    )

    # a denied link, and its waiter
    req = await ta.connected_accounts.link("leak-denied", managed.id)
    await w.browser.oauth_consent(req.redirect_url, decision="deny")
    await expect_error(w, "wait for a denied link", req.wait_for_connection(timeout=2))
    await w.status(req.link_id)

    # a tampered row, and a client with the wrong key
    store = await ta.store()
    async with store._write() as db:
        await db.execute(
            "UPDATE connected_accounts SET secret = (SELECT secret FROM connected_accounts "
            "WHERE id = ?) WHERE id = ?", (dead.id, outage.id))  # fmt: skip
    await expect_error(w, "tampered row", ta.connected_accounts.get(outage.id))
    stranger = AsyncToolAuth(settings=w.settings.with_overrides(encryption_key=generate_key()))
    w.secrets["other key"] = stranger.settings.encryption_key.get_secret_value()  # type: ignore[union-attr]
    w.capture.add("stranger", stranger, stranger.settings)
    await expect_error(w, "wrong key", stranger.store())
    await stranger.aclose()
    async with store._write() as db:
        await db.execute("DELETE FROM connected_accounts WHERE id = ?", (outage.id,))


async def reprs(w: World, account_ids: list[str]) -> None:
    ta = w.ta
    store = await ta.store()
    sync = ToolAuth(settings=w.settings)
    try:
        w.capture.add("reprs", ta, sync, w.settings, store, store.keyring, ta.catalog)
    finally:
        await anyio.to_thread.run_sync(sync.close)
    for config in await ta.auth_configs.list():
        w.capture.add(f"auth config {config.id}", config, config.model_dump_json())
    for account in await ta.connected_accounts.list():
        w.capture.add(f"account {account.id}", account, account.model_dump_json())
        link = await store.latest_link(account.id)
        if link is not None:
            w.capture.add(f"link {link.id}", link, link.model_dump_json())
            await w.status(link.id)
    for account_id in account_ids:
        req = await ta.connected_accounts.link(
            "leak-keys", (await ta.connected_accounts.get(account_id)).auth_config_id
        )
        w.capture.add("connection request", req)
        async with await ta.connected_accounts.http_client(account_id) as client:
            w.capture.add("http client", client, client.auth, client.headers, client.base_url)


async def lifecycle(w: World) -> None:
    """Events (as listed, as streamed and as webhook bodies), audit entries and webhook
    endpoints: ids and statuses only, never a secret or a link id."""
    ta = w.ta
    endpoint = await ta.webhooks.create("https://hooks.example.com/leaks")
    assert endpoint.secret is not None
    w.secret("webhook secret", endpoint.secret.get_secret_value())
    w.capture.add(
        "webhook endpoint", endpoint, endpoint.model_dump_json(), await ta.webhooks.list()
    )
    events = await ta.events.list(limit=10_000)
    entries = await ta.audit.list()
    async with ta.events.subscribe(after=0) as stream:
        streamed = [await stream.next(timeout=5) for _ in events]
    bodies = [json.dumps(e.payload()) for e in events]
    w.capture.add("events", *events, *streamed, *bodies, *(e.model_dump_json() for e in events))
    w.capture.add("audit", *entries, *(e.model_dump_json() for e in entries))
    assert len(events) >= 5 and len(entries) >= len(events)
    dumps = [e.model_dump_json() for e in (*events, *entries)]
    # a link id, standing alone (another id's random characters may spell "ln_")
    link_id = re.compile(r"(?<![A-Za-z0-9_-])ln_[A-Za-z0-9_-]{20,}")
    assert not [d for d in dumps if link_id.search(d)], "a link id in an event or audit entry"


def home_files(w: World) -> list[str]:
    """Every sentinel found in a file of TOOLAUTH_HOME (the key file may hold only the key)."""
    found = []
    everything = {**w.secrets, **w.db_only}
    for path in sorted(p for p in w.home.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        for name, value in everything.items():
            if path.name == "encryption.key" and name == "encryption key":
                continue
            if value.encode() in raw:
                found.append(f"{name} in {path.name}")
    return found


async def test_no_secret_reaches_any_output_log_page_error_repr_or_file(world: World) -> None:
    w = world
    oauth_account = await oauth_in_wait_mode(w)
    key_accounts = await keys_in_return_mode(w)
    await query_key(w)
    await errors(w)
    await reprs(w, key_accounts)
    w.tokens("before delete")
    await w.account_secrets()
    await w.ta.connected_accounts.delete(oauth_account)  # revokes at the provider
    assert w.provider.stats.revocations >= 1
    await lifecycle(w)

    # The capture really saw each kind of output (or a leak could hide in what it missed).
    kinds = {where for where, _ in w.capture.seen}
    for kind in ("log httpx", "log uvicorn.error", "log aiosqlite", "log toolauth.tokens",
                 "astream_events on_custom_event", "callback custom", "callback on_tool_end",
                 "ToolMessage DEMO_LIST_ITEMS", "page POST", "exception refresh"):  # fmt: skip
        assert any(k.startswith(kind) for k in kinds), (kind, sorted(kinds))
    assert sum(n.endswith(".state_secret") for n in w.secrets) >= 2
    assert sum(n.endswith(".csrf_token") for n in w.db_only) >= 3
    assert len(w.secrets) > 15, sorted(w.secrets)
    assert all(len(v) >= 16 for v in w.secrets.values()), w.secrets
    raw = db_bytes(w.ta)
    assert len(raw) > 0
    open_files = home_files(w)
    await w.ta.aclose()  # checkpoints the WAL into the main file
    closed_files = home_files(w)

    leaks = w.capture.leaks(w.secrets) + open_files + closed_files
    assert not leaks, "\n".join(leaks)


def test_the_capture_finds_a_planted_secret() -> None:
    """The checker itself: a secret in a log argument, a chained exception or a page is found."""
    capture = Capture()
    planted = "planted-SENTINEL-0123456789"
    with capture.installed():
        logging.getLogger("toolauth.anything").debug("token=%s", planted)
    try:
        try:
            raise ValueError(planted)
        except ValueError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as exc:
        capture.add("exception", exc)
    capture.add("page", {"html": f"<p>{planted}</p>"})
    places = {leak.split(" in ")[1].split(":")[0] for leak in capture.leaks({"p": planted})}
    assert places == {"log toolauth.anything", "exception", "page"}


def test_a_database_password_never_shows_in_a_repr() -> None:
    password = "db-SENTINEL-" + generate_key()[:16]
    settings = Settings.from_env(
        {"TOOLAUTH_DATABASE_URL": f"postgresql://toolauth:{password}@127.0.0.1:5432/toolauth"}
    )
    assert password not in repr(AsyncToolAuth(settings=settings))
    assert password not in repr(settings)
