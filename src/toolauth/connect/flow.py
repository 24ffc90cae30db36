"""What the connect app does for each request, without HTTP: the steps of a connect link.

The app (:mod:`toolauth.connect`) turns each returned step into a response: a redirect, the
key form, or a message page. Every state change here is one store transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from .._callbacks import with_query
from .._exceptions import ConflictError, OAuthError, ToolAuthError, ValidationError
from .._models import (
    AuthConfig,
    ConnectedAccount,
    ConnectionLink,
    ConnectionStatus,
    LinkStatus,
    utcnow,
)
from ..auth.credentials import apply_placements, credential_values
from ..catalog import ApiKeySchemeSpec, OAuth2SchemeSpec, TestRequest, ToolkitDefinition
from ..catalog.templates import render
from ..oauth.authorize import authorization_url, hash_state, new_code_verifier, new_state
from ..oauth.calls import exchange_code
from ..resources.connected_accounts import split_fields

if TYPE_CHECKING:
    from .._client import AsyncToolAuth

__all__ = [
    "STATE_COOKIE",
    "ConnectFlow",
    "Cookie",
    "FormField",
    "KeyForm",
    "Page",
    "Redirect",
    "state_cookie_name",
]

STATE_COOKIE = "toolauth_state"
CSRF_COOKIE = "toolauth_csrf"
# Errors at the token endpoint, or in the authorization response, that mean "the provider is
# not answering properly right now": the link stays open for another try (RFC 6749 §4.1.2.1).
_TRANSIENT = frozenset({"temporarily_unavailable", "server_error", "invalid_response"})


def state_cookie_name(state: str) -> str:
    """The cookie that binds one ``state`` to the browser that started it: one per state, so
    links opened side by side in one browser (two toolkits at once) do not evict each other."""
    return f"{STATE_COOKIE}_{hash_state(state)[:16]}"


@dataclass(frozen=True)
class Cookie:
    name: str
    value: str
    path: str
    max_age: int
    samesite: Literal["lax", "strict"] = "lax"


@dataclass(frozen=True)
class Redirect:
    url: str
    cookies: tuple[Cookie, ...] = ()


@dataclass(frozen=True)
class Page:
    """A message page: ``tone`` picks the look; ``retry_url`` adds a "try again" button."""

    status_code: int
    title: str
    message: str
    tone: Literal["success", "error", "info"] = "error"
    toolkit: str | None = None
    retry_url: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    help: str | None
    secret: bool
    required: bool
    placeholder: str | None
    value: str = ""  # refilled for non-secret fields only


@dataclass(frozen=True)
class KeyForm:
    status_code: int
    link_id: str
    toolkit: str
    toolkit_description: str
    scheme: str
    fields: tuple[FormField, ...]
    csrf_token: str
    expires_at: str
    error: str | None = None
    callback_url: str | None = None
    cookies: tuple[Cookie, ...] = field(default=())


Step = Redirect | Page | KeyForm


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _same(given: str, expected: str) -> bool:
    """Constant-time equality of two strings of any text: ``hmac.compare_digest`` raises on
    ``str`` with non-ASCII characters, which a hostile cookie or form field may carry."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


