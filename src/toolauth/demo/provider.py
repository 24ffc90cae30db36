"""The demo provider: a real OAuth 2.0 authorization server with a small items API.

It stands behind the ``demo`` toolkit for tests, benchmarks and the offline demo. All state
lives in memory. Routes, relative to wherever the app is mounted:

```
GET  /oauth/authorize                 RFC 6749 §4.1.1, shows the login page
POST /oauth/authorize/login           login form  -> consent page
POST /oauth/authorize/consent         Allow / Deny -> 303 to the client's redirect_uri
POST /oauth/token                     RFC 6749 §4.1.3 and §6 (authorization_code, refresh_token);
                                      an HS256 ID token too when "openid" was granted
POST /oauth/revoke                    RFC 7009
POST /oauth/register                  RFC 7591 dynamic client registration (JSON)
(client_id = URL)                     client ID metadata documents, when switched on
POST /oauth/introspect                RFC 7662 token introspection (for resource servers)
GET  /oauth/userinfo                  Bearer token -> {sub, name, email, preferred_username}
GET  /.well-known/oauth-authorization-server   RFC 8414 (also /.well-known/openid-configuration)
GET  /api/me                          needs "profile"
GET  /api/items?limit=N               needs "items:read"
POST /api/items {"name": "..."}       needs "items:write", answers 201
GET  /api/rate-limited                always 429 with Retry-After
```

Two users exist from the start (alice, bob): the login page is where a user picks which
account to grant. Each token carries its own scopes; the API answers a token without the scope
it needs with 403 ``insufficient_scope`` naming it (RFC 6750 §3.1). An authorization request
with ``include_granted_scopes=true`` extends the user's live grant to the client, as Google's
incremental authorization does: the new tokens carry the old and the new scopes, and belong to
the same grant (revoking either token ends both).

Authorization requests and token requests may carry ``resource`` (RFC 8707): the tokens
issued are then bound to it, introspection reports it, and a later request naming another
resource is refused with ``invalid_target``.

The API accepts ``Authorization: Bearer <access token>``, ``X-API-Key: <issued key>`` or HTTP
Basic with a user's username and password (the last two carry every scope).

References:
    RFC 6749 The OAuth 2.0 Authorization Framework https://datatracker.ietf.org/doc/html/rfc6749
    RFC 6750 Bearer Token Usage https://datatracker.ietf.org/doc/html/rfc6750
    RFC 7009 Token Revocation https://datatracker.ietf.org/doc/html/rfc7009
    RFC 7591 Dynamic Client Registration https://datatracker.ietf.org/doc/html/rfc7591
    RFC 7636 PKCE https://datatracker.ietf.org/doc/html/rfc7636
    RFC 7662 Token Introspection https://datatracker.ietf.org/doc/html/rfc7662
    RFC 8707 Resource Indicators https://datatracker.ietf.org/doc/html/rfc8707
    RFC 8414 Authorization Server Metadata https://datatracker.ietf.org/doc/html/rfc8414
    RFC 9207 Authorization Server Issuer Identification https://datatracker.ietf.org/doc/html/rfc9207
    RFC 9700 OAuth 2.0 Security Best Current Practice https://datatracker.ietf.org/doc/html/rfc9700
    OAuth Client ID Metadata Document
    https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .client_documents import ClientDocumentError, fetch_client_document, is_document_url

__all__ = ["SCOPES", "DemoProvider", "ProviderConfig", "ProviderStats", "TokenFault", "create_app"]

SCOPES: dict[str, str] = {
    "profile": "See your name and email address",
    "items:read": "See your items",
    "items:write": "Create items for you",
}
"""Scopes of the items API, with the text the consent page shows: what a client may ask for
unless it was registered with its own scopes."""

DEFAULT_SCOPES = ("profile",)
TokenFault = Literal["500", "timeout", "invalid_json", "invalid_grant"]
_FAULTS = frozenset({"500", "timeout", "invalid_json", "invalid_grant"})
_PENDING_TTL = 600.0
_CHALLENGE_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # BASE64URL(SHA256(...)), RFC 7636 §4.2
_VERIFIER_RE = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1


@dataclass
class ProviderConfig:
    """Switches for the demo provider; change them at run time to simulate other providers.

    Args:
        issuer: the issuer identifier; None derives it from the request's base URL and mount.
        access_token_ttl: access token lifetime in seconds.
        rotate_refresh_tokens: each refresh spends the refresh token and returns a new one;
            without rotation the response carries no refresh_token (RFC 6749 §6 "MAY").
        revoke_on_refresh_reuse: presenting a rotated-out refresh token revokes the whole
            grant (RFC 9700 §4.14.2).
        send_iss_in_redirect: add ``iss`` to authorization responses (RFC 9207 §2).
        omit_expires_in: leave ``expires_in`` out of token responses (it is only RECOMMENDED).
        form_encoded_token_response: token endpoint answers ``application/x-www-form-urlencoded``
            bodies, as GitHub does.
        deny_all_consent: every authorization request ends in ``error=access_denied``.
        auto_consent: skip the login and consent pages; sign in as ``auto_consent_user``.
        require_pkce: authorization requests must carry an S256 ``code_challenge``.
        token_endpoint_fault: "500" (an HTML 500), "timeout" (sleep ``fault_delay`` seconds,
            then answer normally), "invalid_json" (a 200 with a broken JSON body) or
            "invalid_grant" (a 400 invalid_grant), for every token request, or only for
            refresh grants when ``fault_only_refresh``.
        code_ttl: authorization code lifetime in seconds.
        dynamic_registration: serve ``/oauth/register`` (RFC 7591) and name it in the metadata.
        advertise_s256: list ``S256`` in ``code_challenge_methods_supported`` (turn off to
            simulate a server an MCP client must refuse).
        client_id_metadata_documents: accept the URL of a client ID metadata document as a
            ``client_id`` and say so in the metadata (``client_id_metadata_document_supported``):
            each authorization request fetches the document (loopback only, 5 kB at most,
            ``client_document_timeout`` seconds), which must name that URL as its
            ``client_id``, list the request's redirect_uri and be a public client.
        token_response_aud: "resource" adds ``aud`` naming the grant's resource to token
            responses; any other string names that audience instead (a confused authorization
            server issuing tokens for another resource); None adds nothing.
    """

    issuer: str | None = None
    access_token_ttl: float = 3600
    rotate_refresh_tokens: bool = True
    revoke_on_refresh_reuse: bool = True
    send_iss_in_redirect: bool = False
    omit_expires_in: bool = False
    form_encoded_token_response: bool = False
    deny_all_consent: bool = False
    auto_consent: bool = False
    auto_consent_user: str = "alice"
    require_pkce: bool = True
    token_endpoint_fault: TokenFault | None = None
    fault_delay: float = 30.0
    fault_only_refresh: bool = False
    code_ttl: float = 60.0
    dynamic_registration: bool = True
    advertise_s256: bool = True
    token_response_aud: str | None = None
    client_id_metadata_documents: bool = False
    client_document_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.token_endpoint_fault is not None and self.token_endpoint_fault not in _FAULTS:
            raise ValueError(
                f"token_endpoint_fault must be None or one of {sorted(_FAULTS)}, "
                f"not {self.token_endpoint_fault!r}"
            )


@dataclass
class ProviderStats:
    """Request counters; ``failed_auth`` counts rejected clients, logins and API credentials."""

    authorize_requests: int = 0
    token_requests: Counter[str] = field(default_factory=Counter)  # by grant_type
    refresh_requests: int = 0
    revocations: int = 0
    api_requests: int = 0
    failed_auth: int = 0
    token_auth_methods: Counter[str] = field(default_factory=Counter)  # client_secret_basic...
    registrations: int = 0
    introspections: int = 0
    client_documents_fetched: int = 0


@dataclass
class _Client:
    client_id: str
    client_secret: str | None
    redirect_uris: list[str]
    name: str  # who asks, on the sign-in and consent pages
    brand: str  # whose account it is: the provider (or simulated app) the pages speak for
    scopes: dict[str, str]  # the scopes it may ask for, with their consent text

    @property
    def default_scopes(self) -> tuple[str, ...]:
        """What a request without ``scope`` gets (RFC 6749 §3.3)."""
        if all(scope in self.scopes for scope in DEFAULT_SCOPES):
            return DEFAULT_SCOPES
        return tuple(self.scopes)


@dataclass
class _User:
    username: str
    password: str
    name: str
    email: str
    sub: str


@dataclass
class _Pending:
    """An authorization request waiting for login and consent."""

    csrf_token: str
    client_id: str
    redirect_uri: str
    redirect_uri_given: bool
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    expires_at: float
    username: str | None = None
    resource: str | None = None
    include_granted: bool = False  # include_granted_scopes=true: extend the user's grant


@dataclass
class _Code:
    client_id: str
    username: str
    scopes: tuple[str, ...]
    redirect_uri: str
    redirect_uri_given: bool
    code_challenge: str | None
    expires_at: float
    grant_id: str
    used: bool = False
    resource: str | None = None


@dataclass
class _AccessToken:
    client_id: str
    username: str
    scopes: tuple[str, ...]
    expires_at: float
    grant_id: str
    resource: str | None = None


@dataclass
class _RefreshToken:
    client_id: str
    username: str
    scopes: tuple[str, ...]
    grant_id: str
    rotated: bool = False
    resource: str | None = None


@dataclass
class _Principal:
    username: str
    scopes: tuple[str, ...]


class _OAuthError(Exception):
    """An RFC 6749 §5.2 error; ``status`` is 400 or 401."""

    def __init__(
        self, error: str, description: str, status: int = 400, *, basic_challenge: bool = False
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.basic_challenge = basic_challenge


class _PageError(Exception):
    """An authorization error shown on a page, never redirected (RFC 6749 §4.1.2.1)."""


class _RedirectError(Exception):
    """An authorization error sent back to the client's redirect_uri (RFC 6749 §4.1.2.1)."""

    def __init__(self, error: str, description: str, redirect_uri: str, state: str | None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state


class _ApiError(Exception):
    def __init__(
        self, status: int, error: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}


def _s256(verifier: str) -> str:
    """BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), RFC 7636 §4.2."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _single_values(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], set[str]]:
    """Parameters without empty values (RFC 6749 §3.1), and the names sent more than once."""
    values: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in pairs:
        if value == "":
            continue
        if name in values:
            repeated.add(name)
        values[name] = value
    return values, repeated


async def _read_form(request: Request) -> tuple[dict[str, str], set[str]]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("", "application/x-www-form-urlencoded"):
        raise _OAuthError(
            "invalid_request", "the body must be application/x-www-form-urlencoded (RFC 6749 §3.2)"
        )
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _OAuthError("invalid_request", "the body is not UTF-8 (RFC 6749 Appendix B)") from exc
    return _single_values(parse_qsl(text, keep_blank_values=True))


def _with_query(uri: str, params: dict[str, str]) -> str:
    """Add params to a URI, keeping its own query component (RFC 6749 §3.1.2)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _parse_scope(raw: str | None) -> tuple[str, ...]:
    """A space-delimited scope list (RFC 6749 §3.3), deduplicated, in request order."""
    return tuple(dict.fromkeys((raw or "").split()))


def _is_resource(value: str) -> bool:
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc and not parts.fragment)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


