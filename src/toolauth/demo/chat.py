"""The demo's agent and what the chat page sees of it.

One ``create_agent`` agent over the session's tools, with an in-memory checkpointer (one
thread per chat tab). :meth:`DemoChat.run` turns ``astream_events`` into small JSON events for
the page: assistant text, tool calls and results, connect links, the end or an error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import HumanMessage, ToolMessage

from ..langchain import CONNECT_LINK_EVENT
from .model import SYSTEM_PROMPT, ChosenModel, text_of

if TYPE_CHECKING:
    from .._client import AsyncToolAuth
    from ..resources.sessions import Session

__all__ = ["DEMO_TOOLKITS", "DEMO_USER_ID", "NOTES_NAME", "NOTES_SLUG", "DemoChat"]

DEMO_USER_ID = "demo-user"
NOTES_SLUG = "notes"
NOTES_NAME = "Notes (MCP demo)"
DEMO_TOOLKITS = ("demo", "github", NOTES_SLUG)
_MAX_RESULT = 4000


def _plain(value: Any, limit: int = _MAX_RESULT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + " …"


def _tool_args(data: dict[str, Any]) -> dict[str, Any]:
    raw = data.get("input")
    if isinstance(raw, dict):
        return {k: v for k, v in raw.items() if not k.startswith("_") and k != "runtime"}
    return {"input": _plain(raw, 500)} if raw is not None else {}


class DemoChat:
    """The agent of the demo chat, for one local user."""

    def __init__(
        self,
        ta: AsyncToolAuth,
        chosen: ChosenModel,
        *,
        user_id: str = DEMO_USER_ID,
        toolkits: Sequence[str] = DEMO_TOOLKITS,
        wait_timeout: float = 300.0,
    ) -> None:
        self.ta = ta
        self.chosen = chosen
        self.user_id = user_id
        self.toolkits = tuple(toolkits)
        self.wait_timeout = wait_timeout
        self._session: Session | None = None
        self._agent: Any = None

    def start(self, base_url: str, *, toolkits: Sequence[str] | None = None) -> None:
        """Make the session and the agent; connect links come back to ``{base_url}/connected``.
        ``toolkits`` narrows the chat's toolkits (the demo leaves out one it could not add)."""
        from langchain.agents import create_agent
        from langgraph.checkpoint.memory import InMemorySaver

        if toolkits is not None:
            self.toolkits = tuple(toolkits)

        self._session = self.ta.create(
            self.user_id, toolkits=list(self.toolkits), resume="wait",
            callback_url=f"{base_url}/connected", wait_timeout=self.wait_timeout,
        )  # fmt: skip
        self._agent = create_agent(
            self.chosen.model,
            self._session.tools(),
            system_prompt=SYSTEM_PROMPT,
            checkpointer=InMemorySaver(),
        )

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("DemoChat.start(base_url) was not called")
        return self._session

    async def run(self, thread_id: str, text: str) -> AsyncIterator[dict[str, Any]]:
        """The events of one turn: ``message``, ``token``, ``tool_start``, ``tool_end``,
        ``connect_link``, then ``done`` (or ``error``)."""
        config = {"configurable": {"thread_id": thread_id}, "recursion_limit": 25}
        links: set[str] = set()
        try:
            async for event in self._agent.astream_events(
                {"messages": [HumanMessage(content=text)]}, config, version="v2"
            ):
                for out in self._translate(event, links):
                    yield out
        except Exception as exc:  # shown plainly in the chat; the server keeps running
            message = (str(exc).strip().splitlines() or [""])[0][:300]
            yield {"type": "error", "message": f"{type(exc).__name__}: {message}".rstrip(": ")}
            return
        yield {"type": "done"}

    def _translate(self, event: dict[str, Any], links: set[str]) -> list[dict[str, Any]]:
        kind = event.get("event")
        data = event.get("data") or {}
        run_id = str(event.get("run_id", ""))
        if kind == "on_custom_event" and event.get("name") == CONNECT_LINK_EVENT:
            return self._link(data, links)
        if kind == "on_chat_model_stream":
            chunk = data.get("chunk")
            text = text_of(chunk) if chunk is not None else ""
            return [{"type": "token", "id": run_id, "text": text}] if text else []
        if kind == "on_chat_model_end":
            output = data.get("output")
            text = text_of(output) if output is not None and hasattr(output, "content") else ""
            return [{"type": "message", "id": run_id, "text": text}] if text.strip() else []
        if kind == "on_tool_start":
            name = event.get("name", "")
            return [{"type": "tool_start", "id": run_id, "name": name, "args": _tool_args(data)}]
        if kind == "on_tool_end":
            output = data.get("output")
            status, content = "success", output
            if isinstance(output, ToolMessage):
                status, content = output.status, output.content
            return [{
                "type": "tool_end", "id": run_id, "name": event.get("name", ""),
                "status": status, "result": _plain(content),
            }]  # fmt: skip
        if kind == "on_tool_error":
            return [{
                "type": "tool_end", "id": run_id, "name": event.get("name", ""),
                "status": "error", "result": _plain(str(data.get("error", "error"))),
            }]  # fmt: skip
        return []

    @staticmethod
    def _link(payload: Any, links: set[str]) -> list[dict[str, Any]]:
        if not isinstance(payload, dict) or payload.get("type") != CONNECT_LINK_EVENT:
            return []
        link_id = str(payload.get("link_id") or "")
        if not link_id or link_id in links:
            return []
        links.add(link_id)
        keep = (
            "toolkit", "toolkit_name", "redirect_url", "connection_request_id", "link_id",
            "expires_at",
        )  # fmt: skip
        return [{"type": "connect_link", **{k: payload.get(k) for k in keep}}]

    # connections panel -------------------------------------------------------------------
    async def connections(self) -> list[dict[str, Any]]:
        """Each toolkit of the demo with this user's connection state."""
        return [
            {"toolkit": c.toolkit, "name": c.name, "status": c.status}
            for c in await self.session.toolkits()
        ]

    async def disconnect(self, toolkit: str) -> int:
        """Delete this user's accounts of ``toolkit`` (so the connect flow can be tried again)."""
        slug = self.session.check_toolkit(toolkit)
        accounts = self.ta.connected_accounts
        found = await accounts.list(user_id=self.user_id, toolkit=slug)
        for account in found:
            await accounts.delete(account.id)
        return len(found)
