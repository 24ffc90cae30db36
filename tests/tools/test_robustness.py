"""Tools never crash the agent run: whatever a toolkit's API does — no answer, a slow one, a
body that is not JSON or not shaped as documented, a proxy's error page — and whatever a
custom tool's own code does, the agent gets a ToolMessage with status="error" whose text
names the toolkit and says whether retrying may help.

Every built-in tool is run through ``tool.ainvoke`` with a ToolCall, over real HTTP, against
its loopback fake switched to each odd answer (``FakeApi.answer_oddly``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
from langchain_core.messages import ToolMessage

from tests.tools.conftest import TOKEN, Connect, Connected
from tests.tools.fakes import (
    LINEAR_TEAM,
    NOTION_PARENT,
    ODD_ANSWERS,
    FakeApi,
    FakeDemo,
    FakeGitHub,
    FakeGmail,
    FakeLinear,
    FakeNotion,
    FakeSlack,
)
from toolauth._loop import InsideLoopError
from toolauth.tools import ToolSpec, builtin_tools, check_response, toolkit_tool

FAKES: dict[str, type[FakeApi]] = {
    "demo": FakeDemo,
    "github": FakeGitHub,
    "gmail": FakeGmail,
    "slack": FakeSlack,
    "notion": FakeNotion,
    "linear": FakeLinear,
}
NAMES = {
    "demo": "Demo",
    "github": "GitHub",
    "gmail": "Gmail",
    "slack": "Slack",
    "notion": "Notion",
    "linear": "Linear",
}
# Arguments each built-in tool accepts (and its fake answers normally).
ARGS: dict[str, dict[str, Any]] = {
    "DEMO_GET_PROFILE": {},
    "DEMO_LIST_ITEMS": {"limit": 5},
    "DEMO_CREATE_ITEM": {"name": "Paint the roses red"},
    "GITHUB_GET_THE_AUTHENTICATED_USER": {},
    "GITHUB_LIST_REPOSITORIES": {},
    "GITHUB_LIST_ISSUES": {"owner": "octo-org", "repo": "widgets"},
    "GITHUB_CREATE_AN_ISSUE": {"owner": "octo-org", "repo": "widgets", "title": "T"},
    "GMAIL_LIST_MESSAGES": {"max_results": 2},
    "GMAIL_GET_MESSAGE": {"message_id": "18f1a2b3c4d5e6f7"},
    "GMAIL_SEND_EMAIL": {"to": "bob@example.com", "subject": "Hi", "body": "Hello"},
    "SLACK_LIST_CHANNELS": {},
    "SLACK_SEND_MESSAGE": {"channel": "C012AB3CD", "text": "Hello"},
    "NOTION_SEARCH": {"query": "meeting"},
    "NOTION_CREATE_PAGE": {"parent_page_id": NOTION_PARENT, "title": "Notes"},
    "LINEAR_LIST_ISSUES": {},
    "LINEAR_CREATE_ISSUE": {"team_id": LINEAR_TEAM, "title": "T"},
}
TOOLS = builtin_tools(FAKES)
WRITES = {"DEMO_CREATE_ITEM", "GITHUB_CREATE_AN_ISSUE", "GMAIL_SEND_EMAIL", "SLACK_SEND_MESSAGE",
          "NOTION_CREATE_PAGE", "LINEAR_CREATE_ISSUE"}  # fmt: skip
SHORT_TIMEOUT = "0.3"

# What the model reads for each odd answer: (a phrase of the message, may retrying help).
EXPECTED: dict[str, tuple[str, bool]] = {
    "null": ("sent an unexpected answer (", True),
    "wrong_container": ("sent an unexpected answer (", True),
    "missing_fields": ("sent an unexpected answer (", True),
    "wrong_types": ("sent an unexpected answer (", True),
    "html_502": ("had an error (HTTP 502)", True),
    "not_json": ("sent an answer that is not JSON", True),
    "slow": ("did not answer in time (the request timed out within 0.3 s)", True),
    "refused": ("Could not connect to {toolkit} (connection refused)", True),
    "reset": ("The connection to {toolkit} broke before it answered (", True),
    "dns": ("Could not connect to {toolkit} (its host name did not resolve)", True),
}
# Where the toolkit's API is pointed for the failures that are not answers.
NO_ANSWER = ("refused", "reset", "dns")
UNRESOLVABLE = "http://api.toolauth-test.invalid"  # RFC 6761 §6.4: never resolves


def tool_call(name: str, args: dict[str, Any], call_id: str = "call-1") -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "args": args}


async def observe(connected: Connected, name: str, args: dict[str, Any], *extra: ToolSpec):
    """What the agent gets for one call of tool ``name``: the ToolMessage."""
    tool = connected.agent_tools(*extra)[name]
    message = await tool.ainvoke(tool_call(name, args))
    assert isinstance(message, ToolMessage)
    assert TOKEN not in message.content
    assert message.tool_call_id == "call-1"
    return message


def says_retry(text: str) -> bool:
    """Whether the message says retrying may help (and it always says one or the other)."""
    lowered = text.lower()
    no = "will not help" in lowered or "will probably not help" in lowered
    yes = "try again" in lowered or "trying again" in lowered
    assert yes != no, f"says neither or both whether to retry: {text!r}"
    return yes


def test_every_builtin_tool_is_covered() -> None:
    assert {s.name for s in TOOLS} == set(ARGS)


@pytest.mark.parametrize("spec", TOOLS, ids=lambda s: s.name)
async def test_the_arguments_work(connect: Connect, spec: ToolSpec) -> None:
    """The baseline: with a normal answer each call above succeeds."""
    connected = await connect(spec.toolkit, FAKES[spec.toolkit](TOKEN))
    message = await observe(connected, spec.name, ARGS[spec.name])
    assert message.status == "success", message.content


@pytest.fixture
def no_answer_urls(closed_port: str, resetting_url: str) -> dict[str, str]:
    return {"refused": closed_port, "reset": resetting_url, "dns": UNRESOLVABLE}


@pytest.mark.parametrize("odd", [*ODD_ANSWERS, *NO_ANSWER])
@pytest.mark.parametrize("spec", TOOLS, ids=lambda s: s.name)
async def test_odd_answer_is_an_observation(
    connect: Connect, no_answer_urls: dict[str, str], spec: ToolSpec, odd: str
) -> None:
    fake = FAKES[spec.toolkit](TOKEN)
    options: dict[str, Any] = {}
    if odd in NO_ANSWER:
        options["api_url"] = no_answer_urls[odd] + fake.prefix
    elif odd == "slow":
        options["env"] = {"TOOLAUTH_API_TIMEOUT": SHORT_TIMEOUT}
        fake.answer_oddly("slow")
    else:
        fake.answer_oddly(odd)  # type: ignore[arg-type]
    connected = await connect(spec.toolkit, fake, **options)

    message = await observe(connected, spec.name, ARGS[spec.name])

    assert message.status == "error"
    text = message.content
    assert NAMES[spec.toolkit] in text
    phrase, retry = EXPECTED[odd]
    assert phrase.format(toolkit=NAMES[spec.toolkit]) in text
    if odd in ("slow", "reset") and spec.name in WRITES:  # it may have gone through
        assert "unknown whether the POST request went through: check" in text
    assert says_retry(text) is retry
    assert "Traceback" not in text
    assert "127.0.0.1" not in text and ".invalid" not in text
    assert bool(fake.requests) is (odd not in NO_ANSWER)


# --- custom tools ---------------------------------------------------------------------------


@toolkit_tool("github")
async def buggy(client: httpx.AsyncClient) -> dict[str, Any]:
    """Get something from GitHub (a tool with a bug)."""
    user = (await client.get("/user")).json()
    return {"plan": user["plan"]["seats"]}  # KeyError: the fake's plan has no seats


@toolkit_tool("github")
async def leaky(client: httpx.AsyncClient) -> dict[str, Any]:
    """Get something from GitHub (a tool whose error text would show the request)."""
    response = await client.get("/user")
    raise RuntimeError(f"boom {response.request.headers}")


@toolkit_tool("github")
async def reads_json(client: httpx.AsyncClient) -> dict[str, Any]:
    """Get the user's GitHub login (a tool that trusts the body to be JSON)."""
    response = await client.get("/user")
    check_response(response, "GitHub")
    return {"login": response.json()["login"]}


