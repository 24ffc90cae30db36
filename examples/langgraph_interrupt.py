"""Interrupt mode: the graph pauses on a connect link and resumes once the user is connected.

    python examples/langgraph_interrupt.py          # you sign in on the demo provider yourself
    python examples/langgraph_interrupt.py --auto   # a scripted browser plays the user

With `resume="interrupt"` the meta tool calls LangGraph's `interrupt()` with the link payload
instead of holding a worker while the user is away. The run ends "interrupted"; the app shows
the link (here: prints it); `resume_when_connected(agent, config, ta)` waits for the store to
report the account ACTIVE and returns the `Command(resume=...)` that continues the run. The
checkpointer keeps the paused run; with a persistent one, another process could resume it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile

from langchain.agents import create_agent
from langgraph.checkpoint.memory import InMemorySaver

from toolauth import AsyncToolAuth, Settings
from toolauth.demo.browser import complete_in_background
from toolauth.demo.local import local_provider
from toolauth.demo.model import choose_model
from toolauth.langchain import connect_link_interrupts, resume_when_connected


async def main(request: str, auto: bool) -> None:
    chosen = choose_model(os.environ)
    if chosen.note:
        print(chosen.note)
    async with local_provider() as demo:
        with tempfile.TemporaryDirectory() as home:
            settings = Settings.from_env({"TOOLAUTH_HOME": home, **demo.environ()})
            async with AsyncToolAuth(settings=settings) as ta, ta.serve(port=0) as base_url:
                demo.allow(base_url)
                session = ta.create("user_123", toolkits=["demo"], resume="interrupt")
                agent = create_agent(chosen.model, session.tools(), checkpointer=InMemorySaver())
                config = {"configurable": {"thread_id": "interrupt-example"}}

                print(f"user: {request}")
                await agent.ainvoke({"messages": [("user", request)]}, config)
                state = await agent.aget_state(config)
                for pending in connect_link_interrupts(state.interrupts):
                    link = pending.value
                    print(f"run paused (interrupt {pending.id[:8]}…) on a connect link:")
                    print(f"  Connect {link['toolkit_name']}: {link['redirect_url']}")
                    if auto:
                        print("  (--auto: a scripted browser signs in as alice and allows)")
                        complete_in_background(link["redirect_url"])
                    else:
                        print("  Open it, sign in as alice / wonderland and click Allow.")

                command = await resume_when_connected(agent, config, ta, timeout=300)
                if command is None:
                    print("the run did not need a connection")
                else:
                    print(f"connected; resuming with {command.resume}")
                    await agent.ainvoke(command, config)
                state = await agent.aget_state(config)
                print(f"\nagent: {state.values['messages'][-1].text}")
                print(f"pending interrupts: {len(state.interrupts)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("request", nargs="?", default="list my items")
    parser.add_argument("--auto", action="store_true", help="play the user with a script")
    args = parser.parse_args()
    asyncio.run(main(args.request, args.auto or not sys.stdin.isatty()))
