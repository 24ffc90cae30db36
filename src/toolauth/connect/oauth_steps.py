"""The OAuth 2.0 steps of a connect link: the authorization request and the callback.

- RFC 6749, The OAuth 2.0 Authorization Framework (§4.1 authorization code grant):
  https://datatracker.ietf.org/doc/html/rfc6749#section-4.1
- RFC 7636, PKCE; RFC 9207, issuer identification; RFC 9700, OAuth 2.0 security BCP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping

from pydantic import SecretStr

from .._exceptions import ConfigurationError, ConflictError, OAuthError, ToolAuthError
from .._models import AuthConfig, ConnectionLink, utcnow
from ..catalog import OAuth2SchemeSpec, ToolkitDefinition
from ..catalog.templates import render
from ..oauth.authorize import authorization_url, hash_state, new_state
from ..oauth.calls import exchange_code
from ..oauth.client_app import oauth_app
from ..oauth.tokens import provider_error_code, quote_provider_text
from ..resources.client_registrations import ClientRegistrations
from .links import LinkSteps
from .steps import Cookie, Page, Redirect, Step, same_text, split_state, state_cookie_name

__all__ = ["OAuthSteps", "opening_verifier"]

log = logging.getLogger("toolauth.connect")

# Errors at the token endpoint, or in the authorization response, that mean "the provider is
# not answering properly right now": the link stays open for another try (RFC 6749 §4.1.2.1).
_TRANSIENT = frozenset({"temporarily_unavailable", "server_error", "invalid_response"})


_STATE_KEY = "state_key"  # the link part of every state (its hash: the link's state_hash)
_STATE_SECRET = "state_secret"  # never sent: derives each opening's verifier and cookie


def _derive(secret: SecretStr, purpose: str, opening: str) -> str:
    """An opening's PKCE verifier or cookie value: HMAC-SHA256 of its random part under the
    link's state secret, base64url (43 characters, RFC 7636 §4.1)."""
    mac = hmac.new(
        secret.get_secret_value().encode(),
        f"{purpose}:{opening}".encode("utf-8", "surrogatepass"),
        hashlib.sha256,
    )
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def opening_verifier(link: ConnectionLink, state: str) -> str | None:
    """The PKCE verifier of the opening of ``link`` that ``state`` names (for tests and
    audits: it is derived, never stored), or ``None`` without the link's state secret."""
    secret = link.secrets.get(_STATE_SECRET)
    return _derive(secret, "pkce", split_state(state)[1]) if secret is not None else None


