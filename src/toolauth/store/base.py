"""The ``Store`` interface every backend implements.

Every write is one transaction; updates are compare-and-swap on the row's ``version`` so two
writers (coroutines or processes) never silently overwrite each other. The one implementation
over SQL lives in :mod:`toolauth.store.sql`; each backend adds its connection to it.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._crypto import Keyring
from .._models import AuthConfig, ConnectedAccount, ConnectionLink, ConnectionStatus
from .changes import ChangeHub
from .rows import COLUMNS, KINDS, TABLES, AnyModel, Model, decode_row, encode_row

if TYPE_CHECKING:
    from .._settings import Settings
    from ..events import Actor, AuditEntry, Delivery, Event, EventType, WebhookEndpoint

__all__ = [
    "COLUMNS",
    "KINDS",
    "TABLES",
    "AccountFilter",
    "Store",
    "ToolkitRow",
    "decode_row",
    "encode_row",
]


class AccountFilter:
    """What ``list_accounts`` selects; ``None`` means any."""

    __slots__ = ("auth_config_id", "label", "limit", "statuses", "toolkit", "user_id")

    def __init__(
        self,
        *,
        user_id: str | None = None,
        toolkit: str | None = None,
        auth_config_id: str | None = None,
        statuses: Sequence[ConnectionStatus] | None = None,
        label: str | None = None,
        limit: int | None = None,
    ) -> None:
        self.user_id = user_id
        self.toolkit = toolkit
        self.auth_config_id = auth_config_id
        self.statuses = tuple(statuses) if statuses else None
        self.label = label
        self.limit = limit


@dataclass(frozen=True)
class ToolkitRow:
    """A stored toolkit definition as the store keeps it: the JSON text is checked by the
    catalog, not here, so one bad row never stops the others from loading. ``altered``: the
    row's MAC does not verify (edited without the encryption key); the catalog refuses it."""

    slug: str
    source: str
    definition: str
    version: int
    created_at: datetime
    updated_at: datetime
    key_id: str = field(default="", repr=False)
    mac: bytes = field(default=b"", repr=False)
    altered: bool = False