class ConnectFlow:
    """The connect link's steps, for :mod:`toolauth.connect`."""

    def __init__(self, client: AsyncToolAuth) -> None:
        self._client = client

    # shared ------------------------------------------------------------------------------
    @property
    def redirect_uri(self) -> str:
        return f"{self._client.settings.base_url}/oauth/callback"

    def public_path(self, path: str) -> str:
        """``path`` as the browser sees it: below ``base_url``'s path when the app is mounted
        under a prefix (cookie paths must match the public URL)."""
        return urlsplit(self._client.settings.base_url).path.rstrip("/") + path

    def _link_url(self, link: ConnectionLink) -> str:
        return f"{self._client.settings.base_url}/link/{link.id}"

    def _variables(self, account: ConnectedAccount | None = None) -> dict[str, str]:
        values = dict(self._client.settings.url_variables)
        if account is not None:
            values.update({k: str(v) for k, v in account.data.items() if isinstance(v, str)})
        return values

    async def _load(
        self, link: ConnectionLink
    ) -> tuple[ConnectedAccount, AuthConfig, ToolkitDefinition]:
        store = await self._client.store()
        account = await store.get_account(link.connected_account_id)
        config = await store.get_auth_config(link.auth_config_id)
        if account is None or config is None:
            raise ConflictError("The account or auth config of this link was deleted.")
        return account, config, self._client.catalog.get(link.toolkit)

    def _finish_redirect(self, link: ConnectionLink, *, error: str | None = None) -> Step:
        """Where the user goes when the flow ends: the app's callback, or a message page."""
        definition = self._client.catalog.get(link.toolkit)
        if link.callback_url:
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

    async def _fail(self, link: ConnectionLink, error: str, description: str | None) -> Step:
        """Mark the link FAILED (and a never-connected account FAILED) in one transaction."""
        store = await self._client.store()
        account, _, _ = await self._load(link)
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
            return self._used_page()
        return self._finish_redirect(link, error=error)

    async def _complete(
        self,
        link: ConnectionLink,
        account: ConnectedAccount,
        *,
        credentials: dict[str, SecretStr],
        data: dict[str, Any],
        scopes: tuple[str, ...],
        expires_at: Any,
    ) -> Step:
        store = await self._client.store()
        now = utcnow()
        done = link.model_copy(update={
            "status": LinkStatus.COMPLETED, "completed_at": now, "state_hash": None,
            "error": None, "error_description": None,
        })  # fmt: skip
        active = account.model_copy(update={
            "status": ConnectionStatus.ACTIVE, "status_reason": None, "credentials": credentials,
            "data": {**account.data, **data}, "scopes": scopes, "expires_at": expires_at,
        })  # fmt: skip
        try:
            await store.save(done, active)
        except ConflictError:
            return self._used_page()
        return self._finish_redirect(link)

    @staticmethod
    def _disabled_page(config: AuthConfig, definition: ToolkitDefinition) -> Page | None:
        """A page refusing the link when its auth config was disabled after it was made."""
        if config.enabled:
            return None
        return Page(
            403, f"{definition.name} connections are turned off",
            f"This app has turned off new {definition.name} connections. Ask the app for "
            "help if you still need to connect.", toolkit=definition.name, error="disabled",
        )  # fmt: skip

    @staticmethod
    def _used_page() -> Page:
        return Page(
            409, "This link was already used",
            "This connect link has already been used or has changed. Ask for a new link if you "
            "still need to connect.", error="link_used",
        )  # fmt: skip

    async def _usable_link(self, link_id: str) -> ConnectionLink | Page:
        store = await self._client.store()
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
    async def begin(self, link_id: str) -> Step:
        link = await self._usable_link(link_id)
        if isinstance(link, Page):
            return link
        try:
            account, config, definition = await self._load(link)
        except ConflictError as exc:
            return Page(410, "This link has ended", exc.message, error="link_orphaned")
        disabled = self._disabled_page(config, definition)
        if disabled is not None:
            return disabled
        spec = definition.scheme(config.auth_scheme)
        if isinstance(spec, OAuth2SchemeSpec):
            return await self._begin_oauth(link, config, definition, spec)
        if isinstance(spec, ApiKeySchemeSpec):
            return await self._key_form(link, definition, spec, account=account)
        return Page(400, "Unsupported", f"{config.auth_scheme.value} links are not supported.")

    def _oauth_app(self, config: AuthConfig) -> tuple[str, str | None]:
        if config.is_managed:
            client_id, secret = self._client.settings.managed_oauth_app(config.toolkit)
            return client_id, secret.get_secret_value()
        secret_value = config.credentials.get("client_secret")
        return (
            config.credentials["client_id"].get_secret_value(),
            secret_value.get_secret_value() if secret_value else None,
        )

    async def _begin_oauth(
        self,
        link: ConnectionLink,
        config: AuthConfig,
        definition: ToolkitDefinition,
        spec: OAuth2SchemeSpec,
    ) -> Step:
        try:
            client_id, _ = self._oauth_app(config)
        except ToolAuthError as exc:
            return Page(500, "Not configured", exc.message, error="not_configured")
        # One state (and PKCE verifier) per link attempt, reused however often the link is
        # opened: a chat app's link preview fetching it must not break the user's own tab.
        # The callback spends it (RFC 6749 §10.12); a retry after an outage makes a new one.
        kept = link.secrets.get("state")
        if kept is not None and link.state_hash == hash_state(kept.get_secret_value()):
            state = kept.get_secret_value()
            kept_verifier = link.secrets.get("code_verifier")
            verifier = kept_verifier.get_secret_value() if kept_verifier and spec.pkce else None
        else:
            state = new_state()
            verifier = new_code_verifier() if spec.pkce else None
            secrets_ = {**link.secrets, "state": SecretStr(state)}
            if verifier is not None:
                secrets_["code_verifier"] = SecretStr(verifier)
            store = await self._client.store()
            try:
                await store.save(
                    link.model_copy(update={
                        "state_hash": hash_state(state), "redirect_uri": self.redirect_uri,
                        "secrets": secrets_,
                    })
                )  # fmt: skip
            except ConflictError:
                return await self.begin(link.id)  # opened twice at once: the other one won
        variables = self._variables()
        url = authorization_url(
            render(spec.authorization_url, variables, what="authorization_url"),
            client_id=client_id, redirect_uri=self.redirect_uri, scopes=config.scopes,
            scope_separator=spec.scope_separator, state=state, code_verifier=verifier,
            extra=spec.authorization_params,
        )  # fmt: skip
        ttl = max(1, int((link.expires_at - utcnow()).total_seconds()))
        # RFC 9700 §4.7.1: bind the state to this browser, so a callback carrying it from
        # elsewhere (a forged or injected response) is refused.
        cookie = Cookie(state_cookie_name(state), state, self.public_path("/oauth/callback"), ttl)
        return Redirect(url, cookies=(cookie,))

    # GET /oauth/callback ----------------------------------------------------------------
    async def finish_oauth(self, params: Mapping[str, str], state_cookie: str | None) -> Step:
        state = params.get("state")
        if not state:
            return Page(
                400, "Missing state",
                "This callback has no state parameter, so it cannot be matched to a link.",
                error="invalid_state",
            )  # fmt: skip
        store = await self._client.store()
        link = await store.get_link_by_state(hash_state(state))
        if link is None:
            return Page(
                400, "Unknown or used state",
                "This callback does not match any open connect link. It may have been used "
                "already; open the link again to retry.", error="invalid_state",
            )  # fmt: skip
        usable = await self._usable_link(link.id)  # an expired link says so, cookie or not
        if isinstance(usable, Page):
            return usable
        if state_cookie is None or not _same(state_cookie, state):
            return Page(
                400, "Open the link in the same browser",
                "This sign-in was finished in a different browser from the one that started "
                "it. Open the connect link again in this browser.", error="state_not_bound",
            )  # fmt: skip
        account, config, definition = await self._load(link)
        disabled = self._disabled_page(config, definition)
        if disabled is not None:
            return disabled
        spec = definition.oauth2()
        if spec is None:
            return Page(400, "Not an OAuth link", "This link does not use OAuth.")
        # Single use: take the state off the link before anything else (RFC 6749 §10.12).
        try:
            (link,) = await store.save(link.model_copy(update={"state_hash": None}))
        except ConflictError:
            return self._used_page()
        issuer = render(spec.issuer, self._variables(), what="issuer") if spec.issuer else None
        if (
            "iss" in params
            and issuer is not None
            and params["iss"].rstrip("/") != issuer.rstrip("/")
        ):
            # RFC 9207 §2.4: a response from another issuer is a mix-up attack.
            return await self._fail(
                link, "issuer_mismatch", "The response came from another server."
            )
        if "error" in params:
            description = params.get("error_description") or None
            if params["error"] in _TRANSIENT:
                return self._unavailable(link, definition, description or params["error"])
            return await self._fail(link, params["error"][:100], description and description[:300])
        code = params.get("code")
        if not code:
            return await self._fail(link, "invalid_request", "The provider sent no code.")
        client_id, client_secret = self._oauth_app(config)
        verifier = link.secrets.get("code_verifier")
        try:
            tokens = await exchange_code(
                self._client.http, render(spec.token_url, self._variables(), what="token_url"),
                code=code, redirect_uri=link.redirect_uri or self.redirect_uri,
                code_verifier=verifier.get_secret_value() if verifier else None,
                client_id=client_id, client_secret=client_secret,
                auth_method=spec.token_endpoint_auth_method, token_path=spec.token_path,
            )  # fmt: skip
        except OAuthError as exc:
            if exc.error in _TRANSIENT:
                return self._unavailable(link, definition, exc.description or exc.error)
            return await self._fail(link, exc.error, exc.description)
        now = utcnow()
        return await self._complete(
            link, account, credentials=tokens.secrets(), data=_plain_extra(tokens.extra),
            scopes=tokens.scope if tokens.scope is not None else config.scopes,
            expires_at=tokens.expires_at(now),
        )  # fmt: skip

    def _unavailable(
        self, link: ConnectionLink, definition: ToolkitDefinition, reason: str
    ) -> Page:
        """The provider failed for now: nothing saved, the link stays open for a retry."""
        return Page(
            502, f"{definition.name} is not answering",
            f"{definition.name} did not complete the sign-in ({reason[:300]}). "
            "Nothing was saved. Try again in a moment.",
            retry_url=self._link_url(link), error="temporarily_unavailable",
        )  # fmt: skip

    # GET and POST /link/{id} for key schemes --------------------------------------------
    async def _key_form(
        self,
        link: ConnectionLink,
        definition: ToolkitDefinition,
        spec: ApiKeySchemeSpec,
        *,
        account: ConnectedAccount,
        error: str | None = None,
        values: Mapping[str, str] | None = None,
        status_code: int = 200,
    ) -> KeyForm | Page:
        # One CSRF token per link, reused on every GET (a link preview must not void the form
        # the user has open); it is bound to the link and sent as a SameSite=Strict cookie.
        kept = link.secrets.get("csrf_token")
        if kept is not None:
            token = kept.get_secret_value()
        else:
            token = secrets.token_urlsafe(32)
            store = await self._client.store()
            try:
                await store.save(
                    link.model_copy(
                        update={"secrets": {**link.secrets, "csrf_token": SecretStr(token)}}
                    )
                )
            except ConflictError:
                return self._used_page()
        refill = values or {k: str(v) for k, v in account.data.items() if isinstance(v, str)}
        fields = tuple(
            FormField(
                f.name, f.label, f.help, f.secret, f.required, f.placeholder,
                value="" if f.secret else str(refill.get(f.name, "")),
            )
            for f in spec.fields
        )  # fmt: skip
        ttl = max(1, int((link.expires_at - utcnow()).total_seconds()))
        scheme = next(s for s, v in definition.auth_schemes.items() if v is spec)
        return KeyForm(
            status_code, link.id, definition.name, definition.description, scheme.value, fields,
            token, link.expires_at.isoformat(), error, callback_url=link.callback_url,
            cookies=(
                Cookie(CSRF_COOKIE, token, self.public_path(f"/link/{link.id}"), ttl, "strict"),
            ),
        )  # fmt: skip

    async def submit_form(
        self, link_id: str, form: Mapping[str, str], csrf_cookie: str | None
    ) -> Step:
        link = await self._usable_link(link_id)
        if isinstance(link, Page):
            return link
        account, config, definition = await self._load(link)
        disabled = self._disabled_page(config, definition)
        if disabled is not None:
            return disabled
        spec = definition.scheme(config.auth_scheme)
        if not isinstance(spec, ApiKeySchemeSpec):
            return Page(405, "Not a form link", "This link does not take a form.")
        token = form.get("csrf_token", "")
        stored = link.secrets.get("csrf_token")
        if (
            not token
            or csrf_cookie is None
            or not _same(token, csrf_cookie)
            or stored is None
            or not _same(token, stored.get_secret_value())
        ):
            return Page(
                403, "Form expired",
                "This form could not be verified (it may be stale or sent from another site). "
                "Open the link again.", retry_url=self._link_url(link), error="csrf",
            )  # fmt: skip
        values = {f.name: str(form.get(f.name, "")) for f in spec.fields}
        plain_values = {f.name: values[f.name] for f in spec.fields if not f.secret}
        try:
            secret_values, data = split_fields(spec, values)
        except ValidationError as exc:
            return await self._key_form(
                link, definition, spec, account=account, error=exc.message,
                values=plain_values, status_code=400,
            )  # fmt: skip
        if spec.test_request is not None:
            problem = await self._verify(definition, spec, spec.test_request, secret_values, data)
            if problem is not None:
                return await self._key_form(
                    link, definition, spec, account=account, error=problem,
                    values=plain_values, status_code=400,
                )  # fmt: skip
        return await self._complete(
            link, account, credentials=secret_values, data=data, scopes=(), expires_at=None
        )

    async def _verify(
        self,
        definition: ToolkitDefinition,
        spec: ApiKeySchemeSpec,
        test: TestRequest,
        secret_values: dict[str, SecretStr],
        data: dict[str, str],
    ) -> str | None:
        """None when the toolkit accepts the credentials; otherwise what to tell the user."""
        variables = {**self._variables(), **data}
        base = render(definition.api_base_url, variables, what="api_base_url")
        path = render(test.path, variables, what="test_request.path")
        url = (
            path
            if path.startswith(("http://", "https://"))
            else base.rstrip("/") + "/" + path.lstrip("/")
        )
        request = self._client.http.build_request(
            test.method, url, json=test.json_body, headers=definition.default_headers
        )
        apply_placements(request, spec.placements, credential_values(secret_values, data))
        try:
            response = await self._client.http.send(request)
        except httpx.HTTPError:
            return (
                f"Could not reach {definition.name} to check these credentials. Nothing was "
                "saved; try again in a moment."
            )
        if response.status_code in test.expect_status:
            return None
        if response.status_code in (401, 403):
            return f"{definition.name} rejected these credentials. Check them and try again."
        return (
            f"{definition.name} answered HTTP {response.status_code} when checking these "
            "credentials. Nothing was saved; try again."
        )

    # GET /api/links/{id} -----------------------------------------------------------------
    async def link_status(self, link_id: str) -> dict[str, Any] | None:
        """What a browser page may know about a link: no secrets, no user id."""
        store = await self._client.store()
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


def _plain_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Non-secret, JSON-friendly values from a token response worth keeping (ids, names)."""
    kept: dict[str, Any] = {}
    for key, value in extra.items():
        if isinstance(value, (str, int, float, bool)) and len(str(value)) <= 200:
            kept[key] = value
        elif isinstance(value, dict):
            for inner, v in value.items():
                if inner in ("id", "name") and isinstance(v, (str, int)):
                    kept[f"{key}_{inner}"] = v
    return kept
