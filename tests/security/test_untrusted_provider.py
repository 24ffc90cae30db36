"""A malicious or broken authorization server (SECURITY.md, actors): its token responses, its
errors and its pace are hostile input. Each test runs a small Starlette token endpoint on
loopback (real HTTP) behind the demo provider's real authorization endpoint, or calls
toolauth.oauth.calls against it directly."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import DEMO_CLIENT_SECRET, Connect
from tests.flows.support import basic_toolkit, db_bytes, demo_variant
from tests.helpers import Browser
from toolauth import (
    AsyncToolAuth,
    ConnectionFailedError,
    OAuthError,
    TokenRefreshError,
    ValidationError,
)
from toolauth._models import ConnectionStatus
from toolauth.connect.serving import serve_app
from toolauth.oauth.calls import MAX_RESPONSE_BYTES, exchange_code, refresh_tokens, revoke_token
from toolauth.oauth.tokens import TOKEN_RESPONSE_KEY

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Hostile:
    """A token endpoint whose answer each test chooses; it records what it was sent."""

    url: str
    answer: list[Handler]
    forms: list[dict[str, str]] = field(default_factory=list)

    def answers(self, handler: Handler) -> None:
        self.answer[:] = [handler]


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    answer: list[Handler] = []
    found: list[Hostile] = []

    async def endpoint(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        form["authorization"] = request.headers.get("authorization", "")
        found[0].forms.append(form)
        return await answer[0](request)

    app = Starlette(routes=[Route("/token", endpoint, methods=["POST"])])
    app.add_route("/revoke", endpoint, methods=["POST"])
    async with serve_app(app) as url:
        found.append(Hostile(f"{url}/token", answer))
        yield found[0]


async def echoed(request: Request) -> str:
    """Everything the client sent, as a careless provider quotes it back."""
    form = await request.form()
    return (
        " ".join(f"{k}={v}" for k, v in form.items())
        + " "
        + request.headers.get("authorization", "")
    )


async def drip(request: Request) -> Response:
    """One byte every 50 ms, forever: no read ever times out, the answer never ends."""

    async def body() -> AsyncIterator[bytes]:
        yield b'{"access_token": "AT'
        while True:
            await anyio.sleep(0.05)  # the fault under test, not synchronisation
            yield b"x"

    return StreamingResponse(body(), media_type="application/json")


def token_response(**fields: object) -> Handler:
    async def answer(request: Request) -> Response:
        return JSONResponse(fields, headers={"Cache-Control": "no-store"})

    return answer


async def connect_through(connect: Connect, hostile: Hostile, browser: Browser) -> tuple[str, str]:
    """A demo link whose token endpoint is the hostile one, walked to the end: (account id,
    the final page)."""
    await demo_variant(connect.ta, token_url=hostile.url)
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)
    landing = await browser.oauth_consent(req.redirect_url)
    return req.connected_account_id, landing.response.text


# 1. Unknown token-response fields are secret --------------------------------------------------
async def test_only_allow_listed_token_response_fields_become_plain_data(
    connect: Connect, hostile: Hostile, browser: Browser
) -> None:
    """RFC 6749 §5.1 lets a token response carry any extra parameter, so the server decides
    what is in it: a field not known to be public (a webhook URL with its secret, an
    installation key, a nested bot token) goes to the encrypted credentials, never to the
    account's plain ``data``, its ``repr`` or the database in clear."""
    hostile.answers(token_response(
        access_token="AT-hostile-1234567890", token_type="bearer", expires_in=3600,
        scope="profile", refresh_token="RT-hostile-1234567890",
        team={"id": "T1", "name": "Acme", "signing_key": "SIGNKEY-SENTINEL-0001"},
        bot_user_id="B1", app_id="A1",
        installation_key="INSTALL-SENTINEL-0002",
        incoming_webhook={"url": "https://hooks.example/T1/WEBHOOK-SENTINEL-0003"},
        user_id="bad\r\nvalue",  # allow-listed name, but not a clean value: kept secret
    ))  # fmt: skip

    account_id, page = await connect_through(connect, hostile, browser)

    account = await connect.ta.connected_accounts.get(account_id)
    assert account.status is ConnectionStatus.ACTIVE, page
    assert account.data == {
        "team_id": "T1",
        "team_name": "Acme",
        "bot_user_id": "B1",
        "app_id": "A1",
    }
    private = json.loads(account.credentials[TOKEN_RESPONSE_KEY].get_secret_value())
    assert private == {
        "team": {"signing_key": "SIGNKEY-SENTINEL-0001"},
        "installation_key": "INSTALL-SENTINEL-0002",
        "incoming_webhook": {"url": "https://hooks.example/T1/WEBHOOK-SENTINEL-0003"},
        "user_id": "bad\r\nvalue",
    }
    stored = db_bytes(connect.ta)
    for sentinel in ("SIGNKEY-SENTINEL-0001", "INSTALL-SENTINEL-0002", "WEBHOOK-SENTINEL-0003"):
        assert sentinel not in repr(account) and sentinel not in account.model_dump_json()
        assert sentinel.encode() not in stored
        assert sentinel not in page


