"""``ta.connected_accounts``: one user's credentials for one toolkit."""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._callbacks import check_callback_url
from .._exceptions import ConflictError, NotFoundError, ValidationError
from .._ids import new_id
from .._loop import on_home_loop
from .._models import (
    AuthConfig,
    AuthScheme,
    ConnectedAccount,
    ConnectionLink,
    ConnectionStatus,
    LinkStatus,
    utcnow,
)
from .._settings import ConnectUrls, Settings
from .._validation import check_credentials, check_text, check_user_id
from ..auth.fields import split_fields
from ..catalog import ApiKeySchemeSpec, Catalog, OAuth2SchemeSpec
from ..oauth.refresh import TokenManager
from ..store import AccountFilter, Store
from .auth_configs import AuthConfigs, registers_clients
from .confirmations import Confirmations
from .connection_requests import ConnectionRequest, Waiter
from .http_clients import AccountClients

if TYPE_CHECKING:
    import httpx

__all__ = ["ConnectedAccounts"]

# Connect links live 10 minutes by default and an hour at most (RFC 9700 §2.1: short-lived).
MAX_LINK_TTL = 3600.0
_TOKEN_KEYS = ("access_token", "refresh_token", "id_token", "token_type")


def _expiry(expires_in: object, expires_at: object) -> datetime | None:
    """When imported tokens expire: ``expires_in`` seconds from now, or the aware datetime
    ``expires_at``; a ``ValidationError`` for anything else (it must compare with now)."""
    if expires_in is not None:
        try:
            if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float, str)):
                raise TypeError
            seconds = float(expires_in)
            if not math.isfinite(seconds):
                raise ValueError
            return utcnow() + timedelta(seconds=seconds)
        except (TypeError, ValueError, OverflowError):
            raise ValidationError(
                "expires_in must be a number of seconds, e.g. 3600.", field="expires_in"
            ) from None
    if expires_at is None:
        return None
    if not isinstance(expires_at, datetime) or expires_at.utcoffset() is None:
        raise ValidationError(
            "expires_at must be a timezone-aware datetime, e.g. "
            "datetime.now(timezone.utc) + timedelta(hours=1).",
            field="expires_at",
        )
    return expires_at


_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.@+-]{0,63}$")
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,200}$")  # RFC 6749 §3.3 scope-token


def _check_alias(alias: object) -> str | None:
    if alias is None:
        return None
    if not isinstance(alias, str) or not _ALIAS.match(alias.strip()):
        raise ValidationError(
            "alias must be 1-64 characters: letters, digits, spaces and _ . @ + - (e.g. "
            "'work' or 'personal').",
            field="alias",
        )
    return alias.strip()


def _check_scopes(scopes: object) -> tuple[str, ...] | None:
    if scopes is None:
        return None
    values = [scopes] if isinstance(scopes, str) else scopes
    if not isinstance(values, (list, tuple)) or not all(
        isinstance(s, str) and _SCOPE.match(s) for s in values
    ):
        raise ValidationError(
            "scopes must be a list of scope strings without spaces or quotes (RFC 6749 §3.3), "
            "e.g. ['repo', 'read:user'].",
            field="scopes",
        )
    return tuple(dict.fromkeys(values))


