"""LangChain tools over a session: toolkit tools and the meta tools.

They follow langchain-core's conventions: ``args_schema`` from pydantic,
``response_format="content_and_artifact"`` (short JSON text for the model, the structured
result as the artifact), recoverable failures as ``ToolException`` with
``handle_tool_error=True`` (a toolkit tool's every failure is a ``ToolAuthError`` by then: see
``toolauth.tools._spec``), so the model reads them and the run goes on. A sync ``invoke()``
inside a running event loop is the caller's bug and raises ``InsideLoopError``. Connect links
also go out at once as a custom event (``toolauth.connect_link``) and, inside LangGraph,
through the stream writer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, Field, SkipValidation, create_model

from .._exceptions import ConnectionRequiredError, ToolAuthError, ValidationError
from ..tools import ToolSpec, builtin_tools
from ._base import SessionTool, dump
from ._connections import Emit, connection_required, manage
from ._mcp import mcp_tools

if TYPE_CHECKING:
    from ..resources.sessions import Session

__all__ = ["ManageConnectionsTool", "ToolkitTool", "WaitForConnectionsTool", "session_tools"]


def with_account(schema: type[BaseModel], toolkit: str, choices: str) -> type[BaseModel]:
    """``schema`` plus the optional ``account`` argument (which of several accounts)."""
    description = (
        f"Which of the user's {toolkit} accounts to act as: its alias, login or email"
        + (f" ({choices})" if choices else "")
        + ". Leave it out for the default account."
    )
    return create_model(
        schema.__name__,
        __base__=schema,
        account=(str | None, Field(default=None, max_length=200, description=description)),
    )


class ToolkitTool(SessionTool):
    """One toolkit tool, signed as the session's user. Never sees a token.

    Its ``args_schema`` accepts an optional ``account``; the schema the model sees
    (``tool_call_schema``) has it only while the user has several accounts of the toolkit.
    """

    spec: SkipValidation[Any] = Field(exclude=True, repr=False)  # a ToolSpec

    @property
    def tool_call_schema(self) -> Any:
        several = self.session.several_accounts(self.spec.toolkit)
        if not several:
            return self.spec.args_schema
        names = ", ".join(a.display_name for a in several)
        return with_account(self.spec.args_schema, self.spec.toolkit, names)

    async def _logic(self, args: dict[str, Any], emit: Emit) -> tuple[str, Any]:
        session, spec = self.session, self.spec
        args = dict(args)
        choice = args.pop("account", None)
        try:
            parsed = spec.args_schema.model_validate(args)
            result = await session.execute(spec, parsed, choice)
        except ConnectionRequiredError as exc:
            needed = await connection_required(session, spec.toolkit, emit, exc)
            return dump(needed), needed
        except ToolAuthError as exc:  # ToolApiError and the rest: an observation for the model
            raise ToolException(exc.message) from None
        return dump(result), result


class ManageConnectionsInput(BaseModel):
    toolkits: list[str] = Field(
        description="Toolkit slugs to check or connect, e.g. ['github', 'gmail']."
    )
    alias: str | None = Field(
        default=None,
        max_length=64,
        description="Only when the user asks to connect one MORE account of a toolkit they "
        "already connected (a work and a personal one): a short name for the new account, "
        "e.g. 'work'. The link adds that account; the others stay connected.",
    )


class ManageConnectionsReinitiateInput(ManageConnectionsInput):
    """Offered only when the app enables it: ``create(..., enable_reinitiate_all=True)``."""

    reinitiate_all: bool = Field(
        default=False,
        description="Make new connect links even for toolkits that are already connected "
        "(use when the user wants to switch accounts or a connection stopped working).",
    )


class ManageConnectionsTool(SessionTool):
    """The meta tool: checks the user's connections and returns connect links for the rest."""

    name: str = "COMPOSIO_MANAGE_CONNECTIONS"
    description: str = ""
    args_schema: type[BaseModel] = ManageConnectionsInput

    async def _logic(self, args: dict[str, Any], emit: Emit) -> tuple[str, Any]:
        interrupt: Any = None
        if self.session.resume == "interrupt":
            try:
                from langgraph.types import interrupt as langgraph_interrupt
            except ImportError:
                raise ToolException(
                    "resume='interrupt' needs LangGraph: pip install 'toolauth[langgraph]'."
                ) from None
            interrupt = langgraph_interrupt
        try:
            result = await manage(
                self.session, args.get("toolkits") or [],
                reinitiate_all=self.session.enable_reinitiate_all
                and bool(args.get("reinitiate_all")), emit=emit, alias=args.get("alias"),
                mode=self.session.resume, interrupt=interrupt,
            )  # fmt: skip
        except ToolAuthError as exc:  # unknown toolkit, a pinned account that is not theirs…
            raise ToolException(exc.message) from None
        return dump(result), result


