"""``ta.events``: the connection lifecycle as a stream of events, read from the store.

Events are rows the store writes in the transaction of each change, numbered in commit order.
A subscription reads the rows after the last one it gave out whenever the store's change feed
rings (a commit here, another process's commit on SQLite or PostgreSQL), so it sees every
event once, in order, however many processes write.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType

import anyio

from .._exceptions import ValidationError
from .._loop import HomeLoop, on_home_loop
from ..events import Event, EventType
from ..store import ANY, Store

__all__ = ["EventStream", "Events"]


def _types(types: Sequence[EventType | str] | EventType | str | None) -> tuple[str, ...] | None:
    if types is None:
        return None
    given = [types] if isinstance(types, str) else list(types)
    known = {t.value for t in EventType}
    for value in given:
        if str(value) not in known:
            raise ValidationError(
                f"{value!r} is not an event type; use one of {', '.join(sorted(known))}.",
                field="types",
            )
    return tuple(str(t) for t in given) or None


class EventStream:
    """Events as they happen: ``async for event in stream`` (it starts at the first read,
    with the events committed after that moment, or after sequence ``after`` when given).

    ```python
    async with ta.events.subscribe(types=["connection.active"], user_id="u1") as stream:
        async for event in stream:
            print(event.type, event.connected_account_id)
    ```

    From sync code (``ToolAuth``): ``stream.next(timeout=5)`` returns the next event or
    ``None``; ``stream.aclose()`` ends it. A stream nobody holds any more (a ``break`` out of
    ``async for``, a task that ended, a dropped sync stream) stops listening once collected:
    its exit stack's context managers are generators, which the loop's async-generator
    finalizer closes.
    """

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        home: HomeLoop,
        types: tuple[str, ...] | None,
        user_id: str | None,
        after: int | None,
    ) -> None:
        self._store = store
        self._home = home
        self.types = types
        self.user_id = user_id
        self.cursor = after
        self._buffer: deque[Event] = deque()
        self._stack: contextlib.AsyncExitStack | None = None
        self._bell: object = None
        self._closed = False

    def __repr__(self) -> str:
        return f"EventStream(types={self.types!r}, user_id={self.user_id!r})"

    async def _start(self) -> Store:
        store = await self._store()
        if self._stack is None:
            stack = contextlib.AsyncExitStack()
            self._bell = stack.enter_context(store.changes.subscribe(ANY))
            await stack.enter_async_context(store.watching())
            self._stack = stack
            if self.cursor is None:
                self.cursor = await store.last_event_sequence()
        return store

    async def _read(self, store: Store) -> None:
        assert self.cursor is not None
        found = await store.list_events(
            after=self.cursor, types=self.types, user_id=self.user_id, limit=500
        )
        if found:
            self.cursor = found[-1].sequence
            self._buffer.extend(found)
        elif self.types or self.user_id:
            # Nothing of ours: skip past what was read, so the next read starts after it.
            self.cursor = max(self.cursor, await store.last_event_sequence())

    @on_home_loop
    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event; ``None`` when ``timeout`` seconds pass without one."""
        if self._closed:
            raise StopAsyncIteration
        store = await self._start()
        with anyio.move_on_after(timeout):
            while not self._buffer:
                await self._read(store)
                if self._buffer:
                    break
                await self._bell.wait()  # type: ignore[attr-defined]
        return self._buffer.popleft() if self._buffer else None

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        event = await self.next()
        assert event is not None
        return event

    @on_home_loop
    async def aclose(self) -> None:
        """Stop listening (also at the end of ``async with``)."""
        self._closed = True
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> EventStream:
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Events:
    """The lifecycle events of connected accounts, auth configs and webhook endpoints."""

    def __init__(self, *, store: Callable[[], Awaitable[Store]], home: HomeLoop) -> None:
        self._store = store
        self._home = home

    def subscribe(
        self,
        *,
        types: Sequence[EventType | str] | EventType | str | None = None,
        user_id: str | None = None,
        after: int | None = None,
    ) -> EventStream:
        """Events as they are committed, here or by any process sharing the store, in
        commit order (so in order per account). ``types`` and ``user_id`` filter them;
        ``after`` (an event's ``sequence``) replays from there instead of starting now."""
        return EventStream(
            store=self._store, home=self._home, types=_types(types), user_id=user_id, after=after
        )

    @on_home_loop
    async def list(
        self,
        *,
        after: int = 0,
        types: Sequence[EventType | str] | EventType | str | None = None,
        user_id: str | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Stored events after sequence ``after``, oldest first."""
        if not isinstance(limit, int) or limit < 1:
            raise ValidationError("limit must be a positive whole number.", field="limit")
        store = await self._store()
        return await store.list_events(
            after=after, types=_types(types), user_id=user_id, limit=limit
        )