_CSS = """
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
 font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f4f6;
 color:#1f2328}
main{background:#fff;border:1px solid #d8dee4;border-radius:12px;padding:2rem;
 width:min(25rem,92vw);box-shadow:0 2px 8px rgba(31,35,40,.06)}
.brand{font-weight:700;color:#6639ba;letter-spacing:.02em;margin-bottom:1rem}
h1{font-size:1.3rem;margin:0 0 .3rem}
p.sub{color:#59636e;margin:0 0 1.25rem}
label{display:block;font-weight:600;margin:.8rem 0 .3rem}
button,input{font-family:inherit}
input[type=text],input[type=password]{width:100%;padding:.55rem .7rem;font-size:1rem;
 border:1px solid #d0d7de;border-radius:6px}
input:focus{outline:2px solid #6639ba55;border-color:#6639ba}
.actions{display:flex;gap:.6rem;margin-top:1.4rem}
button{flex:1;padding:.6rem .9rem;font-size:1rem;font-weight:600;border-radius:6px;cursor:pointer;
 border:1px solid transparent}
button.primary{background:#6639ba;color:#fff}
button.secondary{background:#f6f8fa;color:#1f2328;border-color:#d0d7de}
ul.scopes{list-style:none;padding:0;margin:0;border:1px solid #d8dee4;border-radius:8px}
ul.scopes li{padding:.6rem .8rem;border-top:1px solid #d8dee4}
ul.scopes li:first-child{border-top:0}
ul.scopes code{font-size:.8rem;color:#59636e}
.error{background:#ffebe9;border:1px solid #ffcecb;color:#82071e;padding:.6rem .8rem;
 border-radius:6px;margin-bottom:1rem}
.hint{color:#59636e;font-size:.85rem;margin-top:1rem}
"""

assert "<" not in _CSS  # nothing that could end the <style> element
assert "{%" not in _CSS  # nor the template's raw block around it