class OAuthSteps:
    """``GET /link/{id}`` for OAuth links, and ``GET /oauth/callback``."""

    def __init__(self, links: LinkSteps, registrations: ClientRegistrations) -> None:
        self._links = links
        self._registrations = registrations

    async def begin(
        self,
        link: ConnectionLink,
        config: AuthConfig,
        definition: ToolkitDefinition,
        spec: OAuth2SchemeSpec,
    ) -> Step:
        try:
            # An MCP server's authorization server may register our client first (RFC 7591).
            config = await self._registrations.ensure(config, definition)
            client_id = oauth_app(config, self._links.settings).client_id
            variables = self._links.variables()
            authorize_at = render(spec.authorization_url, variables, what="authorization_url")
        except ToolAuthError as exc:
            return _not_configured(definition, exc)
        # Each opening gets its own state and PKCE verifier (RFC 9700 §4.7.1), bound to the
        # browser by a cookie. They derive from two secrets kept (encrypted) on the link: the
        # link part of the state finds the link; the state secret, never sent, turns the
        # opening's random part into its verifier and its cookie value. So an opening stores
        # nothing, another browser's opening (a chat app's link preview) does not break this
        # one, and a browser's latest opening replaces its earlier ones (one cookie per link).
        # The callback spends every opening at once (RFC 6749 §10.12).
        key, secret = link.secrets.get(_STATE_KEY), link.secrets.get(_STATE_SECRET)
        if key is None or secret is None or link.state_hash != hash_state(key.get_secret_value()):
            key, secret = SecretStr(new_state()), SecretStr(new_state())
            secrets_ = {**link.secrets, _STATE_KEY: key, _STATE_SECRET: secret}
            store = await self._links.store()
            try:
                await store.save(
                    link.model_copy(update={
                        "state_hash": hash_state(key.get_secret_value()),
                        "redirect_uri": self._links.redirect_uri, "secrets": secrets_,
                    })
                )  # fmt: skip
            except ConflictError:
                fresh = await self._links.usable_link(link.id)  # opened twice at once:
                if isinstance(fresh, Page):  # the other one won; use its secrets
                    return fresh
                return await self.begin(fresh, config, definition, spec)
        opening = secrets.token_urlsafe(16)
        state = f"{key.get_secret_value()}.{opening}"
        verifier = _derive(secret, "pkce", opening) if spec.pkce else None
        url = authorization_url(
            authorize_at,
            client_id=client_id, redirect_uri=self._links.redirect_uri, scopes=_asked(link, config),
            scope_separator=spec.scope_separator, state=state, code_verifier=verifier,
            extra=_extra_params(spec, definition, link), resource=spec.resource,
        )  # fmt: skip
        ttl = max(1, int((link.expires_at - utcnow()).total_seconds()))
        # RFC 9700 §4.7.1: bind the state to this browser, so a callback carrying it from
        # elsewhere (a forged or injected response) is refused.
        path = self._links.public_path("/oauth/callback")
        cookie = Cookie(state_cookie_name(state), _derive(secret, "browser", opening), path, ttl)
        return Redirect(url, cookies=(cookie,))

    # GET /oauth/callback ----------------------------------------------------------------
    async def finish(
        self, params: Mapping[str, str], state_cookie: str | None, *, verified: bool = False
    ) -> Step:
        """The provider's answer. ``verified``: the connect app checked the browser's user
        (``verify_user``); otherwise the grant may wait for the app's confirmation."""
        state = params.get("state")
        if not state:
            return Page(
                400, "Missing state",
                "This callback has no state parameter, so it cannot be matched to a link.",
                error="invalid_state",
            )  # fmt: skip
        store = await self._links.store()
        key, opening = split_state(state)
        link = await store.get_link_by_state(hash_state(key)) if opening else None
        if link is None:
            return Page(
                400, "Unknown or used state",
                "This callback does not match any open connect link. It may have been used "
                "already; open the link again to retry.", error="invalid_state",
            )  # fmt: skip
        usable = await self._links.usable_link(link.id)  # an expired link says so, cookie or not
        if isinstance(usable, Page):
            return usable
        secret = link.secrets.get(_STATE_SECRET)
        if (
            state_cookie is None
            or secret is None
            or not same_text(state_cookie, _derive(secret, "browser", opening))
        ):
            return Page(
                400, "Open the link in the same browser",
                "This sign-in was finished in a different browser from the one that started "
                "it. Open the connect link again in this browser.", error="state_not_bound",
            )  # fmt: skip
        account, config, definition = await self._links.load(link)
        disabled = self._links.disabled_page(config, definition)
        if disabled is not None:
            return disabled
        spec = definition.oauth2()
        if spec is None:
            return Page(400, "Not an OAuth link", "This link does not use OAuth.")
        # Single use: take the state off the link before anything else (RFC 6749 §10.12).
        try:
            (link,) = await store.save(link.model_copy(update={"state_hash": None}))
        except ConflictError:
            return self._links.used_page()
        try:
            variables = self._links.variables()
            issuer = render(spec.issuer, variables, what="issuer") if spec.issuer else None
            token_url = render(spec.token_url, variables, what="token_url")
            app = oauth_app(config, self._links.settings)
        except ConfigurationError as exc:
            return _not_configured(definition, exc)
        if (
            "iss" in params
            and issuer is not None
            and params["iss"].rstrip("/") != issuer.rstrip("/")
        ):
            # RFC 9207 §2.4: a response from another issuer is a mix-up attack.
            return await self._links.fail(
                link, "issuer_mismatch", "The response came from another server."
            )
        if "error" in params:
            # RFC 6749 §4.1.2.1, from the browser: anyone's text. Codes that are not codes
            # become invalid_request, descriptions are quoted, cleaned and cut.
            error = provider_error_code(
                params["error"], secrets=(state,), fallback="invalid_request"
            )
            description = quote_provider_text(params.get("error_description"), secrets=(state,))
            if error in _TRANSIENT:
                return self._unavailable(link, definition, description or error)
            return await self._links.fail(link, error, description)
        code = params.get("code")
        if not code:
            return await self._links.fail(link, "invalid_request", "The provider sent no code.")
        verifier = _derive(secret, "pkce", opening) if spec.pkce else None
        try:
            tokens = await exchange_code(
                self._links.http, token_url, deadline=self._links.settings.call_deadline,
                code=code, redirect_uri=link.redirect_uri or self._links.redirect_uri,
                code_verifier=verifier,
                client_id=app.client_id, client_secret=app.client_secret,
                auth_method=spec.token_endpoint_auth_method, token_path=spec.token_path,
                resource=spec.resource,
            )  # fmt: skip
        except OAuthError as exc:
            if exc.error in _TRANSIENT:
                return self._unavailable(link, definition, exc.description or exc.error)
            return await self._links.fail(link, exc.error, exc.description)
        now = utcnow()
        credentials, data = tokens.secrets(), dict(tokens.public)
        granted = tokens.scope if tokens.scope is not None else _asked(link, config)
        if tokens.scope is None and definition.incremental_auth and account.scopes:
            granted = tuple(dict.fromkeys((*account.scopes, *granted)))  # added to the grant
        identity = await self._links.identity(definition, spec, credentials, data, granted)
        return await self._links.complete(
            # Only allow-listed ids and names are plain data; the rest of the response is in
            # the encrypted credentials (toolauth.oauth.tokens.PUBLIC_FIELDS).
            link, account, credentials=credentials, data=data, scopes=granted,
            expires_at=tokens.expires_at(now), identity=identity, verified=verified,
        )  # fmt: skip

    def _unavailable(
        self, link: ConnectionLink, definition: ToolkitDefinition, reason: str
    ) -> Page:
        """The provider failed for now: nothing saved, the link stays open for a retry.
        ``reason`` is ours, or the provider's text already quoted and cleaned."""
        return Page(
            502, f"{definition.name} is not answering",
            f"{definition.name} did not complete the sign-in ({reason[:300]}). "
            "Nothing was saved. Try again in a moment.",
            retry_url=self._links.link_url(link), error="temporarily_unavailable",
        )  # fmt: skip

    # GET and POST /link/{id} for key schemes --------------------------------------------


