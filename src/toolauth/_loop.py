"""The one bridge between event loops: run a coroutine on the loop that owns what it touches.

The store (its connections, locks and change feed), the HTTP connection pool and the connect
server all belong to one event loop: the caller's loop for ``AsyncToolAuth`` (the loop its
store opened on), a private thread's loop for the sync ``ToolAuth`` and for
``serve_app_in_thread``. Work that arrives from elsewhere — LangChain calling a tool under
another ``asyncio.run``, a sync ``invoke`` from a worker thread, a sync method of ``ToolAuth``
— hops onto that loop through a :class:`HomeLoop` instead of touching its objects from afar.

```python
home = HomeLoop.in_thread("toolauth-sync")   # a loop of our own, in a daemon thread
client = home.call(make_client)              # from sync code: blocks until done
result = await home.run(client.method)       # from any loop: awaits without blocking it
with home.enter(client.serve()) as url: ...  # an async context manager, from sync code
home.stop()
```
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, ParamSpec, TypeVar

from ._exceptions import ClientClosedError

__all__ = [
    "HomeLoop",
    "InsideLoopError",
    "LoopClosedError",
    "cancel_and_wait",
    "is_home_method",
    "loop_running",
    "on_home_loop",
    "run_sync",
]

T = TypeVar("T")
P = ParamSpec("P")


class LoopClosedError(ClientClosedError):
    """The loop that owns the work is gone (the client was closed, or its loop ended)."""


class HomeLoop:
    """The event loop that owns a client's loop-bound resources.

    It is the loop the client was made on (while it runs), then the loop its store opened on
    (:meth:`claim`), or a loop of its own in a daemon thread (:meth:`in_thread`).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._claimed: asyncio.AbstractEventLoop | None = loop
        self._thread: threading.Thread | None = None
        self._owned = False  # a loop of our own (in_thread): once stopped, it stays stopped
        try:
            self._origin: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._origin = None

    @classmethod
    def in_thread(cls, name: str) -> HomeLoop:
        """A new event loop running in a daemon thread until :meth:`stop`."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                _drain(loop)

        home = cls(loop)
        home._owned = True
        home._thread = threading.Thread(target=run, name=name, daemon=True)
        home._thread.start()
        ready.wait()
        return home

    def claim(self) -> None:
        """Make the running loop home (the store opened on it); a thread's loop stays home."""
        if not self._owned:
            self._claimed = asyncio.get_running_loop()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The home loop while it runs: the claimed one, else the one the owner was made on."""
        for loop in (self._claimed, self._origin):
            if loop is not None and loop.is_running() and not loop.is_closed():
                return loop
        return None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self.loop
        if loop is None and self._owned:
            raise LoopClosedError("This ToolAuth client is closed.")
        if loop is None:
            raise LoopClosedError(
                "The toolauth client's event loop is not running. With AsyncToolAuth, call "
                "tools with `await tool.ainvoke(...)` on the loop that uses the client; the "
                "synchronous ToolAuth client supports both invoke and ainvoke."
            )
        return loop

    def is_current(self) -> bool:
        """True when called on the home loop itself (or while there is no home yet)."""
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            return False
        home = self.loop
        if home is None:  # no home yet: wherever the work is; a stopped one of our own: nowhere
            return not self._owned and self._claimed is None
        return home is current

    async def run(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` on the home loop, from any loop."""
        if self.is_current():
            return await fn(*args, **kwargs)
        home = self._running_loop()
        future = asyncio.run_coroutine_threadsafe(_await(fn, *args, **kwargs), home)
        return await asyncio.wrap_future(future)

    def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the home loop from synchronous code; block until done.

        With no home loop running (an ``AsyncToolAuth`` used from plain sync code), it runs
        on a fresh ``asyncio.run``.
        """
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        home = self.loop
        if home is not None and running is home:
            raise RuntimeError(
                "A synchronous toolauth call was made on the client's own event loop; use the "
                "async form (ainvoke / await) there."
            )
        if home is None and self._owned:
            raise LoopClosedError("This ToolAuth client is closed.")
        if home is None:
            return run_sync(fn, *args, **kwargs)
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(
            _await(fn, *args, **kwargs), home
        )
        return future.result()

    @contextlib.contextmanager
    def enter(self, manager: AbstractAsyncContextManager[T]) -> Iterator[T]:
        """Use an async context manager from sync code: it is entered and exited in one task
        on the home loop, which keeps it alive in between. Exceptions behave as in ``with``."""
        home = self._running_loop()
        entered: concurrent.futures.Future[T] = concurrent.futures.Future()
        leaving: concurrent.futures.Future[BaseException | None] = concurrent.futures.Future()

        async def hold() -> bool | None:
            try:
                value = await manager.__aenter__()
            except BaseException as exc:
                entered.set_exception(exc)
                return None
            entered.set_result(value)
            error = await asyncio.wrap_future(leaving)
            if error is None:
                return await manager.__aexit__(None, None, None)
            return await manager.__aexit__(type(error), error, error.__traceback__)

        done = asyncio.run_coroutine_threadsafe(hold(), home)
        value = entered.result()
        try:
            yield value
        except BaseException as exc:
            leaving.set_result(exc)
            if not done.result():  # an error of __aexit__ propagates, with exc as its context
                raise
        else:
            leaving.set_result(None)
            done.result()

    def stop(self) -> None:
        """Stop a loop of our own (from :meth:`in_thread`) and wait for its thread."""
        thread, self._thread = self._thread, None
        loop = self._claimed
        if thread is None or loop is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
        if not thread.is_alive() and not loop.is_closed():
            loop.close()
        self._claimed = None


class InsideLoopError(RuntimeError):
    """A blocking call was made where an event loop is running (use the async form)."""


def loop_running() -> bool:
    """True when this thread is running an event loop (a blocking call here would stall it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_sync(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn(*args, **kwargs)`` to the end from sync code, on a fresh event loop;
    ``InsideLoopError`` when this thread is already running one."""
    if loop_running():
        raise InsideLoopError(
            "Called synchronously inside a running event loop; use the async form."
        )
    return asyncio.run(_await(fn, *args, **kwargs))


async def _await(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    return await fn(*args, **kwargs)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling again if it goes on: on
    Python < 3.12 ``asyncio.wait_for`` can swallow a cancellation that lands as its inner
    future completes (gh-86296), and a background loop would then run, and be waited on,
    forever. The task's own outcome is not raised here."""
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    if task is not None and not task.cancelled():
        task.exception()  # retrieved: an error of a stopped task is not "never retrieved"


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still scheduled on a stopped loop and let it finish."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


def on_home_loop(
    method: Callable[..., Coroutine[Any, Any, T]],
) -> Callable[..., Coroutine[Any, Any, T]]:
    """Run an async method of an object with a ``_home`` :class:`HomeLoop` on that loop, so
    any loop may call it (direct when already there)."""

    @functools.wraps(method)
    async def on_home(self: Any, *args: Any, **kwargs: Any) -> T:
        home: HomeLoop = self._home
        if home.is_current():
            return await method(self, *args, **kwargs)
        return await home.run(method, self, *args, **kwargs)

    on_home.__toolauth_on_home__ = True  # type: ignore[attr-defined]
    return on_home


def is_home_method(value: object) -> bool:
    """True for a method made with :func:`on_home_loop`."""
    return getattr(value, "__toolauth_on_home__", False) is True
