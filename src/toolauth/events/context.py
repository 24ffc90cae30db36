"""Who is acting: a context variable the store reads when it writes an audit entry.

The app is the actor unless code says otherwise: the connect app acts for the user, tools for
the agent, the keeper for itself. Context variables follow a task and the tasks it starts (and
the hop onto the client's home loop), so the store sees the actor of the call that wrote.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from .types import Actor

__all__ = ["acting_as", "current_actor"]

_ACTOR: ContextVar[tuple[Actor, str | None]] = ContextVar(
    "toolauth_actor", default=(Actor.APP, None)
)


def current_actor() -> tuple[Actor, str | None]:
    """The actor of the running code, and its id when it has one (a tool's name, a keeper)."""
    return _ACTOR.get()


@contextlib.contextmanager
def acting_as(actor: Actor, actor_id: str | None = None) -> Iterator[None]:
    """Code inside acts as ``actor``."""
    token = _ACTOR.set((actor, actor_id))
    try:
        yield
    finally:
        _ACTOR.reset(token)
