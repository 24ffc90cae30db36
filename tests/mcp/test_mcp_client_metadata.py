"""Client ID metadata documents (MCP authorization 2025-11-25; draft-ietf-oauth-client-id-
metadata-document): the connect app serves each MCP toolkit's document, whose URL is the
client_id of its managed configs when the authorization server supports them. Over real HTTP
against the demo provider, which fetches and checks the document; and MCP's order of
preference: custom config > document > dynamic registration (RFC 7591) > manual."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import InBackground, ServedProvider
from tests.helpers import free_port
from tests.mcp.conftest import Notes
from tests.mcp.test_mcp_toolkit import connect_user
from toolauth import AuthScheme
from toolauth.catalog import McpServerSpec, ToolkitDefinition
from toolauth.connect.serving import serve_app
from toolauth.oauth.authorize import authorization_url
from toolauth.oauth.client_metadata import registration_mode


async def use_documents(notes: Notes) -> ToolkitDefinition:
    """Switch client ID metadata documents on at the provider and discover notes again."""
    notes.provider.config.client_id_metadata_documents = True
    return await notes.ta.toolkits.add_mcp("notes", url=notes.url, name="Notes", replace=True)


async def test_a_document_client_connects_with_no_registration(notes: Notes) -> None:
    """MCP's order: the provider offers both documents and RFC 7591; the document wins, so the
    managed config's client_id is the document's URL, nothing is registered, and the user
    connects, calls tools, refreshes and revokes as a public client (PKCE, no secret)."""
    ta, provider = notes.ta, notes.provider
    definition = await use_documents(notes)
    assert definition.mcp is not None
    assert definition.mcp.client_registration == "metadata_document"
    assert definition.mcp.registration_endpoint is not None  # offered, and not used
    account_id = await connect_user(ta, "user-a", "alice")
    assert provider.stats.registrations == 0
    assert provider.stats.client_documents_fetched >= 1
    (config,) = await ta.auth_configs.list(toolkit="notes")
    url = f"{notes.base_url}/clients/notes.json"
    assert config.credentials["client_id"].get_secret_value() == url
    assert "client_secret" not in config.credentials
    session = ta.create("user-a", toolkits=["notes"])
    listed = await session.call_mcp_tool("notes", "list_notes", {})
    assert listed.artifact["total"] == 1
    provider.expire_access_tokens()
    await session.call_mcp_tool("notes", "list_notes", {})
    assert provider.stats.refresh_requests == 1
    assert provider.stats.token_auth_methods["none"] == 2  # the code, then the refresh
    assert provider.stats.token_auth_methods["client_secret_basic"] == 0
    (account,) = await ta.connected_accounts.list(user_id="user-a", toolkit="notes")
    token = account.credentials["access_token"].get_secret_value()
    assert provider.introspect(token)["client_id"] == url
    assert provider.introspect(token)["aud"] == notes.url  # RFC 8707
    await ta.connected_accounts.delete(account_id)
    assert provider.introspect(token) == {"active": False}  # revoked as the public client


async def test_the_connect_app_serves_the_document(notes: Notes) -> None:
    """The draft's "Client Metadata": the document's client_id is its own URL; it lists the connect app's one
    redirect URI, is a public client, and holds nothing secret. Toolkits that use no document
    here have none."""
    await notes.ta.toolkits.add_mcp("plain", url=notes.url, name="Plain")  # before: dynamic
    await use_documents(notes)
    url = f"{notes.base_url}/clients/notes.json"
    async with httpx.AsyncClient() as http:
        answer = await http.get(url)
        missing = [
            (await http.get(f"{notes.base_url}/clients/{slug}.json")).status_code
            for slug in ("plain", "demo", "nobody_here", "NOTES", "..")
        ]
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "public, max-age=300"
    assert answer.json() == {
        "client_id": url,
        "client_name": "toolauth: Notes",
        "redirect_uris": [f"{notes.base_url}/oauth/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    assert missing == [404, 404, 404, 404, 404]


async def test_a_custom_config_wins_over_the_document(notes: Notes) -> None:
    """MCP's order: a client the app brings (a custom auth config) comes before documents."""
    ta, provider = notes.ta, notes.provider
    await use_documents(notes)
    provider.register_client("own-app", "own-secret", [f"{notes.base_url}/oauth/callback"])
    config = await ta.auth_configs.create(
        "notes", type="use_custom_auth",
        credentials={"client_id": "own-app", "client_secret": "own-secret"},
    )  # fmt: skip
    session = ta.create("user-a", toolkits=["notes"], auth_configs={"notes": config.id})
    link = await session.authorize("notes")
    assert link.redirect_url is not None
    async with httpx.AsyncClient() as http:
        opened = await http.get(link.redirect_url)
    assert opened.status_code == 303
    query = parse_qs(urlsplit(opened.headers["location"]).query)
    assert query["client_id"] == ["own-app"]
    assert query["code_challenge_method"] == ["S256"] and query["resource"] == [notes.url]


async def test_a_config_keeps_the_client_it_registered(notes: Notes) -> None:
    """A managed config that registered a client (RFC 7591) before the provider offered
    documents keeps it: its accounts' refresh tokens belong to that client."""
    ta, provider = notes.ta, notes.provider
    await connect_user(ta, "user-a", "alice")
    await use_documents(notes)
    await connect_user(ta, "user-b", "bob")
    (config,) = await ta.auth_configs.list(toolkit="notes")
    assert config.credentials["client_id"].get_secret_value().startswith("dyn_")
    assert provider.stats.registrations == 1
    assert provider.stats.client_documents_fetched == 0


