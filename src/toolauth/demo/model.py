"""The demo's chat model: a scripted one by default, a real one when configured.

``ScriptedDemoModel`` is a small ``BaseChatModel`` that reads the user's last message, picks a
tool, and reacts to tool results the way a tool-calling LLM would: a tool that says
"connection required" makes it call ``COMPOSIO_MANAGE_CONNECTIONS``; once that reports the
toolkit connected it calls the tool again and summarises the result. It understands:

- "show my demo profile"          -> ``DEMO_GET_PROFILE``
- "list my items"                 -> ``DEMO_LIST_ITEMS``
- "create an item called X"       -> ``DEMO_CREATE_ITEM``
- "list my github repos"          -> ``GITHUB_LIST_REPOSITORIES`` (the simulated GitHub)
- "who am I on github"            -> ``GITHUB_GET_THE_AUTHENTICATED_USER``
- "list my notes"                 -> ``NOTES_CALL_TOOL`` with ``list_notes`` (the Notes MCP
                                     server's dispatcher tool, see toolauth.langchain._mcp)
- "add a note called X"           -> ``NOTES_CALL_TOOL`` with ``add_note``

Set ``TOOLAUTH_DEMO_MODEL`` (e.g. ``openai:gpt-4o-mini``) to use a real model through
``langchain.chat_models.init_chat_model`` when its provider package and key are present.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

__all__ = [
    "MANAGE_TOOL",
    "NOTES_TOOL",
    "ChosenModel",
    "ScriptedDemoModel",
    "choose_model",
    "intent_of",
    "text_of",
]

MANAGE_TOOL = "COMPOSIO_MANAGE_CONNECTIONS"
NOTES_TOOL = "NOTES_CALL_TOOL"
"""The Notes MCP server's dispatcher: the demo's agent is built before anyone listed the
server's tools, so it calls them by name through this one tool."""

HELP = (
    "I'm the demo's scripted assistant (no LLM involved). Try one of these:\n"
    "• show my demo profile\n"
    "• list my items\n"
    "• create an item called Buy milk\n"
    "• list my github repos\n"
    "• list my notes  (Notes is a remote MCP server)\n"
    "• add a note called Call the Hatter\n"
    "The first time you use an app I'll ask for your permission with a Connect button."
)

SYSTEM_PROMPT = (
    "You are the assistant of toolauth's demo. You act on the user's apps through tools. "
    "When a tool answers that a connection is required, call COMPOSIO_MANAGE_CONNECTIONS "
    "with that toolkit: the chat shows the user a Connect button and the tool returns once "
    "they have connected, so just continue with the task. Do not paste connect links; the "
    "button is already shown. 'Demo' and 'GitHub (demo)' are simulated apps on this machine; "
    "'Notes (MCP demo)' is a remote MCP server on this machine: call NOTES_CALL_TOOL with no "
    "tool to list its tools, then with a tool name and its arguments."
)


@dataclass(frozen=True)
class Intent:
    tool: str
    toolkit: str
    args: dict[str, Any]


_CREATE = re.compile(
    r"\b(?:create|add|make|new)\b(?:\s+(?:a|an|one))?(?:\s+new)?\s+item\b"
    r"(?:\s+(?:called|named|titled))?\s*[:\-]?\s*(?P<name>.+)$",
    re.I | re.S,
)


_ADD_NOTE = re.compile(
    r"\b(?:create|add|make|new|write)\b(?:\s+(?:a|an|one))?(?:\s+new)?\s+note\b"
    r"(?:\s+(?:called|named|titled))?\s*[:\-]?\s*(?P<name>.+)$",
    re.I | re.S,
)

_QUOTES = "\"'\u201c\u201d\u2018\u2019"  # straight and curly quotes


