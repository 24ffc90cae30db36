"""One user can never reach another user's account: not through a session (its tools, its
client, authorize, a pinned account id), not through a link, not through the status API.

Covered elsewhere: a link for A never connects B and B's waiters stay asleep
(``tests/flows/test_oauth_links.py::test_a_link_for_user_a_never_connects_user_b``); B's tools
ask B to connect and B's agent sees only B's data, a pinned foreign account is refused by the
tools, ``client`` and ``authorize`` (``tests/agents/test_isolation.py``).
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from langchain_core.callbacks import AsyncCallbackHandler

from tests.conftest import Connect
from tests.flows.support import APP_CALLBACK, query_of
from tests.helpers import Browser, until_waiting
from tests.security.conftest import row
from toolauth import ConfigurationError, ConnectionRequiredError
from toolauth._models import LinkStatus


async def connect_a(connect: Connect, browser: Browser, user: str = "user-a"):
    """User A's ACTIVE demo account, connected through a real link."""
    session = connect.ta.create(user, toolkits=["demo"])
    req = await session.authorize("demo", callback_url=APP_CALLBACK)
    await browser.oauth_consent(req.redirect_url)
    return await req.wait_for_connection(timeout=5), req


def call(tool: Any, args: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "tool_call", "id": "call-1", "name": tool.name, "args": args or {}}


