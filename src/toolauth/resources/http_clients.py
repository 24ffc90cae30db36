"""Authenticated HTTP for connected accounts: an ``httpx.Auth`` that applies the stored
credentials, refreshes OAuth tokens before they expire and once after a 401 (RFC 6750 §3.1)."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING

import httpx

from .._exceptions import ConnectionRequiredError, NotFoundError, TokenRefreshError
from .._models import ConnectedAccount, utcnow
from ..auth.credentials import apply_placements, credential_values
from ..catalog import ApiKeySchemeSpec, CredentialPlacement, OAuth2SchemeSpec
from ..catalog.templates import render

if TYPE_CHECKING:
    from .._client import AsyncToolAuth

__all__ = ["AccountAuth", "SharedTransport", "account_http_client"]


class AccountAuth(httpx.Auth):
    """Signs each request as one connected account. Never shows a token in its ``repr``.

    The account is read from the store, and kept for at most ``CACHE_SECONDS`` while no
    change is published in this process: a disable or refresh here takes effect at once, one
    made by another process within a second.
    """

    CACHE_SECONDS = 1.0

    requires_request_body = True  # a request retried after a 401 is sent again, body and all

    def __init__(
        self,
        client: AsyncToolAuth,
        account_id: str,
        placements: tuple[CredentialPlacement, ...],
        *,
        seed: tuple[ConnectedAccount, int] | None = None,
    ) -> None:
        self._client = client
        self.account_id = account_id
        self._placements = placements
        self._cached: tuple[ConnectedAccount, int, float] | None = None
        if seed is not None:  # the account as just read, and the change generation before it
            self._cached = (seed[0], seed[1], time.monotonic() + self.CACHE_SECONDS)

    def __repr__(self) -> str:
        return f"AccountAuth(account_id={self.account_id!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("toolauth's account auth works with httpx.AsyncClient only.")
        yield request  # pragma: no cover

    async def _account(self) -> ConnectedAccount:
        store = await self._client.store()
        now = time.monotonic()
        cached = self._cached
        if cached is not None and cached[1] == store.changes.generation and now < cached[2]:
            return cached[0]
        generation = store.changes.generation
        account = await store.get_account(self.account_id)
        if account is None:
            self._cached = None
            raise NotFoundError("connected account", self.account_id)
        self._cached = (account, generation, now + self.CACHE_SECONDS)
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
        tokens = self._client.tokens
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


async def account_http_client(
    client: AsyncToolAuth, account: ConnectedAccount, **kwargs: object
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on the toolkit's API base URL, signed as ``account``."""
    if not account.is_active:
        raise ConnectionRequiredError(account.toolkit, account.id, account.status.value)
    store = await client.store()
    generation = store.changes.generation
    definition = client.catalog.get(account.toolkit)
    placements = await _placements(client, account)
    variables = {**client.settings.url_variables, **{
        k: str(v) for k, v in account.data.items() if isinstance(v, str)
    }}  # fmt: skip
    # TOOLAUTH_<TOOLKIT>_API_BASE_URL points a toolkit elsewhere (GitHub Enterprise, a fake).
    override = client.settings.environ.get(f"TOOLAUTH_{definition.slug.upper()}_API_BASE_URL")
    base_url = render(override or definition.api_base_url, variables, what="api_base_url")
    if "transport" not in kwargs and "verify" not in kwargs:
        kwargs["transport"] = client.api_transport  # one connection pool for every account
    return httpx.AsyncClient(
        base_url=base_url,
        auth=AccountAuth(client, account.id, placements, seed=(account, generation)),
        headers={"User-Agent": "toolauth", **definition.default_headers},
        timeout=httpx.Timeout(30.0, connect=10.0),
        **kwargs,  # type: ignore[arg-type]
    )


async def _placements(
    client: AsyncToolAuth, account: ConnectedAccount
) -> tuple[CredentialPlacement, ...]:
    """How the account's credentials go on a request: from its config's scheme (which never
    changes) and the toolkit's definition, cached per config and definition."""
    definition = client.catalog.get(account.toolkit)
    cached = client._placements.get(account.auth_config_id)
    if cached is not None and cached[0] is definition:
        return cached[1]
    config = await client.auth_configs.get(account.auth_config_id)
    spec = definition.scheme(config.auth_scheme)
    found: tuple[CredentialPlacement, ...] = ()
    if isinstance(spec, OAuth2SchemeSpec):
        found = (spec.placement,)
    elif isinstance(spec, ApiKeySchemeSpec):
        found = spec.placements
    client._placements[account.auth_config_id] = (definition, found)
    return found


class SharedTransport(httpx.AsyncBaseTransport):
    """A pooled transport that the short-lived per-account clients share: closing one of
    those clients leaves the pool open; the toolauth client closes it."""

    def __init__(self, inner: httpx.AsyncHTTPTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Left open on purpose: see :meth:`close`."""

    async def close(self) -> None:
        await self._inner.aclose()
