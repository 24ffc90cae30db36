"""The chat page in headless Chromium: ask, connect in the popup, see the agent finish; stop a
turn that waits for a connection and connect afterwards.

Runs Debian's Chromium (``/usr/bin/chromium``) through the ``playwright`` package; it never
downloads a browser. Without Chromium the test fails on CI (``CI=true``) and skips elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import DemoProcess
from .glyphs import unsafe_glyphs

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]
# The test output only; docs/chat-ui.png is refreshed by hand from it (tests never touch
# tracked files).
ARTIFACTS = ROOT / "tests" / "artifacts"
SHOTS = [ARTIFACTS / "chat_ui.png"]
# The provider pages' stylesheet names this stack; a broken rule leaves the serif default.
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'


def _need_browser() -> None:
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is missing (pip install -e '.[dev]')"
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs the browser test: {missing}")
    pytest.skip(missing)


def _shot(page, name: str) -> None:
    path = ARTIFACTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _check_provider_page(popup, brand: str) -> None:
    """The provider's page speaks for the app being connected, in the font it names."""
    from playwright.sync_api import expect

    expect(popup.locator(".brand")).to_have_text(brand)
    assert popup.title().endswith(f" · {brand}")
    assert popup.evaluate("getComputedStyle(document.body).fontFamily") == FONT
    assert popup.evaluate("getComputedStyle(document.querySelector('button')).fontFamily") == FONT
    assert unsafe_glyphs(popup.inner_text("body")) == {}


def _sign_in(
    popup, brand: str = "Demo", scopes: dict[str, str] | None = None, shots: str = ""
) -> None:
    """The user's part on the demo provider's own pages: they carry ``brand`` and the consent
    lists ``scopes`` (scope -> words)."""
    from playwright.sync_api import expect

    popup.wait_for_selector("#username")
    assert "/demo/oauth/authorize" in popup.url
    _check_provider_page(popup, brand)
    expect(popup.locator("p.sub")).to_contain_text(f"wants to connect to your {brand} account")
    if shots:
        _shot(popup, f"{shots}_sign_in.png")
    popup.fill("#username", "alice")
    popup.fill("#password", "wonderland")
    popup.get_by_role("button", name="Sign in").click()
    popup.wait_for_selector("ul.scopes")
    _check_provider_page(popup, brand)
    for scope, words in (scopes or {}).items():
        item = popup.locator("ul.scopes li").filter(has=popup.locator("code", has_text=scope))
        expect(item).to_contain_text(words)
    if shots:
        _shot(popup, f"{shots}_consent.png")
    popup.get_by_role("button", name="Allow").click()


def _open_chat(browser, url: str, problems: list[str]):
    context = browser.new_context(viewport={"width": 1000, "height": 860})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    page.goto(url)
    return page


