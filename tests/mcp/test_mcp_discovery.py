"""``ta.toolkits.add_mcp`` refuses bad metadata with a clear error and registers nothing;
a server without auth becomes a NO_AUTH toolkit; a server whose 401 names other metadata
later is reported as such."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import InBackground, ServedProvider
from tests.helpers import free_port
from tests.mcp.test_mcp_toolkit import connect_user
from toolauth import AsyncToolAuth, ToolApiError, ValidationError
from toolauth.connect.serving import serve_app
from toolauth.demo.notes_mcp import notes_app


def fake_server(metadata: dict[str, Any]) -> Starlette:
    """An MCP endpoint that answers 401 naming its metadata, which is ``metadata``."""

    async def mcp(request: Request) -> Response:
        hint = f"{request.base_url}.well-known/oauth-protected-resource/mcp"
        return Response(status_code=401, headers={
            "WWW-Authenticate": f'Bearer error="invalid_token", resource_metadata="{hint}"'
        })  # fmt: skip

    async def prm(request: Request) -> Response:
        return JSONResponse(metadata)

    return Starlette(routes=[
        Route("/mcp", mcp, methods=["POST", "GET"]),
        Route("/.well-known/oauth-protected-resource/mcp", prm),
    ])  # fmt: skip


@pytest.fixture
async def fake_url() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A fake MCP server on loopback and the metadata it serves (fill it in the test)."""
    metadata: dict[str, Any] = {}
    port = free_port()
    async with serve_app(fake_server(metadata), port=port):
        yield f"http://127.0.0.1:{port}/mcp", metadata


async def test_metadata_for_another_resource_is_refused(
    ta: AsyncToolAuth, fake_url: tuple[str, dict[str, Any]], provider: Any
) -> None:
    """RFC 9728 §3.3: metadata whose resource is not the server's MUST NOT be used."""
    url, metadata = fake_url
    metadata.update(resource="https://other.example/mcp", authorization_servers=[provider[1]])
    with pytest.raises(ValidationError, match=r"names resource 'https://other.example/mcp'.*9728"):
        await ta.toolkits.add_mcp("fake", url=url)
    assert "fake" not in ta.catalog


async def test_an_http_authorization_server_off_loopback_is_refused(
    ta: AsyncToolAuth, fake_url: tuple[str, dict[str, Any]]
) -> None:
    url, metadata = fake_url
    metadata.update(resource=url, authorization_servers=["http://auth.example.com"])
    with pytest.raises(ValidationError, match="must use https"):
        await ta.toolkits.add_mcp("fake", url=url)
    assert "fake" not in ta.catalog


async def test_metadata_without_an_authorization_server_is_refused(
    ta: AsyncToolAuth, fake_url: tuple[str, dict[str, Any]]
) -> None:
    url, metadata = fake_url
    metadata.update(resource=url, authorization_servers=[])
    with pytest.raises(ValidationError, match="no authorization_servers"):
        await ta.toolkits.add_mcp("fake", url=url)


async def test_issuer_mismatch_is_refused(
    ta: AsyncToolAuth, fake_url: tuple[str, dict[str, Any]], served_provider: ServedProvider
) -> None:
    """RFC 8414 §3.3: the authorization server's metadata must name the issuer asked for."""
    url, metadata = fake_url
    metadata.update(resource=url, authorization_servers=[served_provider.url])
    served_provider.demo.config.issuer = "https://evil.example"
    with pytest.raises(ValidationError, match="names issuer 'https://evil.example'"):
        await ta.toolkits.add_mcp("fake", url=url)
    assert "fake" not in ta.catalog


async def test_an_authorization_server_without_s256_is_refused(
    ta: AsyncToolAuth, fake_url: tuple[str, dict[str, Any]], served_provider: ServedProvider
) -> None:
    """MCP authorization: a client MUST refuse a server that does not advertise S256."""
    url, metadata = fake_url
    metadata.update(resource=url, authorization_servers=[served_provider.url])
    served_provider.demo.config.advertise_s256 = False
    with pytest.raises(ValidationError, match="does not advertise PKCE S256"):
        await ta.toolkits.add_mcp("fake", url=url)
    assert "fake" not in ta.catalog


async def test_a_server_without_auth_is_a_no_auth_toolkit(ta: AsyncToolAuth) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    async with serve_app(notes_app(url, issuer=None, introspect=None), port=port):
        definition = await ta.toolkits.add_mcp("pubnotes", url=url, name="Public notes")
        assert [s.value for s in definition.auth_schemes] == ["NO_AUTH"]
        session = ta.create("anyone", toolkits=["pubnotes"])
        result = await session.call_mcp_tool("pubnotes", "add_note", {"title": "Hello"})
        assert result.artifact["title"] == "Hello"
        await ta.mcp_sessions().aclose()


async def test_a_401_naming_other_metadata_says_the_authorization_changed(
    home: Any, served_provider: ServedProvider
) -> None:
    """The server moved to another authorization setup (its 401 names new metadata): the tool
    says so instead of looping on refresh."""
    provider, provider_url = served_provider.demo, served_provider.url
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    inner = notes_app(url, issuer=provider_url, introspect=provider.introspect)
    moved = {"now": False}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and moved["now"] and scope["path"] == "/mcp":
            other = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/v2/mcp"
            response = Response(status_code=401, headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", resource_metadata="{other}"'
            })  # fmt: skip
            await response(scope, receive, send)
            return
        await inner(scope, receive, send)

    from toolauth import Settings

    settings = Settings.from_env({"TOOLAUTH_HOME": str(home)})
    async with (
        InBackground(serve_app(app, port=port)),
        AsyncToolAuth(settings=settings) as ta,
        ta.serve(port=0),
    ):
        await ta.toolkits.add_mcp("notes", url=url, name="Notes")
        await connect_user(ta, "user-a", "alice")
        session = ta.create("user-a", toolkits=["notes"])
        await session.call_mcp_tool("notes", "list_notes", {})
        await ta.mcp_sessions().aclose()  # the next call opens a new session
        moved["now"] = True
        with pytest.raises(ToolApiError, match="authorization changed.*add_mcp"):
            await session.call_mcp_tool("notes", "list_notes", {})