class Store(abc.ABC):
    """Persistence for auth configs and connected accounts, with change notifications.

    Backends: ``SQLiteStore`` (embedded default) and ``PostgresStore``. Open one with
    :func:`toolauth.store.open_store`.
    """

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self.changes = ChangeHub()

    @classmethod
    def options(cls, settings: Settings) -> dict[str, Any]:
        """The constructor options this backend takes from ``settings`` (timeouts, intervals)."""
        return {}

    # lifecycle ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, apply pending migrations, register the primary key id."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def migrate(self) -> list[int]:
        """Apply pending migrations in one transaction; returns the versions applied."""

    @abc.abstractmethod
    async def schema_version(self) -> int: ...

    @property
    @abc.abstractmethod
    def dialect(self) -> str:
        """The database it speaks: ``sqlite`` or ``postgres`` (its migrations' folder)."""

    @property
    @abc.abstractmethod
    def display_url(self) -> str:
        """The database URL with any password masked: safe for logs and errors."""

    # auth configs ------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_auth_config(self, config: AuthConfig) -> None: ...

    @abc.abstractmethod
    async def get_auth_config(self, id: str) -> AuthConfig | None: ...

    @abc.abstractmethod
    async def list_auth_configs(
        self, *, toolkit: str | None = None, enabled: bool | None = None
    ) -> list[AuthConfig]: ...

    @abc.abstractmethod
    async def delete_auth_config(self, id: str, *, with_accounts: bool) -> list[str]:
        """Delete a config; with ``with_accounts`` its accounts too, in the same transaction.

        Returns the ids of the deleted accounts. Without ``with_accounts``, a config that still
        has accounts raises ``ConflictError``; an unknown id raises ``NotFoundError``.
        """

    # connected accounts ------------------------------------------------------------------
    @abc.abstractmethod
    async def create_account(self, account: ConnectedAccount) -> None: ...

    @abc.abstractmethod
    async def get_account(self, id: str) -> ConnectedAccount | None: ...

    @abc.abstractmethod
    async def list_accounts(self, where: AccountFilter) -> list[ConnectedAccount]:
        """Accounts matching ``where``, newest first."""

    @abc.abstractmethod
    async def save_account(self, account: ConnectedAccount) -> ConnectedAccount:
        """Compare-and-swap on ``account.version``, as :meth:`save`; returns the saved one."""

    @abc.abstractmethod
    async def delete_account(self, id: str) -> bool: ...

    @abc.abstractmethod
    async def try_refresh_lease(self, id: str, owner: str, seconds: float) -> bool:
        """Take the account's refresh lease unless another owner holds an unexpired one."""

    @abc.abstractmethod
    async def release_refresh_lease(self, id: str, owner: str) -> None: ...

    # connect links -----------------------------------------------------------------------
    @abc.abstractmethod
    async def open_link(
        self, link: ConnectionLink, account: ConnectedAccount, *, new: bool, update: bool
    ) -> tuple[ConnectionLink, bool]:
        """Insert ``link`` unless a usable link with the same ``pending_key`` exists; returns
        ``(link, created)``. With it, ``account`` is inserted (``new``) or written over its row
        (``update``, compare-and-swap). Links past their expiry are marked EXPIRED first. One
        transaction; a race with another ``open_link`` raises ``ConflictError``."""

    @abc.abstractmethod
    async def get_link(self, id: str) -> ConnectionLink | None: ...

    @abc.abstractmethod
    async def get_link_by_state(self, state_hash: str) -> ConnectionLink | None: ...

    @abc.abstractmethod
    async def get_link_by_confirm(self, confirm_hash: str) -> ConnectionLink | None:
        """The link whose confirmation code hashes to ``confirm_hash``, in any status."""

    @abc.abstractmethod
    async def unconfirmed_links(self, now: datetime) -> list[ConnectionLink]:
        """Links still ``PENDING_CONFIRMATION`` at ``now``, past their expiry."""

    @abc.abstractmethod
    async def latest_link(self, connected_account_id: str) -> ConnectionLink | None: ...

    @abc.abstractmethod
    async def modify(self, cls: type[Model], id: str, change: Callable[[Model], Model]) -> Model:
        """Read the row, apply ``change`` and write the result, in one write transaction
        (so concurrent modifications serialise instead of conflicting). ``NotFoundError`` for
        an unknown id; an exception from ``change`` leaves the row as it was, and a ``change``
        that returns the row it was given writes nothing (no new version)."""

    @abc.abstractmethod
    async def save(self, *models: AnyModel) -> list[Any]:
        """Compare-and-swap several rows in one transaction: all are written, or none
        (``ConflictError``). Returns the saved models with their new versions."""

    # toolkit definitions -----------------------------------------------------------------
    @abc.abstractmethod
    async def list_toolkits(self) -> list[ToolkitRow]:
        """Every stored definition, by slug."""

    @abc.abstractmethod
    async def get_toolkit(self, slug: str) -> ToolkitRow | None: ...

    @abc.abstractmethod
    async def put_toolkit(
        self, slug: str, *, source: str, definition: str, replace: bool
    ) -> tuple[ToolkitRow, bool]:
        """Store a definition (JSON text) under ``slug``; returns ``(row, changed)``.

        A new slug is inserted at version 1. The same source and definition again change
        nothing. Anything else replaces the row with the next version when ``replace``, and
        raises ``ConflictError`` otherwise. A change is published under ``TOOLKITS``.
        """

    @abc.abstractmethod
    async def delete_toolkit(self, slug: str, *, force: bool) -> list[str]:
        """Delete the stored definition ``slug``; returns the ids of auth configs using it.

        Without ``force``, a toolkit that auth configs use raises ``ConflictError`` naming
        them; an unknown slug raises ``NotFoundError``. One transaction, published.
        """

    # keys --------------------------------------------------------------------------------
    @abc.abstractmethod
    async def key_ids(self) -> set[str]:
        """Ids of every key that rows in this database may be encrypted with."""

    @abc.abstractmethod
    async def rotate_keys(self) -> int:
        """Re-encrypt every row under the primary key; returns how many rows were rewritten."""

    # lifecycle (store/lifecycle.py) ---------------------------------------------------------
    @abc.abstractmethod
    async def record_event(
        self, account: ConnectedAccount, type: EventType, reason: str
    ) -> None: ...

    @abc.abstractmethod
    async def last_event_sequence(self) -> int: ...

    @abc.abstractmethod
    async def list_events(
        self,
        *,
        after: int = 0,
        types: Sequence[str] | None = None,
        user_id: str | None = None,
        limit: int = 500,
    ) -> list[Event]: ...

    @abc.abstractmethod
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
    ) -> None: ...

    @abc.abstractmethod
    async def list_audit(
        self, *, user_id: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[AuditEntry]: ...

    @abc.abstractmethod
    async def prune(self, before: datetime) -> tuple[int, int]: ...

    @abc.abstractmethod
    async def create_webhook(self, endpoint: WebhookEndpoint) -> None: ...

    @abc.abstractmethod
    async def get_webhook(self, id: str) -> WebhookEndpoint | None: ...

    @abc.abstractmethod
    async def list_webhooks(self) -> list[WebhookEndpoint]: ...

    @abc.abstractmethod
    async def modify_webhook(
        self, id: str, change: Callable[[WebhookEndpoint], WebhookEndpoint]
    ) -> WebhookEndpoint: ...

    @abc.abstractmethod
    async def delete_webhook(self, id: str) -> bool: ...

    @abc.abstractmethod
    async def claim_deliveries(
        self, owner: str, *, lease: float, limit: int = 20
    ) -> list[tuple[Delivery, WebhookEndpoint]]: ...

    @abc.abstractmethod
    async def delivered(self, delivery: Delivery, owner: str) -> bool: ...

    @abc.abstractmethod
    async def delivery_failed(
        self,
        delivery: Delivery,
        owner: str,
        *,
        error: str,
        retry_at: datetime,
        disable_after: timedelta,
    ) -> WebhookEndpoint | None: ...

    @abc.abstractmethod
    async def deliveries(self, endpoint_id: str) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def due_refreshes(self, before: datetime, *, limit: int = 100) -> list[str]: ...

    @abc.abstractmethod
    async def claim_probes(
        self, owner: str, *, every: float, lease: float, limit: int = 20
    ) -> list[str]: ...

    @abc.abstractmethod
    async def probed(self, account_id: str, owner: str) -> None: ...

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """While open, changes committed by other processes also reach :attr:`changes`.

        Backends override this (SQLite polls ``PRAGMA data_version``; PostgreSQL listens).
        """
        yield
