"""What a toolkit tool is (``ToolSpec``), the decorator that makes one, and API errors the
model can act on.

Every ``ToolSpec.run`` is guarded (:func:`_guarded`): whatever goes wrong inside a tool — the
network, a timeout, an answer that is not JSON or not shaped as expected, a bug in a custom
tool — leaves it as a ``ToolApiError`` whose message names the toolkit, says what failed and
whether retrying may help. The LangChain layer turns that into a ``ToolException``, so the
model reads it as an observation and the agent run goes on.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_type_hints

from pydantic import BaseModel, ConfigDict, create_model

from .._exceptions import ScopeRequiredError, ToolApiError, ToolAuthError

if TYPE_CHECKING:
    import httpx

__all__ = ["ToolApiError", "ToolSpec", "builtin_tools", "check_response", "toolkit_tool"]

log = logging.getLogger("toolauth.tools")

Run = Callable[["httpx.AsyncClient", BaseModel], Awaitable[Any]]

# Modules whose @toolkit_tool(..., builtin=True) functions ship with toolauth.
_BUILTIN_MODULES = ("demo", "github", "gmail", "slack", "notion", "linear")
_BUILTIN: dict[str, ToolSpec] = {}


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its model-facing name, description and arguments, and the code that runs it.

    ``run(client, args)`` gets an authenticated ``httpx.AsyncClient`` on the toolkit's API
    and the validated arguments; it returns a JSON-friendly, trimmed result. The ``run`` a
    spec keeps is the given one guarded: any exception other than a ``ToolAuthError`` (a
    network error, a timeout, a body that is not JSON, an unexpected shape, a bug) comes out
    as a ``ToolApiError`` the model can act on.
    """

    name: str
    toolkit: str
    description: str
    args_schema: type[BaseModel]
    run: Run
    scopes: tuple[str, ...] = ()  # the OAuth scopes it needs (a session's link asks for them)

    def __post_init__(self) -> None:
        guarded_as = getattr(self.run, "_toolauth_guarded", None)
        if guarded_as != (self.name, self.toolkit):  # unguarded, or renamed by replace()
            given = self.run.__wrapped__ if guarded_as else self.run  # type: ignore[attr-defined]
            object.__setattr__(self, "run", _guarded(given, self.name, self.toolkit))


def _api_message(response: httpx.Response, toolkit: str) -> str:
    status = response.status_code
    detail = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            raw = body.get("message") or body.get("error_description") or body.get("error")
            if isinstance(raw, dict):
                raw = raw.get("message")
            if isinstance(raw, str):
                detail = f" ({raw[:200]})"
    except ValueError:
        pass
    if status == 429:
        wait = response.headers.get("retry-after")
        when = f" after {wait} s" if wait else " later"
        return f"{toolkit} rate limit reached{detail}. Wait and try again{when}."
    if status == 401:
        return (
            f"{toolkit} rejected the user's credentials{detail}. Tell the user that {toolkit} "
            "needs to be reconnected (the connection manager tool can do it when it offers "
            "reinitiate_all)."
        )
    if status == 403:
        return (
            f"{toolkit} denied permission for this action{detail}. The connected account may "
            "lack a scope or access to this resource; tell the user what is missing."
        )
    if status == 404:
        return f"{toolkit} found nothing there{detail}. Check the names or ids and try again."
    if status in (400, 409, 422):
        return f"{toolkit} did not accept the request{detail}. Fix the arguments and try again."
    if status >= 500:
        return f"{toolkit} had an error (HTTP {status}){detail}. Try again later."
    return f"{toolkit} answered HTTP {status}{detail}."


_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*"([^"]*)"')


def insufficient_scope(response: httpx.Response) -> tuple[str, ...] | None:
    """The scopes a 403 ``insufficient_scope`` answer names (RFC 6750 §3.1: the Bearer
    challenge's ``error`` and ``scope``), ``()`` when it names none; None for other answers."""
    if response.status_code != 403:
        return None
    challenge = response.headers.get("www-authenticate", "")
    params = dict(_CHALLENGE_PARAM.findall(challenge))
    if not challenge.lower().startswith("bearer") or params.get("error") != "insufficient_scope":
        return None
    return tuple(s for s in params.get("scope", "").split() if s)


def check_response(response: httpx.Response, toolkit: str) -> None:
    """Raise ``ToolApiError`` with a message the model can act on unless ``response`` is 2xx;
    ``ScopeRequiredError`` for a 403 ``insufficient_scope`` (RFC 6750 §3.1)."""
    if response.is_success:
        return
    missing = insufficient_scope(response)
    if missing is not None:
        raise ScopeRequiredError(toolkit, missing)
    raise ToolApiError(_api_message(response, toolkit), status_code=response.status_code)


