"""Notion tools against a loopback fake of the Notion API (under /v1, as the real one)."""

from __future__ import annotations

import pytest

from tests.tools.conftest import TOKEN
from tests.tools.fakes import NOTION_PARENT, FakeNotion
from toolauth.tools import ToolApiError


@pytest.fixture
async def notion(connect):
    return await connect("notion", FakeNotion(TOKEN))


async def test_search_extracts_titles_of_pages_and_databases(notion):
    result = await notion.call("NOTION_SEARCH", query="meeting")
    seen = notion.fake.last
    assert (seen.method, seen.path) == ("POST", "/v1/search")
    assert seen.headers["notion-version"] == "2022-06-28"  # from the catalog
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.body == {"query": "meeting", "page_size": 10}
    assert result == {
        "results": [
            {
                "id": NOTION_PARENT,
                "type": "page",
                "title": "Meeting Notes",
                "url": "https://www.notion.so/Meeting-Notes-598337872cf94fdf8782e53db20768a5",
                "last_edited_time": "2024-05-01T10:00:00.000Z",
            },
            {
                "id": "d9824bdc-8445-4327-be8b-5b47500af6ce",
                "type": "database",
                "title": "Meeting Tasks",
                "url": "https://www.notion.so/d9824bdc84454327be8b5b47500af6ce",
                "last_edited_time": "2024-04-20T10:00:00.000Z",
            },
        ],
        "next_cursor": None,
    }


async def test_search_pages_only_reads_any_title_property(notion):
    result = await notion.call("NOTION_SEARCH", object_type="page", page_size=5)
    assert notion.fake.last.body == {
        "page_size": 5,
        "filter": {"property": "object", "value": "page"},
    }
    # a database row's title property is "Name", not "title"
    assert [(r["type"], r["title"]) for r in result["results"]] == [
        ("page", "Meeting Notes"),
        ("page", "Fix login bug"),
    ]


async def test_search_pages_through_results(notion):
    result = await notion.call("NOTION_SEARCH", page_size=1)
    assert result["next_cursor"] == "e6c6f8ff-c70e-4970-91b4-e2f3c8e1a1a1"
    await notion.call("NOTION_SEARCH", page_size=1, start_cursor=result["next_cursor"])
    assert notion.fake.last.body["start_cursor"] == result["next_cursor"]


async def test_create_page_with_paragraphs(notion):
    long = "y" * 2500
    result = await notion.call(
        "NOTION_CREATE_PAGE",
        parent_page_id=NOTION_PARENT,
        title="Standup 1 May",
        content=f"First point.\n\n\nSecond point\ncontinues.\n\n{long}",
    )
    seen = notion.fake.last
    assert (seen.method, seen.path) == ("POST", "/v1/pages")
    assert seen.body["parent"] == {"type": "page_id", "page_id": NOTION_PARENT}
    assert seen.body["properties"] == {
        "title": {"title": [{"type": "text", "text": {"content": "Standup 1 May"}}]}
    }
    paragraphs = [
        [t["text"]["content"] for t in block["paragraph"]["rich_text"]]
        for block in seen.body["children"]
    ]
    assert all(b["type"] == "paragraph" for b in seen.body["children"])
    assert paragraphs == [
        ["First point."],
        ["Second point\ncontinues."],
        ["y" * 2000, "y" * 500],  # Notion takes at most 2000 characters per text object
    ]
    assert result == {
        "id": "7b1d5b8e-0d3a-4c3e-9f7e-2a1b0c9d8e7f",
        "title": "Standup 1 May",
        "url": "https://www.notion.so/Standup-1-May-7b1d5b8e0d3a4c3e9f7e2a1b0c9d8e7f",
        "paragraphs": 3,
        "created": True,
    }


async def test_create_page_without_content_sends_no_children(notion):
    await notion.call("NOTION_CREATE_PAGE", parent_page_id=NOTION_PARENT, title="Empty")
    assert "children" not in notion.fake.last.body


async def test_create_page_caps_blocks_at_100(notion):
    content = "\n\n".join(f"p{i}" for i in range(120))
    result = await notion.call(
        "NOTION_CREATE_PAGE", parent_page_id=NOTION_PARENT, title="Many", content=content
    )
    assert len(notion.fake.last.body["children"]) == 100
    assert result["paragraphs"] == 100
    assert "100 of 120" in result["note"]


async def test_unshared_parent_tells_the_user_to_share_it(notion):
    with pytest.raises(ToolApiError) as info:
        await notion.call(
            "NOTION_CREATE_PAGE",
            parent_page_id="00000000-0000-0000-0000-000000000000",
            title="Nope",
        )
    assert info.value.status_code == 404
    assert "Could not find page" in str(info.value)
    assert "Connections" in str(info.value)


async def test_restricted_resource_is_a_permission_message(notion):
    notion.fake.fail_next(
        403,
        {
            "object": "error",
            "status": 403,
            "code": "restricted_resource",
            "message": "API token does not have access to this resource.",
        },
    )
    with pytest.raises(ToolApiError) as info:
        await notion.call("NOTION_SEARCH", query="x")
    assert "denied permission" in str(info.value)


async def test_rate_limited(notion):
    notion.fake.fail_next(
        429,
        {
            "object": "error",
            "status": 429,
            "code": "rate_limited",
            "message": "You have been rate limited. Please try again in a few minutes.",
        },
        headers={"Retry-After": "3"},
    )
    with pytest.raises(ToolApiError) as info:
        await notion.call("NOTION_SEARCH")
    assert "after 3 s" in str(info.value)