class ConnectedAccounts:
    """List, read, import, enable, disable and delete connected accounts."""

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        settings: Settings,
        urls: ConnectUrls,
        catalog: Catalog,
        auth_configs: AuthConfigs,
        tokens: TokenManager,
        clients: AccountClients,
        waiter: Waiter,
        confirmations: Confirmations,
    ) -> None:
        self._store = store
        self._settings = settings
        self._urls = urls
        self._catalog = catalog
        self._auth_configs = auth_configs
        self._tokens = tokens
        self._clients = clients
        self._waiter = waiter
        self._confirmations = confirmations
        self._home = waiter.home

    @on_home_loop
    async def get(self, id: str) -> ConnectedAccount:
        store = await self._store()
        account = await store.get_account(id)
        if account is None:
            raise NotFoundError("connected account", id)
        return account

    @on_home_loop
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
        slug = (await self._catalog.resolve(toolkit)).slug if toolkit is not None else None
        store = await self._store()
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

    @on_home_loop
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
        config = await self._auth_configs.get(auth_config_id)
        if not config.enabled:
            raise ConflictError(
                f"Auth config {config.id} is disabled; enable it to connect new accounts."
            )
        definition = await self._catalog.resolve(config.toolkit)
        spec = definition.scheme(config.auth_scheme)
        if not isinstance(credentials, Mapping):
            raise ValidationError(
                "credentials must be a dict of the scheme's fields.", field="credentials"
            )
        values = dict(credentials)
        expires_at: datetime | None = None
        data: dict[str, Any] = {}
        if isinstance(spec, OAuth2SchemeSpec):
            expires_at = _expiry(values.pop("expires_in", None), values.pop("expires_at", None))
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
            issued_at=now,
            label=check_text(label, field="label") if label is not None else None,
            data=data,
            created_at=now,
            updated_at=now,
            credentials=secrets,
        )
        store = await self._store()
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

        store = await self._store()
        return await store.modify(ConnectedAccount, id, apply)

    @on_home_loop
    async def set_default(self, id: str) -> ConnectedAccount:
        """Make account ``id`` its user's default account of its toolkit: the one tools use
        when a call does not name an account. One default per user and toolkit."""
        store = await self._store()
        for _ in range(3):
            account = await self.get(id)
            if account.is_default:
                return account
            others = [
                a.model_copy(update={"is_default": False})
                for a in await store.list_accounts(
                    AccountFilter(user_id=account.user_id, toolkit=account.toolkit)
                )
                if a.is_default
            ]
            try:  # the old default first: the unique index allows one at a time
                saved = await store.save(*others, account.model_copy(update={"is_default": True}))
            except ConflictError:
                continue
            result: ConnectedAccount = saved[-1]
            return result
        raise ConflictError("The accounts kept changing while the default was set; try again.")

    @on_home_loop
    async def enable(self, id: str) -> ConnectedAccount:
        """Make a disabled (INACTIVE) account ACTIVE again."""
        return await self._set_status(id, ConnectionStatus.ACTIVE, None)

    @on_home_loop
    async def disable(self, id: str) -> ConnectedAccount:
        """Mark the account INACTIVE: tools stop using it; its credentials are kept."""
        return await self._set_status(id, ConnectionStatus.INACTIVE, "disabled by the app")

    @on_home_loop
    async def delete(self, id: str) -> None:
        """Delete the account and its credentials, revoking its token at the provider first
        when the toolkit has a revocation endpoint (RFC 7009)."""
        account = await self.get(id)
        await self._tokens.revoke(account)
        store = await self._store()
        if not await store.delete_account(id):
            raise NotFoundError("connected account", id)

    # connect links -----------------------------------------------------------------------
    @on_home_loop
    async def link(
        self,
        user_id: str,
        auth_config_id: str,
        *,
        callback_url: str | None = None,
        label: str | None = None,
        reinitiate: bool = False,
        ttl: float | None = None,
        allow_identity_change: bool = False,
        alias: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> ConnectionRequest:
        """A connect link for ``user_id`` through ``auth_config_id``.

        Returns the user's ACTIVE account instead (``redirect_url`` is ``None``) unless
        ``reinitiate``; returns the same pending link while one is open. ``callback_url``
        must be on an allowed origin; the user is sent there with ``status``,
        ``connected_account_id`` and, on failure, ``error``.

        Reconnecting (``reinitiate``) an account as another provider identity than the one
        it was connected as is refused (the user sees why; the account keeps its grant)
        unless ``allow_identity_change``.

        ``alias`` ("work", "personal") names one of several accounts of the toolkit: a link
        with a new alias adds an account instead of replacing one; aliases are unique per user
        and toolkit. The user's first account of a toolkit is its default
        (:meth:`set_default` changes it). ``scopes``: what the link asks for, instead of the
        config's scopes (a session's union of its tools' scopes, or a step-up).
        """
        user_id = check_user_id(user_id)
        alias = _check_alias(alias)
        wanted = _check_scopes(scopes)
        label = check_text(label, field="label") if label is not None else None
        settings = self._settings
        if callback_url is not None:
            callback_url = check_callback_url(
                callback_url,
                allowed_origins=settings.allowed_callback_origins,
                base_url=settings.base_url,
            )
        lifetime = settings.link_ttl if ttl is None else ttl
        if not isinstance(lifetime, (int, float)) or not 0 < lifetime <= MAX_LINK_TTL:
            where = "ttl" if ttl is not None else "TOOLAUTH_LINK_TTL (link_ttl)"
            raise ValidationError(
                f"{where} must be more than 0 and at most {MAX_LINK_TTL:g} seconds: a connect "
                "link is short-lived (the default is 600).",
                field="ttl",
            )
        config = await self._auth_configs.get(auth_config_id)
        if not config.enabled:
            raise ConflictError(
                f"Auth config {config.id} is disabled; enable it to connect new accounts."
            )
        if config.is_shared:  # nothing for the user to do: connected at once, with no link
            return await self._shared(user_id, config, label)
        spec = (await self._catalog.resolve(config.toolkit)).scheme(config.auth_scheme)
        if not isinstance(spec, (OAuth2SchemeSpec, ApiKeySchemeSpec)):
            raise ValidationError(
                f"{config.auth_scheme.value} accounts cannot be connected through a link.",
                field="auth_config_id",
            )
        definition = self._catalog.get(config.toolkit)
        if (
            isinstance(spec, OAuth2SchemeSpec)
            and config.is_managed
            and "registered_redirect_uri" not in config.credentials
            and not registers_clients(definition)
        ):
            settings.managed_oauth_app(config.toolkit)  # a clear error now, not on the page
        store = await self._store()
        theirs = await store.list_accounts(AccountFilter(user_id=user_id, toolkit=config.toolkit))
        if alias is not None:
            mine = [a for a in theirs if a.alias == alias]
            if mine and mine[0].auth_config_id != config.id:
                raise ConflictError(
                    f"The user's {config.toolkit} account {mine[0].id} already has the alias "
                    f"{alias!r} (through auth config {mine[0].auth_config_id}); choose another "
                    "alias, or delete that account first."
                )
        else:
            mine = [
                a
                for a in theirs
                if a.auth_config_id == config.id and a.label == label and a.alias is None
            ]
        active = next((a for a in mine if a.is_active), None)
        if (
            active is not None
            and not reinitiate
            and (wanted is None or set(wanted) <= set(active.scopes))
        ):
            return ConnectionRequest(active, None, urls=self._urls, waiter=self._waiter)
        now = utcnow()
        target = active or (mine[0] if mine else None)
        if target is None:
            account = ConnectedAccount(
                id=new_id("ca"), user_id=user_id, toolkit=config.toolkit,
                auth_config_id=config.id, status=ConnectionStatus.INITIATED, label=label,
                alias=alias, is_default=not theirs, created_at=now, updated_at=now,
            )  # fmt: skip
        elif target.is_active:
            account = target  # reconnecting: it stays ACTIVE until the new grant lands
        else:
            account = target.model_copy(
                update={"status": ConnectionStatus.INITIATED, "status_reason": None}
            )
        pending_key = f"{user_id}\x1f{config.id}\x1f{label or ''}"
        if alias is not None:  # one open link per alias
            pending_key += f"\x1falias:{alias}"
        if wanted is not None:  # a step-up or a session's scopes: its own link
            pending_key += "\x1fscopes:" + " ".join(sorted(wanted))
        link = ConnectionLink(
            id=new_id("ln"), connected_account_id=account.id, user_id=user_id,
            toolkit=config.toolkit, auth_config_id=config.id, auth_scheme=config.auth_scheme,
            status=LinkStatus.PENDING, pending_key=pending_key,
            callback_url=callback_url, expires_at=now + timedelta(seconds=lifetime),
            allow_identity_change=bool(allow_identity_change), scopes=wanted,
            created_at=now, updated_at=now,
        )  # fmt: skip
        for _ in range(3):
            try:
                opened, created = await store.open_link(
                    link, account, new=target is None, update=account is not target
                )
                break
            except ConflictError:  # a concurrent link() won the race: take its link
                if account.is_default:  # or made the user's first account (the default)
                    account = account.model_copy(update={"is_default": False})
                continue
        else:
            raise ConflictError("Could not open a link; the account kept changing. Try again.")
        if not created:
            account = await self.get(opened.connected_account_id)
            changes: dict[str, Any] = {}
            if callback_url is not None and opened.callback_url != callback_url:
                changes["callback_url"] = callback_url  # now ending where the caller asks
            if opened.allow_identity_change != bool(allow_identity_change):
                changes["allow_identity_change"] = bool(allow_identity_change)
            if changes:  # the same open link, as the caller asks for it this time
                (opened,) = await store.save(opened.model_copy(update=changes))
        self._urls.check_served()
        return ConnectionRequest(account, opened, urls=self._urls, waiter=self._waiter)

    async def _shared(
        self, user_id: str, config: AuthConfig, label: str | None
    ) -> ConnectionRequest:
        """The user's ACTIVE account on a shared config (made, or made ACTIVE, now): it holds
        no secret of its own; its requests carry the config's credential."""
        store = await self._store()
        mine = [
            a
            for a in await store.list_accounts(
                AccountFilter(user_id=user_id, auth_config_id=config.id)
            )
            if a.label == label
        ]
        account = next((a for a in mine if a.is_active), None)
        if account is None and mine:
            account = await store.modify(
                ConnectedAccount, mine[0].id,
                lambda a: a.model_copy(update={
                    "status": ConnectionStatus.ACTIVE, "status_reason": None, "shared": True,
                }),
            )  # fmt: skip
        elif account is None:
            now = utcnow()
            account = ConnectedAccount(
                id=new_id("ca"), user_id=user_id, toolkit=config.toolkit,
                auth_config_id=config.id, status=ConnectionStatus.ACTIVE, label=label,
                shared=True, created_at=now, updated_at=now,
            )  # fmt: skip
            await store.create_account(account)
        return ConnectionRequest(account, None, urls=self._urls, waiter=self._waiter)

    @on_home_loop
    async def confirm(self, code: str, *, user_id: str) -> ConnectedAccount:
        """Confirm a connect link finished where the connect app could not tell who the user
        was: its grant becomes the account's, which is ACTIVE (waiters wake).

        Your app gets ``code`` (and ``connected_account_id``) on the link's ``callback_url``
        or ``TOOLAUTH_CONFIRM_URL`` with ``status=pending_confirmation``; pass the id of the
        user signed in to your app. Raises ``ConfirmationError`` for a code that is unknown,
        used, expired or of another user's link; nothing changes then.
        """
        return await self._confirmations.confirm(code, user_id)

    @on_home_loop
    async def wait_for_connection(
        self, id: str, *, timeout: float | None = None
    ) -> ConnectedAccount:
        """Wait until account ``id`` is ACTIVE (returned) or has failed
        (``ConnectionFailedError``); ``ConnectionTimeoutError`` after ``timeout`` seconds
        (default: the remaining lifetime of its pending link)."""
        return await self._waiter.wait(id, timeout=timeout)

    @on_home_loop
    async def http_client(self, id: str) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` on the toolkit's API whose requests carry this account's
        credentials, refreshed before they expire and once after a 401."""
        return await self._clients.client(await self.get(id))

    @on_home_loop
    async def refresh(self, id: str) -> ConnectedAccount:
        """Refresh the account's OAuth tokens now (once, however many callers ask at once)."""
        account = await self.get(id)
        return await self._tokens.refresh(account, force=True)
