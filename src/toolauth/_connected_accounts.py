"""``ta.connected_accounts``: one user's credentials for one toolkit."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from ._exceptions import ConflictError, NotFoundError, ValidationError
from ._ids import new_id
from ._models import AuthScheme, ConnectedAccount, ConnectionStatus, utcnow
from ._sync import sync_wrapped
from ._validation import check_credentials, check_text, check_user_id
from .catalog import ApiKeySchemeSpec, OAuth2SchemeSpec
from .store import AccountFilter

if TYPE_CHECKING:
    from ._client import AsyncToolAuth

__all__ = ["ConnectedAccounts"]

_TOKEN_KEYS = ("access_token", "refresh_token", "id_token", "token_type")


def split_fields(
    spec: ApiKeySchemeSpec, values: dict[str, Any]
) -> tuple[dict[str, SecretStr], dict[str, str]]:
    """Check the user's values against the scheme's fields; (secret values, plain values)."""
    known = {f.name: f for f in spec.fields}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValidationError(
            f"Unknown field(s) {unknown}; this scheme takes {sorted(known)}.", field=unknown[0]
        )
    secrets: dict[str, SecretStr] = {}
    plain: dict[str, str] = {}
    for name, field in known.items():
        raw = values.get(name)
        if isinstance(raw, SecretStr):
            raw = raw.get_secret_value()
        raw = raw.strip() if isinstance(raw, str) else raw
        if raw in (None, ""):
            if field.required:
                raise ValidationError(f"{field.label} is required.", field=name)
            continue
        if not isinstance(raw, str):
            raise ValidationError(f"{field.label} must be text.", field=name)
        if field.pattern and not re.fullmatch(field.pattern, raw):
            hint = f" It should look like {field.placeholder}." if field.placeholder else ""
            raise ValidationError(
                f"{field.label} does not have the expected format.{hint}", field=name
            )
        if field.secret:
            secrets[name] = SecretStr(raw)
        else:
            plain[name] = raw
    return secrets, plain


@sync_wrapped
class ConnectedAccounts:
    """List, read, import, enable, disable and delete connected accounts."""

    def __init__(self, client: AsyncToolAuth) -> None:
        self._client = client

    async def get(self, id: str) -> ConnectedAccount:
        store = await self._client.store()
        account = await store.get_account(id)
        if account is None:
            raise NotFoundError("connected account", id)
        return account

    async def list(
        self,
        *,
        user_id: str | None = None,
        toolkit: str | None = None,
        status: ConnectionStatus | str | Sequence[ConnectionStatus | str] | None = None,
        auth_config_id: str | None = None,
        label: str | None = None,
        limit: int | None = None,
    ) -> list[ConnectedAccount]:
        """Accounts matching every filter given, newest first."""
        if status is None:
            statuses = None
        else:
            many = [status] if isinstance(status, str) else list(status)
            statuses = [ConnectionStatus.parse(s, field="status") for s in many]
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValidationError("limit must be a positive whole number.", field="limit")
        slug = self._client.catalog.get(toolkit).slug if toolkit is not None else None
        store = await self._client.store()
        return await store.list_accounts(
            AccountFilter(
                user_id=user_id,
                toolkit=slug,
                auth_config_id=auth_config_id,
                statuses=statuses,
                label=label,
                limit=limit,
            )
        )

    async def create(
        self,
        user_id: str,
        auth_config_id: str,
        *,
        credentials: dict[str, Any],
        label: str | None = None,
    ) -> ConnectedAccount:
        """Store credentials the app already holds, as an ACTIVE account.

        For API_KEY / BEARER_TOKEN / BASIC configs pass the scheme's fields; for OAUTH2 pass
        ``access_token`` and optionally ``refresh_token`` and ``expires_in`` (seconds) or
        ``expires_at``. To have the user connect, use a connect link instead.
        """
        user_id = check_user_id(user_id)
        config = await self._client.auth_configs.get(auth_config_id)
        if not config.enabled:
            raise ConflictError(
                f"Auth config {config.id} is disabled; enable it to connect new accounts."
            )
        definition = self._client.catalog.get(config.toolkit)
        spec = definition.scheme(config.auth_scheme)
        values = dict(credentials)
        expires_at: datetime | None = None
        data: dict[str, Any] = {}
        if isinstance(spec, OAuth2SchemeSpec):
            expires_in = values.pop("expires_in", None)
            expires_at = values.pop("expires_at", None)
            if expires_in is not None:
                expires_at = utcnow() + timedelta(seconds=float(expires_in))
            if expires_at is not None and not isinstance(expires_at, datetime):
                raise ValidationError("expires_at must be a datetime.", field="expires_at")
            secrets = check_credentials(values, allowed=_TOKEN_KEYS, required=("access_token",))
        elif isinstance(spec, ApiKeySchemeSpec):
            secrets, data = split_fields(spec, values)
        else:
            raise ValidationError(
                f"Accounts of scheme {config.auth_scheme.value} cannot be created this way.",
                field="auth_config_id",
            )
        now = utcnow()
        account = ConnectedAccount(
            id=new_id("ca"),
            user_id=user_id,
            toolkit=config.toolkit,
            auth_config_id=config.id,
            status=ConnectionStatus.ACTIVE,
            scopes=config.scopes if config.auth_scheme is AuthScheme.OAUTH2 else (),
            expires_at=expires_at,
            label=check_text(label, field="label") if label is not None else None,
            data=data,
            created_at=now,
            updated_at=now,
            credentials=secrets,
        )
        store = await self._client.store()
        await store.create_account(account)
        return account

    async def _set_status(
        self, id: str, status: ConnectionStatus, reason: str | None
    ) -> ConnectedAccount:
        def apply(current: ConnectedAccount) -> ConnectedAccount:
            if status is ConnectionStatus.ACTIVE and not current.credentials:
                raise ConflictError(
                    f"Connected account {id} has no credentials yet ({current.status.value}); "
                    "the user must finish connecting first."
                )
            return current.model_copy(update={"status": status, "status_reason": reason})

        store = await self._client.store()
        return await store.modify(ConnectedAccount, id, apply)

    async def enable(self, id: str) -> ConnectedAccount:
        """Make a disabled (INACTIVE) account ACTIVE again."""
        return await self._set_status(id, ConnectionStatus.ACTIVE, None)

    async def disable(self, id: str) -> ConnectedAccount:
        """Mark the account INACTIVE: tools stop using it; its credentials are kept."""
        return await self._set_status(id, ConnectionStatus.INACTIVE, "disabled by the app")

    async def delete(self, id: str) -> None:
        """Delete the account and its credentials."""
        store = await self._client.store()
        if not await store.delete_account(id):
            raise NotFoundError("connected account", id)
