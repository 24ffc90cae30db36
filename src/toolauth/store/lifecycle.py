"""The store's side of the connection lifecycle, over SQL and shared by every backend: events
written in the transaction of the change they describe (with one outbox row per webhook
endpoint that wants them, and an audit entry), reading them back in order, the webhook
outbox and its leases, the audit log, and the keeper's leases.

Which change is which event is decided in :mod:`toolauth.events.types`; who acted, by
:mod:`toolauth.events.context`. Leases use the database's clock on PostgreSQL (as refresh
leases do), so instances with skewed clocks agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import SecretStr

from .._exceptions import ConflictError, NotFoundError
from .._ids import new_id
from .._models import AuthConfig, ConnectedAccount, utcnow
from ..events import (
    Actor,
    AuditEntry,
    Delivery,
    Event,
    EventType,
    WebhookEndpoint,
    current_actor,
)

if TYPE_CHECKING:
    from .._crypto import Keyring
    from .changes import ChangeHub
    from .queries import LifecycleQueries, Queries, Statement
    from .sql import Connection, Tx

__all__ = ["LifecycleStore", "PendingEvent", "write_events"]


@dataclass(frozen=True)
class PendingEvent:
    """An event queued in a transaction, written when it ends."""

    type: EventType
    user_id: str | None = None
    toolkit: str | None = None
    auth_config_id: str | None = None
    connected_account_id: str | None = None
    webhook_id: str | None = None
    status: str | None = None
    reason: str | None = None

    @classmethod
    def of(cls, type: EventType, row: object, reason: str | None = None) -> PendingEvent:
        """The event ``type`` about an account, an auth config or a webhook endpoint."""
        if isinstance(row, ConnectedAccount):
            return cls(
                type, row.user_id, row.toolkit, row.auth_config_id, row.id,
                status=str(row.status), reason=reason or row.status_reason,
            )  # fmt: skip
        if isinstance(row, AuthConfig):
            status = "ENABLED" if row.enabled else "DISABLED"
            return cls(type, toolkit=row.toolkit, auth_config_id=row.id, status=status)
        if isinstance(row, WebhookEndpoint):
            status = "ENABLED" if row.enabled else "DISABLED"
            return cls(type, webhook_id=row.id, status=status, reason=reason or row.disabled_reason)
        raise TypeError(f"no events about {type!r}")


async def write_events(
    q: LifecycleQueries, conn: Connection, pending: Sequence[PendingEvent]
) -> None:
    """Write ``pending`` events, an outbox row for each enabled webhook endpoint that wants
    each, and an audit entry each, on ``conn`` (inside the transaction of the change)."""
    actor, actor_id = current_actor()
    now = utcnow()
    endpoints: list[tuple[str, list[str]]] | None = None
    if q.lock_events is not None:
        await conn.execute(q.lock_events)
    for event in pending:
        values = {
            "id": new_id("ev"), "type": str(event.type), "created_at": now,
            "user_id": event.user_id, "toolkit": event.toolkit,
            "auth_config_id": event.auth_config_id,
            "connected_account_id": event.connected_account_id, "webhook_id": event.webhook_id,
            "status": event.status, "reason": event.reason,
        }  # fmt: skip
        seq = (await conn.fetch(q.insert_event, values))[0]["seq"]
        if endpoints is None:
            rows = await conn.fetch(q.enabled_webhooks)
            endpoints = [(r["id"], _json(r["events"])) for r in rows]
        for endpoint_id, wanted in endpoints:
            if wanted and str(event.type) not in wanted:
                continue
            row = {
                "id": new_id("dl"), "endpoint_id": endpoint_id, "event_seq": seq,
                "status": "PENDING", "next_attempt_at": now, "created_at": now, "updated_at": now,
            }  # fmt: skip
            await conn.execute(q.insert_delivery, row)
        await conn.execute(
            q.insert_audit,
            {
                "id": new_id("au"), "created_at": now, "actor": str(actor), "actor_id": actor_id,
                "action": str(event.type), "outcome": "ok", "user_id": event.user_id,
                "toolkit": event.toolkit, "auth_config_id": event.auth_config_id,
                "connected_account_id": event.connected_account_id,
                "detail": event.reason if event.webhook_id is None else event.webhook_id,
            },
        )  # fmt: skip


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _event(row: Mapping[str, Any]) -> Event:
    values = dict(row)
    values["sequence"] = values.pop("seq")
    return Event.model_validate(values)


def _audit(row: Mapping[str, Any]) -> AuditEntry:
    values = dict(row)
    values["sequence"] = values.pop("seq")
    return AuditEntry.model_validate(values)


class LifecycleStore:
    """Events, webhooks, the audit log and the keeper's leases: the store methods over SQL
    (mixed into :class:`~toolauth.store.sql.SQLStore`)."""

    if TYPE_CHECKING:
        queries: ClassVar[Queries]
        keyring: Keyring
        changes: ChangeHub

        def _tx(self) -> AbstractAsyncContextManager[Tx]: ...

        async def _select(
            self, stmt: Statement, values: Mapping[str, Any] = ...
        ) -> list[dict[str, Any]]: ...

    # events ------------------------------------------------------------------------------
    async def record_event(self, account: ConnectedAccount, type: EventType, reason: str) -> None:
        """An event that is no state change (a refresh that failed but may work later)."""
        async with self._tx() as tx:
            tx.events.append(PendingEvent.of(type, account, reason))

    async def last_event_sequence(self) -> int:
        return int((await self._select(self.queries.life.last_event))[0]["seq"])

    async def list_events(
        self,
        *,
        after: int = 0,
        types: Sequence[str] | None = None,
        user_id: str | None = None,
        limit: int = 500,
    ) -> list[Event]:
        """Events after sequence ``after``, oldest first (in commit order)."""
        stmt, values = self.queries.life.list_events(
            self.queries.dialect, after=after,
            types=tuple(types) if types else None, user_id=user_id, limit=limit,
        )  # fmt: skip
        return [_event(row) for row in await self._select(stmt, values)]

    # audit -------------------------------------------------------------------------------
    async def record_audit(
        self,
        action: str,
        *,
        outcome: str = "ok",
        user_id: str | None = None,
        toolkit: str | None = None,
        auth_config_id: str | None = None,
        connected_account_id: str | None = None,
        detail: str | None = None,
        actor: Actor | None = None,
        actor_id: str | None = None,
    ) -> None:
        """Append one audit entry (an action that changed no row: a tool call, a link opened)."""
        acting, acting_id = current_actor()
        values = {
            "id": new_id("au"), "created_at": utcnow(), "actor": str(actor or acting),
            "actor_id": actor_id if actor is not None else acting_id, "action": action,
            "outcome": outcome, "user_id": user_id, "toolkit": toolkit,
            "auth_config_id": auth_config_id, "connected_account_id": connected_account_id,
            "detail": detail,
        }  # fmt: skip
        async with self._tx() as tx:
            await tx.conn.execute(self.queries.life.insert_audit, values)

    async def list_audit(
        self, *, user_id: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        stmt, values = self.queries.life.list_audit(
            self.queries.dialect, user_id=user_id, since=since, limit=limit
        )
        return [_audit(row) for row in await self._select(stmt, values)]

    async def prune(self, before: datetime) -> tuple[int, int]:
        """Delete events (and their deliveries) and audit entries older than ``before``;
        returns how many of each."""
        q = self.queries.life
        async with self._tx() as tx:
            events = await tx.conn.execute(q.prune_events, {"before": before})
            audit = await tx.conn.execute(q.prune_audit, {"before": before})
        return events, audit

    # webhook endpoints -------------------------------------------------------------------
    def _webhook_row(self, endpoint: WebhookEndpoint) -> dict[str, Any]:
        row = endpoint.model_dump(mode="python", exclude={"secret"})
        row["events"] = json.dumps(list(endpoint.events))
        row["version"] = endpoint.version
        aad = f"webhook_endpoints:{endpoint.id}".encode()
        assert endpoint.secret is not None, "an endpoint is stored with its secret"
        secret = endpoint.secret.get_secret_value().encode()
        row["key_id"], row["secret"] = self.keyring.encrypt(secret, aad=aad)
        return row

    def _webhook(self, row: Mapping[str, Any]) -> WebhookEndpoint:
        values = dict(row)
        aad = f"webhook_endpoints:{values['id']}".encode()
        plain = self.keyring.decrypt(values.pop("key_id"), bytes(values.pop("secret")), aad=aad)
        values["secret"] = SecretStr(plain.decode())
        values["events"] = _json(values["events"])
        return WebhookEndpoint.model_validate(values)

    async def create_webhook(self, endpoint: WebhookEndpoint) -> None:
        async with self._tx() as tx:
            await tx.conn.execute(self.queries.life.insert_webhook, self._webhook_row(endpoint))

    async def get_webhook(self, id: str) -> WebhookEndpoint | None:
        rows = await self._select(self.queries.life.get_webhook, {"id": id})
        return self._webhook(rows[0]) if rows else None

    async def list_webhooks(self) -> list[WebhookEndpoint]:
        return [self._webhook(r) for r in await self._select(self.queries.life.list_webhooks)]

    async def modify_webhook(
        self, id: str, change: Callable[[WebhookEndpoint], WebhookEndpoint]
    ) -> WebhookEndpoint:
        """Read, change and write an endpoint in one transaction (``NotFoundError`` if none)."""
        async with self._tx() as tx:
            return await self._modify_webhook_in(tx, id, change)

    async def _modify_webhook_in(
        self, tx: Tx, id: str, change: Callable[[WebhookEndpoint], WebhookEndpoint]
    ) -> WebhookEndpoint:
        q = self.queries.life
        rows = await tx.conn.fetch(q.get_webhook_locked, {"id": id})
        if not rows:
            raise NotFoundError("webhook endpoint", id)
        current = self._webhook(rows[0])
        changed = change(current)
        if changed is current:
            return current
        new = changed.model_copy(update={"version": current.version + 1, "updated_at": utcnow()})
        values = {**self._webhook_row(new), "expected": current.version}
        if await tx.conn.execute(q.update_webhook, values) != 1:
            raise ConflictError(f"{id} changed since it was read; read it again.")
        if current.enabled and not new.enabled and new.disabled_reason:
            tx.events.append(PendingEvent.of(EventType.WEBHOOK_DISABLED, new))
        return new

    async def delete_webhook(self, id: str) -> bool:
        async with self._tx() as tx:
            return await tx.conn.execute(self.queries.life.delete_webhook, {"id": id}) == 1

    async def _reencrypt_webhooks(self, tx: Tx, primary: Mapping[str, Any]) -> int:
        q = self.queries.life
        rows = await tx.conn.fetch(q.other_key_webhooks, primary)
        updates = [self._webhook_row(self._webhook(row)) for row in rows]
        if updates:
            await tx.conn.executemany(q.reencrypt_webhook, updates)
        return len(updates)

    # the outbox --------------------------------------------------------------------------
    async def claim_deliveries(
        self, owner: str, *, lease: float, limit: int = 20
    ) -> list[tuple[Delivery, WebhookEndpoint]]:
        """Take the lease of up to ``limit`` due deliveries of enabled endpoints, oldest event
        first; a delivery leased by another owner (until its lease ends) is never taken."""
        q = self.queries.life
        now = utcnow()
        values = {
            "owner": owner, "now": now, "until": now + timedelta(seconds=lease),
            "seconds": float(lease), "limit": limit,
        }  # fmt: skip
        async with self._tx() as tx:
            claimed = await tx.conn.fetch(q.claim_deliveries, values)
        found: list[tuple[Delivery, WebhookEndpoint]] = []
        endpoints: dict[str, WebhookEndpoint | None] = {}
        for row in sorted(claimed, key=lambda r: (r["event_seq"], r["id"])):
            events = await self._select(q.events_by_seq, {"seq": row["event_seq"]})
            if row["endpoint_id"] not in endpoints:
                endpoints[row["endpoint_id"]] = await self.get_webhook(row["endpoint_id"])
            endpoint = endpoints[row["endpoint_id"]]
            if not events or endpoint is None:
                continue  # pruned or deleted meanwhile
            values = {**row, "event": _event(events[0])}
            values.pop("event_seq")
            found.append((Delivery.model_validate(values), endpoint))
        return found

    async def delivered(self, delivery: Delivery, owner: str) -> bool:
        """The receiver took ``delivery``; its endpoint is no longer failing."""
        q = self.queries.life
        async with self._tx() as tx:
            done = await tx.conn.execute(
                q.delivered, {"id": delivery.id, "owner": owner, "now": utcnow()}
            )
            if done:
                await self._modify_webhook_in(
                    tx, delivery.endpoint_id,
                    lambda e: e.model_copy(update={"failing_since": None})
                    if e.failing_since is not None else e,
                )  # fmt: skip
        return done == 1

    async def delivery_failed(
        self,
        delivery: Delivery,
        owner: str,
        *,
        error: str,
        retry_at: datetime,
        disable_after: timedelta,
    ) -> WebhookEndpoint | None:
        """Try ``delivery`` again at ``retry_at``. An endpoint failing for ``disable_after``
        is disabled (a ``webhook.disabled`` event says so); it is returned then."""
        q = self.queries.life
        now = utcnow()

        def failing(endpoint: WebhookEndpoint) -> WebhookEndpoint:
            if endpoint.failing_since is None:
                return endpoint.model_copy(update={"failing_since": now})
            if endpoint.enabled and now - endpoint.failing_since >= disable_after:
                days = disable_after.total_seconds() / 86400
                return endpoint.model_copy(update={
                    "enabled": False,
                    "disabled_reason": f"every delivery failed for {days:g} days ({error})",
                })  # fmt: skip
            return endpoint

        values = {"id": delivery.id, "owner": owner, "now": now, "retry_at": retry_at,
                  "error": error[:500]}  # fmt: skip
        async with self._tx() as tx:
            if not await tx.conn.execute(q.retry_delivery, values):
                return None  # the lease was lost meanwhile: the new holder decides
            try:
                endpoint = await self._modify_webhook_in(tx, delivery.endpoint_id, failing)
            except NotFoundError:
                return None
        return endpoint if not endpoint.enabled else None

    async def deliveries(self, endpoint_id: str) -> list[dict[str, Any]]:
        """The outbox rows of one endpoint (status, attempts, last error), oldest first."""
        return await self._select(self.queries.life.deliveries_of, {"endpoint_id": endpoint_id})

    # the keeper --------------------------------------------------------------------------
    async def due_refreshes(self, before: datetime, *, limit: int = 100) -> list[str]:
        """ACTIVE accounts whose access token expires before ``before`` (and nobody refreshes)."""
        rows = await self._select(
            self.queries.life.due_refreshes, {"before": before, "limit": limit, "now": utcnow()}
        )
        return [row["id"] for row in rows]

    async def claim_probes(
        self, owner: str, *, every: float, lease: float, limit: int = 20
    ) -> list[str]:
        """Take the probe lease of up to ``limit`` ACTIVE accounts not probed for ``every``
        seconds; returns their ids."""
        q = self.queries.life
        now = utcnow()
        values = {
            "owner": owner, "now": now, "until": now + timedelta(seconds=lease),
            "seconds": float(lease), "limit": limit, "due": now - timedelta(seconds=every),
        }  # fmt: skip
        async with self._tx() as tx:
            await tx.conn.execute(q.schedule_probes)
            rows = await tx.conn.fetch(q.claim_probes, values)
        return [row["connected_account_id"] for row in rows]

    async def probed(self, account_id: str, owner: str) -> None:
        async with self._tx() as tx:
            await tx.conn.execute(
                self.queries.life.probed, {"id": account_id, "owner": owner, "now": utcnow()}
            )
