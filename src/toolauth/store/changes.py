"""In-process change notifications: the store publishes an account id after each commit that
changes it, and waiters wake at once instead of polling. A commit made here also hands over
the rows it wrote, so a waiter can decide without reading them back.

One hub belongs to one store and one event loop. Changes made by other processes reach it
through the backend (SQLite's ``PRAGMA data_version``, PostgreSQL's LISTEN/NOTIFY), which
calls :meth:`ChangeHub.publish_all` when it cannot tell which account changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["ANY", "TOOLKITS", "ChangeHub", "Subscription"]

# The key stored toolkit definitions change under (account ids start with ``ca_``): a commit
# that stores or removes one publishes it, and PostgreSQL NOTIFYs it to other instances.
TOOLKITS = "toolkits"

# The key of subscribers to every change (event subscribers): each publish rings them too.
ANY = "*"


class Subscription:
    """A subscriber's doorbell. Read the state *after* subscribing, then ``await wait()``."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._event = asyncio.Event()
        self._models: list[Any] = []
        self._unknown = False

    def ring(self, models: tuple[Any, ...]) -> None:
        if models:
            self._models.extend(models)
        else:
            self._unknown = True
        self._event.set()

    async def wait(self) -> list[Any] | None:
        """Return after the next change; changes since the last ``wait`` return at once.

        Returns the committed models published with the changes, or ``None`` when some
        change came without them (another process, a delete): then read the state again.
        """
        await self._event.wait()
        # Re-arm before the caller re-reads state, so a change during the re-read rings again.
        self._event = asyncio.Event()
        models, self._models = self._models, []
        unknown, self._unknown = self._unknown, False
        return None if unknown else models


class ChangeHub:
    """Who waits for which account, and the bell that wakes them."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        self.generation = 0  # bumped by every publish: lets readers cache until anything changes

    @contextmanager
    def subscribe(self, account_id: str) -> Iterator[Subscription]:
        sub = Subscription(account_id)
        self._subs.setdefault(account_id, set()).add(sub)
        try:
            yield sub
        finally:
            group = self._subs.get(account_id)
            if group is not None:
                group.discard(sub)
                if not group:
                    del self._subs[account_id]

    def publish(self, account_id: str, *models: Any) -> None:
        """Account ``account_id`` changed; ``models`` are the rows the commit wrote, if known."""
        self.generation += 1
        for sub in tuple(self._subs.get(account_id, ())):
            sub.ring(models)
        if account_id != ANY:
            for sub in tuple(self._subs.get(ANY, ())):
                sub.ring(())

    def publish_all(self) -> None:
        self.generation += 1
        for group in tuple(self._subs.values()):
            for sub in tuple(group):
                sub.ring(())
