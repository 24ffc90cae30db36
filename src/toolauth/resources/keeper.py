"""The keeper: lifecycle work nobody's tool call asks for.

Each round it refreshes OAuth tokens that expire within the margin (through the
``TokenManager``: single-flight per account across processes, by the store's refresh lease),
and probes ACTIVE accounts whose toolkit has a test request, once per
``TOOLAUTH_PROBE_INTERVAL`` each (a lease in ``keeper_probes`` keeps two keepers off one
account); between rounds it delivers webhooks as events are written. Several keepers share one
database without doing anything twice at once; one killed mid-work leaves leases that lapse,
and the next round (of any keeper) does the work again.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import anyio

from .._exceptions import ToolAuthError, ValidationError
from .._loop import HomeLoop, on_home_loop
from .._models import AuthConfig, ConnectedAccount, ConnectionStatus, utcnow
from .._settings import Settings
from ..catalog import Catalog
from ..events import REVOKED_REASON, Actor, acting_as
from ..oauth.refresh import TokenManager
from ..store import Store
from .deliveries import Deliverer
from .http_clients import AccountClients

__all__ = ["Keeper", "KeeperRound"]

log = logging.getLogger("toolauth.keeper")

_REVOKED_STATUS = (401, 403)


@dataclass
class KeeperRound:
    """What one round did."""

    refreshed: int = 0
    refresh_failed: int = 0
    probed: int = 0
    expired: int = 0
    delivered: int = 0


class Keeper:
    """Refreshes, probes and delivers for one client (``ta.keeper()``)."""

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        settings: Settings,
        catalog: Catalog,
        tokens: TokenManager,
        clients: AccountClients,
        deliverer: Deliverer,
        auth_config: Callable[[str], Awaitable[AuthConfig]],
        home: HomeLoop,
    ) -> None:
        self._home = home
        self._store = store
        self._settings = settings
        self._catalog = catalog
        self._tokens = tokens
        self._clients = clients
        self._deliverer = deliverer
        self._auth_config = auth_config
        self.owner = f"keeper-{os.getpid()}-{secrets.token_hex(4)}"

    @on_home_loop
    async def run_once(self) -> KeeperRound:
        """One round: refresh what is due, probe what is due, deliver what is due."""
        done = KeeperRound()
        with acting_as(Actor.KEEPER, self.owner):
            await self._refresh_due(done)
            if self._settings.probe_interval > 0:
                await self._probe_due(done)
            while (sent := await self._deliverer.run_once()) > 0:
                done.delivered += sent
        return done

    @on_home_loop
    async def run(self, *, deliver: bool = True, stop_after: float | None = None) -> None:
        """Run until cancelled, or for ``stop_after`` seconds: a round every
        ``TOOLAUTH_KEEPER_INTERVAL`` seconds, and webhook deliveries as soon as events are
        written (with ``deliver``). From the sync client, ``ta.keeper().run(stop_after=60)``
        blocks that long (call it in a loop, or in a thread of its own)."""
        if stop_after is not None and (
            not isinstance(stop_after, (int, float)) or not stop_after >= 0
        ):
            raise ValidationError(
                "stop_after must be a number of seconds, 0 or more (None: until cancelled).",
                field="stop_after",
            )
        with acting_as(Actor.KEEPER, self.owner), anyio.move_on_after(stop_after):
            async with anyio.create_task_group() as group:
                if deliver:
                    group.start_soon(lambda: self._deliverer.run(poll=1.0))
                while True:
                    try:
                        await self.run_once()
                    except ToolAuthError as exc:  # e.g. the database away for a moment
                        log.warning("keeper round failed: %s", exc.message)
                    await anyio.sleep(self._settings.keeper_interval)

    async def _refresh_due(self, done: KeeperRound) -> None:
        store = await self._store()
        before = utcnow() + timedelta(seconds=self._settings.refresh_margin)
        for account_id in await store.due_refreshes(before):
            account = await store.get_account(account_id)
            if account is None or not self._tokens.needs_refresh(account):
                continue
            try:
                await self._tokens.refresh(account)
                done.refreshed += 1
            except ToolAuthError as exc:
                done.refresh_failed += 1
                log.warning("keeper: refresh of %s failed: %s", account_id, exc.message)

    async def _probe_due(self, done: KeeperRound) -> None:
        store = await self._store()
        lease = self._settings.api_timeout + 10
        claimed = await store.claim_probes(
            self.owner, every=self._settings.probe_interval, lease=lease
        )
        for account_id in claimed:
            try:
                account = await store.get_account(account_id)
                if account is not None and account.is_active:
                    done.probed += 1
                    if await self._probe(store, account):
                        done.expired += 1
            except ToolAuthError as exc:
                log.warning("keeper: probe of %s failed: %s", account_id, exc.message)
            finally:
                await store.probed(account_id, self.owner)

    async def _probe(self, store: Store, account: ConnectedAccount) -> bool:
        """Call the toolkit's test request as ``account``; a grant the provider no longer
        accepts (401/403 after a refresh) makes the account EXPIRED. True when it did."""
        config = await self._auth_config(account.auth_config_id)
        spec = (await self._catalog.resolve(account.toolkit)).scheme(config.auth_scheme)
        test = getattr(spec, "test_request", None)
        if test is None or account.shared:
            return False
        try:
            async with await self._clients.client(account) as client:
                response = await client.request(test.method, test.path, json=test.json_body)
        except ToolAuthError as exc:
            current = await store.get_account(account.id)
            if current is not None and current.status is ConnectionStatus.EXPIRED:
                return True  # the refresh before the call found the grant gone
            log.warning("keeper: probe of %s did not run: %s", account.id, exc.message)
            return False
        except Exception as exc:  # the network: try again next time
            log.warning("keeper: probe of %s failed: %s", account.id, type(exc).__name__)
            return False
        if response.status_code not in _REVOKED_STATUS:
            return False
        reason = f"{REVOKED_REASON}: the test request answered HTTP {response.status_code}"
        seen = account.credentials

        def expire(current: ConnectedAccount) -> ConnectedAccount:
            if not current.is_active or current.credentials != seen:
                return current  # reconnected or changed meanwhile
            return current.model_copy(
                update={"status": ConnectionStatus.EXPIRED, "status_reason": reason}
            )

        saved = await store.modify(ConnectedAccount, account.id, expire)
        if saved.status is ConnectionStatus.EXPIRED:
            log.warning("keeper: account %s EXPIRED: %s", account.id, reason)
            return True
        return False
