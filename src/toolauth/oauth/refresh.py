"""OAuth tokens of connected accounts: refresh (single-flight, across processes) and revocation.

One refresh per account at a time: an in-process lock per account, then a lease row in the
store that other processes respect. The winner re-reads the account after taking the lease
(another process may have refreshed already), calls the token endpoint, and writes the new
access token and any rotated refresh token in one transaction. While it does, a heartbeat
renews the lease every third of its length, so a provider slower than the lease does not let
another process in. Rotating refresh tokens are therefore never spent twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import weakref
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

import anyio

from .._exceptions import (
    ConnectionRequiredError,
    NotFoundError,
    TokenRefreshError,
    ToolAuthError,
)
from .._http import HttpPool
from .._models import AuthConfig, ConnectedAccount, ConnectionStatus, utcnow
from .._settings import ConnectUrls, Settings
from ..catalog import Catalog, OAuth2SchemeSpec
from ..catalog.templates import render
from ..events import EventType
from .client_app import oauth_app

if TYPE_CHECKING:
    from ..store import Store
    from .tokens import TokenSet

__all__ = ["TokenManager"]

log = logging.getLogger("toolauth.tokens")
T = TypeVar("T")


def _reason(exc: Exception) -> str:
    """What went wrong, for a log line: toolauth's own messages never hold a secret; of any
    other exception only its type is shown."""
    return exc.message if isinstance(exc, ToolAuthError) else type(exc).__name__


class TokenManager:
    """Keeps OAuth accounts' access tokens fresh."""

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        settings: Settings,
        urls: ConnectUrls,
        catalog: Catalog,
        http: HttpPool,
        auth_config: Callable[[str], Awaitable[AuthConfig]],
    ) -> None:
        self._store = store
        self._settings = settings
        self._urls = urls
        self._catalog = catalog
        self._http = http
        self._auth_config = auth_config
        self._locks: weakref.WeakValueDictionary[str, anyio.Lock] = weakref.WeakValueDictionary()
        # The last refresh that failed on a provider outage, per account:
        # (when, error code, description).
        self._failures: dict[str, tuple[float, str, str | None]] = {}
        self._owner = f"{os.getpid()}-{secrets.token_hex(6)}"
        self.refresh_requests = 0  # token endpoint calls made by this process (for benchmarks)

    async def _spec(self, account: ConnectedAccount) -> OAuth2SchemeSpec | None:
        # The newest definition: another process may have re-discovered new endpoints.
        return (await self._catalog.resolve(account.toolkit, fresh=True)).oauth2()

    def needs_refresh(self, account: ConnectedAccount) -> bool:
        """True when the access token expires within the margin (at most half its life, from
        when it was issued: disabling or relabelling the account does not move that)."""
        if account.expires_at is None or "refresh_token" not in account.credentials:
            return False
        margin = self._settings.refresh_margin
        if account.issued_at is not None:
            lifetime = (account.expires_at - account.issued_at).total_seconds()
            margin = min(margin, max(lifetime, 0) / 2)
        return account.expires_at - utcnow() <= timedelta(seconds=margin)

    async def refresh(self, account: ConnectedAccount, *, force: bool = False) -> ConnectedAccount:
        """A fresh copy of ``account``: refreshed now unless someone else just did it (its
        version moved on since ``account`` was read) or, without ``force``, it is not due."""
        lock = self._locks.get(account.id)
        if lock is None:
            lock = self._locks[account.id] = anyio.Lock()
        asked = anyio.current_time()
        async with lock:
            failed = self._failures.get(account.id)
            if failed is not None and failed[0] >= asked:
                # A refresh tried while this caller queued has just failed on an outage:
                # share that outcome instead of sending one more series of attempts.
                current = await self._reread(account.id)
                if self._done(account, current, force):
                    return current
                raise TokenRefreshError(failed[1], failed[2], retryable=True)
            try:
                fresh = await self._refresh_locked(account, force=force)
            except TokenRefreshError as exc:
                if exc.retryable:
                    self._failures[account.id] = (anyio.current_time(), exc.error, exc.description)
                raise
            self._failures.pop(account.id, None)
            return fresh

    async def _reread(self, account_id: str) -> ConnectedAccount:
        store = await self._store()
        current = await store.get_account(account_id)
        if current is None:
            raise NotFoundError("connected account", account_id)
        return current

    def _done(self, seen: ConnectedAccount, current: ConnectedAccount, force: bool) -> bool:
        if current.version != seen.version and current.is_active:
            return True  # refreshed (or reconnected) by someone else meanwhile
        return not force and not self.needs_refresh(current)

    @staticmethod
    def _check_active(current: ConnectedAccount) -> None:
        """An account that is not ACTIVE (its grant died, the app disabled it) is not
        refreshed: the user must reconnect first."""
        if not current.is_active:
            raise ConnectionRequiredError(current.toolkit, current.id, current.status.value)

    async def _refresh_locked(self, seen: ConnectedAccount, *, force: bool) -> ConnectedAccount:
        store = await self._store()
        current = await self._reread(seen.id)
        if self._done(seen, current, force):
            return current
        self._check_active(current)
        with store.changes.subscribe(seen.id) as bell:
            async with store.watching():
                lease = self._settings.refresh_lease
                deadline = anyio.current_time() + lease + 5
                while not await store.try_refresh_lease(seen.id, self._owner, lease):
                    # Another process is refreshing: its write rings the bell. A holder that
                    # died lets its lease lapse, so look again now and then.
                    with anyio.move_on_after(self._settings.refresh_lease_poll):
                        await bell.wait()
                    current = await self._reread(seen.id)
                    if self._done(seen, current, force):
                        return current
                    self._check_active(current)  # e.g. the holder found the grant dead
                    if anyio.current_time() > deadline:
                        raise TokenRefreshError(
                            "temporarily_unavailable",
                            f"Another process has been refreshing {seen.id} for too long.",
                            retryable=True,
                        )
        try:
            current = await self._reread(seen.id)  # after winning the lease: re-read
            if self._done(seen, current, force):
                return current
            self._check_active(current)
            return await self._holding_lease(seen.id, lambda: self._call_token_endpoint(current))
        finally:
            await store.release_refresh_lease(seen.id, self._owner)

    async def _holding_lease(self, account_id: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, while a heartbeat renews this process's refresh lease every third of
        its length: a token endpoint slower than the lease (or retries that outlast it) does
        not let another process take the lease and spend the same refresh token."""
        done: list[T] = []
        failed: list[Exception] = []
        async with anyio.create_task_group() as group:
            group.start_soon(self._heartbeat, account_id)
            try:
                done.append(await call())
            except Exception as exc:  # raised below, outside the task group's ExceptionGroup
                failed.append(exc)
            finally:
                group.cancel_scope.cancel()
        if failed:
            raise failed[0]
        return done[0]

    async def _heartbeat(self, account_id: str) -> None:
        store = await self._store()
        lease = self._settings.refresh_lease
        while True:
            await anyio.sleep(lease / 3)
            try:
                kept = await store.try_refresh_lease(account_id, self._owner, lease)
            except Exception as exc:  # e.g. the database busy for a moment: try the next beat
                log.warning(
                    "could not renew the refresh lease of %s (%s); trying again",
                    account_id, type(exc).__name__,
                )  # fmt: skip
                continue
            if not kept:  # another process took it, or the account is gone
                log.warning("this process lost the refresh lease of %s", account_id)
                return

    async def _call_token_endpoint(self, account: ConnectedAccount) -> ConnectedAccount:
        spec = await self._spec(account)
        refresh_token = account.credentials.get("refresh_token")
        if spec is None or refresh_token is None:
            raise TokenRefreshError(
                "unsupported", f"{account.toolkit} account {account.id} has no refresh token; "
                "the user must reconnect when the access token expires.", retryable=False,
            )  # fmt: skip
        from .calls import refresh_tokens  # needs httpx: loaded on the first refresh

        app = oauth_app(await self._auth_config(account.auth_config_id), self._settings)
        token_url = render(spec.token_url, self._urls.variables, what="token_url")
        store = await self._store()
        tokens: TokenSet | None = None
        error: TokenRefreshError | None = None
        for delay in (0.0, *self._settings.refresh_retry_delays):
            if delay:
                await anyio.sleep(delay)
                # Slow attempts can outlast the lease: renew it, or another process would
                # take it and spend the same (rotating) refresh token. Lost it: stop here.
                lease = self._settings.refresh_lease
                if not await store.try_refresh_lease(account.id, self._owner, lease):
                    break
            self.refresh_requests += 1
            try:
                tokens = await refresh_tokens(
                    self._http.client, token_url,
                    refresh_token=refresh_token.get_secret_value(), client_id=app.client_id,
                    client_secret=app.client_secret, auth_method=spec.token_endpoint_auth_method,
                    token_path=spec.token_path, deadline=self._settings.call_deadline,
                    resource=spec.resource,
                )  # fmt: skip
                break
            except TokenRefreshError as exc:
                error = exc
                if not exc.retryable:
                    return await self._expire(account, exc)
                log.warning("refresh of %s failed (%s); retrying", account.id, exc.error)
        if tokens is None:
            assert error is not None
            # No state change (the account stays as it is), but operators want to know.
            await store.record_event(
                account, EventType.CONNECTION_REFRESH_FAILED,
                f"refresh failed: {error.error} (the provider did not answer; will retry)",
            )  # fmt: skip
            raise TokenRefreshError(
                error.error,
                f"{account.toolkit} did not answer the refresh of {account.id} "
                f"({error.description}); the account is unchanged, try again later.",
                retryable=True,
            ) from error
        new_secrets = dict(account.credentials)
        new_secrets.update(tokens.secrets())  # a rotated refresh token replaces the old one
        now = utcnow()

        def apply(current: ConnectedAccount) -> ConnectedAccount:
            if current.credentials.get("refresh_token") != refresh_token:
                return current  # reconnected meanwhile: the new grant's tokens win
            # The status stays as it is now: an account disabled meanwhile stays disabled.
            return current.model_copy(update={
                "credentials": {**current.credentials, **new_secrets},
                "expires_at": tokens.expires_at(now),
                "issued_at": now,
                "scopes": tokens.scope if tokens.scope is not None else current.scopes,
            })  # fmt: skip

        saved = await store.modify(ConnectedAccount, account.id, apply)
        log.info("refreshed the tokens of %s", account.id)
        return saved

    async def _expire(self, account: ConnectedAccount, exc: TokenRefreshError) -> ConnectedAccount:
        """``invalid_grant``: the grant is gone; mark the account EXPIRED and say so."""
        detail = f" ({exc.description})" if exc.description else ""
        reason = f"refresh failed: {exc.error}{detail}"

        spent = account.credentials.get("refresh_token")

        def apply(current: ConnectedAccount) -> ConnectedAccount:
            if current.credentials.get("refresh_token") != spent:
                return current  # reconnected meanwhile: the new grant is alive
            return current.model_copy(
                update={"status": ConnectionStatus.EXPIRED, "status_reason": reason}
            )

        store = await self._store()
        current = await store.modify(ConnectedAccount, account.id, apply)
        if current.is_active:
            return current
        log.warning("account %s EXPIRED: %s", account.id, exc.error)
        raise TokenRefreshError(
            exc.error,
            f"The {account.toolkit} grant of {account.id} is no longer valid ({exc.error}); the "
            "account is EXPIRED and the user must reconnect through a new link.",
            retryable=False,
        ) from exc

    async def revoke(self, account: ConnectedAccount) -> bool:
        """Revoke the account's tokens at the provider (RFC 7009), when it has an endpoint.

        Best effort: a provider that is down does not stop a delete. A revocation that fails
        or cannot be made is logged as a WARNING with the account id and the reason (the
        tokens then stay valid at the provider until they expire).
        """
        spec = await self._spec(account)
        tokens = [h for h in ("refresh_token", "access_token") if h in account.credentials]
        if spec is None or not tokens:
            return False  # no OAuth tokens: nothing to revoke
        if spec.revocation_url is None:
            return self._not_revoked(account, f"{account.toolkit} has no revocation endpoint")
        from .calls import revoke_token  # needs httpx: loaded on the first revocation

        try:
            app = oauth_app(await self._auth_config(account.auth_config_id), self._settings)
        except Exception as exc:  # e.g. the managed OAuth app is no longer configured
            return self._not_revoked(account, f"no OAuth app to revoke with: {_reason(exc)}")
        try:
            url = render(spec.revocation_url, self._urls.variables, what="revocation")
        except Exception as exc:
            return self._not_revoked(account, f"no revocation URL: {_reason(exc)}")
        refused: list[str] = []
        for hint in tokens:
            token = account.credentials[hint]
            if not await revoke_token(
                self._http.client, url, token=token.get_secret_value(), token_type_hint=hint,
                client_id=app.client_id, client_secret=app.client_secret,
                auth_method=spec.token_endpoint_auth_method, deadline=self._settings.call_deadline,
            ):  # fmt: skip
                refused.append(hint)
        if len(refused) == len(tokens):
            return self._not_revoked(
                account, f"{url} did not accept the {' or the '.join(refused)} "
                "(it answered an error, or could not be reached)",
            )  # fmt: skip
        if refused:
            log.warning(
                "revocation of %s (%s) at the provider was partial: the %s was not revoked",
                account.id, account.toolkit, " and the ".join(refused),
            )  # fmt: skip
        return True

    @staticmethod
    def _not_revoked(account: ConnectedAccount, reason: str) -> bool:
        log.warning(
            "the tokens of %s (%s) were not revoked at the provider: %s",
            account.id, account.toolkit, reason,
        )  # fmt: skip
        return False
