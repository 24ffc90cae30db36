"""The demo's one Starlette app: chat page, agent stream, demo provider and connect app.

```
GET  /                         the chat page (static files from toolauth/demo/static); signs
                               the browser in as the demo user (a signed session cookie)
GET  /assets/{name}            its script and stylesheet
POST /api/chat                 {"thread_id", "message"} -> text/event-stream of the agent's turn
GET  /api/info                 which model answers, which toolkits
GET  /api/connections          the demo user's connection state per toolkit
POST /api/connections/{slug}/disconnect   delete the user's accounts of that toolkit
GET  /connected                where connect links end (closes the popup)
/demo/...                      the demo OAuth provider (login, consent, token, items API)
/github-api/...                the fake GitHub REST API behind the simulated "github" toolkit
/notes/mcp                     Notes (MCP demo): a remote MCP server (streamable HTTP), an OAuth
                               protected resource of the demo provider, added with add_mcp
/.well-known/oauth-protected-resource/notes/mcp   its RFC 9728 metadata
/link/..., /oauth/callback, /api/links/{id}, ...   the connect app (ta.asgi_app())
```

Everything lives in one process on one port. Call :meth:`DemoApp.bind` with the served URL
before the first request: OAuth redirect URIs and connect links are built on it. Once the
server listens, :meth:`DemoApp.ready` (called by ``toolauth demo`` at start, and by every API
request until it has run) adds the Notes MCP server with ``ta.toolkits.add_mcp``: discovery
over HTTP from the server's 401 to the provider's metadata, as for any remote MCP server.

Connect links are bound to the signed-in user, as in a real app: the connect app is mounted
with ``verify_user``, which reads the chat's session cookie, so a link opened in a browser that
is not signed in to the chat (or is signed in as someone else) connects nothing. The JSON API
answers only a signed-in browser too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import json
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from .._client import AsyncToolAuth
from .._exceptions import ToolAuthError
from .._settings import Settings
from .chat import DEMO_USER_ID, NOTES_NAME, NOTES_SLUG, DemoChat
from .github import FAKE_GITHUB_PATH, create_fake_github, simulated_github_toolkit
from .local import oauth_environ, register_clients
from .model import ChosenModel, choose_model
from .notes_mcp import NotesStore, notes_app
from .provider import DemoProvider

__all__ = ["NOTES_PATH", "SESSION_COOKIE", "DemoApp", "demo_settings"]

_log = logging.getLogger("toolauth.demo")

SESSION_COOKIE = "toolauth_demo_session"
NOTES_PATH = "/notes/mcp"
"""Where the Notes MCP server answers (its RFC 9728 metadata is at the well-known path)."""

_ASSETS = {
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
    "connected.js": "text/javascript; charset=utf-8",
}
_THREAD_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MAX_MESSAGE = 2000
_MAX_BODY = 16 * 1024
_PING_SECONDS = 15.0

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _static(name: str) -> str:
    return (resources.files("toolauth.demo") / "static" / name).read_text(encoding="utf-8")


def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


def demo_settings(home: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings of the demo's client: its own SQLite file and key in ``home``, the demo's
    OAuth apps, and nothing else from ``TOOLAUTH_*`` (the demo never touches your store)."""
    env = {
        k: v
        for k, v in (os.environ if environ is None else environ).items()
        if not k.startswith("TOOLAUTH_")
    }
    env.update(TOOLAUTH_HOME=str(home), **oauth_environ(github=True))
    return Settings.from_env(env, database_url=f"sqlite:///{home / 'toolauth.db'}")


class _Forward:
    """An ASGI app that passes requests to the Notes MCP server once :meth:`DemoApp.bind`
    built it (its resource URL is the served URL)."""

    def __init__(self, demo: DemoApp) -> None:
        self.demo = demo

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        app = self.demo.notes_app
        if app is None:
            response = Response("The demo is not bound to its URL yet.", 503)
            await response(scope, receive, send)
            return
        await app(scope, receive, send)