class WaitForConnectionsInput(BaseModel):
    toolkits: list[str] = Field(description="Toolkit slugs whose connect links were shown.")
    mode: Literal["any", "all"] = Field(
        default="all", description="Return when 'any' one is connected, or when 'all' are."
    )


class WaitForConnectionsTool(SessionTool):
    """Waits until the user finishes connecting, for agents that prefer to wait explicitly."""

    name: str = "COMPOSIO_WAIT_FOR_CONNECTIONS"
    description: str = (
        "Wait until the user has finished connecting the given toolkits through the links "
        "already shown (mode 'all' or 'any'). Returns each toolkit's status; call it right "
        "after showing connect links instead of asking the user to say when they are done."
    )
    args_schema: type[BaseModel] = WaitForConnectionsInput

    async def _logic(self, args: dict[str, Any], emit: Emit) -> tuple[str, Any]:
        mode = args.get("mode", "all")
        try:
            now = await self.session.wait_for_connections(args.get("toolkits") or [], mode=mode)
        except ToolAuthError as exc:
            raise ToolException(exc.message) from None
        results = [
            {"toolkit": s, "status": c.status, "has_active_connection": c.has_active_connection,
             "connected_account_id": c.connected_account_id, "redirect_url": c.redirect_url,
             "connected_as": c.connected_as}
            for s, c in now.items()
        ]  # fmt: skip
        all_active = all(c.has_active_connection for c in now.values())
        result = {"results": results, "all_active": all_active}
        return dump(result), result


def _manage_description(session: Session) -> str:
    toolkits = ", ".join(session.available_toolkits())
    wait = {
        "wait": "It shows the user a connect link and waits until they finish, then returns "
        "the connected status, so just continue afterwards.",
        "interrupt": "It shows the user a connect link and pauses until they finish.",
        "return": "It returns connect links to show the user; call it again after they "
        "connect to check.",
    }[session.resume]
    return (
        "Check whether the user has connected the apps (toolkits) you need and get connect "
        f"links for the ones they have not. Call it before using a toolkit's tools, or when a "
        f"tool says a connection is required. {wait} Toolkits: {toolkits}."
    )


def session_tools(
    session: Session,
    *,
    toolkits: Iterable[str] | None = None,
    names: Iterable[str] | None = None,
    extra: Iterable[ToolSpec] = (),
    meta: bool = True,
) -> list[BaseTool]:
    """The LangChain tools for ``session`` (see :meth:`Session.tools`)."""
    slugs = (
        [session.check_toolkit(t) for t in toolkits]
        if toolkits is not None
        else session.available_toolkits()
    )
    specs = builtin_tools(slugs) + [s for s in extra if s.toolkit in slugs or toolkits is None]
    if names is not None:
        wanted_names = {n.upper() for n in names}
        session.expose(s for s in specs if s.name.upper() in wanted_names)
    else:
        session.expose(specs)
    tools: list[BaseTool] = [
        ToolkitTool(
            name=s.name,
            description=s.description,
            args_schema=with_account(s.args_schema, s.toolkit, ""),
            session=session,
            spec=s,
        )
        for s in specs
    ]
    for slug in slugs:  # remote MCP toolkits: the server's tools (toolauth.langchain._mcp)
        definition = session.toolkit(slug)
        if definition.mcp is not None:
            tools.extend(mcp_tools(session, definition))
    if names is not None:
        wanted = {n.upper() for n in names}
        unknown = wanted - {t.name.upper() for t in tools}
        if unknown:
            raise ValidationError(
                f"Unknown tool(s) {sorted(unknown)}; available: {sorted(t.name for t in tools)}.",
                field="tools",
            )
        tools = [t for t in tools if t.name.upper() in wanted]
    if meta:
        tools.append(
            ManageConnectionsTool(
                name=session.manage_connections_tool_name,
                args_schema=(
                    ManageConnectionsReinitiateInput
                    if session.enable_reinitiate_all
                    else ManageConnectionsInput
                ),
                description=_manage_description(session),
                session=session,
            )
        )
        if session.wait_tool_name:
            tools.append(WaitForConnectionsTool(name=session.wait_tool_name, session=session))
    return tools
