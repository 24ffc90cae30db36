"""A remote MCP server as a toolkit, each user connected with their own OAuth grant.

    python examples/mcp_toolkit.py          # you open the printed link and sign in
    python examples/mcp_toolkit.py --auto   # a scripted browser signs in as alice

The Notes MCP server (the ``mcp`` SDK, streamable HTTP) runs on loopback as an OAuth protected
resource of the local demo provider. ``ta.toolkits.add_mcp`` discovers the provider from the
server's 401 (RFC 9728, RFC 8414); the first connect link registers toolauth's client there
(RFC 7591) and asks for tokens for the server only (RFC 8707). The user's tools then run
over one MCP session per user, with that user's token.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile

from toolauth import AsyncToolAuth, Settings
from toolauth.connect.serving import serve_app
from toolauth.demo.browser import complete_in_background
from toolauth.demo.local import local_provider
from toolauth.demo.notes_mcp import notes_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def main(auto: bool) -> None:
    async with local_provider() as demo:
        port = free_port()
        url = f"http://127.0.0.1:{port}/mcp"
        server = notes_app(url, issuer=demo.url, introspect=demo.provider.introspect)
        with tempfile.TemporaryDirectory() as home:
            settings = Settings.from_env({"TOOLAUTH_HOME": home})
            async with (
                serve_app(server, port=port),
                AsyncToolAuth(settings=settings) as ta,
                ta.serve(port=0),
            ):
                notes = await ta.toolkits.add_mcp("notes", url=url, name="Notes")
                assert notes.mcp is not None
                print(f"toolkit notes: resource {notes.mcp.resource}, issuer {notes.mcp.issuer}")
                session = ta.create("user_123", toolkits=["notes"])
                print("tools before anyone connected:", [t.name for t in session.tools()][:1])
                req = await session.authorize("notes")
                print("Connect Notes:", req.redirect_url)
                user = complete_in_background(req.redirect_url) if auto else None
                account = await req.wait_for_connection(timeout=300)
                if user is not None:
                    await asyncio.to_thread(user.join)
                print(f"{account.id} is {account.status.value}")
                added = await session.call_mcp_tool("notes", "add_note", {"title": "Croquet"})
                print("add_note ->", added.artifact["title"])
                listed = await session.call_mcp_tool("notes", "list_notes", {})
                print("list_notes ->", [n["title"] for n in listed.artifact["notes"]])
                print("tools now:", [t.name for t in session.tools()][:3])
                print("client registrations at the provider:", demo.provider.stats.registrations)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auto", action="store_true", help="sign in with a scripted browser")
    asyncio.run(main(parser.parse_args().auto))
    sys.exit(0)
