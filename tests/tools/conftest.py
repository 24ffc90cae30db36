"""A connected account aimed at a loopback fake of its toolkit's API, and a way to call the
toolkit's built-in tools as the model would (validated arguments in, trimmed JSON out).

One real uvicorn server (``serve_app``, in a thread, for the whole session) serves whichever
fake the running test connected: starting and stopping a server per test would cost ~0.2 s.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.tools import BaseTool

from tests.conftest import make_settings
from tests.tools.fakes import FakeApi
from toolauth import AsyncToolAuth
from toolauth._models import ConnectedAccount
from toolauth.connect.serving import serve_app_in_thread
from toolauth.tools import ToolApiError, ToolSpec, builtin_tools

TOKEN = "tok-SENTINEL-6f1c0d2e9a"


class Switch:
    """An ASGI app that hands each request to the current test's fake."""

    def __init__(self) -> None:
        self.fake: FakeApi | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]  # startup / shutdown
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        assert self.fake is not None, "no fake is connected"
        await self.fake.app(scope, receive, send)


@dataclass
class FakeServer:
    switch: Switch
    url: str


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeServer]:
    switch = Switch()
    with serve_app_in_thread(switch) as url:
        yield FakeServer(switch, url)


@dataclass
class Connected:
    """A toolkit connected to its fake: call its built-in tools by name."""

    ta: AsyncToolAuth
    fake: FakeApi
    account: ConnectedAccount
    client: httpx.AsyncClient
    tools: dict[str, ToolSpec]
    secret: str

    def agent_tools(self, *extra: ToolSpec) -> dict[str, BaseTool]:
        """The session's LangChain tools, by name, as an agent gets them."""
        session = self.ta.create(self.account.user_id, toolkits=[self.account.toolkit])
        return {t.name: t for t in session.tools(extra=list(extra))}

    async def call(self, name: str, **args: Any) -> Any:
        """Run tool ``name``; its result and its errors never show the credential."""
        spec = self.tools[name]
        try:
            result = await spec.run(self.client, spec.args_schema(**args))
        except ToolApiError as exc:
            if self.secret in str(exc):
                raise AssertionError("a tool error shows the credential") from exc
            raise
        text = json.dumps(result)  # JSON-friendly
        assert self.secret not in text
        return result


Connect = Callable[..., Awaitable[Connected]]


@pytest.fixture
async def connect(home: Path, fake_server: FakeServer) -> AsyncIterator[Connect]:
    """``await connect("github", FakeGitHub(TOKEN))``: serve the fake, connect an account."""
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(setattr, fake_server.switch, "fake", None)

        async def make(
            toolkit: str,
            fake: FakeApi,
            *,
            auth_scheme: str | None = None,
            credentials: dict[str, Any] | None = None,
            secret: str = TOKEN,
            api_url: str | None = None,
            env: dict[str, str] | None = None,
        ) -> Connected:
            """``api_url`` points the toolkit elsewhere than the fake; ``env`` adds settings."""
            fake_server.switch.fake = fake
            stack.callback(fake.release)  # slow answers end with the test
            url = fake_server.url
            prefix = f"TOOLAUTH_{toolkit.upper()}_"
            settings = make_settings(
                home,
                **{
                    prefix + "API_BASE_URL": api_url or url + fake.prefix,
                    prefix + "CLIENT_ID": f"{toolkit}-client-id",
                    prefix + "CLIENT_SECRET": f"{toolkit}-client-secret",
                    **(env or {}),
                },
            )
            ta = await stack.enter_async_context(AsyncToolAuth(settings=settings))
            config = await ta.auth_configs.create(toolkit, auth_scheme=auth_scheme)
            account = await ta.connected_accounts.create(
                "user-1", config.id, credentials=credentials or {"access_token": TOKEN}
            )
            client = await ta.connected_accounts.http_client(account.id)
            stack.push_async_callback(client.aclose)
            tools = {spec.name: spec for spec in builtin_tools([toolkit])}
            return Connected(ta, fake, account, client, tools, secret)

        yield make


@pytest.fixture
def closed_port() -> Iterator[str]:
    """A loopback URL nothing listens on: the port is bound (so no one else takes it) but not
    listening, so a connection attempt is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="session")
def resetting_url() -> Iterator[str]:
    """A loopback URL whose server reads each request, then resets the connection (TCP RST)
    instead of answering."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # the listener was shut down
                return
            with conn:
                conn.recv(65536)  # the request has been sent
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, name="resetting-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        listener.close()
        thread.join(timeout=5)