async def test_a_bug_in_a_custom_tool_is_a_clear_observation(connect: Connect) -> None:
    github = await connect("github", FakeGitHub(TOKEN))
    message = await observe(github, "GITHUB_BUGGY", {}, buggy)
    assert message.status == "error"
    assert message.content == (
        "GITHUB_BUGGY failed unexpectedly (KeyError) while working with GitHub. The fault is in "
        "the tool or in an answer it did not expect, not in your arguments; retrying will "
        "probably not help. Tell the user that GITHUB_BUGGY is not working."
    )
    assert says_retry(message.content) is False


async def test_an_error_text_never_reaches_the_model(connect: Connect) -> None:
    github = await connect("github", FakeGitHub(TOKEN))
    message = await observe(github, "GITHUB_LEAKY", {}, leaky)
    assert message.status == "error"
    assert "(RuntimeError)" in message.content
    assert "authorization" not in message.content.lower()
    assert "boom" not in message.content


@pytest.mark.parametrize("odd", ["not_json", "slow", "refused"])
async def test_custom_tools_are_guarded_too(
    connect: Connect, no_answer_urls: dict[str, str], odd: str
) -> None:
    fake = FakeGitHub(TOKEN)
    options: dict[str, Any] = {}
    if odd == "refused":
        options["api_url"] = no_answer_urls[odd]
    else:
        fake.answer_oddly(odd)  # type: ignore[arg-type]
        options["env"] = {"TOOLAUTH_API_TIMEOUT": SHORT_TIMEOUT}
    github = await connect("github", fake, **options)
    message = await observe(github, "GITHUB_READS_JSON", {}, reads_json)
    assert message.status == "error"
    assert {
        "not_json": "GitHub sent an answer that is not JSON. Try again later",
        "slow": "GitHub did not answer in time (the request timed out within 0.3 s)",
        "refused": "Could not connect to GitHub (connection refused)",
    }[odd] in message.content
    assert says_retry(message.content)