# The stylesheet is part of the template's own text, not a value: autoescaping would turn the
# quotes around "Segoe UI" into &#34;, which CSS does not decode, voiding the whole font rule.
# Being a constant, it cannot carry request or user text into the style element.
_TEMPLATES = {
    "base.html": """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · {{ brand }}</title><style>{% raw %}"""
    + _CSS
    + """{% endraw %}</style></head>
<body><main><div class="brand">{{ brand }}</div>
{% block body %}{% endblock %}</main></body></html>""",
    "login.html": """{% extends "base.html" %}{% block body %}
<h1>Sign in</h1>
<p class="sub"><strong>{{ client_name }}</strong> wants to connect to your {{ brand }} account.</p>
{% if error %}<div class="error" role="alert">{{ error }}</div>{% endif %}
<form method="post" action="{{ action }}">
<input type="hidden" name="request_id" value="{{ request_id }}">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="{{ username }}"
 autocomplete="username" autofocus required>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<div class="actions"><button class="primary" type="submit">Sign in</button></div>
</form>
<p class="hint">Demo accounts: alice / wonderland, bob / builder.</p>
{% endblock %}""",
    "consent.html": """{% extends "base.html" %}{% block body %}
<h1>Authorize {{ client_name }}</h1>
<p class="sub">Signed in to {{ brand }} as <strong>{{ username }}</strong>.
{{ client_name }} is asking to:</p>
<ul class="scopes">{% for scope, text in scopes %}
<li>{{ text }}<br><code>{{ scope }}</code></li>{% endfor %}
</ul>
<form method="post" action="{{ action }}">
<input type="hidden" name="request_id" value="{{ request_id }}">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<div class="actions">
<button class="secondary" type="submit" name="decision" value="deny">Deny</button>
<button class="primary" type="submit" name="decision" value="allow">Allow</button>
</div></form>
<p class="hint">You will be sent back to {{ redirect_host }}.</p>
{% endblock %}""",
    "error.html": """{% extends "base.html" %}{% block body %}
<h1>{{ title }}</h1>
<div class="error" role="alert">{{ message }}</div>
<p class="hint">You can close this page.</p>
{% endblock %}""",
}

_templates = jinja2.Environment(loader=jinja2.DictLoader(_TEMPLATES), autoescape=True)

_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",  # no clickjacking of the consent page (RFC 6749 §10.13)
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


def _page(name: str, status: int = 200, *, brand: str = "Demo", **context: Any) -> HTMLResponse:
    html = _templates.get_template(name).render(brand=brand, **context)
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)


def _error_page(message: str, status: int = 400) -> HTMLResponse:
    return _page("error.html", status, title="Authorization error", message=message)


