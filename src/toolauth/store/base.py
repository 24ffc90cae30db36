"""The ``Store`` interface every backend implements, and the row codec they share.

A backend does SQL only. Turning models into rows — encrypting ``credentials`` with the
keyring, the row's table and id as associated data — happens here, once, for every backend.
Every write is one transaction; updates are compare-and-swap on the row's ``version`` so two
writers (coroutines or processes) never silently overwrite each other.
"""

from __future__ import annotations

import abc
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import SecretStr

from .._crypto import Keyring
from .._exceptions import DecryptionError
from .._models import AuthConfig, ConnectedAccount, ConnectionLink, ConnectionStatus
from .changes import ChangeHub

__all__ = ["COLUMNS", "KINDS", "TABLES", "AccountFilter", "Store", "decode_row", "encode_row"]

Model = TypeVar("Model", AuthConfig, ConnectedAccount, ConnectionLink)
AnyModel = AuthConfig | ConnectedAccount | ConnectionLink

TABLES: dict[type[Any], str] = {
    AuthConfig: "auth_configs",
    ConnectedAccount: "connected_accounts",
    ConnectionLink: "connection_links",
}
_AUTH_CONFIG_COLUMNS = (
    "id", "toolkit", "name", "type", "auth_scheme", "scopes", "enabled",
    "key_id", "secret", "version", "created_at", "updated_at",
)  # fmt: skip
_ACCOUNT_COLUMNS = (
    "id", "user_id", "toolkit", "auth_config_id", "status", "status_reason", "scopes",
    "expires_at", "label", "data", "key_id", "secret", "version", "created_at", "updated_at",
)  # fmt: skip
_LINK_COLUMNS = (
    "id", "connected_account_id", "user_id", "toolkit", "auth_config_id", "auth_scheme",
    "status", "pending_key", "callback_url", "redirect_uri", "state_hash", "error",
    "error_description", "key_id", "secret", "version", "expires_at", "completed_at",
    "created_at", "updated_at",
)  # fmt: skip
# The columns of each table, the same in every dialect (migrations/<dialect>/*.sql).
COLUMNS: dict[type[Any], tuple[str, ...]] = {
    AuthConfig: _AUTH_CONFIG_COLUMNS,
    ConnectedAccount: _ACCOUNT_COLUMNS,
    ConnectionLink: _LINK_COLUMNS,
}
KINDS: dict[type[Any], str] = {
    AuthConfig: "auth config",
    ConnectedAccount: "connected account",
    ConnectionLink: "connect link",
}
_SECRET_FIELD: dict[type[Any], str] = {ConnectionLink: "secrets"}
_JSON_COLUMNS = frozenset({"scopes", "data"})


def encode_row(keyring: Keyring, model: AnyModel) -> dict[str, Any]:
    """The row for ``model``: plain columns, JSON for lists and dicts, the secrets encrypted."""
    secret_field = _SECRET_FIELD.get(type(model), "credentials")
    row = model.model_dump(mode="python", exclude={secret_field})
    row["version"] = model.version
    for column in _JSON_COLUMNS & row.keys():
        value = row[column]
        row[column] = json.dumps(list(value) if isinstance(value, tuple) else value)
    for column in ("type", "auth_scheme", "status"):
        if column in row:
            row[column] = str(row[column])
    secrets = {k: v.get_secret_value() for k, v in getattr(model, secret_field).items()}
    aad = f"{TABLES[type(model)]}:{model.id}".encode()
    row["key_id"], row["secret"] = keyring.encrypt(json.dumps(secrets).encode(), aad=aad)
    return row


def decode_row(keyring: Keyring, cls: type[Model], row: Mapping[str, Any]) -> Model:
    """The model for ``row``; secrets decrypted (a clear ``DecryptionError`` if they cannot be)."""
    values = dict(row)
    aad = f"{TABLES[cls]}:{values['id']}".encode()
    plaintext = keyring.decrypt(values.pop("key_id"), bytes(values.pop("secret")), aad=aad)
    try:
        secrets = json.loads(plaintext)
    except ValueError:
        raise DecryptionError(f"The secrets of {values['id']} are not readable.") from None
    for column in _JSON_COLUMNS & values.keys():
        if isinstance(values[column], str):
            values[column] = json.loads(values[column])
    secret_field = _SECRET_FIELD.get(cls, "credentials")
    values[secret_field] = {k: SecretStr(v) for k, v in secrets.items()}
    return cls.model_validate(values)


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


