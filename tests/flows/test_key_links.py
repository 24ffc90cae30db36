"""API_KEY, BEARER_TOKEN and BASIC connect links end to end: the connect app's key form over
real HTTP, checked against the demo provider's API, stored in a real SQLite file."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Connect
from tests.flows.support import (
    APP_CALLBACK,
    DEMO_CLIENT_ID,
    basic_toolkit,
    bearer_toolkit,
    db_bytes,
    query_of,
    snapshot,
)
from tests.helpers import Browser, hidden_fields
from toolauth._models import ConnectionStatus, LinkStatus
from toolauth.connect.pages import expires_in


async def api_key_link(connect: Connect, *, callback_url: str | None = APP_CALLBACK):
    config = await connect.ta.auth_configs.create("demo", auth_scheme="API_KEY")
    return await connect.ta.connected_accounts.link(
        "alice-user", config.id, callback_url=callback_url
    )


def accounts_only(ta) -> dict:
    return {k: v for k, v in snapshot(ta).items() if k[0] == "account"}


async def link_status(connect: Connect, link_id: str) -> LinkStatus:
    store = await connect.ta.store()
    return (await store.get_link(link_id)).status


async def test_the_form_shows_the_catalogs_fields_with_csrf_protection(
    connect: Connect, browser: Browser
) -> None:
    req = await api_key_link(connect)

    response = await browser.http.get(req.redirect_url)

    assert response.status_code == 200
    html = response.text
    assert "Connect Demo" in html
    assert "Demo API key" in html  # the field's label
    assert "Any key the demo provider issued" in html  # its help
    assert 'placeholder="demo_..."' in html
    field = re.search(r'<input id="f-api_key"[^>]*>', html, re.S).group(0)
    assert 'type="password"' in field and 'name="api_key"' in field and "required" in field
    token = hidden_fields(html)["csrf_token"]
    assert len(token) >= 32
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"toolauth_csrf={token};")
    assert f"Path=/link/{req.link_id}" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "form-action 'self' http://localhost:5999" in csp  # the callback may follow a POST
    assert "script-src" not in csp and "default-src 'none'" in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


async def test_the_form_says_when_the_link_expires_in_words(
    connect: Connect, browser: Browser
) -> None:
    """Relative and rounded down ("expires in 9 minutes" for a fresh 10-minute link), with the
    exact time only in the ``<time datetime>`` attribute, never shown as an ISO timestamp."""
    req = await api_key_link(connect)
    html = (await browser.http.get(req.redirect_url)).text
    sentence = re.search(r"This link expires <time datetime=\"([^\"]+)\">([^<]+)</time>\.", html)
    assert sentence is not None, html
    assert datetime.fromisoformat(sentence.group(1)) == req.expires_at
    assert sentence.group(2) == "in 9 minutes"
    shown = re.sub(r"<[^>]+>", " ", html)
    assert re.search(r"\d{4}-\d\d-\d\d", shown) is None


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (-5, "now"), (0, "now"), (1, "in less than a minute"), (59.9, "in less than a minute"),
        (60, "in 1 minute"), (119, "in 1 minute"), (120, "in 2 minutes"),
        (599.4, "in 9 minutes"), (600, "in 10 minutes"), (3599, "in 59 minutes"),
        (3600, "in 1 hour"), (7199, "in 1 hour"), (7200, "in 2 hours"),
        (47 * 3600, "in 47 hours"), (48 * 3600, "in 2 days"), (86400 * 3 + 5, "in 3 days"),
    ],
)  # fmt: skip
def test_expires_in_words(seconds: float, words: str) -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
    when = now + timedelta(seconds=seconds)
    assert expires_in(when.isoformat(), now) == words
    assert expires_in(when, now) == words
    assert expires_in(when.replace(tzinfo=None).isoformat(), now) == words  # naive: UTC


async def test_a_valid_api_key_connects_and_is_stored_encrypted(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    key = connect.provider.issue_api_key("alice")
    req = await api_key_link(connect)

    landing = await browser.submit_key_form(req.redirect_url, {"api_key": key})

    assert landing.response.status_code == 303
    assert landing.url.startswith(APP_CALLBACK + "?")
    assert query_of(landing.url) == {
        "status": "success",
        "connected_account_id": req.connected_account_id,
    }
    assert key not in landing.url
    account = await req.wait_for_connection(timeout=5)
    assert account.status is ConnectionStatus.ACTIVE
    assert account.credentials["api_key"].get_secret_value() == key
    assert account.data == {} and account.scopes == () and account.expires_at is None
    assert await link_status(connect, req.link_id) is LinkStatus.COMPLETED
    raw = db_bytes(ta)
    assert len(raw) > 0
    assert key.encode() not in raw and key[5:].encode() not in raw
    async with await ta.connected_accounts.http_client(account.id) as client:
        me = await client.get("/me")
        items = await client.get("/items")
    assert me.json()["preferred_username"] == "alice"
    assert items.json()["total"] == 2


async def test_a_rejected_key_shows_the_form_again_and_stores_nothing(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    req = await api_key_link(connect)
    wrong = "demo_" + "x" * 24
    page = await browser.get(req.redirect_url)
    before = accounts_only(ta)

    landing = await browser.post(
        req.redirect_url, {**hidden_fields(page.response.text), "api_key": wrong}
    )

    assert landing.response.status_code == 400
    html = landing.response.text
    assert "Demo rejected these credentials" in html
    assert '<form method="post"' in html
    assert wrong not in html  # a secret is never echoed back
    assert accounts_only(ta) == before
    assert wrong.encode() not in db_bytes(ta)
    assert await link_status(connect, req.link_id) is LinkStatus.PENDING
    assert connect.provider.stats.failed_auth == 1  # it was really checked with the provider
    # The re-rendered form carries a fresh CSRF token; the user fixes the key and succeeds.
    key = connect.provider.issue_api_key("alice")
    done = await browser.post(req.redirect_url, {**hidden_fields(html), "api_key": key})
    assert query_of(done.url)["status"] == "success"
    assert (await req.wait_for_connection(timeout=5)).is_active


async def test_a_value_of_the_wrong_shape_is_refused_before_calling_the_provider(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    req = await api_key_link(connect)
    page = await browser.get(req.redirect_url)
    before = accounts_only(ta)

    landing = await browser.post(
        req.redirect_url, {**hidden_fields(page.response.text), "api_key": "not-a-demo-key"}
    )

    assert landing.response.status_code == 400
    assert "Demo API key does not have the expected format" in landing.response.text
    assert "demo_..." in landing.response.text
    assert connect.provider.stats.api_requests == 0
    assert accounts_only(ta) == before
    assert await link_status(connect, req.link_id) is LinkStatus.PENDING


async def test_an_empty_required_field_is_named(connect: Connect, browser: Browser) -> None:
    req = await api_key_link(connect)
    page = await browser.get(req.redirect_url)

    landing = await browser.post(req.redirect_url, hidden_fields(page.response.text))

    assert landing.response.status_code == 400
    assert "Demo API key is required" in landing.response.text
    assert connect.provider.stats.api_requests == 0


@pytest.mark.parametrize("attack", ["no_token", "wrong_token", "no_cookie", "other_link_token"])
async def test_a_form_without_a_valid_csrf_pair_is_refused(
    connect: Connect, browser: Browser, attack: str
) -> None:
    ta = connect.ta
    key = connect.provider.issue_api_key("alice")
    req = await api_key_link(connect)
    page = await browser.get(req.redirect_url)
    token = hidden_fields(page.response.text)["csrf_token"]
    other = await ta.connected_accounts.link("mallory", (await ta.auth_configs.list())[0].id)
    before = accounts_only(ta)

    if attack == "no_token":
        response = await browser.http.post(req.redirect_url, data={"api_key": key})
    elif attack == "wrong_token":
        response = await browser.http.post(
            req.redirect_url, data={"csrf_token": token[:-2] + "xx", "api_key": key}
        )
    elif attack == "no_cookie":  # a cross-site form post: the right token, no cookie
        async with httpx.AsyncClient() as elsewhere:
            response = await elsewhere.post(
                req.redirect_url, data={"csrf_token": token, "api_key": key}
            )
    else:  # a token and cookie minted for another link
        async with httpx.AsyncClient() as mallory:
            other_page = await mallory.get(other.redirect_url)
            other_token = hidden_fields(other_page.text)["csrf_token"]
        async with httpx.AsyncClient() as mallory:
            response = await mallory.post(
                req.redirect_url,
                data={"csrf_token": other_token, "api_key": key},
                headers={"Cookie": f"toolauth_csrf={other_token}"},
            )

    assert response.status_code == 403
    assert "Form expired" in response.text
    assert req.redirect_url in response.text  # "try again" opens the link afresh
    assert accounts_only(ta) == before
    assert connect.provider.stats.api_requests == 0
    assert await link_status(connect, req.link_id) is LinkStatus.PENDING
    assert key.encode() not in db_bytes(ta)


async def test_a_bearer_token_link(connect: Connect, browser: Browser) -> None:
    ta = connect.ta
    await ta.toolkits.register(bearer_toolkit())
    config = await ta.auth_configs.create("demo_bearer")
    assert config.auth_scheme == "BEARER_TOKEN"
    token = connect.provider.issue_tokens("bob", client_id=DEMO_CLIENT_ID)["access_token"]
    req = await ta.connected_accounts.link("bob-user", config.id, callback_url=APP_CALLBACK)

    page = await browser.get(req.redirect_url)
    assert "Access token" in page.response.text and 'type="password"' in page.response.text
    rejected = await browser.post(
        req.redirect_url, {**hidden_fields(page.response.text), "token": "x" * 43}
    )
    assert rejected.response.status_code == 400
    assert "Demo Bearer rejected these credentials" in rejected.response.text
    landing = await browser.post(
        req.redirect_url, {**hidden_fields(rejected.response.text), "token": token}
    )

    assert query_of(landing.url)["status"] == "success"
    account = await req.wait_for_connection(timeout=5)
    assert account.credentials["token"].get_secret_value() == token
    assert token.encode() not in db_bytes(ta)
    async with await ta.connected_accounts.http_client(account.id) as client:
        me = await client.get("/me")
    assert me.json()["preferred_username"] == "bob"
    assert me.request.headers["authorization"] == f"Bearer {token}"


async def test_a_basic_link(connect: Connect, browser: Browser) -> None:
    ta = connect.ta
    await ta.toolkits.register(basic_toolkit())
    config = await ta.auth_configs.create("demo_basic")
    req = await ta.connected_accounts.link("alice-user", config.id, callback_url=APP_CALLBACK)

    page = await browser.get(req.redirect_url)
    html = page.response.text
    assert re.search(r'<input id="f-username"[^>]*type="text"', html, re.S)
    assert re.search(r'<input id="f-password"[^>]*type="password"', html, re.S)
    rejected = await browser.post(
        req.redirect_url,
        {**hidden_fields(html), "username": "alice", "password": "not-her-password"},
    )
    assert rejected.response.status_code == 400
    assert "Demo Basic rejected these credentials" in rejected.response.text
    assert 'value="alice"' in rejected.response.text  # the plain field is kept
    assert "not-her-password" not in rejected.response.text  # the secret one is not
    landing = await browser.post(
        req.redirect_url,
        {**hidden_fields(rejected.response.text), "username": "alice", "password": "wonderland"},
    )

    assert query_of(landing.url)["status"] == "success"
    account = await req.wait_for_connection(timeout=5)
    assert account.data == {"username": "alice"}
    assert set(account.credentials) == {"password"}
    assert b"wonderland" not in db_bytes(ta)
    async with await ta.connected_accounts.http_client(account.id) as client:
        items = await client.get("/items")
    assert items.status_code == 200 and items.json()["total"] == 2
    pair = base64.b64encode(b"alice:wonderland").decode()
    assert items.request.headers["authorization"] == f"Basic {pair}"


async def test_an_unreachable_api_stores_nothing(connect: Connect, browser: Browser) -> None:
    ta = connect.ta
    definition = bearer_toolkit()
    definition["api_base_url"] = "http://127.0.0.1:9/api"  # the discard port: nobody listens
    await ta.toolkits.register(definition)
    config = await ta.auth_configs.create("demo_bearer")
    req = await ta.connected_accounts.link("alice-user", config.id)
    before = accounts_only(ta)

    landing = await browser.submit_key_form(req.redirect_url, {"token": "t" * 30})

    assert landing.response.status_code == 400
    assert "Could not reach Demo Bearer" in landing.response.text
    assert accounts_only(ta) == before
    assert await link_status(connect, req.link_id) is LinkStatus.PENDING


async def test_a_completed_key_link_cannot_be_submitted_again(
    connect: Connect, browser: Browser
) -> None:
    ta = connect.ta
    key = connect.provider.issue_api_key("alice")
    req = await api_key_link(connect, callback_url=None)
    page = await browser.get(req.redirect_url)
    fields = hidden_fields(page.response.text)
    done = await browser.post(req.redirect_url, {**fields, "api_key": key})
    assert done.response.status_code == 200
    assert "Connected — you can close this window" in done.response.text
    before = snapshot(ta)

    again = await browser.post(
        req.redirect_url, {**fields, "api_key": connect.provider.issue_api_key("bob")}
    )
    reopened = await browser.get(req.redirect_url)

    assert again.response.status_code == 410
    assert reopened.response.status_code == 410
    assert "Already connected" in reopened.response.text
    assert snapshot(ta) == before
    account = await ta.connected_accounts.get(req.connected_account_id)
    assert account.credentials["api_key"].get_secret_value() == key
    assert urlsplit(req.redirect_url).path == f"/link/{req.link_id}"
