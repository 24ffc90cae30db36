"""What every connect link shares: loading it with its account and config, ending it (one
store transaction each), and the pages every flow can answer with."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from .._callbacks import check_callback_url, with_query
from .._exceptions import ConflictError, ValidationError
from .._http import HttpPool
from .._models import (
    AuthConfig,
    ConnectedAccount,
    ConnectionLink,
    ConnectionStatus,
    LinkStatus,
    utcnow,
)
from .._settings import ConnectUrls, Settings
from ..catalog import Catalog, ToolkitDefinition
from ..store import Store
from .steps import Page, Redirect, Step

if TYPE_CHECKING:
    import httpx

__all__ = ["LinkSteps"]

log = logging.getLogger("toolauth.connect")


class LinkSteps:
    """What every kind of connect link shares: loading it, ending it, the common pages."""

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        settings: Settings,
        urls: ConnectUrls,
        catalog: Catalog,
        http: HttpPool,
    ) -> None:
        self._store = store
        self.settings = settings
        self._urls = urls
        self._catalog = catalog
        self._http = http

    # shared ------------------------------------------------------------------------------
    @property
    def redirect_uri(self) -> str:
        return self._urls.redirect_uri

    async def store(self) -> Store:
        return await self._store()

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http.client

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def public_path(self, path: str) -> str:
        """``path`` as the browser sees it: below ``base_url``'s path when the app is mounted
        under a prefix (cookie paths must match the public URL)."""
        return urlsplit(self._urls.base_url).path.rstrip("/") + path

    def link_url(self, link: ConnectionLink) -> str:
        return self._urls.link(link.id)

    def variables(self, account: ConnectedAccount | None = None) -> dict[str, str]:
        """Values for catalog URL placeholders: the deployment's always win over an
        account's data, which only fills the placeholders the deployment leaves open."""
        values = {} if account is None else {
            k: str(v) for k, v in account.data.items() if isinstance(v, str)
        }  # fmt: skip
        return {**values, **self._urls.variables}

    async def load(
        self, link: ConnectionLink
    ) -> tuple[ConnectedAccount, AuthConfig, ToolkitDefinition]:
        store = await self._store()
        account = await store.get_account(link.connected_account_id)
        config = await store.get_auth_config(link.auth_config_id)
        if account is None or config is None:
            raise ConflictError("The account or auth config of this link was deleted.")
        return account, config, self._catalog.get(link.toolkit)

    def finish_redirect(self, link: ConnectionLink, *, error: str | None = None) -> Step:
        """Where the user goes when the flow ends: the app's callback, or a message page."""
        definition = self._catalog.get(link.toolkit)
        if link.callback_url and self._callback_allowed(link.callback_url):
            params = {
                "status": "failed" if error else "success",
                "connected_account_id": link.connected_account_id,
            }
            if error:
                params["error"] = error
            return Redirect(with_query(link.callback_url, params))
        if error:
            return Page(
                400, f"Could not connect {definition.name}",
                f"The connection was not completed ({error}). Ask for a new link to try again.",
                toolkit=definition.name, error=error,
            )  # fmt: skip
        return Page(
            200, f"{definition.name} connected",
            "Connected — you can close this window and return to the chat.",
            tone="success", toolkit=definition.name,
        )  # fmt: skip

    def _callback_allowed(self, url: str) -> bool:
        """Checked again when the user is sent there (RFC 9700 §4.11): the stored URL may have
        been changed in the database, or the allowed origins since the link was made."""
        try:
            check_callback_url(
                url, allowed_origins=self.settings.allowed_callback_origins,
                base_url=self._urls.base_url,
            )  # fmt: skip
        except ValidationError:
            log.warning("not sending a user to a callback_url that is no longer allowed")
            return False
        return True

    async def fail(self, link: ConnectionLink, error: str, description: str | None) -> Step:
        """Mark the link FAILED (and a never-connected account FAILED) in one transaction."""
        store = await self._store()
        account, _, _ = await self.load(link)
        changed: list[Any] = [
            link.model_copy(update={
                "status": LinkStatus.FAILED, "error": error, "error_description": description,
                "completed_at": utcnow(), "state_hash": None,
            })
        ]  # fmt: skip
        if account.status is ConnectionStatus.INITIATED:
            changed.append(
                account.model_copy(update={
                    "status": ConnectionStatus.FAILED, "status_reason": description or error,
                })
            )  # fmt: skip
        try:
            await store.save(*changed)
        except ConflictError:
            return self.used_page()
        return self.finish_redirect(link, error=error)

    async def complete(
        self,
        link: ConnectionLink,
        account: ConnectedAccount,
        *,
        credentials: dict[str, SecretStr],
        data: dict[str, Any],
        scopes: tuple[str, ...],
        expires_at: Any,
    ) -> Step:
        store = await self._store()
        now = utcnow()
        done = link.model_copy(update={
            "status": LinkStatus.COMPLETED, "completed_at": now, "state_hash": None,
            "error": None, "error_description": None,
        })  # fmt: skip
        for _ in range(3):
            active = account.model_copy(update={
                "status": ConnectionStatus.ACTIVE, "status_reason": None,
                "credentials": credentials, "data": {**account.data, **data}, "scopes": scopes,
                "expires_at": expires_at, "issued_at": now,
            })  # fmt: skip
            try:
                await store.save(done, active)
                return self.finish_redirect(link)
            except ConflictError:
                # The link is single-use: if it moved on, this callback lost. The account may
                # just have been written by something else (a refresh of the grant this one
                # replaces): take it as it is now, and write the new grant over it.
                current = await store.get_link(link.id)
                fresh = await store.get_account(account.id)
                if current is None or current.version != link.version or fresh is None:
                    return self.used_page()
                account = fresh
        return self.used_page()

    @staticmethod
    def disabled_page(config: AuthConfig, definition: ToolkitDefinition) -> Page | None:
        """A page refusing the link when its auth config was disabled after it was made."""
        if config.enabled:
            return None
        return Page(
            403, f"{definition.name} connections are turned off",
            f"This app has turned off new {definition.name} connections. Ask the app for "
            "help if you still need to connect.", toolkit=definition.name, error="disabled",
        )  # fmt: skip

    @staticmethod
    def used_page() -> Page:
        return Page(
            409, "This link was already used",
            "This connect link has already been used or has changed. Ask for a new link if you "
            "still need to connect.", error="link_used",
        )  # fmt: skip

    async def usable_link(self, link_id: str) -> ConnectionLink | Page:
        store = await self._store()
        link = await store.get_link(link_id) if link_id.startswith("ln_") else None
        if link is None:
            return Page(
                404, "Link not found", "This connect link does not exist.", error="not_found"
            )
        if link.status is LinkStatus.COMPLETED:
            return Page(
                410, "Already connected", "This link was already used to connect the account.",
                tone="info", error="link_used",
            )  # fmt: skip
        if link.status is not LinkStatus.PENDING:
            return Page(
                410, "This link has ended",
                "This connect link failed or expired. Ask for a new link to try again.",
                error="link_" + link.status.value.lower(),
            )  # fmt: skip
        if utcnow() >= link.expires_at:
            with contextlib.suppress(ConflictError):
                await store.save(link.model_copy(update={"status": LinkStatus.EXPIRED}))
            return Page(
                410, "This link has expired",
                "Connect links are short-lived for your safety. Ask for a new link.",
                error="link_expired",
            )  # fmt: skip
        return link

    # GET /link/{id} ----------------------------------------------------------------------
