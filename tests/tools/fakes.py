"""Loopback fakes of the toolkits' APIs, as tiny Starlette apps.

Each fake answers with bodies shaped like the real service's (field names and nesting from the
services' API references), rejects requests whose Authorization header is not the connected
account's credential, and records every request it received. ``fail_next`` makes the next
request get a canned answer (an error shaped like the real one), after it is recorded.
``answer_oddly(kind)`` makes every later answer odd (see ``ODD_ANSWERS``) until it is set back
to ``None``; ``raw_paths`` holds the raw (still percent-encoded) path of every request, even
one that matched no route.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass
class Seen:
    """One request a fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any

    @property
    def params(self) -> dict[str, str]:
        """The query, one value per name (the last)."""
        return {k: v[-1] for k, v in self.query.items()}


OddAnswer = Literal[
    "null", "wrong_container", "missing_fields", "wrong_types", "html_502", "not_json", "slow"
]
ODD_ANSWERS: tuple[OddAnswer, ...] = (
    "null",  # 200 with the JSON body `null`
    "wrong_container",  # the real answer in a list (an object where a list was expected)
    "missing_fields",  # the real answer with every field of its objects left out
    "wrong_types",  # the real answer with each field's value of another JSON type
    "html_502",  # a proxy's HTML error page, HTTP 502
    "not_json",  # HTTP 200 with an HTML body
    "slow",  # no answer until ``release()`` (the test's client times out first)
)
_HOLD_AT_MOST = 30.0  # seconds a slow answer waits for release() (a safety net only)


def _other_type(value: Any) -> Any:
    """A value of another JSON type than ``value`` (and truthy, so ``or []`` cannot hide it)."""
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, str):
        return 12345
    if isinstance(value, (int, float)):
        return "12"
    if isinstance(value, list):
        return "not a list"
    if isinstance(value, dict):
        return ["not", "an object"]
    return {"unexpected": True}


def _odd_body(kind: OddAnswer, body: Any) -> Any:
    """The real answer ``body``, made odd in the way ``kind`` says."""
    if kind == "wrong_container":
        return [body] if isinstance(body, dict) else {"items": body}
    if isinstance(body, list):
        return [_odd_body(kind, item) if isinstance(item, dict) else item for item in body]
    if not isinstance(body, dict):
        return body
    if kind == "missing_fields":
        return {}
    return {k: _other_type(v) for k, v in body.items()}  # wrong_types


_BAD_GATEWAY = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
    "</center><hr><center>nginx</center></body></html>"
)
_MAINTENANCE = "<!doctype html><title>Down for maintenance</title><p>Back soon.</p>"


