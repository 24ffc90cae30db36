"""What the connect app does for each request, without HTTP: the steps of a connect link.

The app (:mod:`toolauth.connect.app`) turns each returned step into a response: a redirect,
the key form, or a message page. Every state change is one store transaction. The steps live
by concern: :mod:`.links` (shared), :mod:`.oauth_steps` (OAuth 2.0), :mod:`.key_forms`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._exceptions import ConflictError
from .._models import LinkStatus, utcnow
from ..catalog import ApiKeySchemeSpec, OAuth2SchemeSpec
from ..oauth.authorize import hash_state
from ..resources.client_registrations import ClientRegistrations
from .key_forms import KeyFormSteps
from .links import LinkSteps
from .oauth_steps import OAuthSteps
from .steps import Page, Step, Visitor, split_state, wrong_user_page

__all__ = ["ConnectFlow"]


class ConnectFlow:
    """The connect link's steps, for :mod:`toolauth.connect.app`."""

    def __init__(self, links: LinkSteps, registrations: ClientRegistrations) -> None:
        self._links = links
        self.oauth = OAuthSteps(self._links, registrations)
        self.forms = KeyFormSteps(self._links)

    def public_path(self, path: str) -> str:
        return self._links.public_path(path)

    # GET /link/{id} ----------------------------------------------------------------------
    async def begin(self, link_id: str, visitor: Visitor | None = None) -> Step:
        """The link's first step; with a ``visitor`` (binding), only for the link's user."""
        link = await self._links.usable_link(link_id)
        if isinstance(link, Page):
            return link
        if visitor is not None and visitor.user_id != link.user_id:
            return wrong_user_page(visitor)  # nothing stored: the link stays theirs to use
        try:
            account, config, definition = await self._links.load(link)
        except ConflictError as exc:
            return Page(410, "This link has ended", exc.message, error="link_orphaned")
        disabled = self._links.disabled_page(config, definition)
        if disabled is not None:
            return disabled
        spec = definition.scheme(config.auth_scheme)
        if isinstance(spec, OAuth2SchemeSpec):
            return await self.oauth.begin(link, config, definition, spec)
        if isinstance(spec, ApiKeySchemeSpec):
            return await self.forms.form(link, definition, spec, account=account)
        return Page(400, "Unsupported", f"{config.auth_scheme.value} links are not supported.")

    # GET /oauth/callback ----------------------------------------------------------------
    async def finish_oauth(
        self, params: Mapping[str, str], state_cookie: str | None, visitor: Visitor | None = None
    ) -> Step:
        """The provider's answer; with a ``visitor``, checked again before the state is spent
        or anything is stored, so a mismatch leaves the link usable by its rightful user."""
        if visitor is not None:
            state = params.get("state")
            store = await self._links.store()
            key = split_state(state)[0] if state else None
            link = await store.get_link_by_state(hash_state(key)) if key else None
            if link is not None and visitor.user_id != link.user_id:
                return wrong_user_page(visitor)
        return await self.oauth.finish(params, state_cookie, verified=visitor is not None)

    # POST /link/{id} ---------------------------------------------------------------------
    async def submit_form(
        self,
        link_id: str,
        form: Mapping[str, str],
        csrf_cookie: str | None,
        visitor: Visitor | None = None,
    ) -> Step:
        if visitor is not None:
            link = await self._links.usable_link(link_id)
            if not isinstance(link, Page) and visitor.user_id != link.user_id:
                return wrong_user_page(visitor)
        return await self.forms.submit(link_id, form, csrf_cookie, verified=visitor is not None)

    async def link_status(self, link_id: str) -> dict[str, Any] | None:
        """What a browser page may know about a link: no secrets, no user id."""
        store = await self._links.store()
        link = await store.get_link(link_id) if link_id.startswith("ln_") else None
        if link is None:
            return None
        account = await store.get_account(link.connected_account_id)
        status = link.status
        if status is LinkStatus.PENDING and utcnow() >= link.expires_at:
            status = LinkStatus.EXPIRED
        return {
            "id": link.id,
            "toolkit": link.toolkit,
            "status": status.value,
            "connected_account_id": link.connected_account_id,
            "connected_account_status": account.status.value if account else None,
            "expires_at": link.expires_at.isoformat(),
            "error": link.error,
        }
