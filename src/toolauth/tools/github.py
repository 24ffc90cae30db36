"""Tools for GitHub's REST API: the user, their repositories, and issues."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import httpx
from pydantic import Field

from ._http import check, clip, json_of, objects, optional, required
from ._paths import path
from ._spec import toolkit_tool

_NOT_FOUND = {
    404: "GitHub also answers 404 for private repositories the connected account cannot see."
}
_NAME = r"^[A-Za-z0-9_.-]+$"

Owner = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=_NAME,
        description="The repository owner: a user or organization login, e.g. 'octocat'.",
    ),
]
Repo = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=_NAME,
        description="The repository name without the owner, e.g. 'hello-world'.",
    ),
]


def _names(items: Any, key: str) -> list[Any]:
    """``item[key]`` of each object in ``items`` (labels' names, assignees' logins)."""
    return [optional(i).get(key) for i in items] if isinstance(items, list) else []


def _issue(issue: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": issue.get("number"),
        "title": issue.get("title"),
        "state": issue.get("state"),
        "url": issue.get("html_url"),
        "author": optional(issue.get("user")).get("login"),
        "labels": _names(issue.get("labels"), "name"),
        "assignees": _names(issue.get("assignees"), "login"),
        "comments": issue.get("comments"),
        "created_at": issue.get("created_at"),
        "updated_at": issue.get("updated_at"),
        "body": clip(issue.get("body"), 300),
    }


@toolkit_tool(
    "github", name="GITHUB_GET_THE_AUTHENTICATED_USER", builtin=True, scopes=["read:user"]
)
async def get_the_authenticated_user(client: httpx.AsyncClient) -> dict[str, Any]:
    """Get the connected GitHub user's profile (login, name, email, profile URL). Call it when
    the user asks who they are on GitHub, or to learn their login before other GitHub calls."""
    response = await client.get("/user")
    check(response, "GitHub")
    user = required(json_of(response, "GitHub"), "GitHub", "the user", {"login": str})
    return {
        "login": user.get("login"),
        "name": user.get("name"),
        "email": user.get("email"),
        "url": user.get("html_url"),
        "company": user.get("company"),
        "public_repos": user.get("public_repos"),
    }


@toolkit_tool("github", name="GITHUB_LIST_REPOSITORIES", builtin=True, scopes=["repo"])
async def list_repositories(
    client: httpx.AsyncClient,
    sort: Annotated[
        Literal["updated", "pushed", "created", "full_name"],
        Field(description="Order: most recently updated, pushed or created first, or by name."),
    ] = "updated",
    per_page: Annotated[
        int, Field(ge=1, le=100, description="How many repositories to return (max 100).")
    ] = 30,
    page: Annotated[int, Field(ge=1, description="Page number, from 1, for more results.")] = 1,
) -> dict[str, Any]:
    """List the GitHub repositories the user can access (their own, collaborations and
    organizations), with full name, description, visibility and URL. Use it to find a
    repository's owner and name."""
    params = {"sort": sort, "per_page": per_page, "page": page}
    response = await client.get("/user/repos", params=params)
    check(response, "GitHub")
    repos = objects(json_of(response, "GitHub"), "GitHub", "the repositories", {"full_name": str})
    return {
        "repositories": [
            {
                "full_name": r.get("full_name"),
                "description": clip(r.get("description"), 200),
                "private": r.get("private"),
                "url": r.get("html_url"),
                "default_branch": r.get("default_branch"),
                "language": r.get("language"),
                "updated_at": r.get("updated_at"),
            }
            for r in repos
        ],
        "page": page,
    }


@toolkit_tool("github", name="GITHUB_LIST_ISSUES", builtin=True, scopes=["repo"])
async def list_issues(
    client: httpx.AsyncClient,
    owner: Owner,
    repo: Repo,
    state: Annotated[
        Literal["open", "closed", "all"], Field(description="Which issues: open, closed or all.")
    ] = "open",
    per_page: Annotated[
        int, Field(ge=1, le=100, description="How many items to fetch per page (max 100).")
    ] = 30,
    page: Annotated[int, Field(ge=1, description="Page number, from 1, for more results.")] = 1,
) -> dict[str, Any]:
    """List issues in a GitHub repository, most recently created first: number, title, state,
    labels, assignees, URL and the start of the body. Pull requests are left out, so a page may
    hold fewer than per_page issues."""
    params = {"state": state, "per_page": per_page, "page": page}
    response = await client.get(
        path("/repos/{owner}/{repo}/issues", owner=owner, repo=repo), params=params
    )
    check(response, "GitHub", hints=_NOT_FOUND)
    items = objects(json_of(response, "GitHub"), "GitHub", "the issues", {"number": int})
    return {
        "repository": f"{owner}/{repo}",
        "issues": [_issue(i) for i in items if "pull_request" not in i],
        "page": page,
        "more": len(items) == per_page,
    }


@toolkit_tool("github", name="GITHUB_CREATE_AN_ISSUE", builtin=True, scopes=["repo"])
async def create_an_issue(
    client: httpx.AsyncClient,
    owner: Owner,
    repo: Repo,
    title: Annotated[str, Field(min_length=1, max_length=256, description="The issue's title.")],
    body: Annotated[
        str | None, Field(max_length=65536, description="The issue's text, in Markdown.")
    ] = None,
    labels: Annotated[
        list[str] | None,
        Field(
            max_length=20,
            description="Label names to add, e.g. ['bug'] (applied only with push access).",
        ),
    ] = None,
) -> dict[str, Any]:
    """Create an issue in a GitHub repository as the user and return its number and URL. Only
    call it when the user asked for the issue to be created."""
    payload: dict[str, Any] = {"title": title}
    if body:
        payload["body"] = body
    if labels:
        payload["labels"] = labels
    response = await client.post(
        path("/repos/{owner}/{repo}/issues", owner=owner, repo=repo), json=payload
    )
    check(response, "GitHub", hints=_NOT_FOUND)
    issue = required(
        json_of(response, "GitHub"), "GitHub", "the new issue", {"number": int, "html_url": str}
    )
    return {
        "number": issue.get("number"),
        "title": issue.get("title"),
        "state": issue.get("state"),
        "url": issue.get("html_url"),
        "labels": _names(issue.get("labels"), "name"),
        "created": True,
    }
