"""An ``httpx.Auth`` that signs requests as one connected account: it applies the stored
credentials, refreshes OAuth tokens before they expire and once after a 401 (RFC 6750 §3.1).

Loaded on first use by :mod:`toolauth.resources.http_clients` (it needs httpx)."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator

import httpx

from .._exceptions import ConnectionRequiredError, NotFoundError, TokenRefreshError
from .._models import ConnectedAccount, utcnow
from ..auth.credentials import apply_placements, credential_values
from ..catalog import CredentialPlacement
from ..oauth.refresh import TokenManager
from ..store import Store

__all__ = ["AccountAuth"]


class AccountAuth(httpx.Auth):
    """Signs each request as one connected account. Never shows a token in its ``repr``.

    The account is read from the store, and kept for at most ``cache_seconds`` while no
    change is published in this process: a disable or refresh here takes effect at once, one
    made by another process within ``cache_seconds`` (the ``account_cache`` setting).
    """

    requires_request_body = True  # a request retried after a 401 is sent again, body and all

    def __init__(
        self,
        account_id: str,
        placements: tuple[CredentialPlacement, ...],
        *,
        store: Callable[[], Awaitable[Store]],
        tokens: TokenManager,
        cache_seconds: float,
        seed: tuple[ConnectedAccount, int] | None = None,
    ) -> None:
        self.account_id = account_id
        self._placements = placements
        self._store = store
        self._tokens = tokens
        self._cache_seconds = cache_seconds
        self._cached: tuple[ConnectedAccount, int, float] | None = None
        if seed is not None and not seed[0].shared:  # the account as just read, and the
            self._cached = (seed[0], seed[1], time.monotonic() + cache_seconds)  # generation

    def __repr__(self) -> str:
        return f"AccountAuth(account_id={self.account_id!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("toolauth's account auth works with httpx.AsyncClient only.")
        yield request  # pragma: no cover

    async def _account(self) -> ConnectedAccount:
        store = await self._store()
        now = time.monotonic()
        cached = self._cached
        if cached is not None and cached[1] == store.changes.generation and now < cached[2]:
            return cached[0]
        generation = store.changes.generation
        account = await store.get_account(self.account_id)
        if account is None:
            self._cached = None
            raise NotFoundError("connected account", self.account_id)
        if account.shared:  # the auth config's credential, read with the account (in memory only)
            config = await store.get_auth_config(account.auth_config_id)
            if config is None:
                raise NotFoundError("auth config", account.auth_config_id)
            account = account.model_copy(update={"credentials": dict(config.credentials)})
        self._cached = (account, generation, now + self._cache_seconds)
        if not account.is_active:
            raise ConnectionRequiredError(account.toolkit, account.id, account.status.value)
        return account

    def _sign(self, request: httpx.Request, account: ConnectedAccount) -> None:
        values = credential_values(account.credentials, account.data)
        apply_placements(request, self._placements, values)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self.requires_request_body:  # what httpx.Auth.async_auth_flow would do
            await request.aread()
        tokens = self._tokens
        account = await self._account()
        if tokens.needs_refresh(account):
            try:
                account = await tokens.refresh(account)
            except TokenRefreshError as exc:
                # An early refresh that failed on an outage does not fail a call the current
                # token can still make.
                expires_at = account.expires_at
                if not exc.retryable or expires_at is None or expires_at <= utcnow():
                    raise
        self._sign(request, account)
        response = yield request
        if response.status_code == 401 and "refresh_token" in account.credentials:
            # RFC 6750 §3.1 invalid_token: refresh once (unless another caller just did) and
            # retry once.
            await response.aread()
            account = await tokens.refresh(account, force=True)
            self._sign(request, account)
            yield request
