"""Linear tools against a loopback fake of its GraphQL API."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.tools.conftest import TOKEN
from tests.tools.fakes import LINEAR_TEAM, FakeLinear, linear_error
from toolauth.tools import ToolApiError


@pytest.fixture
async def linear(connect):
    return await connect("linear", FakeLinear(TOKEN))


async def test_list_issues(linear):
    result = await linear.call("LINEAR_LIST_ISSUES", limit=1)
    seen = linear.fake.last
    assert (seen.method, seen.path) == ("POST", "/graphql")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert "issues(" in seen.body["query"]
    assert seen.body["variables"] == {"first": 1, "after": None, "filter": None}
    assert result == {
        "issues": [
            {
                "id": "9cfb482a-81e3-4154-b5b9-2c805e700123",
                "identifier": "ENG-123",
                "title": "Login fails on Safari",
                "state": "In Progress",
                "priority": "High",
                "assignee": "Ada Lovelace",
                "team": {"id": LINEAR_TEAM, "key": "ENG"},
                "url": "https://linear.app/acme/issue/ENG-123/login-fails-on-safari",
                "updated_at": "2024-05-01T09:00:00.000Z",
            }
        ],
        "next_cursor": "a1b2c3",
    }


async def test_list_issues_filters(linear):
    result = await linear.call(
        "LINEAR_LIST_ISSUES",
        team_id=LINEAR_TEAM,
        state="todo",
        assigned_to_me=True,
        after="a1b2c3",
    )
    variables = linear.fake.last.body["variables"]
    assert variables["after"] == "a1b2c3"
    assert variables["filter"] == {
        "team": {"id": {"eq": LINEAR_TEAM}},
        "state": {"name": {"eqIgnoreCase": "todo"}},
        "assignee": {"isMe": {"eq": True}},
    }
    assert result == {"issues": [], "next_cursor": None}


async def test_create_issue(linear):
    result = await linear.call(
        "LINEAR_CREATE_ISSUE", team_id=LINEAR_TEAM, title="Crash on save", description="Steps…"
    )
    body = linear.fake.last.body
    assert "issueCreate" in body["query"]
    assert body["variables"] == {
        "input": {"teamId": LINEAR_TEAM, "title": "Crash on save", "description": "Steps…"}
    }
    assert result == {
        "id": "9cfb482a-81e3-4154-b5b9-2c805e700125",
        "identifier": "ENG-125",
        "title": "Crash on save",
        "state": "Todo",
        "url": "https://linear.app/acme/issue/ENG-125/crash-on-save",
        "created": True,
    }


async def test_graphql_error_with_http_200(linear):
    with pytest.raises(ToolApiError) as info:
        await linear.call(
            "LINEAR_CREATE_ISSUE", team_id="11111111-2222-3333-4444-555555555555", title="T"
        )
    assert info.value.status_code == 200
    message = str(info.value)
    assert "Could not find referenced Team." in message
    assert "Check the ids" in message


async def test_validation_error_is_fix_the_arguments(linear):
    linear.fake.fail_next(
        400,
        linear_error(
            'Variable "$input" got invalid value; Field "title" of required type "String!" '
            "was not provided.",
            "GRAPHQL_VALIDATION_FAILED",
        ),
    )
    with pytest.raises(ToolApiError) as info:
        await linear.call("LINEAR_CREATE_ISSUE", team_id=LINEAR_TEAM, title="T")
    assert "Fix the arguments" in str(info.value)


async def test_ratelimited_error(linear):
    linear.fake.fail_next(
        400,
        linear_error("Rate limit exceeded", "RATELIMITED"),
        headers={"X-RateLimit-Requests-Remaining": "0"},
    )
    with pytest.raises(ToolApiError) as info:
        await linear.call("LINEAR_LIST_ISSUES")
    assert "rate limit" in str(info.value)
    assert "Wait" in str(info.value)


async def test_forbidden_error(linear):
    linear.fake.fail_next(
        200, linear_error("Forbidden", "FORBIDDEN", "You don't have access to this team.")
    )
    with pytest.raises(ToolApiError) as info:
        await linear.call("LINEAR_LIST_ISSUES", team_id=LINEAR_TEAM)
    assert "denied permission" in str(info.value)
    assert "You don't have access to this team." in str(info.value)


async def test_http_error_without_graphql_body(linear):
    linear.fake.fail_next(503, "upstream unavailable")
    with pytest.raises(ToolApiError) as info:
        await linear.call("LINEAR_LIST_ISSUES")
    assert info.value.status_code == 503
    assert "Try again later" in str(info.value)


async def test_wrong_token_asks_to_reconnect(connect):
    linear = await connect("linear", FakeLinear("other"))
    with pytest.raises(ToolApiError) as info:
        await linear.call("LINEAR_LIST_ISSUES")
    assert "Linear needs to be reconnected" in str(info.value)


async def test_personal_api_key_goes_without_bearer(connect):
    key = "lin_api_" + "K" * 40
    linear = await connect(
        "linear",
        FakeLinear(key, authorization=key),
        auth_scheme="API_KEY",
        credentials={"api_key": key},
        secret=key,
    )
    result = await linear.call("LINEAR_LIST_ISSUES")
    assert linear.fake.last.headers["authorization"] == key
    assert len(result["issues"]) == 2


def test_team_id_must_be_a_uuid():
    from toolauth.tools import builtin_tools

    (spec,) = [s for s in builtin_tools(["linear"]) if s.name == "LINEAR_CREATE_ISSUE"]
    with pytest.raises(ValidationError):
        spec.args_schema(team_id="ENG", title="T")
