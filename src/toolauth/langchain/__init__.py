"""LangChain integration: toolkit tools, the ``COMPOSIO_MANAGE_CONNECTIONS`` meta tool, the
``COMPOSIO_WAIT_FOR_CONNECTIONS`` tool and LangGraph interrupt helpers.

Imported on first use (``session.tools()``), so ``import toolauth`` stays light.
"""

from ._connections import CONNECT_LINK_EVENT, link_payload
from ._interrupts import connect_link_interrupts, resume_when_connected
from ._tools import ManageConnectionsTool, ToolkitTool, WaitForConnectionsTool, session_tools

__all__ = [
    "CONNECT_LINK_EVENT",
    "ManageConnectionsTool",
    "ToolkitTool",
    "WaitForConnectionsTool",
    "connect_link_interrupts",
    "link_payload",
    "resume_when_connected",
    "session_tools",
]