async def test_without_documents_or_registration_the_client_is_manual(notes: Notes) -> None:
    notes.provider.config.dynamic_registration = False
    definition = await notes.ta.toolkits.add_mcp("notes", url=notes.url, replace=True)
    assert definition.mcp is not None
    assert definition.mcp.client_registration == "manual"
    assert not definition.mcp.client_id_metadata_document_supported


def _mcp_definition(*, documents: bool, registration: str | None) -> ToolkitDefinition:
    return ToolkitDefinition.model_validate({
        "slug": "remote", "name": "Remote", "description": "A remote MCP server.",
        "api_base_url": "https://mcp.example.com/mcp",
        "auth_schemes": {AuthScheme.OAUTH2: {
            "authorization_url": "https://as.example.com/authorize",
            "token_url": "https://as.example.com/token",
        }},
        "mcp": McpServerSpec(
            url="https://mcp.example.com/mcp", issuer="https://as.example.com",
            client_id_metadata_document_supported=documents,
            registration_endpoint=registration,
        ),
    })  # fmt: skip


@pytest.mark.parametrize(
    ("documents", "registration", "base_url", "mode"),
    [
        (True, "https://as.example.com/register", "https://app.example.com", "metadata_document"),
        (True, None, "http://127.0.0.1:8000/connect", "metadata_document"),  # loopback http
        # http off loopback cannot serve a document (the draft: https): fall back
        (True, "https://as.example.com/register", "http://app.example.com", "dynamic"),
        (True, None, "http://app.example.com", "manual"),
        (True, None, "https://app.example.com/a/../b", "manual"),  # dot segments
        (False, "https://as.example.com/register", "https://app.example.com", "dynamic"),
        (False, None, "https://app.example.com", "manual"),
    ],
)
def test_registration_mode_follows_mcp_order(
    documents: bool, registration: str | None, base_url: str, mode: str
) -> None:
    """MCP authorization, client registration: documents, then RFC 7591, then manual."""
    definition = _mcp_definition(documents=documents, registration=registration)
    assert registration_mode(definition, base_url) == mode


@pytest.fixture
async def documents_at() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A loopback server whose ``/client.json`` answers what the test puts in the dict."""
    served: dict[str, Any] = {}

    async def document(request: Request) -> Response:
        return JSONResponse(served)

    port = free_port()
    app = Starlette(routes=[Route("/client.json", document)])
    async with InBackground(serve_app(app, port=port)):
        yield f"http://127.0.0.1:{port}/client.json", served


REDIRECT = "http://127.0.0.1:8000/oauth/callback"


@pytest.mark.parametrize(
    ("change", "refusal", "accepted"),
    [
        ({}, None, 1),
        # a valid document (kept), which does not list this redirect_uri
        ({"redirect_uris": ["http://127.0.0.1:8000/elsewhere"]}, "is not registered for", 1),
        ({"client_id": "http://127.0.0.1:1/other.json"}, "not the URL it was fetched from", 0),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "must not use a shared", 0),
        ({"client_secret": "s"}, "must not use a shared secret", 0),
        ({"redirect_uris": []}, "must be a non-empty list", 0),
    ],
)
async def test_the_provider_checks_the_document(
    served_provider: ServedProvider,
    documents_at: tuple[str, dict[str, Any]],
    change: dict[str, Any],
    refusal: str | None,
    accepted: int,
) -> None:
    """The demo authorization server fetches the document the client_id names and refuses
    one that names another client_id, does not list the redirect_uri (exact match, RFC 9700
    §4.1.3), or uses a shared secret (the draft forbids them); a good one gets the sign-in page."""
    provider, provider_url = served_provider.demo, served_provider.url
    provider.config.client_id_metadata_documents = True
    url, served = documents_at
    served.update({
        "client_id": url, "client_name": "Doc client", "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none", **change,
    })  # fmt: skip
    request = authorization_url(
        f"{provider_url}/oauth/authorize", client_id=url, redirect_uri=REDIRECT,
        scopes=("profile",), scope_separator=" ", state="s" * 20, code_verifier="v" * 43,
        extra={}, resource=None,
    )  # fmt: skip
    async with httpx.AsyncClient() as http:
        answer = await http.get(request)
    if refusal is None:
        assert answer.status_code == 200 and "Doc client" in answer.text
    else:
        assert answer.status_code == 400
        assert refusal in answer.text.replace("&#39;", "'")
        assert "location" not in answer.headers  # never sent back to an unlisted redirect
    assert provider.stats.client_documents_fetched == accepted


async def test_the_provider_fetches_documents_only_when_switched_on(
    served_provider: ServedProvider, documents_at: tuple[str, dict[str, Any]]
) -> None:
    url, served = documents_at
    served.update({"client_id": url, "redirect_uris": [REDIRECT]})
    async with httpx.AsyncClient() as http:
        metadata = await http.get(f"{served_provider.url}/.well-known/oauth-authorization-server")
        answer = await http.get(
            f"{served_provider.url}/oauth/authorize",
            params={"client_id": url, "redirect_uri": REDIRECT, "response_type": "code"},
        )
    assert metadata.json()["client_id_metadata_document_supported"] is False
    assert answer.status_code == 400 and "Unknown client" in answer.text
    assert served_provider.demo.stats.client_documents_fetched == 0