async def test_a_spec_made_by_hand_is_guarded(connect: Connect) -> None:
    """The guard is in ToolSpec itself, not only in @toolkit_tool."""

    async def run(client: httpx.AsyncClient, args: Any) -> Any:
        return 1 / 0

    spec = ToolSpec("GITHUB_DIVIDE", "github", "Divide by zero on GitHub.", buggy.args_schema, run)
    github = await connect("github", FakeGitHub(TOKEN))
    message = await observe(github, "GITHUB_DIVIDE", {}, spec)
    assert message.status == "error"
    assert "GITHUB_DIVIDE failed unexpectedly (ZeroDivisionError)" in message.content


def test_a_spec_is_guarded_once_and_renamed_with_it() -> None:
    again = dataclasses.replace(buggy, description="Another description.")
    assert again.run is buggy.run
    renamed = dataclasses.replace(buggy, name="GITHUB_RENAMED")
    assert renamed.run is not buggy.run
    assert renamed.run.__wrapped__ is buggy.run.__wrapped__  # type: ignore[attr-defined]


async def test_a_renamed_spec_names_itself(connect: Connect) -> None:
    renamed = dataclasses.replace(buggy, name="GITHUB_RENAMED")
    github = await connect("github", FakeGitHub(TOKEN))
    message = await observe(github, "GITHUB_RENAMED", {}, renamed)
    assert message.content.startswith("GITHUB_RENAMED failed unexpectedly (KeyError)")


async def test_the_agent_run_goes_on_after_a_failing_tool(connect: Connect) -> None:
    from langchain.agents import create_agent

    from tests.agents.scripted_model import ScriptedChatModel, call, say, tool_results

    github = await connect("github", FakeGitHub(TOKEN))
    session = github.ta.create("user-1", toolkits=["github"])
    model = ScriptedChatModel(
        script=[
            call("GITHUB_BUGGY"),
            call("GITHUB_GET_THE_AUTHENTICATED_USER"),
            lambda m: say(f"You are {tool_results(m)[-1].artifact['login']}"),
        ]
    )
    agent = create_agent(model, session.tools(extra=[buggy]))
    result = await agent.ainvoke({"messages": [("user", "who am I?")]})
    statuses = [(m.name, m.status) for m in tool_results(result["messages"])]
    assert statuses == [
        ("GITHUB_BUGGY", "error"),
        ("GITHUB_GET_THE_AUTHENTICATED_USER", "success"),
    ]
    assert result["messages"][-1].content == "You are octocat"


# --- sync invoke inside a running loop -------------------------------------------------------


async def test_sync_invoke_inside_a_running_loop_raises(connect: Connect) -> None:
    """Not an observation (handle_tool_error would turn a ToolException into the tool's
    output): the caller's mistake surfaces as an exception, and nothing is sent."""
    github = await connect("github", FakeGitHub(TOKEN))
    tool = github.agent_tools()["GITHUB_GET_THE_AUTHENTICATED_USER"]
    assert tool.handle_tool_error is True
    for given in ({}, tool_call(tool.name, {})):
        with pytest.raises(InsideLoopError, match=r"ainvoke") as info:
            tool.invoke(given)
        assert isinstance(info.value, RuntimeError)
        assert "GITHUB_GET_THE_AUTHENTICATED_USER.invoke()" in str(info.value)
    assert github.fake.requests == []