def intent_of(text: str) -> Intent | None:
    """The tool a user's message asks for, or ``None`` when the script has no answer."""
    lowered = text.lower()
    noted = _ADD_NOTE.search(text.strip())
    if noted:
        title = noted.group("name").strip().rstrip(".!?").strip().strip(_QUOTES).strip()
        if title:
            args = {"tool": "add_note", "arguments": {"title": title[:200]}}
            return Intent(NOTES_TOOL, "notes", args)
    created = _CREATE.search(text.strip())
    if created:
        name = created.group("name").strip().rstrip(".!?").strip().strip(_QUOTES).strip()
        if name:
            return Intent("DEMO_CREATE_ITEM", "demo", {"name": name[:200]})
    if re.search(r"\bnotes?\b", lowered):
        return Intent(NOTES_TOOL, "notes", {"tool": "list_notes", "arguments": {}})
    if "github" in lowered or re.search(r"\brepo(s|sitories|sitory)?\b", lowered):
        if re.search(r"\brepo", lowered):
            return Intent("GITHUB_LIST_REPOSITORIES", "github", {})
        return Intent("GITHUB_GET_THE_AUTHENTICATED_USER", "github", {})
    if "profile" in lowered or "who am i" in lowered:
        return Intent("DEMO_GET_PROFILE", "demo", {})
    if re.search(r"\bitems?\b", lowered):
        return Intent("DEMO_LIST_ITEMS", "demo", {})
    return None


def text_of(message: BaseMessage) -> str:
    """The text of a message whose content is a string or a list of content blocks."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = [
        b if isinstance(b, str) else str(b.get("text", ""))
        for b in content
        if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text")
    ]
    return "".join(parts)


_NAMES = {"demo": "Demo", "github": "GitHub (demo)", "notes": "Notes (MCP demo)"}


def _call(name: str, args: Mapping[str, Any], text: str = "") -> AIMessage:
    call_id = f"call_{uuid.uuid4().hex[:12]}"
    return AIMessage(content=text, tool_calls=[{"name": name, "args": dict(args), "id": call_id}])


def _json(message: ToolMessage) -> Any:
    try:
        return json.loads(str(message.content))
    except ValueError:
        return None


def _bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"• {line}" for line in lines)


def _summary(intent: Intent, result: Any) -> str:
    """A plain-language answer built from the tool's result."""
    if not isinstance(result, dict):
        return f"{intent.tool} answered: {result}"
    if intent.tool == "DEMO_LIST_ITEMS":
        items = [str(i.get("name")) for i in result.get("items", [])]
        if not items:
            return "You have no items on Demo yet. Ask me to create one."
        return f"You have {len(items)} item(s) on Demo:\n{_bullets(items)}"
    if intent.tool == "DEMO_CREATE_ITEM":
        return f"Created the item “{result.get('name')}” on Demo (id {result.get('id')})."
    if intent.tool == "DEMO_GET_PROFILE":
        return (
            f"On Demo you are {result.get('name')} ({result.get('email')}), username "
            f"{result.get('preferred_username')}."
        )
    if intent.tool == "GITHUB_LIST_REPOSITORIES":
        repos = result.get("repositories", [])
        if not repos:
            return "You have no repositories on GitHub (demo)."
        lines = [
            f"{r.get('full_name')}{' (private)' if r.get('private') else ''} — "
            f"{r.get('description') or 'no description'}"
            for r in repos
        ]
        return f"Your repositories on GitHub (demo):\n{_bullets(lines)}"
    if intent.tool == NOTES_TOOL and intent.args.get("tool") == "list_notes":
        notes = [f"{n.get('title')}: {n.get('body') or '—'}" for n in result.get("notes", [])]
        if not notes:
            return "You have no notes in Notes (MCP demo) yet. Ask me to add one."
        return f"You have {len(notes)} note(s) in Notes (MCP demo):\n{_bullets(notes)}"
    if intent.tool == NOTES_TOOL and intent.args.get("tool") == "add_note":
        return f"Added the note “{result.get('title')}” to Notes (MCP demo)."
    if intent.tool == "GITHUB_GET_THE_AUTHENTICATED_USER":
        return f"On GitHub (demo) you are {result.get('login')} ({result.get('name')})."
    return json.dumps(result, ensure_ascii=False)[:1000]