def _extra_params(
    spec: OAuth2SchemeSpec, definition: ToolkitDefinition, link: ConnectionLink
) -> dict[str, str]:
    """The catalog's authorization parameters; a link asking for scopes of its own on a
    provider with incremental authorization keeps the earlier grant's scopes too (Google:
    ``include_granted_scopes=true``)."""
    extra = dict(spec.authorization_params)
    if definition.incremental_auth and link.scopes is not None:
        extra["include_granted_scopes"] = "true"
    return extra


def _asked(link: ConnectionLink, config: AuthConfig) -> tuple[str, ...]:
    """The scopes a link asks for: its own (a session's union, a step-up), else the config's."""
    return link.scopes if link.scopes is not None else config.scopes


def _not_configured(definition: ToolkitDefinition, exc: ToolAuthError) -> Page:
    """The toolkit cannot be used as configured (no OAuth app, a catalog URL that does not
    render): the operator's problem, logged with its traceback; the user gets a plain page
    (409, not a 500: retrying will not help until the configuration changes)."""
    log.error("%s links cannot start: %s", definition.slug, exc.message, exc_info=exc)
    return Page(
        409, "Not configured",
        f"{definition.name} connections are not set up correctly on this app: {exc.message} "
        "Ask the app's operator to fix it; nothing was saved.", error="not_configured",
    )  # fmt: skip
