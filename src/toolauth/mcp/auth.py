"""The user's credentials on MCP requests: an ``httpx2.Auth`` over ``AccountAuth``.

The ``mcp`` SDK's streamable HTTP client takes an ``httpx2.AsyncClient``. httpx2 is httpx's
fork with the same ``Request``/``Response`` surface, so the one ``AccountAuth`` flow (origin
check, refresh before expiry, refresh once and retry once on 401, RFC 6750 §3.1) drives it
unchanged: nothing about tokens is written twice.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx2

from .._exceptions import ToolAuthError
from ..oauth.protected_resource import bearer_challenge
from ..resources.account_auth import AccountAuth

__all__ = ["McpAuth"]


class McpAuth(httpx2.Auth):
    """Signs MCP requests as one connected account. Never shows a token in its ``repr``.

    ``failure`` keeps the toolauth error that stopped a request (the SDK reports only a
    broken connection), ``challenge`` the last 401's Bearer parameters (RFC 6750 §3).
    """

    requires_request_body = True

    def __init__(self, inner: AccountAuth) -> None:
        self.inner = inner
        self.failure: ToolAuthError | None = None
        self.challenge: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"McpAuth(account_id={self.inner.account_id!r})"

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response]:
        raise RuntimeError("toolauth's MCP auth works with httpx2.AsyncClient only.")
        yield request  # pragma: no cover

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        flow: Any = self.inner.async_auth_flow(request)  # type: ignore[arg-type]
        try:
            sent = await flow.__anext__()
            while True:
                response = yield sent
                if response.status_code == 401:
                    self.challenge = bearer_challenge(response.headers.get("www-authenticate"))
                else:
                    self.challenge = None
                try:
                    sent = await flow.asend(response)
                except StopAsyncIteration:
                    return
        except ToolAuthError as exc:
            self.failure = exc
            raise
