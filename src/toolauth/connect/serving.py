"""Run any ASGI app on loopback in the background, with a real uvicorn server.

Used by tests, benchmarks and the offline demo to serve the demo provider and the connect app.

```python
async with serve_app(app) as base_url:  # "http://127.0.0.1:54321"
    async with httpx.AsyncClient(base_url=base_url) as client:
        ...

with serve_app_in_thread(app) as base_url:  # from sync code: scripts, notebooks
    httpx.get(f"{base_url}/health")
```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn

from .._loop import HomeLoop
from .logs import install_access_log_filter

__all__ = ["serve_app", "serve_app_in_thread", "served_url"]

_log = logging.getLogger("uvicorn.error")  # where uvicorn says the same


class _BackgroundServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone and says when it is up."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = asyncio.Event()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Stop now: the main loop wakes at once instead of at its next 0.1 s tick."""
        self.should_exit = True
        self._stop.set()

    async def main_loop(self) -> None:
        # uvicorn's own loop looks at `should_exit` every 0.1 s; this one waits on an event,
        # ticking once a second for what ticks do (the Date header, request limits).
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864_000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.up.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's own shutdown, without its fixed 0.1 s sleep and 0.1 s polls: a server that
        # has nothing left to finish stops at once (tests start and stop hundreds of them).
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle keep-alive connections close; busy ones finish
        try:
            await asyncio.wait_for(self._drained(), self.config.timeout_graceful_shutdown)
        except asyncio.TimeoutError:
            _log.error(
                "Cancel %s running task(s), timeout graceful shutdown exceeded",
                len(self.server_state.tasks),
            )
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drained(self) -> None:
        # uvicorn keeps no event for "the last connection closed": poll it, briefly.
        state = self.server_state
        while (state.connections or state.tasks) and not self.force_exit:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Whoever owns the loop owns Ctrl+C; stopping goes through `should_exit`.
        yield


def served_url(host: str, port: int) -> str:
    """The URL a server on ``host:port`` answers at."""
    return _format_url(host, port)


def _format_url(host: str, port: int) -> str:
    if ":" in host:  # an IPv6 literal needs brackets (RFC 3986 §3.2.2)
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _bind_error(host: str, port: int) -> str | None:
    """Why binding host:port fails right now, if it does (a best-effort diagnostic)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.create_server((host, port), family=family):
            return None
    except OSError as exc:
        return str(exc)


async def _serve_guarded(server: uvicorn.Server) -> None:
    # uvicorn calls sys.exit() when startup fails; a SystemExit escaping a task would stop
    # the whole event loop, so turn it into a normal return and let the caller report it.
    with contextlib.suppress(SystemExit):
        await server.serve()


def _startup_error(
    server: uvicorn.Server, task: asyncio.Task[None], host: str, port: int
) -> Exception:
    where = f"{host}:{port}"
    lifespan = getattr(server, "lifespan", None)
    if getattr(lifespan, "startup_failed", False):
        return RuntimeError(
            f"could not start a server on {where}: the app's lifespan startup failed "
            "(see the 'uvicorn.error' log)"
        )
    if not task.cancelled() and task.exception() is not None:
        return RuntimeError(f"could not start a server on {where}: {task.exception()!r}")
    reason = _bind_error(host, port) or "the address could not be bound"
    return RuntimeError(
        f"could not start a server on {where}: {reason}. Pick another port, or port=0 for a "
        "free one."
    )


@contextlib.asynccontextmanager
async def serve_app(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    shutdown_timeout: int = 5,
    access_log: bool = False,
) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn as a task of the running event loop.

    Args:
        app: any ASGI 3 application; its lifespan runs ("on").
        host: the interface to bind, loopback by default.
        port: the port to bind; 0 picks a free one.
        shutdown_timeout: seconds to let in-flight requests finish on exit before cancelling.
        access_log: log each request to ``uvicorn.access`` (off for tests and embedding).

    Returns:
        An async context manager yielding the base URL with the real bound port.

    Raises:
        RuntimeError: the server did not start (address in use, lifespan startup failed).
    """
    if access_log:  # whatever the app, no link id or query string in its access lines
        install_access_log_filter()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level="info" if access_log else "warning",
        log_config=None,  # leave the process's logging configuration alone
        access_log=access_log,
        http="h11",
        ws="none",
        timeout_graceful_shutdown=shutdown_timeout,
    )
    server = _BackgroundServer(config)
    task = asyncio.create_task(_serve_guarded(server), name=f"uvicorn {host}:{port}")
    up = asyncio.create_task(server.up.wait())
    await asyncio.wait({task, up}, return_when=asyncio.FIRST_COMPLETED)
    up.cancel()
    if not server.started:
        await asyncio.gather(task, return_exceptions=True)
        raise _startup_error(server, task, host, port)

    bound_port = int(server.servers[0].sockets[0].getsockname()[1])
    try:
        yield _format_url(host, bound_port)
    finally:
        server.stop()
        try:
            await task
        except asyncio.CancelledError:
            task.cancel()
            raise


@contextlib.contextmanager
def serve_app_in_thread(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    shutdown_timeout: int = 5,
) -> Iterator[str]:
    """Serve an ASGI app from sync code: its own event loop in a daemon thread.

    Same arguments and errors as `serve_app`. Yields the base URL; on exit the server stops
    and the thread ends.
    """
    home = HomeLoop.in_thread(f"toolauth-serve {host}:{port}")
    try:
        with home.enter(
            serve_app(app, host=host, port=port, shutdown_timeout=shutdown_timeout)
        ) as url:
            yield url
    finally:
        home.stop()