@dataclass
class _Canned:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeApi:
    """The base of every fake: records, checks credentials, serves canned answers."""

    prefix = ""  # the path the API lives under, as in its real base URL

    def __init__(self, token: str, *, authorization: str | None = None) -> None:
        self.authorization = authorization or f"Bearer {token}"
        self.requests: list[Seen] = []
        self.raw_paths: list[str] = []
        self.odd: OddAnswer | None = None
        self._canned: list[_Canned] = []
        self._released = threading.Event()
        routes = self.routes()
        self._app = Starlette(routes=[Mount(self.prefix, routes=routes)] if self.prefix else routes)

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.raw_paths.append(scope.get("raw_path", scope["path"].encode()).decode("ascii"))
        await self._app(scope, receive, send)

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def unauthorized(self) -> Response:
        raise NotImplementedError

    def fail_next(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._canned.append(_Canned(status, body, headers or {}))

    def answer_oddly(self, kind: OddAnswer | None) -> None:
        """Answer every later request the odd way ``kind`` (``None``: normally again)."""
        self.odd = kind

    def release(self) -> None:
        """Let slow answers go (the fixture calls it when the test ends)."""
        self._released.set()

    async def _odd(self, kind: OddAnswer, endpoint: Endpoint, request: Request) -> Response:
        if kind == "html_502":
            return Response(_BAD_GATEWAY, 502, media_type="text/html")
        if kind == "not_json":
            return Response(_MAINTENANCE, 200, media_type="text/html")
        if kind == "null":
            return Response("null", 200, media_type="application/json")
        if kind == "slow":
            await anyio.to_thread.run_sync(self._released.wait, _HOLD_AT_MOST)
            return await endpoint(request)
        real = await endpoint(request)
        return JSONResponse(_odd_body(kind, json.loads(bytes(real.body))), real.status_code)

    @property
    def last(self) -> Seen:
        return self.requests[-1]

    def route(self, path: str, endpoint: Endpoint, methods: list[str]) -> Route:
        async def guarded(request: Request) -> Response:
            raw = await request.body()
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
            self.requests.append(
                Seen(
                    request.method,
                    request.url.path,
                    parse_qs(request.url.query, keep_blank_values=True),
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                )
            )
            if request.headers.get("authorization") != self.authorization:
                return self.unauthorized()
            if self._canned:
                canned = self._canned.pop(0)
                return JSONResponse(canned.body, canned.status, headers=canned.headers)
            if self.odd is not None:
                return await self._odd(self.odd, endpoint, request)
            return await endpoint(request)

        return Route(path, guarded, methods=methods)


def b64url(text: str, charset: str = "utf-8") -> str:
    """Base64url as Gmail sends message bodies (here without padding, which Gmail may omit)."""
    return base64.urlsafe_b64encode(text.encode(charset)).decode("ascii").rstrip("=")


# --- GitHub -------------------------------------------------------------------------------


def _gh_user(login: str, user_id: int) -> dict[str, Any]:
    return {
        "login": login,
        "id": user_id,
        "node_id": "MDQ6VXNlcjE=",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "url": f"https://api.github.com/users/{login}",
        "html_url": f"https://github.com/{login}",
        "type": "User",
        "site_admin": False,
    }


def _gh_label(name: str, color: str) -> dict[str, Any]:
    return {
        "id": hash(name) % 10**9,
        "node_id": "MDU6TGFiZWwyMDgwNDU5NDY=",
        "url": f"https://api.github.com/repos/octo-org/widgets/labels/{name}",
        "name": name,
        "description": f"{name} label",
        "color": color,
        "default": True,
    }


def _gh_issue(number: int, title: str, state: str, *, pr: bool = False) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "id": 1000 + number,
        "node_id": "MDU6SXNzdWUx",
        "url": f"https://api.github.com/repos/octo-org/widgets/issues/{number}",
        "repository_url": "https://api.github.com/repos/octo-org/widgets",
        "html_url": f"https://github.com/octo-org/widgets/{'pull' if pr else 'issues'}/{number}",
        "number": number,
        "state": state,
        "title": title,
        "body": f"Details for {title}. " + "x" * 1000,
        "user": _gh_user("monalisa", 2),
        "labels": [_gh_label("bug", "f29513")],
        "assignee": _gh_user("octocat", 1),
        "assignees": [_gh_user("octocat", 1)],
        "locked": False,
        "comments": 3,
        "closed_at": None if state == "open" else "2024-05-02T10:00:00Z",
        "created_at": "2024-04-22T13:33:48Z",
        "updated_at": "2024-05-01T09:00:00Z",
        "author_association": "COLLABORATOR",
        "reactions": {"url": "...", "total_count": 0, "+1": 0},
    }
    if pr:
        issue["pull_request"] = {
            "url": f"https://api.github.com/repos/octo-org/widgets/pulls/{number}",
            "html_url": f"https://github.com/octo-org/widgets/pull/{number}",
            "diff_url": f"https://github.com/octo-org/widgets/pull/{number}.diff",
            "patch_url": f"https://github.com/octo-org/widgets/pull/{number}.patch",
        }
    return issue