class DemoProvider:
    """An in-memory OAuth 2.0 provider with an items API, served by its Starlette ``app``.

    Two users exist from the start: alice / wonderland and bob / builder. Register an OAuth
    client before running a code flow; flip ``config`` fields at any time to simulate other
    providers' quirks and faults.

    ```python
    provider = DemoProvider()
    provider.register_client("app", "s3cret", ["http://127.0.0.1:8000/oauth/callback"])
    key = provider.issue_api_key("alice")
    async with serve_app(provider.app) as base_url:
        ...
    provider.config.token_endpoint_fault = "500"
    ```

    Args:
        config: the switches; defaults to ``ProviderConfig()``.
    """

    def __init__(self, config: ProviderConfig | None = None) -> None:
        self.config = config if config is not None else ProviderConfig()
        self._lock = threading.RLock()
        self._stats = ProviderStats()
        self._clients: dict[str, _Client] = {}
        self._users: dict[str, _User] = {}
        self._api_keys: dict[str, str] = {}
        self._pending: dict[str, _Pending] = {}
        self._codes: dict[str, _Code] = {}
        self._access_tokens: dict[str, _AccessToken] = {}
        self._refresh_tokens: dict[str, _RefreshToken] = {}
        self._items: dict[str, list[dict[str, Any]]] = {}
        self.add_user("alice", "wonderland", "Alice Liddell", "alice@example.com")
        self.add_user("bob", "builder", "Bob Builder", "bob@example.com")
        self._add_item("alice", "Follow the white rabbit")
        self._add_item("alice", "Have tea with the Hatter")
        self._add_item("bob", "Fix the roof")
        self.app = Starlette(
            routes=[
                Route("/oauth/authorize", self._authorize, methods=["GET"]),
                Route("/oauth/authorize/login", self._login, methods=["POST"]),
                Route("/oauth/authorize/consent", self._consent, methods=["POST"]),
                Route("/oauth/token", self._token, methods=["POST"]),
                Route("/oauth/revoke", self._revoke, methods=["POST"]),
                Route("/oauth/userinfo", self._userinfo, methods=["GET"]),
                Route("/oauth/register", self._register, methods=["POST"]),
                Route("/oauth/introspect", self._introspect, methods=["POST"]),
                Route("/.well-known/oauth-authorization-server", self._metadata, methods=["GET"]),
                Route("/.well-known/openid-configuration", self._metadata, methods=["GET"]),
                Route("/api/me", self._api_me, methods=["GET"]),
                Route("/api/items", self._api_items, methods=["GET", "POST"]),
                Route("/api/rate-limited", self._api_rate_limited, methods=["GET"]),
            ]
        )

    # -- helpers for tests, benchmarks and the demo -------------------------------------------

    @property
    def stats(self) -> ProviderStats:
        """The live request counters."""
        return self._stats

    def reset_stats(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._stats = ProviderStats()

    def register_client(
        self,
        client_id: str,
        client_secret: str | None,
        redirect_uris: list[str],
        *,
        name: str | None = None,
        brand: str = "Demo",
        scopes: Mapping[str, str] | None = None,
    ) -> None:
        """Register (or replace) an OAuth client; a None secret makes a public client.

        Args:
            name: who is asking, on the sign-in and consent pages; defaults to ``client_id``.
            brand: the name the pages carry, whose account the user signs in to: "Demo", or
                the app the provider stands in for ("GitHub (demo)").
            scopes: the scopes this client may ask for, with the words the consent page
                shows for each; defaults to :data:`SCOPES`.

        Raises:
            ValueError: a redirect URI is not absolute or has a fragment (RFC 6749 §3.1.2),
                or ``scopes`` is empty.
        """
        for uri in redirect_uris:
            parts = urlsplit(uri)
            if not parts.scheme or not parts.netloc or parts.fragment:
                raise ValueError(f"redirect URI must be absolute, without a fragment: {uri!r}")
        allowed = dict(SCOPES if scopes is None else scopes)
        if not allowed:
            raise ValueError("a client needs at least one scope")
        client = _Client(
            client_id, client_secret, list(redirect_uris), name or client_id, brand, allowed
        )
        with self._lock:
            self._clients[client_id] = client

    def add_user(self, username: str, password: str, name: str, email: str) -> None:
        """Add (or replace) a user who can sign in on the login page and with HTTP Basic."""
        sub = hashlib.sha256(f"demo-user:{username}".encode()).hexdigest()[:24]
        with self._lock:
            self._users[username] = _User(username, password, name, email, sub)
            self._items.setdefault(username, [])

    def issue_api_key(self, username: str) -> str:
        """A new API key for the user, ``demo_`` and 24 URL-safe characters."""
        with self._lock:
            if username not in self._users:
                raise ValueError(f"unknown user {username!r}")
            key = "demo_" + secrets.token_urlsafe(18)
            self._api_keys[key] = username
            return key

    def issue_tokens(
        self,
        username: str,
        *,
        client_id: str,
        scopes: Iterable[str] | None = None,
        resource: str | None = None,
    ) -> dict[str, Any]:
        """Mint a token response without the browser flow, as if the user had consented;
        bound to ``resource`` (RFC 8707) when given."""
        with self._lock:
            if username not in self._users:
                raise ValueError(f"unknown user {username!r}")
            client = self._clients.get(client_id)
            if client is None:
                raise ValueError(f"unknown client {client_id!r}")
            granted = tuple(scopes) if scopes is not None else tuple(client.scopes)
            unknown = [s for s in granted if s not in client.scopes]
            if unknown:
                raise ValueError(f"unknown scopes {unknown}")
            grant_id = secrets.token_hex(8)
            return self._issue(
                client_id, username, granted, grant_id, refresh_scopes=granted, resource=resource
            )

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far expired, to force a refresh."""
        with self._lock:
            now = time.monotonic()
            for token in self._access_tokens.values():
                token.expires_at = min(token.expires_at, now)

    # -- state changes (no I/O, under the lock) -----------------------------------------------

    def _add_item(self, username: str, name: str) -> dict[str, Any]:
        item = {"id": "itm_" + secrets.token_urlsafe(9), "name": name, "created_at": _now_iso()}
        with self._lock:
            self._items.setdefault(username, []).append(item)
        return item

    def _issue(
        self,
        client_id: str,
        username: str,
        scopes: tuple[str, ...],
        grant_id: str,
        *,
        refresh_scopes: tuple[str, ...] | None,
        resource: str | None = None,
    ) -> dict[str, Any]:
        """A token response, RFC 6749 §5.1; a refresh token only when refresh_scopes is given.
        The tokens are bound to ``resource`` (RFC 8707 §2) when one was asked for."""
        ttl = self.config.access_token_ttl
        access = secrets.token_urlsafe(32)
        self._access_tokens[access] = _AccessToken(
            client_id, username, scopes, time.monotonic() + ttl, grant_id, resource
        )
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer"}
        if not self.config.omit_expires_in:
            body["expires_in"] = int(ttl)
        aud = self.config.token_response_aud
        if aud is not None and (aud != "resource" or resource is not None):
            body["aud"] = resource if aud == "resource" else aud
        if refresh_scopes is not None:
            value = secrets.token_urlsafe(32)
            self._refresh_tokens[value] = _RefreshToken(
                client_id, username, refresh_scopes, grant_id, resource=resource
            )
            body["refresh_token"] = value
        body["scope"] = " ".join(scopes)
        return body

    def _revoke_grant(self, grant_id: str) -> None:
        """Revoke every token descending from one authorization grant."""
        for store in (self._access_tokens, self._refresh_tokens):
            for value in [v for v, t in store.items() if t.grant_id == grant_id]:
                del store[value]

    def _validate_authorization(self, query: dict[str, str], repeated: set[str]) -> _Pending:
        """Check an authorization request, RFC 6749 §4.1.1 and RFC 7636 §4.3."""
        client_id = query.get("client_id")
        if "client_id" in repeated or "redirect_uri" in repeated:
            raise _PageError("client_id and redirect_uri must each appear once.")
        if not client_id:
            raise _PageError("The request has no client_id.")
        client = self._clients.get(client_id)
        if client is None:
            raise _PageError(f"Unknown client {client_id!r}.")
        redirect_uri = query.get("redirect_uri")
        if redirect_uri is None:
            # RFC 6749 §3.1.2.3: may be omitted only when exactly one is registered.
            if len(client.redirect_uris) != 1:
                raise _PageError("The request has no redirect_uri.")
            redirect_uri, given = client.redirect_uris[0], False
        elif redirect_uri not in client.redirect_uris:
            # RFC 9700 §4.1.3: exact string match; RFC 6749 §4.1.2.1: never redirect then.
            raise _PageError(
                f"The redirect_uri {redirect_uri!r} is not registered for client {client_id!r}."
            )
        else:
            given = True
        state = query.get("state")

        def fail(error: str, description: str) -> _RedirectError:
            return _RedirectError(error, description, redirect_uri, state)

        if repeated:
            raise fail("invalid_request", f"repeated parameters: {', '.join(sorted(repeated))}")
        response_type = query.get("response_type")
        if response_type is None:
            raise fail("invalid_request", "response_type is required")
        if response_type != "code":
            raise fail("unsupported_response_type", "only response_type=code is supported")
        scopes = _parse_scope(query.get("scope")) or client.default_scopes
        unknown = [s for s in scopes if s not in client.scopes]
        if unknown:
            raise fail("invalid_scope", f"unknown scope: {' '.join(unknown)}")
        challenge = query.get("code_challenge")
        method = query.get("code_challenge_method", "plain")  # RFC 7636 §4.3 default
        if challenge is None:
            if self.config.require_pkce:
                raise fail("invalid_request", "code_challenge is required (PKCE, S256)")
        elif method != "S256":
            # RFC 7636 §4.4.1: reject transformation algorithms we do not support.
            raise fail("invalid_request", "transform algorithm not supported: use S256")
        elif not _CHALLENGE_RE.fullmatch(challenge):
            raise fail("invalid_request", "code_challenge is not a S256 challenge")
        resource = query.get("resource")
        if "resource" in repeated:
            raise fail("invalid_target", "one resource at a time (RFC 8707 §2)")
        if resource is not None and not _is_resource(resource):
            # RFC 8707 §2: an absolute URI without a fragment.
            raise fail("invalid_target", "resource must be an absolute URI without a fragment")
        return _Pending(
            csrf_token=secrets.token_urlsafe(24),
            client_id=client_id,
            redirect_uri=redirect_uri,
            redirect_uri_given=given,
            scopes=scopes,
            state=state,
            code_challenge=challenge,
            expires_at=time.monotonic() + _PENDING_TTL,
            resource=resource,
            include_granted=query.get("include_granted_scopes") == "true",
        )

    def _new_code(self, pending: _Pending) -> str:
        """A code for the pending request. With ``include_granted_scopes=true`` (incremental
        authorization, as Google does it) the code extends the user's live grant to this
        client: its scopes join, and it is the same grant (revoking either ends both)."""
        assert pending.username is not None
        scopes, grant_id = pending.scopes, secrets.token_hex(8)
        if pending.include_granted:
            for token in self._refresh_tokens.values():
                if (
                    token.client_id == pending.client_id
                    and token.username == pending.username
                    and not token.rotated
                ):
                    scopes = tuple(dict.fromkeys((*token.scopes, *scopes)))
                    grant_id = token.grant_id
        code = secrets.token_urlsafe(32)
        self._codes[code] = _Code(
            client_id=pending.client_id,
            username=pending.username,
            scopes=scopes,
            redirect_uri=pending.redirect_uri,
            redirect_uri_given=pending.redirect_uri_given,
            code_challenge=pending.code_challenge,
            expires_at=time.monotonic() + self.config.code_ttl,
            grant_id=grant_id,
            resource=pending.resource,
        )
        return code

    def _authenticate_client(self, request: Request, form: dict[str, str]) -> tuple[_Client, str]:
        """Client authentication, RFC 6749 §2.3.1: HTTP Basic or body parameters, not both."""
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        client_id: str | None
        secret: str | None
        if scheme.lower() == "basic":
            if "client_secret" in form:
                raise _OAuthError(
                    "invalid_request", "use one client authentication method (RFC 6749 §2.3)"
                )
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise self._bad_client("malformed Basic credentials") from exc
            raw_id, sep, raw_secret = decoded.partition(":")
            if not sep:
                raise self._bad_client("malformed Basic credentials")
            # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
            client_id, secret, method = unquote_plus(raw_id), unquote_plus(raw_secret), "basic"
            if form.get("client_id", client_id) != client_id:
                raise _OAuthError("invalid_request", "client_id differs from the Basic user")
        else:
            client_id, secret = form.get("client_id"), form.get("client_secret")
            method = "post" if secret is not None else "none"
        if not client_id:
            raise self._bad_client("no client authentication", basic=True)
        client = self._clients.get(client_id)
        if client is None:
            raise self._bad_client("unknown client", basic=method == "basic")
        if client.client_secret is None:
            if secret:
                raise self._bad_client("public client must not send a secret")
        elif secret is None or not _same(secret, client.client_secret):
            raise self._bad_client("client authentication failed", basic=method == "basic")
        names = {"basic": "client_secret_basic", "post": "client_secret_post", "none": "none"}
        self._stats.token_auth_methods[names[method]] += 1
        return client, names[method]

    def _bad_client(self, description: str, *, basic: bool = False) -> _OAuthError:
        self._stats.failed_auth += 1
        # RFC 6749 §5.2: 401, with a challenge when the client tried the Authorization header.
        return _OAuthError("invalid_client", description, 401, basic_challenge=basic)

    def _exchange_code(self, client: _Client, form: dict[str, str]) -> dict[str, Any]:
        """The authorization code grant, RFC 6749 §4.1.3, with PKCE, RFC 7636 §4.6."""
        value = form.get("code")
        if value is None:
            raise _OAuthError("invalid_request", "code is required")
        code = self._codes.get(value)
        if code is None:
            raise _OAuthError("invalid_grant", "unknown authorization code")
        if code.client_id != client.client_id:
            raise _OAuthError("invalid_grant", "the code was issued to another client")
        if code.used:
            # RFC 6749 §4.1.2: a code used twice revokes the tokens issued from it.
            self._revoke_grant(code.grant_id)
            raise _OAuthError(
                "invalid_grant", "the authorization code was already used; its tokens are revoked"
            )
        code.used = True  # spent by any attempt, right or wrong
        if time.monotonic() > code.expires_at:
            raise _OAuthError("invalid_grant", "the authorization code expired")
        if (code.redirect_uri_given or "redirect_uri" in form) and form.get(
            "redirect_uri"
        ) != code.redirect_uri:
            raise _OAuthError(
                "invalid_grant", "redirect_uri differs from the authorization request's"
            )
        verifier = form.get("code_verifier")
        if code.code_challenge is None:
            if verifier is not None:  # RFC 9700 §2.1.1: no PKCE downgrade
                raise _OAuthError("invalid_request", "code_verifier sent without a code_challenge")
        elif verifier is None:
            raise _OAuthError("invalid_request", "code_verifier is required (RFC 7636 §4.5)")
        elif not _VERIFIER_RE.fullmatch(verifier):
            raise _OAuthError("invalid_request", "code_verifier is malformed (RFC 7636 §4.1)")
        elif not _same(_s256(verifier), code.code_challenge):
            raise _OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        resource = self._check_target(form, code.resource)
        body = self._issue(
            client.client_id, code.username, code.scopes, code.grant_id,
            refresh_scopes=code.scopes, resource=resource,
        )  # fmt: skip
        if "openid" in code.scopes:  # OpenID Connect Core §3.1.3.3
            body["id_token"] = self._id_token(client, code.username)
        return body

    def _id_token(self, client: _Client, username: str) -> str:
        """An ID token (OpenID Connect Core §2), HS256-signed with the client's secret."""
        user = self._users[username]
        now = int(time.time())
        claims = {
            "iss": self.config.issuer or "demo", "sub": user.sub, "aud": client.client_id,
            "iat": now, "exp": now + 600, "email": user.email, "name": user.name,
            "preferred_username": user.username,
        }  # fmt: skip

        def part(value: dict[str, Any]) -> str:
            raw = json.dumps(value, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
        key = (client.client_secret or "").encode()
        mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    @staticmethod
    def _check_target(form: dict[str, str], granted: str | None) -> str | None:
        """RFC 8707 §2.2: a token request may name the resource the grant was for, no other."""
        asked = form.get("resource")
        if asked is not None and asked != granted:
            raise _OAuthError("invalid_target", "the resource differs from the grant's")
        return granted

    def _refresh(self, client: _Client, form: dict[str, str]) -> dict[str, Any]:
        """The refresh token grant, RFC 6749 §6."""
        value = form.get("refresh_token")
        if value is None:
            raise _OAuthError("invalid_request", "refresh_token is required")
        token = self._refresh_tokens.get(value)
        if token is None:
            raise _OAuthError("invalid_grant", "unknown or revoked refresh token")
        if token.client_id != client.client_id:
            raise _OAuthError("invalid_grant", "the refresh token was issued to another client")
        if token.rotated:
            if self.config.revoke_on_refresh_reuse:
                self._revoke_grant(token.grant_id)  # RFC 9700 §4.14.2
            raise _OAuthError("invalid_grant", "the refresh token was already used (rotated)")
        scopes = token.scopes
        if "scope" in form:
            requested = _parse_scope(form["scope"])
            extra = [s for s in requested if s not in token.scopes]
            if extra:  # RFC 6749 §6: no scope beyond the original grant
                raise _OAuthError("invalid_scope", f"scope beyond the grant: {' '.join(extra)}")
            scopes = requested
        resource = self._check_target(form, token.resource)
        if self.config.rotate_refresh_tokens:
            token.rotated = True
            # RFC 6749 §6: the new refresh token keeps the original grant's scope.
            return self._issue(
                client.client_id,
                token.username,
                scopes,
                token.grant_id,
                refresh_scopes=token.scopes,
                resource=resource,
            )
        # Without rotation no refresh_token is sent: the client keeps the one it has.
        return self._issue(
            client.client_id, token.username, scopes, token.grant_id, refresh_scopes=None,
            resource=resource,
        )  # fmt: skip

    def _principal_from_token(self, value: str) -> _Principal:
        token = self._access_tokens.get(value)
        if token is None:
            raise self._invalid_token("unknown or revoked access token")
        if time.monotonic() >= token.expires_at:
            raise self._invalid_token("the access token expired")
        return _Principal(token.username, token.scopes)

    def _invalid_token(self, description: str) -> _ApiError:
        """RFC 6750 §3.1: 401 with a Bearer challenge naming invalid_token."""
        self._stats.failed_auth += 1
        challenge = f'Bearer realm="demo", error="invalid_token", error_description="{description}"'
        return _ApiError(401, "invalid_token", description, {"WWW-Authenticate": challenge})

    def _authenticate_api(self, request: Request) -> _Principal:
        """An API caller by X-API-Key, Bearer token (RFC 6750 §2.1) or HTTP Basic."""
        key = request.headers.get("x-api-key")
        with self._lock:
            if key is not None:
                username = self._api_keys.get(key)
                if username is None:
                    self._stats.failed_auth += 1
                    raise _ApiError(401, "invalid_api_key", "unknown API key")
                return _Principal(username, tuple(SCOPES))
            scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return self._principal_from_token(credentials.strip())
            if scheme.lower() == "basic":
                return self._principal_from_basic(credentials.strip())
        challenge = 'Bearer realm="demo"'  # RFC 6750 §3.1: no error code without credentials
        raise _ApiError(
            401, "unauthorized", "credentials are required", {"WWW-Authenticate": challenge}
        )

    def _principal_from_basic(self, credentials: str) -> _Principal:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, _, password = decoded.partition(":")
        user = self._users.get(username)
        if user is None or not _same(password, user.password):
            self._stats.failed_auth += 1
            raise _ApiError(
                401,
                "invalid_credentials",
                "wrong username or password",
                {"WWW-Authenticate": 'Basic realm="demo", charset="UTF-8"'},
            )
        return _Principal(username, tuple(SCOPES))

    # -- URLs --------------------------------------------------------------------------------

    def _issuer(self, request: Request) -> str:
        """The issuer: config.issuer, else the request's origin plus the mount's root_path."""
        if self.config.issuer:
            return self.config.issuer.rstrip("/")
        root_path: str = request.scope.get("root_path", "")
        return str(request.url.replace(path=root_path, query="", fragment="")).rstrip("/")

    @staticmethod
    def _local(request: Request, path: str) -> str:
        root_path: str = request.scope.get("root_path", "")
        return root_path.rstrip("/") + path

    def _redirect(
        self, request: Request, redirect_uri: str, params: dict[str, str], status: int
    ) -> RedirectResponse:
        if self.config.send_iss_in_redirect:
            params = {**params, "iss": self._issuer(request)}  # RFC 9207 §2
        return RedirectResponse(_with_query(redirect_uri, params), status_code=status)

    def _error_redirect(self, request: Request, exc: _RedirectError, status: int) -> Response:
        params = {"error": exc.error, "error_description": exc.description}
        if exc.state is not None:
            params["state"] = exc.state
        return self._redirect(request, exc.redirect_uri, params, status)

    def _code_redirect(self, request: Request, pending: _Pending, status: int) -> Response:
        with self._lock:
            params = {"code": self._new_code(pending)}
        if pending.state is not None:
            params["state"] = pending.state
        return self._redirect(request, pending.redirect_uri, params, status)

    # -- authorization endpoint and pages ----------------------------------------------------

    async def _client_document(self, client_id: str | None, *, cached: bool) -> str | None:
        """Fetch and keep the client a URL-shaped ``client_id`` names, when client ID metadata
        documents are on (``cached``: only when not known yet); why it cannot be used, or None.
        """
        if not self.config.client_id_metadata_documents or not is_document_url(client_id):
            return None
        assert client_id is not None
        if cached:
            with self._lock:
                if client_id in self._clients:
                    return None
        try:
            document = await fetch_client_document(
                client_id, timeout=self.config.client_document_timeout
            )
            self.register_client(client_id, None, document.redirect_uris, name=document.client_name)
        except (ClientDocumentError, ValueError) as exc:
            with self._lock:
                self._clients.pop(client_id, None)  # a document that went bad is forgotten
            return str(exc)
        with self._lock:
            self._stats.client_documents_fetched += 1
        return None

    async def _authorize(self, request: Request) -> Response:
        """The authorization endpoint, RFC 6749 §4.1.1."""
        query, repeated = _single_values(request.query_params.multi_items())
        if "client_id" not in repeated:
            # A client ID metadata document is fetched on every request (the draft:
            # the redirect_uri is checked against the document as it is now).
            refused = await self._client_document(query.get("client_id"), cached=False)
            if refused is not None:
                with self._lock:
                    self._stats.authorize_requests += 1
                return _error_page(
                    f"The client metadata document {query.get('client_id')!r} cannot be used: "
                    f"{refused}."
                )
        with self._lock:
            self._stats.authorize_requests += 1
            now = time.monotonic()
            for request_id in [k for k, p in self._pending.items() if p.expires_at < now]:
                del self._pending[request_id]
            try:
                pending = self._validate_authorization(query, repeated)
            except _PageError as exc:
                return _error_page(str(exc))
            except _RedirectError as exc:
                return self._error_redirect(request, exc, 302)
            if self.config.deny_all_consent:
                denied = _RedirectError(
                    "access_denied",
                    "the user denied the request",
                    pending.redirect_uri,
                    pending.state,
                )
                return self._error_redirect(request, denied, 302)
            if self.config.auto_consent:
                if self.config.auto_consent_user not in self._users:
                    return _error_page(
                        f"Unknown auto_consent_user {self.config.auto_consent_user!r}.", 500
                    )
                pending.username = self.config.auto_consent_user
                return self._code_redirect(request, pending, 302)
            request_id = secrets.token_urlsafe(24)
            self._pending[request_id] = pending
        return self._login_page(request, request_id, pending)

    def _login_page(
        self,
        request: Request,
        request_id: str,
        pending: _Pending,
        error: str = "",
        username: str = "",
    ) -> Response:
        client = self._client_of(pending)
        return _page(
            "login.html",
            title="Sign in",
            brand=client.brand,
            client_name=client.name,
            action=self._local(request, "/oauth/authorize/login"),
            request_id=request_id,
            csrf_token=pending.csrf_token,
            error=error,
            username=username,
        )

    def _client_of(self, pending: _Pending) -> _Client:
        """The client a sign-in request came from (as registered now), for its pages."""
        with self._lock:
            client = self._clients.get(pending.client_id)
        if client is None:  # unregistered since the request began: the token step refuses it
            return _Client(pending.client_id, None, [], pending.client_id, "Demo", dict(SCOPES))
        return client

    async def _pending_from_form(
        self, request: Request
    ) -> tuple[dict[str, str], str, _Pending] | Response:
        try:
            form, _ = await _read_form(request)
        except _OAuthError as exc:
            return _error_page(exc.description)
        request_id = form.get("request_id", "")
        with self._lock:
            pending = self._pending.get(request_id)
            if pending is None or pending.expires_at < time.monotonic():
                self._pending.pop(request_id, None)
                return _error_page(
                    "This sign-in request expired or was already used. Start again from the app."
                )
        if not _same(form.get("csrf_token", ""), pending.csrf_token):
            return _error_page(
                "The form is stale or was not sent by this page (bad CSRF token).", 403
            )
        return form, request_id, pending

    async def _login(self, request: Request) -> Response:
        """The login form's target: check the password, then show the consent page."""
        found = await self._pending_from_form(request)
        if isinstance(found, Response):
            return found
        form, request_id, pending = found
        username = form.get("username", "")
        with self._lock:
            user = self._users.get(username)
            if user is None or not _same(form.get("password", ""), user.password):
                self._stats.failed_auth += 1
                user = None
            else:
                pending.username = username
        if user is None:
            return self._login_page(
                request, request_id, pending, "Wrong username or password.", username
            )
        client = self._client_of(pending)
        scopes = [(scope, client.scopes.get(scope, scope)) for scope in pending.scopes]
        return _page(
            "consent.html",
            title="Authorize",
            brand=client.brand,
            client_name=client.name,
            username=username,
            scopes=scopes,
            action=self._local(request, "/oauth/authorize/consent"),
            request_id=request_id,
            csrf_token=pending.csrf_token,
            redirect_host=urlsplit(pending.redirect_uri).netloc,
        )

    async def _consent(self, request: Request) -> Response:
        """The consent form's target: Allow sends a code, Deny sends access_denied (§4.1.2.1)."""
        found = await self._pending_from_form(request)
        if isinstance(found, Response):
            return found
        form, request_id, pending = found
        if pending.username is None:
            return _error_page("Sign in first.")
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            return _error_page("Choose Allow or Deny.")
        with self._lock:
            if self._pending.pop(request_id, None) is None:  # single use
                return _error_page("This sign-in request was already answered.")
        if decision == "deny":
            denied = _RedirectError(
                "access_denied", "the user denied the request", pending.redirect_uri, pending.state
            )
            return self._error_redirect(request, denied, 303)
        return self._code_redirect(request, pending, 303)

    # -- token and revocation endpoints --------------------------------------------------------

    def _token_body(self, body: dict[str, Any], status: int = 200) -> Response:
        if self.config.form_encoded_token_response:
            text = urlencode({k: str(v) for k, v in body.items()})
            return Response(
                text, status, headers=_NO_STORE, media_type="application/x-www-form-urlencoded"
            )
        return JSONResponse(body, status, headers=_NO_STORE)

    def _token_error(self, exc: _OAuthError) -> Response:
        """An error response, RFC 6749 §5.2."""
        response = self._token_body(
            {"error": exc.error, "error_description": exc.description}, exc.status
        )
        if exc.basic_challenge:
            response.headers["WWW-Authenticate"] = 'Basic realm="demo"'
        return response

    async def _fault(self, fault: str) -> Response | None:
        if fault == "500":
            return HTMLResponse("<h1>500 Internal Server Error</h1>", 500)
        if fault == "invalid_json":
            return Response('{"access_token": "', 200, media_type="application/json")
        if fault == "invalid_grant":
            return self._token_error(_OAuthError("invalid_grant", "the grant was rejected"))
        if fault == "timeout":
            await asyncio.sleep(self.config.fault_delay)
            return None  # slow, then answers normally
        raise ValueError(f"unknown token_endpoint_fault {fault!r}")

    async def _token(self, request: Request) -> Response:
        """The token endpoint, RFC 6749 §3.2."""
        try:
            form, repeated = await _read_form(request)
        except _OAuthError as exc:
            return self._token_error(exc)
        grant_type = form.get("grant_type", "")
        with self._lock:
            self._stats.token_requests[grant_type or "(none)"] += 1
            if grant_type == "refresh_token":
                self._stats.refresh_requests += 1
        fault = self.config.token_endpoint_fault
        if fault is not None and (
            not self.config.fault_only_refresh or grant_type == "refresh_token"
        ):
            faulted = await self._fault(fault)
            if faulted is not None:
                return faulted
        await self._client_document(form.get("client_id"), cached=True)
        try:
            with self._lock:
                client, _ = self._authenticate_client(request, form)
                if repeated:  # RFC 6749 §3.2: parameters MUST NOT be repeated
                    raise _OAuthError("invalid_request", f"repeated: {', '.join(sorted(repeated))}")
                if grant_type == "authorization_code":
                    body = self._exchange_code(client, form)
                elif grant_type == "refresh_token":
                    body = self._refresh(client, form)
                elif not grant_type:
                    raise _OAuthError("invalid_request", "grant_type is required")
                else:
                    raise _OAuthError("unsupported_grant_type", f"{grant_type!r} is not supported")
        except _OAuthError as exc:
            return self._token_error(exc)
        return self._token_body(body)

    async def _revoke(self, request: Request) -> Response:
        """The revocation endpoint, RFC 7009 §2.1: 200 whether or not the token was valid."""
        try:
            form, _ = await _read_form(request)
            await self._client_document(form.get("client_id"), cached=True)
            with self._lock:
                client, _ = self._authenticate_client(request, form)
                value = form.get("token")
                if value is None:
                    raise _OAuthError("invalid_request", "token is required")
                self._stats.revocations += 1
                access = self._access_tokens.get(value)
                refresh = self._refresh_tokens.get(value)
                # The hint only orders the lookup (RFC 7009 §2.1); both kinds are searched.
                if refresh is not None and refresh.client_id == client.client_id:
                    # RFC 7009 §2.1: revoking a refresh token ends its grant's access tokens too.
                    self._revoke_grant(refresh.grant_id)
                elif access is not None and access.client_id == client.client_id:
                    del self._access_tokens[value]
        except _OAuthError as exc:
            return self._token_error(exc)
        return Response(status_code=200, headers=_NO_STORE)

    # -- userinfo and metadata -----------------------------------------------------------------

    async def _userinfo(self, request: Request) -> Response:
        """The user the Bearer token belongs to (OpenID Connect Core §5.3 shape)."""
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not credentials.strip():
                raise _ApiError(
                    401,
                    "invalid_request",
                    "a Bearer token is required",
                    {"WWW-Authenticate": 'Bearer realm="demo"'},
                )
            with self._lock:
                principal = self._principal_from_token(credentials.strip())
            return JSONResponse(self._profile(principal))
        except _ApiError as exc:
            return self._api_error(exc)

    def _profile(self, principal: _Principal) -> dict[str, Any]:
        user = self._users[principal.username]
        return {
            "sub": user.sub,
            "name": user.name,
            "email": user.email,
            "preferred_username": user.username,
        }

    async def _metadata(self, request: Request) -> Response:
        """Authorization server metadata, RFC 8414 §2."""
        issuer = self._issuer(request)
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/oauth/authorize",
                "token_endpoint": f"{issuer}/oauth/token",
                "revocation_endpoint": f"{issuer}/oauth/revoke",
                "userinfo_endpoint": f"{issuer}/oauth/userinfo",
                "scopes_supported": list(SCOPES),
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"] if self.config.advertise_s256 else [],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "none",
                ],
                "revocation_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "none",
                ],
                "authorization_response_iss_parameter_supported": self.config.send_iss_in_redirect,
                "introspection_endpoint": f"{issuer}/oauth/introspect",
                "client_id_metadata_document_supported": self.config.client_id_metadata_documents,
                **(
                    {"registration_endpoint": f"{issuer}/oauth/register"}
                    if self.config.dynamic_registration
                    else {}
                ),
            }
        )

    # -- dynamic registration and introspection ------------------------------------------------

    async def _register(self, request: Request) -> Response:
        """Dynamic client registration, RFC 7591 §3: a JSON client metadata document in, the
        client's id (and secret, unless it asked for ``none``) out, 201."""
        if not self.config.dynamic_registration:
            return JSONResponse({"error": "not_found"}, 404)

        def refuse(error: str, description: str) -> Response:  # RFC 7591 §3.2.2
            return JSONResponse({"error": error, "error_description": description}, 400)

        try:
            metadata = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return refuse("invalid_client_metadata", "the body must be a JSON object")
        if not isinstance(metadata, dict):
            return refuse("invalid_client_metadata", "the body must be a JSON object")
        uris = metadata.get("redirect_uris")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            return refuse("invalid_redirect_uri", "redirect_uris must be a non-empty list")
        method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
        if method not in ("client_secret_basic", "client_secret_post", "none"):
            return refuse("invalid_client_metadata", f"unsupported auth method {method!r}")
        name = metadata.get("client_name")
        client_id = "dyn_" + secrets.token_urlsafe(12)
        secret = None if method == "none" else secrets.token_urlsafe(24)
        try:
            self.register_client(
                client_id, secret, uris, name=name if isinstance(name, str) else None
            )
        except ValueError as exc:
            return refuse("invalid_redirect_uri", str(exc))
        with self._lock:
            self._stats.registrations += 1
        body: dict[str, Any] = {
            "client_id": client_id,
            "client_id_issued_at": int(time.time()),
            "redirect_uris": uris,
            "token_endpoint_auth_method": method,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }
        if secret is not None:
            body["client_secret"] = secret
            body["client_secret_expires_at"] = 0  # RFC 7591 §3.2.1: never
        if isinstance(name, str):
            body["client_name"] = name
        return JSONResponse(body, 201, headers=_NO_STORE)

    def introspect(self, token: str) -> dict[str, Any]:
        """What RFC 7662 §2.2 says about ``token``: ``{"active": false}`` unless it is a live
        access token; then its client, scopes, user, expiry and resource (``aud``)."""
        with self._lock:
            self._stats.introspections += 1
            found = self._access_tokens.get(token)
            if found is None or time.monotonic() >= found.expires_at:
                return {"active": False}
            user = self._users[found.username]
            left = found.expires_at - time.monotonic()
            body: dict[str, Any] = {
                "active": True,
                "client_id": found.client_id,
                "scope": " ".join(found.scopes),
                "sub": user.sub,
                "username": user.username,
                "token_type": "Bearer",
                "exp": int(time.time() + left),
            }
            if found.resource is not None:
                body["aud"] = found.resource
            return body

    async def _introspect(self, request: Request) -> Response:
        """The introspection endpoint, RFC 7662 §2: a registered client asks about a token."""
        try:
            form, _ = await _read_form(request)
            with self._lock:
                self._authenticate_client(request, form)
            token = form.get("token")
            if token is None:
                raise _OAuthError("invalid_request", "token is required")
        except _OAuthError as exc:
            return self._token_error(exc)
        return JSONResponse(self.introspect(token), headers=_NO_STORE)

    # -- protected API -------------------------------------------------------------------------

    @staticmethod
    def _api_error(exc: _ApiError) -> Response:
        return JSONResponse(
            {"error": exc.error, "error_description": exc.description},
            exc.status,
            headers=exc.headers,
        )

    @staticmethod
    def _require(principal: _Principal, scope: str) -> None:
        """RFC 6750 §3.1: 403 insufficient_scope, naming the scope needed."""
        if scope not in principal.scopes:
            challenge = (
                f'Bearer realm="demo", error="insufficient_scope", '
                f'error_description="this needs the {scope} scope", scope="{scope}"'
            )
            raise _ApiError(
                403,
                "insufficient_scope",
                f"this needs the {scope} scope",
                {"WWW-Authenticate": challenge},
            )

    async def _api_me(self, request: Request) -> Response:
        with self._lock:
            self._stats.api_requests += 1
        try:
            principal = self._authenticate_api(request)
            self._require(principal, "profile")
        except _ApiError as exc:
            return self._api_error(exc)
        return JSONResponse(self._profile(principal))

    async def _api_items(self, request: Request) -> Response:
        with self._lock:
            self._stats.api_requests += 1
        try:
            principal = self._authenticate_api(request)
            if request.method == "GET":
                self._require(principal, "items:read")
                return self._list_items(principal, request.query_params.get("limit"))
            self._require(principal, "items:write")
            try:
                payload = json.loads(await request.body())
            except (ValueError, UnicodeDecodeError) as exc:
                raise _ApiError(400, "invalid_request", "the body must be JSON") from exc
            name = payload.get("name") if isinstance(payload, dict) else None
            if not isinstance(name, str) or not name.strip() or len(name) > 200:
                raise _ApiError(
                    400,
                    "invalid_request",
                    '"name" must be a non-empty string of 200 characters at most',
                )
            item = self._add_item(principal.username, name.strip())
            return JSONResponse(item, 201)
        except _ApiError as exc:
            return self._api_error(exc)

    def _list_items(self, principal: _Principal, raw_limit: str | None) -> Response:
        limit = 50
        if raw_limit is not None:
            try:
                limit = int(raw_limit)
            except ValueError:
                limit = 0
            if not 1 <= limit <= 100:
                raise _ApiError(400, "invalid_request", "limit must be an integer from 1 to 100")
        with self._lock:
            items = list(self._items.get(principal.username, []))
        return JSONResponse({"items": items[:limit], "total": len(items)})

    async def _api_rate_limited(self, request: Request) -> Response:
        with self._lock:
            self._stats.api_requests += 1
        return JSONResponse(
            {"error": "rate_limited", "error_description": "too many requests; retry later"},
            429,
            headers={"Retry-After": "1"},
        )


def create_app(config: ProviderConfig | None = None) -> tuple[DemoProvider, Starlette]:
    """A new provider and its ASGI app."""
    provider = DemoProvider(config)
    return provider, provider.app
