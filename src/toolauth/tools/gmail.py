"""Tools for the Gmail API: search and read messages, send email."""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.policy
import html
import re
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Annotated, Any

import httpx
from pydantic import Field

from ._http import check, clip, json_of, objects, optional, required, unexpected
from ._paths import path
from ._spec import ToolApiError, toolkit_tool

_HINTS = {404: "Get message ids from GMAIL_LIST_MESSAGES."}
_LIST_HEADERS = ("Subject", "From", "Date")
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
_FETCH_AT_ONCE = 5
_ONE_LINE = r"^[^\r\n]*$"

MessageId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The Gmail message id, as returned by GMAIL_LIST_MESSAGES.",
    ),
]


def _check(response: httpx.Response) -> None:
    """``check`` plus Gmail's rate limits that come as 403 with a rateLimitExceeded reason."""
    if response.status_code == 403:
        try:
            errors = response.json()["error"]["errors"]
            reasons = {e.get("reason") for e in errors}
        except (ValueError, KeyError, TypeError, AttributeError):
            reasons = set()
        if reasons & _RATE_REASONS:
            raise ToolApiError(
                "Gmail rate limit reached. Wait a minute and try again.", status_code=403
            )
    check(response, "Gmail", hints=_HINTS)


def _headers(payload: dict[str, Any]) -> dict[str, str]:
    """The message's headers by lower-case name (the first of each)."""
    found: dict[str, str] = {}
    headers = payload.get("headers")
    for header in headers if isinstance(headers, list) else []:
        header = optional(header)
        name = str(header.get("name", "")).lower()
        found.setdefault(name, str(header.get("value", "")))
    return found


