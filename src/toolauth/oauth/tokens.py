"""Token requests and responses.

- RFC 6749 §4.1.3 (access token request), §5.1 (successful response), §5.2 (error response),
  §6 (refreshing) — https://datatracker.ietf.org/doc/html/rfc6749#section-5
- RFC 7009, OAuth 2.0 Token Revocation — https://datatracker.ietf.org/doc/html/rfc7009
"""

from __future__ import annotations

import base64
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

from pydantic import SecretStr

from .._exceptions import OAuthError

log = logging.getLogger("toolauth.oauth")

__all__ = ["TokenSet", "client_auth", "parse_token_response"]

_SECRET_KEYS = frozenset({"access_token", "refresh_token", "id_token"})


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint granted. Secrets are ``SecretStr``; ``extra`` holds the rest."""

    access_token: SecretStr
    token_type: str = "Bearer"
    refresh_token: SecretStr | None = None
    id_token: SecretStr | None = None
    expires_in: float | None = None
    scope: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def expires_at(self, now: datetime) -> datetime | None:
        return now + timedelta(seconds=self.expires_in) if self.expires_in is not None else None

    def secrets(self) -> dict[str, SecretStr]:
        found = {"access_token": self.access_token, "token_type": SecretStr(self.token_type)}
        if self.refresh_token is not None:
            found["refresh_token"] = self.refresh_token
        if self.id_token is not None:
            found["id_token"] = self.id_token
        return found


def client_auth(
    method: str, client_id: str, client_secret: str | None
) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and body fields that authenticate the client (RFC 6749 §2.3.1).

    ``client_secret_basic`` form-urlencodes id and secret before base64 (§2.3.1, Appendix B).
    """
    if client_secret is None:
        return {}, {"client_id": client_id}
    if method == "client_secret_post":
        return {}, {"client_id": client_id, "client_secret": client_secret}
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}, {}


def _body(content_type: str, text: str) -> dict[str, Any]:
    if "json" in content_type or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise OAuthError(
                "invalid_response", "The token endpoint answered with malformed JSON."
            ) from None
        if not isinstance(data, dict):
            raise OAuthError("invalid_response", "The token endpoint answered with a non-object.")
        return data
    # GitHub answers application/x-www-form-urlencoded unless asked for JSON.
    return dict(parse_qsl(text, keep_blank_values=True))


# RFC 6749 §5.1 expires_in: "the lifetime in seconds of the access token". A value that is no
# finite number of seconds between now and ten years is the provider's mistake (or an attack
# on our date arithmetic): it is ignored, and the token is refreshed when the API says 401.
MAX_LIFETIME = 10 * 365 * 24 * 3600.0


def _lifetime(raw: object) -> float | None:
    if raw is None or raw == "" or isinstance(raw, bool):
        return None
    try:
        seconds = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        seconds = math.nan
    if not 0 <= seconds <= MAX_LIFETIME:  # also false for nan
        log.warning("ignoring an expires_in that is not a lifetime in seconds: %.40r", raw)
        return None
    return seconds


def parse_token_response(
    status: int, content_type: str, text: str, *, token_path: str | None = None
) -> TokenSet:
    """A ``TokenSet`` from a token endpoint's answer, or an ``OAuthError`` with the §5.2 code.

    Error descriptions come from the provider and never contain our secrets; a body that is
    not understood is never echoed (it might hold a token).
    """
    data = _body(content_type, text)
    if "error" in data:
        description = data.get("error_description")
        raise OAuthError(str(data["error"])[:100], str(description)[:300] if description else None)
    if status >= 400:
        raise OAuthError("server_error", f"The token endpoint answered HTTP {status}.")
    scope_source = data
    if token_path:
        for part in token_path.split("."):
            nested = data.get(part)
            if not isinstance(nested, dict):
                raise OAuthError("invalid_response", f"The token response has no {token_path!r}.")
            data = nested
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthError("invalid_response", "The token response has no access_token.")
    token_type = str(data.get("token_type") or "Bearer")
    expires = _lifetime(data.get("expires_in"))
    raw_scope = data.get("scope", scope_source.get("scope"))
    scope: tuple[str, ...] | None = None
    if isinstance(raw_scope, str):
        scope = tuple(s for s in raw_scope.replace(",", " ").split() if s)
    elif isinstance(raw_scope, list):
        scope = tuple(str(s) for s in raw_scope)
    refresh = data.get("refresh_token")
    id_token = data.get("id_token")
    extra = {
        k: v
        for k, v in data.items()
        if k not in _SECRET_KEYS and "token" not in k and "secret" not in k
        and k not in {"token_type", "expires_in", "scope"}
    }  # fmt: skip
    return TokenSet(
        access_token=SecretStr(access),
        token_type="Bearer" if token_type.lower() == "bearer" else token_type,
        refresh_token=SecretStr(refresh) if isinstance(refresh, str) and refresh else None,
        id_token=SecretStr(id_token) if isinstance(id_token, str) and id_token else None,
        expires_in=expires,
        scope=scope,
        extra=extra,
    )
