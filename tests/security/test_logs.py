"""No log carries a link id or a code (issue 12, point 4).

Every route of the connect app is driven over real HTTP, served with uvicorn's access log on
(as ``toolauth serve`` does) and mounted with a ``verify_user`` that fails, while a capturing
handler on the root logger (and on ``uvicorn.access``, which other servers in this process
stop from propagating) takes every record of every logger at every level. No record — its
message, its arguments, its traceback — holds a link id, an OAuth ``code`` or ``state``, or a
form's CSRF token.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
from collections.abc import Iterator

import httpx
import pytest
from starlette.requests import Request

from tests.conftest import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Backend, ServedProvider
from tests.flows.support import APP_CALLBACK, bearer_toolkit, query_of
from tests.helpers import Browser, hidden_fields
from toolauth import AsyncToolAuth, Settings
from toolauth.connect.logs import redact_path
from toolauth.connect.serving import serve_app

# Set in the test's own task once the servers run: what its browser's httpx logs (the URLs it
# fetches, link ids and all) is the user's side, not toolauth's; every other record counts.
_BROWSER = contextvars.ContextVar("browser", default=False)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=1)
        self.records: list[logging.LogRecord] = []
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        if not (_BROWSER.get() and record.name.startswith(("httpx", "httpcore"))):
            self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(r) + repr(r.args) for r in self.records)


@pytest.fixture
def store_env(backend: Backend) -> dict[str, str]:
    return backend.env


@pytest.fixture
def capture() -> Iterator[Capture]:
    found = Capture()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn.access")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(found)
        logger.setLevel(1)
    try:
        yield found
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(found)
            logger.setLevel(level)


def test_redact_path_hides_every_link_id_and_query() -> None:
    cases = {
        "/link/ln_Secret-Id_123": "/link/[link]",
        "/prefix/api/links/ln_abc": "/prefix/api/links/[link]",
        "/link/not-an-ln-id": "/link/[link]",  # a mistyped id may still be close to the link
        "/link/%6Cn_abc/x": "/link/[link]/x",
        "/oauth/callback?code=C&state=S": "/oauth/callback?[redacted]",
        "/app/connected?code=CONFIRM": "/app/connected?[redacted]",
        "/anything/ln_abc": "/anything/[link]",
        "/healthz": "/healthz",
    }
    for path, shown in cases.items():
        assert redact_path(path) == shown, path


async def test_no_log_record_carries_a_link_id_or_a_code(
    served_provider: ServedProvider, capture: Capture, home, store_env, backend: Backend
) -> None:
    # ``capture`` after the provider: a uvicorn started without an access log empties the
    # handlers of ``uvicorn.access``.
    demo, provider_url = served_provider.demo, served_provider.url
    env = {
        "TOOLAUTH_HOME": str(home), **store_env, "TOOLAUTH_DEMO_PROVIDER_URL": provider_url,
        "TOOLAUTH_DEMO_CLIENT_ID": DEMO_CLIENT_ID, "TOOLAUTH_DEMO_CLIENT_SECRET": DEMO_CLIENT_SECRET,
    }  # fmt: skip
    secrets: list[str] = []

    def failing_user(request: Request) -> str:
        raise RuntimeError("the host app's session store is down")

    async with (
        AsyncToolAuth(settings=Settings.from_env(env)) as ta,
        ta.serve(port=0, access_log=True) as base,
        serve_app(ta.asgi_app(verify_user=failing_user), access_log=True) as bound,
    ):
        demo.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [f"{base}/oauth/callback"])
        await ta.toolkits.register(bearer_toolkit())
        _BROWSER.set(True)  # the servers' tasks were made before: they stay captured
        oauth = await ta.auth_configs.create("demo")
        keyed = await ta.auth_configs.create("demo_bearer", auth_scheme="BEARER_TOKEN")
        browser = Browser(stop_at=(f"{base}/oauth/callback", APP_CALLBACK))  # type: ignore[arg-type]
        http = httpx.AsyncClient(timeout=10)
        try:
            # OAuth: the link page, the provider, the callback (code and state), the status.
            req = await ta.connected_accounts.link("alice", oauth.id, callback_url=APP_CALLBACK)
            landing = await browser.oauth_consent(str(req.redirect_url))
            query = query_of(landing.url)
            secrets += [str(req.link_id), query["code"], query["state"]]
            done = await browser.get(landing.url)
            assert done.url.startswith(APP_CALLBACK)
            assert (await http.get(f"{base}/api/links/{req.link_id}")).status_code == 200
            # A replayed callback, a forged one, a denied one.
            assert (await http.get(landing.url)).status_code == 400
            assert (await http.get(f"{base}/oauth/callback?code=X&state=forged")).status_code == 400
            other = await ta.connected_accounts.link("bob", oauth.id)
            first = await browser.get(str(other.redirect_url))
            state = query_of(first.url)["state"]
            secrets += [str(other.link_id), state]
            denied = await browser.get(f"{base}/oauth/callback?error=access_denied&state={state}")
            assert denied.response.status_code == 400
            # A key form: GET, a bad POST, a good POST.
            key_req = await ta.connected_accounts.link("carol", keyed.id)
            url = str(key_req.redirect_url)
            page = await browser.get(url)
            token = hidden_fields(page.response.text)["csrf_token"]
            secrets += [str(key_req.link_id), token]
            assert (await http.post(url, data={"csrf_token": "wrong"})).status_code == 403
            await browser.post(url, {"csrf_token": token, "token": "bearer-SENTINEL-0001"})
            # Unknown links, a link whose row was edited (a 500 with a traceback), the
            # stylesheet and health, and a verify_user that raises.
            for path in ("/link/ln_unknownUNKNOWN", "/api/links/ln_unknownUNKNOWN"):
                assert (await http.get(base + path)).status_code == 404
            broken = await ta.connected_accounts.link("dave", oauth.id)
            secrets.append(str(broken.link_id))
            key = "sha256:" + hashlib.sha256(str(broken.link_id).encode()).hexdigest()
            await backend_write(backend, key)
            assert (await http.get(str(broken.redirect_url))).status_code == 500
            for path in ("/static/toolauth.css", "/healthz"):
                assert (await http.get(base + path)).status_code == 200
            late = await ta.connected_accounts.link("erin", oauth.id)
            secrets.append(str(late.link_id))
            assert (await http.get(f"{bound}/link/{late.link_id}")).status_code == 401
        finally:
            await browser.aclose()
            await http.aclose()
    text = capture.text()
    assert "GET /link/[link]" in text and "/oauth/callback?[redacted]" in text  # logged, hidden
    assert "connect app error" in text and "verify_user failed" in text
    for secret in secrets:
        assert secret and secret not in text, secret


async def backend_write(backend: Backend, key: str) -> None:
    await backend.execute(f"UPDATE connection_links SET user_id = 'mallory' WHERE id = '{key}'")
