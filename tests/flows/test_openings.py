"""One state per opening of a link, bound to the browser that opened it (RFC 9700 §4.7.1):
every GET of a link page makes a fresh state and PKCE verifier and sets a cookie bound to
them; the callback refuses a state whose cookie is missing or belongs to another opening
(a clear page, nothing stored, the link stays usable). A browser's latest opening wins for
that browser; another browser's opening (a link preview) breaks nobody. Over real HTTP against
the demo provider, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.conftest import Connect
from tests.flows.support import APP_CALLBACK, query_of, snapshot, to_callback
from tests.helpers import Browser
from toolauth._models import LinkStatus


def paused_browser(connect: Connect) -> Browser:
    return Browser(stop_at=f"{connect.base_url}/oauth/callback")


async def test_each_opening_has_its_own_state_and_the_latest_wins_in_a_browser(
    connect: Connect,
) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice", config.id, callback_url=APP_CALLBACK)
    browser = paused_browser(connect)
    try:
        first = await to_callback(browser, req.redirect_url or "")
        second = await to_callback(browser, req.redirect_url or "")
        assert query_of(first.url)["state"] != query_of(second.url)["state"]
        before = snapshot(ta)
        stale = await browser.http.get(first.url)  # this browser's cookie is the second's now
        assert stale.status_code == 400 and "same browser" in stale.text
        assert snapshot(ta) == before  # nothing stored; the link is still open
        done = await browser.http.get(second.url)
    finally:
        await browser.aclose()
    assert done.status_code == 303
    assert query_of(done.headers["location"])["status"] == "success"
    assert (await req.wait_for_connection(timeout=5)).is_active


async def test_another_browsers_opening_breaks_nobody(connect: Connect) -> None:
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice", config.id, callback_url=APP_CALLBACK)
    user, preview = paused_browser(connect), paused_browser(connect)
    try:
        at_callback = await to_callback(user, req.redirect_url or "")
        opened = await preview.http.get(req.redirect_url or "")  # e.g. a chat's link preview
        assert opened.status_code == 303
        done = await user.http.get(at_callback.url)
    finally:
        await user.aclose()
        await preview.aclose()
    assert done.status_code == 303 and query_of(done.headers["location"])["status"] == "success"


async def test_a_callback_without_the_openings_cookie_is_refused_and_the_link_stays(
    connect: Connect,
) -> None:
    """The state alone (leaked, or a forged callback in the victim's browser) is not enough:
    without the cookie of its opening nothing is stored, and the real user still finishes."""
    ta = connect.ta
    config = await ta.auth_configs.create("demo")
    req = await ta.connected_accounts.link("alice", config.id, callback_url=APP_CALLBACK)
    browser = paused_browser(connect)
    try:
        at_callback = await to_callback(browser, req.redirect_url or "")
        before = snapshot(ta)
        cookies = dict(browser.http.cookies)
        browser.http.cookies.clear()
        refused = await browser.http.get(at_callback.url)
        assert refused.status_code == 400 and "same browser" in refused.text
        # A cookie of the right name with another value is no better.
        for name in cookies:
            browser.http.cookies.set(name, "x" * 43, domain="127.0.0.1", path="/oauth/callback")
        forged = await browser.http.get(at_callback.url)
        assert forged.status_code == 400
        assert snapshot(ta) == before
        link = await (await ta.store()).get_link(req.link_id or "")
        assert link is not None and link.status is LinkStatus.PENDING
        browser.http.cookies.clear()
        for name, value in cookies.items():
            browser.http.cookies.set(name, value, domain="127.0.0.1", path="/oauth/callback")
        done = await browser.http.get(at_callback.url)
        assert done.status_code == 303
        replay = await browser.http.get(at_callback.url)  # single use, cookie or not
        assert replay.status_code in (400, 410) and "status=success" not in replay.text
    finally:
        await browser.aclose()
    assert (await req.wait_for_connection(timeout=5)).is_active