def _gh_repo(owner: str, name: str, *, private: bool) -> dict[str, Any]:
    return {
        "id": hash(name) % 10**9,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
        "name": name,
        "full_name": f"{owner}/{name}",
        "owner": _gh_user(owner, 1),
        "private": private,
        "html_url": f"https://github.com/{owner}/{name}",
        "description": f"The {name} project",
        "fork": False,
        "url": f"https://api.github.com/repos/{owner}/{name}",
        "clone_url": f"https://github.com/{owner}/{name}.git",
        "homepage": None,
        "language": "Python",
        "stargazers_count": 80,
        "watchers_count": 80,
        "size": 108,
        "default_branch": "main",
        "open_issues_count": 2,
        "topics": ["widgets"],
        "visibility": "private" if private else "public",
        "pushed_at": "2024-05-01T09:00:00Z",
        "created_at": "2020-01-26T19:01:12Z",
        "updated_at": "2024-05-01T09:00:00Z",
        "permissions": {"admin": False, "push": True, "pull": True},
    }


class FakeGitHub(FakeApi):
    """https://docs.github.com/en/rest — /user, /user/repos, /repos/{owner}/{repo}/issues."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.issues = [
            _gh_issue(12, "Widget crashes on start", "open"),
            _gh_issue(13, "Fix the crash", "open", pr=True),
            _gh_issue(7, "Old problem", "closed"),
        ]

    def routes(self) -> list[BaseRoute]:
        return [
            self.route("/user", self.user, ["GET"]),
            self.route("/user/repos", self.repos, ["GET"]),
            self.route("/repos/{owner}/{repo}/issues", self.list_issues, ["GET"]),
            self.route("/repos/{owner}/{repo}/issues", self.create_issue, ["POST"]),
            self.route("/user/starred/{owner}/{repo}", self.star, ["PUT"]),
        ]

    def unauthorized(self) -> Response:
        return JSONResponse(
            {
                "message": "Bad credentials",
                "documentation_url": "https://docs.github.com/rest",
                "status": "401",
            },
            401,
        )

    @staticmethod
    def not_found() -> Response:
        return JSONResponse(
            {
                "message": "Not Found",
                "documentation_url": "https://docs.github.com/rest/issues/issues",
                "status": "404",
            },
            404,
        )

    async def user(self, request: Request) -> Response:
        return JSONResponse(
            {
                **_gh_user("octocat", 1),
                "name": "The Octocat",
                "company": "@github",
                "blog": "https://github.blog",
                "location": "San Francisco",
                "email": "octocat@github.com",
                "bio": None,
                "public_repos": 8,
                "followers": 20,
                "following": 0,
                "created_at": "2011-01-25T18:44:36Z",
                "plan": {"name": "pro", "space": 976562499, "private_repos": 9999},
            }
        )

    async def repos(self, request: Request) -> Response:
        repos = [
            _gh_repo("octocat", "hello-world", private=False),
            _gh_repo("octo-org", "widgets", private=True),
            _gh_repo("octocat", "spoon-knife", private=False),
        ]
        per_page = int(request.query_params.get("per_page", "30"))
        return JSONResponse(repos[:per_page])

    async def list_issues(self, request: Request) -> Response:
        if request.path_params["owner"] != "octo-org" or request.path_params["repo"] != "widgets":
            return self.not_found()
        state = request.query_params.get("state", "open")
        per_page = int(request.query_params.get("per_page", "30"))
        found = [i for i in self.issues if state == "all" or i["state"] == state]
        return JSONResponse(found[:per_page])

    async def star(self, request: Request) -> Response:
        return Response(status_code=204)

    async def create_issue(self, request: Request) -> Response:
        if request.path_params["owner"] != "octo-org" or request.path_params["repo"] != "widgets":
            return self.not_found()
        data = await request.json()
        issue = _gh_issue(42, data["title"], "open")
        issue["body"] = data.get("body")
        issue["labels"] = [_gh_label(n, "ededed") for n in data.get("labels", [])]
        issue["assignees"] = []
        issue["comments"] = 0
        return JSONResponse(issue, 201)


# --- Gmail --------------------------------------------------------------------------------


def _headers(**values: str) -> list[dict[str, str]]:
    return [{"name": k.replace("_", "-"), "value": v} for k, v in values.items()]


def _gmail_messages() -> dict[str, dict[str, Any]]:
    plain = "Hi Ada,\n\nThe invoice for May is attached.\n\nThanks,\nBob\n" + "z" * 6000
    alternative = {
        "id": "18f1a2b3c4d5e6f7",
        "threadId": "18f1a2b3c4d5e6f7",
        "labelIds": ["UNREAD", "IMPORTANT", "INBOX"],
        "snippet": "Hi Ada, The invoice for May is attached. Thanks, Bob&#39;s team",
        "sizeEstimate": 8123,
        "historyId": "123456",
        "internalDate": "1714550400000",
        "payload": {
            "partId": "",
            "mimeType": "multipart/alternative",
            "filename": "",
            "headers": _headers(
                Delivered_To="ada@example.com",
                Received="from mail.example.com by mx.google.com",
                From="Bob Builder <bob@example.com>",
                To="ada@example.com",
                Subject="Invoice for May",
                Date="Wed, 1 May 2024 08:00:00 +0000",
                Content_Type='multipart/alternative; boundary="000000000000abc"',
            ),
            "body": {"size": 0},
            "parts": [
                {
                    "partId": "0",
                    "mimeType": "text/plain",
                    "filename": "",
                    "headers": _headers(Content_Type='text/plain; charset="UTF-8"'),
                    "body": {"size": len(plain), "data": b64url(plain)},
                },
                {
                    "partId": "1",
                    "mimeType": "text/html",
                    "filename": "",
                    "headers": _headers(Content_Type='text/html; charset="UTF-8"'),
                    "body": {"size": 60, "data": b64url("<p>Hi Ada,</p><p>HTML version</p>")},
                },
            ],
        },
    }
    html_only = {
        "id": "18f1a2b3c4d5e700",
        "threadId": "18f1a2b3c4d5e700",
        "labelIds": ["INBOX"],
        "snippet": "Your report is ready",
        "sizeEstimate": 30000,
        "historyId": "123457",
        "internalDate": "1714464000000",
        "payload": {
            "partId": "",
            "mimeType": "multipart/mixed",
            "filename": "",
            "headers": _headers(
                From="Reports <reports@example.org>",
                To="ada@example.com",
                Cc="team@example.com",
                Subject="Weekly report",
                Date="Tue, 30 Apr 2024 08:00:00 +0000",
            ),
            "body": {"size": 0},
            "parts": [
                {
                    "partId": "0",
                    "mimeType": "multipart/alternative",
                    "filename": "",
                    "headers": _headers(Content_Type="multipart/alternative; boundary=b2"),
                    "body": {"size": 0},
                    "parts": [
                        {
                            "partId": "0.0",
                            "mimeType": "text/html",
                            "filename": "",
                            "headers": _headers(Content_Type="text/html; charset=UTF-8"),
                            "body": {
                                "size": 120,
                                "data": b64url(
                                    "<html><head><style>p{color:red}</style></head><body>"
                                    "<p>Your report is&nbsp;ready &amp; attached.</p>"
                                    "<div>See you</div></body></html>"
                                ),
                            },
                        }
                    ],
                },
                {
                    "partId": "1",
                    "mimeType": "application/pdf",
                    "filename": "report.pdf",
                    "headers": _headers(Content_Type='application/pdf; name="report.pdf"'),
                    "body": {"attachmentId": "ANGjdJ8w" + "A" * 200, "size": 24000},
                },
            ],
        },
    }
    latin1 = {
        "id": "18f1a2b3c4d5e701",
        "threadId": "18f1a2b3c4d5e701",
        "labelIds": ["INBOX"],
        "snippet": "Café ce soir ?",
        "sizeEstimate": 900,
        "historyId": "123458",
        "internalDate": "1714377600000",
        "payload": {
            "partId": "",
            "mimeType": "text/plain",
            "filename": "",
            "headers": _headers(
                From="Zoé <zoe@example.fr>",
                To="ada@example.com",
                Subject="Café",
                Date="Mon, 29 Apr 2024 08:00:00 +0000",
                Content_Type="text/plain; charset=ISO-8859-1",
            ),
            "body": {"size": 14, "data": b64url("Café ce soir ?", "iso-8859-1")},
        },
    }
    return {m["id"]: m for m in (alternative, html_only, latin1)}


def _google_error(code: int, message: str, status: str, reason: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status,
        }
    }


class FakeGmail(FakeApi):
    """https://developers.google.com/workspace/gmail/api/reference/rest — users.messages."""

    prefix = "/gmail/v1"

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.messages = _gmail_messages()
        self.sent: list[email.message.EmailMessage] = []

    def routes(self) -> list[BaseRoute]:
        return [
            self.route("/users/me/messages", self.list, ["GET"]),
            self.route("/users/me/messages/send", self.send, ["POST"]),
            self.route("/users/me/messages/{id}", self.get, ["GET"]),
        ]

    def unauthorized(self) -> Response:
        return JSONResponse(
            _google_error(
                401,
                "Request had invalid authentication credentials.",
                "UNAUTHENTICATED",
                "authError",
            ),
            401,
        )

    async def list(self, request: Request) -> Response:
        limit = int(request.query_params.get("maxResults", "100"))
        ids = list(self.messages)
        if request.query_params.get("q") == "nothing-matches":
            return JSONResponse({"resultSizeEstimate": 0})
        page = [{"id": i, "threadId": self.messages[i]["threadId"]} for i in ids[:limit]]
        body: dict[str, Any] = {"messages": page, "resultSizeEstimate": len(ids)}
        if limit < len(ids):
            body["nextPageToken"] = "09876543210987654321"
        return JSONResponse(body)

    async def get(self, request: Request) -> Response:
        message = self.messages.get(request.path_params["id"])
        if message is None:
            return JSONResponse(
                _google_error(404, "Requested entity was not found.", "NOT_FOUND", "notFound"),
                404,
            )
        fmt = request.query_params.get("format", "full")
        if fmt == "metadata":
            wanted = {h.lower() for h in request.query_params.getlist("metadataHeaders")}
            payload = message["payload"]
            headers = [h for h in payload["headers"] if h["name"].lower() in wanted]
            meta = {k: v for k, v in message.items() if k != "payload"}
            meta["payload"] = {"mimeType": payload["mimeType"], "headers": headers}
            return JSONResponse(meta)
        return JSONResponse(message)

    async def send(self, request: Request) -> Response:
        raw = (await request.json())["raw"]
        parsed = email.message_from_bytes(
            base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)), policy=email.policy.default
        )
        self.sent.append(parsed)  # type: ignore[arg-type]
        return JSONResponse(
            {"id": "18f1a2b3c4d5e7ff", "threadId": "18f1a2b3c4d5e7ff", "labelIds": ["SENT"]}
        )


