"""Client registration (RFC 7591) of managed MCP auth configs: once per issuer, also when two
processes open their first links at the same moment, and shared by toolkits of one issuer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.children import Child
from tests.mcp.conftest import Notes
from tests.mcp.test_mcp_toolkit import connect_user


async def test_two_processes_register_one_client(
    notes: Notes, home: Path, store_env: dict[str, str], extra_env: dict[str, str]
) -> None:
    """Two app processes on one store (one public URL) open their first notes links at once:
    the claim written with the store's compare-and-swap lets one register; the other waits for
    its write and sends its user to the authorization server with the same client."""
    config = await notes.ta.auth_configs.create("notes")
    env = {
        "TOOLAUTH_HOME": str(home), **store_env, **extra_env,
        "TOOLAUTH_BASE_URL": notes.base_url,
    }  # fmt: skip
    children = [await Child.start("register", env) for _ in range(2)]
    try:
        for child in children:
            await child.send(mcp_url=notes.url, auth_config_id=config.id)
        for child in children:
            assert (await child.read())["ready"]
        for child in children:
            await child.send(go=True)
        answers = await asyncio.gather(*(child.read() for child in children))
    finally:
        for child in children:
            await child.close()
    assert [a["status_code"] for a in answers] == [303, 303]
    assert answers[0]["client_id"].startswith("dyn_")
    assert answers[0]["client_id"] == answers[1]["client_id"]
    assert notes.provider.stats.registrations == 1
    stored = await notes.ta.auth_configs.get(config.id)
    assert stored.credentials["client_id"].get_secret_value() == answers[0]["client_id"]
    assert "registration_claim" not in stored.credentials  # the winner's write ended it


async def test_a_second_server_of_the_same_issuer_reuses_the_client(notes: Notes) -> None:
    """Once per issuer: a second MCP toolkit whose server names the same authorization server
    borrows the client the first one registered for this redirect URI."""
    ta = notes.ta
    await ta.toolkits.add_mcp("notes2", url=notes.url, name="Notes again")
    await connect_user(ta, "user-a", "alice")
    session = ta.create("user-b", toolkits=["notes2"])
    link = await session.authorize("notes2")
    assert link.redirect_url is not None
    async with httpx.AsyncClient() as http:
        opened = await http.get(link.redirect_url)
    assert opened.status_code == 303
    assert notes.provider.stats.registrations == 1
    (first,) = await ta.auth_configs.list(toolkit="notes")
    (second,) = await ta.auth_configs.list(toolkit="notes2")
    client_id = first.credentials["client_id"].get_secret_value()
    assert second.credentials["client_id"].get_secret_value() == client_id
    assert f"client_id={client_id}" in opened.headers["location"]
