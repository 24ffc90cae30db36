"""Toolkit tools: small async functions over an authenticated ``httpx.AsyncClient``.

A tool never sees a token: it receives a client whose requests toolauth signs. Write your own
with :func:`toolkit_tool`, and build URL paths from the model's arguments with :func:`path`;
:func:`builtin_tools` lists the ones that ship.
"""

from ._paths import path
from ._spec import (
    ToolApiError,
    ToolSpec,
    builtin_tools,
    check_response,
    toolkit_tool,
)

__all__ = ["ToolApiError", "ToolSpec", "builtin_tools", "check_response", "path", "toolkit_tool"]
