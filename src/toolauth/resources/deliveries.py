"""Sending the webhook outbox: at least once, with exponential backoff, and never one delivery
by two deliverers at the same time.

A deliverer takes a lease on a batch of due rows (``claim_deliveries``: the database decides,
so several processes or instances share the work), posts each event signed per Standard
Webhooks, and records the outcome. One killed mid-delivery loses nothing: its lease runs out
and another deliverer sends the delivery again, with the same ``webhook-id`` (receivers
dedupe on it). A target is resolved once per connection and refused when not public, unless
``TOOLAUTH_WEBHOOK_ALLOW_PRIVATE`` is set; the connection goes to the address that was checked
(:mod:`toolauth.resources.webhook_targets`).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio

from .._http import HttpPool
from .._models import utcnow
from .._settings import Settings
from ..events import Delivery, WebhookEndpoint
from ..store import ANY, Store
from ..webhooks import headers as signed_headers
from ..webhooks.urls import RefusedTargetError

if TYPE_CHECKING:
    import httpcore
    import httpx

    from .webhook_targets import Resolver, TargetNetwork

__all__ = ["Deliverer"]

log = logging.getLogger("toolauth.webhooks")

_USER_AGENT = "toolauth-webhooks"


class Deliverer:
    """Delivers the outbox of the store it is given."""

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        settings: Settings,
        http: HttpPool,
        resolver: Resolver | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._http = http
        self._resolver = resolver
        self._network = network
        self._target_network: TargetNetwork | None = None
        self._client: httpx.AsyncClient | None = None
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

    @property
    def client(self) -> httpx.AsyncClient:
        """The HTTP client of deliveries: connections only to checked addresses. A client
        given a ``transport`` (tests, a proxy) sends through it, after checking the target's
        addresses (the proxy connects where it resolves)."""
        if self._http.transport is not None:
            return self._http.client
        if self._client is None:
            import httpx  # loaded on first use: `import toolauth` stays light

            from .webhook_targets import target_transport  # (it loads httpx and httpcore)

            self._client = httpx.AsyncClient(
                transport=target_transport(self._targets), follow_redirects=False,
                timeout=self._settings.webhook_timeout,
            )  # fmt: skip
        return self._client

    @property
    def _targets(self) -> TargetNetwork:
        if self._target_network is None:
            from .webhook_targets import TargetNetwork, resolve  # loads httpcore: on first use

            self._target_network = TargetNetwork(
                allow_private=self._settings.webhook_allow_private,
                resolver=self._resolver or resolve, network=self._network,
            )  # fmt: skip
        return self._target_network

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _check_target(self, url: str) -> None:
        """Judge the target's addresses now (only for a given transport, which connects by
        itself; otherwise the connection judges the addresses it connects to)."""
        if self._http.transport is None:
            return
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        await self._targets.addresses(parts.hostname or "", port)

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
                response = await self.client.post(
                    endpoint.url, content=body, headers=sent_headers,
                    timeout=self._settings.webhook_timeout, follow_redirects=False,
                )  # fmt: skip
            if 200 <= response.status_code < 300:
                if await store.delivered(delivery, self.owner):
                    self.sent += 1
                return True
            error = f"HTTP {response.status_code}"
        except RefusedTargetError as exc:
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
