"""Sending the webhook outbox: at least once, with exponential backoff, and never one delivery
by two deliverers at the same time.

A deliverer takes a lease on a batch of due rows (``claim_deliveries``: the database decides,
so several processes or instances share the work), posts each event signed per Standard
Webhooks, and records the outcome. One killed mid-delivery loses nothing: its lease runs out
and another deliverer sends the delivery again, with the same ``webhook-id`` (receivers
dedupe on it). Targets are resolved before each attempt and refused when not public, unless
``TOOLAUTH_WEBHOOK_ALLOW_PRIVATE`` is set.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from urllib.parse import urlsplit

import anyio

from .._http import HttpPool
from .._models import utcnow
from .._settings import Settings
from ..events import Delivery, WebhookEndpoint
from ..store import ANY, Store
from ..webhooks import headers as signed_headers
from ..webhooks.urls import is_public_address

__all__ = ["Deliverer"]

log = logging.getLogger("toolauth.webhooks")

_USER_AGENT = "toolauth-webhooks"


class _Refused(Exception):
    """The target may not be sent to (its address is not public)."""


class Deliverer:
    """Delivers the outbox of the store it is given."""

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        settings: Settings,
        http: HttpPool,
    ) -> None:
        self._store = store
        self._settings = settings
        self._http = http
        self.owner = f"{os.getpid()}-{secrets.token_hex(6)}"
        self.sent = 0  # deliveries a receiver took, by this deliverer (for benchmarks)

    @property
    def lease(self) -> float:
        """How long a claim holds a delivery: longer than an attempt may take."""
        return self._settings.webhook_timeout + 2

    async def run_once(self, limit: int = 20) -> int:
        """Claim the due deliveries (up to ``limit``) and send them concurrently; returns how
        many a receiver took."""
        store = await self._store()
        claimed = await store.claim_deliveries(self.owner, lease=self.lease, limit=limit)
        if not claimed:
            return 0
        done: list[bool] = []

        async def one(delivery: Delivery, endpoint: WebhookEndpoint) -> None:
            done.append(await self._deliver(store, delivery, endpoint))

        async with anyio.create_task_group() as group:
            for delivery, endpoint in claimed:
                group.start_soon(one, delivery, endpoint)
        return sum(done)

    async def run(self, *, poll: float = 1.0) -> None:
        """Deliver until cancelled: at once when an event is written here or in another
        process (the change feed), and every ``poll`` seconds for retries that come due."""
        store = await self._store()
        with store.changes.subscribe(ANY) as bell:
            async with store.watching():
                while True:
                    while await self.run_once() > 0:
                        pass
                    with anyio.move_on_after(poll):
                        await bell.wait()

    async def _check_target(self, url: str) -> None:
        if self._settings.webhook_allow_private:
            return
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            found = await anyio.getaddrinfo(host, port)
        except OSError as exc:
            raise _Refused(f"cannot resolve {host} ({exc.strerror or type(exc).__name__})") from exc
        private = sorted(
            {str(info[4][0]) for info in found if not is_public_address(str(info[4][0]))}
        )
        if private or not found:
            raise _Refused(
                f"{host} resolves to a non-public address ({', '.join(private)}); set "
                "TOOLAUTH_WEBHOOK_ALLOW_PRIVATE=1 to allow it"
            )

    async def _deliver(self, store: Store, delivery: Delivery, endpoint: WebhookEndpoint) -> bool:
        event = delivery.event
        body = json.dumps(event.payload(), separators=(",", ":")).encode()
        assert endpoint.secret is not None
        sent_headers = {
            "content-type": "application/json",
            "user-agent": _USER_AGENT,
            **signed_headers(event.id, body, endpoint.secret.get_secret_value()),
        }
        error: str | None = None
        try:
            await self._check_target(endpoint.url)
            with anyio.fail_after(self._settings.webhook_timeout):
                response = await self._http.client.post(
                    endpoint.url, content=body, headers=sent_headers,
                    timeout=self._settings.webhook_timeout, follow_redirects=False,
                )  # fmt: skip
            if 200 <= response.status_code < 300:
                if await store.delivered(delivery, self.owner):
                    self.sent += 1
                return True
            error = f"HTTP {response.status_code}"
        except _Refused as exc:
            error = f"refused: {exc}"
        except TimeoutError:
            error = f"no answer within {self._settings.webhook_timeout:g} s"
        except Exception as exc:  # the network: any failure is a failed attempt
            error = type(exc).__name__
        retry_at = utcnow() + timedelta(seconds=self._settings.retry_delay(delivery.attempts))
        log.warning(
            "webhook delivery %s of %s to %s failed (%s); attempt %d, retrying at %s",
            delivery.id, event.id, endpoint.id, error, delivery.attempts, retry_at.isoformat(),
        )  # fmt: skip
        disabled = await store.delivery_failed(
            delivery, self.owner, error=error, retry_at=retry_at,
            disable_after=timedelta(days=self._settings.webhook_disable_after),
        )  # fmt: skip
        if disabled is not None:
            log.warning("webhook endpoint %s disabled: %s", endpoint.id, disabled.disabled_reason)
        return False