@functools.cache
def toolkit_name(slug: str) -> str:
    """The toolkit's display name from the shipped catalog ("GitHub"), else its slug."""
    from ..catalog import Catalog  # loaded on the first failure only: it reads every JSON file

    try:
        return Catalog().get(slug).name
    except ToolAuthError:
        return slug


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_RETRY = "This is usually temporary: try again in a moment."
_CHECK_FIRST = (
    "It is unknown whether the {method} request went through: check (list or search) before "
    "trying again, so nothing is done twice."
)


def _request_of(exc: Exception) -> httpx.Request | None:
    try:
        return exc.request  # type: ignore[attr-defined, no-any-return]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when it has none
        return None


def _retry_after_sending(request: httpx.Request | None) -> str:
    """Retry advice once a request may have reached the API: safe for reads only."""
    if request is None or request.method in _SAFE_METHODS:
        return _RETRY
    return _CHECK_FIRST.format(method=request.method)


def _seconds(request: httpx.Request | None, which: str) -> str:
    limits = request.extensions.get("timeout", {}) if request is not None else {}
    limit = limits.get(which) if isinstance(limits, dict) else None
    return f" within {limit:g} s" if isinstance(limit, (int, float)) else ""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from (httpx wraps httpcore wraps OSError)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _connect_reason(exc: Exception) -> str:
    """What kind of network failure, without echoing the raw text (it may hold a URL)."""
    import socket
    import ssl

    import httpx

    if isinstance(exc, httpx.RemoteProtocolError):
        return "it closed the connection without a whole answer"
    for cause in _chain(exc):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "its host name did not resolve"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, ssl.SSLError):
            return "a TLS error"
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if any(w in text for w in ("name or service", "nodename", "getaddrinfo", "name resolution")):
        return "its host name did not resolve"
    if "reset" in text:
        return "connection reset"
    return "network error"


def _failure(exc: Exception, tool: str, toolkit: str) -> tuple[str, bool]:
    """What the model reads for ``exc`` raised inside ``tool``, and whether it is a bug.

    The message names the toolkit, says what failed and whether retrying may help. It never
    shows the exception's text (it may hold a URL, a header or a body), only its type.
    """
    import httpx  # already loaded: a tool gets an httpx client

    who = toolkit_name(toolkit)
    request = _request_of(exc)
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        kind = "connect" if isinstance(exc, httpx.ConnectTimeout) else "pool"
        return (
            f"{who} could not be reached in time (no connection{_seconds(request, kind)}). "
            + _RETRY
        ), False
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        kind = "write" if isinstance(exc, httpx.WriteTimeout) else "read"
        return (
            f"{who} did not answer in time (the request timed out{_seconds(request, kind)}). "
            + _retry_after_sending(request)
        ), False
    if isinstance(exc, httpx.ConnectError):
        return (
            f"Could not connect to {who} ({_connect_reason(exc)}). It may be down or "
            "unreachable from here: try again in a moment, and if it keeps failing, tell the "
            "user."
        ), False
    if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError, ConnectionError)):
        return (
            f"The connection to {who} broke before it answered ({_connect_reason(exc)}). "
            + _retry_after_sending(request)
        ), False
    if isinstance(exc, httpx.DecodingError):
        return (
            f"{who} sent an answer that could not be decoded. Try again later; if it keeps "
            "happening, tell the user."
        ), False
    if isinstance(exc, (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)):
        return (
            f"{tool} could not call {who} ({type(exc).__name__}): the tool or its toolkit is "
            "set up wrongly. Retrying will not help; tell the user."
        ), False
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        return (
            f"{who} sent an answer that is not JSON. Try again later; if it keeps happening, "
            "tell the user."
        ), False
    return (
        f"{tool} failed unexpectedly ({type(exc).__name__}) while working with {who}. The "
        "fault is in the tool or in an answer it did not expect, not in your arguments; "
        f"retrying will probably not help. Tell the user that {tool} is not working."
    ), True


def _first_leaf(exc: Exception) -> Exception:
    """The first exception inside an exception group (``exc`` itself otherwise)."""
    while True:
        inner = getattr(exc, "exceptions", None)
        if not isinstance(inner, tuple) or not inner or not isinstance(inner[0], Exception):
            return exc
        exc = inner[0]