@pytest.mark.slow
def test_connect_link_in_chat_then_the_agent_answers(demo_process: DemoProcess):
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = _open_chat(browser, demo_process.url, problems)
            expect(page.locator("#connections")).to_contain_text("Demo · not connected")
            expect(page.locator("#model-line")).to_contain_text("scripted model")

            page.fill("#input", "list my items")
            page.press("#input", "Enter")
            connect = page.get_by_role("button", name="Connect Demo")
            expect(connect).to_be_visible()
            expect(page.locator(".tool").first).to_contain_text("DEMO_LIST_ITEMS")
            expect(page.locator(".tool .state").first).to_have_text("needs your permission")

            requested: list[str] = []
            page.context.on("request", lambda request: requested.append(request.url))
            with page.expect_popup() as opened:
                connect.click()
            opened.value.wait_for_selector("#username")  # the link sent it to the provider
            link_url = next(url for url in requested if "/link/ln_" in url)
            # The link is bound to the signed-in chat user: forwarded to another browser (no
            # chat session), it refuses before the provider and leaves the link to its user.
            elsewhere = browser.new_context().new_page()
            elsewhere.goto(link_url)
            expect(elsewhere.locator("body")).to_contain_text("Sign in first")
            elsewhere.context.close()
            _sign_in(opened.value, "Demo", {"items:read": "See your items"})

            card = page.locator(".connect")
            expect(card).to_have_class("connect connected")
            expect(card.locator("button")).to_have_text("Connected")
            expect(card.locator(".status")).to_have_text("Demo is connected.")
            answer = page.locator(".msg.assistant").last
            expect(answer).to_contain_text("Follow the white rabbit")
            expect(answer).to_contain_text("Have tea with the Hatter")
            expect(page.locator("#connections")).to_contain_text("Demo · connected")
            expect(page.locator("#send")).to_be_enabled()
            details = page.locator(".tool details").last
            details.locator("summary").click()
            expect(details.locator("pre")).to_contain_text('"name": "Follow the white rabbit"')
            details.locator("summary").click()
            for shot in SHOTS:
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot))
                assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

            # A second app: the simulated GitHub, its own consent, the same chat turn.
            page.fill("#input", "list my github repos")
            page.press("#input", "Enter")
            github = page.get_by_role("button", name="Connect GitHub (demo)")
            with page.expect_popup() as opened:
                github.click()
            private = {"repo": "Read your public and private repositories"}
            _sign_in(opened.value, "GitHub (demo)", private, shots="github")
            expect(page.locator(".msg.assistant").last).to_contain_text("alice/tea-party")
            expect(page.locator(".connect").last).to_have_class("connect connected")
            # Once connected, no more buttons: the tool runs straight away.
            page.fill("#input", "create an item called <b>Buy milk</b>")
            page.press("#input", "Enter")
            expect(page.locator(".msg.assistant").last).to_contain_text("<b>Buy milk</b>")
            assert page.locator(".msg b").count() == 0  # text, never markup
            assert page.locator(".connect").count() == 2
            assert unsafe_glyphs(page.inner_text("body")) == {}
        finally:
            browser.close()
    assert problems == []
    code, out = demo_process.stop()
    assert code == 0, out
    assert "stopped" in out


@pytest.mark.slow
def test_stop_ends_the_wait_and_a_later_connection_says_what_happens(demo_process: DemoProcess):
    """Stop while the assistant waits for a connection: nothing on the page still promises to
    continue by itself; connecting through the same link afterwards works and says to ask
    again; asking again uses the connection."""
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = _open_chat(browser, demo_process.url, problems)
            page.fill("#input", "list my items")
            page.press("#input", "Enter")
            card = page.locator(".connect")
            expect(card.locator(".status")).to_contain_text("continues by itself")
            waiting = page.locator(".tool .state.running")
            expect(waiting).to_have_text("waiting for you to connect…")  # the turn waits

            page.get_by_role("button", name="Stop").click()
            expect(page.locator(".msg.notice").first).to_have_text("Stopped.")
            expect(page.locator("#send")).to_be_enabled()
            expect(card).to_have_class("connect stopped")
            expect(card.locator(".status")).to_have_text(
                "The assistant stopped waiting. You can still connect Demo; then ask again."
            )
            expect(page.get_by_text("continues by itself")).to_have_count(0)
            expect(page.locator(".tool .state.running")).to_have_count(0)
            expect(page.locator(".tool .state.stopped")).to_have_text("stopped")

            with page.expect_popup() as opened:
                card.get_by_role("button", name="Connect Demo").click()
            expect(card.locator(".status")).to_have_text("Finish on Demo's page, then ask again.")
            _sign_in(opened.value)
            expect(card).to_have_class("connect connected")
            expect(card.locator("button")).to_have_text("Connected")
            expect(card.locator(".status")).to_have_text(
                "Connected — ask again and the assistant will use it."
            )
            expect(page.locator("#connections")).to_contain_text("Demo · connected")
            _shot(page, "chat_stopped_then_connected.png")

            page.fill("#input", "list my items")
            page.press("#input", "Enter")
            expect(page.locator(".msg.assistant").last).to_contain_text("Follow the white rabbit")
            assert page.locator(".connect").count() == 1
            assert unsafe_glyphs(page.inner_text("body")) == {}
        finally:
            browser.close()
    assert problems == []
    code, out = demo_process.stop()
    assert code == 0, out
