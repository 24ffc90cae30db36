"""LangGraph helpers for ``resume="interrupt"``: find toolauth's pending interrupts, wait for
the store to report the accounts ACTIVE, and build the ``Command`` that resumes the graph."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import ConnectionFailedError, ConnectionTimeoutError
from ._connections import CONNECT_LINK_EVENT

if TYPE_CHECKING:
    from .._client import AsyncToolAuth

__all__ = ["connect_link_interrupts", "resume_when_connected"]


def connect_link_interrupts(interrupts: Iterable[Any]) -> list[Any]:
    """The interrupts (``langgraph.types.Interrupt``) that carry a toolauth connect link."""
    return [
        i
        for i in interrupts
        if isinstance(getattr(i, "value", None), dict) and i.value.get("type") == CONNECT_LINK_EVENT
    ]


async def resume_when_connected(
    graph: Any, config: Any, client: AsyncToolAuth, *, timeout: float | None = None
) -> Any:
    """Wait until every pending connect link of the graph's run is finished, then return the
    ``Command(resume={interrupt_id: result, ...})`` to pass to ``graph.ainvoke``.

    Returns ``None`` when the run is not waiting on a connect link. Parallel tool calls that
    share one link are resumed together; a failed or timed-out connection resumes with its
    status, so the tool reports it to the model.
    """
    from langgraph.types import Command

    snapshot = await graph.aget_state(config)
    pending = connect_link_interrupts(getattr(snapshot, "interrupts", ()) or ())
    if not pending:
        return None
    outcomes: dict[str, dict[str, Any]] = {}

    async def wait(account_id: str) -> None:
        try:
            await client.connected_accounts.wait_for_connection(account_id, timeout=timeout)
            outcomes[account_id] = {"status": "ACTIVE", "connected_account_id": account_id}
        except ConnectionFailedError as exc:
            outcomes[account_id] = {"status": exc.status, "connected_account_id": account_id,
                                    "reason": exc.reason}  # fmt: skip
        except ConnectionTimeoutError:
            outcomes[account_id] = {"status": "INITIATED", "connected_account_id": account_id,
                                    "reason": "timed out"}  # fmt: skip

    accounts = {i.value["connected_account_id"] for i in pending}
    async with anyio.create_task_group() as group:
        for account_id in accounts:
            group.start_soon(wait, account_id)
    return Command(resume={i.id: outcomes[i.value["connected_account_id"]] for i in pending})
