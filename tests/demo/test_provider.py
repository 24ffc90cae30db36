"""The demo provider, served by uvicorn on loopback and driven with real HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from starlette.applications import Starlette
from starlette.routing import Mount

from toolauth.connect.serving import serve_app
from toolauth.demo.provider import DemoProvider, ProviderConfig, create_app

CLIENT_ID = "demo-app"
CLIENT_SECRET = "s3cr:t+/= &"  # needs form-urlencoding inside Basic (RFC 6749 §2.3.1)
OTHER_CLIENT_ID = "other-app"
OTHER_SECRET = "other-secret"
REDIRECT_URI = "http://127.0.0.1:9/callback?app=1"
ALL_SCOPES = "profile items:read items:write"


@pytest.fixture
def provider() -> DemoProvider:
    provider = DemoProvider()
    provider.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI, "http://127.0.0.1:9/other"])
    provider.register_client(OTHER_CLIENT_ID, OTHER_SECRET, [REDIRECT_URI])
    provider.register_client("public-app", None, [REDIRECT_URI])
    return provider


@pytest.fixture
async def base_url(provider: DemoProvider) -> AsyncIterator[str]:
    async with serve_app(provider.app) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=5) as client:
        yield client


# -- helpers ------------------------------------------------------------------------------------


def new_pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, create_s256_code_challenge(verifier)


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field in the page"
    return match.group(1)


def action(html: str) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match, "no form in the page"
    return match.group(1)


def redirect_params(response: httpx.Response, target: str = REDIRECT_URI) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(target.split("?")[0] + "?")
    return dict(parse_qsl(urlsplit(location).query))


async def start(client: httpx.AsyncClient, **overrides: str | None) -> httpx.Response:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": ALL_SCOPES,
        "state": "state-123",
        "code_challenge": new_pkce()[1],
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return await client.get(
        "/oauth/authorize", params={k: v for k, v in params.items() if v is not None}
    )


async def login(
    client: httpx.AsyncClient,
    page: httpx.Response,
    username: str = "alice",
    password: str = "wonderland",
) -> httpx.Response:
    html = page.text
    return await client.post(
        action(html),
        data={
            "request_id": field(html, "request_id"),
            "csrf_token": field(html, "csrf_token"),
            "username": username,
            "password": password,
        },
    )


async def decide(
    client: httpx.AsyncClient, consent_page: httpx.Response, decision: str = "allow"
) -> httpx.Response:
    html = consent_page.text
    return await client.post(
        action(html),
        data={
            "request_id": field(html, "request_id"),
            "csrf_token": field(html, "csrf_token"),
            "decision": decision,
        },
    )


async def get_code(
    client: httpx.AsyncClient, challenge: str, username: str = "alice", **overrides: str | None
) -> str:
    page = await start(client, code_challenge=challenge, **overrides)
    assert page.status_code == 200, page.text
    password = {"alice": "wonderland", "bob": "builder"}[username]
    consent = await login(client, page, username, password)
    assert consent.status_code == 200
    params = redirect_params(await decide(client, consent))
    assert params["state"] == overrides.get("state", "state-123")
    return params["code"]


async def exchange(
    client: httpx.AsyncClient,
    code: str,
    verifier: str | None,
    *,
    auth: str = "basic",
    redirect_uri: str | None = REDIRECT_URI,
) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code}
    if redirect_uri is not None:
        data["redirect_uri"] = redirect_uri
    if verifier is not None:
        data["code_verifier"] = verifier
    headers: dict[str, str] = {}
    if auth == "basic":
        headers = basic(CLIENT_ID, CLIENT_SECRET)
    else:
        data |= {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    return await client.post("/oauth/token", data=data, headers=headers)


async def tokens(client: httpx.AsyncClient, **overrides: str | None) -> dict[str, Any]:
    verifier, challenge = new_pkce()
    response = await exchange(client, await get_code(client, challenge, **overrides), verifier)
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(client: httpx.AsyncClient, refresh_token: str, **extra: str) -> httpx.Response:
    return await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, **extra},
        headers=basic(CLIENT_ID, CLIENT_SECRET),
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


# -- authorization code flow --------------------------------------------------------------------


async def test_full_code_flow_with_client_secret_basic(
    client: httpx.AsyncClient, provider: DemoProvider
) -> None:
    """RFC 6749 §4.1: authorize, sign in, consent, code, token; PKCE S256 (RFC 7636 §4.6)."""
    verifier, challenge = new_pkce()
    page = await start(client, code_challenge=challenge)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Sign in" in page.text and CLIENT_ID in page.text
    consent = await login(client, page)
    assert consent.status_code == 200
    for scope in ALL_SCOPES.split():
        assert f"<code>{scope}</code>" in consent.text
    redirect = await decide(client, consent)
    params = redirect_params(redirect)
    assert redirect.status_code == 303
    assert params["app"] == "1"  # the redirect URI's own query is kept (RFC 6749 §3.1.2)
    assert params["state"] == "state-123"
    assert "iss" not in params

    response = await exchange(client, params["code"], verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == ALL_SCOPES
    assert body["access_token"] != body["refresh_token"]
    assert len(body["access_token"]) >= 40
    assert (await client.get("/api/me", headers=bearer(body["access_token"]))).status_code == 200
    assert provider.stats.authorize_requests == 1
    assert provider.stats.token_requests["authorization_code"] == 1
    assert provider.stats.token_auth_methods["client_secret_basic"] == 1


async def test_code_exchange_with_client_secret_post(
    client: httpx.AsyncClient, provider: DemoProvider
) -> None:
    verifier, challenge = new_pkce()
    response = await exchange(client, await get_code(client, challenge), verifier, auth="post")
    assert response.status_code == 200, response.text
    assert provider.stats.token_auth_methods["client_secret_post"] == 1


async def test_public_client_authenticates_by_client_id_only(client: httpx.AsyncClient) -> None:
    verifier, challenge = new_pkce()
    code = await get_code(client, challenge, client_id="public-app")
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_id": "public-app",
    }
    response = await client.post("/oauth/token", data=data)
    assert response.status_code == 200, response.text


async def test_wrong_password_shows_the_login_page_again(
    client: httpx.AsyncClient, provider: DemoProvider
) -> None:
    page = await start(client)
    again = await login(client, page, password="nope")
    assert again.status_code == 200
    assert "Wrong username or password" in again.text
    assert 'name="username"' in again.text
    assert provider.stats.failed_auth == 1
    consent = await login(client, again)
    assert "Allow" in consent.text


async def test_bad_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    page = await start(client)
    response = await client.post(
        action(page.text),
        data={
            "request_id": field(page.text, "request_id"),
            "csrf_token": "forged",
            "username": "alice",
            "password": "wonderland",
        },
    )
    assert response.status_code == 403
    assert "location" not in response.headers


async def test_a_consent_can_be_answered_once(client: httpx.AsyncClient) -> None:
    consent = await login(client, await start(client))
    assert (await decide(client, consent)).status_code == 303
    again = await decide(client, consent)
    assert again.status_code == 400
    assert "location" not in again.headers


async def test_pages_escape_values(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    provider.register_client("<script>x</script>", "secret", [REDIRECT_URI])
    page = await start(client, client_id="<script>x</script>")
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text


FONT = 'font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif'


def style_of(html: str) -> str:
    found = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(found) == 1, "one style element"
    return found[0]


async def test_pages_emit_their_css_as_css(client: httpx.AsyncClient) -> None:
    """The stylesheet reaches the browser as CSS: HTML-escaped quotes (&#34;Segoe UI&#34;)
    are not CSS and void the whole font rule, leaving the browser's serif default."""
    page = await start(client)
    consent = await login(client, page)
    wrong = await login(client, await start(client), password="nope")
    error = await client.get("/oauth/authorize", params={"client_id": "nobody"})
    for response in (page, consent, wrong, error):
        style = style_of(response.text)
        assert FONT in style
        assert "&#34;" not in style and "&quot;" not in style and "&amp;" not in style


async def test_pages_carry_the_clients_name_brand_and_scopes(
    client: httpx.AsyncClient, provider: DemoProvider
) -> None:
    """A client registered for a simulated app: its pages carry that app's name and list the
    scopes it asks for in words; scopes outside its set are refused."""
    provider.register_client(
        "sim-app", "secret", [REDIRECT_URI], name="Chat <b>app</b>", brand="Octo & Co",
        scopes={"repo": "Read your private repositories", "read:user": "See your profile"},
    )  # fmt: skip
    page = await start(client, client_id="sim-app", scope="repo read:user")
    assert page.status_code == 200, page.text
    assert '<div class="brand">Octo &amp; Co</div>' in page.text
    assert "<title>Sign in · Octo &amp; Co</title>" in page.text
    assert (
        "<strong>Chat &lt;b&gt;app&lt;/b&gt;</strong> wants to connect to your Octo &amp; Co"
        in (page.text)
    )
    assert ">Demo<" not in page.text and "sim-app" not in page.text
    consent = await login(client, page)
    assert '<div class="brand">Octo &amp; Co</div>' in consent.text
    assert "Authorize Chat &lt;b&gt;app&lt;/b&gt;" in consent.text
    assert "<li>Read your private repositories<br><code>repo</code></li>" in consent.text
    assert "<li>See your profile<br><code>read:user</code></li>" in consent.text
    assert "<code>items" not in consent.text
    params = redirect_params(await decide(client, consent))
    assert "code" in params

    refused = await start(client, client_id="sim-app", scope="repo items:read")
    assert redirect_params(refused)["error"] == "invalid_scope"
    default = await login(client, await start(client, client_id="sim-app", scope=None))
    assert "<code>repo</code>" in default.text and "<code>read:user</code>" in default.text
    granted = provider.issue_tokens("alice", client_id="sim-app")
    assert granted["scope"] == "repo read:user"
    with pytest.raises(ValueError, match="unknown scopes"):
        provider.issue_tokens("alice", client_id="sim-app", scopes=["profile"])


async def test_pages_default_to_the_demo_brand(client: httpx.AsyncClient) -> None:
    page = await start(client)
    assert '<div class="brand">Demo</div>' in page.text
    assert f"<strong>{CLIENT_ID}</strong> wants to connect to your Demo account" in page.text


async def test_wrong_code_verifier_is_invalid_grant(client: httpx.AsyncClient) -> None:
    """RFC 7636 §4.6: a verifier that does not match the challenge is invalid_grant."""
    _, challenge = new_pkce()
    response = await exchange(client, await get_code(client, challenge), new_pkce()[0])
    assert_oauth_error(response, 400, "invalid_grant")


async def test_missing_code_verifier_is_refused(client: httpx.AsyncClient) -> None:
    _, challenge = new_pkce()
    response = await exchange(client, await get_code(client, challenge), None)
    assert_oauth_error(response, 400, "invalid_request")


async def test_code_replay_revokes_the_tokens_issued_from_it(
    client: httpx.AsyncClient,
) -> None:
    """RFC 6749 §4.1.2: a code used twice is refused and its tokens are revoked."""
    verifier, challenge = new_pkce()
    code = await get_code(client, challenge)
    first = await exchange(client, code, verifier)
    assert first.status_code == 200
    body = first.json()
    assert (await client.get("/api/me", headers=bearer(body["access_token"]))).status_code == 200

    replay = await exchange(client, code, verifier)
    assert_oauth_error(replay, 400, "invalid_grant")
    me = await client.get("/api/me", headers=bearer(body["access_token"]))
    assert me.status_code == 401
    assert 'error="invalid_token"' in me.headers["www-authenticate"]
    assert_oauth_error(await refresh(client, body["refresh_token"]), 400, "invalid_grant")


async def test_code_expires(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    provider.config.code_ttl = 0.2
    verifier, challenge = new_pkce()
    code = await get_code(client, challenge)
    await asyncio.sleep(0.3)
    assert_oauth_error(await exchange(client, code, verifier), 400, "invalid_grant")


async def test_code_belongs_to_its_client(client: httpx.AsyncClient) -> None:
    verifier, challenge = new_pkce()
    code = await get_code(client, challenge)
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        headers=basic(OTHER_CLIENT_ID, OTHER_SECRET),
    )
    assert_oauth_error(response, 400, "invalid_grant")


async def test_redirect_uri_must_match_at_the_token_endpoint(client: httpx.AsyncClient) -> None:
    """RFC 6749 §4.1.3: redirect_uri must be identical to the authorization request's."""
    verifier, challenge = new_pkce()
    code = await get_code(client, challenge)
    response = await exchange(client, code, verifier, redirect_uri="http://127.0.0.1:9/other")
    assert_oauth_error(response, 400, "invalid_grant")


async def test_unregistered_redirect_uri_shows_an_error_page(client: httpx.AsyncClient) -> None:
    """RFC 6749 §4.1.2.1: never redirect to an unverified redirect URI."""
    for uri in (
        "http://evil.example/callback",
        REDIRECT_URI + "&x=1",
        "http://127.0.0.1:9/callback",
    ):
        response = await start(client, redirect_uri=uri)
        assert response.status_code == 400
        assert "location" not in response.headers
        assert "not registered" in response.text
    unknown = await start(client, client_id="nobody")
    assert unknown.status_code == 400
    assert "Unknown client" in unknown.text


async def test_deny_redirects_with_access_denied(client: httpx.AsyncClient) -> None:
    consent = await login(client, await start(client))
    params = redirect_params(await decide(client, consent, "deny"))
    assert params["error"] == "access_denied"
    assert params["error_description"]
    assert params["state"] == "state-123"
    assert "code" not in params


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"scope": "profile admin"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),  # RFC 7636 §4.4.1
        ({"code_challenge_method": None}, "invalid_request"),  # defaults to plain
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
    ],
)
async def test_bad_authorization_requests_redirect_with_an_error(
    client: httpx.AsyncClient, overrides: dict[str, str | None], error: str
) -> None:
    params = redirect_params(await start(client, **overrides))
    assert params["error"] == error
    assert params["state"] == "state-123"


