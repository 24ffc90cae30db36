"""The HTTP calls to an authorization server, made with toolauth's own ``httpx`` client.

The server is not trusted to behave (RFC 9700 §4.4, §4.5): every call has an overall deadline
on top of the client's per-phase timeouts (a server dripping one byte a second never trips a
read timeout), its answer is read up to :data:`MAX_RESPONSE_BYTES` and no further, and nothing
we sent (client secret, code, verifier, refresh token) can come back in an error's text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import anyio
import httpx

from .._exceptions import ConfigurationError, OAuthError, TokenRefreshError, ValidationError
from .tokens import TokenSet, client_auth, parse_token_response

__all__ = [
    "MAX_RESPONSE_BYTES",
    "JsonDocument",
    "ProviderAnswer",
    "call_deadline",
    "exchange_code",
    "get_json",
    "provider_request",
    "refresh_tokens",
    "revoke_token",
]

MAX_RESPONSE_BYTES = 1024 * 1024
"""The most of an authorization server's answer read (token, revocation, metadata): 1 MiB."""

DEADLINE_FACTOR = 3.0
"""Without an explicit deadline a call may take this many times the client's per-phase
timeout (``TOOLAUTH_HTTP_TIMEOUT``) in all; the same default as ``Settings.call_deadline``."""


def call_deadline(http: httpx.AsyncClient, deadline: float | None = None) -> float:
    """The overall deadline of one call: ``deadline``, or 3 times the client's read timeout."""
    if deadline is not None and deadline > 0:
        return deadline
    read = http.timeout.read
    return DEADLINE_FACTOR * (read if read is not None and read > 0 else 10.0)


@dataclass(frozen=True)
class ProviderAnswer:
    """An authorization server's answer, read whole (within the size cap)."""

    status_code: int
    content_type: str
    text: str


class AnswerTooLarge(Exception):
    """The answer went past the size cap; what was read is dropped."""


