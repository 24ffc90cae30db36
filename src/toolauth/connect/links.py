"""What every connect link shares: loading it with its account and config, ending it (one
store transaction each), and the pages every flow can answer with."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from .._callbacks import check_callback_url, with_query
from .._exceptions import ConflictError, ValidationError
from .._http import HttpPool
from .._models import (
    AccountIdentity,
    AuthConfig,
    ConnectedAccount,
    ConnectionLink,
    ConnectionStatus,
    LinkStatus,
    utcnow,
)
from .._settings import ConnectUrls, Settings
from ..catalog import ApiKeySchemeSpec, Catalog, OAuth2SchemeSpec, ToolkitDefinition
from ..resources.confirmations import (
    GRANT_SECRET,
    Confirmations,
    HeldGrant,
    hash_code,
    identity_conflict,
    new_code,
    with_grant,
)
from ..resources.identities import capture_identity
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
        confirmations: Confirmations,
    ) -> None:
        self._store = store
        self.settings = settings
        self._urls = urls
        self._catalog = catalog
        self._http = http
        self._confirmations = confirmations

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
        # The newest definition, read from the store when another process stored it.
        return account, config, await self._catalog.resolve(link.toolkit, fresh=True)

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

    async def identity(
        self,
        definition: ToolkitDefinition,
        spec: OAuth2SchemeSpec | ApiKeySchemeSpec,
        credentials: dict[str, SecretStr],
        data: dict[str, Any],
        scopes: tuple[str, ...],
    ) -> AccountIdentity | None:
        """Who the new grant belongs to at the provider (``resources.identities``)."""
        return await capture_identity(
            self.http, definition, spec, credentials, data, scopes=scopes,
            variables=self.variables(), deadline=self.settings.call_deadline,
        )  # fmt: skip

    def needs_confirmation(self, verified: bool) -> bool:
        """Whether a finished flow's grant waits for the app's confirmation: binding is
        required (a public ``base_url``) and this app did not check the browser's user."""
        return not verified and self.settings.binding_required(self._urls.base_url)

    async def complete(
        self,
        link: ConnectionLink,
        account: ConnectedAccount,
        *,
        credentials: dict[str, SecretStr],
        data: dict[str, Any],
        scopes: tuple[str, ...],
        expires_at: Any,
        identity: AccountIdentity | None = None,
        verified: bool = False,
    ) -> Step:
        """The flow got a grant: the account's now, or held for the app's confirmation.
        A grant of another provider identity than the account's is refused (the account
        keeps its grant) unless the link allows it."""
        # An incremental step-up extends the account's grant: the old one is not revoked.
        extends = self._catalog.get(link.toolkit).incremental_auth and link.scopes is not None
        grant = HeldGrant(credentials, data, scopes, expires_at, identity, not extends)
        old = identity_conflict(link, account, grant)
        if old is not None and identity is not None:
            return await self._refuse_identity(link, account, grant, old, identity)
        if self.needs_confirmation(verified):
            return await self._hold(link, account, grant)
        store = await self._store()
        now = utcnow()
        done = link.model_copy(update={
            "status": LinkStatus.COMPLETED, "completed_at": now, "state_hash": None,
            "error": None, "error_description": None,
        })  # fmt: skip
        for _ in range(3):
            active = with_grant(account, grant, now)
            try:
                await store.save(done, active)
            except ConflictError:
                # The link is single-use: if it moved on, this callback lost. The account may
                # just have been written by something else (a refresh of the grant this one
                # replaces): take it as it is now, and write the new grant over it.
                current = await store.get_link(link.id)
                fresh = await store.get_account(account.id)
                if current is None or current.version != link.version or fresh is None:
                    return self.used_page()
                account = fresh
                continue
            if grant.revoke_old:  # a reconnect's old grant
                await self._confirmations.revoke_replaced(account, active)
            return self.finish_redirect(link)
        return self.used_page()

    async def _refuse_identity(
        self,
        link: ConnectionLink,
        account: ConnectedAccount,
        grant: HeldGrant,
        old: AccountIdentity,
        new: AccountIdentity,
    ) -> Step:
        """Another provider identity signed in to reconnect ``account``: nothing is stored,
        the new grant is revoked, the account keeps its own; the user is told who to be."""
        await self._confirmations.revoke_unused(account, grant)
        name = self._catalog.get(link.toolkit).name
        description = (
            f"signed in as {new.display}, but this connection is {old.display}; nothing changed"
        )
        store = await self._store()
        try:
            await store.save(
                link.model_copy(update={
                    "status": LinkStatus.FAILED, "error": "identity_mismatch",
                    "error_description": description, "completed_at": utcnow(),
                    "state_hash": None,
                })
            )  # fmt: skip
        except ConflictError:
            return self.used_page()
        log.warning("a %s reconnect by another provider identity was refused", link.toolkit)
        return Page(
            409, f"A different {name} account",
            f"You signed in to {name} as {new.display}, but this connection is {old.display}. "
            f"Nothing was changed. To reconnect it, sign in as {old.display}; to add "
            f"{new.display} as another account, ask the app to connect one more {name} "
            "account.", toolkit=name, error="identity_mismatch",
        )  # fmt: skip

    async def _hold(
        self, link: ConnectionLink, account: ConnectedAccount, grant: HeldGrant
    ) -> Step:
        """Keep ``grant`` encrypted on the link until the app confirms its user, and send the
        browser to the app with a one-time code. A new account waits PENDING_CONFIRMATION; an
        ACTIVE one keeps its old grant meanwhile."""
        target = link.callback_url if link.callback_url else self.settings.confirm_url
        if target is None or not self._callback_allowed(target):
            log.error(
                "a %s link was completed on a public connect app that can neither check the "
                "user (verify_user) nor send them to the app to confirm (callback_url or "
                "TOOLAUTH_CONFIRM_URL); the grant was dropped", link.toolkit,
            )  # fmt: skip
            await self._confirmations.revoke_unused(account, grant)
            return Page(
                409, "Not configured",
                "This app cannot confirm who you are, so the connection was not saved. Ask the "
                "app's operator to set TOOLAUTH_CONFIRM_URL or verify_user.",
                error="not_configured",
            )  # fmt: skip
        code = new_code()
        store = await self._store()
        held = link.model_copy(update={
            "status": LinkStatus.PENDING_CONFIRMATION, "state_hash": None,
            "confirm_hash": hash_code(code), "secrets": {GRANT_SECRET: grant.encode()},
            "expires_at": utcnow() + timedelta(seconds=self.settings.confirm_ttl),
            "error": None, "error_description": None,
        })  # fmt: skip
        for _ in range(3):
            waiting = account
            if not account.is_active:
                waiting = account.model_copy(update={
                    "status": ConnectionStatus.PENDING_CONFIRMATION,
                    "status_reason": "waiting for the app to confirm the user",
                })  # fmt: skip
            try:
                await store.save(held, waiting)
                break
            except ConflictError:
                current = await store.get_link(link.id)
                fresh = await store.get_account(account.id)
                if current is None or current.version != link.version or fresh is None:
                    return self.used_page()
                account = fresh
        else:
            return self.used_page()
        params = {
            "status": "pending_confirmation",
            "connected_account_id": link.connected_account_id,
            "code": code,
        }
        return Redirect(with_query(target, params))

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
        if link.status is LinkStatus.PENDING_CONFIRMATION:
            return Page(
                409, "Waiting for the app",
                "You finished signing in; the app that sent this link still has to confirm it "
                "is you. Go back to the app (you may need to sign in there).",
                tone="info", error="link_pending_confirmation",
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