def _parts(part: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield part
    children = part.get("parts")
    for child in children if isinstance(children, list) else []:
        if isinstance(child, dict):
            yield from _parts(child)


def _decode(part: dict[str, Any]) -> str:
    data = optional(part.get("body")).get("data")
    if not data or not isinstance(data, str):
        return ""
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return ""
    match = re.search(r"charset=\"?([\w.:-]+)", _headers(part).get("content-type", ""), re.I)
    try:
        return raw.decode(match.group(1) if match else "utf-8", errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


def _html_text(markup: str) -> str:
    markup = re.sub(r"(?is)<(script|style|head)\b.*?</\1\s*>", " ", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</(p|div|tr|li|h[1-6])\s*>", "\n", markup)
    text = html.unescape(re.sub(r"<[^>]+>", "", markup))
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def _body(payload: dict[str, Any]) -> str:
    """The message's text: its first text/plain part, else its first text/html part as text."""
    inline = [p for p in _parts(payload) if not p.get("filename")]
    for part in inline:
        if part.get("mimeType") == "text/plain" and optional(part.get("body")).get("data"):
            return _decode(part).strip()
    for part in inline:
        if part.get("mimeType") == "text/html" and optional(part.get("body")).get("data"):
            return _html_text(_decode(part))
    return ""


def _labels(message: dict[str, Any]) -> list[str]:
    labels = message.get("labelIds")
    return [str(label) for label in labels] if isinstance(labels, list) else []


def _addresses(value: str, field: str) -> str:
    pairs = getaddresses([value])
    if not pairs or any("@" not in address for _, address in pairs):
        raise ToolApiError(
            f"{field} must be email addresses separated by commas (got {value[:100]!r}). Ask "
            "the user for the exact address and try again."
        )
    return value


_READ = "https://www.googleapis.com/auth/gmail.readonly"
_SEND = "https://www.googleapis.com/auth/gmail.send"


@toolkit_tool("gmail", name="GMAIL_LIST_MESSAGES", builtin=True, scopes=[_READ])
async def list_messages(
    client: httpx.AsyncClient,
    query: Annotated[
        str,
        Field(
            max_length=500,
            description=(
                "A Gmail search, as in the Gmail search box, e.g. 'from:alice is:unread' or "
                "'subject:invoice newer_than:7d'. Empty for the newest messages."
            ),
        ),
    ] = "",
    max_results: Annotated[
        int, Field(ge=1, le=25, description="How many messages to return (max 25).")
    ] = 10,
    page_token: Annotated[
        str | None,
        Field(max_length=200, description="next_page_token from a previous call, for more."),
    ] = None,
) -> dict[str, Any]:
    """Search the user's Gmail, newest first, and return each message's id, sender, subject,
    date and a short snippet. Call GMAIL_GET_MESSAGE with an id to read a whole message."""
    params: dict[str, Any] = {"maxResults": max_results}
    if query:
        params["q"] = query
    if page_token:
        params["pageToken"] = page_token
    response = await client.get("/users/me/messages", params=params)
    _check(response)
    listing = required(json_of(response, "Gmail"), "Gmail", "the message list")
    if "messages" not in listing and "resultSizeEstimate" not in listing:
        raise unexpected("Gmail", "the message list has neither 'messages' nor a result count")
    found = objects(listing.get("messages") or [], "Gmail", "the messages", {"id": str})
    ids = [m["id"] for m in found][:max_results]
    gate = asyncio.Semaphore(_FETCH_AT_ONCE)

    async def metadata(message_id: str) -> dict[str, Any] | None:
        async with gate:
            detail = await client.get(
                path("/users/me/messages/{message_id}", message_id=message_id),
                params={"format": "metadata", "metadataHeaders": list(_LIST_HEADERS)},
            )
        if detail.status_code == 404:  # deleted since it was listed
            return None
        _check(detail)
        message = required(json_of(detail, "Gmail"), "Gmail", "a message")
        headers = _headers(optional(message.get("payload")))
        return {
            "id": message.get("id", message_id),
            "thread_id": message.get("threadId"),
            "from": headers.get("from"),
            "subject": headers.get("subject"),
            "date": headers.get("date"),
            "snippet": clip(html.unescape(str(message.get("snippet") or "")), 200),
            "unread": "UNREAD" in _labels(message),
        }

    # every fetch ends before this returns (no request outlives the client); then the first
    # failure, if any, is the answer
    fetched = await asyncio.gather(*(metadata(i) for i in ids), return_exceptions=True)
    for outcome in fetched:
        if isinstance(outcome, BaseException):
            raise outcome
    return {
        "messages": [m for m in fetched if isinstance(m, dict)],
        "next_page_token": listing.get("nextPageToken"),
    }


@toolkit_tool("gmail", name="GMAIL_GET_MESSAGE", builtin=True, scopes=[_READ])
async def get_message(
    client: httpx.AsyncClient,
    message_id: MessageId,
    max_chars: Annotated[
        int, Field(ge=200, le=20000, description="Longest body text to return, in characters.")
    ] = 4000,
) -> dict[str, Any]:
    """Read one Gmail message: sender, recipients, subject, date, its text body (cut to
    max_chars) and attachment names. Get the id from GMAIL_LIST_MESSAGES."""
    response = await client.get(
        path("/users/me/messages/{message_id}", message_id=message_id), params={"format": "full"}
    )
    _check(response)
    message = required(json_of(response, "Gmail"), "Gmail", "the message", {"id": str})
    payload = optional(message.get("payload"))
    headers = _headers(payload)
    body = _body(payload)
    return {
        "id": message.get("id", message_id),
        "thread_id": message.get("threadId"),
        "from": headers.get("from"),
        "to": headers.get("to"),
        "cc": headers.get("cc"),
        "subject": headers.get("subject"),
        "date": headers.get("date"),
        "labels": _labels(message),
        "body": clip(body, max_chars),
        "truncated": len(body) > max_chars,
        "attachments": [
            {
                "filename": p.get("filename"),
                "mime_type": p.get("mimeType"),
                "size": optional(p.get("body")).get("size"),
            }
            for p in _parts(payload)
            if p.get("filename")
        ],
    }


@toolkit_tool("gmail", name="GMAIL_SEND_EMAIL", builtin=True, scopes=[_SEND])
async def send_email(
    client: httpx.AsyncClient,
    to: Annotated[
        str,
        Field(
            min_length=3,
            max_length=2000,
            pattern=_ONE_LINE,
            description="Recipient addresses, separated by commas, e.g. 'bob@example.com'.",
        ),
    ],
    subject: Annotated[
        str, Field(max_length=998, pattern=_ONE_LINE, description="The subject line.")
    ],
    body: Annotated[str, Field(max_length=100_000, description="The message text (plain text).")],
    cc: Annotated[
        str | None,
        Field(
            max_length=2000,
            pattern=_ONE_LINE,
            description="Addresses to copy, separated by commas.",
        ),
    ] = None,
) -> dict[str, Any]:
    """Send a plain-text email from the user's Gmail account and return the sent message's id.
    Only call it when the user asked for this email to be sent, to these recipients."""
    message = EmailMessage()
    message["To"] = _addresses(to, "to")
    if cc:
        message["Cc"] = _addresses(cc, "cc")
    message["Subject"] = subject
    message.set_content(body)
    raw = base64.urlsafe_b64encode(message.as_bytes(policy=email.policy.SMTP)).decode("ascii")
    response = await client.post("/users/me/messages/send", json={"raw": raw})
    _check(response)
    sent = required(json_of(response, "Gmail"), "Gmail", "the sent message", {"id": str})
    return {
        "id": sent.get("id"),
        "thread_id": sent.get("threadId"),
        "labels": _labels(sent),
        "sent": True,
    }