# 2. Nothing we sent comes back in an error -----------------------------------------------------
async def test_a_provider_echoing_our_secrets_in_its_error_never_shows_them(
    connect: Connect, hostile: Hostile, browser: Browser
) -> None:
    """RFC 6749 §5.2: ``error_description`` is the server's free text. One that quotes our
    request back (client secret, code, PKCE verifier, the Basic header) must not carry any of
    them to the page, the account's status reason or the error the app sees."""

    async def answer(request: Request) -> Response:
        said = await echoed(request)
        return JSONResponse(
            {"error": "invalid_grant", "error_description": f"rejected: {said}"}, 400
        )

    hostile.answers(answer)

    account_id, page = await connect_through(connect, hostile, browser)

    (sent,) = hostile.forms
    secrets = [DEMO_CLIENT_SECRET, sent["code"], sent["code_verifier"]]
    if sent["authorization"]:
        secrets.append(sent["authorization"].removeprefix("Basic "))
    account = await connect.ta.connected_accounts.get(account_id)
    assert account.status is ConnectionStatus.FAILED
    with pytest.raises(ConnectionFailedError) as info:
        await connect.ta.connected_accounts.wait_for_connection(account_id, timeout=5)
    for secret in secrets:
        for text in (page, account.status_reason or "", str(info.value), repr(account)):
            assert secret not in text
            assert secret[:12] not in text  # nor a piece of it
    assert "[redacted]" in (account.status_reason or "")


async def test_a_refresh_error_never_carries_the_refresh_token_or_the_client_secret(
    hostile: Hostile,
) -> None:
    """RFC 6749 §6 and §5.2: the refresh token and client secret we send may be quoted back
    in ``error_description`` or even as the ``error`` code; neither reaches the exception."""
    refresh = "RT-" + "r" * 40
    secret = "client-secret-" + "s" * 30

    async def answer(request: Request) -> Response:
        said = await echoed(request)
        return JSONResponse({"error": refresh, "error_description": f"<b>{said}</b>"}, 400)

    hostile.answers(answer)
    async with httpx.AsyncClient() as http:
        for method in ("client_secret_post", "client_secret_basic"):
            with pytest.raises(TokenRefreshError) as info:
                await refresh_tokens(
                    http, hostile.url, refresh_token=refresh, client_id="cid",
                    client_secret=secret, auth_method=method,
                )  # fmt: skip
            error = info.value
            for text in (str(error), repr(error), error.error, error.description or ""):
                assert refresh not in text and secret not in text
                assert refresh[:12] not in text and secret[:12] not in text
            assert error.error == "invalid_response"


async def test_an_error_description_reaches_people_short_clean_and_quoted(
    hostile: Hostile,
) -> None:
    """RFC 6749 §5.2 limits ``error_description`` to printable ASCII without quotes or
    backslashes; whatever a server sends instead, the text shown is at most 200 characters
    in double quotes, with no control or invisible characters and no markup."""
    nasty = (
        "Denied\r\nX-Injected: 1\x00\x1b[31m <script>alert(1)</script> [click](https://evil)"
        "\u202etxet desrever\u200b `code` \x85" + "y" * 5000
    )
    hostile.answers(token_response(error="access_denied", error_description=nasty))
    async with httpx.AsyncClient() as http:
        with pytest.raises(OAuthError) as info:
            await exchange_code(
                http, hostile.url, code="c", redirect_uri="http://127.0.0.1/cb",
                code_verifier=None, client_id="cid", client_secret=None,
                auth_method="client_secret_post",
            )  # fmt: skip
    description = info.value.description or ""
    assert description.startswith('"Denied X-Injected: 1') and description.endswith('…"')
    assert len(description) <= 200
    assert description.count('"') == 2
    for bad in ("\r", "\n", "\x00", "\x1b", "\x85", "\u202e", "\u200b", "<", ">", "`", "["):
        assert bad not in description and bad not in str(info.value)


# 3. Deadlines and size caps --------------------------------------------------------------------
@pytest.mark.parametrize("extra_env", [{"TOOLAUTH_HTTP_DEADLINE": "0.5"}])
async def test_a_token_endpoint_that_drips_forever_hits_the_overall_deadline(
    connect: Connect, hostile: Hostile, browser: Browser
) -> None:
    """RFC 9700 §4 (an attacker-controlled or broken server): a server that sends a byte
    every 50 ms never trips a per-read timeout; TOOLAUTH_HTTP_DEADLINE ends the call, the
    user gets a retry page and the link stays open."""
    hostile.answers(drip)
    started = time.monotonic()
    with anyio.fail_after(10):
        account_id, page = await connect_through(connect, hostile, browser)
    assert time.monotonic() - started < 5
    assert "did not answer within 0.5 s" in page
    account = await connect.ta.connected_accounts.get(account_id)
    assert account.status is ConnectionStatus.INITIATED and not account.credentials


