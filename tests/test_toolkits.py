"""ta.toolkits: the catalog through the client, and discovery from a real metadata endpoint."""

import json
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from toolauth import (
    AsyncToolAuth,
    AuthScheme,
    CatalogError,
    ConfigurationError,
    ConflictError,
    Settings,
    ToolAuth,
    ValidationError,
)
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
    await ta.toolkits.register({
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
    with pytest.raises(ConflictError, match="already stored"):
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


# -- TOOLAUTH_TOOLKITS_DIR, the sync client ----------------------------------------------------


def _definition(slug: str, name: str) -> dict[str, object]:
    return {
        "slug": slug, "name": name, "description": "An API.", "api_base_url": "https://acme.test",
        "auth_schemes": {"NO_AUTH": {}},
    }  # fmt: skip


async def test_the_toolkits_folder_is_loaded_at_start(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "toolkits"
    folder.mkdir()
    (folder / "acme.json").write_text(json.dumps(_definition("acme", "Acme")), encoding="utf-8")
    (folder / "README.txt").write_text("not a definition", encoding="utf-8")
    env = {"TOOLAUTH_HOME": str(home), "TOOLAUTH_TOOLKITS_DIR": str(folder)}
    async with AsyncToolAuth(settings=Settings.from_env(env)) as ta:
        assert ta.toolkits.get("acme").name == "Acme"
        assert ta.toolkits.source("acme") == "folder"
        assert ta.toolkits.source("github") == "builtin"
        with pytest.raises(ConfigurationError, match=r"acme\.json.*override=True"):
            await ta.toolkits.register(_definition("acme", "Acme again"))
        with pytest.raises(ConfigurationError, match=r"comes from .*acme\.json"):
            await ta.toolkits.remove("acme")
        config = await ta.auth_configs.create("acme")
        assert config.auth_scheme is AuthScheme.NO_AUTH


async def test_a_bad_file_or_a_missing_folder_is_named(home: Path, tmp_path: Path) -> None:
    env = {"TOOLAUTH_HOME": str(home), "TOOLAUTH_TOOLKITS_DIR": str(tmp_path / "nowhere")}
    with pytest.raises(CatalogError, match="nowhere: the toolkits folder"):
        AsyncToolAuth(settings=Settings.from_env(env))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"slug": "bad", "name": "Bad"}), encoding="utf-8")
    env["TOOLAUTH_TOOLKITS_DIR"] = str(tmp_path)
    with pytest.raises(CatalogError, match=r"bad\.json: field description"):
        AsyncToolAuth(settings=Settings.from_env(env))


def test_the_sync_client_stores_and_a_new_session_finds_it(home: Path) -> None:
    with ToolAuth(home=home) as first, ToolAuth(home=home) as second:
        session = second.create("user-1", toolkits=["weather"])  # its store is not open yet
        first.toolkits.register(_definition("weather", "Weather"))
        assert [c.status for c in session.toolkits()] == ["active"]  # NO_AUTH: at once
        assert second.toolkits.get("weather").name == "Weather"
        used_by = [c.id for c in second.auth_configs.list(toolkit="weather")]
        with pytest.raises(ConflictError, match="used by auth config"):
            first.toolkits.remove("weather")
        assert first.toolkits.remove("weather", force=True) == used_by
