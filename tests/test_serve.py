"""toolauth.connect.serving: a real uvicorn server on loopback, driven with real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from toolauth.connect.serving import serve_app, serve_app_in_thread


def make_app(events: list[str] | None = None) -> Starlette:
    events = events if events is not None else []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    async def hello(request: Request) -> Response:
        return JSONResponse({"hello": "world", "thread": threading.current_thread().name})

    return Starlette(routes=[Route("/hello", hello)], lifespan=lifespan)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
def busy_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


async def test_serves_on_a_free_port_and_runs_the_lifespan() -> None:
    events: list[str] = []
    async with serve_app(make_app(events)) as url:
        assert url.startswith("http://127.0.0.1:")
        assert port_of(url) > 0
        assert events == ["startup"]
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{url}/hello")
        assert response.status_code == 200
        assert response.json()["hello"] == "world"
    assert events == ["startup", "shutdown"]


async def test_stops_listening_on_exit() -> None:
    async with serve_app(make_app()) as url:
        pass
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{url}/hello")


async def test_two_servers_get_different_ports() -> None:
    async with serve_app(make_app()) as first, serve_app(make_app()) as second:
        assert port_of(first) != port_of(second)
        async with httpx.AsyncClient() as client:
            answers = await asyncio.gather(
                client.get(f"{first}/hello"), client.get(f"{second}/hello")
            )
        assert [a.status_code for a in answers] == [200, 200]


async def test_exits_with_an_open_keep_alive_connection() -> None:
    async with httpx.AsyncClient() as client:
        async with serve_app(make_app()) as url:
            assert (await client.get(f"{url}/hello")).status_code == 200
        # The pooled connection was closed by the server: a new request cannot connect.
        with pytest.raises(httpx.TransportError):
            await client.get(f"{url}/hello")


async def test_leaves_signal_handlers_alone() -> None:
    before = signal.getsignal(signal.SIGINT)
    async with serve_app(make_app()):
        assert signal.getsignal(signal.SIGINT) is before
    assert signal.getsignal(signal.SIGINT) is before


async def test_port_in_use_raises_naming_host_and_port(busy_port: int) -> None:
    with pytest.raises(RuntimeError, match=rf"127\.0\.0\.1:{busy_port}.*in use"):
        async with serve_app(make_app(), port=busy_port):
            pytest.fail("the server should not start")


async def test_lifespan_failure_raises() -> None:
    @contextlib.asynccontextmanager
    async def broken(app: Starlette) -> AsyncIterator[None]:
        raise ValueError("no database")
        yield

    with pytest.raises(RuntimeError, match="lifespan startup failed"):
        async with serve_app(Starlette(lifespan=broken)):
            pytest.fail("the server should not start")


async def test_a_failure_in_the_body_still_stops_the_server() -> None:
    events: list[str] = []
    with pytest.raises(KeyError):
        async with serve_app(make_app(events)):
            raise KeyError("boom")
    assert events == ["startup", "shutdown"]


def test_in_thread_serves_sync_callers() -> None:
    events: list[str] = []
    with serve_app_in_thread(make_app(events), host="127.0.0.1") as url:
        response = httpx.get(f"{url}/hello")
        assert response.status_code == 200
        assert response.json()["thread"].startswith("toolauth-serve")
    assert events == ["startup", "shutdown"]
    assert not [t for t in threading.enumerate() if t.name.startswith("toolauth-serve")]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/hello")


def test_in_thread_port_in_use_raises(busy_port: int) -> None:
    with (
        pytest.raises(RuntimeError, match=rf"127\.0\.0\.1:{busy_port}"),
        serve_app_in_thread(make_app(), host="127.0.0.1", port=busy_port),
    ):
        pytest.fail("the server should not start")