def _guarded(run: Run, tool: str, toolkit: str) -> Run:
    """``run`` whose every failure comes out as a ``ToolAuthError``.

    A ``ToolAuthError`` passes as it is (``ConnectionRequiredError`` still leads to a connect
    link); anything else becomes a ``ToolApiError`` (``_failure``), chained to the original.
    A bug is logged with its traceback on ``toolauth.tools``; a network failure by type only.
    ``BaseException``s (cancellation, KeyboardInterrupt) are not touched.
    """

    @functools.wraps(run)
    async def guarded(client: httpx.AsyncClient, args: BaseModel) -> Any:
        try:
            return await run(client, args)
        except ToolAuthError:  # ToolApiError, ConnectionRequiredError, TokenRefreshError, …
            raise
        except Exception as exc:
            first = _first_leaf(exc)  # a task group's errors: the first one says enough
            if isinstance(first, ToolAuthError):
                raise first from exc
            message, bug = _failure(first, tool, toolkit)
            if bug:
                log.error("%s failed unexpectedly", tool, exc_info=exc)
            else:  # the type only: the text may hold a URL
                log.warning("%s: %s", tool, type(first).__name__)
            raise ToolApiError(message) from exc

    guarded._toolauth_guarded = (tool, toolkit)  # type: ignore[attr-defined]
    return guarded


def _tool_name(toolkit: str, function_name: str) -> str:
    name = function_name.upper()
    prefix = f"{toolkit.upper()}_"
    return name if name.startswith(prefix) else prefix + name


def _args_model(fn: Callable[..., Any], name: str) -> type[BaseModel]:
    """A pydantic model from ``fn``'s parameters after the client (``Annotated`` kept)."""
    signature = inspect.signature(fn)
    hints = get_type_hints(fn, include_extras=True)
    params = list(signature.parameters.values())[1:]
    fields: dict[str, Any] = {}
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{name}: tool functions take named parameters only")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    model_name = "".join(part.title() for part in re.split(r"[_\W]+", name) if part) + "Input"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def toolkit_tool(
    toolkit: str,
    *,
    name: str | None = None,
    description: str | None = None,
    builtin: bool = False,
    scopes: Iterable[str] = (),
) -> Callable[[Callable[..., Awaitable[Any]]], ToolSpec]:
    """Make a tool from an async function whose first parameter is the authenticated client.

    ```python
    @toolkit_tool("github")
    async def star_repo(client: httpx.AsyncClient, owner: str, repo: str) -> dict:
        \"\"\"Star a GitHub repository for the user.\"\"\"
        url = path("/user/starred/{owner}/{repo}", owner=owner, repo=repo)
        check_response(await client.put(url), "GitHub")
        return {"starred": f"{owner}/{repo}"}
    ```

    The tool is named ``GITHUB_STAR_REPO``; the docstring is its description (a prompt).
    ``scopes``: the OAuth scopes it needs; a session's link asks for the union of its tools'
    scopes, and a call whose account lacks one answers with a link that adds it (step-up).
    Pass the result to ``session.tools(extra=[star_repo])``. Build paths with
    :func:`~toolauth.tools.path`, never an f-string. Whatever the function raises reaches the
    model as an error observation (see :class:`ToolSpec`), so a bug never ends the agent run.
    """

    def wrap(fn: Callable[..., Awaitable[Any]]) -> ToolSpec:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"{fn.__name__} must be an async function")
        tool_name = name or _tool_name(toolkit, fn.__name__)
        text = description or inspect.getdoc(fn)
        if not text:
            raise TypeError(f"{tool_name} needs a description (a docstring): the model reads it")
        model = _args_model(fn, tool_name)

        async def run(client: httpx.AsyncClient, args: BaseModel) -> Any:
            return await fn(client, **{k: getattr(args, k) for k in type(args).model_fields})

        spec = ToolSpec(tool_name, toolkit, text, model, run, tuple(dict.fromkeys(scopes)))
        if builtin:
            if tool_name in _BUILTIN:
                raise ValueError(f"two built-in tools are named {tool_name}")
            _BUILTIN[tool_name] = spec
        return spec

    return wrap


def builtin_tools(toolkits: Iterable[str] | None = None) -> list[ToolSpec]:
    """The tools that ship with toolauth, for ``toolkits`` (all when ``None``), by name."""
    wanted = None if toolkits is None else set(toolkits)
    for module in _BUILTIN_MODULES:  # import only the toolkits asked for
        if wanted is None or module in wanted:
            importlib.import_module(f"{__package__}.{module}")
    return sorted(
        (s for s in _BUILTIN.values() if wanted is None or s.toolkit in wanted),
        key=lambda s: s.name,
    )
