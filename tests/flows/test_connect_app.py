"""The connect app as a web app: escaping, security headers, odd requests, and mounting it
under a prefix inside another app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Connect, make_settings
from tests.flows.support import APP_CALLBACK, bearer_toolkit, query_of
from tests.helpers import Browser, hidden_fields
from toolauth import AsyncToolAuth
from toolauth.connect.serving import serve_app
from toolauth.demo.provider import DemoProvider

XSS = "<script>alert(1)</script>"
ATTR_XSS = '" autofocus onfocus="alert(1)'


def assert_security_headers(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def assert_escaped(html: str) -> None:
    assert "<script" not in html.lower()
    assert 'onfocus="alert' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_every_value_on_the_pages_is_escaped(connect: Connect, browser: Browser) -> None:
    ta = connect.ta
    definition = bearer_toolkit(name=f"Evil {XSS}")
    definition["description"] = f"Described {XSS}"
    field = definition["auth_schemes"]["BEARER_TOKEN"]["fields"][0]
    field.update(label=f"Token {XSS}", help=f"Help {XSS}", placeholder=ATTR_XSS)
    await ta.toolkits.register(definition)
    config = await ta.auth_configs.create("demo_bearer")
    req = await ta.connected_accounts.link("alice-user", config.id)

    form = await browser.get(req.redirect_url)
    rejected = await browser.post(
        req.redirect_url, {**hidden_fields(form.response.text), "token": "z" * 30}
    )
    token = connect.provider.issue_tokens("alice", client_id=DEMO_CLIENT_ID)["access_token"]
    done = await browser.post(
        req.redirect_url, {**hidden_fields(rejected.response.text), "token": token}
    )
    again = await browser.get(req.redirect_url)

    assert form.response.status_code == 200
    html = form.response.text
    assert_escaped(html)
    for text in ("Evil &lt;script&gt;", "Described &lt;script&gt;", "Token &lt;script&gt;"):
        assert text in html
    assert 'placeholder="&#34; autofocus onfocus=&#34;alert(1)"' in html
    assert rejected.response.status_code == 400
    assert_escaped(rejected.response.text)
    assert "rejected these credentials" in rejected.response.text
    assert done.response.status_code == 200
    assert_escaped(done.response.text)
    assert again.response.status_code == 410
    for response in (form.response, rejected.response, done.response, again.response):
        assert_security_headers(response)


async def test_error_messages_from_the_provider_are_escaped(
    connect: Connect, paused: Browser
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id)
    landing = await paused.oauth_consent(req.redirect_url)
    state = query_of(landing.url)["state"]

    response = await paused.http.get(
        f"{connect.base_url}/oauth/callback",
        params={"state": state, "error": XSS, "error_description": XSS},
    )

    assert response.status_code == 400
    # The provider's text loses its markup before it is escaped (RFC 6749 §4.1.2.1: anyone
    # can put anything in these parameters).
    assert "<script" not in response.text.lower()
    assert "&lt;script" not in response.text
    assert "invalid_request" in response.text  # a code that is no RFC 6749 §5.2 code
    assert_security_headers(response)


async def test_headers_on_redirects_and_message_pages(connect: Connect) -> None:
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)

    async with httpx.AsyncClient() as http:
        redirect = await http.get(req.redirect_url)
        missing = await http.get(f"{connect.base_url}/link/ln_doesnotexist")
        not_a_link = await http.get(f"{connect.base_url}/link/ca_{req.link_id[3:]}")
        callback = await http.get(f"{connect.base_url}/oauth/callback")
        health = await http.get(f"{connect.base_url}/healthz")
        css = await http.get(urljoin(f"{connect.base_url}/link/ln_x", "../static/toolauth.css"))

    assert redirect.status_code == 303
    assert_security_headers(redirect)
    assert missing.status_code == 404 and "Link not found" in missing.text
    assert not_a_link.status_code == 404
    assert callback.status_code == 400 and "Missing state" in callback.text
    for response in (missing, not_a_link, callback):
        assert response.headers["content-type"].startswith("text/html")
        assert_security_headers(response)
    assert health.json() == {"status": "ok"}
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert 'href="../static/toolauth.css"' in missing.text


async def test_posting_to_an_oauth_link_is_refused(connect: Connect) -> None:
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)

    async with httpx.AsyncClient() as http:
        response = await http.post(req.redirect_url, data={"api_key": "demo_12345678"})

    assert response.status_code == 405
    assert "Not a form link" in response.text
    assert_security_headers(response)


async def test_an_oversized_form_is_refused(connect: Connect, browser: Browser) -> None:
    config = await connect.ta.auth_configs.create("demo", auth_scheme="API_KEY")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)
    page = await browser.get(req.redirect_url)

    response = await browser.http.post(
        req.redirect_url,
        data={**hidden_fields(page.response.text), "api_key": "demo_" + "a" * 20_000},
    )

    assert response.status_code == 413
    assert not (await connect.ta.connected_accounts.get(req.connected_account_id)).credentials


async def test_a_broken_toolkit_definition_gives_a_plain_error_page(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    data = ta.toolkits.get("demo").model_dump(mode="json", by_alias=True, exclude_none=True)
    data["auth_schemes"]["OAUTH2"]["authorization_url"] = "{nowhere}/authorize"
    await ta.toolkits.register(data, replace=True, override=True)
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id)

    landing = await browser.get(req.redirect_url)

    assert landing.response.status_code == 409  # the operator's to fix: never a 500
    assert "Not configured" in landing.response.text
    assert "Traceback" not in landing.response.text
    assert_security_headers(landing.response)


@pytest.fixture
async def mounted(
    home: Path, provider: tuple[DemoProvider, str], store_env: dict[str, str]
) -> AsyncIterator[tuple[AsyncToolAuth, str, DemoProvider]]:
    """The connect app mounted at /toolauth inside another app, base_url set to match."""
    demo, provider_url = provider
    settings = make_settings(
        home,
        **store_env,
        TOOLAUTH_DEMO_PROVIDER_URL=provider_url,
        TOOLAUTH_DEMO_CLIENT_ID=DEMO_CLIENT_ID,
        TOOLAUTH_DEMO_CLIENT_SECRET=DEMO_CLIENT_SECRET,
    )
    async with AsyncToolAuth(settings=settings) as ta:
        parent = Starlette(routes=[Mount("/toolauth", app=ta.asgi_app())])
        async with serve_app(parent) as url:
            ta.urls.serving_at(f"{url}/toolauth")  # where the parent app serves it
            demo.register_client(
                DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [f"{url}/toolauth/oauth/callback"]
            )
            yield ta, f"{url}/toolauth", demo


async def test_oauth_through_an_app_mounted_under_a_prefix(mounted, browser: Browser) -> None:
    ta, base_url, _ = mounted
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id, callback_url=APP_CALLBACK)
    assert req.redirect_url.startswith(f"{base_url}/link/")

    first = await browser.http.get(req.redirect_url)
    assert query_of(first.headers["location"])["redirect_uri"] == f"{base_url}/oauth/callback"
    assert "Path=/toolauth/oauth/callback" in first.headers["set-cookie"]
    landing = await browser.oauth_consent(req.redirect_url)

    assert query_of(landing.url)["status"] == "success", landing.response.text
    assert (await req.wait_for_connection(timeout=5)).is_active


async def test_key_forms_through_an_app_mounted_under_a_prefix(mounted, browser: Browser) -> None:
    ta, _, demo = mounted
    config = await ta.auth_configs.create("demo", auth_scheme="API_KEY")
    req = await ta.connected_accounts.link("alice-user", config.id, callback_url=APP_CALLBACK)

    page = await browser.get(req.redirect_url)
    assert f"Path=/toolauth/link/{req.link_id}" in page.response.headers["set-cookie"]
    css = re.search(r'href="([^"]+\.css)"', page.response.text).group(1)
    assert (await browser.http.get(urljoin(req.redirect_url, css))).status_code == 200
    landing = await browser.post(
        req.redirect_url,
        {**hidden_fields(page.response.text), "api_key": demo.issue_api_key("alice")},
    )

    assert query_of(landing.url)["status"] == "success", landing.response.text
    assert (await req.wait_for_connection(timeout=5)).is_active


async def test_retry_links_point_below_the_prefix(mounted, browser: Browser) -> None:
    ta, base_url, demo = mounted
    demo.config.token_endpoint_fault = "500"
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice-user", config.id)

    landing = await browser.oauth_consent(req.redirect_url)

    assert landing.response.status_code == 502
    assert f'href="{base_url}/link/{req.link_id}"' in landing.response.text


async def test_no_route_redirects_to_a_location_built_from_the_request(connect: Connect) -> None:
    """Starlette's trailing-slash redirect is off: ``/link/x/`` (with any Host header) is a
    404 page, not a 307 to a URL made of the request's own Host."""
    app = connect.ta.asgi_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9") as http:
        for path in ("/link/ln_x/", "/healthz/", "/oauth/callback/", "/api/links/ln_x/"):
            response = await http.get(path, headers={"host": "evil.example"})
            assert response.status_code == 404 and "location" not in response.headers, path
