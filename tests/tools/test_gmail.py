"""Gmail tools against a loopback fake of the Gmail API (under /gmail/v1, as the real one)."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from tests.tools.conftest import TOKEN
from tests.tools.fakes import FakeGmail
from toolauth.tools import ToolApiError


@pytest.fixture
async def gmail(connect):
    return await connect("gmail", FakeGmail(TOKEN))


async def test_list_messages_fetches_metadata_of_the_page(gmail):
    result = await gmail.call("GMAIL_LIST_MESSAGES", query="from:bob is:unread", max_results=2)
    listing, *details = gmail.fake.requests
    assert (listing.method, listing.path) == ("GET", "/gmail/v1/users/me/messages")
    assert listing.params == {"q": "from:bob is:unread", "maxResults": "2"}
    assert sorted(d.path for d in details) == [
        "/gmail/v1/users/me/messages/18f1a2b3c4d5e6f7",
        "/gmail/v1/users/me/messages/18f1a2b3c4d5e700",
    ]
    for d in details:
        assert d.query["format"] == ["metadata"]
        assert d.query["metadataHeaders"] == ["Subject", "From", "Date"]
        assert d.headers["authorization"] == f"Bearer {TOKEN}"
    assert result["next_page_token"] == "09876543210987654321"
    first, second = result["messages"]
    assert first == {
        "id": "18f1a2b3c4d5e6f7",
        "thread_id": "18f1a2b3c4d5e6f7",
        "from": "Bob Builder <bob@example.com>",
        "subject": "Invoice for May",
        "date": "Wed, 1 May 2024 08:00:00 +0000",
        "snippet": "Hi Ada, The invoice for May is attached. Thanks, Bob's team",
        "unread": True,
    }
    assert second["subject"] == "Weekly report"
    assert second["unread"] is False


async def test_list_messages_with_no_match(gmail):
    result = await gmail.call("GMAIL_LIST_MESSAGES", query="nothing-matches")
    assert result == {"messages": [], "next_page_token": None}
    assert len(gmail.fake.requests) == 1


async def test_list_messages_continues_a_page(gmail):
    await gmail.call("GMAIL_LIST_MESSAGES", page_token="09876543210987654321", max_results=1)
    assert gmail.fake.requests[0].params == {
        "maxResults": "1",
        "pageToken": "09876543210987654321",
    }


async def test_get_message_plain_text_is_trimmed(gmail):
    result = await gmail.call("GMAIL_GET_MESSAGE", message_id="18f1a2b3c4d5e6f7", max_chars=500)
    seen = gmail.fake.last
    assert seen.path == "/gmail/v1/users/me/messages/18f1a2b3c4d5e6f7"
    assert seen.params == {"format": "full"}
    assert result["from"] == "Bob Builder <bob@example.com>"
    assert result["to"] == "ada@example.com"
    assert result["subject"] == "Invoice for May"
    assert result["body"].startswith("Hi Ada,\n\nThe invoice for May is attached.")
    assert "HTML version" not in result["body"]  # text/plain wins over text/html
    assert len(result["body"]) <= 500
    assert result["truncated"] is True
    assert result["attachments"] == []
    assert "payload" not in result


async def test_get_message_html_only_with_attachment(gmail):
    result = await gmail.call("GMAIL_GET_MESSAGE", message_id="18f1a2b3c4d5e700")
    assert result["body"] == "Your report is\xa0ready & attached.\nSee you"
    assert "color:red" not in result["body"]
    assert result["cc"] == "team@example.com"
    assert result["truncated"] is False
    assert result["attachments"] == [
        {"filename": "report.pdf", "mime_type": "application/pdf", "size": 24000}
    ]


async def test_get_message_decodes_its_charset(gmail):
    result = await gmail.call("GMAIL_GET_MESSAGE", message_id="18f1a2b3c4d5e701")
    assert result["body"] == "Café ce soir ?"
    assert result["from"] == "Zoé <zoe@example.fr>"


async def test_get_message_not_found(gmail):
    with pytest.raises(ToolApiError) as info:
        await gmail.call("GMAIL_GET_MESSAGE", message_id="0000000000000000")
    assert info.value.status_code == 404
    assert "Requested entity was not found" in str(info.value)
    assert "GMAIL_LIST_MESSAGES" in str(info.value)


async def test_send_email_builds_an_rfc_2822_message(gmail):
    body = "Hi Bob,\n\nSee you at 10 — café on me.\n"
    result = await gmail.call(
        "GMAIL_SEND_EMAIL",
        to="Bob <bob@example.com>, carol@example.com",
        subject="Lunch ☕",
        body=body,
        cc="dave@example.com",
    )
    seen = gmail.fake.last
    assert (seen.method, seen.path) == ("POST", "/gmail/v1/users/me/messages/send")
    assert list(seen.body) == ["raw"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+=*", seen.body["raw"])  # base64url
    (message,) = gmail.fake.sent
    assert message["To"] == "Bob <bob@example.com>, carol@example.com"
    assert message["Cc"] == "dave@example.com"
    assert message["Subject"] == "Lunch ☕"
    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == body
    assert result == {
        "id": "18f1a2b3c4d5e7ff",
        "thread_id": "18f1a2b3c4d5e7ff",
        "labels": ["SENT"],
        "sent": True,
    }


async def test_send_email_without_cc(gmail):
    await gmail.call("GMAIL_SEND_EMAIL", to="bob@example.com", subject="Hi", body="Hello")
    (message,) = gmail.fake.sent
    assert "Cc" not in message


async def test_send_email_rejects_a_name_that_is_not_an_address(gmail):
    with pytest.raises(ToolApiError) as info:
        await gmail.call("GMAIL_SEND_EMAIL", to="Bob Smith", subject="Hi", body="Hello")
    assert "email addresses" in str(info.value)
    assert gmail.fake.requests == []


async def test_send_email_rejects_header_injection(gmail):
    spec = gmail.tools["GMAIL_SEND_EMAIL"]
    with pytest.raises(ValidationError):
        spec.args_schema(to="bob@example.com", subject="Hi\r\nBcc: eve@example.com", body="x")


async def test_insufficient_scope_is_a_permission_message(gmail):
    gmail.fake.fail_next(
        403,
        {
            "error": {
                "code": 403,
                "message": "Request had insufficient authentication scopes.",
                "errors": [
                    {
                        "message": "Insufficient Permission",
                        "domain": "global",
                        "reason": "insufficientPermissions",
                    }
                ],
                "status": "PERMISSION_DENIED",
            }
        },
    )
    with pytest.raises(ToolApiError) as info:
        await gmail.call("GMAIL_SEND_EMAIL", to="bob@example.com", subject="Hi", body="Hello")
    assert info.value.status_code == 403
    assert "denied permission" in str(info.value)
    assert "insufficient authentication scopes" in str(info.value)


async def test_rate_limit_as_403_user_rate_limit(gmail):
    gmail.fake.fail_next(
        403,
        {
            "error": {
                "code": 403,
                "message": "User Rate Limit Exceeded",
                "errors": [
                    {
                        "message": "User Rate Limit Exceeded",
                        "domain": "usageLimits",
                        "reason": "userRateLimitExceeded",
                    }
                ],
                "status": "PERMISSION_DENIED",
            }
        },
    )
    with pytest.raises(ToolApiError) as info:
        await gmail.call("GMAIL_LIST_MESSAGES")
    assert "rate limit" in str(info.value)
    assert "denied permission" not in str(info.value)


async def test_rate_limit_429_with_retry_after(gmail):
    gmail.fake.fail_next(
        429,
        {
            "error": {
                "code": 429,
                "message": "Too many concurrent requests for user.",
                "status": "RESOURCE_EXHAUSTED",
            }
        },
        headers={"Retry-After": "30"},
    )
    with pytest.raises(ToolApiError) as info:
        await gmail.call("GMAIL_LIST_MESSAGES")
    assert info.value.status_code == 429
    assert "Wait and try again after 30 s" in str(info.value)