class Store(abc.ABC):
    """Persistence for auth configs and connected accounts, with change notifications.

    Backends: ``SQLiteStore`` (embedded default) and ``PostgresStore``. Open one with
    :func:`toolauth.store.open_store`.
    """

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self.changes = ChangeHub()

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
    def display_url(self) -> str:
        """The database URL with any password masked: safe for logs and errors."""

    # auth configs ------------------------------------------------------------------------
    async def create_auth_config(self, config: AuthConfig) -> None:
        await self._insert(config)

    async def get_auth_config(self, id: str) -> AuthConfig | None:
        return await self._get(AuthConfig, id)

    @abc.abstractmethod
    async def list_auth_configs(
        self, *, toolkit: str | None = None, enabled: bool | None = None
    ) -> list[AuthConfig]: ...

    async def save_auth_config(self, config: AuthConfig) -> AuthConfig:
        """Write ``config`` if the row still has ``config.version``; ``ConflictError`` if not.

        Returns the saved config with its new version.
        """
        saved: AuthConfig = (await self.save(config))[0]
        return saved

    @abc.abstractmethod
    async def delete_auth_config(self, id: str, *, with_accounts: bool) -> list[str]:
        """Delete a config; with ``with_accounts`` its accounts too, in the same transaction.

        Returns the ids of the deleted accounts. Without ``with_accounts``, a config that still
        has accounts raises ``ConflictError``; an unknown id raises ``NotFoundError``.
        """

    # connected accounts ------------------------------------------------------------------
    async def create_account(self, account: ConnectedAccount) -> None:
        await self._insert(account)

    async def get_account(self, id: str) -> ConnectedAccount | None:
        return await self._get(ConnectedAccount, id)

    @abc.abstractmethod
    async def list_accounts(self, where: AccountFilter) -> list[ConnectedAccount]:
        """Accounts matching ``where``, newest first."""

    @abc.abstractmethod
    async def count_accounts(self, *, auth_config_id: str) -> int: ...

    async def save_account(self, account: ConnectedAccount) -> ConnectedAccount:
        """Compare-and-swap on ``account.version``, as :meth:`save_auth_config`."""
        saved: ConnectedAccount = (await self.save(account))[0]
        return saved

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

    async def get_link(self, id: str) -> ConnectionLink | None:
        return await self._get(ConnectionLink, id)

    @abc.abstractmethod
    async def get_link_by_state(self, state_hash: str) -> ConnectionLink | None: ...

    @abc.abstractmethod
    async def latest_link(self, connected_account_id: str) -> ConnectionLink | None: ...

    @abc.abstractmethod
    async def modify(self, cls: type[Model], id: str, change: Callable[[Model], Model]) -> Model:
        """Read the row, apply ``change`` and write the result, in one write transaction
        (so concurrent modifications serialise instead of conflicting). ``NotFoundError`` for
        an unknown id; an exception from ``change`` leaves the row as it was."""

    @abc.abstractmethod
    async def save(self, *models: AnyModel) -> list[Any]:
        """Compare-and-swap several rows in one transaction: all are written, or none
        (``ConflictError``). Returns the saved models with their new versions."""

    # keys --------------------------------------------------------------------------------
    @abc.abstractmethod
    async def key_ids(self) -> set[str]:
        """Ids of every key that rows in this database may be encrypted with."""

    @abc.abstractmethod
    async def rotate_keys(self) -> int:
        """Re-encrypt every row under the primary key; returns how many rows were rewritten."""

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """While open, changes committed by other processes also reach :attr:`changes`.

        Backends override this (SQLite polls ``PRAGMA data_version``; PostgreSQL listens).
        """
        yield

    # what each backend implements for the methods above ----------------------------------
    @abc.abstractmethod
    async def _insert(self, model: AnyModel) -> None:
        """Insert one row (``ConflictError`` on a clash); an account insert is published."""

    @abc.abstractmethod
    async def _get(self, cls: type[Model], id: str) -> Model | None: ...

    # helpers for backends ----------------------------------------------------------------
    def _encode(self, model: AnyModel) -> dict[str, Any]:
        return encode_row(self.keyring, model)

    def _decode(self, cls: type[Model], row: Mapping[str, Any]) -> Model:
        return decode_row(self.keyring, cls, row)

    @staticmethod
    def _bump(model: Model) -> Model:
        from .._models import utcnow

        return model.model_copy(update={"version": model.version + 1, "updated_at": utcnow()})


def parse_timestamp(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)
