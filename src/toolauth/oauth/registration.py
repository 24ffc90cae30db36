"""Dynamic client registration: an OAuth client made for us by the authorization server.

- RFC 7591, OAuth 2.0 Dynamic Client Registration Protocol:
  https://datatracker.ietf.org/doc/html/rfc7591
- MCP authorization (2025-06-18, "Dynamic Client Registration"):
  https://modelcontextprotocol.io/specification/2025-06-18/basic/authorization

The answer carries a client secret: it never reaches an error message, a log or a repr.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._exceptions import ConfigurationError, ValidationError
from .tokens import quote_provider_text

if TYPE_CHECKING:
    import httpx

__all__ = ["RegisteredClient", "register_client"]


@dataclass(frozen=True)
class RegisteredClient:
    """The client the server made: its id, secret (None for a public client) and the token
    endpoint auth method it was registered with."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    auth_method: str = "client_secret_basic"


async def register_client(
    http: httpx.AsyncClient,
    endpoint: str,
    *,
    redirect_uri: str,
    client_name: str,
    auth_method: str,
    scopes: tuple[str, ...] = (),
    deadline: float | None = None,
) -> RegisteredClient:
    """Register a client at ``endpoint`` (`RFC 7591, Section 3.1
    <https://datatracker.ietf.org/doc/html/rfc7591#section-3.1>`_) for the authorization code
    grant with refresh tokens and one exact redirect URI. A server that refuses or answers
    something unusable is a ``ConfigurationError`` naming what it said (RFC 7591 §3.2.2)."""
    import httpx

    from .calls import AnswerTooLarge, provider_request

    metadata = {
        "client_name": client_name,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": auth_method,
    }
    if scopes:
        metadata["scope"] = " ".join(scopes)
    try:
        answer = await provider_request(
            http, "POST", endpoint, deadline=deadline,
            content=json.dumps(metadata).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )  # fmt: skip
    except TimeoutError:
        raise ConfigurationError(f"The registration endpoint {endpoint} timed out.") from None
    except httpx.HTTPError as exc:
        raise ConfigurationError(
            f"Cannot reach the registration endpoint {endpoint}: {type(exc).__name__}"
        ) from exc
    except AnswerTooLarge:
        raise ConfigurationError(
            f"The registration endpoint {endpoint} answered too much."
        ) from None
    try:
        body = json.loads(answer.text)
    except (ValueError, RecursionError):
        body = None
    if answer.status_code not in (200, 201) or not isinstance(body, dict):
        said = ""
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            said = f": {quote_provider_text(body['error'], secrets=())}"
            described = quote_provider_text(body.get("error_description"), secrets=())
            if described:
                said += f" ({described})"
        raise ConfigurationError(
            f"{endpoint} refused to register a client (HTTP {answer.status_code}){said}. Create a "
            "custom auth config with a client id registered by hand instead."
        )
    client_id = body.get("client_id")
    secret = body.get("client_secret")
    if (
        not isinstance(client_id, str)
        or not client_id
        or (secret is not None and not isinstance(secret, str))
    ):
        raise ValidationError(
            f"{endpoint} answered a registration without a usable client_id (RFC 7591 §3.2.1).",
            field="registration_endpoint",
        )
    method = body.get("token_endpoint_auth_method")
    return RegisteredClient(
        client_id,
        secret or None,
        method if isinstance(method, str) else (auth_method if secret else "none"),
    )
