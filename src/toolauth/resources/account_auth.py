"""An ``httpx.Auth`` that signs requests as one connected account: it applies the stored
credentials, refreshes OAuth tokens before they expire and once after a 401 (RFC 6750 §3.1).

Credentials go to the toolkit's API only: a request to any other origin (scheme, host and
port; RFC 6454) is refused before anything is sent, and a redirect the client follows to
another origin leaves every credential behind (:func:`guard_client`).

Loaded on first use by :mod:`toolauth.resources.http_clients` (it needs httpx)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable
from typing import Any

import httpx

from .._exceptions import ConnectionRequiredError, NotFoundError, TokenRefreshError, ToolApiError
from .._models import ConnectedAccount, utcnow
from ..auth.credentials import apply_placements, credential_values
from ..catalog import CredentialPlacement
from ..oauth.refresh import TokenManager
from ..store import Store

__all__ = ["AccountAuth", "ApiOrigins", "guard_client"]

log = logging.getLogger("toolauth.http")

Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: httpx.URL) -> Origin:
    """``url``'s origin: scheme, host and port, the port spelled out even when it is the
    scheme's default."""
    return (url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 0))


def _full(origin: Origin) -> str:
    """``https://host``, ``http://127.0.0.1:8080``: the origin as written (RFC 6454 §6.1)."""
    scheme, host, port = origin
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + ("" if _DEFAULT_PORTS.get(scheme) == port else f":{port}")


def _show(origin: Origin) -> str:
    """The usual case (HTTPS on its port) as a host name, ``evil.example``; else in full."""
    scheme, host, port = origin
    return host if (scheme, port) == ("https", 443) else _full(origin)


class ApiOrigins:
    """The origins a toolkit's API lives at: where an account's credentials may go."""

    def __init__(self, toolkit: str, urls: Iterable[str]) -> None:
        self.toolkit = toolkit
        self.origins = frozenset(origin_of(httpx.URL(url)) for url in urls)

    def __repr__(self) -> str:
        return f"ApiOrigins({self.toolkit!r}, {sorted(map(_full, self.origins))!r})"

    def allows(self, url: httpx.URL) -> bool:
        return origin_of(url) in self.origins

    def check(self, url: httpx.URL) -> None:
        """Raise ``ToolApiError`` (a message for the model) unless ``url`` is on the API."""
        if self.allows(url):
            return
        allowed = " or ".join(sorted(map(_full, self.origins)))
        raise ToolApiError(
            f"toolauth refused to send {self.toolkit} credentials to {_show(origin_of(url))}: "
            f"not {self.toolkit}'s API origin ({allowed}). Nothing was sent; call the API by "
            "a path relative to its base URL."
        )


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
        origins: ApiOrigins,
        seed: tuple[ConnectedAccount, int] | None = None,
    ) -> None:
        self.account_id = account_id
        self.origins = origins
        self.placements = placements
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
        apply_placements(request, self.placements, values)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # Before anything else (no store read, no refresh): a URL a tool or the model chose
        # must not get the account's credentials, nor cause a refresh.
        self.origins.check(request.url)
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
        if (
            response.status_code == 401
            and "refresh_token" in account.credentials
            and self.origins.allows(response.request.url)  # not a redirect's 401 elsewhere
        ):
            # RFC 6750 §3.1 invalid_token: refresh once (unless another caller just did) and
            # retry once.
            await response.aread()
            account = await tokens.refresh(account, force=True)
            self._sign(request, account)
            yield request


def guard_client(
    client: httpx.AsyncClient, origins: ApiOrigins, placements: tuple[CredentialPlacement, ...]
) -> httpx.AsyncClient:
    """Keep ``client``'s credentials on the API's origins in the two ways httpx would let
    them out, next to :class:`AccountAuth` (which refuses to sign a request elsewhere). The
    client stays httpx's own type.

    - ``//host/path`` (a network-path reference, RFC 3986 §4.2): httpx would keep the path on
      the base URL and silently drop the host; it is checked as the URL it names instead.
    - Redirects (``follow_redirects=True``): httpx sends each hop without running the auth
      flow again, and carries every header but ``Authorization`` across origins (an API key
      header would go along). A request hook, run last, drops every credential placement
      (headers, query parameters, Basic auth) from any request leaving for another origin.
    """
    headers = {"authorization"} | {
        p.name.lower() for p in placements if p.in_ == "header" and p.name
    }  # fmt: skip
    params = tuple(p.name for p in placements if p.in_ == "query" and p.name)

    async def strip_elsewhere(request: httpx.Request) -> None:
        if origins.allows(request.url):
            return
        for name in headers:
            request.headers.pop(name, None)  # case-insensitive, every value of the name
        for name in params:
            if name in request.url.params:
                request.url = request.url.copy_remove_param(name)
        log.info(
            "%s: no credentials on the request to %s (not %s's API origin)",
            origins.toolkit, _show(origin_of(request.url)), origins.toolkit,
        )  # fmt: skip

    build_request = client.build_request

    def build_checked(method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Request:
        given = httpx.URL(url)
        if given.host and not given.scheme:  # "//evil.example/x"
            url = given.copy_with(scheme=client.base_url.scheme)
            origins.check(url)
        return build_request(method, url, **kwargs)

    # On this instance only: request() and stream() call self.build_request.
    client.build_request = build_checked  # type: ignore[method-assign]
    client.event_hooks["request"].append(strip_elsewhere)
    return client
