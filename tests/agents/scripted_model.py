"""A scripted chat model: the only fake in the agent tests.

langchain-core's fake chat models (``GenericFakeChatModel``, ``FakeMessagesListChatModel``)
raise ``NotImplementedError`` from ``bind_tools``, so ``create_agent`` cannot use them. This
one is a plain ``BaseChatModel``: ``bind_tools`` records the tool names and returns the model
itself, and every call answers with the next step of the script. A step is an ``AIMessage``
or a function of the messages so far that returns one, so a step can read the previous
``ToolMessage`` and answer with data from it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

Step = AIMessage | Callable[[list[BaseMessage]], AIMessage]

_ids = itertools.count(1)


def call(*calls: tuple[str, dict[str, Any]] | str, text: str = "") -> AIMessage:
    """An AIMessage that calls tools: ``call("DEMO_LIST_ITEMS")`` or
    ``call(("A", {...}), ("B", {...}))`` for parallel calls."""
    tool_calls = []
    for item in calls:
        name, args = (item, {}) if isinstance(item, str) else item
        tool_calls.append({"name": name, "args": args, "id": f"call_{next(_ids)}"})
    return AIMessage(content=text, tool_calls=tool_calls)


def say(text: str) -> AIMessage:
    return AIMessage(content=text)


def tool_results(messages: Sequence[BaseMessage], name: str | None = None) -> list[ToolMessage]:
    """The ToolMessages so far (of tool ``name`` when given), oldest first."""
    return [m for m in messages if isinstance(m, ToolMessage) and (name is None or m.name == name)]


def last_json(messages: Sequence[BaseMessage], name: str) -> Any:
    """The JSON content of the latest ToolMessage of tool ``name``."""
    found = tool_results(messages, name)
    if not found:
        raise AssertionError(f"no ToolMessage from {name} yet")
    return json.loads(str(found[-1].content))


class ScriptedChatModel(BaseChatModel):
    """Answers each model call with the next step of ``script``."""

    script: list[Any] = Field(default_factory=list)
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        self.bound_tools = [getattr(t, "name", None) or str(t) for t in tools]
        return self

    @property
    def remaining(self) -> int:
        return len(self.script) - len(self.calls)

    def _next(self, messages: list[BaseMessage]) -> ChatResult:
        index = len(self.calls)
        if index >= len(self.script):
            raise AssertionError(
                f"the scripted model was called {index + 1} times; the script has "
                f"{len(self.script)} steps. Last message: {messages[-1]!r}"
            )
        self.calls.append(list(messages))
        step = self.script[index]
        message = step(list(messages)) if callable(step) else step
        if not isinstance(message, AIMessage):
            raise TypeError(f"step {index} returned {type(message).__name__}, not AIMessage")
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._next(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._next(messages)
