"""Connection requests: the object ``link()`` returns, and waiting for an account to connect."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import anyio

from .._exceptions import (
    ConflictError,
    ConnectionFailedError,
    ConnectionTimeoutError,
    NotFoundError,
)
from .._loop import HomeLoop, on_home_loop
from .._models import (
    AccountIdentity,
    ConnectedAccount,
    ConnectionLink,
    ConnectionStatus,
    LinkStatus,
    utcnow,
)
from .._settings import ConnectUrls, Settings
from ..store import Store

__all__ = ["ConnectionRequest", "Waiter"]

_ENDED = (ConnectionStatus.FAILED, ConnectionStatus.EXPIRED, ConnectionStatus.INACTIVE)
_OPEN = (LinkStatus.PENDING, LinkStatus.PENDING_CONFIRMATION)


class ConnectionRequest:
    """A user's way to connect one account: send them to ``redirect_url``, then wait.

    ```python
    req = await ta.connected_accounts.link("user_123", config.id, callback_url=...)
    print(req.redirect_url)              # {base_url}/link/ln_...
    account = await req.wait_for_connection(timeout=300)
    ```

    When the user already had an ACTIVE account, ``redirect_url`` is ``None`` and ``status``
    is ``ACTIVE``.
    """

    def __init__(
        self,
        account: ConnectedAccount,
        link: ConnectionLink | None,
        *,
        urls: ConnectUrls,
        waiter: Waiter,
    ) -> None:
        self._account = account
        self._link = link
        self._urls = urls
        self._waiter = waiter
        self._home = waiter.home

    @property
    def id(self) -> str:
        """The connected account's id (``ca_...``), as hosted platforms name a request:
        ``connected_accounts.wait_for_connection(req.id)`` waits for it."""
        return self._account.id

    @property
    def link_id(self) -> str | None:
        """The connect link's id (``ln_...``), or ``None`` for an account already ACTIVE."""
        return self._link.id if self._link else None

    @property
    def connected_account_id(self) -> str:
        return self._account.id

    @property
    def auth_config_id(self) -> str:
        return self._account.auth_config_id

    @property
    def redirect_url(self) -> str | None:
        if self._link is None:
            return None
        return self._urls.link(self._link.id)

    @property
    def expires_at(self) -> datetime | None:
        return self._link.expires_at if self._link else None

    @property
    def callback_url(self) -> str | None:
        return self._link.callback_url if self._link else None

    @property
    def identity(self) -> AccountIdentity | None:
        """Who the account is at the provider, when it was known as this request was made."""
        return self._account.identity

    @property
    def toolkit(self) -> str:
        return self._account.toolkit

    @property
    def status(self) -> ConnectionStatus:
        """The account's status when this request was made (``wait_for_connection`` for news)."""
        return self._account.status

    @on_home_loop
    async def wait_for_connection(self, timeout: float | None = None) -> ConnectedAccount:
        """Wait until the user finishes: the ACTIVE account, ``ConnectionFailedError`` if the
        flow failed, ``ConnectionTimeoutError`` after ``timeout`` seconds (default: the link's
        remaining lifetime)."""
        return await self._waiter.wait(
            self._account.id, timeout=timeout, link_id=self._link.id if self._link else None,
            pending=self._link is not None,
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"ConnectionRequest(id={self.id!r}, link_id={self.link_id!r}, "
            f"toolkit={self.toolkit!r}, status={self.status.value!r})"
        )


def _verdict(account: ConnectedAccount, link: ConnectionLink | None) -> ConnectedAccount | None:
    """The account when the wait is over, ``None`` to keep waiting; raises when it failed."""
    if link is not None:
        if link.status is LinkStatus.COMPLETED and account.is_active:
            return account
        if link.status is LinkStatus.FAILED:
            reason = link.error_description or link.error
            raise ConnectionFailedError(account.id, ConnectionStatus.FAILED.value, reason)
        if link.status is LinkStatus.EXPIRED:
            raise ConnectionFailedError(account.id, "EXPIRED", "the connect link expired")
        if link.status is LinkStatus.PENDING and account.status is not ConnectionStatus.INACTIVE:
            return None  # the user may still finish (even an account that expired meanwhile)
        # Disabled by the app while pending, or the account ended after the link completed.
    elif account.is_active:
        return account
    if account.status in _ENDED:
        raise ConnectionFailedError(account.id, account.status.value, account.status_reason)
    return None


