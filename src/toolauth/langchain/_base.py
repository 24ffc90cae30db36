"""What every session tool shares: the session, sync calls that drive the async logic, and
the connect-link emitters (custom events, LangGraph's stream writer)."""

from __future__ import annotations

import json
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForToolRun,
    CallbackManagerForToolRun,
)
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, SkipValidation

from .._loop import InsideLoopError, loop_running, run_sync
from ._connections import CONNECT_LINK_EVENT, Emit

__all__ = ["SessionTool", "dump"]


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _stream_writer() -> Any:
    """LangGraph's custom stream writer when running inside a graph, else ``None``."""
    try:
        from langgraph.config import get_stream_writer
    except ImportError:
        return None
    try:
        return get_stream_writer()
    except (RuntimeError, KeyError):
        return None


def _async_emitter(run_manager: AsyncCallbackManagerForToolRun | None) -> Emit:
    async def emit(payload: dict[str, Any]) -> None:
        if run_manager is not None:
            await run_manager.get_child().on_custom_event(
                CONNECT_LINK_EVENT, payload, run_id=run_manager.run_id
            )
        writer = _stream_writer()
        if writer is not None:
            writer(payload)

    return emit


def _sync_emitter(run_manager: CallbackManagerForToolRun | None) -> Emit:
    async def emit(payload: dict[str, Any]) -> None:
        if run_manager is not None:
            run_manager.get_child().on_custom_event(
                CONNECT_LINK_EVENT, payload, run_id=run_manager.run_id
            )
        writer = _stream_writer()
        if writer is not None:
            writer(payload)

    return emit


class SessionTool(BaseTool):
    """Shared plumbing: the session, and sync calls that drive the async logic."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    session: SkipValidation[Any] = Field(exclude=True, repr=False)  # a Session
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool = True

    async def _logic(self, args: dict[str, Any], emit: Emit) -> tuple[str, Any]:
        raise NotImplementedError

    async def _arun(
        self,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> tuple[str, Any]:
        return await self._logic(kwargs, _async_emitter(run_manager))

    def _run(
        self,
        run_manager: CallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> tuple[str, Any]:
        if loop_running():
            # Not a ToolException: handle_tool_error would hand it to the model as the tool's
            # output. Calling invoke() on a running loop is the caller's bug; it must surface.
            raise InsideLoopError(
                f"{self.name}.invoke() was called inside a running event loop, where it would "
                "block the loop; use `await tool.ainvoke(...)` instead."
            )
        return run_sync(self._logic, kwargs, _sync_emitter(run_manager))
