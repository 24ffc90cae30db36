"""An API-key toolkit: the user pastes a key into toolauth's form, never into the chat.

    python examples/api_key_toolkit.py          # you paste the printed key into the form
    python examples/api_key_toolkit.py --auto   # a scripted browser fills the form

The Demo toolkit also has an API_KEY scheme. A connect link for it renders a form (fields from
the catalog), checks the key against the provider's test endpoint (GET /me) before storing it
encrypted, and the account turns ACTIVE. A wrong key is refused on the form and nothing is
stored. Then the agent-facing tools work with the key applied as the X-API-Key header.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import sys
import tempfile
from pathlib import Path

from toolauth import AsyncToolAuth, Settings
from toolauth.demo.browser import submit_key_form
from toolauth.demo.local import local_provider


def appears_in_files(secret: str, folder: Path) -> bool:
    """Whether ``secret`` is anywhere in the files of ``folder`` (database, WAL, key file)."""
    return any(secret.encode() in p.read_bytes() for p in folder.iterdir() if p.is_file())


async def main(auto: bool) -> None:
    async with local_provider() as demo:
        key = demo.issue_api_key("alice")  # what the user would copy from the provider
        with tempfile.TemporaryDirectory() as home:
            settings = Settings.from_env({"TOOLAUTH_HOME": home, **demo.environ()})
            async with AsyncToolAuth(settings=settings) as ta, ta.serve(port=0):
                config = await ta.auth_configs.create("demo", auth_scheme="API_KEY")
                fields = ta.toolkits.get("demo").auth_schemes[config.auth_scheme].fields
                print(f"auth config {config.id}: {config.auth_scheme.value}, form fields "
                      f"{[f.name for f in fields]}")  # fmt: skip
                req = await ta.connected_accounts.link("user_123", config.id)
                print(f"Connect link: {req.redirect_url}")
                if auto:
                    wrong = await asyncio.to_thread(
                        submit_key_form, req.redirect_url, {"api_key": "demo_not-a-real-key"}
                    )
                    alert = re.search(r'role="alert">(.*?)<', wrong.text, re.S)
                    why = html.unescape(alert.group(1).strip()) if alert else "?"
                    print(f"  a wrong key -> HTTP {wrong.status_code}, the form says: {why}")
                    page = await asyncio.to_thread(
                        submit_key_form, req.redirect_url, {"api_key": key}
                    )
                    print(f"  the right key -> HTTP {page.status_code}")
                else:
                    print(f"Open it and paste this key: {key}")
                account = await req.wait_for_connection(timeout=300)
                print(f"account {account.id} is {account.status.value}")

                session = ta.create("user_123", toolkits=["demo"])
                tools = {t.name: t for t in session.tools()}
                profile = await tools["DEMO_GET_PROFILE"].ainvoke({})
                print(f"DEMO_GET_PROFILE -> {profile}")
                created = await tools["DEMO_CREATE_ITEM"].ainvoke({"name": "Paint the roses red"})
                print(f"DEMO_CREATE_ITEM -> {created}")
                found = await asyncio.to_thread(appears_in_files, key, Path(home))
                print(f"the key appears in the database files as plain text: {found}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auto", action="store_true", help="play the user with a script")
    args = parser.parse_args()
    asyncio.run(main(args.auto or not sys.stdin.isatty()))