# --- Slack --------------------------------------------------------------------------------


def _slack_channel(cid: str, name: str, *, member: bool, private: bool = False) -> dict[str, Any]:
    return {
        "id": cid,
        "name": name,
        "is_channel": True,
        "is_group": False,
        "is_im": False,
        "is_mpim": False,
        "is_private": private,
        "created": 1449252889,
        "is_archived": False,
        "is_general": name == "general",
        "unlinked": 0,
        "name_normalized": name,
        "is_shared": False,
        "is_org_shared": False,
        "is_pending_ext_shared": False,
        "pending_shared": [],
        "context_team_id": "T12345",
        "updated": 1678229664302,
        "creator": "U012A3CDE",
        "is_ext_shared": False,
        "shared_team_ids": ["T12345"],
        "pending_connected_team_ids": [],
        "is_member": member,
        "topic": {"value": f"All about {name}", "creator": "U012A3CDE", "last_set": 0},
        "purpose": {"value": "", "creator": "", "last_set": 0},
        "previous_names": [],
        "num_members": 4,
    }


class FakeSlack(FakeApi):
    """https://docs.slack.dev/reference/methods — conversations.list, chat.postMessage."""

    prefix = "/api"
    cursor = "dGVhbTpDMDYxRkE1UEI="

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.channels = [
            _slack_channel("C012AB3CD", "general", member=True),
            _slack_channel("C061EG9T2", "random", member=True),
            _slack_channel("C061EG9SL", "announcements", member=False),
        ]

    def routes(self) -> list[BaseRoute]:
        return [
            self.route("/conversations.list", self.list, ["GET"]),
            self.route("/chat.postMessage", self.post, ["POST"]),
        ]

    def unauthorized(self) -> Response:
        return JSONResponse({"ok": False, "error": "invalid_auth"})

    async def list(self, request: Request) -> Response:
        limit = int(request.query_params.get("limit", "100"))
        start = 2 if request.query_params.get("cursor") == self.cursor else 0
        page = self.channels[start : start + min(limit, 2)]
        more = start + len(page) < len(self.channels)
        return JSONResponse(
            {
                "ok": True,
                "channels": page,
                "response_metadata": {"next_cursor": self.cursor if more else ""},
            }
        )

    async def post(self, request: Request) -> Response:
        data = await request.json()
        channel = next((c for c in self.channels if c["id"] == data.get("channel")), None)
        if channel is None:
            return JSONResponse({"ok": False, "error": "channel_not_found"})
        if not channel["is_member"]:
            return JSONResponse({"ok": False, "error": "not_in_channel"})
        message = {
            "user": "U012A3CDE",
            "type": "message",
            "ts": "1503435956.000247",
            "text": data["text"],
            "team": "T12345",
            "blocks": [{"type": "rich_text", "block_id": "abc", "elements": []}],
        }
        if data.get("thread_ts"):
            message["thread_ts"] = data["thread_ts"]
        return JSONResponse(
            {
                "ok": True,
                "channel": channel["id"],
                "ts": "1503435956.000247",
                "message": message,
                "warning": "missing_charset",
                "response_metadata": {"warnings": ["missing_charset"]},
            }
        )


