"""Slack tools against a loopback fake of the Web API (under /api, as the real one)."""

from __future__ import annotations

import pytest

from tests.tools.conftest import TOKEN
from tests.tools.fakes import FakeSlack
from toolauth.tools import ToolApiError


@pytest.fixture
async def slack(connect):
    return await connect("slack", FakeSlack(TOKEN))


async def test_list_channels_trims_and_pages(slack):
    result = await slack.call("SLACK_LIST_CHANNELS", limit=2)
    seen = slack.fake.last
    assert (seen.method, seen.path) == ("GET", "/api/conversations.list")
    assert seen.params == {"types": "public_channel", "exclude_archived": "true", "limit": "2"}
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert result["channels"][0] == {
        "id": "C012AB3CD",
        "name": "general",
        "is_private": False,
        "is_member": True,
        "topic": "All about general",
        "purpose": None,
        "num_members": 4,
    }
    assert [c["name"] for c in result["channels"]] == ["general", "random"]
    assert result["next_cursor"] == FakeSlack.cursor

    more = await slack.call("SLACK_LIST_CHANNELS", limit=2, cursor=result["next_cursor"])
    assert slack.fake.last.params["cursor"] == FakeSlack.cursor
    assert [c["name"] for c in more["channels"]] == ["announcements"]
    assert more["next_cursor"] is None  # Slack's "" means the last page


async def test_list_private_channels(slack):
    await slack.call("SLACK_LIST_CHANNELS", types="public_channel,private_channel")
    assert slack.fake.last.params["types"] == "public_channel,private_channel"


async def test_send_message(slack):
    result = await slack.call("SLACK_SEND_MESSAGE", channel="C012AB3CD", text="Deploy *done*")
    seen = slack.fake.last
    assert (seen.method, seen.path) == ("POST", "/api/chat.postMessage")
    assert seen.headers["content-type"].startswith("application/json")
    assert seen.body == {"channel": "C012AB3CD", "text": "Deploy *done*"}
    assert result == {
        "channel": "C012AB3CD",
        "ts": "1503435956.000247",
        "thread_ts": None,
        "sent": True,
    }


async def test_send_message_in_a_thread(slack):
    result = await slack.call(
        "SLACK_SEND_MESSAGE", channel="C012AB3CD", text="ok", thread_ts="1503435956.000100"
    )
    assert slack.fake.last.body["thread_ts"] == "1503435956.000100"
    assert result["thread_ts"] == "1503435956.000100"


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("C061EG9SL", "not a member"),  # announcements: the user has not joined it
        ("C404NOPE", "SLACK_LIST_CHANNELS"),  # channel_not_found
    ],
)
async def test_send_message_ok_false_is_actionable(slack, channel, expected):
    with pytest.raises(ToolApiError) as info:
        await slack.call("SLACK_SEND_MESSAGE", channel=channel, text="hi")
    assert expected in str(info.value)
    assert info.value.status_code == 200  # Slack says "ok": false with HTTP 200


async def test_missing_scope_names_the_scope(slack):
    slack.fake.fail_next(
        200,
        {
            "ok": False,
            "error": "missing_scope",
            "needed": "groups:read",
            "provided": "channels:read,channels:history,chat:write,users:read",
        },
    )
    with pytest.raises(ToolApiError) as info:
        await slack.call("SLACK_LIST_CHANNELS", types="private_channel")
    assert "'groups:read'" in str(info.value)
    assert "reconnect" in str(info.value)


async def test_unknown_error_code_is_shown(slack):
    slack.fake.fail_next(200, {"ok": False, "error": "team_access_not_granted"})
    with pytest.raises(ToolApiError) as info:
        await slack.call("SLACK_LIST_CHANNELS")
    assert "team_access_not_granted" in str(info.value)


async def test_ratelimited_429_with_retry_after(slack):
    slack.fake.fail_next(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "20"})
    with pytest.raises(ToolApiError) as info:
        await slack.call("SLACK_SEND_MESSAGE", channel="C012AB3CD", text="hi")
    assert info.value.status_code == 429
    assert "rate limit" in str(info.value)
    assert "after 20 s" in str(info.value)


async def test_wrong_token_is_invalid_auth(connect):
    slack = await connect("slack", FakeSlack("another-token"))
    with pytest.raises(ToolApiError) as info:
        await slack.call("SLACK_LIST_CHANNELS")
    assert "invalid_auth" in str(info.value)
    assert "Slack needs to be reconnected" in str(info.value)
