"""Notes (MCP demo): a remote MCP server protected by the demo OAuth provider.

Built with the ``mcp`` SDK's ``MCPServer`` and served over streamable HTTP. It is an OAuth
protected resource (MCP authorization, 2025-06-18): a request without a valid token gets a
401 whose ``WWW-Authenticate`` names its RFC 9728 metadata, which names the demo provider as
its authorization server. Tokens are checked by introspection (RFC 7662) and must have been
issued for this server's URL (RFC 8707 ``resource``). Each user sees only their own notes.

```python
provider = DemoProvider()
app = notes_app("http://127.0.0.1:9000/mcp", issuer=provider_url, introspect=provider.introspect)
async with serve_app(app, port=9000): ...
```
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import AnyHttpUrl, BaseModel

__all__ = ["Note", "NotesStore", "notes_app"]

Introspect = Callable[[str], dict[str, Any] | Awaitable[dict[str, Any]]]


class Note(BaseModel):
    id: str
    title: str
    body: str


class NotesList(BaseModel):
    notes: list[Note]
    total: int


class NotesStore:
    """Everyone's notes, in memory, by user."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notes: dict[str, list[Note]] = {
            "alice": [Note(id="n_1", title="Tea party", body="Bring jam tarts.")],
            "bob": [Note(id="n_2", title="Roof", body="Order new tiles.")],
        }
        self.calls = 0  # tool calls served (for tests and benchmarks)

    def list(self, user: str) -> list[Note]:
        with self._lock:
            self.calls += 1
            return list(self._notes.get(user, []))

    def add(self, user: str, title: str, body: str) -> Note:
        note = Note(id="n_" + secrets.token_hex(4), title=title, body=body)
        with self._lock:
            self.calls += 1
            self._notes.setdefault(user, []).append(note)
        return note


class _Introspecting:
    """An SDK ``TokenVerifier`` over an introspection function (RFC 7662)."""

    def __init__(self, introspect: Introspect) -> None:
        self._introspect = introspect

    async def verify_token(self, token: str) -> AccessToken | None:
        found = self._introspect(token)
        answer = found if isinstance(found, dict) else await found
        if not answer.get("active"):
            return None
        return AccessToken(
            token=token,
            client_id=str(answer.get("client_id", "")),
            scopes=str(answer.get("scope", "")).split(),
            expires_at=answer.get("exp"),
            resource=answer.get("aud"),
            subject=str(answer.get("username") or answer.get("sub") or ""),
        )


def _user(public: bool) -> str:
    if public:
        return "anonymous"
    token = get_access_token()
    if token is None or not token.subject:  # the bearer middleware lets no one else in
        raise ToolError("not signed in")
    return token.subject


@contextlib.contextmanager
def _logging_left_alone() -> Iterator[None]:
    """The SDK's ``MCPServer`` calls ``logging.basicConfig`` when built; a library must not
    configure the application's logging, so the root logger is put back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def notes_app(
    url: str,
    *,
    issuer: str | None,
    introspect: Introspect | None,
    store: NotesStore | None = None,
) -> Any:
    """The Notes MCP server as an ASGI app serving ``url`` (its path is the MCP endpoint),
    trusting tokens from ``issuer`` that ``introspect`` reports active and issued for ``url``;
    with neither, a public server (no auth, one shared ``anonymous`` notebook)."""
    notes = store if store is not None else NotesStore()
    public = introspect is None or issuer is None
    with _logging_left_alone():  # the SDK calls logging.basicConfig
        server = MCPServer(
            "Notes (MCP demo)",
            instructions="A small notes app: list and add the signed-in user's notes.",
            token_verifier=None if public else _Introspecting(introspect),  # type: ignore[arg-type]
            auth=None
            if public
            else AuthSettings(
                issuer_url=AnyHttpUrl(issuer),  # type: ignore[arg-type]
                resource_server_url=AnyHttpUrl(url),
                validate_token_resource=True,  # RFC 8707: tokens for another resource are refused
                required_scopes=None,
            ),
        )

    @server.tool(description="List the user's notes (title and body of each).")
    def list_notes() -> NotesList:
        found = notes.list(_user(public))
        return NotesList(notes=found, total=len(found))

    @server.tool(description="Add a note for the user; returns the new note.")
    def add_note(title: str, body: str = "") -> Note:
        if not title.strip():
            raise ToolError("title must not be empty")
        return notes.add(_user(public), title.strip(), body)

    @server.tool(description="Delete every note. Not available in the demo.")
    def delete_all_notes() -> str:
        raise ToolError("deleting notes is disabled in the demo")

    path = "/" + url.split("://", 1)[1].split("/", 1)[1] if url.count("/") > 2 else "/mcp"
    app = server.streamable_http_app(streamable_http_path=path)
    app.state.notes = notes
    return app