# --- Notion -------------------------------------------------------------------------------

NOTION_PARENT = "59833787-2cf9-4fdf-8782-e53db20768a5"


def _rich(text: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "text",
            "text": {"content": text, "link": None},
            "annotations": {
                "bold": False,
                "italic": False,
                "strikethrough": False,
                "underline": False,
                "code": False,
                "color": "default",
            },
            "plain_text": text,
            "href": None,
        }
    ]


def _notion_user() -> dict[str, str]:
    return {"object": "user", "id": "ee5f0f84-409a-440f-983a-a5315961c6e4"}


def _notion_page(page_id: str, title: str, parent: dict[str, Any], prop: str) -> dict[str, Any]:
    slug = title.replace(" ", "-")
    page = {
        "object": "page",
        "id": page_id,
        "created_time": "2024-04-01T10:00:00.000Z",
        "last_edited_time": "2024-05-01T10:00:00.000Z",
        "created_by": _notion_user(),
        "last_edited_by": _notion_user(),
        "cover": None,
        "icon": {"type": "emoji", "emoji": "📄"},
        "parent": parent,
        "archived": False,
        "in_trash": False,
        "properties": {prop: {"id": "title", "type": "title", "title": _rich(title)}},
        "url": f"https://www.notion.so/{slug}-{page_id.replace('-', '')}",
        "public_url": None,
    }
    if prop != "title":  # a database row: its other properties come first
        page["properties"] = {
            "Status": {"id": "Z%3ClH", "type": "status", "status": None},
            **page["properties"],
        }
    return page


