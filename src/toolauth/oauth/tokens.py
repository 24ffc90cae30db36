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
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus

from pydantic import SecretStr

from .._exceptions import OAuthError

log = logging.getLogger("toolauth.oauth")

__all__ = [
    "PUBLIC_FIELDS",
    "TOKEN_RESPONSE_KEY",
    "TokenSet",
    "client_auth",
    "parse_token_response",
    "provider_error_code",
    "quote_provider_text",
]

_SECRET_KEYS = frozenset({"access_token", "refresh_token", "id_token"})
_TYPED_KEYS = frozenset({"token_type", "expires_in", "scope"})

# A token response is the provider's to fill: every field not known to be public is treated as
# secret (RFC 6749 §5.1 lets providers add any parameter; Slack puts a bot token next to the
# user's, Notion the owner's profile). Only these dotted paths, from the top of the response,
# are kept in an account's plain ``data`` ("team.id" becomes ``data["team_id"]``), and only
# when the value is a short plain string, number or boolean. ``token_type``, ``expires_in`` and
# ``scope`` have typed homes (credentials, ``expires_at``, ``scopes``). Everything else is
# kept, as one JSON object, in the encrypted credentials under ``TOKEN_RESPONSE_KEY``.
PUBLIC_FIELDS: tuple[str, ...] = (
    "user_id",  # many providers: the resource owner's id
    "account_id",  # Dropbox, Atlassian
    "app_id",  # Slack
    "bot_id",  # Notion
    "bot_user_id",  # Slack
    "workspace_id",  # Notion
    "workspace_name",  # Notion
    "team.id",  # Slack
    "team.name",  # Slack
    "enterprise.id",  # Slack Enterprise Grid
    "enterprise.name",  # Slack Enterprise Grid
    "authed_user.id",  # Slack (the user's part of an OAuth v2 response)
)
TOKEN_RESPONSE_KEY = "token_response"
_MAX_PUBLIC_TEXT = 200
_MAX_QUOTED = 198  # 200 with the quotes
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Invisible format characters that reorder or hide text (bidi overrides, zero-width joiners):
# nothing of a provider's text that a reader cannot see.
_FORMAT = re.compile(r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_TAG = re.compile(r"<[^>]*>?")
_MARKUP = re.compile(r"[<>`\[\]{}\\*]")
_REDACTED = "\ue000"  # stands for a removed secret until the text is clean
_GRAM = 10  # an echoed piece of a secret this long or longer is removed
_ERROR_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _secret_forms(secrets: Iterable[str]) -> list[str]:
    """Each secret as it may come back: raw and URL-encoded (as in a form body)."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        forms |= {secret, quote(secret, safe=""), quote_plus(secret)}
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


def _redact(text: str, secrets: Iterable[str], mark: str = "[redacted]") -> str:
    forms = _secret_forms(secrets)
    for form in forms:
        text = text.replace(form, mark)
    # A provider may echo part of a secret (truncated, or cut by its own quoting): every run of
    # the text that shares _GRAM or more characters with one of them goes too.
    grams = {f[i : i + _GRAM] for f in forms for i in range(len(f) - _GRAM + 1)}
    if not grams:
        return text
    hidden = [False] * len(text)
    for i in range(len(text) - _GRAM + 1):
        if text[i : i + _GRAM] in grams:
            hidden[i : i + _GRAM] = [True] * _GRAM
    if not any(hidden):
        return text
    out: list[str] = []
    for i, char in enumerate(text):
        if not hidden[i]:
            out.append(char)
        elif i == 0 or not hidden[i - 1]:
            out.append(mark)
    return "".join(out)


def quote_provider_text(text: object, *, secrets: Iterable[str] = ()) -> str | None:
    """A provider's free text (``error_description``, RFC 6749 §5.2 / §4.1.2.1) made fit to show
    a user or a model: any of ``secrets`` removed, no control or invisible characters, no
    markup, at most 200 characters with the double quotes around it (so it reads as the
    provider's words, never as ours). None when nothing is left."""
    if text is None or isinstance(text, (dict, list)):
        return None
    clean = _FORMAT.sub("", str(text)[:4096]).replace(_REDACTED, "")
    clean = _redact(_CONTROL.sub(" ", clean), secrets, _REDACTED)
    clean = _TAG.sub(" ", clean)
    clean = _MARKUP.sub(" ", clean).replace('"', "'")
    clean = " ".join(clean.split()).replace(_REDACTED, "[redacted]")
    if not clean:
        return None
    if len(clean) > _MAX_QUOTED:
        clean = clean[: _MAX_QUOTED - 1].rstrip() + "…"
    return f'"{clean}"'


def provider_error_code(
    code: object, *, secrets: Iterable[str] = (), fallback: str = "invalid_response"
) -> str:
    """A provider's ``error`` code (RFC 6749 §5.2: a short ASCII token such as
    ``invalid_grant``), or ``fallback`` when it is anything else or carries a secret."""
    text = str(code) if isinstance(code, (str, int)) else ""
    if not _ERROR_CODE.match(text) or _redact(text, secrets) != text:
        return fallback
    return text


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint granted. Secrets are ``SecretStr`` (never in a ``repr``):
    ``public`` holds the allow-listed ids and names (:data:`PUBLIC_FIELDS`), ``private`` every
    other field of the response as one JSON object."""

    access_token: SecretStr
    token_type: str = "Bearer"
    refresh_token: SecretStr | None = None
    id_token: SecretStr | None = None
    expires_in: float | None = None
    scope: tuple[str, ...] | None = None
    public: dict[str, str | int | bool] = field(default_factory=dict)
    private: SecretStr | None = None

    def expires_at(self, now: datetime) -> datetime | None:
        return now + timedelta(seconds=self.expires_in) if self.expires_in is not None else None

    def secrets(self) -> dict[str, SecretStr]:
        found = {"access_token": self.access_token, "token_type": SecretStr(self.token_type)}
        if self.refresh_token is not None:
            found["refresh_token"] = self.refresh_token
        if self.id_token is not None:
            found["id_token"] = self.id_token
        if self.private is not None:
            found[TOKEN_RESPONSE_KEY] = self.private
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
        except (ValueError, RecursionError):  # RecursionError: nested too deep to read
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


def _public_fields(data: dict[str, Any]) -> tuple[dict[str, str | int | bool], set[str]]:
    """The allow-listed values of a response (flattened: ``team.id`` -> ``team_id``), and the
    dotted paths they came from."""
    found: dict[str, str | int | bool] = {}
    taken: set[str] = set()
    for path in PUBLIC_FIELDS:
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            if not value or len(value) > _MAX_PUBLIC_TEXT or _CONTROL.search(value):
                continue  # odd: kept with the secrets instead
        elif not isinstance(value, (int, bool)) or isinstance(value, float):
            continue
        found[path.replace(".", "_")] = value
        taken.add(path)
    return found, taken


def _without(data: dict[str, Any], paths: set[str], prefix: str = "") -> dict[str, Any]:
    """``data`` less the dotted ``paths`` (and the objects they leave empty)."""
    kept: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if path in paths:
            continue
        if isinstance(value, dict):
            value = _without(value, paths, f"{path}.")
            if not value:
                continue
        kept[key] = value
    return kept


def _audiences(value: object) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _jwt_audiences(access_token: str) -> list[str] | None:
    """The ``aud`` of an RFC 9068 JWT access token (header ``typ`` ``at+jwt``), read without
    checking its signature (the resource server does that; this only catches a token meant
    for another resource); ``None`` for any other token, which stays opaque."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, payload = (
            json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2]
        )
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    if str(header.get("typ", "")).lower() not in {"at+jwt", "application/at+jwt"}:
        return None
    return _audiences(payload.get("aud"))


