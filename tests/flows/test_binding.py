"""Link binding in-process: with ``ta.asgi_app(verify_user=...)`` a connect link is completed
only by the browser whose signed-in user (as the host app says) the link was made for — on
the link page, on the OAuth callback and on the key form. A mismatch stores nothing and leaves
the link usable by its rightful user. Over real HTTP, against the demo provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount

from tests.conftest import Connect
from tests.flows.support import APP_CALLBACK, query_of
from tests.helpers import Browser
from toolauth import AsyncToolAuth, ConnectionStatus, Settings
from toolauth._models import LinkStatus
from toolauth.connect.serving import serve_app


def signed_in_user(request: Request) -> str | None:
    """The host app's login, as a stand-in: the user id in its session cookie."""
    return request.cookies.get("app_session")


@dataclass
class Bound:
    ta: AsyncToolAuth
    url: str


@pytest.fixture
async def bound(connect: Connect) -> AsyncIterator[Bound]:
    """The host app: the connect app mounted with ``verify_user``, on the same store."""
    async with AsyncToolAuth(settings=Settings.from_env(connect.env)) as ta:
        app = Starlette(routes=[Mount("/", ta.asgi_app(verify_user=signed_in_user))])
        async with serve_app(app) as url:
            ta.urls.serving_at(url)
            connect.provider.register_client(
                "toolauth-tests", "demo-client-secret-SENTINEL", [f"{url}/oauth/callback"]
            )
            yield Bound(ta, url)


def browser_of(user: str | None, url: str) -> Browser:
    browser = Browser(stop_at=APP_CALLBACK)
    if user is not None:
        browser.http.cookies.set("app_session", user, domain="127.0.0.1")
    return browser


async def link_status(ta: AsyncToolAuth, link_id: str) -> LinkStatus:
    link = await (await ta.store()).get_link(link_id)
    assert link is not None
    return link.status


@pytest.mark.parametrize(("who", "code"), [("mallory", 403), (None, 401)])
async def test_another_browser_cannot_open_the_link(bound: Bound, who, code) -> None:
    ta = bound.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice", config.id, callback_url=APP_CALLBACK)
    intruder = browser_of(who, bound.url)
    try:
        page = await intruder.get(req.redirect_url)
    finally:
        await intruder.aclose()
    assert page.response.status_code == code
    assert ("for someone else" if who else "Sign in first") in page.response.text
    assert "/oauth/authorize" not in page.url  # never sent to the provider
    assert await link_status(ta, req.link_id) is LinkStatus.PENDING
    # The rightful user still completes it.
    alice = browser_of("alice", bound.url)
    try:
        landing = await alice.oauth_consent(req.redirect_url)
    finally:
        await alice.aclose()
    assert query_of(landing.url)["status"] == "success"
    account = await req.wait_for_connection(timeout=5)
    assert account.user_id == "alice" and account.is_active


async def test_the_callback_checks_the_user_again(bound: Bound) -> None:
    """Alice starts; the browser that comes back from the provider is signed in as someone
    else: refused before the state is spent, and Alice can finish afterwards."""
    ta = bound.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice", config.id, callback_url=APP_CALLBACK)
    browser = browser_of("alice", bound.url)
    browser.stop_at = f"{bound.url}/oauth/callback"
    try:
        at_callback = await browser.oauth_consent(req.redirect_url)
        assert at_callback.url.startswith(f"{bound.url}/oauth/callback?")
        browser.http.cookies.set("app_session", "mallory", domain="127.0.0.1")
        refused = await browser.http.get(at_callback.url)
        assert refused.status_code == 403 and "for someone else" in refused.text
        account = await ta.connected_accounts.get(req.id)
        assert account.status is ConnectionStatus.INITIATED and not account.credentials
        assert await link_status(ta, req.link_id) is LinkStatus.PENDING
        browser.http.cookies.set("app_session", "alice", domain="127.0.0.1")
        accepted = await browser.http.get(at_callback.url)
    finally:
        await browser.aclose()
    assert accepted.status_code == 303
    assert query_of(accepted.headers["location"])["status"] == "success"
    assert (await req.wait_for_connection(timeout=5)).is_active


async def test_a_key_form_is_bound_too(bound: Bound, connect: Connect) -> None:
    ta = bound.ta
    config = await ta.auth_configs.create("demo", auth_scheme="API_KEY")
    req = await ta.connected_accounts.link("alice", config.id, callback_url=APP_CALLBACK)
    key = connect.provider.issue_api_key("alice")
    alice = browser_of("alice", bound.url)
    try:
        form = await alice.get(req.redirect_url)
        assert form.response.status_code == 200
        from tests.helpers import hidden_fields

        fields = hidden_fields(form.response.text)
        alice.http.cookies.set("app_session", "mallory", domain="127.0.0.1")
        posted = await alice.http.post(req.redirect_url, data={**fields, "api_key": key})
    finally:
        await alice.aclose()
    assert posted.status_code == 403
    account = await ta.connected_accounts.get(req.id)
    assert not account.credentials and account.status is ConnectionStatus.INITIATED


async def test_verify_user_may_be_async_and_a_failing_one_signs_out(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: Request) -> str | None:
        raise RuntimeError("session store down")

    async with (
        AsyncToolAuth(settings=Settings.from_env(connect.env)) as ta,
        serve_app(Starlette(routes=[Mount("/", ta.asgi_app(verify_user=broken))])) as url,
    ):
        ta.urls.serving_at(url)
        config = await ta.auth_configs.create("demo")
        req = await ta.connected_accounts.link("alice", config.id)
        browser = browser_of("alice", url)
        try:
            page = await browser.get(req.redirect_url)
        finally:
            await browser.aclose()
    assert page.response.status_code == 401
    assert any("verify_user failed" in r.getMessage() for r in caplog.records)
    assert req.link_id not in caplog.text  # the log never holds a link id