def _notion_database(db_id: str, title: str) -> dict[str, Any]:
    return {
        "object": "database",
        "id": db_id,
        "created_time": "2024-03-01T10:00:00.000Z",
        "last_edited_time": "2024-04-20T10:00:00.000Z",
        "title": _rich(title),
        "description": [],
        "properties": {"Name": {"id": "title", "name": "Name", "type": "title", "title": {}}},
        "parent": {"type": "page_id", "page_id": NOTION_PARENT},
        "url": f"https://www.notion.so/{db_id.replace('-', '')}",
        "archived": False,
        "is_inline": False,
    }


def _notion_error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"object": "error", "status": status, "code": code, "message": message}


class FakeNotion(FakeApi):
    """https://developers.notion.com/reference — POST /v1/search, POST /v1/pages."""

    prefix = "/v1"
    version = "2022-06-28"

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.objects = [
            _notion_page(
                NOTION_PARENT, "Meeting Notes", {"type": "workspace", "workspace": True}, "title"
            ),
            _notion_page(
                "2a2b8e2c-8c1f-4b4e-9c3f-6d2f1a0b9e11",
                "Fix login bug",
                {"type": "database_id", "database_id": "d9824bdc-8445-4327-be8b-5b47500af6ce"},
                "Name",
            ),
            _notion_database("d9824bdc-8445-4327-be8b-5b47500af6ce", "Meeting Tasks"),
        ]

    def routes(self) -> list[BaseRoute]:
        return [
            self.route("/search", self.search, ["POST"]),
            self.route("/pages", self.create, ["POST"]),
        ]

    def unauthorized(self) -> Response:
        return JSONResponse(_notion_error(401, "unauthorized", "API token is invalid."), 401)

    def _version_error(self, request: Request) -> Response | None:
        if request.headers.get("notion-version") != self.version:
            return JSONResponse(
                _notion_error(400, "missing_version", "Notion-Version header failed validation"),
                400,
            )
        return None

    @staticmethod
    def _title(obj: dict[str, Any]) -> str:
        if obj["object"] == "database":
            return obj["title"][0]["plain_text"]
        prop = next(p for p in obj["properties"].values() if p["type"] == "title")
        return prop["title"][0]["plain_text"]

    async def search(self, request: Request) -> Response:
        if error := self._version_error(request):
            return error
        data = await request.json()
        query = data.get("query", "").lower()
        wanted = (data.get("filter") or {}).get("value")
        results = [
            o
            for o in self.objects
            if query in self._title(o).lower() and (wanted is None or o["object"] == wanted)
        ]
        size = data.get("page_size", 100)
        more = len(results) > size
        return JSONResponse(
            {
                "object": "list",
                "results": results[:size],
                "next_cursor": "e6c6f8ff-c70e-4970-91b4-e2f3c8e1a1a1" if more else None,
                "has_more": more,
                "type": "page_or_database",
                "page_or_database": {},
                "request_id": "2e2f9d50-2ec1-4b4d-8d67-77e1d6c0f0a5",
            }
        )

    async def create(self, request: Request) -> Response:
        if error := self._version_error(request):
            return error
        data = await request.json()
        parent = data["parent"].get("page_id", "")
        if parent.replace("-", "") != NOTION_PARENT.replace("-", ""):
            return JSONResponse(
                _notion_error(
                    404,
                    "object_not_found",
                    f"Could not find page with ID: {parent}. Make sure the relevant pages and "
                    "databases are shared with your integration.",
                ),
                404,
            )
        title = "".join(t["text"]["content"] for t in data["properties"]["title"]["title"])
        page = _notion_page(
            "7b1d5b8e-0d3a-4c3e-9f7e-2a1b0c9d8e7f",
            title,
            {"type": "page_id", "page_id": NOTION_PARENT},
            "title",
        )
        return JSONResponse(page)


