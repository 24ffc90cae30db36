"""What toolauth's MCP toolkit adds to one MCP tool call.

The demo provider and the Notes MCP server (``toolauth.demo.notes_mcp``, the ``mcp`` SDK over
streamable HTTP, an OAuth protected resource of the provider) run in their own process on
loopback. This process calls the server's ``list_notes`` tool three ways:

    plain mcp ClientSession        the SDK's streamable HTTP client with a fixed Bearer token
                                   (a token issued for the server, RFC 8707), initialized once
    session.call_mcp_tool          toolauth: the user's account, its token applied by toolauth,
                                   its MCP session opened on first use and reused
    NOTES_LIST_NOTES tool.ainvoke  the LangChain tool over the same session

and checks that toolauth opened one MCP session (one ``initialize``) for all its calls.

Run: .venv/bin/python bench/mcp_overhead.py [--calls 500] [--warmup 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _timing import measure_interleaved  # bench/ (the script's folder is on sys.path)

CLIENT_ID = "bench-mcp-client"
CLIENT_SECRET = "bench-mcp-client-secret"


# -- the server process -----------------------------------------------------------------------


async def _serve_both() -> None:
    import socket

    from toolauth.connect.serving import serve_app
    from toolauth.demo.notes_mcp import notes_app
    from toolauth.demo.provider import DemoProvider, ProviderConfig

    with socket.socket() as probe:  # a free port for the Notes server, whose URL it serves
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = DemoProvider(ProviderConfig(access_token_ttl=86_400))
    demo.register_client(CLIENT_ID, CLIENT_SECRET, ["http://127.0.0.1/callback"])
    notes_url = f"http://127.0.0.1:{port}/mcp"
    async with serve_app(demo.app) as provider_url:
        app = notes_app(notes_url, issuer=provider_url, introspect=demo.introspect)
        async with serve_app(app, port=port):
            tokens = demo.issue_tokens("alice", client_id=CLIENT_ID, resource=notes_url)
            started = {"provider": provider_url, "notes": notes_url, "tokens": tokens}
            print(json.dumps(started), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF


# -- the measurements -------------------------------------------------------------------------


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))]


def _bench(calls: int, warmup: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        started = json.loads(proc.stdout.readline())
        asyncio.run(_run(started["notes"], started["tokens"], calls, warmup))
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=10)


async def _run(notes_url: str, tokens: dict[str, Any], calls: int, warmup: int) -> None:
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from toolauth import AsyncToolAuth, Settings

    home = Path(tempfile.mkdtemp(prefix="toolauth-bench-"))
    settings = Settings.from_env({"TOOLAUTH_HOME": str(home)})
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with (
        AsyncToolAuth(settings=settings) as ta,
        httpx2.AsyncClient(headers=bearer) as http,
        streamable_http_client(notes_url, http_client=http) as (read, write),
        ClientSession(read, write) as plain,
    ):
        await plain.initialize()
        await ta.toolkits.add_mcp("notes", url=notes_url, name="Notes")
        config = await ta.auth_configs.create(
            "notes",
            type="use_custom_auth",
            credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        )
        await ta.connected_accounts.create(
            "alice", config.id,
            credentials={k: tokens[k] for k in ("access_token", "refresh_token")},
        )  # fmt: skip
        session = ta.create("alice", toolkits=["notes"])
        await session.mcp_tools("notes")  # lists them: the session's tools are named
        tool = {t.name: t for t in session.tools()}["NOTES_LIST_NOTES"]

        async def plain_call() -> None:
            result = await plain.call_tool("list_notes", {})
            assert not result.is_error
            assert result.structured_content is not None

        async def toolauth_call() -> None:
            result = await session.call_mcp_tool("notes", "list_notes", {})
            assert result.artifact["total"] >= 1

        async def tool_call() -> None:
            content = await tool.ainvoke({})
            assert "Tea party" in content

        variants = {
            "plain mcp ClientSession": plain_call,
            "session.call_mcp_tool": toolauth_call,
            "NOTES_LIST_NOTES tool.ainvoke": tool_call,
        }
        samples = await measure_interleaved(variants, calls, warmup)
        opened = ta.mcp_sessions().opened

    base, _ = _stats(samples["plain mcp ClientSession"])
    print(f"MCP tools/call list_notes on loopback; {calls} calls each after {warmup} warm-up")
    print(f"{'variant':32} {'p50 ms':>8} {'p99 ms':>8} {'x plain':>8}")
    for name, values in samples.items():
        median, p99 = _stats(values)
        print(f"{name:32} {median * 1e3:8.3f} {p99 * 1e3:8.3f} {median / base:8.2f}")
    total = (calls + warmup) * 2
    print(f"toolauth MCP sessions opened (initialize) for {total} calls: {opened}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve_both())
    else:
        _bench(args.calls, args.warmup)


if __name__ == "__main__":
    main()
