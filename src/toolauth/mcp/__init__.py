"""Remote MCP servers as toolkits: the MCP client hop, signed as each user.

- :mod:`.auth`: the user's token on every MCP request (``httpx2.Auth`` over
  :class:`~toolauth.resources.account_auth.AccountAuth`: refresh before expiry and once after
  a 401, credentials only to the server's origin). No SDK token store is shared between users.
- :mod:`.sessions`: one MCP session per (user's account, server), reused across calls and
  closed when idle (``TOOLAUTH_MCP_IDLE_TIMEOUT``) or when the account stops being ACTIVE.
- :mod:`.results`: MCP tool results as what a tool returns (``isError`` → ``ToolApiError``).

Loaded on first use: it needs the ``mcp`` SDK (``pip install 'toolauth[mcp]'``).
"""

from .results import McpResult, tool_result
from .sessions import McpSessions

__all__ = ["McpResult", "McpSessions", "tool_result"]
