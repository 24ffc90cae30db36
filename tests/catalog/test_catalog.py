"""The toolkit catalog: the shipped definition files, broken files, and run-time registration.

Every test reads real files (the shipped ``toolkits/*.json`` or ones written into ``tmp_path``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import toolauth.catalog as catalog_module
from toolauth._exceptions import CatalogError, ConfigurationError
from toolauth._models import AuthScheme
from toolauth.catalog import (
    ApiKeySchemeSpec,
    Catalog,
    OAuth2SchemeSpec,
    ToolkitDefinition,
    load_definition,
)

TOOLKITS_DIR = Path(catalog_module.__file__).parent / "toolkits"
SHIPPED_FILES = sorted(TOOLKITS_DIR.glob("*.json"))
EXPECTED_SLUGS = {
    "airtable",
    "demo",
    "github",
    "gmail",
    "googlecalendar",
    "hubspot",
    "jira",
    "linear",
    "notion",
    "openai",
    "pinecone",
    "slack",
    "twilio",
}
_PLACEHOLDER = re.compile(r"{(\w+)}")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


def _raw(slug: str) -> dict[str, Any]:
    """A shipped definition as the plain mapping in its file (a fresh copy every call)."""
    return json.loads((TOOLKITS_DIR / f"{slug}.json").read_text(encoding="utf-8"))


def _write(folder: Path, name: str, data: dict[str, Any] | str) -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _minimal(slug: str = "acme", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slug": slug,
        "name": "Acme",
        "description": "A made-up toolkit for tests.",
        "categories": ["testing"],
        "api_base_url": "https://api.acme.example",
        "auth_schemes": {
            "API_KEY": {
                "fields": [{"name": "api_key", "label": "API key"}],
                "placements": [{"in": "header", "name": "X-Api-Key", "format": "{api_key}"}],
            }
        },
    }
    data.update(changes)
    return data


# --- the shipped definitions -------------------------------------------------------------


def test_every_shipped_file_loads(catalog: Catalog) -> None:
    assert len(SHIPPED_FILES) >= 13
    assert len(catalog) == len(SHIPPED_FILES)
    assert set(catalog.slugs()) >= EXPECTED_SLUGS


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: p.name)
def test_shipped_file_validates_and_slug_is_file_name(path: Path) -> None:
    definition = load_definition(path.read_bytes(), source=str(path))
    assert definition.slug == path.stem
    assert definition.name.strip()
    assert definition.auth_schemes


@pytest.mark.parametrize("slug", sorted(EXPECTED_SLUGS))
def test_descriptions_and_categories_are_plain(catalog: Catalog, slug: str) -> None:
    definition = catalog.get(slug)
    # 1-2 sentences a user reads in a list: short, ends with a full stop.
    assert 20 <= len(definition.description) <= 400
    assert definition.description.endswith(".")
    assert definition.categories
    for category in definition.categories:
        assert re.fullmatch(r"[a-z][a-z-]*", category), category


def test_catalog_contains_is_case_insensitive(catalog: Catalog) -> None:
    assert "github" in catalog
    assert "GitHub" in catalog
    assert "nope" not in catalog
    assert 42 not in catalog
    assert catalog.get("GITHUB").slug == "github"


def _oauth_specs() -> list[Any]:
    found = []
    for definition in Catalog().list():
        spec = definition.oauth2()
        if spec is not None:
            found.append(pytest.param(definition.slug, spec, id=definition.slug))
    return found


@pytest.mark.parametrize(("slug", "spec"), _oauth_specs())
def test_oauth_urls_are_https(slug: str, spec: OAuth2SchemeSpec) -> None:
    urls = [spec.authorization_url, spec.token_url, spec.revocation_url, spec.userinfo_url]
    for url in filter(None, urls):
        if slug == "demo":
            assert url.startswith("{demo_provider_url}/"), url
        else:
            parts = urlsplit(url)
            assert parts.scheme == "https", url
            assert parts.netloc, url
            assert "{" not in url, url


def test_demo_is_the_only_toolkit_on_a_placeholder_host(catalog: Catalog) -> None:
    for definition in catalog.list():
        if definition.slug == "demo":
            assert definition.api_base_url.startswith("{demo_provider_url}")
        else:
            assert urlsplit(definition.api_base_url).scheme == "https", definition.slug


def _key_specs() -> list[Any]:
    found = []
    for definition in Catalog().list():
        for scheme, spec in definition.auth_schemes.items():
            if isinstance(spec, ApiKeySchemeSpec):
                name = f"{definition.slug}-{scheme.value}"
                found.append(pytest.param(definition.slug, scheme, spec, id=name))
    return found


@pytest.mark.parametrize(("slug", "scheme", "spec"), _key_specs())
def test_every_secret_field_is_sent(slug: str, scheme: AuthScheme, spec: ApiKeySchemeSpec) -> None:
    used: set[str] = set()
    for placement in spec.placements:
        for template in (placement.format, placement.username, placement.password):
            used.update(_PLACEHOLDER.findall(template or ""))
    secrets = {f.name for f in spec.fields if f.secret}
    assert secrets, f"{slug} {scheme.value} has no secret field"
    assert secrets <= used, f"{slug} {scheme.value}: secret fields never sent: {secrets - used}"
    if scheme is AuthScheme.BASIC:
        assert any(p.in_ == "basic" for p in spec.placements)


@pytest.mark.parametrize(("slug", "scheme", "spec"), _key_specs())
def test_url_placeholders_only_use_non_secret_fields(
    catalog: Catalog, slug: str, scheme: AuthScheme, spec: ApiKeySchemeSpec
) -> None:
    definition = catalog.get(slug)
    public = {f.name for f in spec.fields if not f.secret} | {"demo_provider_url", "base_url"}
    templates = [definition.api_base_url]
    if spec.test_request is not None:
        templates.append(spec.test_request.path)
    for template in templates:
        assert set(_PLACEHOLDER.findall(template)) <= public, (slug, template)


@pytest.mark.parametrize(("slug", "scheme", "spec"), _key_specs())
def test_field_patterns_reject_an_empty_value(
    slug: str, scheme: AuthScheme, spec: ApiKeySchemeSpec
) -> None:
    for field in spec.fields:
        if field.pattern is not None:
            compiled = re.compile(field.pattern)
            assert compiled.fullmatch("") is None, f"{slug}.{field.name} accepts an empty value"


def test_every_shipped_scheme_has_a_test_request(catalog: Catalog) -> None:
    for definition in catalog.list():
        for scheme, spec in definition.auth_schemes.items():
            assert spec.test_request is not None, (definition.slug, scheme.value)
            path = spec.test_request.path
            assert path.startswith(("/", "https://")), (definition.slug, path)


@pytest.mark.parametrize(
    ("slug", "default"),
    [
        ("github", AuthScheme.OAUTH2),
        ("gmail", AuthScheme.OAUTH2),
        ("googlecalendar", AuthScheme.OAUTH2),
        ("slack", AuthScheme.OAUTH2),
        ("notion", AuthScheme.OAUTH2),
        ("linear", AuthScheme.OAUTH2),
        ("hubspot", AuthScheme.OAUTH2),
        ("jira", AuthScheme.OAUTH2),
        ("openai", AuthScheme.API_KEY),
        ("pinecone", AuthScheme.API_KEY),
        ("airtable", AuthScheme.BEARER_TOKEN),
        ("twilio", AuthScheme.BASIC),
    ],
)
def test_default_scheme_is_the_most_common_one(
    catalog: Catalog, slug: str, default: AuthScheme
) -> None:
    assert catalog.get(slug).default_scheme is default


def test_provider_specifics(catalog: Catalog) -> None:
    github = catalog.get("github")
    gh_oauth = github.oauth2()
    assert gh_oauth is not None
    assert gh_oauth.token_url == "https://github.com/login/oauth/access_token"
    assert not gh_oauth.issues_refresh_tokens
    assert github.default_headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert AuthScheme.BEARER_TOKEN in github.auth_schemes

    for slug in ("gmail", "googlecalendar"):
        google = catalog.get(slug).oauth2()
        assert google is not None
        assert google.authorization_params["access_type"] == "offline"
        assert google.revocation_url == "https://oauth2.googleapis.com/revoke"

    slack = catalog.get("slack").oauth2()
    assert slack is not None
    assert slack.token_path == "authed_user"
    assert "user_scope" in slack.authorization_params
    assert slack.scope_separator == ","

    notion = catalog.get("notion")
    assert notion.default_headers["Notion-Version"]
    notion_oauth = notion.oauth2()
    assert notion_oauth is not None
    assert notion_oauth.authorization_params == {"owner": "user"}
    assert notion_oauth.token_endpoint_auth_method == "client_secret_basic"

    linear_key = catalog.get("linear").scheme(AuthScheme.API_KEY)
    assert isinstance(linear_key, ApiKeySchemeSpec)
    assert linear_key.placements[0].format == "{api_key}"  # no "Bearer" for personal keys

    jira = catalog.get("jira")
    jira_oauth = jira.oauth2()
    assert jira_oauth is not None
    assert jira_oauth.authorization_params["audience"] == "api.atlassian.com"
    assert "offline_access" in jira_oauth.default_scopes
    jira_basic = jira.scheme(AuthScheme.BASIC)
    assert isinstance(jira_basic, ApiKeySchemeSpec)
    assert jira_basic.test_request is not None
    assert jira_basic.test_request.path == "https://{site}.atlassian.net/rest/api/3/myself"
    site = next(f for f in jira_basic.fields if f.name == "site")
    assert site.pattern is not None
    assert not site.secret
    assert re.fullmatch(site.pattern, "acme-corp")
    assert not re.fullmatch(site.pattern, "acme.atlassian.net")

    twilio = catalog.get("twilio").scheme(AuthScheme.BASIC)
    assert isinstance(twilio, ApiKeySchemeSpec)
    sid = next(f for f in twilio.fields if f.name == "account_sid")
    assert sid.pattern is not None
    assert re.fullmatch(sid.pattern, "AC" + "0123456789abcdef" * 2)
    assert not re.fullmatch(sid.pattern, "SK" + "0123456789abcdef" * 2)

    openai = catalog.get("openai").scheme(AuthScheme.API_KEY)
    assert isinstance(openai, ApiKeySchemeSpec)
    key = openai.fields[0]
    assert key.pattern is not None
    assert re.fullmatch(key.pattern, "sk-proj-" + "a" * 40)
    assert not re.fullmatch(key.pattern, "pk-" + "a" * 40)


# --- broken definition files ---------------------------------------------------------------


def _load_error(tmp_path: Path) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        Catalog(extra_dirs=[tmp_path])
    return info.value


def test_missing_field_names_file_and_dotted_path(tmp_path: Path) -> None:
    data = _raw("github")
    data["slug"] = "github_copy"
    del data["auth_schemes"]["OAUTH2"]["token_url"]
    path = _write(tmp_path, "github_copy.json", data)

    error = _load_error(tmp_path)
    assert str(path) in str(error)
    assert "auth_schemes.OAUTH2.token_url" in str(error)
    assert "required" in str(error).lower()
    assert error.source == str(path)
    assert error.error == "catalog_error"
    assert isinstance(error, ConfigurationError)


def test_wrong_type_names_file_and_dotted_path(tmp_path: Path) -> None:
    data = _raw("demo")
    data["slug"] = "demo_copy"
    data["auth_schemes"]["OAUTH2"]["pkce"] = "sometimes"
    data["auth_schemes"]["API_KEY"]["fields"][0]["secret"] = {"nested": True}
    path = _write(tmp_path, "demo_copy.json", data)

    message = str(_load_error(tmp_path))
    assert str(path) in message
    assert "auth_schemes.OAUTH2.pkce" in message
    assert "auth_schemes.API_KEY.fields.0.secret" in message


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "acme.json", _minimal(homepage="https://acme.example"))
    message = str(_load_error(tmp_path))
    assert str(path) in message
    assert "homepage" in message


def test_spec_for_the_wrong_scheme_is_rejected(tmp_path: Path) -> None:
    data = _minimal()
    data["auth_schemes"] = {"OAUTH2": data["auth_schemes"]["API_KEY"]}
    _write(tmp_path, "acme.json", data)
    assert "OAuth2SchemeSpec" in str(_load_error(tmp_path))


def test_invalid_json_names_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.json", '{"slug": "broken", "name": ')
    error = _load_error(tmp_path)
    assert str(path) in str(error)
    assert "not valid JSON" in str(error)
    assert error.source == str(path)


def test_duplicate_of_a_shipped_slug(tmp_path: Path) -> None:
    path = _write(tmp_path, "my_github.json", _raw("github"))
    message = str(_load_error(tmp_path))
    assert str(path) in message
    assert "'github'" in message
    assert "already" in message


def test_duplicate_slug_between_extra_files(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", _minimal("acme"))
    second = _write(tmp_path, "b.json", _minimal("acme", name="Acme again"))
    message = str(_load_error(tmp_path))
    assert str(second) in message
    assert "'acme'" in message


def test_extra_dirs_add_valid_files(tmp_path: Path) -> None:
    _write(tmp_path, "acme.json", _minimal())
    (tmp_path / "notes.txt").write_text("not a definition", encoding="utf-8")
    catalog = Catalog(extra_dirs=[tmp_path])
    assert catalog.get("acme").name == "Acme"
    assert len(catalog) == len(SHIPPED_FILES) + 1


def test_placement_with_unknown_field_is_rejected(tmp_path: Path) -> None:
    data = _minimal()
    data["auth_schemes"]["API_KEY"]["placements"][0]["format"] = "{token}"
    _write(tmp_path, "acme.json", data)
    message = str(_load_error(tmp_path))
    assert "auth_schemes.API_KEY" in message
    assert "{token}" in message


# --- register / get / list ---------------------------------------------------------------


def test_register_mapping_uses_the_same_schema() -> None:
    catalog = Catalog()
    definition = catalog.register(_minimal("acme"))
    assert isinstance(definition, ToolkitDefinition)
    assert catalog.get("acme") is definition
    assert definition.default_scheme is AuthScheme.API_KEY
    assert "acme" not in Catalog()  # registration is per catalog


def test_register_definition_object() -> None:
    catalog = Catalog()
    definition = ToolkitDefinition.model_validate(_minimal("acme_two"))
    assert catalog.register(definition) is definition
    assert catalog.get("acme_two") is definition


def test_register_invalid_mapping_names_the_field() -> None:
    catalog = Catalog()
    data = _minimal()
    data["auth_schemes"]["API_KEY"]["fields"] = []
    with pytest.raises(CatalogError) as info:
        catalog.register(data)
    assert "register()" in str(info.value)
    assert "auth_schemes.API_KEY.fields" in str(info.value)
    assert "acme" not in catalog


def test_register_refuses_duplicate_unless_replace() -> None:
    catalog = Catalog()
    original = catalog.get("github")
    data = _raw("github")
    data["name"] = "GitHub Enterprise"

    with pytest.raises(CatalogError, match="already in the catalog"):
        catalog.register(data)
    assert catalog.get("github") is original

    replaced = catalog.register(data, replace=True)
    assert catalog.get("github") is replaced
    assert replaced.name == "GitHub Enterprise"
    assert len(catalog) == len(SHIPPED_FILES)
    # Other catalogs are untouched.
    assert Catalog().get("github").name == "GitHub"


def test_get_unknown_slug_lists_known_ones(catalog: Catalog) -> None:
    with pytest.raises(ConfigurationError) as info:
        catalog.get("nosuchapp")
    message = str(info.value)
    assert "'nosuchapp'" in message
    for slug in ("github", "slack", "twilio"):
        assert slug in message
    assert not isinstance(info.value, CatalogError)


def test_list_sorted_and_filtered_by_category(catalog: Catalog) -> None:
    everything = catalog.list()
    assert [d.slug for d in everything] == sorted(d.slug for d in everything)
    assert catalog.slugs() == [d.slug for d in everything]

    ai = [d.slug for d in catalog.list(category="ai")]
    assert ai == ["openai", "pinecone"]
    assert all("productivity" in d.categories for d in catalog.list(category="productivity"))
    assert "gmail" in {d.slug for d in catalog.list(category="email")}
    assert catalog.list(category="no-such-category") == []


def test_list_includes_registered_toolkits() -> None:
    catalog = Catalog()
    catalog.register(_minimal("acme"))
    assert [d.slug for d in catalog.list(category="testing")] == ["acme"]
