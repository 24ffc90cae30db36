"""The connect app mounted inside your own web app, with your own "connected" page.

    python examples/fastapi_mount.py          # open the printed URL and click "Connect Demo"
    python examples/fastapi_mount.py --auto   # a scripted browser clicks through, then it exits

The app is Starlette; with FastAPI the same lines work (`app.mount(...)`, the same routes).
toolauth's routes live under /toolauth, so its public URL (`base_url`) is {APP}/toolauth and the
redirect URI to register with a provider is {APP}/toolauth/oauth/callback. Connect links end on
the app's own /connected page, which gets `status` and `connected_account_id` (never a token)
and checks that the account belongs to the signed-in user before using it.

Links are bound to the signed-in user: `ta.asgi_app(verify_user=signed_in_user)` reads the
app's own session cookie, so a link forwarded to another browser connects nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import re
import secrets
import socket
import sys
import tempfile
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from toolauth import AsyncToolAuth, NotFoundError, Settings
from toolauth.demo.browser import complete_oauth
from toolauth.demo.local import local_provider

USER_ID = "user_123"  # your app's signed-in user
SESSION = secrets.token_urlsafe(32)  # stands in for your app's login session


def signed_in_user(request: Request) -> str | None:
    """Who this browser is signed in as, from the app's own session (here: one cookie)."""
    return USER_ID if secrets.compare_digest(request.cookies.get("session", ""), SESSION) else None


def create_app(ta: AsyncToolAuth, app_url: str) -> Starlette:
    async def home(request: Request) -> Response:
        response = HTMLResponse(
            '<h1>My app</h1><p><a href="/connect/demo">Connect Demo</a> to let the app list '
            "your items.</p>"
        )
        response.set_cookie("session", SESSION, httponly=True, samesite="lax")  # "signed in"
        return response

    async def connect_demo(request: Request) -> Response:
        if signed_in_user(request) != USER_ID:
            return RedirectResponse("/", 303)
        configs = await ta.auth_configs.list(toolkit="demo", enabled=True)
        config = configs[0] if configs else await ta.auth_configs.create("demo")
        req = await ta.connected_accounts.link(
            USER_ID, config.id, callback_url=f"{app_url}/connected"
        )
        if req.redirect_url is None:  # already connected: straight to the page
            query = f"status=success&connected_account_id={req.connected_account_id}"
            return RedirectResponse(f"/connected?{query}", 303)
        return RedirectResponse(req.redirect_url, 303)

    async def connected(request: Request) -> Response:
        status = request.query_params.get("status")
        account_id = request.query_params.get("connected_account_id", "")
        if status != "success":
            error = html.escape(request.query_params.get("error", "unknown"))
            return HTMLResponse(f"<h1>Not connected</h1><p>Reason: {error}</p>", 400)
        try:
            account = await ta.connected_accounts.get(account_id)
        except NotFoundError:
            return HTMLResponse("<h1>Unknown account</h1>", 404)
        if account.user_id != USER_ID:  # never trust an id from a URL blindly
            return HTMLResponse("<h1>Not your account</h1>", 403)
        async with await ta.connected_accounts.http_client(account.id) as client:
            items = (await client.get("/items")).json()["items"]
        names = "".join(f"<li>{html.escape(i['name'])}</li>" for i in items)
        return HTMLResponse(f"<h1>Demo connected</h1><p>Your items:</p><ul>{names}</ul>")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with ta:  # open the store with the app, close it on shutdown
            yield

    return Starlette(
        routes=[
            Route("/", home),
            Route("/connect/demo", connect_demo),
            Route("/connected", connected),
            # FastAPI: app.mount("/toolauth", ta.asgi_app(verify_user=signed_in_user))
            Mount("/toolauth", ta.asgi_app(verify_user=signed_in_user)),
        ],
        lifespan=lifespan,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_text(page: str) -> str:
    page = re.sub(r"<li>", "\n  - ", page)
    page = re.sub(r"</(h1|p)>", "\n", page)
    return html.unescape(re.sub(r"<[^>]+>", "", page)).strip()


async def main(port: int, auto: bool) -> None:
    port = port or free_port()
    app_url = f"http://127.0.0.1:{port}"
    async with local_provider() as demo:  # the provider, on its own loopback port
        with tempfile.TemporaryDirectory() as home:
            settings = Settings.from_env({"TOOLAUTH_HOME": home, **demo.environ()})
            ta = AsyncToolAuth(settings=settings, base_url=f"{app_url}/toolauth")
            demo.allow(f"{app_url}/toolauth")  # register {APP}/toolauth/oauth/callback
            app = create_app(ta, app_url)
            server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
            if not auto:
                print(f"My app: {app_url} (sign in as alice / wonderland). Ctrl+C stops.")
                await server.serve()
                return
            serving = asyncio.create_task(server.serve())
            for _ in range(500):  # up to 10 s for uvicorn to listen
                if server.started:
                    break
                await asyncio.sleep(0.02)
            print(f"My app runs at {app_url}; a signed-in scripted browser opens /connect/demo")
            cookies = {"session": SESSION}  # what the home page set in the browser
            landing = await asyncio.to_thread(
                complete_oauth, f"{app_url}/connect/demo", cookies=cookies
            )
            print(f"It ends on {landing.url.split('?')[0]} (HTTP {landing.status_code}):")
            print(as_text(landing.text))
            server.should_exit = True
            await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port of the app (0: a free one)")
    parser.add_argument("--auto", action="store_true", help="play the user with a script")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.port, args.auto or not sys.stdin.isatty()))
