"""Tools for the local demo provider: profile and items."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from pydantic import Field

from ._spec import check_response, toolkit_tool


@toolkit_tool("demo", builtin=True)
async def get_profile(client: httpx.AsyncClient) -> dict[str, Any]:
    """Get the user's Demo profile (name, email, username). Call it when the user asks who they
    are on Demo or to check the Demo connection."""
    response = await client.get("/me")
    check_response(response, "Demo")
    body = response.json()
    return {k: body.get(k) for k in ("sub", "name", "email", "preferred_username") if k in body}


@toolkit_tool("demo", builtin=True)
async def list_items(
    client: httpx.AsyncClient,
    limit: Annotated[int, Field(ge=1, le=100, description="How many items to return.")] = 20,
) -> dict[str, Any]:
    """List the user's Demo items, oldest first (the order they were created)."""
    response = await client.get("/items", params={"limit": limit})
    check_response(response, "Demo")
    body = response.json()
    items = body.get("items", body) if isinstance(body, dict) else body
    return {"items": [{"id": i.get("id"), "name": i.get("name")} for i in items]}


@toolkit_tool("demo", builtin=True)
async def create_item(
    client: httpx.AsyncClient,
    name: Annotated[str, Field(min_length=1, max_length=200, description="The item's name.")],
) -> dict[str, Any]:
    """Create a new Demo item with the given name and return it."""
    response = await client.post("/items", json={"name": name})
    check_response(response, "Demo")
    item = response.json()
    return {"id": item.get("id"), "name": item.get("name"), "created": True}
