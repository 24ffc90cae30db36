"""Every page of the demo (chat, the page links end on, the demo provider's sign-in and
consent for both apps) and of the connect app (key form, message pages, stylesheet) keeps to
characters that every system font has (see :mod:`tests.demo_app.glyphs`)."""

from __future__ import annotations

import re
import secrets
from importlib import resources
from urllib.parse import urljoin

import httpx
import pytest

from toolauth.demo.app import SESSION_COOKIE
from toolauth.demo.local import DEMO_CLIENT_ID, GITHUB_CLIENT_ID
from toolauth.demo.provider import _s256

from .glyphs import SAFE, unsafe_glyphs


def hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def action(page: httpx.Response) -> str:
    found = re.search(r'<form method="post"(?: action="([^"]*)")?', page.text)
    assert found, f"no form at {page.url}"
    return urljoin(str(page.url), found.group(1) or str(page.url))


async def provider_pages(http: httpx.AsyncClient, url: str, client_id: str, scope: str):
    """The demo provider's sign-in, failed sign-in and consent pages for one OAuth app."""
    query = {
        "response_type": "code", "client_id": client_id, "scope": scope, "state": "s",
        "redirect_uri": f"{url}/oauth/callback",
        "code_challenge": _s256(secrets.token_urlsafe(48)), "code_challenge_method": "S256",
    }  # fmt: skip
    sign_in = await http.get(f"{url}/demo/oauth/authorize", params=query)
    assert sign_in.status_code == 200, sign_in.text
    fields = hidden(sign_in.text)
    wrong = await http.post(action(sign_in), data={**fields, "username": "alice", "password": "x"})
    fields = hidden(wrong.text)
    consent = await http.post(
        action(wrong), data={**fields, "username": "alice", "password": "wonderland"}
    )
    assert '<ul class="scopes">' in consent.text, consent.text
    return [sign_in, wrong, consent]


async def test_pages_show_only_characters_every_font_has(demo_app):
    demo, url = demo_app
    async with httpx.AsyncClient(timeout=10) as http:
        pages = [
            await http.get(f"{url}/"),
            await http.get(f"{url}/assets/chat.js"),
            await http.get(f"{url}/assets/chat.css"),
            await http.get(f"{url}/assets/connected.js"),
            await http.get(f"{url}/connected?status=success"),
            await http.get(f"{url}/connected?status=failed&error=access_denied"),
            await http.get(f"{url}/demo/oauth/authorize?client_id=nobody"),
            await http.get(f"{url}/static/toolauth.css"),
            await http.get(f"{url}/link/no-such-link"),
        ]
        pages += await provider_pages(http, url, DEMO_CLIENT_ID, "profile items:read items:write")
        pages += await provider_pages(http, url, GITHUB_CLIENT_ID, "repo read:user")

        config = await demo.ta.auth_configs.create("demo", auth_scheme="API_KEY")
        link = await demo.ta.connected_accounts.link("glyph-user", config.id)
        http.cookies.set(SESSION_COOKIE, demo.session_cookie("glyph-user"))  # its user's browser
        form = await http.get(link.redirect_url)
        assert "Demo API key" in form.text
        rejected = await http.post(
            action(form), data={**hidden(form.text), "api_key": "demo_not-a-real-key"}
        )
        assert rejected.status_code == 400 and "rejected these credentials" in rejected.text
        key = demo.provider.issue_api_key("alice")
        done = await http.post(action(rejected), data={**hidden(rejected.text), "api_key": key})
        assert done.status_code == 200 and 'class="badge success"' in done.text, done.text
        pages += [form, rejected, done]

    found = {str(page.url): unsafe_glyphs(page.text) for page in pages}
    assert {where: chars for where, chars in found.items() if chars} == {}


@pytest.mark.parametrize(
    ("package", "folder"), [("toolauth.demo", "static"), ("toolauth.connect", "templates")]
)
def test_page_sources_show_only_characters_every_font_has(package: str, folder: str):
    """Every branch of the templates and scripts, shown or not in the test above."""
    files = [f for f in (resources.files(package) / folder).iterdir() if f.is_file()]
    assert files
    found = {f.name: unsafe_glyphs(f.read_text("utf-8")) for f in files}
    assert {name: chars for name, chars in found.items() if chars} == {}


def test_the_safe_set_has_no_symbols():
    assert "\u2713" not in SAFE and "\u25c6" not in SAFE and "\U0001f511" not in SAFE
    assert unsafe_glyphs("\u2713 Connected \u2192 \U0001f511") == {
        "\u2192": "U+2192", "\u2713": "U+2713", "\U0001f511": "U+1F511",
    }  # fmt: skip
