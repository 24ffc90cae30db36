"""A simulated GitHub for the offline demo: the ``github`` toolkit pointed at local parts.

The demo keeps toolauth's real ``github`` tools (``GITHUB_LIST_REPOSITORIES``, ...) and runs
them against a small fake of GitHub's REST API served by the demo app. Sign-in goes through
the demo provider (same login and consent pages as the ``demo`` toolkit, a second OAuth app),
and the fake API accepts the demo provider's access tokens. Nothing talks to github.com.

```python
ta.catalog.register(simulated_github_toolkit(), replace=True)   # this client's catalog only
app.mount("/github-api", create_fake_github(provider))
```
"""

from __future__ import annotations

import itertools
import json
import threading
from datetime import datetime, timezone
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .provider import DemoProvider

__all__ = [
    "FAKE_GITHUB_PATH",
    "SIMULATED_GITHUB_NAME",
    "SIMULATED_GITHUB_SCOPES",
    "create_fake_github",
    "simulated_github_toolkit",
]

FAKE_GITHUB_PATH = "/github-api"
"""Where the demo app serves the fake GitHub API, below its base URL."""

SIMULATED_GITHUB_NAME = "GitHub (demo)"
"""The simulated toolkit's name: the chat's Connect button and the provider's pages carry it."""

SIMULATED_GITHUB_SCOPES: dict[str, str] = {
    "repo": "Read your public and private repositories, and open issues in them",
    "read:user": "See your profile: name, username and email address",
}
"""The scopes the real ``github`` toolkit asks for (its catalog entry), with the words the demo
provider's consent page shows for each."""

_DOCS = "https://docs.github.com/rest"

_REPOS: dict[str, list[dict[str, Any]]] = {
    "alice": [
        {"name": "wonderland-notes", "description": "Notes from down the rabbit hole",
         "language": "Markdown", "private": False},
        {"name": "tea-party", "description": "A scheduler where it is always six o'clock",
         "language": "Python", "private": False},
        {"name": "looking-glass", "description": "Mirror every repository, backwards",
         "language": "Rust", "private": True},
    ],
    "bob": [
        {"name": "roof-fixer", "description": "Can we fix it? Yes we can",
         "language": "Go", "private": False},
    ],
}  # fmt: skip


def simulated_github_toolkit() -> dict[str, Any]:
    """The ``github`` toolkit, served by the demo provider and the fake GitHub API."""
    return {
        "slug": "github",
        "name": SIMULATED_GITHUB_NAME,
        "description": "A simulated GitHub: the real GitHub tools against a local fake of "
        "GitHub's REST API; sign-in through the local demo provider. Nothing reaches github.com.",
        "categories": ["demo", "developer"],
        "api_base_url": "{base_url}" + FAKE_GITHUB_PATH,
        "default_headers": {"Accept": "application/vnd.github+json"},
        "auth_schemes": {
            "OAUTH2": {
                "authorization_url": "{demo_provider_url}/oauth/authorize",
                "token_url": "{demo_provider_url}/oauth/token",
                "revocation_url": "{demo_provider_url}/oauth/revoke",
                "userinfo_url": "{demo_provider_url}/oauth/userinfo",
                "default_scopes": list(SIMULATED_GITHUB_SCOPES),
                "token_endpoint_auth_method": "client_secret_post",
                "pkce": True,
                "issues_refresh_tokens": True,
                "test_request": {"method": "GET", "path": "/user"},
            }
        },
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _error(status: int, message: str) -> Response:
    return JSONResponse({"message": message, "documentation_url": _DOCS}, status)


class _FakeGitHub:
    """The handful of GitHub REST endpoints the built-in GitHub tools call."""

    def __init__(self, provider: DemoProvider) -> None:
        self._provider = provider
        self._lock = threading.Lock()
        self._issues: dict[str, list[dict[str, Any]]] = {}
        self._numbers = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/user", self.user, methods=["GET"]),
                Route("/user/repos", self.repos, methods=["GET"]),
                Route("/repos/{owner}/{repo}/issues", self.issues, methods=["GET", "POST"]),
            ]
        )

    async def _login(self, request: Request) -> dict[str, Any] | None:
        """The demo provider's user behind the request's Bearer token (asked in-process)."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith(("bearer ", "token ")):
            return None
        token = header.split(" ", 1)[1].strip()
        transport = httpx.ASGITransport(app=self._provider.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
            answer = await http.get("/oauth/userinfo", headers={"Authorization": f"Bearer {token}"})
        return answer.json() if answer.status_code == 200 else None

    @staticmethod
    def _repo(login: str, repo: dict[str, Any]) -> dict[str, Any]:
        full = f"{login}/{repo['name']}"
        return {
            **repo,
            "full_name": full,
            "html_url": f"https://github.example/{full}",
            "default_branch": "main",
            "updated_at": "2025-01-01T00:00:00Z",
            "owner": {"login": login},
        }

    async def user(self, request: Request) -> Response:
        who = await self._login(request)
        if who is None:
            return _error(401, "Bad credentials")
        login = who["preferred_username"]
        return JSONResponse({
            "login": login, "name": who.get("name"), "email": who.get("email"),
            "html_url": f"https://github.example/{login}", "company": None,
            "public_repos": sum(1 for r in _REPOS.get(login, []) if not r["private"]),
        })  # fmt: skip

    async def repos(self, request: Request) -> Response:
        who = await self._login(request)
        if who is None:
            return _error(401, "Bad credentials")
        login = who["preferred_username"]
        found = [self._repo(login, r) for r in _REPOS.get(login, [])]
        if request.query_params.get("sort") == "full_name":
            found.sort(key=lambda r: r["full_name"])
        return JSONResponse(found)

    async def issues(self, request: Request) -> Response:
        who = await self._login(request)
        if who is None:
            return _error(401, "Bad credentials")
        owner, repo = request.path_params["owner"], request.path_params["repo"]
        names = {r["name"] for r in _REPOS.get(owner, [])}
        if owner != who["preferred_username"] or repo not in names:
            return _error(404, "Not Found")
        key = f"{owner}/{repo}"
        if request.method == "GET":
            with self._lock:
                return JSONResponse(list(reversed(self._issues.get(key, []))))
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "Problems parsing JSON")
        title = body.get("title") if isinstance(body, dict) else None
        if not isinstance(title, str) or not title.strip():
            return _error(422, "Validation Failed: title is required")
        with self._lock:
            number = next(self._numbers)
            issue = {
                "number": number, "title": title.strip(), "state": "open",
                "body": body.get("body"), "html_url": f"https://github.example/{key}/issues/{number}",
                "user": {"login": owner}, "labels": [{"name": n} for n in body.get("labels") or []],
                "assignees": [], "comments": 0, "created_at": _now(), "updated_at": _now(),
            }  # fmt: skip
            self._issues.setdefault(key, []).append(issue)
        return JSONResponse(issue, 201)


def create_fake_github(provider: DemoProvider) -> Starlette:
    """The fake GitHub REST API, accepting ``provider``'s access tokens."""
    return _FakeGitHub(provider).app