async def test_pkce_can_be_optional(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    provider.config.require_pkce = False
    page = await start(client, code_challenge=None, code_challenge_method=None)
    params = redirect_params(await decide(client, await login(client, page)))
    # RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
    downgrade = await exchange(client, params["code"], new_pkce()[0])
    assert_oauth_error(downgrade, 400, "invalid_request")
    page = await start(client, code_challenge=None, code_challenge_method=None)
    params = redirect_params(await decide(client, await login(client, page)))
    assert (await exchange(client, params["code"], None)).status_code == 200


# -- token endpoint: client authentication and requests -----------------------------------------


async def test_bad_client_authentication_is_401_invalid_client(
    client: httpx.AsyncClient, provider: DemoProvider
) -> None:
    """RFC 6749 §5.2: invalid_client with 401, and a Basic challenge for header attempts."""
    data = {"grant_type": "refresh_token", "refresh_token": "x"}
    wrong = await client.post("/oauth/token", data=data, headers=basic(CLIENT_ID, "wrong"))
    assert_oauth_error(wrong, 401, "invalid_client")
    assert wrong.headers["www-authenticate"].startswith("Basic")
    unknown = await client.post(
        "/oauth/token", data={**data, "client_id": "nobody", "client_secret": "x"}
    )
    assert_oauth_error(unknown, 401, "invalid_client")
    assert_oauth_error(await client.post("/oauth/token", data=data), 401, "invalid_client")
    public_with_secret = await client.post(
        "/oauth/token", data={**data, "client_id": "public-app", "client_secret": "x"}
    )
    assert_oauth_error(public_with_secret, 401, "invalid_client")
    assert provider.stats.failed_auth == 4


async def test_token_request_errors(client: httpx.AsyncClient) -> None:
    auth = basic(CLIENT_ID, CLIENT_SECRET)
    no_grant = await client.post("/oauth/token", data={"code": "x"}, headers=auth)
    assert_oauth_error(no_grant, 400, "invalid_request")
    password = await client.post("/oauth/token", data={"grant_type": "password"}, headers=auth)
    assert_oauth_error(password, 400, "unsupported_grant_type")
    repeated = await client.post(
        "/oauth/token",
        content="grant_type=refresh_token&refresh_token=a&refresh_token=b",
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_oauth_error(repeated, 400, "invalid_request")
    as_json = await client.post("/oauth/token", json={"grant_type": "refresh_token"}, headers=auth)
    assert_oauth_error(as_json, 400, "invalid_request")
    both = await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_secret": "y"},
        headers=auth,
    )
    assert_oauth_error(both, 400, "invalid_request")


# -- refresh ------------------------------------------------------------------------------------


async def test_refresh_rotates_and_a_reused_refresh_token_is_refused(
    client: httpx.AsyncClient, provider: DemoProvider
) -> None:
    """RFC 6749 §6 and RFC 9700 §4.14.2: rotation; reuse of a spent token kills the grant."""
    first = await tokens(client)
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == ALL_SCOPES
    assert (await client.get("/api/me", headers=bearer(second["access_token"]))).status_code == 200

    assert_oauth_error(await refresh(client, first["refresh_token"]), 400, "invalid_grant")
    assert_oauth_error(await refresh(client, second["refresh_token"]), 400, "invalid_grant")
    me = await client.get("/api/me", headers=bearer(second["access_token"]))
    assert me.status_code == 401
    assert provider.stats.refresh_requests == 3
    assert provider.stats.token_requests["refresh_token"] == 3


async def test_reuse_without_grant_revocation(
    client: httpx.AsyncClient, provider: DemoProvider
) -> None:
    provider.config.revoke_on_refresh_reuse = False
    first = await tokens(client)
    second = (await refresh(client, first["refresh_token"])).json()
    assert_oauth_error(await refresh(client, first["refresh_token"]), 400, "invalid_grant")
    assert (await refresh(client, second["refresh_token"])).status_code == 200


async def test_refresh_without_rotation_keeps_the_refresh_token(
    client: httpx.AsyncClient, provider: DemoProvider
) -> None:
    provider.config.rotate_refresh_tokens = False
    first = await tokens(client)
    for _ in range(2):
        response = await refresh(client, first["refresh_token"])
        assert response.status_code == 200
        assert "refresh_token" not in response.json()


async def test_refresh_with_a_narrower_scope(client: httpx.AsyncClient) -> None:
    """RFC 6749 §6: a refresh may ask for less scope, never more."""
    first = await tokens(client, scope="profile items:read")
    narrow = await refresh(client, first["refresh_token"], scope="profile")
    assert narrow.status_code == 200
    body = narrow.json()
    assert body["scope"] == "profile"
    items = await client.get("/api/items", headers=bearer(body["access_token"]))
    assert items.status_code == 403
    # The rotated refresh token keeps the original grant's scope.
    wide = await refresh(client, body["refresh_token"], scope="profile items:read")
    assert wide.status_code == 200
    broader = await refresh(client, wide.json()["refresh_token"], scope="items:write")
    assert_oauth_error(broader, 400, "invalid_scope")


async def test_refresh_token_belongs_to_its_client(client: httpx.AsyncClient) -> None:
    first = await tokens(client)
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        headers=basic(OTHER_CLIENT_ID, OTHER_SECRET),
    )
    assert_oauth_error(response, 400, "invalid_grant")


