"""Routes of the connect app. HTTP only: each handler asks :class:`ConnectFlow` for the next
step and renders it."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Message

from .._callbacks import check_callback_url, is_loopback_url
from .._exceptions import ClientClosedError, ConfigurationError, ToolAuthError, ValidationError
from .._loop import cancel_and_wait
from ..events import Actor, acting_as
from .client_metadata import ClientMetadataEndpoint
from .logs import install_access_log_filter, redact_path
from .pages import STYLESHEET, render_form, render_page
from .steps import (
    CSRF_COOKIE,
    Cookie,
    KeyForm,
    Page,
    Redirect,
    Step,
    Visitor,
    state_cookie_name,
)

if TYPE_CHECKING:
    from .._client import AsyncToolAuth
    from .._settings import Settings

__all__ = ["check_binding", "create_connect_app"]

log = logging.getLogger("toolauth.connect")

_MAX_FORM_BYTES = 16 * 1024


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _security_headers(response: Response, *, form_targets: str = "") -> Response:
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
        f"form-action 'self'{form_targets}; frame-ancestors 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


async def _read_form(request: Request) -> dict[str, str] | Page:
    """The posted form's text fields, or the page refusing it. The size limit holds for the
    bytes actually sent, whatever ``Content-Length`` says (or when there is none)."""
    too_large = Page(413, "Too large", "That form was too large.", error="too_large")
    declared = request.headers.get("content-length", "").strip()
    if declared and not (declared.isascii() and declared.isdigit()):
        return Page(400, "Bad request", "That form could not be read.", error="bad_request")
    if declared and int(declared) > _MAX_FORM_BYTES:
        return too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            return too_large

    async def replay() -> Message:
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=0, max_fields=50)
    except (HTTPException, MultiPartException):
        return Page(400, "Bad request", "That form could not be read.", error="bad_request")
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _set_cookies(response: Response, cookies: tuple[Cookie, ...], secure: bool) -> None:
    for cookie in cookies:
        response.set_cookie(
            cookie.name, cookie.value, max_age=cookie.max_age, path=cookie.path,
            httponly=True, samesite=cookie.samesite, secure=secure,
        )  # fmt: skip


VerifyUser = Callable[[Request], "str | Awaitable[str | None] | None"]


def check_binding(settings: Settings, base_url: str, *, verify_user: bool) -> None:
    """Refuse to serve links at a public ``base_url`` that nobody binds to their user: the
    app needs ``verify_user`` or a confirm URL, unless ``TOOLAUTH_UNVERIFIED_LINKS=1``."""
    if not 0 < settings.confirm_ttl <= 3600:
        raise ConfigurationError(
            f"TOOLAUTH_CONFIRM_TTL={settings.confirm_ttl:g} must be more than 0 and at most "
            "3600 seconds (the default is 600)."
        )
    if settings.confirm_url is not None:
        try:
            check_callback_url(
                settings.confirm_url, allowed_origins=settings.allowed_callback_origins,
                base_url=base_url,
            )  # fmt: skip
        except ValidationError as exc:
            raise ConfigurationError(f"TOOLAUTH_CONFIRM_URL: {exc.message}") from None
    if verify_user or is_loopback_url(base_url) or settings.confirm_url is not None:
        return
    if settings.unverified_links:
        log.warning(
            "UNVERIFIED CONNECT LINKS: the connect app at %s is public and "
            "TOOLAUTH_UNVERIFIED_LINKS=1, so whoever opens a connect link can attach their own "
            "account to the user it was made for. Use verify_user or TOOLAUTH_CONFIRM_URL.",
            base_url,
        )
        return
    raise ConfigurationError(
        f"The connect app at {base_url} is not on loopback, so each connect link must be bound "
        "to the user it was made for, and this app has no way to tell who finishes one. "
        "Either mount it with ta.asgi_app(verify_user=fn), where fn(request) returns the id of "
        "the user signed in to your app; or set TOOLAUTH_CONFIRM_URL to a page of your app "
        "that calls ta.connected_accounts.confirm(code, user_id=...) (links made with a "
        "callback_url are confirmed there). To serve unbound links anyway, set "
        "TOOLAUTH_UNVERIFIED_LINKS=1."
    )


def create_connect_app(client: AsyncToolAuth, verify_user: VerifyUser | None = None) -> Starlette:
    """The connect app for ``client``; with ``verify_user``, a link is completed only by the
    browser whose signed-in user (as the host app says) the link was made for. Without it, on
    a public ``base_url``, grants wait for the app's confirmation (``confirm``); while the app
    runs (its lifespan), grants left unconfirmed are swept: erased and revoked."""
    check_binding(client.settings, client.urls.base_url, verify_user=verify_user is not None)
    flow = client.connect_flow
    install_access_log_filter()  # wherever it is served, its access lines carry no secret
    confirmations = client.confirmations

    async def sweep() -> None:
        try:
            await confirmations.sweep()
        except ClientClosedError:
            raise
        except Exception:
            log.exception("sweeping unconfirmed grants failed; trying again later")

    async def sweeping() -> None:
        interval = max(0.05, min(30.0, client.settings.confirm_ttl / 4))
        with contextlib.suppress(ClientClosedError):
            while True:
                await asyncio.sleep(interval)
                await sweep()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(sweeping(), name="toolauth-confirm-sweep")
        try:
            yield
        finally:
            await cancel_and_wait(task)

    async def visitor_of(request: Request) -> Visitor | None:
        if verify_user is None:
            return None
        try:
            found = verify_user(request)
            if inspect.isawaitable(found):
                found = await found
        except Exception:
            log.exception("verify_user failed on %s; treating the browser as signed out",
                          redact_path(request.url.path))  # fmt: skip
            return Visitor(None)
        return Visitor(found if isinstance(found, str) and found else None)

    def respond(step: Step, request: Request) -> Response:
        secure = client.settings.base_url.startswith("https://")
        response: Response
        if isinstance(step, Redirect):
            response = RedirectResponse(step.url, status_code=303)
            _set_cookies(response, step.cookies, secure)
            return _security_headers(response)
        if isinstance(step, KeyForm):
            response = HTMLResponse(render_form(step), status_code=step.status_code)
            _set_cookies(response, step.cookies, secure)
            extra = f" {_origin(step.callback_url)}" if step.callback_url else ""
            return _security_headers(response, form_targets=extra)
        response = HTMLResponse(render_page(step), status_code=step.status_code)
        return _security_headers(response)

    async def link_page(request: Request) -> Response:
        with acting_as(Actor.USER):  # what a browser does is the user's doing
            return await _link_page(request)

    async def _link_page(request: Request) -> Response:
        link_id = request.path_params["link_id"]
        if request.method == "GET":
            await _opened(link_id)
        if request.method == "POST":
            values = await _read_form(request)
            if isinstance(values, Page):
                return respond(values, request)
            step = await flow.submit_form(
                link_id, values, request.cookies.get(CSRF_COOKIE), await visitor_of(request)
            )
        else:
            step = await flow.begin(link_id, await visitor_of(request))
        return respond(step, request)

    async def _opened(link_id: str) -> None:
        """Audit: a user opened a link (its ids, never the link id itself)."""
        store = await client.store()
        link = await store.get_link(link_id) if link_id.startswith("ln_") else None
        if link is not None:
            await store.record_audit(
                "link.opened", outcome=str(link.status), user_id=link.user_id,
                toolkit=link.toolkit, auth_config_id=link.auth_config_id,
                connected_account_id=link.connected_account_id,
            )  # fmt: skip

    async def oauth_callback(request: Request) -> Response:
        with acting_as(Actor.USER):
            return await _oauth_callback(request)

    async def _oauth_callback(request: Request) -> Response:
        params = {k: v for k, v in request.query_params.items()}
        state = params.get("state")
        cookie = state_cookie_name(state) if state else None
        step = await flow.finish_oauth(
            params, request.cookies.get(cookie) if cookie else None, await visitor_of(request)
        )
        response = respond(step, request)
        # The cookie of this link's openings in this browser goes once its state is spent;
        # a refusal that spent nothing (another user, another opening's state) keeps it.
        kept = ("wrong_user", "not_signed_in", "state_not_bound")
        refused = isinstance(step, Page) and step.error in kept
        if cookie is not None and not refused:  # this link's cookie only; others stay
            response.delete_cookie(cookie, path=flow.public_path("/oauth/callback"))
        return response

    async def link_status(request: Request) -> Response:
        status = await flow.link_status(request.path_params["link_id"])
        if status is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        response = JSONResponse(status)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def stylesheet(request: Request) -> Response:
        return Response(
            STYLESHEET, media_type="text/css",
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )  # fmt: skip

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def on_error(request: Request, exc: Exception) -> Response:
        # The traceback, never the request's secrets (link ids and queries redacted).
        log.error("connect app error on %s", redact_path(request.url.path), exc_info=exc)
        if isinstance(exc, ConfigurationError):
            # A catalog value that cannot be used (a template that does not render): asking
            # again will not help, so no 500; the user is told who can fix it.
            page = Page(
                409, "Not configured",
                f"This connection is not set up correctly on this app: {exc.message} Ask the "
                "app's operator to fix it; nothing was saved.", error="not_configured",
            )  # fmt: skip
            return respond(page, request)
        message = exc.message if isinstance(exc, ToolAuthError) else "Something went wrong."
        page = Page(500, "Something went wrong", f"{message} Nothing was saved; try again.")
        return respond(page, request)

    app = Starlette(
        routes=[
            Route("/link/{link_id}", link_page, methods=["GET", "POST"]),
            Route("/oauth/callback", oauth_callback, methods=["GET"]),
            Route("/api/links/{link_id}", link_status, methods=["GET"]),
            Route("/static/toolauth.css", stylesheet, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
            Route(
                "/clients/{slug}.json",
                ClientMetadataEndpoint(client.catalog, client.urls).serve,
                methods=["GET"],
            ),
        ],
        exception_handlers={Exception: on_error},
        lifespan=lifespan,
    )
    # No redirect to the same path with or without a slash: every answer of this app is one of
    # its own pages or a redirect it chose (the provider, the link's callback), never a
    # Location built from the request's Host header.
    app.router.redirect_slashes = False
    return app