class Waiter:
    """Waits, push-based, until an account (or its link) reaches an end state."""

    def __init__(
        self, *, store: Callable[[], Awaitable[Store]], settings: Settings, home: HomeLoop
    ) -> None:
        self._store = store
        self._settings = settings
        self.home = home

    async def wait(
        self,
        account_id: str,
        *,
        timeout: float | None = None,
        link_id: str | None = None,
        pending: bool = True,
    ) -> ConnectedAccount:
        """The account once ACTIVE; ``ConnectionFailedError`` when it failed or its link
        expired (at the moment it expires); ``ConnectionTimeoutError`` after ``timeout``
        seconds (default: the remaining life of the pending link). With ``pending=False``
        (already ACTIVE when asked) it reads once."""
        store = await self._store()
        if not pending:
            found = await store.get_account(account_id)
            if found is None:
                raise NotFoundError("connected account", account_id)
            return found
        opened = await store.get_link(link_id) if link_id else await store.latest_link(account_id)
        link_left: float | None = None
        if opened is not None and opened.status in _OPEN:
            link_left = max(0.0, (opened.expires_at - utcnow()).total_seconds())
        started, asked = time.monotonic(), timeout
        if timeout is None:
            timeout = link_left if link_left is not None else self._settings.link_ttl
        ends_with_link = link_left is not None and link_left <= timeout
        waited = link_left if ends_with_link and link_left is not None else timeout

        async def read() -> tuple[ConnectedAccount, ConnectionLink | None]:
            found = await store.get_account(account_id)
            if found is None:
                raise NotFoundError("connected account", account_id)
            return found, await store.get_link(link_id) if link_id else None

        with store.changes.subscribe(account_id) as bell:
            async with store.watching():
                with anyio.move_on_after(waited):
                    account, link = await read()
                    while True:
                        done = _verdict(account, link)
                        if done is not None:
                            return done
                        changed = await bell.wait()
                        if changed is None:  # a change we were not shown (another process)
                            account, link = await read()
                            continue
                        for model in changed:  # rows committed here: the newest version wins
                            if isinstance(model, ConnectedAccount) and model.id == account.id:
                                account = model if model.version > account.version else account
                            elif isinstance(model, ConnectionLink) and link and model.id == link.id:
                                link = model if model.version > link.version else link
        if ends_with_link and opened is not None:
            link = await store.get_link(opened.id)
            if (
                link is not None
                and link.status is LinkStatus.PENDING_CONFIRMATION
                and utcnow() < link.expires_at
            ):
                # Finished meanwhile, now waiting for the app's confirmation: that has a
                # deadline of its own (TOOLAUTH_CONFIRM_TTL); keep waiting until then.
                left = None if asked is None else asked - (time.monotonic() - started)
                if left is None or left > 0:
                    return await self.wait(account_id, timeout=left, link_id=opened.id)
            return await self._link_ended(store, account_id, opened)
        raise ConnectionTimeoutError(account_id, timeout)

    async def _link_ended(
        self, store: Store, account_id: str, opened: ConnectionLink
    ) -> ConnectedAccount:
        """The link's life is over: finished at the last moment, or expired now."""
        account = await store.get_account(account_id)
        link = await store.get_link(opened.id)
        if account is None or link is None:
            raise NotFoundError("connected account", account_id)
        if link.status is LinkStatus.PENDING:
            with contextlib.suppress(ConflictError):  # finished or expired meanwhile: re-read
                await store.save(link.model_copy(update={"status": LinkStatus.EXPIRED}))
            link = await store.get_link(opened.id) or link
        done = _verdict(account, link)
        if done is not None:
            return done
        raise ConnectionFailedError(account_id, "EXPIRED", "the connect link expired")