# --- Linear -------------------------------------------------------------------------------

LINEAR_TEAM = "72b2a2dc-6f4f-4423-9d34-24b5bd10634a"


def _linear_issue(number: int, title: str, state: str, assignee: str | None) -> dict[str, Any]:
    return {
        "id": f"9cfb482a-81e3-4154-b5b9-2c805e70{number:04d}",
        "identifier": f"ENG-{number}",
        "title": title,
        "url": f"https://linear.app/acme/issue/ENG-{number}/{title.lower().replace(' ', '-')}",
        "priorityLabel": "High",
        "updatedAt": "2024-05-01T09:00:00.000Z",
        "state": {"name": state, "type": "started" if state == "In Progress" else "unstarted"},
        "assignee": {"name": assignee} if assignee else None,
        "team": {"id": LINEAR_TEAM, "key": "ENG", "name": "Engineering"},
    }


def linear_error(message: str, code: str, presentable: str | None = None) -> dict[str, Any]:
    """A Linear GraphQL error body, as the API sends it."""
    extensions: dict[str, Any] = {"type": code.lower().replace("_", " "), "code": code}
    if presentable:
        extensions["userPresentableMessage"] = presentable
    return {
        "errors": [
            {"message": message, "locations": [{"line": 2, "column": 3}], "extensions": extensions}
        ],
        "data": None,
    }


