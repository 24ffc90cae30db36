"""Test helpers: a scripted browser that walks connect links over real HTTP, and free ports
for servers whose port must be known before they start."""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from toolauth._http import tls_context


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` every 5 ms until it holds; fail after ``timeout`` seconds. Only for
    what has no event to wait on (a counter inside the library, another process)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        await asyncio.sleep(0.005)


async def until_waiting(store: object, waiters: int = 1) -> None:
    """Until ``waiters`` waits are registered with ``store`` (its ``_watchers`` count: the
    store has no event for it), so what happens next wakes them rather than precedes them."""
    await until(lambda: getattr(store, "_watchers", 0) >= waiters)


def free_port() -> int:
    """A free loopback port, for a server in another process that must be told its port (or
    keep it across a restart). Prefer ``port=0`` wherever the server can report its own port.

    The port is drawn below the kernel's ephemeral range, so no ``port=0`` server and no
    outgoing connection of a test running in parallel can take it between this check and the
    server's bind; each pytest-xdist worker draws from its own stretch of 1000 ports.
    """
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except OSError:  # not Linux: the IANA range
        ephemeral_low = 49152
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    start = 10_000 + 1_000 * (int(worker) if worker.isdigit() else 0)
    assert start + 1_000 <= ephemeral_low, (
        "too many workers for the ports below the ephemeral range"
    )
    for port in random.sample(range(start, start + 1_000), 1_000):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {start}-{start + 999}")


_INPUT = re.compile(r"<input[^>]*>", re.S)
_ATTR = re.compile(r'(\w[\w-]*)="([^"]*)"')


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of the first form on the page."""
    fields = {}
    for tag in _INPUT.findall(html):
        attrs = dict(_ATTR.findall(tag))
        if attrs.get("type") == "hidden":
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


@dataclass
class Landing:
    """Where a flow ended: the last response and the URL it came from."""

    response: httpx.Response
    url: str

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}


class Resolving(httpx.AsyncBaseTransport):
    """Name resolution for tests: requests to ``hosts`` go to 127.0.0.1 (their ``Host``
    header and the URL the client sees, cookies included, unchanged), so a connect app can
    be served under a public-looking name (``http://connect.example:PORT``) on loopback."""

    def __init__(self, hosts: set[str]) -> None:
        self._hosts = hosts
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host in self._hosts:
            request = httpx.Request(
                request.method, request.url.copy_with(host="127.0.0.1"),
                headers=request.headers, stream=request.stream, extensions=request.extensions,
            )  # fmt: skip
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class Browser:
    """Follows redirects by hand (so each hop can be inspected) and keeps cookies."""

    def __init__(self, stop_at: str | None = None, *, hosts: set[str] | None = None) -> None:
        transport = Resolving(hosts) if hosts else None
        self.http = httpx.AsyncClient(
            follow_redirects=False, timeout=10, transport=transport, verify=tls_context()
        )  # one TLS context for the process: making one costs ~15 ms of CPU
        self.stop_at = stop_at  # do not fetch URLs starting with this (the app's callback)
        self.hops: list[str] = []

    async def aclose(self) -> None:
        await self.http.aclose()

    async def follow(self, response: httpx.Response) -> Landing:
        url = str(response.request.url)
        while response.is_redirect:
            url = urljoin(url, response.headers["location"])
            self.hops.append(url)
            if self.stop_at and url.startswith(self.stop_at):
                return Landing(response, url)
            response = await self.http.get(url)
        return Landing(response, url)

    async def get(self, url: str) -> Landing:
        self.hops.append(url)
        return await self.follow(await self.http.get(url))

    async def post(self, url: str, data: dict[str, str]) -> Landing:
        return await self.follow(await self.http.post(url, data=data))

    async def oauth_consent(
        self,
        link_url: str,
        *,
        username: str = "alice",
        password: str = "wonderland",
        decision: str = "allow",
    ) -> Landing:
        """Open a connect link, log in on the demo provider and answer its consent page."""
        landing = await self.get(link_url)
        if "/oauth/authorize" not in landing.url:
            return landing
        base = landing.url.split("/oauth/authorize")[0]
        fields = hidden_fields(landing.response.text)
        landing = await self.post(
            f"{base}/oauth/authorize/login", {**fields, "username": username, "password": password}
        )
        fields = hidden_fields(landing.response.text)
        return await self.post(f"{base}/oauth/authorize/consent", {**fields, "decision": decision})

    async def submit_key_form(self, link_url: str, values: dict[str, str]) -> Landing:
        landing = await self.get(link_url)
        fields = hidden_fields(landing.response.text)
        return await self.post(link_url, {**fields, **values})
