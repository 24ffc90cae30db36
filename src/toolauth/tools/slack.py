"""Tools for Slack's Web API: list channels, post messages.

Slack answers most failures with HTTP 200 and ``{"ok": false, "error": "<code>"}``; ``_slack``
turns those codes into messages the model can act on.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import httpx
from pydantic import Field

from ._http import check, clip, json_of, objects, optional, required
from ._spec import ToolApiError, toolkit_tool

_RECONNECT = (
    "Slack rejected the user's credentials ({code}). Tell the user that Slack needs to be "
    "reconnected (the connection manager tool can do it when it offers reinitiate_all)."
)
_ERRORS = {
    "not_in_channel": (
        "The user is not a member of that Slack channel. Ask them to join it, then try again."
    ),
    "channel_not_found": (
        "Slack found no channel with that id that the user can see. Call SLACK_LIST_CHANNELS "
        "and pass the channel's id (like C0123ABCD), not its name."
    ),
    "is_archived": "That Slack channel is archived; nobody can post in it. Pick another channel.",
    "msg_too_long": "The Slack message is too long. Shorten the text and try again.",
    "no_text": "The Slack message has no text. Pass the text to send.",
    "restricted_action": (
        "The Slack workspace's settings stop the user from posting there. Tell the user."
    ),
    "thread_not_found": "Slack found no thread with that thread_ts. Check it or leave it out.",
    "invalid_cursor": "That Slack cursor is no longer valid. Call again without a cursor.",
    "ratelimited": "Slack rate limit reached. Wait a minute and try again.",
    "invalid_auth": _RECONNECT,
    "not_authed": _RECONNECT,
    "token_revoked": _RECONNECT,
    "token_expired": _RECONNECT,
    "account_inactive": _RECONNECT,
}


def _slack(response: httpx.Response) -> dict[str, Any]:
    """The body of a Slack Web API answer, or ``ToolApiError`` for HTTP or ``ok: false``."""
    check(response, "Slack")
    body = required(json_of(response, "Slack"), "Slack", "the answer", {"ok": bool})
    if body["ok"]:
        return body
    code = str(body.get("error") or "unknown_error")
    if code == "missing_scope":
        needed = str(body.get("needed") or "another scope")
        message = (
            f"The Slack connection lacks the permission {needed!r} (missing_scope). Ask the user "
            "to reconnect Slack and grant it."
        )
    else:
        message = _ERRORS.get(code, "Slack refused the call ({code}).").format(code=code)
    raise ToolApiError(message, status_code=response.status_code)


@toolkit_tool("slack", name="SLACK_LIST_CHANNELS", builtin=True)
async def list_channels(
    client: httpx.AsyncClient,
    types: Annotated[
        Literal["public_channel", "private_channel", "public_channel,private_channel"],
        Field(description="Which channels: public, private (needs groups:read), or both."),
    ] = "public_channel",
    limit: Annotated[
        int, Field(ge=1, le=200, description="How many channels to return (max 200).")
    ] = 100,
    cursor: Annotated[
        str | None,
        Field(max_length=500, description="next_cursor from a previous call, for more."),
    ] = None,
) -> dict[str, Any]:
    """List the Slack workspace's channels that are not archived: id, name, whether the user
    is a member, topic and member count. Use it to find the channel id for SLACK_SEND_MESSAGE."""
    params: dict[str, Any] = {"types": types, "exclude_archived": "true", "limit": limit}
    if cursor:
        params["cursor"] = cursor
    body = _slack(await client.get("/conversations.list", params=params))
    channels = objects(body.get("channels"), "Slack", "the channels", {"id": str})
    return {
        "channels": [
            {
                "id": c.get("id"),
                "name": c.get("name"),
                "is_private": c.get("is_private"),
                "is_member": c.get("is_member"),
                "topic": clip(optional(c.get("topic")).get("value") or None, 200),
                "purpose": clip(optional(c.get("purpose")).get("value") or None, 200),
                "num_members": c.get("num_members"),
            }
            for c in channels
        ],
        "next_cursor": optional(body.get("response_metadata")).get("next_cursor") or None,
    }


@toolkit_tool("slack", name="SLACK_SEND_MESSAGE", builtin=True)
async def send_message(
    client: httpx.AsyncClient,
    channel: Annotated[
        str,
        Field(
            min_length=1,
            max_length=100,
            description="The channel id (like C0123ABCD) from SLACK_LIST_CHANNELS, or a user id "
            "for a direct message.",
        ),
    ],
    text: Annotated[
        str,
        Field(
            min_length=1,
            max_length=40000,
            description="The message, in Slack mrkdwn (*bold*, _italic_, <https://url|link>).",
        ),
    ],
    thread_ts: Annotated[
        str | None,
        Field(
            max_length=50,
            pattern=r"^\d+\.\d+$",
            description="Reply in this thread: the parent message's ts, e.g. '1503435956.000247'.",
        ),
    ] = None,
) -> dict[str, Any]:
    """Post a message to a Slack channel as the user and return its timestamp (ts). Only call
    it when the user asked for this message to be sent there."""
    payload: dict[str, Any] = {"channel": channel, "text": text}
    if thread_ts:
        payload["thread_ts"] = thread_ts
    body = _slack(await client.post("/chat.postMessage", json=payload))
    required(body, "Slack", "the answer", {"channel": str, "ts": str})
    return {
        "channel": body.get("channel"),
        "ts": body.get("ts"),
        "thread_ts": optional(body.get("message")).get("thread_ts"),
        "sent": True,
    }
