"""GitHub tools against a loopback fake of the REST API."""

from __future__ import annotations

import time

import pytest

from tests.tools.conftest import TOKEN
from tests.tools.fakes import FakeGitHub
from toolauth.tools import ToolApiError


@pytest.fixture
async def github(connect):
    return await connect("github", FakeGitHub(TOKEN))


async def test_get_the_authenticated_user(github):
    user = await github.call("GITHUB_GET_THE_AUTHENTICATED_USER")
    assert user == {
        "login": "octocat",
        "name": "The Octocat",
        "email": "octocat@github.com",
        "url": "https://github.com/octocat",
        "company": "@github",
        "public_repos": 8,
    }
    seen = github.fake.last
    assert (seen.method, seen.path) == ("GET", "/user")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    # the catalog's default headers reach GitHub
    assert seen.headers["accept"] == "application/vnd.github+json"
    assert seen.headers["x-github-api-version"] == "2022-11-28"


async def test_list_repositories(github):
    result = await github.call("GITHUB_LIST_REPOSITORIES", sort="pushed", per_page=2)
    assert github.fake.last.path == "/user/repos"
    assert github.fake.last.params == {"sort": "pushed", "per_page": "2", "page": "1"}
    assert [r["full_name"] for r in result["repositories"]] == [
        "octocat/hello-world",
        "octo-org/widgets",
    ]
    widgets = result["repositories"][1]
    assert widgets == {
        "full_name": "octo-org/widgets",
        "description": "The widgets project",
        "private": True,
        "url": "https://github.com/octo-org/widgets",
        "default_branch": "main",
        "language": "Python",
        "updated_at": "2024-05-01T09:00:00Z",
    }


async def test_list_issues_skips_pull_requests_and_trims(github):
    result = await github.call("GITHUB_LIST_ISSUES", owner="octo-org", repo="widgets", per_page=5)
    seen = github.fake.last
    assert seen.path == "/repos/octo-org/widgets/issues"
    assert seen.params == {"state": "open", "per_page": "5", "page": "1"}
    assert result["repository"] == "octo-org/widgets"
    assert [i["number"] for i in result["issues"]] == [12]  # #13 is a pull request
    issue = result["issues"][0]
    assert issue["url"] == "https://github.com/octo-org/widgets/issues/12"
    assert issue["labels"] == ["bug"]
    assert issue["assignees"] == ["octocat"]
    assert issue["author"] == "monalisa"
    assert len(issue["body"]) <= 300
    assert "node_id" not in issue
    assert "reactions" not in issue


async def test_list_issues_state_filter(github):
    result = await github.call("GITHUB_LIST_ISSUES", owner="octo-org", repo="widgets", state="all")
    assert github.fake.last.params["state"] == "all"
    assert [(i["number"], i["state"]) for i in result["issues"]] == [(12, "open"), (7, "closed")]


async def test_create_an_issue(github):
    result = await github.call(
        "GITHUB_CREATE_AN_ISSUE",
        owner="octo-org",
        repo="widgets",
        title="Button is blue",
        body="It should be **green**.",
        labels=["bug", "ui"],
    )
    seen = github.fake.last
    assert (seen.method, seen.path) == ("POST", "/repos/octo-org/widgets/issues")
    assert seen.body == {
        "title": "Button is blue",
        "body": "It should be **green**.",
        "labels": ["bug", "ui"],
    }
    assert result == {
        "number": 42,
        "title": "Button is blue",
        "state": "open",
        "url": "https://github.com/octo-org/widgets/issues/42",
        "labels": ["bug", "ui"],
        "created": True,
    }


async def test_create_an_issue_sends_only_given_fields(github):
    await github.call("GITHUB_CREATE_AN_ISSUE", owner="octo-org", repo="widgets", title="T")
    assert github.fake.last.body == {"title": "T"}


async def test_not_found_explains_private_repos(github):
    with pytest.raises(ToolApiError) as info:
        await github.call("GITHUB_LIST_ISSUES", owner="octo-org", repo="missing")
    assert info.value.status_code == 404
    assert "Not Found" in str(info.value)
    assert "private repositories" in str(info.value)


async def test_forbidden_is_a_permission_message(github):
    github.fake.fail_next(
        403,
        {
            "message": "Resource not accessible by personal access token",
            "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue",
            "status": "403",
        },
    )
    with pytest.raises(ToolApiError) as info:
        await github.call("GITHUB_CREATE_AN_ISSUE", owner="octo-org", repo="widgets", title="T")
    assert info.value.status_code == 403
    assert "denied permission" in str(info.value)
    assert "Resource not accessible" in str(info.value)


async def test_primary_rate_limit_403_says_when_to_retry(github):
    github.fake.fail_next(
        403,
        {"message": "API rate limit exceeded for user ID 1.", "status": "403"},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 120)},
    )
    with pytest.raises(ToolApiError) as info:
        await github.call("GITHUB_LIST_REPOSITORIES")
    message = str(info.value)
    assert "rate limit" in message
    assert "denied permission" not in message
    seconds = int(message.split("after ")[1].split(" s")[0])
    assert 100 <= seconds <= 120


async def test_429_with_retry_after(github):
    github.fake.fail_next(
        429,
        {"message": "You have exceeded a secondary rate limit.", "status": "429"},
        headers={"retry-after": "60"},
    )
    with pytest.raises(ToolApiError) as info:
        await github.call("GITHUB_GET_THE_AUTHENTICATED_USER")
    assert info.value.status_code == 429
    assert "rate limit" in str(info.value)
    assert "after 60 s" in str(info.value)


async def test_wrong_token_asks_to_reconnect(connect):
    github = await connect("github", FakeGitHub("someone-elses-token"))
    with pytest.raises(ToolApiError) as info:
        await github.call("GITHUB_GET_THE_AUTHENTICATED_USER")
    assert info.value.status_code == 401
    assert "reconnect" in str(info.value)


@pytest.mark.parametrize("owner", ["..", "a/b", "octo org", ""])
async def test_owner_must_be_a_plain_name(github, owner):
    from pydantic import ValidationError

    import toolauth

    spec = github.tools["GITHUB_LIST_ISSUES"]
    with pytest.raises((ValidationError, toolauth.ValidationError)):
        await spec.run(github.client, spec.args_schema(owner=owner, repo="widgets"))
    assert github.fake.requests == []