class FakeLinear(FakeApi):
    """https://linear.app/developers/graphql — issues query, issueCreate mutation."""

    def __init__(self, token: str, *, authorization: str | None = None) -> None:
        super().__init__(token, authorization=authorization)
        self.issues = [
            _linear_issue(123, "Login fails on Safari", "In Progress", "Ada Lovelace"),
            _linear_issue(124, "Add dark mode", "Todo", None),
        ]

    def routes(self) -> list[BaseRoute]:
        return [self.route("/graphql", self.graphql, ["POST"])]

    def unauthorized(self) -> Response:
        return JSONResponse(
            linear_error(
                "Authentication required, not authenticated",
                "AUTHENTICATION_ERROR",
                "You need to authenticate to access this operation.",
            ),
            400,
        )

    async def graphql(self, request: Request) -> Response:
        data = await request.json()
        query, variables = data["query"], data.get("variables") or {}
        if "issueCreate" in query:
            issue_input = variables["input"]
            if issue_input["teamId"] != LINEAR_TEAM:
                return JSONResponse(
                    linear_error(
                        "Entity not found: Team", "INVALID_INPUT", "Could not find referenced Team."
                    )
                )
            created = _linear_issue(125, issue_input["title"], "Todo", None)
            return JSONResponse({"data": {"issueCreate": {"success": True, "issue": created}}})
        if "issues(" in query:
            found = list(self.issues)
            flt = variables.get("filter") or {}
            if "team" in flt:
                found = [i for i in found if i["team"]["id"] == flt["team"]["id"]["eq"]]
            if "state" in flt:
                name = flt["state"]["name"]["eqIgnoreCase"].lower()
                found = [i for i in found if i["state"]["name"].lower() == name]
            if "assignee" in flt:
                found = [i for i in found if i["assignee"]]
            first = variables.get("first", 50)
            return JSONResponse(
                {
                    "data": {
                        "issues": {
                            "nodes": found[:first],
                            "pageInfo": {
                                "hasNextPage": len(found) > first,
                                "endCursor": "a1b2c3" if found else None,
                            },
                        }
                    }
                }
            )
        return JSONResponse(
            linear_error('Cannot query field "nope" on type "Query".', "GRAPHQL_VALIDATION_FAILED"),
            400,
        )


# --- Demo ---------------------------------------------------------------------------------


class FakeDemo(FakeApi):
    """The demo provider's items API (``toolauth.demo.provider``): /api/me, /api/items."""

    prefix = "/api"

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.items = [
            {"id": "itm_1", "name": "Follow the white rabbit", "created_at": "2024-05-01T09:00Z"}
        ]

    def routes(self) -> list[BaseRoute]:
        return [
            self.route("/me", self.me, ["GET"]),
            self.route("/items", self.list, ["GET"]),
            self.route("/items", self.create, ["POST"]),
        ]

    def unauthorized(self) -> Response:
        return JSONResponse(
            {"error": "invalid_token", "error_description": "unknown or expired token"},
            401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    async def me(self, request: Request) -> Response:
        return JSONResponse(
            {
                "sub": "usr_alice",
                "name": "Alice Liddell",
                "email": "alice@example.com",
                "preferred_username": "alice",
            }
        )

    async def list(self, request: Request) -> Response:
        limit = int(request.query_params.get("limit", "50"))
        return JSONResponse({"items": self.items[:limit], "total": len(self.items)})

    async def create(self, request: Request) -> Response:
        data = await request.json()
        item = {"id": f"itm_{len(self.items) + 1}", "name": data["name"], "created_at": "now"}
        self.items.append(item)
        return JSONResponse(item, 201)