class Events(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.custom: list[Any] = []

    async def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.custom.append(data)


async def test_user_b_waiting_in_the_meta_tool_never_wakes_with_as_account(
    connect: Connect, browser: Browser
) -> None:
    """B's agent waits in ``COMPOSIO_MANAGE_CONNECTIONS`` (wait mode) and in the wait tool
    while A finishes A's own link: B's tools come back not connected, with B's own link."""
    ta = connect.ta
    alice = ta.create("user-a", toolkits=["demo"])
    a_req = await alice.authorize("demo", callback_url=APP_CALLBACK)
    bob = ta.create("user-b", toolkits=["demo"], wait_timeout=1.0)
    tools = {t.name: t for t in bob.tools()}
    events = Events()
    results: dict[str, Any] = {}

    async def b_waits_in_the_meta_tool() -> None:
        message = await tools["COMPOSIO_MANAGE_CONNECTIONS"].ainvoke(
            call(tools["COMPOSIO_MANAGE_CONNECTIONS"], {"toolkits": ["demo"]}),
            config={"callbacks": [events]},
        )
        results["meta"] = message

    store = await ta.store()

    async def b_waits_in_the_wait_tool() -> None:
        await until_waiting(store, 1)  # the meta tool made B's link and waits on it
        message = await tools["COMPOSIO_WAIT_FOR_CONNECTIONS"].ainvoke(
            call(tools["COMPOSIO_WAIT_FOR_CONNECTIONS"], {"toolkits": ["demo"], "mode": "any"})
        )
        results["wait"] = message

    async with anyio.create_task_group() as tg:
        tg.start_soon(b_waits_in_the_meta_tool)
        tg.start_soon(b_waits_in_the_wait_tool)
        await until_waiting(store, 2)  # both of B's waits are registered
        landing = await browser.oauth_consent(a_req.redirect_url)
        assert query_of(landing.url)["status"] == "success"

    a_account = await a_req.wait_for_connection(timeout=1)
    meta = results["meta"].artifact["results"][0]
    assert meta["status"] == "initiated" and not meta["has_active_connection"]
    assert meta["connected_account_id"] != a_account.id
    assert a_req.link_id not in meta["redirect_url"]
    waited = results["wait"].artifact
    assert waited["all_active"] is False
    assert waited["results"][0]["connected_account_id"] == meta["connected_account_id"]
    assert [e["connection_request_id"] for e in events.custom] != [a_req.id]
    assert a_account.id not in json.dumps([results["meta"].content, results["wait"].content])
    b_account = await ta.connected_accounts.get(meta["connected_account_id"])
    assert b_account.user_id == "user-b" and not b_account.is_active


async def test_user_b_cannot_read_use_refresh_or_delete_as_account_through_a_session(
    connect: Connect, browser: Browser
) -> None:
    """Every way a session offers, with and without A's id pinned: B never gets A's account,
    and A's row is not written at all (same version, same ciphertext)."""
    ta, provider = connect.ta, connect.provider
    a_account, a_req = await connect_a(connect, browser)
    a_row, a_link_row = (
        row(ta, "connected_accounts", a_account.id),
        row(ta, "connection_links", a_req.link_id),
    )
    provider.reset_stats()

    # B without a pin: everything is about B's own (missing) account.
    bob = ta.create("user-b", toolkits=["demo"], resume="return")
    assert await bob.account("demo") is None
    with pytest.raises(ConnectionRequiredError):
        await bob.client("demo")
    tools = {t.name: t for t in bob.tools()}
    for name in ("DEMO_GET_PROFILE", "DEMO_LIST_ITEMS", "DEMO_CREATE_ITEM"):
        args = {"name": "from B"} if name == "DEMO_CREATE_ITEM" else {}
        message = await tools[name].ainvoke(call(tools[name], args))
        assert message.artifact["error"] == "connection_required"
        assert message.artifact["connected_account_id"] != a_account.id
    meta = await tools["COMPOSIO_MANAGE_CONNECTIONS"].ainvoke(
        call(tools["COMPOSIO_MANAGE_CONNECTIONS"], {"toolkits": ["demo"], "reinitiate_all": True})
    )
    b_id = meta.artifact["results"][0]["connected_account_id"]
    assert b_id != a_account.id
    for reinitiate in (False, True):
        req = await bob.authorize("demo", reinitiate=reinitiate)
        assert req.connected_account_id == b_id and req.link_id != a_req.link_id
    connection = await bob.connection("demo")
    assert connection.connected_account_id == b_id and not connection.has_active_connection

    # B pinning A's account id: every entry point refuses, naming the reason.
    thief = ta.create(
        "user-b", toolkits=["demo"], resume="wait", wait_timeout=0.5,
        connected_accounts={"demo": a_account.id},
    )  # fmt: skip
    for attempt in (
        thief.account("demo"), thief.connection("demo"), thief.toolkits(), thief.client("demo"),
        thief.authorize("demo"), thief.authorize("demo", reinitiate=True),
    ):  # fmt: skip
        with pytest.raises(ConfigurationError, match="does not belong"):
            await attempt
    stolen = {t.name: t for t in thief.tools()}
    for name, args in (
        ("DEMO_LIST_ITEMS", {}), ("DEMO_CREATE_ITEM", {"name": "x"}), ("DEMO_GET_PROFILE", {}),
        ("COMPOSIO_MANAGE_CONNECTIONS", {"toolkits": ["demo"], "reinitiate_all": True}),
        ("COMPOSIO_WAIT_FOR_CONNECTIONS", {"toolkits": ["demo"]}),
    ):  # fmt: skip
        message = await stolen[name].ainvoke(call(stolen[name], args))
        assert message.status == "error", (name, message.content)
        assert "does not belong" in message.content
        assert "white rabbit" not in message.content.lower()

    assert row(ta, "connected_accounts", a_account.id) == a_row
    assert row(ta, "connection_links", a_req.link_id) == a_link_row
    assert provider.stats.api_requests == 0  # nothing ran with A's token
    assert provider.stats.refresh_requests == 0 and provider.stats.revocations == 0
    alice = ta.create("user-a", toolkits=["demo"])
    items = await alice.tools(tools=["DEMO_LIST_ITEMS"])[0].ainvoke({})
    assert "white rabbit" in items.lower()


async def test_as_link_is_useless_to_b(connect: Connect, browser: Browser) -> None:
    """Links are bearer links: whoever finishes A's link connects *A's* account (with their
    own provider login). B's session gains nothing from it: still no account, still asked to
    connect, and A's link id reaches nothing of B's."""
    ta = connect.ta
    alice = ta.create("user-a", toolkits=["demo"])
    a_req = await alice.authorize("demo", callback_url=APP_CALLBACK)
    bob = ta.create("user-b", toolkits=["demo"], resume="return")

    landing = await browser.oauth_consent(a_req.redirect_url, username="bob", password="builder")

    assert query_of(landing.url)["connected_account_id"] == a_req.connected_account_id
    assert (await ta.connected_accounts.get(a_req.connected_account_id)).user_id == "user-a"
    assert await bob.account("demo") is None
    with pytest.raises(ConnectionRequiredError):
        await bob.client("demo")
    [tool] = bob.tools(tools=["DEMO_LIST_ITEMS"], meta_tools=False)
    needed = (await tool.ainvoke(call(tool))).artifact
    assert needed["error"] == "connection_required"
    assert needed["connected_account_id"] != a_req.connected_account_id
    assert a_req.link_id not in needed["redirect_url"]
    assert await ta.connected_accounts.list(user_id="user-b", status="ACTIVE") == []
    # A finished link cannot be used again by anyone.
    again = await browser.http.get(a_req.redirect_url)
    assert again.status_code == 410


@pytest.mark.parametrize("outcome", ["completed", "failed", "expired", "key_form"])
async def test_the_status_endpoint_never_names_the_user_or_a_secret(
    connect: Connect, browser: Browser, paused: Browser, outcome: str
) -> None:
    ta = connect.ta
    user = "user-A-SENTINEL-7f3a"
    scheme = "API_KEY" if outcome == "key_form" else None
    config = await ta.auth_configs.create("demo", auth_scheme=scheme)
    req = await ta.connected_accounts.link(
        user, config.id, callback_url=APP_CALLBACK, ttl=1 if outcome == "expired" else None
    )
    if outcome == "completed":
        await browser.oauth_consent(req.redirect_url)
    elif outcome == "failed":
        await browser.oauth_consent(req.redirect_url, decision="deny")
    elif outcome == "expired":
        await paused.http.get(req.redirect_url)  # a state and verifier exist, then time runs out
        await anyio.sleep(1.1)
    else:
        await browser.http.get(req.redirect_url)  # a CSRF token exists
    link = await (await ta.store()).get_link(req.link_id)
    account = await ta.connected_accounts.get(req.connected_account_id)
    hidden = [user, *(v.get_secret_value() for v in link.secrets.values())]
    hidden += [v.get_secret_value() for v in account.credentials.values() if len(v) > 8]

    async with httpx.AsyncClient() as http:
        response = await http.get(f"{connect.base_url}/api/links/{req.link_id}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id", "toolkit", "status", "connected_account_id", "connected_account_status",
        "expires_at", "error",
    }  # fmt: skip
    assert body["status"] == {
        "completed": LinkStatus.COMPLETED, "failed": LinkStatus.FAILED,
        "expired": LinkStatus.EXPIRED, "key_form": LinkStatus.PENDING,
    }[outcome].value  # fmt: skip
    assert response.headers["cache-control"] == "no-store"
    for value in hidden:
        assert value not in response.text