# -- quirks -------------------------------------------------------------------------------------


async def test_iss_in_redirect(
    client: httpx.AsyncClient, provider: DemoProvider, base_url: str
) -> None:
    """RFC 9207 §2: iss in success and error responses, equal to the metadata issuer."""
    provider.config.send_iss_in_redirect = True
    consent = await login(client, await start(client))
    assert redirect_params(await decide(client, consent))["iss"] == base_url
    error = redirect_params(await start(client, scope="nope"))
    assert error["iss"] == base_url
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["issuer"] == base_url


async def test_omit_expires_in(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    provider.config.omit_expires_in = True
    body = await tokens(client)
    assert "expires_in" not in body
    assert "expires_in" not in (await refresh(client, body["refresh_token"])).json()


async def test_form_encoded_token_response(
    client: httpx.AsyncClient, provider: DemoProvider
) -> None:
    provider.config.form_encoded_token_response = True
    verifier, challenge = new_pkce()
    response = await exchange(client, await get_code(client, challenge), verifier)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-www-form-urlencoded")
    body = dict(parse_qsl(response.text))
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == "3600"
    assert (await client.get("/api/me", headers=bearer(body["access_token"]))).status_code == 200
    error = await refresh(client, "unknown")
    assert error.status_code == 400
    assert dict(parse_qsl(error.text))["error"] == "invalid_grant"


async def test_deny_all_consent(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    provider.config.deny_all_consent = True
    response = await start(client)
    assert response.status_code == 302
    params = redirect_params(response)
    assert params["error"] == "access_denied"
    assert params["state"] == "state-123"


async def test_auto_consent_skips_the_pages(
    client: httpx.AsyncClient, provider: DemoProvider
) -> None:
    provider.config.auto_consent = True
    provider.config.auto_consent_user = "bob"
    verifier, challenge = new_pkce()
    response = await start(client, code_challenge=challenge)
    params = redirect_params(response)
    assert params["state"] == "state-123"
    body = (await exchange(client, params["code"], verifier)).json()
    info = await client.get("/oauth/userinfo", headers=bearer(body["access_token"]))
    assert info.json()["preferred_username"] == "bob"


# -- faults -------------------------------------------------------------------------------------


async def test_fault_500(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    provider.config.token_endpoint_fault = "500"
    verifier, challenge = new_pkce()
    code = await get_code(client, challenge)
    response = await exchange(client, code, verifier)
    assert response.status_code == 500
    provider.config.token_endpoint_fault = None
    assert (await exchange(client, code, verifier)).status_code == 200  # the code was not spent


async def test_fault_invalid_json(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    provider.config.token_endpoint_fault = "invalid_json"
    verifier, challenge = new_pkce()
    response = await exchange(client, await get_code(client, challenge), verifier)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_fault_invalid_grant(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    provider.config.token_endpoint_fault = "invalid_grant"
    verifier, challenge = new_pkce()
    response = await exchange(client, await get_code(client, challenge), verifier)
    assert_oauth_error(response, 400, "invalid_grant")


async def test_fault_timeout(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    provider.config.token_endpoint_fault = "timeout"
    provider.config.fault_delay = 1.5
    verifier, challenge = new_pkce()
    code = await get_code(client, challenge)
    with pytest.raises(httpx.ReadTimeout):
        await client.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            headers=basic(CLIENT_ID, CLIENT_SECRET),
            timeout=0.5,
        )


async def test_fault_timeout_is_slow_then_answers(
    client: httpx.AsyncClient, provider: DemoProvider
) -> None:
    provider.config.token_endpoint_fault = "timeout"
    provider.config.fault_delay = 0.3
    verifier, challenge = new_pkce()
    code = await get_code(client, challenge)
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await exchange(client, code, verifier)
    assert response.status_code == 200
    assert loop.time() - started >= 0.3


async def test_fault_only_refresh(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    provider.config.token_endpoint_fault = "500"
    provider.config.fault_only_refresh = True
    body = await tokens(client)  # the code exchange is not affected
    assert (await refresh(client, body["refresh_token"])).status_code == 500
    provider.config.token_endpoint_fault = "invalid_grant"
    assert_oauth_error(await refresh(client, body["refresh_token"]), 400, "invalid_grant")
    provider.config.token_endpoint_fault = None
    assert (await refresh(client, body["refresh_token"])).status_code == 200


def test_unknown_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="token_endpoint_fault"):
        ProviderConfig(token_endpoint_fault="503")  # type: ignore[arg-type]


# -- revocation ---------------------------------------------------------------------------------


async def test_revoking_an_access_token(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    """RFC 7009 §2.1: the access token stops working; the refresh token still does."""
    body = await tokens(client)
    response = await client.post(
        "/oauth/revoke",
        data={"token": body["access_token"], "token_type_hint": "access_token"},
        headers=basic(CLIENT_ID, CLIENT_SECRET),
    )
    assert response.status_code == 200
    assert (await client.get("/api/me", headers=bearer(body["access_token"]))).status_code == 401
    assert (await refresh(client, body["refresh_token"])).status_code == 200
    assert provider.stats.revocations == 1


async def test_revoking_a_refresh_token_ends_the_grant(client: httpx.AsyncClient) -> None:
    """RFC 7009 §2.1: revoking a refresh token also invalidates its access tokens."""
    body = await tokens(client)
    response = await client.post(
        "/oauth/revoke",
        data={
            "token": body["refresh_token"],
            "token_type_hint": "access_token",  # a wrong hint must not matter
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert response.status_code == 200
    assert_oauth_error(await refresh(client, body["refresh_token"]), 400, "invalid_grant")
    assert (await client.get("/api/me", headers=bearer(body["access_token"]))).status_code == 401


async def test_revocation_edge_cases(client: httpx.AsyncClient) -> None:
    body = await tokens(client)
    auth = basic(CLIENT_ID, CLIENT_SECRET)
    unknown = await client.post("/oauth/revoke", data={"token": "nope"}, headers=auth)
    assert unknown.status_code == 200  # RFC 7009 §2.2
    missing = await client.post("/oauth/revoke", data={}, headers=auth)
    assert_oauth_error(missing, 400, "invalid_request")
    bad_client = await client.post(
        "/oauth/revoke", data={"token": body["access_token"]}, headers=basic(CLIENT_ID, "x")
    )
    assert_oauth_error(bad_client, 401, "invalid_client")
    other_client = await client.post(
        "/oauth/revoke",
        data={"token": body["access_token"]},
        headers=basic(OTHER_CLIENT_ID, OTHER_SECRET),
    )
    assert other_client.status_code == 200
    assert (await client.get("/api/me", headers=bearer(body["access_token"]))).status_code == 200


# -- userinfo and metadata ----------------------------------------------------------------------


async def test_userinfo(client: httpx.AsyncClient) -> None:
    body = await tokens(client)
    info = await client.get("/oauth/userinfo", headers=bearer(body["access_token"]))
    assert info.status_code == 200
    data = info.json()
    assert data["preferred_username"] == "alice"
    assert data["email"] == "alice@example.com"
    assert data["name"] == "Alice Liddell"
    assert data["sub"]
    anonymous = await client.get("/oauth/userinfo")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
)
async def test_metadata(client: httpx.AsyncClient, base_url: str, path: str) -> None:
    """RFC 8414 §2: absolute endpoint URLs under the issuer."""
    data = (await client.get(path)).json()
    assert data["issuer"] == base_url
    assert data["authorization_endpoint"] == f"{base_url}/oauth/authorize"
    assert data["token_endpoint"] == f"{base_url}/oauth/token"
    assert data["revocation_endpoint"] == f"{base_url}/oauth/revoke"
    assert data["userinfo_endpoint"] == f"{base_url}/oauth/userinfo"
    assert data["response_types_supported"] == ["code"]
    assert data["code_challenge_methods_supported"] == ["S256"]
    assert set(data["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert set(data["scopes_supported"]) == {"profile", "items:read", "items:write"}
    assert "client_secret_basic" in data["token_endpoint_auth_methods_supported"]


async def test_configured_issuer(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    provider.config.issuer = "https://demo.example/"
    data = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert data["issuer"] == "https://demo.example"
    assert data["token_endpoint"] == "https://demo.example/oauth/token"


async def test_mounted_under_a_prefix() -> None:
    provider, app = create_app(ProviderConfig(send_iss_in_redirect=True))
    provider.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
    parent = Starlette(routes=[Mount("/demo", app=app)])
    async with (
        serve_app(parent) as url,
        httpx.AsyncClient(base_url=f"{url}/demo", timeout=5) as client,
    ):
        data = (await client.get("/.well-known/oauth-authorization-server")).json()
        assert data["issuer"] == f"{url}/demo"
        assert data["token_endpoint"] == f"{url}/demo/oauth/token"
        page = await start(client)
        assert action(page.text) == "/demo/oauth/authorize/login"
        consent = await client.post(
            f"{url}{action(page.text)}",
            data={
                "request_id": field(page.text, "request_id"),
                "csrf_token": field(page.text, "csrf_token"),
                "username": "alice",
                "password": "wonderland",
            },
        )
        assert action(consent.text) == "/demo/oauth/authorize/consent"
        params = redirect_params(
            await client.post(
                f"{url}{action(consent.text)}",
                data={
                    "request_id": field(consent.text, "request_id"),
                    "csrf_token": field(consent.text, "csrf_token"),
                    "decision": "allow",
                },
            )
        )
        assert params["iss"] == f"{url}/demo"


# -- protected API ------------------------------------------------------------------------------


async def test_api_with_a_bearer_token(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    body = await tokens(client)
    headers = bearer(body["access_token"])
    me = await client.get("/api/me", headers=headers)
    assert me.json()["preferred_username"] == "alice"
    created = await client.post("/api/items", json={"name": "Paint the roses red"}, headers=headers)
    assert created.status_code == 201
    item = created.json()
    assert item["name"] == "Paint the roses red"
    assert item["id"].startswith("itm_")
    listed = (await client.get("/api/items", headers=headers)).json()
    assert listed["items"][-1] == item
    assert listed["total"] == 3
    limited = (await client.get("/api/items", params={"limit": 1}, headers=headers)).json()
    assert len(limited["items"]) == 1
    assert provider.stats.api_requests == 4


async def test_api_with_an_api_key(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    key = provider.issue_api_key("bob")
    assert re.fullmatch(r"demo_[A-Za-z0-9_-]{24}", key)
    headers = {"X-API-Key": key}
    assert (await client.get("/api/me", headers=headers)).json()["preferred_username"] == "bob"
    created = await client.post("/api/items", json={"name": "Build a shed"}, headers=headers)
    assert created.status_code == 201
    names = [i["name"] for i in (await client.get("/api/items", headers=headers)).json()["items"]]
    assert names == ["Fix the roof", "Build a shed"]
    alice = provider.issue_api_key("alice")
    alice_items = (await client.get("/api/items", headers={"X-API-Key": alice})).json()["items"]
    assert "Build a shed" not in [i["name"] for i in alice_items]
    wrong = await client.get("/api/me", headers={"X-API-Key": "demo_" + "x" * 24})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_api_key"


async def test_api_with_basic_auth(client: httpx.AsyncClient) -> None:
    me = await client.get("/api/me", auth=("alice", "wonderland"))
    assert me.status_code == 200
    assert me.json()["preferred_username"] == "alice"
    wrong = await client.get("/api/me", auth=("alice", "looking-glass"))
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Basic")


async def test_api_without_credentials(client: httpx.AsyncClient) -> None:
    """RFC 6750 §3.1: no error code when the request had no credentials."""
    response = await client.get("/api/items")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="demo"'


async def test_api_input_errors(client: httpx.AsyncClient) -> None:
    auth = ("alice", "wonderland")
    assert (await client.get("/api/items", params={"limit": 0}, auth=auth)).status_code == 400
    assert (await client.get("/api/items", params={"limit": "x"}, auth=auth)).status_code == 400
    assert (await client.post("/api/items", json={"name": ""}, auth=auth)).status_code == 400
    assert (await client.post("/api/items", content=b"{", auth=auth)).status_code == 400


async def test_insufficient_scope(client: httpx.AsyncClient) -> None:
    """RFC 6750 §3.1: 403 with error="insufficient_scope" in the challenge."""
    body = await tokens(client, scope="profile items:read")
    headers = bearer(body["access_token"])
    assert (await client.get("/api/items", headers=headers)).status_code == 200
    response = await client.post("/api/items", json={"name": "x"}, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="items:write"' in challenge


async def test_expired_access_token(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    """RFC 6750 §3.1: an expired token is 401 invalid_token; a refresh gets a working one."""
    provider.config.access_token_ttl = 1
    body = await tokens(client)
    assert body["expires_in"] == 1
    assert (await client.get("/api/me", headers=bearer(body["access_token"]))).status_code == 200
    await asyncio.sleep(1.1)
    response = await client.get("/api/me", headers=bearer(body["access_token"]))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    fresh = (await refresh(client, body["refresh_token"])).json()
    assert (await client.get("/api/me", headers=bearer(fresh["access_token"]))).status_code == 200


async def test_expire_access_tokens_helper(
    client: httpx.AsyncClient, provider: DemoProvider
) -> None:
    body = provider.issue_tokens("alice", client_id=CLIENT_ID, scopes=["profile"])
    assert body["scope"] == "profile"
    assert (await client.get("/api/me", headers=bearer(body["access_token"]))).status_code == 200
    provider.expire_access_tokens()
    assert (await client.get("/api/me", headers=bearer(body["access_token"]))).status_code == 401
    assert (await refresh(client, body["refresh_token"])).status_code == 200


async def test_rate_limited(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/rate-limited")
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "rate_limited"


async def test_reset_stats(client: httpx.AsyncClient, provider: DemoProvider) -> None:
    await client.get("/api/rate-limited")
    await start(client)
    assert provider.stats.api_requests == 1
    assert provider.stats.authorize_requests == 1
    provider.reset_stats()
    assert provider.stats.api_requests == 0
    assert provider.stats.authorize_requests == 0
    assert not provider.stats.token_requests


async def test_concurrent_refreshes_spend_a_rotating_token_once(
    client: httpx.AsyncClient,
) -> None:
    body = await tokens(client)
    answers = await asyncio.gather(*(refresh(client, body["refresh_token"]) for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400, 400]
