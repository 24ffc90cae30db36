"""The key-form steps of a connect link (API_KEY, BEARER_TOKEN, BASIC): the form, its CSRF
check (a double-submit cookie bound to the link), and the optional check of the credentials
against the toolkit's test endpoint before they are stored."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

import httpx
from pydantic import SecretStr

from .._exceptions import ConflictError, ValidationError
from .._models import ConnectedAccount, ConnectionLink, utcnow
from ..auth.credentials import apply_placements, credential_values
from ..auth.fields import split_fields
from ..catalog import ApiKeySchemeSpec, TestRequest, ToolkitDefinition
from ..catalog.templates import render
from .links import LinkSteps
from .steps import CSRF_COOKIE, Cookie, FormField, KeyForm, Page, Step, same_text

__all__ = ["KeyFormSteps"]


class KeyFormSteps:
    """``GET`` and ``POST /link/{id}`` for key schemes."""

    def __init__(self, links: LinkSteps) -> None:
        self._links = links

    async def form(
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
            store = await self._links.store()
            try:
                await store.save(
                    link.model_copy(
                        update={"secrets": {**link.secrets, "csrf_token": SecretStr(token)}}
                    )
                )
            except ConflictError:
                return self._links.used_page()
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
                Cookie(
                    CSRF_COOKIE, token, self._links.public_path(f"/link/{link.id}"), ttl, "strict"
                ),
            ),
        )  # fmt: skip

    async def submit(
        self,
        link_id: str,
        form: Mapping[str, str],
        csrf_cookie: str | None,
        *,
        verified: bool = False,
    ) -> Step:
        link = await self._links.usable_link(link_id)
        if isinstance(link, Page):
            return link
        account, config, definition = await self._links.load(link)
        disabled = self._links.disabled_page(config, definition)
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
            or not same_text(token, csrf_cookie)
            or stored is None
            or not same_text(token, stored.get_secret_value())
        ):
            return Page(
                403, "Form expired",
                "This form could not be verified (it may be stale or sent from another site). "
                "Open the link again.", retry_url=self._links.link_url(link), error="csrf",
            )  # fmt: skip
        values = {f.name: str(form.get(f.name, "")) for f in spec.fields}
        plain_values = {f.name: values[f.name] for f in spec.fields if not f.secret}
        try:
            secret_values, data = split_fields(spec, values)
        except ValidationError as exc:
            return await self.form(
                link, definition, spec, account=account, error=exc.message,
                values=plain_values, status_code=400,
            )  # fmt: skip
        if spec.test_request is not None:
            problem = await self._verify(definition, spec, spec.test_request, secret_values, data)
            if problem is not None:
                return await self.form(
                    link, definition, spec, account=account, error=problem,
                    values=plain_values, status_code=400,
                )  # fmt: skip
        identity = await self._links.identity(definition, spec, secret_values, data, ())
        return await self._links.complete(
            link, account, credentials=secret_values, data=data, scopes=(), expires_at=None,
            identity=identity, verified=verified,
        )  # fmt: skip

    async def _verify(
        self,
        definition: ToolkitDefinition,
        spec: ApiKeySchemeSpec,
        test: TestRequest,
        secret_values: dict[str, SecretStr],
        data: dict[str, str],
    ) -> str | None:
        """None when the toolkit accepts the credentials; otherwise what to tell the user."""
        variables = {**data, **self._links.variables()}  # the deployment's values win
        base = render(definition.api_base_url, variables, what="api_base_url")
        path = render(test.path, variables, what="test_request.path")
        url = (
            path
            if path.startswith(("http://", "https://"))
            else base.rstrip("/") + "/" + path.lstrip("/")
        )
        request = self._links.http.build_request(
            test.method, url, json=test.json_body, headers=definition.default_headers
        )
        apply_placements(request, spec.placements, credential_values(secret_values, data))
        try:
            response = await self._links.http.send(request)
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
