"""Running core coroutines on the client's own event loop.

The store (and everything loop-bound under it) lives on the loop that opened it: the caller's
loop for ``AsyncToolAuth``, a private thread's loop for ``ToolAuth``. LangChain may call a tool
from another loop (``ainvoke`` under a different ``asyncio.run``) or from a worker thread
(``invoke``); these helpers hop onto the home loop instead of touching its objects from afar.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["HomeLoop"]

T = TypeVar("T")


class HomeLoop:
    """The event loop a client's store was opened on."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        # The loop the client was made on, if any: home until the store opens (the sync
        # ToolAuth makes its client on its own loop thread, so a first call from a tool that
        # runs under a short-lived asyncio.run must not make that loop home).
        try:
            self._origin: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._origin = None

    def claim(self) -> None:
        """Record the running loop as home (called when the store opens)."""
        self.loop = asyncio.get_running_loop()

    def _home(self) -> asyncio.AbstractEventLoop | None:
        """The claimed loop; before that, the loop the client was made on while it runs."""
        if self.loop is not None:
            return self.loop
        origin = self._origin
        if origin is not None and origin.is_running() and not origin.is_closed():
            return origin
        return None

    def _usable(self) -> asyncio.AbstractEventLoop:
        loop = self._home()
        if loop is None or loop.is_closed() or not loop.is_running():
            raise RuntimeError(
                "The toolauth client's event loop is not running. With AsyncToolAuth, call "
                "tools with `await tool.ainvoke(...)` on the loop that uses the client; the "
                "synchronous ToolAuth client supports both invoke and ainvoke."
            )
        return loop

    async def run(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)`` on the home loop, from any loop."""
        current = asyncio.get_running_loop()
        home = self._home()
        if home is None or home is current:
            return await fn(*args, **kwargs)
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(
            fn(*args, **kwargs), self._usable()
        )
        return await asyncio.wrap_future(future)

    def run_sync(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` to completion from synchronous code."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        home = self._home()
        if home is not None and not home.is_closed() and home.is_running():
            if running is home:
                raise RuntimeError(
                    "A synchronous toolauth call was made on the client's own event loop; "
                    "use the async form (ainvoke / await) there."
                )
            return asyncio.run_coroutine_threadsafe(fn(*args, **kwargs), home).result()
        if running is not None:
            raise RuntimeError(
                "Called synchronously inside a running event loop; use the async form instead."
            )
        return asyncio.run(_call(fn, *args, **kwargs))


async def _call(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
    return await fn(*args, **kwargs)
