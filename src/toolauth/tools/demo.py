"""Tools for the local demo provider: profile and items."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from pydantic import Field

from ._http import json_of, objects, required
from ._spec import check_response, toolkit_tool


@toolkit_tool("demo", builtin=True, scopes=["profile"])
async def get_profile(client: httpx.AsyncClient) -> dict[str, Any]:
    """Get the user's Demo profile (name, email, username). Call it when the user asks who they
    are on Demo or to check the Demo connection."""
    response = await client.get("/me")
    check_response(response, "Demo")
    body = required(json_of(response, "Demo"), "Demo", "the profile", {"sub": str})
    return {k: body.get(k) for k in ("sub", "name", "email", "preferred_username") if k in body}


@toolkit_tool("demo", builtin=True, scopes=["items:read"])
async def list_items(
    client: httpx.AsyncClient,
    limit: Annotated[int, Field(ge=1, le=100, description="How many items to return.")] = 20,
) -> dict[str, Any]:
    """List the user's Demo items, oldest first (the order they were created)."""
    response = await client.get("/items", params={"limit": limit})
    check_response(response, "Demo")
    body = json_of(response, "Demo")
    if not isinstance(body, list):  # {"items": [...]}, or the list itself
        body = required(body, "Demo", "the answer", {"items": list})["items"]
    items = objects(body, "Demo", "the items", {"id": str})
    return {"items": [{"id": i.get("id"), "name": i.get("name")} for i in items]}


@toolkit_tool("demo", builtin=True, scopes=["items:write"])
async def create_item(
    client: httpx.AsyncClient,
    name: Annotated[str, Field(min_length=1, max_length=200, description="The item's name.")],
) -> dict[str, Any]:
    """Create a new Demo item with the given name and return it."""
    response = await client.post("/items", json={"name": name})
    check_response(response, "Demo")
    item = required(json_of(response, "Demo"), "Demo", "the new item", {"id": str})
    return {"id": item.get("id"), "name": item.get("name"), "created": True}
