"""MCP tool results as toolauth tool results.

MCP ``CallToolResult``: ``content`` blocks for the model, ``structuredContent`` for code,
``isError`` for a failure the model should read (MCP 2025-06-18, "Tools" §Tool Result).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .._exceptions import ToolApiError

__all__ = ["McpResult", "tool_result"]

_MAX_TEXT = 20_000


@dataclass(frozen=True)
class McpResult:
    """What the model reads (``text``) and what code gets (``artifact``: the structured
    content, else the content blocks as JSON)."""

    text: str
    artifact: Any


def _blocks_text(content: list[Any]) -> str:
    parts = []
    for block in content:
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append(str(getattr(block, "text", "")))
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {getattr(block, 'mime_type', '')}]")
        elif kind == "resource_link":
            parts.append(f"[resource {getattr(block, 'uri', '')}]")
        else:
            parts.append(f"[{kind}]")
    return "\n".join(parts)


def tool_result(result: Any, *, toolkit: str, tool: str) -> McpResult:
    """``result`` (a ``CallToolResult``) as a :class:`McpResult`; an ``isError`` result is a
    ``ToolApiError`` with the server's words, cut to a readable length."""
    content = list(getattr(result, "content", None) or [])
    text = _blocks_text(content)
    if getattr(result, "is_error", False):
        said = text.strip()[:500] or "no details"
        raise ToolApiError(f"{toolkit} tool {tool} reported an error: {said}")
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        shown = json.dumps(structured, ensure_ascii=False, separators=(",", ":"), default=str)
        return McpResult(shown[:_MAX_TEXT], structured)
    blocks = [b.model_dump(mode="json", exclude_none=True) for b in content]
    return McpResult(text[:_MAX_TEXT], {"content": blocks})
