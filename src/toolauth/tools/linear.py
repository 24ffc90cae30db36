"""Tools for Linear's GraphQL API: list and create issues.

GraphQL answers errors in an ``errors`` array, often with HTTP 200 (and 400 for invalid queries
and rate limits); ``_graphql`` turns them into messages the model can act on.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from pydantic import Field

from ._http import check, clip, json_of, objects, optional, required
from ._spec import ToolApiError, toolkit_tool

_LIST_ISSUES = """
query ListIssues($first: Int!, $after: String, $filter: IssueFilter) {
  issues(first: $first, after: $after, filter: $filter, orderBy: updatedAt) {
    nodes {
      id identifier title url priorityLabel updatedAt
      state { name type }
      assignee { name }
      team { id key name }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

_CREATE_ISSUE = """
mutation CreateIssue($input: IssueCreateInput!) {
  issueCreate(input: $input) {
    success
    issue { id identifier title url state { name } team { key } }
  }
}
"""

_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _error_message(errors: Any) -> tuple[str, str, bool]:
    """(code, text, whether it is about something not found) of the first GraphQL error."""
    first = optional(errors[0]) if isinstance(errors, list) and errors else {}
    extensions = optional(first.get("extensions"))
    code = str(extensions.get("code") or "")
    raw = str(first.get("message") or "")
    text = str(extensions.get("userPresentableMessage") or raw or "unknown error")[:300]
    both = f"{raw} {text}".lower()
    return code, text, "not found" in both or "could not find" in both


async def _graphql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """``data`` of a GraphQL call, or ``ToolApiError`` for HTTP errors and ``errors``."""
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        check(response, "Linear")
        body = required(json_of(response, "Linear"), "Linear", "the answer", {"data": dict})
        data: dict[str, Any] = body["data"]
        return data
    code, text, not_found = _error_message(errors)
    status = response.status_code
    if code == "RATELIMITED" or status == 429:
        wait = response.headers.get("retry-after")
        when = f" after {wait} s" if wait else " in a minute"
        message = f"Linear rate limit reached ({text}). Wait and try again{when}."
    elif code == "AUTHENTICATION_ERROR" or status == 401:
        message = (
            f"Linear rejected the user's credentials ({text}). Tell the user that Linear needs "
            "to be reconnected (the connection manager tool can do it when it offers "
            "reinitiate_all)."
        )
    elif code == "FORBIDDEN" or status == 403:
        message = (
            f"Linear denied permission for this action ({text}). Tell the user what is missing."
        )
    elif not_found:
        message = (
            f"Linear found nothing with that id ({text}). Check the ids (team ids come from "
            "LINEAR_LIST_ISSUES results) and try again."
        )
    else:
        message = f"Linear did not accept the request ({text}). Fix the arguments and try again."
    raise ToolApiError(message, status_code=status)


@toolkit_tool("linear", name="LINEAR_LIST_ISSUES", builtin=True, scopes=["read"])
async def list_issues(
    client: httpx.AsyncClient,
    limit: Annotated[
        int, Field(ge=1, le=50, description="How many issues to return (max 50).")
    ] = 20,
    team_id: Annotated[
        str | None,
        Field(pattern=_UUID, description="Only issues of this team (its id, a UUID)."),
    ] = None,
    state: Annotated[
        str | None,
        Field(
            max_length=100,
            description="Only issues in this workflow state, by name, e.g. 'In Progress'.",
        ),
    ] = None,
    assigned_to_me: Annotated[
        bool, Field(description="Only issues assigned to the connected user.")
    ] = False,
    after: Annotated[
        str | None,
        Field(max_length=200, description="next_cursor from a previous call, for more."),
    ] = None,
) -> dict[str, Any]:
    """List Linear issues, most recently updated first: identifier (like ENG-123), title,
    state, assignee, team and URL. Filter by team, state name or issues assigned to the user."""
    issue_filter: dict[str, Any] = {}
    if team_id:
        issue_filter["team"] = {"id": {"eq": team_id}}
    if state:
        issue_filter["state"] = {"name": {"eqIgnoreCase": state}}
    if assigned_to_me:
        issue_filter["assignee"] = {"isMe": {"eq": True}}
    variables: dict[str, Any] = {"first": limit, "after": after, "filter": issue_filter or None}
    data = await _graphql(client, _LIST_ISSUES, variables)
    issues = required(data.get("issues"), "Linear", "data.issues", {"nodes": list})
    nodes = objects(issues["nodes"], "Linear", "the issues", {"id": str, "identifier": str})
    page = optional(issues.get("pageInfo"))
    return {
        "issues": [
            {
                "id": n.get("id"),
                "identifier": n.get("identifier"),
                "title": clip(n.get("title"), 300),
                "state": optional(n.get("state")).get("name"),
                "priority": n.get("priorityLabel"),
                "assignee": optional(n.get("assignee")).get("name"),
                "team": {
                    "id": optional(n.get("team")).get("id"),
                    "key": optional(n.get("team")).get("key"),
                },
                "url": n.get("url"),
                "updated_at": n.get("updatedAt"),
            }
            for n in nodes
        ],
        "next_cursor": page.get("endCursor") if page.get("hasNextPage") else None,
    }


@toolkit_tool("linear", name="LINEAR_CREATE_ISSUE", builtin=True, scopes=["read", "write"])
async def create_issue(
    client: httpx.AsyncClient,
    team_id: Annotated[
        str,
        Field(
            pattern=_UUID,
            description="The team's id (a UUID), e.g. team.id from LINEAR_LIST_ISSUES results.",
        ),
    ],
    title: Annotated[str, Field(min_length=1, max_length=255, description="The issue's title.")],
    description: Annotated[
        str | None, Field(max_length=100_000, description="The issue's text, in Markdown.")
    ] = None,
) -> dict[str, Any]:
    """Create a Linear issue in a team as the user and return its identifier (like ENG-123)
    and URL. Only call it when the user asked for the issue."""
    issue_input: dict[str, Any] = {"teamId": team_id, "title": title}
    if description:
        issue_input["description"] = description
    data = await _graphql(client, _CREATE_ISSUE, {"input": issue_input})
    created = required(data.get("issueCreate"), "Linear", "data.issueCreate")
    if created.get("success") is not True or created.get("issue") is None:
        raise ToolApiError("Linear did not create the issue. Check the team id and try again.")
    issue = required(created["issue"], "Linear", "the new issue", {"identifier": str})
    return {
        "id": issue.get("id"),
        "identifier": issue.get("identifier"),
        "title": issue.get("title"),
        "state": optional(issue.get("state")).get("name"),
        "url": issue.get("url"),
        "created": True,
    }