class DemoApp:
    """The demo, ready to serve: ``app`` is the ASGI app, ``bind(url)`` before serving."""

    def __init__(
        self,
        home: Path,
        *,
        environ: Mapping[str, str] | None = None,
        chosen: ChosenModel | None = None,
        wait_timeout: float = 300.0,
    ) -> None:
        env = os.environ if environ is None else environ
        self.chosen = chosen if chosen is not None else choose_model(env)
        self.provider = DemoProvider()
        self.ta = AsyncToolAuth(settings=demo_settings(home, env))
        # This client's catalog only: the demo's GitHub is a simulation, never stored.
        self.ta.catalog.register(simulated_github_toolkit(), replace=True)
        self.chat = DemoChat(self.ta, self.chosen, wait_timeout=wait_timeout)
        self.base_url: str | None = None
        self.notes = NotesStore()
        self.notes_app: Any = None  # the Notes MCP server's ASGI app, built by bind()
        self._bound = asyncio.Event()
        self._notes_up = asyncio.Event()
        self._notes_stop = asyncio.Event()
        self._ready = False
        self._ready_lock = asyncio.Lock()
        self._locks: dict[str, asyncio.Lock] = {}
        self._turns: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._session_key = secrets.token_bytes(32)  # sessions end with the process
        self._page = _static("chat.html")
        self._assets = {name: _static(name) for name in _ASSETS}
        self.app = Starlette(
            routes=[
                Route("/", self.index, methods=["GET"]),
                Route("/assets/{name}", self.asset, methods=["GET"]),
                Route("/connected", self.connected, methods=["GET"]),
                Route("/api/info", self.info, methods=["GET"]),
                Route("/api/chat", self.chat_stream, methods=["POST"]),
                Route("/api/connections", self.connections, methods=["GET"]),
                Route("/api/connections/{toolkit}/disconnect", self.disconnect, methods=["POST"]),
                Mount("/demo", self.provider.app),
                Mount(FAKE_GITHUB_PATH, create_fake_github(self.provider)),
                Route(NOTES_PATH, _Forward(self)),
                Route(f"/.well-known/oauth-protected-resource{NOTES_PATH}", _Forward(self)),
                Mount("/", self.ta.asgi_app(verify_user=self.signed_in_user)),
            ],
            middleware=[
                Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "::1"])
            ],
            lifespan=self._lifespan,
        )

    def bind(self, base_url: str) -> None:
        """Serve at ``base_url``: links, redirect URIs and the callback page are built on it."""
        base_url = base_url.rstrip("/")
        self.base_url = base_url
        self.ta.urls.serving_at(base_url)
        register_clients(self.provider, base_url)
        self.notes_app = notes_app(
            f"{base_url}{NOTES_PATH}", issuer=f"{base_url}/demo",
            introspect=self.provider.introspect, store=self.notes,
        )  # fmt: skip
        self._bound.set()

    async def ready(self) -> None:
        """Add the Notes MCP server as toolkit ``notes`` (``ta.toolkits.add_mcp``, discovery
        over HTTP, so the server must be listening) and start the chat's agent; once. Should
        discovery fail, the chat starts without Notes and the log says why."""
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            if self.base_url is None:
                raise RuntimeError("DemoApp.bind(base_url) was not called")
            toolkits = self.chat.toolkits
            try:
                await asyncio.wait_for(self._notes_up.wait(), 30)
                await self.ta.toolkits.add_mcp(
                    NOTES_SLUG, url=f"{self.base_url}{NOTES_PATH}", name=NOTES_NAME, replace=True
                )
            except (ToolAuthError, asyncio.TimeoutError) as exc:
                reason = exc.message if isinstance(exc, ToolAuthError) else "it did not start"
                _log.warning("Notes (MCP demo) is not available: %s", reason)
                toolkits = tuple(t for t in toolkits if t != NOTES_SLUG)
            self.chat.start(self.base_url, toolkits=toolkits)
            self._ready = True

    async def end_turns(self) -> None:
        """End every running agent turn (the server is stopping): each stream says so and
        closes, so the server stops without cutting responses off. The users' MCP sessions
        close too: they are connections to this very server, which would otherwise wait for
        them (its graceful-shutdown timeout) before its lifespan closes the client."""
        self._stopping = True
        turns = list(self._turns)
        for turn in turns:
            turn.cancel()
        await asyncio.gather(*turns, return_exceptions=True)
        await self.ta.mcp_sessions().aclose()

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.ta.open()
        notes = asyncio.create_task(self._run_notes(), name="demo notes MCP server")
        try:
            yield
        finally:
            self._notes_stop.set()
            await notes
            await self.ta.aclose()

    async def _run_notes(self) -> None:
        """The Notes server's own lifespan (its MCP session manager), from bind() until the
        demo stops."""
        stop = asyncio.ensure_future(self._notes_stop.wait())
        bound = asyncio.ensure_future(self._bound.wait())
        await asyncio.wait({stop, bound}, return_when=asyncio.FIRST_COMPLETED)
        bound.cancel()
        if self.notes_app is not None and not self._notes_stop.is_set():
            async with self.notes_app.router.lifespan_context(self.notes_app):
                self._notes_up.set()
                await stop
        stop.cancel()

    # the signed-in user ---------------------------------------------------------------
    def _signature(self, user_id: str) -> str:
        return hmac.new(self._session_key, user_id.encode(), hashlib.sha256).hexdigest()

    def session_cookie(self, user_id: str = DEMO_USER_ID) -> str:
        """The session cookie's value for ``user_id``: the user and an HMAC of it."""
        return f"{user_id}.{self._signature(user_id)}"

    def signed_in_user(self, request: Request) -> str | None:
        """The ``verify_user`` of the demo's connect app: who the session cookie says the
        browser is, or ``None`` without a valid one."""
        user_id, _, signature = request.cookies.get(SESSION_COOKIE, "").rpartition(".")
        if user_id and hmac.compare_digest(signature, self._signature(user_id)):
            return user_id
        return None

    def _signed_out(self, request: Request) -> Response | None:
        if self.signed_in_user(request) == self.chat.user_id:
            return None
        return _secure(JSONResponse({"error": "not signed in: open the chat page to sign in"}, 401))

    # pages ------------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        """The chat page; opening it signs this browser in as the demo's one user (a real app
        would show its login here)."""
        response = _secure(HTMLResponse(self._page))
        if self.signed_in_user(request) != self.chat.user_id:
            response.set_cookie(
                SESSION_COOKIE, self.session_cookie(self.chat.user_id), httponly=True,
                samesite="lax", secure=request.url.scheme == "https", path="/",
            )  # fmt: skip
        return response

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _ASSETS:
            return _secure(Response("Not found", 404, media_type="text/plain"))
        return _secure(Response(self._assets[name], media_type=_ASSETS[name]))

    async def connected(self, request: Request) -> Response:
        ok = request.query_params.get("status") == "success"
        error = request.query_params.get("error", "")[:100]
        title = "Connected" if ok else "Not connected"
        text = (
            # The chat's card says what happens next (the waiting turn goes on, or, after
            # Stop, "ask again"): this page cannot tell which, so it promises neither.
            "Permission granted. You can close this window and go back to the chat."
            if ok
            else f"The connection was not completed ({error or 'unknown error'}). "
            "Close this window and ask the assistant again."
        )
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · toolauth demo</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/chat.css">
<script src="/assets/connected.js" defer></script></head>
<body class="done-page"><main class="done {"ok" if ok else "failed"}">
<div class="done-badge" aria-hidden="true">{"" if ok else "!"}</div>
<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></main></body></html>"""
        return _secure(HTMLResponse(page, 200 if ok else 400))

    # JSON API -----------------------------------------------------------------------------
    async def info(self, request: Request) -> Response:
        await self.ready()
        return _secure(
            JSONResponse({
                "model": self.chosen.label,
                "scripted": self.chosen.label.startswith("scripted"),
                "note": self.chosen.note,
                "toolkits": [
                    {"slug": slug, "name": self.ta.catalog.get(slug).name}
                    for slug in self.chat.toolkits
                ],
            })
        )  # fmt: skip

    async def connections(self, request: Request) -> Response:
        signed_out = self._signed_out(request)
        if signed_out is not None:
            return signed_out
        await self.ready()
        return _secure(JSONResponse({"connections": await self.chat.connections()}))

    def _refuse_cross_site(self, request: Request) -> Response | None:
        """POSTs only from this page: JSON bodies (a preflight for any other site) and, when
        the browser says where it comes from, this origin."""
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.headers['host']}":
            return _secure(JSONResponse({"error": "cross-site request refused"}, 403))
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            return _secure(JSONResponse({"error": "send application/json"}, 415))
        if int(request.headers.get("content-length") or 0) > _MAX_BODY:
            return _secure(JSONResponse({"error": "request too large"}, 413))
        return None

    async def disconnect(self, request: Request) -> Response:
        refused = self._refuse_cross_site(request) or self._signed_out(request)
        if refused is not None:
            return refused
        await self.ready()
        try:
            removed = await self.chat.disconnect(request.path_params["toolkit"])
        except ToolAuthError as exc:
            return _secure(JSONResponse({"error": exc.message}, 400))
        return _secure(JSONResponse({"removed": removed}))

    async def chat_stream(self, request: Request) -> Response:
        refused = self._refuse_cross_site(request) or self._signed_out(request)
        if refused is not None:
            return refused
        await self.ready()
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _secure(JSONResponse({"error": "the body must be JSON"}, 400))
        thread_id = body.get("thread_id") if isinstance(body, dict) else None
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(thread_id, str) or not _THREAD_ID.fullmatch(thread_id):
            return _secure(JSONResponse({"error": "thread_id: 8-64 letters, digits, _ or -"}, 400))
        if not isinstance(message, str) or not message.strip() or len(message) > _MAX_MESSAGE:
            return _secure(JSONResponse({"error": f"message: 1 to {_MAX_MESSAGE} characters"}, 400))
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        if lock.locked():
            return _secure(JSONResponse({"error": "this conversation is still answering"}, 409))
        response = StreamingResponse(
            self._events(lock, thread_id, message.strip()),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        return _secure(response)

    async def _events(self, lock: asyncio.Lock, thread_id: str, message: str) -> AsyncIterator[str]:
        """Server-sent events of one turn; a comment every 15 s keeps quiet waits alive.
        A closed page cancels the turn (and any wait for a connection)."""
        async with lock:
            async for chunk in self._turn(thread_id, message):
                yield chunk

    async def _turn(self, thread_id: str, message: str) -> AsyncIterator[str]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        async def produce() -> None:
            try:
                async for event in self.chat.run(thread_id, message):
                    await queue.put(event)
            finally:
                if self._stopping:
                    queue.put_nowait({"type": "error", "message": "The demo server is stopping."})
                queue.put_nowait(None)

        if self._stopping:
            yield _sse({"type": "error", "message": "The demo server is stopping."})
            return
        task = asyncio.create_task(produce(), name=f"demo turn {thread_id}")
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)
        try:
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), _PING_SECONDS)
                except asyncio.TimeoutError:
                    yield ": waiting\n\n"
                    continue
                if event is None:
                    break
                yield _sse(event)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
