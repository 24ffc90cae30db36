"""``ta.audit``: the append-only record of who did what.

Each state change writes its entry in its own transaction (the event's type as the action, the
actor from :mod:`toolauth.events.context`); actions that change no row — a connect link
opened, a tool call made with an account — are appended here. Entries hold ids, statuses and
reasons: never a secret, token or link id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from .._exceptions import ValidationError
from .._loop import HomeLoop, on_home_loop
from .._models import utcnow
from ..events import AuditEntry
from ..store import Store

__all__ = ["Audit"]


class Audit:
    """Read and prune the audit log."""

    def __init__(self, *, store: Callable[[], Awaitable[Store]], home: HomeLoop) -> None:
        self._store = store
        self._home = home

    @on_home_loop
    async def list(
        self,
        *,
        user_id: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """Entries (oldest first) about ``user_id`` and from ``since`` on, when given."""
        if since is not None and (not isinstance(since, datetime) or since.utcoffset() is None):
            raise ValidationError(
                "since must be a timezone-aware datetime, e.g. "
                "datetime.now(timezone.utc) - timedelta(days=1).",
                field="since",
            )
        if not isinstance(limit, int) or limit < 1:
            raise ValidationError("limit must be a positive whole number.", field="limit")
        store = await self._store()
        return await store.list_audit(user_id=user_id, since=since, limit=limit)

    @on_home_loop
    async def prune(self, *, older_than_days: float) -> tuple[int, int]:
        """Delete audit entries and events (with their webhook deliveries) older than
        ``older_than_days``; returns how many events and entries went."""
        if not isinstance(older_than_days, (int, float)) or older_than_days < 0:
            raise ValidationError(
                "older_than_days must be a number of days, 0 or more.", field="older_than_days"
            )
        store = await self._store()
        return await store.prune(utcnow() - timedelta(days=older_than_days))
