"""PostgreSQL LISTEN, supervised: one connection that hears other instances' commits.

The connection opens with the first watcher, reconnects with backoff when it drops (then rings
every bell, since changes made meanwhile went unheard), and closes when nobody has watched for
``check`` seconds. While in use it is checked every ``check`` seconds, so a half-open TCP
connection is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from .._exceptions import StoreError
from .._loop import cancel_and_wait

__all__ = ["CONNECT_ERRORS", "DB_ERRORS", "Listener", "drop", "reason"]

DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
CONNECT_ERRORS = (*DB_ERRORS, asyncio.TimeoutError)


def reason(exc: BaseException) -> str:
    """What went wrong, without the DETAIL line (which may quote row values)."""
    message = getattr(exc, "message", None) or str(exc).split("\n", 1)[0]
    return message or type(exc).__name__


async def drop(conn: Any, timeout: float = 2.0) -> None:
    """Close ``conn`` politely, or cut it if that does not work within ``timeout`` seconds."""
    try:
        await asyncio.wait_for(conn.close(), timeout)
    except (*CONNECT_ERRORS, asyncio.CancelledError):
        conn.terminate()


class Listener:
    """Holds the LISTEN connection on ``channel`` while anyone is :meth:`watching`.

    Args:
        connect: opens a new connection (given the ``timeout`` to use).
        channel: the channel to LISTEN on.
        notified: asyncpg's listener callback ``(conn, pid, channel, payload)``.
        lost: called after a reconnect: changes may have gone unheard.
        where: the database, for error messages (password masked).
        check: seconds between checks of the connection; idle this long, it closes.
        timeout: seconds :meth:`watching` waits for LISTEN to start.
        reconnect_delay: first wait before reconnecting; doubles up to ``reconnect_max_delay``.
    """

    def __init__(
        self,
        connect: Callable[[float], Awaitable[Any]],
        channel: str,
        notified: Callable[[Any, int, str, str], None],
        lost: Callable[[], None],
        where: str,
        *,
        check: float = 15.0,
        timeout: float = 10.0,
        reconnect_delay: float = 0.05,
        reconnect_max_delay: float = 2.0,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._notified = notified
        self._lost = lost
        self._where = where
        self.check = check
        self.timeout = timeout
        self.reconnect_delay = reconnect_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.watchers = 0
        self.task: asyncio.Task[None] | None = None
        self.conn: Any = None
        self._attempt: asyncio.Future[BaseException | None] | None = None

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """LISTEN is running before this yields, so a commit landing between the caller's
        first read and its wait still rings."""
        self.watchers += 1
        try:
            await self._listening()
            yield
        finally:
            self.watchers -= 1

    async def aclose(self, error: BaseException) -> None:
        """Stop listening; anyone waiting for LISTEN to start gets ``error``."""
        task, self.task = self.task, None
        self._settle(error)
        await cancel_and_wait(task)

    async def _listening(self) -> None:
        """Return once the LISTEN connection is up, starting it if need be."""
        if self.conn is not None:
            return
        if self._attempt is None or self._attempt.done():
            self._attempt = asyncio.get_running_loop().create_future()
        attempt = self._attempt
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._listen(), name="toolauth-postgres-listen")
        try:
            error = await asyncio.wait_for(asyncio.shield(attempt), self.timeout)
        except asyncio.TimeoutError:
            raise StoreError(
                f"Could not listen for changes on {self._where} within {self.timeout:g} s."
            ) from None
        if error is not None:
            raise StoreError(
                f"Cannot listen for changes on {self._where}: {reason(error)}"
            ) from error

    def _settle(self, error: BaseException | None) -> None:
        attempt = self._attempt
        if attempt is not None and not attempt.done():
            attempt.set_result(error)

    async def _open(self) -> tuple[Any, asyncio.Event]:
        conn = await self._connect(self.timeout)
        lost = asyncio.Event()

        def on_lost(closed: Any) -> None:
            lost.set()
            if self.conn is closed:
                self.conn = None

        try:
            conn.add_termination_listener(on_lost)
            await conn.add_listener(self._channel, self._notified)
        except BaseException:
            await drop(conn)
            raise
        return conn, lost

    async def _listen(self) -> None:
        """Hold the LISTEN connection while anyone watches; reconnect (with backoff) when it
        drops, then wake every waiter, since changes made meanwhile went unheard."""
        me = asyncio.current_task()
        loop = asyncio.get_running_loop()
        delay = self.reconnect_delay
        reconnecting = False
        try:
            while self.task is me:
                try:
                    conn, lost = await self._open()
                except CONNECT_ERRORS as exc:
                    if self.task is not me:
                        return
                    self._settle(exc)
                    if self.watchers == 0:
                        self.task = None
                        return
                    await asyncio.sleep(delay)
                    delay = min(2 * delay, self.reconnect_max_delay)
                    continue
                since = loop.time()
                try:
                    if self.task is not me:
                        return
                    if not lost.is_set():
                        self.conn = conn
                        self._settle(None)
                        if reconnecting:
                            self._lost()
                        reconnecting = True
                        await self._hold(conn, lost)
                finally:
                    if self.conn is conn:
                        self.conn = None
                    await drop(conn)
                if self.task is not me:
                    return
                if loop.time() - since > 1.0:  # it worked for a while: start backing off anew
                    delay = self.reconnect_delay
                await asyncio.sleep(delay)
                delay = min(2 * delay, self.reconnect_max_delay)
        finally:
            if self.task is me:
                self.task = None

    async def _hold(self, conn: Any, lost: asyncio.Event) -> None:
        """Return when the connection is lost, or (having retired this task) when nobody has
        watched for ``check`` seconds."""
        me = asyncio.current_task()
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(lost.wait(), self.check)
            if self.task is not me:
                return
            if lost.is_set():
                break
            if self.watchers == 0:
                self.task = None  # retired: a new watcher starts a new listener
                self.conn = None
                return
            try:  # a half-open TCP connection would otherwise go unnoticed
                await asyncio.wait_for(conn.fetchval("SELECT 1"), self.check)
            except CONNECT_ERRORS:
                break
        self.conn = None
        if self.watchers == 0:
            self.task = None
