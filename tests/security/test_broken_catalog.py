"""No catalog value can make the connect app answer 500: a toolkit whose URL templates do not
render (an unknown placeholder, a malformed template) gives the user a plain "Not configured"
page with a 4xx status, and the operator a log record with the traceback. Served for real
(``ta.serve(port=0)`` next to the demo provider), opened by a scripted browser."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import Connect
from tests.flows.support import basic_toolkit, demo_variant
from tests.helpers import Browser
from toolauth import ConfigurationError


def assert_not_configured(response: Any, caplog: pytest.LogCaptureFixture) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert "Not configured" in response.text
    assert "Traceback" not in response.text
    records = [r for r in caplog.records if r.name == "toolauth.connect" and r.exc_info]
    assert records, "the error was not logged with its traceback"
    assert any(r.exc_info[0] is ConfigurationError for r in records if r.exc_info)


@pytest.mark.parametrize(
    "authorization_url",
    ["{nowhere}/authorize", "{demo_provider_url/oauth/authorize", "{demo_provider_url.x}/a", "{}"],
)
async def test_an_authorization_url_that_does_not_render(
    connect: Connect, browser: Browser, caplog: pytest.LogCaptureFixture, authorization_url: str
) -> None:
    """RFC 6749 §3.1: the authorization endpoint comes from the catalog; one that cannot be
    built is the operator's problem, shown as such (never a 500, never a traceback)."""
    await demo_variant(connect.ta, authorization_url=authorization_url)
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)

    with caplog.at_level(logging.ERROR, logger="toolauth.connect"):
        landing = await browser.get(req.redirect_url)

    assert_not_configured(landing.response, caplog)


@pytest.mark.parametrize(
    ("field", "value"),
    [("token_url", "{nowhere}/oauth/token"), ("issuer", "{demo_provider_url")],
)
async def test_a_token_url_or_issuer_that_breaks_at_the_callback(
    connect: Connect,
    browser: Browser,
    caplog: pytest.LogCaptureFixture,
    field: str,
    value: str,
) -> None:
    """RFC 6749 §4.1.3: the token request is made at the callback, after the user consented;
    a token endpoint (or RFC 9207 issuer) that cannot be built gives the same plain page."""
    await demo_variant(connect.ta, **{field: value})
    config = await connect.ta.auth_configs.create("demo")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)

    with caplog.at_level(logging.ERROR, logger="toolauth.connect"):
        landing = await browser.oauth_consent(req.redirect_url)

    assert "/oauth/callback" in landing.url
    assert_not_configured(landing.response, caplog)
    account = await connect.ta.connected_accounts.get(req.connected_account_id)
    assert not account.credentials


@pytest.mark.parametrize(
    ("api_base_url", "path"),
    [("{demo_provider_url}/api", "/me/{missing}"), ("{nowhere}/api", "/me"), ("{", "/me")],
)
async def test_a_key_form_whose_check_request_does_not_render(
    connect: Connect,
    browser: Browser,
    caplog: pytest.LogCaptureFixture,
    api_base_url: str,
    path: str,
) -> None:
    """A key form's check request (``test_request``) is built from catalog templates when
    the user submits: a broken one is a plain "Not configured" page, nothing is stored."""
    definition = basic_toolkit()
    definition["api_base_url"] = api_base_url
    definition["auth_schemes"]["BASIC"]["test_request"]["path"] = path
    await connect.ta.toolkits.register(definition)
    config = await connect.ta.auth_configs.create("demo_basic")
    req = await connect.ta.connected_accounts.link("alice-user", config.id)

    with caplog.at_level(logging.ERROR, logger="toolauth.connect"):
        landing = await browser.submit_key_form(
            req.redirect_url, {"username": "alice", "password": "wonderland"}
        )

    assert_not_configured(landing.response, caplog)
    account = await connect.ta.connected_accounts.get(req.connected_account_id)
    assert not account.credentials