def check_resource(data: dict[str, Any], access_token: str, resource: str) -> None:
    """RFC 8707 §2 / RFC 9068 §3: when the answer says whom the token is for (``resource``
    or ``aud`` in the token response, or the ``aud`` of an ``at+jwt`` access token), it must
    include ``resource``; else an ``OAuthError`` (``invalid_target``) and nothing is kept."""
    named: list[str] = []
    for key in ("resource", "aud"):
        if key in data:
            found = _audiences(data[key])
            if found is None:
                raise OAuthError("invalid_response", f"The token response's {key} is malformed.")
            named += found
    named += _jwt_audiences(access_token) or []
    if named and resource not in named:
        shown = quote_provider_text(", ".join(named)[:200]) or "?"
        raise OAuthError(
            "invalid_target",
            f"The authorization server issued a token for another resource ({shown}), not "
            f"{resource}; it was not stored. The server's authorization setup may have "
            "changed: add the toolkit again (add_mcp(..., replace=True)) and reconnect.",
        )


def parse_token_response(
    status: int,
    content_type: str,
    text: str,
    *,
    token_path: str | None = None,
    secrets: Iterable[str] = (),
    resource: str | None = None,
) -> TokenSet:
    """A ``TokenSet`` from a token endpoint's answer, or an ``OAuthError`` with the §5.2 code.

    The provider is not trusted: its ``error`` code must look like one, its
    ``error_description`` is quoted, cleaned and cut (:func:`quote_provider_text`) with any of
    ``secrets`` (what we sent: client secret, code, verifier, refresh token) removed, and a
    body that is not understood is never echoed (it might hold a token). With ``resource``
    (RFC 8707), a token the answer says is for another resource is refused
    (:func:`check_resource`).
    """
    secrets = tuple(secrets)
    data = _body(content_type, text)
    if "error" in data:
        raise OAuthError(
            provider_error_code(data["error"], secrets=secrets),
            quote_provider_text(data.get("error_description"), secrets=secrets),
        )
    if status >= 400:
        raise OAuthError("server_error", f"The token endpoint answered HTTP {status}.")
    whole = data
    public, taken = _public_fields(whole)
    if token_path:
        for part in token_path.split("."):
            nested = data.get(part)
            if not isinstance(nested, dict):
                raise OAuthError("invalid_response", f"The token response has no {token_path!r}.")
            data = nested
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthError("invalid_response", "The token response has no access_token.")
    if resource is not None:
        check_resource(data, access, resource)
    token_type = str(data.get("token_type") or "Bearer")
    expires = _lifetime(data.get("expires_in"))
    raw_scope = data.get("scope", whole.get("scope"))
    scope: tuple[str, ...] | None = None
    if isinstance(raw_scope, str):
        scope = tuple(s for s in raw_scope.replace(",", " ").split() if s)
    elif isinstance(raw_scope, list):
        scope = tuple(str(s) for s in raw_scope)
    refresh = data.get("refresh_token")
    id_token = data.get("id_token")
    # What we read into typed fields leaves the rest; the rest is secret.
    level = f"{token_path}." if token_path else ""
    used = taken | {f"{level}{key}" for key in (*_SECRET_KEYS, *_TYPED_KEYS)} | {"scope"}
    rest = _without(whole, used)
    return TokenSet(
        access_token=SecretStr(access),
        token_type="Bearer" if token_type.lower() == "bearer" else token_type,
        refresh_token=SecretStr(refresh) if isinstance(refresh, str) and refresh else None,
        id_token=SecretStr(id_token) if isinstance(id_token, str) and id_token else None,
        expires_in=expires,
        scope=scope,
        public=public,
        private=SecretStr(json.dumps(rest, separators=(",", ":"))) if rest else None,
    )
