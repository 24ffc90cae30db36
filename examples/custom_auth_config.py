"""Connect through your own OAuth app: a custom auth config with your credentials and scopes.

    python examples/custom_auth_config.py          # you sign in on the demo provider yourself
    python examples/custom_auth_config.py --auto   # a scripted browser plays the user

With `type="use_custom_auth"` the deployment brings its own OAuth app (client id and secret,
stored encrypted) and picks the scopes; no TOOLAUTH_<TOOLKIT>_CLIENT_ID variables are needed.
Here the app asks for read-only scopes, so reading works and writing is refused by the
provider: the user granted exactly what the consent page listed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile

from toolauth import AsyncToolAuth, Settings
from toolauth.demo.browser import complete_in_background
from toolauth.demo.local import local_provider

MY_CLIENT_ID = "my-own-demo-app"
MY_CLIENT_SECRET = "my-own-demo-app-secret"  # registered on the local provider below


async def main(auto: bool) -> None:
    async with local_provider() as demo:
        with tempfile.TemporaryDirectory() as home:
            # Only where the provider runs: no managed OAuth app in the environment.
            settings = Settings.from_env(
                {"TOOLAUTH_HOME": home, "TOOLAUTH_DEMO_PROVIDER_URL": demo.url}
            )
            async with AsyncToolAuth(settings=settings) as ta, ta.serve(port=0) as base_url:
                # Your OAuth app at the provider, with toolauth's callback as redirect URI.
                demo.provider.register_client(
                    MY_CLIENT_ID, MY_CLIENT_SECRET, [f"{base_url}/oauth/callback"]
                )
                config = await ta.auth_configs.create(
                    "demo", type="use_custom_auth", name="My Demo App", auth_scheme="OAUTH2",
                    credentials={"client_id": MY_CLIENT_ID, "client_secret": MY_CLIENT_SECRET},
                    scopes=["profile", "items:read"],
                )  # fmt: skip
                print(f"auth config {config.id}: {config.name}, scopes {list(config.scopes)}")
                shown = repr(config) + config.model_dump_json()
                print(f"  client secret visible in repr or JSON: {MY_CLIENT_SECRET in shown}")

                req = await ta.connected_accounts.link("user_123", config.id)
                print(f"\nConnect link: {req.redirect_url}")
                if auto:
                    print("(--auto: a scripted browser signs in as alice and allows)")
                    complete_in_background(req.redirect_url)
                else:
                    print("Open it, sign in as alice / wonderland and click Allow.")
                account = await req.wait_for_connection(timeout=300)
                print(f"account {account.id} is {account.status.value}")

                async with await ta.connected_accounts.http_client(account.id) as client:
                    me = (await client.get("/me")).json()
                    print(f"GET /me    -> {me['name']} <{me['email']}>")
                    items = (await client.get("/items")).json()["items"]
                    print(f"GET /items -> {[i['name'] for i in items]}")
                    refused = await client.post("/items", json={"name": "Not allowed"})
                    print(f"POST /items -> {refused.status_code} {refused.json()['error']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auto", action="store_true", help="play the user with a script")
    args = parser.parse_args()
    asyncio.run(main(args.auto or not sys.stdin.isatty()))