def _after_connecting(intent: Intent, message: ToolMessage) -> AIMessage:
    """React to the meta tool's answer: call the tool again, or explain what went wrong."""
    result = _json(message)
    entries = result.get("results", []) if isinstance(result, dict) else []
    entry = next((e for e in entries if e.get("toolkit") == intent.toolkit), None)
    if message.status == "error" or entry is None:
        return AIMessage(content=f"I could not check the connection: {message.content}")
    if entry.get("status") == "active":
        return _call(intent.tool, intent.args)
    if entry.get("status") == "failed":
        reason = entry.get("error_message") or "unknown reason"
        return AIMessage(
            content=f"Connecting {_NAMES.get(intent.toolkit, intent.toolkit)} did not work "
            f"({reason}). Ask me again to "
            "get a new Connect button."
        )
    return AIMessage(
        content="You have not finished connecting yet. Use the Connect button above, or ask "
        "me again for a new one."
    )


def next_step(messages: Sequence[BaseMessage]) -> AIMessage:
    """The scripted model's answer to the conversation so far."""
    last_human = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    if last_human < 0:
        return AIMessage(content=HELP)
    intent = intent_of(text_of(messages[last_human]))
    if intent is None:
        return AIMessage(content=HELP)
    results = [m for m in messages[last_human + 1 :] if isinstance(m, ToolMessage)]
    if not results:
        return _call(intent.tool, intent.args)
    last = results[-1]
    if last.name == MANAGE_TOOL:
        return _after_connecting(intent, last)
    body = _json(last)
    if isinstance(body, dict) and body.get("error") == "connection_required":
        if any(m.name == MANAGE_TOOL for m in results):  # connected, yet still refused
            name = _NAMES.get(intent.toolkit, intent.toolkit)
            return AIMessage(content=f"{name} still needs a connection: {last.content}")
        return _call(MANAGE_TOOL, {"toolkits": [body.get("toolkit", intent.toolkit)]})
    if last.status == "error":
        return AIMessage(content=f"That did not work: {last.content}")
    return AIMessage(content=_summary(intent, body))


class ScriptedDemoModel(BaseChatModel):
    """A chat model without an LLM: it follows :func:`next_step`. ``bind_tools`` keeps the
    tool names so a missing tool is reported plainly instead of being called."""

    bound_tools: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "toolauth-demo-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedDemoModel:
        names = [getattr(t, "name", None) or str(t) for t in tools]
        return self.model_copy(update={"bound_tools": names})

    def _answer(self, messages: list[BaseMessage]) -> ChatResult:
        message = next_step(messages)
        missing = [c["name"] for c in message.tool_calls if c["name"] not in self.bound_tools]
        if self.bound_tools and missing:
            message = AIMessage(content=f"I have no tool named {missing[0]} in this session.")
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._answer(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._answer(messages)


@dataclass(frozen=True)
class ChosenModel:
    model: BaseChatModel
    label: str
    note: str | None = None  # one line to print when the configured model was not usable


def choose_model(
    environ: Mapping[str, str],
    *,
    init: Callable[[str], BaseChatModel] | None = None,
) -> ChosenModel:
    """``TOOLAUTH_DEMO_MODEL`` through ``init_chat_model`` when it can be built; else scripted."""
    spec = (environ.get("TOOLAUTH_DEMO_MODEL") or "").strip()
    if not spec:
        return ChosenModel(ScriptedDemoModel(), "scripted model (offline)")
    try:
        if init is None:
            from langchain.chat_models import init_chat_model

            init = init_chat_model
        model = init(spec)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        return ChosenModel(
            ScriptedDemoModel(),
            "scripted model (offline)",
            f"TOOLAUTH_DEMO_MODEL={spec} is not usable here ({type(exc).__name__}: {reason}); "
            "using the scripted model.",
        )
    return ChosenModel(model, spec)
