"""LangChain tools for remote MCP toolkits (``ta.toolkits.add_mcp``).

Each of the server's tools becomes a tool named ``<TOOLKIT>_<TOOL>`` whose ``args_schema`` is
the server's own JSON schema, unchanged. Results: the structured content as the artifact (the
text for the model), ``isError`` as a ``ToolException`` the model reads.

Before any user has connected the server, nobody can list its tools (listing needs a token).
Such a toolkit gets one dispatcher tool, ``<TOOLKIT>_CALL_TOOL(tool, arguments)``: it
answers with the connect link like any toolkit tool, and once the user is connected it lists
the tools (with their schemas) or calls one by name, in the same run. The first connected
user's list is kept as the toolkit's cached list, so later sessions get the named tools.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, Field

from .._exceptions import ConnectionRequiredError, ToolAuthError
from ..catalog import McpToolSpec, ToolkitDefinition
from ._base import SessionTool, dump
from ._connections import CONNECT_LINK_EVENT, Emit, connection_required

__all__ = ["McpDispatchTool", "McpTool", "mcp_tools"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def tool_name(toolkit: str, tool: str) -> str:
    """``NOTES_LIST_NOTES``: the toolkit's slug and the server's tool name, as one name a
    model API accepts (letters, digits, ``_`` and ``-``; 64 characters at most)."""
    return f"{toolkit.upper()}_{_UNSAFE.sub('_', tool).upper()}"[:64]


async def _run_mcp(
    tool: SessionTool, toolkit: str, remote: str, arguments: dict[str, Any], emit: Emit
) -> tuple[str, Any]:
    session = tool.session
    try:
        result = await session.call_mcp_tool(toolkit, remote, arguments)
    except ConnectionRequiredError:
        needed = await connection_required(session, toolkit, emit)
        return dump(needed), needed
    except ToolAuthError as exc:
        elicitations = getattr(exc, "elicitations", None)
        if elicitations:  # MCP URL elicitation: shown like a connect link
            name = session.toolkit(toolkit).name
            for e in elicitations:
                await emit({
                    "type": CONNECT_LINK_EVENT, "v": 1, "toolkit": toolkit, "toolkit_name": name,
                    "redirect_url": e.url, "elicitation": True, "message": e.message,
                })  # fmt: skip
            links = " ".join(e.url for e in elicitations)
            raise ToolException(
                f"{exc.message} Show the user this link: {links} . When they are done, call "
                f"the tool again."
            ) from None
        raise ToolException(exc.message) from None
    return result.text, result.artifact


class McpTool(SessionTool):
    """One tool of a remote MCP server, called as the session's user."""

    toolkit: str
    remote_name: str

    async def _logic(self, args: dict[str, Any], emit: Emit) -> tuple[str, Any]:
        return await _run_mcp(self, self.toolkit, self.remote_name, args, emit)


class McpDispatchInput(BaseModel):
    tool: str = Field(
        default="", description="The server's tool name; leave empty to list the tools."
    )
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="The tool's arguments, as its input schema says."
    )


class McpDispatchTool(SessionTool):
    """Lists or calls the tools of an MCP server whose tool list is not known yet."""

    toolkit: str
    args_schema: type[BaseModel] = McpDispatchInput

    async def _logic(self, args: dict[str, Any], emit: Emit) -> tuple[str, Any]:
        session, slug = self.session, self.toolkit
        try:
            tools = await session.mcp_tools(slug)
        except ToolAuthError as exc:
            raise ToolException(exc.message) from None
        wanted = str(args.get("tool") or "")
        known = {t.name: t for t in tools}
        if not wanted or (known and wanted not in known):
            if await session.account(slug) is None:
                needed = await connection_required(session, slug, emit)
                return dump(needed), needed
            listed = {
                "tools": [
                    {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                    for t in tools
                ],
                "instruction": f"Call {self.name} again with one of these names and its arguments.",
            }
            return dump(listed), listed
        arguments = args.get("arguments") or {}
        return await _run_mcp(self, slug, wanted, dict(arguments), emit)


def mcp_tools(session: Any, definition: ToolkitDefinition) -> list[BaseTool]:
    """The LangChain tools of one MCP toolkit for ``session``: one per cached tool, or the
    dispatcher while no tool list is known."""
    assert definition.mcp is not None
    slug, name = definition.slug, definition.name
    cached: tuple[McpToolSpec, ...] = definition.mcp.tools
    if not cached:
        return [
            McpDispatchTool(
                name=f"{slug.upper()}_CALL_TOOL",
                description=(
                    f"Use {name} (a remote MCP server): call with no tool to list its tools, "
                    "then with a tool name and arguments to run it. If the user has not "
                    "connected it yet, this returns a connect link."
                ),
                session=session,
                toolkit=slug,
            )
        ]
    return [
        McpTool(
            name=tool_name(slug, t.name),
            description=(t.description or f"{t.name} ({name})")[:1024],
            args_schema=dict(t.input_schema),
            session=session,
            toolkit=slug,
            remote_name=t.name,
        )
        for t in cached
    ]
