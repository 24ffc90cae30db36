"""The authorization request: state and PKCE.

- RFC 6749, The OAuth 2.0 Authorization Framework, §4.1.1 —
  https://datatracker.ietf.org/doc/html/rfc6749#section-4.1.1
- RFC 7636, Proof Key for Code Exchange — https://datatracker.ietf.org/doc/html/rfc7636
- RFC 9700, OAuth 2.0 Security Best Current Practice — https://datatracker.ietf.org/doc/html/rfc9700
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

__all__ = ["authorization_url", "hash_state", "new_code_verifier", "new_state"]


def new_state() -> str:
    """A fresh ``state``: 256 random bits, single-use (RFC 6749 §10.12, RFC 9700 §2.1)."""
    return secrets.token_urlsafe(32)


def hash_state(state: str) -> str:
    """What the store keeps of a state: its SHA-256, so a database read cannot forge one."""
    return hashlib.sha256(state.encode()).hexdigest()


def new_code_verifier() -> str:
    """A PKCE code verifier: 43 chars of 256 random bits (RFC 7636 §4.1)."""
    return secrets.token_urlsafe(32)


def authorization_url(
    endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    scope_separator: str,
    state: str,
    code_verifier: str | None,
    extra: Mapping[str, str] | None = None,
    resource: str | None = None,
) -> str:
    """The provider URL to send the user to (RFC 6749 §4.1.1), with an S256 challenge
    (RFC 7636 §4.3; RFC 9700 §2.1.1: never ``plain``) and the ``resource`` the tokens are
    for, when given (RFC 8707 §2.1)."""
    # A catalog's extra parameters never replace the ones the protocol sets here.
    reserved = {"client_id", "response_type", "redirect_uri", "scope", "state", "resource"}
    params = {k: v for k, v in (extra or {}).items() if k not in reserved}
    if resource is not None:
        params["resource"] = resource
    if code_verifier is not None:
        params["code_challenge"] = create_s256_code_challenge(code_verifier)
        params["code_challenge_method"] = "S256"
    scope = scope_separator.join(scopes) if scopes else None
    url: str = prepare_grant_uri(
        endpoint,
        client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        **params,
    )
    return url
