"""ta.toolkits: the catalog through the client, and discovery from a real metadata endpoint."""

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from toolauth import AuthScheme, ConfigurationError, ValidationError
from toolauth.connect.serving import serve_app
from toolauth.oauth.discovery import metadata_urls


def test_metadata_urls_follow_rfc8414_and_oidc():
    assert metadata_urls("https://id.example/tenant/") == [
        "https://id.example/.well-known/oauth-authorization-server/tenant",  # RFC 8414 §3.1
        "https://id.example/tenant/.well-known/openid-configuration",  # OIDC Discovery §4
    ]


async def test_list_get_register(ta):
    assert "github" in [t.slug for t in ta.toolkits.list()]
    assert ta.toolkits.get("GitHub").slug == "github"
    assert all("productivity" in t.categories for t in ta.toolkits.list(category="productivity"))
    ta.toolkits.register({
        "slug": "acme", "name": "Acme", "description": "An API.", "api_base_url": "https://acme.test",
        "auth_schemes": {"BEARER_TOKEN": {
            "fields": [{"name": "token", "label": "Token"}],
            "placements": [{"in": "header", "name": "Authorization", "format": "Bearer {token}"}],
        }},
    })  # fmt: skip
    config = await ta.auth_configs.create("acme")
    assert config.auth_scheme is AuthScheme.BEARER_TOKEN


async def test_discover_from_the_demo_provider(ta, provider):
    _, url = provider
    definition = await ta.toolkits.discover("demo_idp", issuer=url, scopes=["profile"])
    spec = definition.oauth2()
    assert spec.authorization_url == f"{url}/oauth/authorize"
    assert spec.token_url == f"{url}/oauth/token"
    assert spec.revocation_url == f"{url}/oauth/revoke"
    assert spec.issuer == url
    assert spec.pkce is True
    assert spec.default_scopes == ("profile",)
    assert ta.toolkits.get("demo_idp") == definition
    with pytest.raises(Exception, match="already in the catalog"):
        await ta.toolkits.discover("demo_idp", issuer=url)


async def test_discover_refuses_a_foreign_issuer(ta):
    async def metadata(request):
        return JSONResponse({
            "issuer": "https://evil.example", "authorization_endpoint": "https://evil.example/a",
            "token_endpoint": "https://evil.example/t",
        })  # fmt: skip

    app = Starlette(routes=[Route("/.well-known/openid-configuration", metadata)])
    async with serve_app(app) as url:
        with pytest.raises(ValidationError, match=r"RFC 8414 §3\.3"):
            await ta.toolkits.discover("evil", issuer=url)
    assert "evil" not in ta.catalog


async def test_discover_without_metadata_says_what_it_tried(ta):
    async with serve_app(Starlette()) as url:
        with pytest.raises(ConfigurationError, match="oauth-authorization-server"):
            await ta.toolkits.discover("nothing", issuer=url)
