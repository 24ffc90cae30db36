"""Who a newly connected account is at the provider (``ConnectedAccount.identity``).

Read once, when a connection completes, with the grant it just got: the OpenID Connect ID
token or userinfo when the toolkit granted ``openid``, else the toolkit's identity endpoint
from the catalog (``identity``: GitHub ``/user``, Slack ``auth.test``, …), whose path defaults
to a key scheme's test endpoint. Not knowing is not an error: the account connects without an
identity (and a reconnect cannot then be told apart from another identity).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import SecretStr

from .._models import AccountIdentity
from ..auth.credentials import apply_placements, credential_values
from ..catalog import ApiKeySchemeSpec, IdentitySpec, OAuth2SchemeSpec, ToolkitDefinition
from ..catalog.templates import render

if TYPE_CHECKING:
    import httpx

__all__ = ["capture_identity", "identity_from_claims"]

log = logging.getLogger("toolauth.identity")

_MAX = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_OIDC = IdentitySpec(id="sub", login="preferred_username", email="email", name="name")


def _text(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = _CONTROL.sub("", str(value)).strip()[:_MAX]
    return text or None


def _at(body: object, path: str | None) -> str | None:
    if path is None:
        return None
    for part in path.split("."):
        if not isinstance(body, Mapping):
            return None
        body = body.get(part)
    return _text(body)


def _read(body: object, spec: IdentitySpec) -> AccountIdentity | None:
    found = AccountIdentity(
        id=_at(body, spec.id), login=_at(body, spec.login),
        email=_at(body, spec.email), name=_at(body, spec.name),
    )  # fmt: skip
    return found if found.id or found.login or found.email else None


def identity_from_claims(id_token: str) -> AccountIdentity | None:
    """The identity in an ID token's claims (OpenID Connect Core §2), or None.

    The signature is not checked: the token came straight from the token endpoint over TLS,
    which OpenID Connect Core §3.1.3.7 (6) allows in its place.
    """
    parts = id_token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return None
    return _read(claims, _OIDC) if isinstance(claims, dict) and claims.get("sub") else None


async def capture_identity(
    http: httpx.AsyncClient,
    definition: ToolkitDefinition,
    spec: OAuth2SchemeSpec | ApiKeySchemeSpec,
    credentials: Mapping[str, SecretStr],
    data: Mapping[str, Any],
    *,
    scopes: tuple[str, ...],
    variables: Mapping[str, str],
    deadline: float,
) -> AccountIdentity | None:
    """Who ``credentials`` belong to at the provider, or None when that cannot be told."""
    token = credentials.get("id_token")
    if isinstance(spec, OAuth2SchemeSpec) and token is not None:
        found = identity_from_claims(token.get_secret_value())
        if found is not None:
            return found
    request_spec = definition.identity
    path = request_spec.path if request_spec is not None else None
    if isinstance(spec, OAuth2SchemeSpec) and "openid" in scopes and spec.userinfo_url:
        request_spec, path = _OIDC, spec.userinfo_url  # OpenID Connect Core §5.3
    if request_spec is None:
        return None
    if path is None and spec.test_request is not None:
        path = spec.test_request.path
    if path is None:
        return None
    values = {**variables, **{k: str(v) for k, v in data.items() if isinstance(v, str)}}
    try:
        base = render(definition.api_base_url, values, what="api_base_url")
        where = render(path, values, what="identity.path")
        url = where if where.startswith(("http://", "https://")) else (
            base.rstrip("/") + "/" + where.lstrip("/")
        )  # fmt: skip
        request = http.build_request(
            request_spec.method, url, json=request_spec.json_body,
            headers=definition.default_headers,
        )  # fmt: skip
        placements = (spec.placement,) if isinstance(spec, OAuth2SchemeSpec) else spec.placements
        apply_placements(request, placements, credential_values(credentials, data))
        with anyio.fail_after(deadline):
            response = await http.send(request)
        if not response.is_success:
            log.warning("%s identity: HTTP %s", definition.slug, response.status_code)
            return None
        return _read(response.json(), request_spec)
    except Exception as exc:  # never a reason to lose the grant; the type only (no URL)
        log.warning("%s identity could not be read: %s", definition.slug, type(exc).__name__)
        return None
