"""``ta.webhooks``: endpoints that receive the lifecycle events, signed per Standard Webhooks.

An endpoint's deliveries are written to the outbox in the transaction of each change (see
:mod:`toolauth.store.lifecycle`); the keeper (``ta.keeper()``, ``toolauth keeper``) or
:meth:`Webhooks.deliver` sends them (:mod:`toolauth.resources.deliveries`).
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import SecretStr

from .._exceptions import NotFoundError, ValidationError
from .._ids import new_id
from .._loop import HomeLoop, on_home_loop
from .._models import utcnow
from .._settings import Settings
from .._validation import check_text
from ..events import EventType, WebhookEndpoint
from ..store import Store
from ..webhooks import check_endpoint_url, new_secret
from ..webhooks.signing import SECRET_PREFIX, _key
from .deliveries import Deliverer

__all__ = ["Webhooks"]

_UNSET: Any = object()


def _event_types(events: Sequence[EventType | str] | None) -> tuple[str, ...]:
    if events is None:
        return ()
    if isinstance(events, str):
        events = [events]
    known = {t.value for t in EventType}
    for value in events:
        if str(value) not in known:
            raise ValidationError(
                f"{value!r} is not an event type; use some of {', '.join(sorted(known))} "
                "(or none for all).",
                field="events",
            )
    return tuple(dict.fromkeys(str(e) for e in events))


def _public(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """The endpoint without its secret (shown once, at creation)."""
    return endpoint.model_copy(update={"secret": None})


class Webhooks:
    """Create, list, update and delete webhook endpoints; deliver what is due."""

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        settings: Settings,
        home: HomeLoop,
        deliverer: Deliverer,
    ) -> None:
        self._store = store
        self._settings = settings
        self._home = home
        self._deliverer = deliverer

    def _url(self, url: str) -> str:
        return check_endpoint_url(url, allow_private=self._settings.webhook_allow_private)

    @on_home_loop
    async def create(
        self,
        url: str,
        *,
        events: Sequence[EventType | str] | None = None,
        secret: str | None = None,
        description: str | None = None,
    ) -> WebhookEndpoint:
        """Register an endpoint for ``events`` (default: all). Returns it with its signing
        secret in ``.secret`` (``whsec_…``): the only time it is shown, so keep it for
        :func:`toolauth.webhooks.verify`."""
        url = self._url(url)
        if secret is None:
            secret = new_secret()
        elif not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
            raise ValidationError(
                "secret must be a Standard Webhooks secret (whsec_ and base64), or None to "
                "have one made.",
                field="secret",
            )
        else:
            _key(secret)
        now = utcnow()
        endpoint = WebhookEndpoint(
            id=new_id("wh"), url=url, events=_event_types(events),
            description=check_text(description, field="description") if description else None,
            created_at=now, updated_at=now, secret=SecretStr(secret),
        )  # fmt: skip
        store = await self._store()
        await store.create_webhook(endpoint)
        return endpoint

    @on_home_loop
    async def get(self, id: str) -> WebhookEndpoint:
        store = await self._store()
        endpoint = await store.get_webhook(id)
        if endpoint is None:
            raise NotFoundError("webhook endpoint", id)
        return _public(endpoint)

    @on_home_loop
    async def list(self) -> list[WebhookEndpoint]:
        store = await self._store()
        return [_public(e) for e in await store.list_webhooks()]

    @on_home_loop
    async def update(
        self,
        id: str,
        *,
        url: str = _UNSET,
        events: Sequence[EventType | str] | None = _UNSET,
        enabled: bool = _UNSET,
        description: str | None = _UNSET,
    ) -> WebhookEndpoint:
        """Change what is given. Enabling a disabled endpoint clears its failure record; the
        deliveries it missed while disabled are then sent."""
        update: dict[str, Any] = {}
        if url is not _UNSET:
            update["url"] = self._url(url)
        if events is not _UNSET:
            update["events"] = _event_types(events)
        if description is not _UNSET:
            update["description"] = (
                check_text(description, field="description") if description else None
            )
        if enabled is not _UNSET:
            if not isinstance(enabled, bool):
                raise ValidationError("enabled must be True or False.", field="enabled")
            update["enabled"] = enabled
            if enabled:
                update.update(disabled_reason=None, failing_since=None)

        def apply(current: WebhookEndpoint) -> WebhookEndpoint:
            return current.model_copy(update=update) if update else current

        store = await self._store()
        return _public(await store.modify_webhook(id, apply))

    @on_home_loop
    async def enable(self, id: str) -> WebhookEndpoint:
        return await self.update(id, enabled=True)

    @on_home_loop
    async def disable(self, id: str) -> WebhookEndpoint:
        """Stop deliveries to this endpoint (they queue until it is enabled again)."""
        return await self.update(id, enabled=False)

    @on_home_loop
    async def delete(self, id: str) -> None:
        """Delete the endpoint and its queued deliveries."""
        store = await self._store()
        if not await store.delete_webhook(id):
            raise NotFoundError("webhook endpoint", id)

    @on_home_loop
    async def deliveries(self, id: str) -> builtins.list[dict[str, Any]]:
        """The endpoint's deliveries: ``id``, ``status`` (PENDING / DELIVERED), ``attempts``,
        ``next_attempt_at`` and ``last_error``."""
        await self.get(id)
        store = await self._store()
        return await store.deliveries(id)

    @on_home_loop
    async def deliver(self) -> int:
        """Send the deliveries that are due now (one round); returns how many were sent."""
        return await self._deliverer.run_once()
