"""``toolauth.tools.path``: a model-chosen argument fills exactly one path segment, so it can
never change which endpoint a tool calls. Checked by the rules, then over real HTTP against a
loopback fake that records the raw path it received."""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from pydantic import ValidationError as SchemaError

import toolauth
from tests.tools.conftest import TOKEN, Connect
from tests.tools.fakes import FakeGitHub, FakeGmail
from toolauth.tools import check_response, path, toolkit_tool

HOSTILE = [
    "../../admin",
    "a/b",
    "x?y=1",
    "%2e%2e",
    "%2F",
    "foo#bar",
    "a\\b",
    "https://evil.example/x",
    "//evil.example/x",
    "café ☕",
    " spaced ",
    "..;/admin",
    ".hidden",
    "...",
]


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("octocat", "octocat"),
        ("hello-world_1.0~x", "hello-world_1.0~x"),
        ("a/b", "a%2Fb"),
        ("x?y=1", "x%3Fy%3D1"),
        ("foo#bar", "foo%23bar"),
        ("100%", "100%25"),
        ("%2e%2e", "%252e%252e"),
        ("a\\b", "a%5Cb"),
        ("café", "caf%C3%A9"),
        ("https://evil.example/x", "https%3A%2F%2Fevil.example%2Fx"),
        (42, "42"),
    ],
)
def test_each_value_is_one_encoded_segment(value: str | int, encoded: str) -> None:
    assert path("/user/starred/{owner}/x", owner=value) == f"/user/starred/{encoded}/x"


@pytest.mark.parametrize("value", HOSTILE)
def test_the_result_is_a_relative_path_with_the_templates_segments(value: str) -> None:
    built = path("/repos/{owner}/{repo}/issues", owner=value, repo="widgets")
    url = httpx.URL(built)
    assert url.is_relative_url and not url.host
    assert not url.query and not url.fragment
    segments = built.split("/")
    assert segments[:2] == ["", "repos"] and segments[3:] == ["widgets", "issues"]
    assert unquote(segments[2]) == value
    # and on a client's base URL it stays under the API
    merged = httpx.AsyncClient(base_url="https://api.example/v1")._merge_url(built)
    assert merged.host == "api.example"
    assert merged.raw_path.decode().startswith("/v1/repos/")


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_empty_dot_and_dot_dot_are_refused_naming_the_argument(value: str) -> None:
    with pytest.raises(toolauth.ValidationError) as info:
        path("/repos/{owner}/{repo}", owner="octo-org", repo=value)
    assert info.value.field == "repo"
    assert "The argument repo is" in info.value.message
    assert "Fix the arguments" in info.value.message


@pytest.mark.parametrize(
    ("template", "values"),
    [
        ("/repos/{owner}/{repo}", {"owner": "a"}),  # a placeholder without a value
        ("/repos/{owner}", {"owner": "a", "repo": "b"}),  # a value without a placeholder
        ("/repos/{owner}/{owner}", {}),
        ("/repos/{}", {}),  # positional
        ("/repos/{0}", {}),
    ],
)
def test_placeholders_must_match_the_values(template: str, values: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="placeholders|does not match"):
        path(template, **values)


@pytest.mark.parametrize(
    "template",
    [
        "/repos/{owner!r}",
        "/repos/{owner:>10}",
        "https://evil.example/{owner}",
        "//evil.example/{owner}",
        "/search?q={owner}",
        "/a#{owner}",
        "/a/../{owner}",
        "/a\\{owner}",
    ],
)
def test_the_template_must_be_a_plain_path(template: str) -> None:
    with pytest.raises(ValueError):
        path(template, owner="octocat")


def test_a_value_must_be_text_or_a_number() -> None:
    with pytest.raises(TypeError):
        path("/issues/{number}", number=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        path("/issues/{number}", number=None)  # type: ignore[arg-type]


def test_braces_can_be_escaped() -> None:
    assert path("/a/{{literal}}/{x}", x="y") == "/a/{literal}/y"


# --- over HTTP --------------------------------------------------------------------------------


@toolkit_tool("github")
async def star_repo(client: httpx.AsyncClient, owner: str, repo: str) -> dict[str, str]:
    """Star a GitHub repository for the user."""
    response = await client.put(path("/user/starred/{owner}/{repo}", owner=owner, repo=repo))
    check_response(response, "GitHub")
    return {"starred": f"{owner}/{repo}"}


@pytest.mark.parametrize("value", HOSTILE)
async def test_a_hostile_argument_cannot_change_the_endpoint(connect: Connect, value: str) -> None:
    github = await connect("github", FakeGitHub(TOKEN))
    tool = github.agent_tools(star_repo)["GITHUB_STAR_REPO"]
    call = {"type": "tool_call", "id": "c1", "name": tool.name}
    await tool.ainvoke({**call, "args": {"owner": value, "repo": "widgets"}})
    await tool.ainvoke({**call, "args": {"owner": "octo-org", "repo": value}})

    [first, second] = github.fake.raw_paths  # one request each, to the loopback fake only
    for raw, position in ((first, 3), (second, 4)):
        segments = raw.split("/")
        assert segments[:3] == ["", "user", "starred"] and len(segments) == 5
        assert unquote(segments[position]) == value
    assert unquote(first.split("/")[4]) == "widgets"


@pytest.mark.parametrize("value", ["", ".", ".."])
async def test_dot_segments_are_refused_before_any_request(connect: Connect, value: str) -> None:
    github = await connect("github", FakeGitHub(TOKEN))
    tool = github.agent_tools(star_repo)["GITHUB_STAR_REPO"]
    message = await tool.ainvoke(
        {"type": "tool_call", "id": "c1", "name": tool.name,
         "args": {"owner": value, "repo": "widgets"}}
    )  # fmt: skip
    assert message.status == "error"
    assert "The argument owner is" in message.content
    assert github.fake.raw_paths == []


@pytest.mark.parametrize("value", [*HOSTILE, "", ".", ".."])
async def test_builtin_tools_keep_their_endpoint(connect: Connect, value: str) -> None:
    """GitHub's owner/repo and Gmail's message id: refused by the schema or by ``path``,
    or sent as one segment of the same endpoint."""
    github = await connect("github", FakeGitHub(TOKEN))
    spec = github.tools["GITHUB_LIST_ISSUES"]
    with contextlib.suppress(SchemaError, toolauth.ToolAuthError):  # refused, or sent
        await spec.run(github.client, spec.args_schema(owner=value, repo="widgets"))
    assert len(github.fake.raw_paths) <= 1
    for raw in github.fake.raw_paths:
        segments = raw.split("/")
        assert segments[:2] == ["", "repos"] and segments[3:] == ["widgets", "issues"]
        assert unquote(segments[2]) == value


@pytest.mark.parametrize("value", [*HOSTILE, "", ".", ".."])
async def test_gmail_message_ids_keep_their_endpoint(connect: Connect, value: str) -> None:
    gmail = await connect("gmail", FakeGmail(TOKEN))
    spec = gmail.tools["GMAIL_GET_MESSAGE"]
    with contextlib.suppress(SchemaError, toolauth.ToolAuthError):  # refused, or sent
        await spec.run(gmail.client, spec.args_schema(message_id=value))
    assert len(gmail.fake.raw_paths) <= 1
    for raw in gmail.fake.raw_paths:
        assert raw.startswith("/gmail/v1/users/me/messages/")
        assert unquote(raw.removeprefix("/gmail/v1/users/me/messages/")) == value
