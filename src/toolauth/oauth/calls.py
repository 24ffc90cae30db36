"""The HTTP calls to an authorization server, made with toolauth's own ``httpx`` client."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from .._exceptions import OAuthError, TokenRefreshError
from .tokens import TokenSet, client_auth, parse_token_response

__all__ = ["exchange_code", "refresh_tokens", "revoke_token"]


async def _token_request(
    http: httpx.AsyncClient,
    token_url: str,
    form: Mapping[str, str],
    *,
    auth_method: str,
    client_id: str,
    client_secret: str | None,
    token_path: str | None,
) -> TokenSet:
    headers, body = client_auth(auth_method, client_id, client_secret)
    # RFC 6749 §4.1.3 / §6: form-encoded POST. Ask for JSON (GitHub answers form-encoded
    # otherwise, which parse_token_response also reads).
    headers = {**headers, "Accept": "application/json"}
    try:
        response = await http.post(token_url, data={**form, **body}, headers=headers)
    except httpx.TimeoutException as exc:
        raise OAuthError("temporarily_unavailable", "The token endpoint timed out.") from exc
    except httpx.HTTPError as exc:
        raise OAuthError(
            "temporarily_unavailable", f"Cannot reach the token endpoint ({type(exc).__name__})."
        ) from exc
    if response.status_code >= 500:
        raise OAuthError(
            "temporarily_unavailable", f"The token endpoint answered HTTP {response.status_code}."
        )
    return parse_token_response(
        response.status_code,
        response.headers.get("content-type", ""),
        response.text,
        token_path=token_path,
    )


async def exchange_code(
    http: httpx.AsyncClient,
    token_url: str,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    client_id: str,
    client_secret: str | None,
    auth_method: str,
    token_path: str | None = None,
) -> TokenSet:
    """Trade an authorization code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier is not None:
        form["code_verifier"] = code_verifier
    return await _token_request(
        http, token_url, form, auth_method=auth_method, client_id=client_id,
        client_secret=client_secret, token_path=token_path,
    )  # fmt: skip


_RETRYABLE = frozenset({"temporarily_unavailable", "server_error", "invalid_response"})


async def refresh_tokens(
    http: httpx.AsyncClient,
    token_url: str,
    *,
    refresh_token: str,
    client_id: str,
    client_secret: str | None,
    auth_method: str,
    token_path: str | None = None,
) -> TokenSet:
    """Use a refresh token (RFC 6749 §6). Errors are ``TokenRefreshError``; ``retryable``
    tells a provider outage from a dead grant (``invalid_grant``)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    try:
        return await _token_request(
            http, token_url, form, auth_method=auth_method, client_id=client_id,
            client_secret=client_secret, token_path=token_path,
        )  # fmt: skip
    except OAuthError as exc:
        raise TokenRefreshError(
            exc.error, exc.description, retryable=exc.error in _RETRYABLE
        ) from exc


async def revoke_token(
    http: httpx.AsyncClient,
    revocation_url: str,
    *,
    token: str,
    token_type_hint: str,
    client_id: str,
    client_secret: str | None,
    auth_method: str,
) -> bool:
    """Ask the provider to revoke a token (RFC 7009 §2.1); True when it answered 200."""
    headers, body = client_auth(auth_method, client_id, client_secret)
    form = {"token": token, "token_type_hint": token_type_hint, **body}
    try:
        response = await http.post(revocation_url, data=form, headers=headers)
    except httpx.HTTPError:
        return False
    return response.status_code == 200
