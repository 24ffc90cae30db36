"""What happened: event types, the event and audit records, and the one mapping from a
stored change (the row before, the row after) to the event it emits.

The store calls :func:`account_event` and :func:`config_event` for every row it writes, in the
transaction that writes it; nothing else decides which event a change is. A new status needs a
line in ``_STATUS_EVENTS``, not a new hook.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .._models import AuthConfig, ConnectedAccount, ConnectionStatus

__all__ = [
    "REVOKED_REASON",
    "Actor",
    "AuditEntry",
    "Delivery",
    "Event",
    "EventType",
    "WebhookEndpoint",
    "account_event",
    "config_event",
]

# A status_reason starting with this marks a grant revoked at the provider (the keeper's probe).
REVOKED_REASON = "revoked at the provider"


class EventType(str, Enum):
    """The type of an event (``connection.*`` for connected accounts)."""

    CONNECTION_INITIATED = "connection.initiated"
    CONNECTION_PENDING_CONFIRMATION = "connection.pending_confirmation"
    CONNECTION_ACTIVE = "connection.active"
    CONNECTION_FAILED = "connection.failed"
    CONNECTION_EXPIRED = "connection.expired"
    CONNECTION_REFRESHED = "connection.refreshed"
    CONNECTION_REFRESH_FAILED = "connection.refresh_failed"
    CONNECTION_DISABLED = "connection.disabled"
    CONNECTION_ENABLED = "connection.enabled"
    CONNECTION_DELETED = "connection.deleted"
    CONNECTION_REVOKED = "connection.revoked"
    AUTH_CONFIG_CREATED = "auth_config.created"
    AUTH_CONFIG_UPDATED = "auth_config.updated"
    AUTH_CONFIG_DISABLED = "auth_config.disabled"
    AUTH_CONFIG_ENABLED = "auth_config.enabled"
    AUTH_CONFIG_DELETED = "auth_config.deleted"
    WEBHOOK_DISABLED = "webhook.disabled"

    def __str__(self) -> str:
        return str(self.value)


class Event(BaseModel):
    """One state change. Ids and statuses only: never a credential, token or link id.

    ``sequence`` orders the events of one store (and so those of one account).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    sequence: int
    type: EventType
    created_at: datetime
    user_id: str | None = None
    toolkit: str | None = None
    auth_config_id: str | None = None
    connected_account_id: str | None = None
    webhook_id: str | None = None
    status: str | None = None
    reason: str | None = None

    def payload(self) -> dict[str, object]:
        """The body of a webhook delivery (Standard Webhooks: ``type``, ``timestamp``,
        ``data``)."""
        fields = self.model_dump(mode="json", exclude={"id", "sequence", "type", "created_at"})
        data = {"event_id": self.id, **{k: v for k, v in fields.items() if v is not None}}
        timestamp = self.created_at.isoformat().replace("+00:00", "Z")
        return {"type": str(self.type), "timestamp": timestamp, "data": data}


class Actor(str, Enum):
    """Who made a change: the app (API calls), the user (connect links), the agent (tool
    calls), or the keeper."""

    APP = "app"
    USER = "user"
    AGENT = "agent"
    KEEPER = "keeper"

    def __str__(self) -> str:
        return str(self.value)


class AuditEntry(BaseModel):
    """One line of the audit log: who did what to which ids, and how it ended."""

    model_config = ConfigDict(frozen=True)

    id: str
    sequence: int = 0
    created_at: datetime
    actor: Actor
    actor_id: str | None = None
    action: str
    outcome: str = "ok"
    user_id: str | None = None
    toolkit: str | None = None
    auth_config_id: str | None = None
    connected_account_id: str | None = None
    detail: str | None = None


class WebhookEndpoint(BaseModel):
    """Where webhooks go: a URL, the event types it wants (empty: all), and its signing
    ``secret`` (never in ``repr`` or JSON; shown once, by ``webhooks.create``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    url: str
    events: tuple[str, ...] = ()
    description: str | None = None
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    created_at: datetime
    updated_at: datetime
    secret: SecretStr | None = Field(default=None, exclude=True, repr=False)
    version: int = Field(default=1, exclude=True, repr=False)

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events


class Delivery(BaseModel):
    """One event on its way to one endpoint (a row of the outbox), leased to a deliverer."""

    model_config = ConfigDict(frozen=True)

    id: str
    endpoint_id: str
    event: Event
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None = None


# the mapping -----------------------------------------------------------------------------------
# Entering a status (from another one) emits this event.
_STATUS_EVENTS: dict[ConnectionStatus, EventType] = {
    ConnectionStatus.INITIATED: EventType.CONNECTION_INITIATED,
    ConnectionStatus.PENDING_CONFIRMATION: EventType.CONNECTION_PENDING_CONFIRMATION,
    ConnectionStatus.ACTIVE: EventType.CONNECTION_ACTIVE,
    ConnectionStatus.FAILED: EventType.CONNECTION_FAILED,
    ConnectionStatus.EXPIRED: EventType.CONNECTION_EXPIRED,
    ConnectionStatus.INACTIVE: EventType.CONNECTION_DISABLED,
}


def account_event(
    old: ConnectedAccount | None, new: ConnectedAccount | None, *, link_completed: bool = False
) -> EventType | None:
    """The event a write of a connected account emits (``None``: not a lifecycle change).

    ``old`` is ``None`` for an insert, ``new`` for a delete; ``link_completed`` says a connect
    link of the account completed in the same transaction (a reconnect of an ACTIVE account).
    """
    if new is None:
        return EventType.CONNECTION_DELETED if old is not None else None
    if old is None:
        return _STATUS_EVENTS.get(new.status)
    if old.status is not new.status:
        if old.status is ConnectionStatus.INACTIVE and new.status is ConnectionStatus.ACTIVE:
            return EventType.CONNECTION_ENABLED
        if new.status is ConnectionStatus.EXPIRED and (new.status_reason or "").startswith(
            REVOKED_REASON
        ):
            return EventType.CONNECTION_REVOKED
        return _STATUS_EVENTS.get(new.status)
    if new.credentials != old.credentials or new.issued_at != old.issued_at:
        if link_completed:  # a new grant through a link
            return EventType.CONNECTION_ACTIVE
        return EventType.CONNECTION_REFRESHED  # new tokens, same status
    return None


def config_event(old: AuthConfig | None, new: AuthConfig | None) -> EventType | None:
    """The event a write of an auth config emits."""
    if new is None:
        return EventType.AUTH_CONFIG_DELETED if old is not None else None
    if old is None:
        return EventType.AUTH_CONFIG_CREATED
    if old.enabled != new.enabled:
        return EventType.AUTH_CONFIG_ENABLED if new.enabled else EventType.AUTH_CONFIG_DISABLED
    return EventType.AUTH_CONFIG_UPDATED
