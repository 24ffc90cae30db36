"""Binding a connect link to its user across processes: the held grant and its confirmation.

When the connect app that finishes a link cannot tell who the browser belongs to (no
``verify_user``) and binding is required (a public ``base_url``), the provider's grant is not
written to the account. It is held, encrypted, on the link (``PENDING_CONFIRMATION``), and the
browser goes to the app with a one-time code; the app, which knows its signed-in user, calls
``connected_accounts.confirm(code, user_id=...)``. Only then is the grant the account's. A grant
nobody confirms is erased and revoked at the provider after ``TOOLAUTH_CONFIRM_TTL`` seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from .._exceptions import ConfirmationError, ConflictError
from .._models import (
    AccountIdentity,
    ConnectedAccount,
    ConnectionLink,
    ConnectionStatus,
    LinkStatus,
    utcnow,
)
from .._settings import Settings
from .._validation import check_user_id
from ..oauth.refresh import TokenManager
from ..store import Store

__all__ = [
    "GRANT_SECRET",
    "Confirmations",
    "HeldGrant",
    "hash_code",
    "identity_conflict",
    "new_code",
    "with_grant",
]

log = logging.getLogger("toolauth.links")

GRANT_SECRET = "grant"
"""The key of the held grant in a link's encrypted ``secrets``."""

_REVOCABLE = ("refresh_token", "access_token")
_MAX_CODE = 200


def new_code() -> str:
    """A one-time confirmation code: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_code(code: str) -> str:
    """What the store keeps of a code: its SHA-256 (a database read cannot confirm a link)."""
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class HeldGrant:
    """What a completed flow gives an account: credentials (secret) and their plain data."""

    credentials: dict[str, SecretStr]
    data: dict[str, Any]
    scopes: tuple[str, ...]
    expires_at: datetime | None
    identity: AccountIdentity | None = None
    # Whether the grant it replaces is revoked once it lands: not after an incremental
    # step-up, where the new grant extends the old one (revoking it would end both).
    revoke_old: bool = True

    def encode(self) -> SecretStr:
        """The whole grant as one secret, to keep in a link's encrypted ``secrets``."""
        return SecretStr(
            json.dumps({
                "credentials": {k: v.get_secret_value() for k, v in self.credentials.items()},
                "data": self.data, "scopes": list(self.scopes),
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "identity": self.identity.model_dump() if self.identity else None,
                "revoke_old": self.revoke_old,
            })
        )  # fmt: skip

    @classmethod
    def decode(cls, held: SecretStr) -> HeldGrant:
        value = json.loads(held.get_secret_value())
        expires = value.get("expires_at")
        identity = value.get("identity")
        return cls(
            credentials={k: SecretStr(v) for k, v in value["credentials"].items()},
            data=dict(value.get("data") or {}), scopes=tuple(value.get("scopes") or ()),
            expires_at=datetime.fromisoformat(expires) if expires else None,
            identity=AccountIdentity.model_validate(identity) if identity else None,
            revoke_old=bool(value.get("revoke_old", True)),
        )  # fmt: skip

    @classmethod
    def of(cls, link: ConnectionLink) -> HeldGrant | None:
        held = link.secrets.get(GRANT_SECRET)
        return cls.decode(held) if held is not None else None


def with_grant(account: ConnectedAccount, grant: HeldGrant, now: datetime) -> ConnectedAccount:
    """``account`` ACTIVE with ``grant`` in place of whatever it held."""
    return account.model_copy(update={
        "status": ConnectionStatus.ACTIVE, "status_reason": None,
        "credentials": grant.credentials, "data": {**account.data, **grant.data},
        "scopes": grant.scopes, "expires_at": grant.expires_at, "issued_at": now,
        "identity": grant.identity or account.identity,
    })  # fmt: skip


def identity_conflict(
    link: ConnectionLink, account: ConnectedAccount, grant: HeldGrant
) -> AccountIdentity | None:
    """The identity ``account`` already has when ``grant`` is another provider identity's
    and the link did not allow that (``allow_identity_change``); None when it may go on."""
    old, new = account.identity, grant.identity
    if link.allow_identity_change or old is None or new is None or old.same_as(new):
        return None
    return old


