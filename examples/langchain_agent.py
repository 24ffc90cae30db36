"""A LangChain agent that asks for the user's permission in the middle of a run.

    python examples/langchain_agent.py          # you sign in on the demo provider yourself
    python examples/langchain_agent.py --auto   # a scripted browser plays the user

The agent gets `session.tools()`: the Demo toolkit's tools and the meta tool
COMPOSIO_MANAGE_CONNECTIONS. Its first tool call finds Demo not connected; the connect link
goes out as a custom stream event; the meta tool waits until the user has granted access; the
agent carries on in the same run. The model is scripted (no LLM, offline) unless
TOOLAUTH_DEMO_MODEL names one `init_chat_model` can build, e.g. `openai:gpt-4o-mini`.
Everything runs on loopback against toolauth's local demo OAuth provider.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from toolauth import AsyncToolAuth, Settings
from toolauth.demo.browser import complete_in_background
from toolauth.demo.local import local_provider
from toolauth.demo.model import choose_model


def show(message: object) -> None:
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            print(f"  agent calls {call['name']}({json.dumps(call['args'])})")
        if message.text:
            print(f"\nagent: {message.text}")
    elif isinstance(message, ToolMessage):
        print(f"  {message.name} -> {str(message.content)[:110]}")


async def main(request: str, auto: bool) -> None:
    chosen = choose_model(os.environ)
    if chosen.note:
        print(chosen.note)
    async with local_provider() as demo:  # the "third-party app", on loopback
        with tempfile.TemporaryDirectory() as home:
            settings = Settings.from_env({"TOOLAUTH_HOME": home, **demo.environ()})
            async with AsyncToolAuth(settings=settings) as ta, ta.serve(port=0) as base_url:
                demo.allow(base_url)  # the provider accepts {base_url}/oauth/callback
                session = ta.create("user_123", toolkits=["demo"])  # resume="wait"
                agent = create_agent(chosen.model, session.tools(), checkpointer=InMemorySaver())
                config = {"configurable": {"thread_id": "example"}}
                print(f"user: {request}")
                shown: set[str] = set()  # the tool and the meta tool both send the link
                async for mode, data in agent.astream(
                    {"messages": [("user", request)]}, config, stream_mode=["updates", "custom"]
                ):
                    if mode == "custom" and data.get("type") == "toolauth.connect_link":
                        if data["connection_request_id"] in shown:
                            continue
                        shown.add(data["connection_request_id"])
                        print(f"\n  Connect {data['toolkit_name']}: {data['redirect_url']}")
                        if auto:
                            print("  (--auto: a scripted browser signs in as alice and allows)\n")
                            complete_in_background(data["redirect_url"])
                        else:
                            print("  Open it, sign in as alice / wonderland and click Allow.\n")
                    elif mode == "updates":
                        for update in data.values():
                            for message in (update or {}).get("messages", []):
                                show(message)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("request", nargs="?", default="list my items")
    parser.add_argument("--auto", action="store_true", help="play the user with a script")
    args = parser.parse_args()
    asyncio.run(main(args.request, args.auto or not sys.stdin.isatty()))
