"""A toolkit discovered in one process is used by every process of the deployment (issue 16):
real OS processes on one store (SQLite file, PostgreSQL schema), the demo provider on loopback,
the real ``toolauth serve`` command."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.children import ROOT, Child
from tests.conftest import Backend, ServedProvider, read_rows
from tests.helpers import Browser, until
from toolauth import AsyncToolAuth, CatalogError, ConfigurationError, ConflictError, Settings
from toolauth.connect.serving import serve_app

CLIENT_ID = "acme-idp-app"
CLIENT_SECRET = "acme-idp-secret-SENTINEL"


class TokenCounter:
    """The demo provider's app, counting the token requests that reach it at this address."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.token_requests = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/oauth/token":
            self.token_requests += 1
        await self.app(scope, receive, send)


class Serve:
    """``python -m toolauth serve --port 0`` in a process of its own."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, env: dict[str, str]) -> Serve:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "toolauth", "serve", "--port", "0",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("TOOLAUTH_")},
                **env,
                "PYTHONPATH": str(ROOT / "src"),  # this checkout's toolauth
            },
        )  # fmt: skip
        return cls(proc)

    async def url(self) -> str:
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode()
        if not line:
            assert self.proc.stderr is not None
            raise AssertionError((await self.proc.stderr.read()).decode(errors="replace"))
        assert line.startswith("toolauth connect app on "), line
        return line.split(" on ", 1)[1].split(";", 1)[0]

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@pytest.fixture
async def second_address(
    served_provider: ServedProvider,
) -> AsyncIterator[tuple[str, TokenCounter]]:
    """The same demo provider (same users, clients and tokens) at a second address: what an
    endpoint change moves a toolkit to."""
    counter = TokenCounter(served_provider.demo.app)
    async with serve_app(counter) as url:
        yield url, counter


async def ask(child: Child, **order: Any) -> dict[str, Any]:
    await child.send(**order)
    answer = await child.read(timeout=30)
    assert "error" not in answer, answer
    return answer


@pytest.mark.slow
async def test_a_toolkit_discovered_in_one_process_serves_refreshes_and_runs_in_others(
    home: Path,
    store_env: dict[str, str],
    served_provider: ServedProvider,
    second_address: tuple[str, TokenCounter],
) -> None:
    demo, first = served_provider.demo, served_provider.url
    second, second_tokens = second_address
    env = {
        "TOOLAUTH_HOME": str(home),
        **store_env,
        "TOOLAUTH_ACME_IDP_CLIENT_ID": CLIENT_ID,
        "TOOLAUTH_ACME_IDP_CLIENT_SECRET": CLIENT_SECRET,
    }
    # The test's own client makes the store (and, on SQLite, the key file) before the others.
    async with AsyncToolAuth(settings=Settings.from_env(env)) as ta:
        await ta.store()
        serve = await Serve.start(env)  # process 2: started before the toolkit exists
        children: list[Child] = []
        try:
            url = await serve.url()
            demo.register_client(CLIENT_ID, CLIENT_SECRET, [f"{url}/oauth/callback"])
            shared = {**env, "TOOLAUTH_BASE_URL": url}
            discoverer, user = Child.start("worker", shared), Child.start("worker", shared)
            children = [await discoverer, await user]
            one, three = children
            await asyncio.gather(one.read(), three.read())

            # Process 1 discovers the toolkit and makes a link for it.
            found = await ask(
                one, do="discover", slug="acme_idp", issuer=first, api_base_url=f"{first}/api"
            )
            assert found["token_url"] == f"{first}/oauth/token"
            link = await ask(one, do="link", user_id="alice-user", toolkit="acme_idp")

            # Process 2 (toolauth serve) completes it: it never registered the toolkit.
            browser = Browser()
            try:
                landing = await browser.oauth_consent(f"{url}/link/{link['link_id']}")
            finally:
                await browser.aclose()
            assert landing.response.status_code == 200, landing.response.text
            account_id = link["connected_account_id"]
            assert (await ta.connected_accounts.get(account_id)).is_active

            # Process 3 refreshes the token and runs a tool of the toolkit.
            assert (await ask(three, do="refresh", account_id=account_id))["status"] == "ACTIVE"
            ran = await ask(three, do="tool", user_id="alice-user", toolkit="acme_idp")
            assert "alice" in str(ran["result"])
            assert second_tokens.token_requests == 0

            # Process 1 discovers the toolkit again at its new address; process 3, still
            # running, refreshes at the new token endpoint, and process 2's link pages send
            # users to the new authorization endpoint.
            moved = await ask(
                one, do="discover", slug="acme_idp", issuer=second,
                api_base_url=f"{second}/api", replace=True,
            )  # fmt: skip
            assert moved["token_url"] == f"{second}/oauth/token"
            assert (await ask(three, do="refresh", account_id=account_id))["status"] == "ACTIVE"
            assert second_tokens.token_requests == 1
            ran = await ask(three, do="tool", user_id="bob-user", toolkit="acme_idp")
            assert ran["result"]  # bob has not connected: the tool says so, nothing crashes
            again = await ask(one, do="link", user_id="bob-user", toolkit="acme_idp")
            async with httpx.AsyncClient() as http:
                page = await http.get(f"{url}/link/{again['link_id']}")
            assert page.status_code in (302, 303), page.text
            assert page.headers["location"].startswith(f"{second}/oauth/authorize?")
            # Definitions are not secret, and no secret is stored with them.
            rows = read_rows(ta.settings.database_url, "SELECT definition FROM toolkits")
            assert rows and CLIENT_SECRET not in str(rows)
        finally:
            for child in children:
                await child.close()
            await serve.stop()


# -- the change feed, the store, and what a process does with a bad row ---------------------


def acme(**changes: Any) -> dict[str, Any]:
    return {
        "slug": "acme", "name": "Acme", "description": "An API.", "api_base_url": "https://acme.test",
        "auth_schemes": {"BEARER_TOKEN": {
            "fields": [{"name": "token", "label": "Token"}],
            "placements": [{"in": "header", "name": "Authorization", "format": "Bearer {token}"}],
        }},
        **changes,
    }  # fmt: skip


@pytest.fixture
async def other(settings: Settings) -> AsyncIterator[AsyncToolAuth]:
    """A second client on the same store, with a connection of its own (as another process)."""
    async with AsyncToolAuth(settings=settings) as client:
        yield client


async def test_changes_reach_another_client_through_the_change_feed(
    ta: AsyncToolAuth, settings: Settings
) -> None:
    await ta.toolkits.register(acme())
    # Opens with a stored toolkit: loads it, then follows changes (a connection of its own).
    async with AsyncToolAuth(settings=settings) as other:
        assert other.toolkits.source("acme") == "registered"
        await ta.toolkits.register(acme(slug="acme_two"))
        await until(lambda: "acme_two" in other.catalog)

        await ta.toolkits.register(acme(name="Acme v2"), replace=True)
        await until(lambda: other.toolkits.get("acme").name == "Acme v2")
        assert other.catalog.stored_version("acme") == ("registered", 2)

        assert await ta.toolkits.remove("acme") == []
        await until(lambda: "acme" not in other.catalog)


async def test_a_slug_not_seen_yet_is_read_from_the_store_before_it_is_refused(
    ta: AsyncToolAuth, other: AsyncToolAuth
) -> None:
    await other.store()  # nothing stored yet: it does not follow the feed
    await ta.toolkits.register(acme())
    assert "acme" not in other.catalog
    config = await other.auth_configs.create("acme")
    assert config.toolkit == "acme" and "acme" in other.catalog
    with pytest.raises(ConfigurationError, match="Unknown toolkit 'nothing'"):
        await other.auth_configs.create("nothing")
    # Having looked it up, it follows changes from now on.
    await ta.toolkits.register(acme(name="Acme v2"), replace=True)
    await until(lambda: other.toolkits.get("acme").name == "Acme v2")


async def test_updating_a_config_of_a_toolkit_not_seen_yet_reads_it_from_the_store(
    ta: AsyncToolAuth, other: AsyncToolAuth
) -> None:
    await other.store()
    await ta.toolkits.register(acme())
    config = await ta.auth_configs.create("acme")
    assert "acme" not in other.catalog
    updated = await other.auth_configs.update(config.id, name="Acme for everyone")
    assert updated.name == "Acme for everyone" and "acme" in other.catalog


async def test_the_same_definition_again_changes_nothing_and_another_needs_replace(
    ta: AsyncToolAuth, backend: Backend
) -> None:
    first = await ta.toolkits.register(acme())
    assert await ta.toolkits.register(acme()) == first
    store = await ta.store()
    row = await store.get_toolkit("acme")
    assert row is not None and row.version == 1 and row.source == "registered"
    with pytest.raises(ConflictError, match=r"already stored .*replace=True"):
        await ta.toolkits.register(acme(name="Other"))
    assert ta.toolkits.get("acme").name == "Acme"
    await ta.toolkits.register(acme(name="Other"), replace=True)
    row = await store.get_toolkit("acme")
    assert row is not None and row.version == 2
    assert ta.toolkits.get("acme").name == "Other"


async def test_a_built_in_is_overridden_only_when_asked_and_it_is_logged(
    ta: AsyncToolAuth, caplog: pytest.LogCaptureFixture
) -> None:
    data = ta.toolkits.get("github").model_dump(mode="json", by_alias=True, exclude_none=True)
    data["name"] = "GitHub Enterprise"
    with pytest.raises(ConfigurationError, match=r"github.json.*override=True"):
        await ta.toolkits.register(data)
    assert ta.toolkits.get("github").name == "GitHub"
    with caplog.at_level(logging.WARNING, logger="toolauth.toolkits"):
        await ta.toolkits.register(data, override=True)
    assert ta.toolkits.get("github").name == "GitHub Enterprise"
    assert ta.toolkits.source("github") == "registered"
    assert any(
        "overridden" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records
    )
    await ta.toolkits.remove("github")  # the override goes; the built-in comes back
    assert ta.toolkits.get("github").name == "GitHub"
    assert ta.toolkits.source("github") == "builtin"
    with pytest.raises(ConfigurationError, match="github.json"):
        await ta.toolkits.remove("github")


async def test_remove_is_refused_while_auth_configs_use_the_toolkit(
    ta: AsyncToolAuth, other: AsyncToolAuth
) -> None:
    await ta.toolkits.register(acme())
    config = await ta.auth_configs.create("acme")
    with pytest.raises(ConflictError, match=f"auth config\\(s\\) {config.id}.*force=True"):
        await ta.toolkits.remove("acme")
    assert "acme" in ta.catalog
    await other.store()
    assert await ta.toolkits.remove("acme", force=True) == [config.id]
    assert "acme" not in ta.catalog
    await until(lambda: "acme" not in other.catalog)
    with pytest.raises(
        ConfigurationError, match=r"No stored toolkit 'acme' \(stored toolkits: none\)"
    ):
        await ta.toolkits.remove("acme")


async def test_a_bad_stored_row_is_an_error_naming_its_slug_not_a_crash(
    settings: Settings, backend: Backend
) -> None:
    async with AsyncToolAuth(settings=settings) as ta:
        await ta.toolkits.register(acme(slug="acme_two"))
        # A row this release cannot read (as a newer release may write: a required field
        # gone), stored with the key; and one whose JSON names another slug.
        store = await ta.store()
        await store.put_toolkit("acme", source="registered", replace=False,
                                definition='{"slug": "acme", "name": "Acme"}')  # fmt: skip
        await store.put_toolkit("acme_three", source="registered", replace=False,
                                definition=json.dumps(acme(slug="github")))  # fmt: skip
    # Edited by hand, without the key: its MAC no longer verifies.
    await backend.execute(
        "UPDATE toolkits SET definition = replace(definition, 'acme.test', 'evil.test') "
        "WHERE slug = 'acme_two'"
    )
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("toolauth.toolkits")
    logger.addHandler(handler)
    try:
        async with AsyncToolAuth(settings=settings) as ta:
            await ta.store()  # opens, loads every row: the bad ones do not stop it
            assert ta.toolkits.get("github").name == "GitHub"
            with pytest.raises(CatalogError) as bad:
                await ta.auth_configs.create("acme")
            assert "toolkit 'acme'" in str(bad.value) and "api_base_url" in str(bad.value)
            assert "toolauth toolkits remove acme --force" in str(bad.value)
            with pytest.raises(CatalogError, match="its definition says slug 'github'"):
                ta.toolkits.get("acme_three")
            with pytest.raises(CatalogError, match="without the encryption key"):
                ta.toolkits.get("acme_two")
            assert await ta.toolkits.remove("acme", force=True) == []
    finally:
        logger.removeHandler(handler)
    logged = [r.getMessage() for r in records]
    assert any("toolkit 'acme'" in m for m in logged)
    assert any("toolkit 'acme_two'" in m for m in logged)
    assert any("toolkit 'acme_three'" in m for m in logged)