async def test_refresh_and_revocation_have_a_deadline_too(hostile: Hostile) -> None:
    """RFC 6749 §6 (refresh) and RFC 7009 §2 (revocation) calls end at the deadline however
    slowly the server answers; a slow revocation is reported as not done."""
    hostile.answers(drip)
    async with httpx.AsyncClient(timeout=5) as http:
        with anyio.fail_after(10):
            with pytest.raises(TokenRefreshError) as info:
                await refresh_tokens(
                    http, hostile.url, refresh_token="RT", client_id="cid", client_secret="s",
                    auth_method="client_secret_post", deadline=0.3,
                )  # fmt: skip
            assert info.value.retryable and info.value.error == "temporarily_unavailable"
            revoked = await revoke_token(
                http, hostile.url.replace("/token", "/revoke"), token="AT",
                token_type_hint="access_token", client_id="cid", client_secret="s",
                auth_method="client_secret_post", deadline=0.3,
            )  # fmt: skip
            assert revoked is False


@pytest.mark.parametrize("framing", ["content-length", "chunked", "endless"])
async def test_an_oversized_token_response_is_not_read(hostile: Hostile, framing: str) -> None:
    """A token response (RFC 6749 §5.1) is a few hundred bytes; more than 1 MiB is refused
    as ``invalid_response`` without reading the rest, whether the server declares its size,
    streams it, or never stops."""
    padding = "x" * (MAX_RESPONSE_BYTES + 10)
    whole = json.dumps({"access_token": "AT", "padding": padding}).encode()

    async def answer(request: Request) -> Response:
        if framing == "content-length":
            return Response(whole, media_type="application/json")

        async def body() -> AsyncIterator[bytes]:
            if framing == "chunked":
                for i in range(0, len(whole), 65536):
                    yield whole[i : i + 65536]
                return
            yield b'{"access_token": "AT", "padding": "'
            for _ in range(64 * 16):  # 64 times the cap: without one, the client reads it all
                yield b"x" * 65536
                await anyio.lowlevel.checkpoint()  # Starlette sees the client hang up

        return StreamingResponse(body(), media_type="application/json")

    hostile.answers(answer)
    async with httpx.AsyncClient() as http:
        with anyio.fail_after(20), pytest.raises(OAuthError) as info:
            await exchange_code(
                http, hostile.url, code="c", redirect_uri="http://127.0.0.1/cb",
                code_verifier=None, client_id="cid", client_secret="s",
                auth_method="client_secret_post",
            )  # fmt: skip
    assert info.value.error == "invalid_response"
    assert "more than 1048576 bytes" in str(info.value)


# 4. Credentials with control characters --------------------------------------------------------
@pytest.mark.parametrize("bad", ["\r\n", "\n", "\x00", "\t", "\x7f", "\x85", "\x1b"])
async def test_credentials_with_control_characters_are_refused_naming_the_field(
    ta: AsyncToolAuth, bad: str
) -> None:
    """RFC 9110 §5.5: CR, LF and NUL cannot be in a header field value (they would split or
    end it; RFC 6749 §A.12 keeps access tokens to printable ASCII). A credential holding any
    C0/C1 control character is refused where it is stored, with the field named and the value
    never repeated; nothing is stored."""
    value = f"SECRET-VALUE{bad}X-Injected: 1"
    with pytest.raises(ValidationError) as info:
        await ta.auth_configs.create(
            "github",
            type="use_custom_auth",
            credentials={"client_id": "id", "client_secret": value},
        )
    assert info.value.field == "credentials.client_secret"
    assert "SECRET-VALUE" not in str(info.value) and "control character" in str(info.value)
    assert await ta.auth_configs.list(toolkit="github") == []

    config = await ta.auth_configs.create("github")
    with pytest.raises(ValidationError) as info:
        await ta.connected_accounts.create("u1", config.id, credentials={"access_token": value})
    assert info.value.field == "credentials.access_token"
    assert "SECRET-VALUE" not in str(info.value)
    assert await ta.connected_accounts.list(user_id="u1") == []

    await ta.toolkits.register(basic_toolkit())
    basic = await ta.auth_configs.create("demo_basic")
    with pytest.raises(ValidationError) as info:
        await ta.connected_accounts.create(
            "u1", basic.id, credentials={"username": "alice", "password": value}
        )
    assert info.value.field == "password"
    assert "SECRET-VALUE" not in str(info.value)


async def test_a_key_form_with_a_control_character_is_refused(
    connect: Connect, browser: Browser
) -> None:
    """The key form (what a user types) follows the same rule: CR/LF in a password is
    refused on the form, naming the field; nothing is stored and nothing is sent to the
    provider's API."""
    await connect.ta.toolkits.register(basic_toolkit())
    config = await connect.ta.auth_configs.create("demo_basic")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)
    before = connect.provider.stats.api_requests

    landing = await browser.submit_key_form(
        req.redirect_url, {"username": "alice", "password": "wonder\r\nland"}
    )

    assert landing.response.status_code == 400
    assert "Password contains a control character" in landing.response.text
    assert "wonder" not in landing.response.text
    assert connect.provider.stats.api_requests == before
    account = await connect.ta.connected_accounts.get(req.connected_account_id)
    assert not account.credentials
