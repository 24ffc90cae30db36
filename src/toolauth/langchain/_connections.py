"""The meta tool's work: check toolkits, hand out connect links, wait or interrupt.

Runs on the caller's loop; the session's methods hop onto the client's loop themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import (
    ConnectionFailedError,
    ConnectionRequiredError,
    ConnectionTimeoutError,
    ScopeRequiredError,
    ToolAuthError,
)
from ..events import Actor, acting_as
from ..resources.connection_requests import ConnectionRequest

if TYPE_CHECKING:
    from ..resources.sessions import Session

__all__ = ["CONNECT_LINK_EVENT", "Emit", "connection_required", "link_payload", "manage"]

CONNECT_LINK_EVENT = "toolauth.connect_link"
Emit = Callable[[dict[str, Any]], Awaitable[None]]


def link_payload(req: ConnectionRequest, name: str) -> dict[str, Any]:
    """The typed, versioned payload of a connect link (custom events, artifacts, interrupts)."""
    return {
        "type": CONNECT_LINK_EVENT,
        "v": 1,
        "toolkit": req.toolkit,
        "toolkit_name": name,
        "redirect_url": req.redirect_url,
        "connection_request_id": req.id,
        "link_id": req.link_id,
        "connected_account_id": req.connected_account_id,
        "expires_at": req.expires_at.isoformat() if req.expires_at else None,
    }


def _entry(toolkit: str, status: str, **values: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "toolkit": toolkit,
        "status": status,
        "has_active_connection": status == "active",
        "redirect_url": None,
        "instruction": "",
        "connected_account_id": None,
        "auth_config_id": None,
        "error_message": None,
        "was_reinitiated": False,
        "connected_as": None,
    }
    entry.update(values)
    return entry


def _instruction_active(name: str, connected_as: str | None = None) -> str:
    who = f" as {connected_as}" if connected_as else ""
    return f"{name} is connected{who}. Go ahead and use its tools."


def _instruction_link(name: str, url: str) -> str:
    return (
        f"Show the user this link to connect {name}: {url} . It opens {name}'s own sign-in "
        "page; the link is single-use and expires soon."
    )


async def connection_required(
    session: Session, toolkit: str, emit: Emit, exc: ConnectionRequiredError | None = None
) -> dict[str, Any]:
    """What a toolkit tool returns when the user has not connected its toolkit yet, or when
    the account lacks a scope (``ScopeRequiredError``: a step-up link for the same account)."""
    name = session.toolkit(toolkit).name
    if isinstance(exc, ScopeRequiredError) and exc.connected_account_id is not None:
        return await _step_up(session, toolkit, name, exc, emit)
    try:
        req = await session.authorize(toolkit)
    except ToolAuthError as exc:
        return _entry(toolkit, "failed", error_message=exc.message, instruction=(
            f"{name} cannot be connected right now: {exc.message}"
        ))  # fmt: skip
    if req.redirect_url is None:  # connected in the meantime
        return _entry(toolkit, "active", connected_account_id=req.connected_account_id,
                      instruction=f"{name} is connected now; call the tool again.")  # fmt: skip
    await emit(link_payload(req, name))
    config_id = req.auth_config_id
    return {
        **_entry(
            toolkit, "initiated", redirect_url=req.redirect_url,
            connected_account_id=req.connected_account_id, auth_config_id=config_id,
            instruction=_instruction_link(name, req.redirect_url)
            + f" Then call {session.manage_connections_tool_name} to wait for it, or try "
            "again once the user has connected.",
        ),
        "error": "connection_required",
    }  # fmt: skip


async def _step_up(
    session: Session, toolkit: str, name: str, exc: ScopeRequiredError, emit: Emit
) -> dict[str, Any]:
    assert exc.connected_account_id is not None
    what = ", ".join(exc.scopes) or "more access"
    try:
        req = await session.step_up(exc.connected_account_id, exc.scopes)
    except ToolAuthError as failed:
        return _entry(toolkit, "failed", error_message=failed.message, instruction=(
            f"{name} needs a permission the account lacks ({what}), and a link to grant it "
            f"could not be made: {failed.message}"
        ))  # fmt: skip
    if req.redirect_url is None:
        return _entry(
            toolkit, "active", connected_account_id=req.connected_account_id,
            instruction=f"{name} has the permission now; call the tool again.",
        )  # fmt: skip
    await emit(link_payload(req, name))
    return {
        **_entry(
            toolkit, "initiated", redirect_url=req.redirect_url,
            connected_account_id=req.connected_account_id, auth_config_id=req.auth_config_id,
            connected_as=req.identity.display if req.identity is not None else None,
            instruction=f"The user's {name} account needs one more permission for this "
            f"({what}). Show the user this link to grant it: {req.redirect_url} . It is for "
            f"the same account; everything else keeps working meanwhile. Then call "
            f"{session.manage_connections_tool_name} to wait, or try again once they have.",
        ),
        "error": "scope_required",
        "missing_scopes": list(exc.scopes),
    }  # fmt: skip


async def manage(
    session: Session,
    toolkits: Sequence[str],
    *,
    reinitiate_all: bool,
    emit: Emit,
    mode: str,
    interrupt: Callable[[dict[str, Any]], Any] | None = None,
    alias: str | None = None,
) -> dict[str, Any]:
    """Check each toolkit; link the missing ones; then wait, interrupt or return (as the
    agent: links it opens are the agent's doing in the audit log). With ``alias``: link one
    more account of each toolkit, under that name."""
    with acting_as(Actor.AGENT, session.manage_connections_tool_name):
        return await _manage(
            session, toolkits, reinitiate_all=reinitiate_all, emit=emit, mode=mode,
            interrupt=interrupt, alias=alias,
        )  # fmt: skip


async def _manage(
    session: Session,
    toolkits: Sequence[str],
    *,
    reinitiate_all: bool,
    emit: Emit,
    mode: str,
    interrupt: Callable[[dict[str, Any]], Any] | None = None,
    alias: str | None = None,
) -> dict[str, Any]:
    slugs = [session.check_toolkit(t) for t in dict.fromkeys(toolkits)]  # ValidationError lists
    entries: dict[str, dict[str, Any]] = {}
    requests: dict[str, ConnectionRequest] = {}
    for slug in slugs:
        name = session.toolkit(slug).name
        conn = await session.connection(slug)
        if conn.has_active_connection and not reinitiate_all and alias is None:
            entries[slug] = _entry(
                slug, "active", connected_account_id=conn.connected_account_id,
                auth_config_id=conn.auth_config_id, connected_as=conn.connected_as,
                instruction=_instruction_active(name, conn.connected_as),
            )  # fmt: skip
            if conn.accounts:
                entries[slug]["accounts"] = conn.accounts
            continue
        try:
            req = await session.authorize(
                slug, reinitiate=reinitiate_all and conn.has_active_connection, alias=alias
            )
        except ToolAuthError as exc:
            entries[slug] = _entry(
                slug,
                "failed",
                error_message=exc.message,
                instruction=f"{name} cannot be connected: {exc.message}",
            )
            continue  # fmt: skip
        config_id = req.auth_config_id
        if req.redirect_url is None:
            who = req.identity.display if req.identity is not None else None
            entries[slug] = _entry(
                slug, "active", connected_account_id=req.connected_account_id,
                auth_config_id=config_id, connected_as=who,
                instruction=_instruction_active(name, who),
            )  # fmt: skip
            continue
        requests[slug] = req
        entries[slug] = _entry(
            slug, "initiated", redirect_url=req.redirect_url,
            connected_account_id=req.connected_account_id, auth_config_id=config_id,
            instruction=_instruction_link(name, req.redirect_url),
            was_reinitiated=bool(reinitiate_all and conn.has_active_connection),
        )  # fmt: skip
    for slug, req in requests.items():
        await emit(link_payload(req, session.toolkit(slug).name))
    if requests and mode == "wait":
        await _wait_all(session, requests, entries)
    elif requests and mode == "interrupt":
        assert interrupt is not None
        answers = {
            slug: _ask(interrupt, link_payload(req, session.toolkit(slug).name), req)
            for slug, req in requests.items()
        }  # pauses the graph at the first link with no answer yet
        for slug in requests:  # resumed: see where each one stands now
            await _refresh_entry(session, slug, entries, answers[slug])
    return _summarise(session, entries, mode)


def _ask(interrupt: Callable[[dict[str, Any]], Any], payload: dict[str, Any],
         req: ConnectionRequest) -> Any:  # fmt: skip
    """``interrupt(payload)``, skipping answers meant for another account's link.

    LangGraph hands resume values out by position within the tool call. On a re-run, links
    finished earlier (now active, so no longer asked about) leave their answers first in line.
    """
    answer = interrupt(payload)
    while isinstance(answer, dict) and answer.get("connected_account_id") not in (
        None,
        req.connected_account_id,
    ):
        answer = interrupt(payload)
    return answer


async def _wait_all(
    session: Session, requests: dict[str, ConnectionRequest], entries: dict[str, dict[str, Any]]
) -> None:

    async def wait_one(slug: str, req: ConnectionRequest) -> None:
        name = session.toolkit(slug).name
        try:
            account = await req.wait_for_connection(session.wait_timeout)
        except ConnectionTimeoutError:
            entries[slug]["instruction"] = (
                f"The user has not connected {name} yet. Remind them of the link "
                f"{req.redirect_url} or call this tool again later."
            )
            return
        except ConnectionFailedError as exc:
            entries[slug].update(
                status="failed", redirect_url=None, error_message=exc.reason or exc.message,
                instruction=f"Connecting {name} failed ({exc.reason}). Ask the user whether to "
                "try again; calling this tool again makes a new link.",
            )  # fmt: skip
            return
        who = account.identity.display if account.identity is not None else None
        entries[slug].update(
            status="active", has_active_connection=True, redirect_url=None,
            connected_account_id=account.id, connected_as=who,
            instruction=_instruction_active(name, who),
        )  # fmt: skip

    async with anyio.create_task_group() as group:
        for slug, req in requests.items():
            group.start_soon(wait_one, slug, req)


async def _refresh_entry(
    session: Session, slug: str, entries: dict[str, dict[str, Any]], answer: Any = None
) -> None:
    conn = await session.connection(slug)
    name = session.toolkit(slug).name
    # The answer resume_when_connected gave: a failed flow is reported as failed even though
    # this re-run of the tool already holds a fresh link for the next try.
    failed = isinstance(answer, dict) and answer.get("status") in ("FAILED", "EXPIRED", "INACTIVE")
    if conn.has_active_connection:
        entries[slug].update(
            status="active", has_active_connection=True, redirect_url=None,
            connected_account_id=conn.connected_account_id, connected_as=conn.connected_as,
            instruction=_instruction_active(name, conn.connected_as),
        )  # fmt: skip
    elif failed or conn.status in ("failed", "expired", "inactive"):
        reason = (answer.get("reason") if failed else None) or conn.reason
        entries[slug].update(
            status="failed", redirect_url=None, error_message=reason,
            instruction=f"Connecting {name} failed ({reason}). Ask the user whether to try "
            "again; calling this tool again shows a link.",
        )  # fmt: skip
    elif entries[slug]["redirect_url"]:
        entries[slug]["instruction"] = (
            f"The user has not connected {name} yet. Remind them of the link "
            f"{entries[slug]['redirect_url']} or call this tool again later."
        )


def _summarise(session: Session, entries: dict[str, dict[str, Any]], mode: str) -> dict[str, Any]:
    results = list(entries.values())
    counts = {
        s: sum(1 for e in results if e["status"] == s) for s in ("active", "initiated", "failed")
    }
    if counts["initiated"] and mode == "return":
        message = (
            "Show the user the connect link(s) below. Call this tool again after they connect "
            "to check."
        )
    elif counts["initiated"]:
        message = "Some toolkits are still waiting for the user to connect them."
    elif counts["failed"]:
        message = "Some toolkits could not be connected; see error_message."
    else:
        message = "All requested toolkits are connected."
    return {
        "results": results,
        "summary": {"total": len(results), **counts},
        "message": message,
    }