class Confirmations:
    """Confirming held grants, sweeping the unconfirmed ones, and revoking replaced grants."""

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        settings: Settings,
        tokens: TokenManager,
    ) -> None:
        self._store = store
        self._settings = settings
        self._tokens = tokens

    async def confirm(self, code: str, user_id: str) -> ConnectedAccount:
        """Make the grant held under ``code`` the account's, if the link was made for
        ``user_id``; then revoke the grant it replaces. ``ConfirmationError`` otherwise."""
        user_id = check_user_id(user_id)
        await self.sweep()  # an expired grant is revoked and erased before anything else
        if not isinstance(code, str) or not 0 < len(code) <= _MAX_CODE:
            raise ConfirmationError("unknown")
        store = await self._store()
        link = await store.get_link_by_confirm(hash_code(code))
        if link is None or link.status in (LinkStatus.COMPLETED, LinkStatus.PENDING):
            raise ConfirmationError("unknown")
        if link.status is not LinkStatus.PENDING_CONFIRMATION:
            raise ConfirmationError("expired")
        if link.user_id != user_id:
            raise ConfirmationError("wrong_user")
        grant = HeldGrant.of(link)
        if grant is None:
            raise ConfirmationError("unknown")
        for _ in range(3):
            account = await store.get_account(link.connected_account_id)
            if account is None:
                raise ConfirmationError("unknown")
            now = utcnow()
            done = link.model_copy(update={
                "status": LinkStatus.COMPLETED, "completed_at": now, "secrets": {},
                "error": None, "error_description": None,
            })  # fmt: skip
            if identity_conflict(link, account, grant) is not None:
                raise ConfirmationError("identity_mismatch")
            confirmed = with_grant(account, grant, now)
            try:
                _, saved = await store.save(done, confirmed)
            except ConflictError:
                # Single use: a link that moved on was confirmed (or swept) by someone else.
                # An account written meanwhile (a refresh of the old grant) is read again.
                current = await store.get_link(link.id)
                if current is None or current.version != link.version:
                    raise ConfirmationError("unknown") from None
                continue
            if grant.revoke_old:
                await self.revoke_replaced(account, confirmed)
            result: ConnectedAccount = saved
            return result
        raise ConflictError("The account kept changing while it was confirmed; try again.")

    async def sweep(self, now: datetime | None = None) -> int:
        """Erase every grant still unconfirmed at ``now`` (default: the current time), then
        revoke it at the provider; returns how many were swept. The link ends FAILED
        (``not_confirmed``) and a new account FAILED; an ACTIVE account keeps its old grant."""
        now = now or utcnow()
        store = await self._store()
        swept = 0
        for link in await store.unconfirmed_links(now):
            grant = HeldGrant.of(link)
            reason = "The app did not confirm the connection in time."
            changed: list[Any] = [
                link.model_copy(update={
                    "status": LinkStatus.FAILED, "secrets": {}, "completed_at": now,
                    "error": "not_confirmed", "error_description": reason,
                })
            ]  # fmt: skip
            account = await store.get_account(link.connected_account_id)
            if account is not None and account.status is ConnectionStatus.PENDING_CONFIRMATION:
                changed.append(
                    account.model_copy(
                        update={"status": ConnectionStatus.FAILED, "status_reason": reason}
                    )
                )
            try:
                await store.save(*changed)  # erased first: it can no longer be confirmed
            except ConflictError:
                continue  # confirmed or swept meanwhile
            swept += 1
            log.info("an unconfirmed grant for %s was erased", link.connected_account_id)
            if grant is not None and account is not None:
                await self.revoke_unused(account, grant)
        return swept

    async def revoke_unused(self, account: ConnectedAccount, grant: HeldGrant) -> None:
        """Revoke a grant that will never be used (nobody can confirm it)."""
        await self._tokens.revoke(account.model_copy(update={"credentials": grant.credentials}))

    async def revoke_replaced(self, old: ConnectedAccount, new: ConnectedAccount) -> None:
        """After a reconnect, revoke the old grant's tokens at the provider (those the new
        grant does not share). A failure is a WARNING naming the account, never a secret."""
        if old.shared:
            return
        replaced = {
            hint: old.credentials[hint]
            for hint in _REVOCABLE
            if hint in old.credentials
            and (
                hint not in new.credentials
                or new.credentials[hint].get_secret_value()
                != old.credentials[hint].get_secret_value()
            )
        }
        if replaced:
            await self._tokens.revoke(old.model_copy(update={"credentials": replaced}))