async def provider_request(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    deadline: float | None = None,
    max_bytes: int = MAX_RESPONSE_BYTES,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> ProviderAnswer:
    """One request, bounded in time (``TimeoutError`` after the deadline, whatever the
    server does) and in size (:class:`AnswerTooLarge`, from ``Content-Length`` or from the
    bytes actually sent); ``httpx.HTTPError`` when the server cannot be reached."""
    limit = call_deadline(http, deadline)
    with anyio.fail_after(limit):
        async with http.stream(
            method, url, data=data, headers=headers, content=content
        ) as response:
            declared = response.headers.get("content-length", "").strip()
            if declared.isdigit() and int(declared) > max_bytes:
                raise AnswerTooLarge
            body = bytearray()
            async for chunk in response.aiter_bytes():  # decoded: the cap holds after gzip
                body += chunk
                if len(body) > max_bytes:
                    raise AnswerTooLarge
    encoding = response.charset_encoding or "utf-8"  # from the headers only
    try:
        text = bytes(body).decode(encoding, errors="replace")
    except LookupError:  # a charset Python does not know
        text = bytes(body).decode("utf-8", errors="replace")
    return ProviderAnswer(response.status_code, response.headers.get("content-type", ""), text)


@dataclass(frozen=True)
class JsonDocument:
    """A JSON document as fetched: ``value`` is whatever it held (``null`` included)."""

    value: object


async def get_json(
    http: httpx.AsyncClient, url: str, *, deadline: float | None = None, field: str = "url"
) -> JsonDocument | None:
    """The JSON document at ``url`` (metadata: RFC 8414, RFC 9728), read under the deadline
    and size cap of every call here; ``None`` when it answers anything but 200. Unreachable is
    a ``ConfigurationError``; too large or not JSON a ``ValidationError`` on ``field``."""
    try:
        answer = await provider_request(
            http, "GET", url, headers={"Accept": "application/json"}, deadline=deadline
        )
    except TimeoutError:
        raise ConfigurationError(
            f"{url} did not answer within {call_deadline(http, deadline):g} s."
        ) from None
    except httpx.HTTPError as exc:
        raise ConfigurationError(f"Cannot reach {url}: {exc.__class__.__name__}") from exc
    except AnswerTooLarge:
        raise ValidationError(
            f"The document at {url} is larger than {MAX_RESPONSE_BYTES} bytes; it was not read.",
            field=field,
        ) from None
    if answer.status_code != 200:
        return None
    try:
        return JsonDocument(json.loads(answer.text))
    except (ValueError, RecursionError):  # RecursionError: nested too deep to read
        raise ValidationError(f"The document at {url} is not JSON.", field=field) from None


def _seconds(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else "?"


async def _token_request(
    http: httpx.AsyncClient,
    token_url: str,
    form: Mapping[str, str],
    *,
    auth_method: str,
    client_id: str,
    client_secret: str | None,
    token_path: str | None,
    deadline: float | None,
    max_bytes: int,
    sent: Iterable[str],
    resource: str | None = None,
) -> TokenSet:
    headers, body = client_auth(auth_method, client_id, client_secret)
    # RFC 6749 §4.1.3 / §6: form-encoded POST. Ask for JSON (GitHub answers form-encoded
    # otherwise, which parse_token_response also reads).
    headers = {**headers, "Accept": "application/json"}
    # What must never come back in an error's text: every secret we sent, as sent.
    secrets = [*sent, *(v for v in (client_secret,) if v)]
    secrets += [h.removeprefix("Basic ") for h in headers.values() if h.startswith("Basic ")]
    try:
        answer = await provider_request(
            http, "POST", token_url, data={**form, **body}, headers=headers,
            deadline=deadline, max_bytes=max_bytes,
        )  # fmt: skip
    except TimeoutError as exc:
        raise OAuthError(
            "temporarily_unavailable",
            f"The token endpoint did not answer within "
            f"{_seconds(call_deadline(http, deadline))} s.",
        ) from exc
    except httpx.TimeoutException as exc:
        raise OAuthError("temporarily_unavailable", "The token endpoint timed out.") from exc
    except httpx.HTTPError as exc:
        raise OAuthError(
            "temporarily_unavailable", f"Cannot reach the token endpoint ({type(exc).__name__})."
        ) from exc
    except AnswerTooLarge:
        raise OAuthError(
            "invalid_response",
            f"The token endpoint answered with more than {max_bytes} bytes; it was not read.",
        ) from None
    if answer.status_code >= 500:
        raise OAuthError(
            "temporarily_unavailable", f"The token endpoint answered HTTP {answer.status_code}."
        )
    return parse_token_response(
        answer.status_code, answer.content_type, answer.text, token_path=token_path,
        secrets=secrets, resource=resource,
    )  # fmt: skip


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
    deadline: float | None = None,
    max_bytes: int = MAX_RESPONSE_BYTES,
    resource: str | None = None,
) -> TokenSet:
    """Trade an authorization code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.5), for
    ``resource`` when given (RFC 8707 §2.2)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier is not None:
        form["code_verifier"] = code_verifier
    if resource is not None:
        form["resource"] = resource
    return await _token_request(
        http, token_url, form, auth_method=auth_method, client_id=client_id,
        client_secret=client_secret, token_path=token_path, deadline=deadline,
        max_bytes=max_bytes, sent=(code, code_verifier or ""), resource=resource,
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
    deadline: float | None = None,
    max_bytes: int = MAX_RESPONSE_BYTES,
    resource: str | None = None,
) -> TokenSet:
    """Use a refresh token (RFC 6749 §6), for ``resource`` when given (RFC 8707 §2.2).
    Errors are ``TokenRefreshError``; ``retryable`` tells a provider outage from a dead grant
    (``invalid_grant``)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if resource is not None:
        form["resource"] = resource
    try:
        return await _token_request(
            http, token_url, form, auth_method=auth_method, client_id=client_id,
            client_secret=client_secret, token_path=token_path, deadline=deadline,
            max_bytes=max_bytes, sent=(refresh_token,), resource=resource,
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
    deadline: float | None = None,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> bool:
    """Ask the provider to revoke a token (RFC 7009 §2.1); True when it answered 200 within
    the deadline (its body, which we do not need, is read only up to the size cap)."""
    headers, body = client_auth(auth_method, client_id, client_secret)
    form = {"token": token, "token_type_hint": token_type_hint, **body}
    try:
        answer = await provider_request(
            http, "POST", revocation_url, data=form, headers=headers, deadline=deadline,
            max_bytes=max_bytes,
        )  # fmt: skip
    except (httpx.HTTPError, TimeoutError, AnswerTooLarge):
        return False
    return answer.status_code == 200
