"""The chat page in headless Chromium: ask, connect in the popup, see the agent finish.

Runs Debian's Chromium (``/usr/bin/chromium``) through the ``playwright`` package; it never
downloads a browser. Without Chromium the test fails on CI (``CI=true``) and skips elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import DemoProcess

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]
# The test output only; docs/chat-ui.png is refreshed by hand from it (tests never touch
# tracked files).
SHOTS = [ROOT / "tests" / "artifacts" / "chat_ui.png"]


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


def _sign_in(popup) -> None:
    """The user's part on the demo provider's own pages."""
    popup.wait_for_selector("#username")
    assert "/demo/oauth/authorize" in popup.url
    popup.fill("#username", "alice")
    popup.fill("#password", "wonderland")
    popup.get_by_role("button", name="Sign in").click()
    popup.get_by_role("button", name="Allow").click()


@pytest.mark.slow
def test_connect_link_in_chat_then_the_agent_answers(demo_process: DemoProcess):
    _need_browser()
    from playwright.sync_api import expect, sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1000, "height": 860})
            context.set_default_timeout(15_000)
            page = context.new_page()
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda msg: (
                    problems.append(f"console: {msg.text}") if msg.type == "error" else None
                ),
            )
            page.goto(demo_process.url)
            expect(page.locator("#connections")).to_contain_text("Demo · not connected")
            expect(page.locator("#model-line")).to_contain_text("scripted model")

            page.fill("#input", "list my items")
            page.press("#input", "Enter")
            connect = page.get_by_role("button", name="Connect Demo")
            expect(connect).to_be_visible()
            expect(page.locator(".tool").first).to_contain_text("DEMO_LIST_ITEMS")
            expect(page.locator(".tool .state").first).to_have_text("needs your permission")

            with page.expect_popup() as opened:
                connect.click()
            _sign_in(opened.value)

            card = page.locator(".connect")
            expect(card).to_have_class("connect connected")
            expect(card.locator("button")).to_have_text("✓ Connected")
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
            _sign_in(opened.value)
            expect(page.locator(".msg.assistant").last).to_contain_text("alice/tea-party")
            expect(page.locator(".connect").last).to_have_class("connect connected")
            # Once connected, no more buttons: the tool runs straight away.
            page.fill("#input", "create an item called <b>Buy milk</b>")
            page.press("#input", "Enter")
            expect(page.locator(".msg.assistant").last).to_contain_text("<b>Buy milk</b>")
            assert page.locator(".msg b").count() == 0  # text, never markup
            assert page.locator(".connect").count() == 2
        finally:
            browser.close()
    assert problems == []
    code, out = demo_process.stop()
    assert code == 0, out
    assert "stopped" in out
