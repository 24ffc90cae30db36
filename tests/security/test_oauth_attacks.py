"""OAuth attacks the flow tests do not cover yet: PKCE downgrade and code injection, redirect
URI tampering, authorization code replay (at the token endpoint and through concurrent
callbacks). The demo provider on loopback, the connect app, a scripted browser, real SQLite.

Covered elsewhere (see SECURITY.md): a missing, forged or replayed state, the state cookie
binding, an ``iss`` mismatch, expired links, CSRF on key forms, escaping, foreign callback
origins and cross-user links (``tests/flows``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Connect
from tests.flows.support import APP_CALLBACK, query_of, to_callback
from tests.helpers import Browser
from tests.security.conftest import attacker_code, issued_tokens
from toolauth import ConnectionFailedError, ConnectionStatus, TokenRefreshError
from toolauth._models import LinkStatus
from toolauth.connect.oauth_steps import opening_verifier
from toolauth.connect.serving import serve_app
from toolauth.oauth.authorize import authorization_url


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


async def stored_link(connect: Connect, link_id: str):
    return await (await connect.ta.store()).get_link(link_id)


async def assert_failed_cleanly(connect: Connect, req, tokens_before: set[str], error: str) -> None:
    """The link and the never-connected account are FAILED, nothing was stored, the provider
    issued nothing, and a waiter hears the failure."""
    account = await connect.ta.connected_accounts.get(req.connected_account_id)
    assert account.status is ConnectionStatus.FAILED
    assert not account.credentials
    link = await stored_link(connect, req.link_id)
    assert link.status is LinkStatus.FAILED
    assert link.error == error
    assert link.state_hash is None  # spent: the real code cannot be delivered afterwards
    assert issued_tokens(connect) == tokens_before
    with pytest.raises(ConnectionFailedError):
        await req.wait_for_connection(timeout=1)


# -- PKCE (RFC 7636, RFC 9700 §2.1.1 and §4.5) ---------------------------------------------------


@pytest.mark.parametrize("provider_requires_pkce", [True, False])
async def test_we_always_send_s256_of_the_stored_verifier_never_plain(
    connect: Connect, paused: Browser, provider_requires_pkce: bool
) -> None:
    """Even against a provider that does not ask for PKCE, the request carries an S256
    challenge of the link's verifier, and the exchange proves it (the provider checks the
    verifier whenever a challenge was sent)."""
    connect.provider.config.require_pkce = provider_requires_pkce
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("pkce-user", config.id)

    response = await paused.http.get(req.redirect_url)
    location = response.headers["location"]
    q = query_of(location)
    verifier = opening_verifier(await stored_link(connect, req.link_id), q["state"])
    assert verifier is not None

    assert q["code_challenge_method"] == "S256"
    assert "plain" not in location.lower()
    assert q["code_challenge"] == s256(verifier)
    assert 43 <= len(verifier) <= 128 and verifier not in location
    paused.stop_at = None
    done = await paused.oauth_consent(req.redirect_url)
    assert done.response.status_code == 200, done.response.text
    assert (await req.wait_for_connection(timeout=5)).is_active


def test_authorization_urls_never_ask_for_plain() -> None:
    for _ in range(50):
        verifier = secrets.token_urlsafe(secrets.choice([32, 48, 96]))
        url = authorization_url(
            "https://as.example/authorize", client_id="c", redirect_uri="https://app/cb",
            scopes=["a"], scope_separator=" ", state="s", code_verifier=verifier,
            extra={"code_challenge_method": "plain"},  # a catalog cannot downgrade it either
        )  # fmt: skip
        q = query_of(url)
        assert q["code_challenge_method"] == "S256"
        assert q["code_challenge"] == s256(verifier)
        assert "plain" not in url


async def test_metadata_offering_only_plain_never_gets_plain(connect: Connect) -> None:
    """An issuer whose RFC 8414 metadata offers only ``plain``: discovery leaves PKCE off
    rather than sending a ``plain`` challenge (the verifier itself must never travel in the
    front channel)."""
    base: dict[str, str] = {}

    async def metadata(request: Request) -> Response:
        issuer = base["url"]
        return JSONResponse({
            "issuer": issuer, "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token", "code_challenge_methods_supported": ["plain"],
        })  # fmt: skip

    app = Starlette(routes=[Route("/.well-known/oauth-authorization-server", metadata)])
    async with serve_app(app) as url:
        base["url"] = url
        definition = await connect.ta.toolkits.discover("plainonly", issuer=url)
    spec = definition.oauth2()
    assert spec is not None and spec.pkce is False
    config = await connect.ta.auth_configs.create(
        "plainonly", type="use_custom_auth", credentials={"client_id": "c", "client_secret": "s"}
    )
    req = await connect.ta.connected_accounts.link("plain-user", config.id)
    async with httpx.AsyncClient() as http:
        location = (await http.get(req.redirect_url)).headers["location"]
    assert "plain" not in location.lower() and "code_challenge" not in location


@pytest.mark.parametrize(
    "attackers_challenge", [False, True], ids=["no-challenge", "own-challenge"]
)
async def test_an_injected_code_minted_without_our_challenge_fails_the_link(
    connect: Connect, paused: Browser, attackers_challenge: bool
) -> None:
    """RFC 9700 §4.5 code injection: the attacker gets a code for their own provider account
    (without a challenge, or with their own) and injects it into the victim's callback. Our
    verifier does not match it: the provider refuses the exchange, the link FAILS cleanly."""
    ta = connect.ta
    connect.provider.config.require_pkce = attackers_challenge  # lets a challenge-less code out
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("victim", config.id, callback_url=APP_CALLBACK)
    landing = await to_callback(paused, req.redirect_url)
    state = query_of(landing.url)["state"]
    challenge = s256(secrets.token_urlsafe(32)) if attackers_challenge else None
    injected = await attacker_code(
        connect, redirect_uri=f"{connect.base_url}/oauth/callback", code_challenge=challenge
    )
    tokens_before = issued_tokens(connect)

    response = await paused.http.get(
        f"{connect.base_url}/oauth/callback", params={"code": injected, "state": state}
    )

    assert response.status_code == 303
    q = query_of(response.headers["location"])
    expected = "invalid_grant" if attackers_challenge else "invalid_request"
    assert q == {"status": "failed", "connected_account_id": req.connected_account_id,
                 "error": expected}  # fmt: skip
    assert connect.provider.stats.token_requests["authorization_code"] == 1
    await assert_failed_cleanly(connect, req, tokens_before, expected)
    # The victim's own code cannot be delivered afterwards either: the state is spent.
    late = await paused.http.get(landing.url)
    assert late.status_code == 400 and "invalid_state" in late.text
    assert connect.provider.stats.token_requests["authorization_code"] == 1


async def test_an_intercepted_code_is_useless_without_the_verifier(
    connect: Connect, paused: Browser
) -> None:
    """The attacker reads the code off the redirect (and even knows the client secret) but not
    the verifier: the provider refuses them, and the spent code then fails the user's link
    cleanly instead of connecting anything."""
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("victim", config.id, callback_url=APP_CALLBACK)
    landing = await to_callback(paused, req.redirect_url)
    code = query_of(landing.url)["code"]
    tokens_before = issued_tokens(connect)

    async with httpx.AsyncClient() as attacker:
        stolen = await attacker.post(
            f"{connect.provider_url}/oauth/token",
            data={"grant_type": "authorization_code", "code": code,
                  "redirect_uri": f"{connect.base_url}/oauth/callback"},
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        )  # fmt: skip
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_request"
    assert "access_token" not in stolen.text

    paused.stop_at = APP_CALLBACK
    done = await paused.get(landing.url)

    assert query_of(done.url)["status"] == "failed"
    assert query_of(done.url)["error"] == "invalid_grant"
    await assert_failed_cleanly(connect, req, tokens_before, "invalid_grant")


# -- redirect URI (RFC 6749 §4.1.3, §10.6; RFC 9700 §4.1) -----------------------------------------


async def test_a_code_issued_for_another_redirect_uri_is_refused(
    connect: Connect, paused: Browser
) -> None:
    """The attacker copies the victim's authorization request (same state, same challenge) but
    points ``redirect_uri`` at another URI registered for the client, collects the code there
    and injects it into the victim's callback. The exchange names our exact redirect URI, so
    the provider refuses it: the link FAILS and nothing is stored."""
    ta = connect.ta
    ours = f"{connect.base_url}/oauth/callback"
    elsewhere = "http://127.0.0.1:9/attacker/callback"
    connect.provider.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [ours, elsewhere])
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("victim", config.id, callback_url=APP_CALLBACK)
    authorize = query_of((await paused.http.get(req.redirect_url)).headers["location"])
    assert (
        authorize["redirect_uri"] == ours == (await stored_link(connect, req.link_id)).redirect_uri
    )
    code = await attacker_code(
        connect, redirect_uri=elsewhere, state=authorize["state"],
        code_challenge=authorize["code_challenge"], username="alice",
    )  # fmt: skip
    tokens_before = issued_tokens(connect)

    response = await paused.http.get(ours, params={"code": code, "state": authorize["state"]})

    assert response.status_code == 303
    assert query_of(response.headers["location"])["error"] == "invalid_grant"
    await assert_failed_cleanly(connect, req, tokens_before, "invalid_grant")


# -- code replay (RFC 6749 §4.1.2, §10.5) -----------------------------------------------------------


async def test_a_code_replayed_at_the_token_endpoint_revokes_the_grant_and_we_notice(
    connect: Connect, paused: Browser
) -> None:
    """The code stays in the browser history after a successful link. Replaying it at the
    token endpoint gets the attacker nothing and makes the provider revoke the grant; the next
    call through toolauth finds the grant dead, marks the account EXPIRED and says so,
    without showing any token."""
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("victim", config.id)
    landing = await to_callback(paused, req.redirect_url)
    paused.stop_at = None
    assert (await paused.get(landing.url)).response.status_code == 200
    account = await req.wait_for_connection(timeout=5)
    verifier = opening_verifier(
        await stored_link(connect, req.link_id), query_of(landing.url)["state"]
    )
    assert verifier is not None

    async with httpx.AsyncClient() as attacker:  # even with the secret and the verifier
        replay = await attacker.post(
            f"{connect.provider_url}/oauth/token",
            data={"grant_type": "authorization_code", "code": query_of(landing.url)["code"],
                  "redirect_uri": f"{connect.base_url}/oauth/callback",
                  "code_verifier": verifier},
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        )  # fmt: skip
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert "access_token" not in replay.text

    async with await ta.connected_accounts.http_client(account.id) as client:
        with pytest.raises(TokenRefreshError) as info:
            await client.get("/me")
    after = await ta.connected_accounts.get(account.id)
    assert after.status is ConnectionStatus.EXPIRED
    assert "invalid_grant" in (after.status_reason or "")
    text = f"{info.value!s} {info.value!r} {after!r}"
    for value in account.credentials.values():
        if len(value.get_secret_value()) > 8:
            assert value.get_secret_value() not in text


async def test_the_same_callback_delivered_many_times_at_once_spends_the_code_once(
    connect: Connect, paused: Browser
) -> None:
    """A double click, a browser retry, a reloading tab: eight copies of one callback at the
    same moment make exactly one token request and one ACTIVE account."""
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("clicker", config.id, callback_url=APP_CALLBACK)
    landing = await to_callback(paused, req.redirect_url)
    statuses: list[int] = []

    async def deliver() -> None:
        statuses.append((await paused.http.get(landing.url)).status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(deliver)

    assert statuses.count(303) == 1, statuses
    assert all(s in (303, 400, 409) for s in statuses), statuses
    assert connect.provider.stats.token_requests["authorization_code"] == 1
    account = await req.wait_for_connection(timeout=5)
    assert account.is_active
    assert len(await ta.connected_accounts.list(user_id="clicker")) == 1
    assert (await stored_link(connect, req.link_id)).status is LinkStatus.COMPLETED
