"""Tools for the Notion API: search pages and databases, create pages."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import httpx
from pydantic import Field

from ._http import check, json_of, objects, optional, required
from ._spec import toolkit_tool

_HINTS = {
    404: "Notion also answers 404 for pages the user has not shared with this integration: "
    "ask the user to add it under the page's ... menu > Connections, or call NOTION_SEARCH "
    "to find a page that is shared."
}
_TEXT_LIMIT = 2000  # Notion's limit for one rich text object's content
_MAX_BLOCKS = 100  # Notion's limit for children in one request


def _plain(rich_text: Any) -> str:
    parts = rich_text if isinstance(rich_text, list) else []
    return "".join(str(optional(t).get("plain_text") or "") for t in parts)


def _title(obj: dict[str, Any]) -> str:
    """A page's title (its property of type "title") or a database's title."""
    if obj.get("object") == "database":
        return _plain(obj.get("title"))
    for prop in optional(obj.get("properties")).values():
        if isinstance(prop, dict) and prop.get("type") == "title":
            return _plain(prop.get("title"))
    return ""


def _chunks(text: str) -> list[str]:
    return [text[i : i + _TEXT_LIMIT] for i in range(0, len(text), _TEXT_LIMIT)]


def _paragraphs(content: str) -> list[dict[str, Any]]:
    """Paragraph blocks: one per blank-line-separated paragraph."""
    return [
        {
            "object": "block",
            "type": "paragraph",
            "paragraph": {
                "rich_text": [{"type": "text", "text": {"content": c}} for c in _chunks(p)]
            },
        }
        for p in (part.strip() for part in re.split(r"\n\s*\n", content))
        if p
    ]


@toolkit_tool("notion", name="NOTION_SEARCH", builtin=True)
async def search(
    client: httpx.AsyncClient,
    query: Annotated[
        str,
        Field(
            max_length=500,
            description="Words in the title to look for; empty lists everything shared.",
        ),
    ] = "",
    object_type: Annotated[
        Literal["page", "database"] | None,
        Field(description="Only pages or only databases; leave out for both."),
    ] = None,
    page_size: Annotated[
        int, Field(ge=1, le=50, description="How many results to return (max 50).")
    ] = 10,
    start_cursor: Annotated[
        str | None,
        Field(max_length=200, description="next_cursor from a previous call, for more."),
    ] = None,
) -> dict[str, Any]:
    """Search the Notion pages and databases the user shared with this integration, by title.
    Returns ids, titles and URLs; use a page id as the parent for NOTION_CREATE_PAGE."""
    payload: dict[str, Any] = {"page_size": page_size}
    if query:
        payload["query"] = query
    if object_type:
        payload["filter"] = {"property": "object", "value": object_type}
    if start_cursor:
        payload["start_cursor"] = start_cursor
    response = await client.post("/search", json=payload)
    check(response, "Notion", hints=_HINTS)
    body = required(json_of(response, "Notion"), "Notion", "the answer")
    results = objects(body.get("results"), "Notion", "the results", {"id": str})
    return {
        "results": [
            {
                "id": r.get("id"),
                "type": r.get("object"),
                "title": _title(r),
                "url": r.get("url"),
                "last_edited_time": r.get("last_edited_time"),
            }
            for r in results
        ],
        "next_cursor": body.get("next_cursor") if body.get("has_more") else None,
    }


@toolkit_tool("notion", name="NOTION_CREATE_PAGE", builtin=True)
async def create_page(
    client: httpx.AsyncClient,
    parent_page_id: Annotated[
        str,
        Field(
            pattern=r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
            r"[0-9a-fA-F]{12}$",
            description="The id of the page to create it under, from NOTION_SEARCH.",
        ),
    ],
    title: Annotated[
        str, Field(min_length=1, max_length=2000, description="The new page's title.")
    ],
    content: Annotated[
        str | None,
        Field(
            max_length=100_000,
            description="The page's text; a blank line starts a new paragraph.",
        ),
    ] = None,
) -> dict[str, Any]:
    """Create a Notion page with a title and optional text under an existing page, and return
    its id and URL. Only call it when the user asked for the page."""
    payload: dict[str, Any] = {
        "parent": {"type": "page_id", "page_id": parent_page_id},
        "properties": {"title": {"title": [{"type": "text", "text": {"content": title}}]}},
    }
    blocks = _paragraphs(content or "")
    if blocks:
        payload["children"] = blocks[:_MAX_BLOCKS]
    response = await client.post("/pages", json=payload)
    check(response, "Notion", hints=_HINTS)
    page = required(json_of(response, "Notion"), "Notion", "the new page", {"id": str})
    result = {
        "id": page.get("id"),
        "title": _title(page) or title,
        "url": page.get("url"),
        "paragraphs": min(len(blocks), _MAX_BLOCKS),
        "created": True,
    }
    if len(blocks) > _MAX_BLOCKS:
        result["note"] = f"Only the first {_MAX_BLOCKS} of {len(blocks)} paragraphs were added."
    return result
