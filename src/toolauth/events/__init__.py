"""Connection lifecycle records: event types and the change-to-event mapping
(:mod:`.types`), and who is acting (:mod:`.context`). Pure data: the store writes them."""

from __future__ import annotations

from .context import acting_as, current_actor
from .types import (
    REVOKED_REASON,
    Actor,
    AuditEntry,
    Delivery,
    Event,
    EventType,
    WebhookEndpoint,
    account_event,
    config_event,
)

__all__ = [
    "REVOKED_REASON",
    "Actor",
    "AuditEntry",
    "Delivery",
    "Event",
    "EventType",
    "WebhookEndpoint",
    "account_event",
    "acting_as",
    "config_event",
    "current_actor",
]
