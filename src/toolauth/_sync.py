"""The synchronous API: a thin layer that drives the async core on a private event loop.

Nothing here copies the async code. ``ToolAuth`` owns a :class:`~toolauth._loop.HomeLoop` in a
daemon thread; every coroutine method of the wrapped objects runs there, so loop-bound things
(the store's connection, locks, the connect server) never cross threads. Objects that have
coroutine methods of their own (resources, connection requests, sessions) come back wrapped
the same way; plain values come back as they are.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

from ._loop import HomeLoop, is_home_method

__all__ = ["SyncProxy", "ToolAuth"]


def _is_resource(cls: type[Any]) -> bool:
    """Objects whose methods run on the client's loop (``@on_home_loop``: the resources
    layer's managers, sessions, connection requests) come back wrapped."""
    return any(is_home_method(getattr(cls, name, None)) for name in dir(cls))


_RESOURCE_TYPES: dict[type[Any], bool] = {}


def _wrap(value: Any, loop: HomeLoop) -> Any:
    if isinstance(value, list):
        return [_wrap(item, loop) for item in value]
    cls = type(value)
    wrap = _RESOURCE_TYPES.get(cls)
    if wrap is None:
        wrap = _RESOURCE_TYPES[cls] = _is_resource(cls)
    return SyncProxy(value, loop) if wrap else value


class SyncProxy:
    """The sync face of an async object: coroutine methods block until done."""

    def __init__(self, target: Any, loop: HomeLoop) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_loop", loop)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if inspect.iscoroutinefunction(value):
            loop = self._loop

            @functools.wraps(value)
            def call(*args: Any, **kwargs: Any) -> Any:
                return _wrap(loop.call(value, *args, **kwargs), loop)

            return call
        if inspect.ismethod(value):  # a plain method may return a resource too: create()
            loop = self._loop

            @functools.wraps(value)
            def call_plain(*args: Any, **kwargs: Any) -> Any:
                return _wrap(value(*args, **kwargs), loop)

            return call_plain
        return _wrap(value, self._loop)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._target)))

    def __repr__(self) -> str:
        return f"<sync {self._target!r}>"


class ToolAuth(SyncProxy):
    """The synchronous client: the same methods as :class:`AsyncToolAuth`, blocking.

    ```python
    ta = ToolAuth()
    config = ta.auth_configs.create("github", type="use_custom_auth",
        credentials={"client_id": "...", "client_secret": "..."})
    ta.close()
    ```

    Takes the same arguments as :class:`AsyncToolAuth`.
    """

    def __init__(
        self,
        *,
        database_url: str | None = None,
        encryption_key: str | None = None,
        home: str | Path | None = None,
        base_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        from ._client import AsyncToolAuth

        loop = HomeLoop.in_thread("toolauth-sync")

        async def build() -> AsyncToolAuth:
            return AsyncToolAuth(
                database_url=database_url,
                encryption_key=encryption_key,
                home=home,
                base_url=base_url,
                **kwargs,
            )

        try:
            client = loop.call(build)
        except BaseException:
            loop.stop()
            raise
        super().__init__(client, loop)
        object.__setattr__(self, "_finalizer", weakref.finalize(self, _shutdown, client, loop))

    @property
    def async_client(self) -> Any:
        """The :class:`AsyncToolAuth` this client drives (use it only on its own loop)."""
        return self._target

    def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> Any:
        """Run the connect app in the background; ``with ta.serve(port=0) as url: ...``."""
        return self._loop.enter(self._target.serve(host=host, port=port))

    def close(self) -> None:
        """Close the store and stop the private loop. Also runs at interpreter exit."""
        self._finalizer()

    def __enter__(self) -> ToolAuth:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._target).replace("AsyncToolAuth", "ToolAuth", 1)


def _shutdown(client: Any, loop: HomeLoop) -> None:
    try:
        loop.call(client.aclose)
    finally:
        loop.stop()
