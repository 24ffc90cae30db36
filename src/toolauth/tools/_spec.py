"""What a toolkit tool is (``ToolSpec``), the decorator that makes one, and API errors the
model can act on."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_type_hints

from pydantic import BaseModel, ConfigDict, create_model

from .._exceptions import ToolApiError

if TYPE_CHECKING:
    import httpx

__all__ = ["ToolApiError", "ToolSpec", "builtin_tools", "check_response", "toolkit_tool"]

# Modules whose @toolkit_tool(..., builtin=True) functions ship with toolauth.
_BUILTIN_MODULES = ("demo", "github", "gmail", "slack", "notion", "linear")
_BUILTIN: dict[str, ToolSpec] = {}


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its model-facing name, description and arguments, and the code that runs it.

    ``run(client, args)`` gets an authenticated ``httpx.AsyncClient`` on the toolkit's API
    and the validated arguments; it returns a JSON-friendly, trimmed result.
    """

    name: str
    toolkit: str
    description: str
    args_schema: type[BaseModel]
    run: Callable[[httpx.AsyncClient, BaseModel], Awaitable[Any]]


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
            f"{toolkit} rejected the user's credentials{detail}. Ask the user to reconnect "
            f"{toolkit} (call the connection manager tool with reinitiate_all=true)."
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


def check_response(response: httpx.Response, toolkit: str) -> None:
    """Raise ``ToolApiError`` with a message the model can act on unless ``response`` is 2xx."""
    if response.is_success:
        return
    raise ToolApiError(_api_message(response, toolkit), status_code=response.status_code)


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
) -> Callable[[Callable[..., Awaitable[Any]]], ToolSpec]:
    """Make a tool from an async function whose first parameter is the authenticated client.

    ```python
    @toolkit_tool("github")
    async def star_repo(client: httpx.AsyncClient, owner: str, repo: str) -> dict:
        \"\"\"Star a GitHub repository for the user.\"\"\"
        check_response(await client.put(f"/user/starred/{owner}/{repo}"), "GitHub")
        return {"starred": f"{owner}/{repo}"}
    ```

    The tool is named ``GITHUB_STAR_REPO``; the docstring is its description (a prompt).
    Pass the result to ``session.tools(extra=[star_repo])``.
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

        spec = ToolSpec(tool_name, toolkit, text, model, run)
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
