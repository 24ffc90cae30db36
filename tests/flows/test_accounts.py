"""Several accounts per toolkit: aliases (unique per user and toolkit), one default (settable),
and toolkit tools that take an ``account`` only when there is a choice, over real HTTP against
the demo provider, on both stores."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Connect
from tests.helpers import Browser
from toolauth import AccountChoiceError, ConflictError, ValidationError
from toolauth._models import ConnectionStatus

PASSWORDS = {"alice": "wonderland", "bob": "builder"}


async def add_account(connect: Connect, browser: Browser, user: str, alias: str | None) -> str:
    config = (await connect.ta.auth_configs.list(toolkit="demo")) or [
        await connect.ta.auth_configs.create("demo")
    ]
    req = await connect.ta.connected_accounts.link("app-user", config[0].id, alias=alias)
    assert req.redirect_url is not None
    landing = await browser.oauth_consent(req.redirect_url, username=user, password=PASSWORDS[user])
    assert landing.response.status_code == 200, landing.response.text[:300]
    return req.connected_account_id


async def profile(tool, **args) -> dict:
    content = await tool.ainvoke({"name": "x", "args": args, "id": "1", "type": "tool_call"})
    return json.loads(content.content)


async def test_an_alias_adds_an_account_and_the_first_one_stays_the_default(
    connect: Connect, browser: Browser
) -> None:
    first = await add_account(connect, browser, "alice", None)
    second = await add_account(connect, browser, "bob", "personal")

    assert first != second
    a = await connect.ta.connected_accounts.get(first)
    b = await connect.ta.connected_accounts.get(second)
    assert a.is_active and b.is_active
    assert a.is_default and not b.is_default
    assert (a.alias, b.alias) == (None, "personal")
    assert b.identity is not None and b.identity.login == "bob"
    session = connect.ta.create("app-user", toolkits=["demo"])
    assert (await session.account("demo")).id == first
    assert (await session.account("demo", "personal")).id == second
    assert (await session.account("demo", "BOB@example.com")).id == second
    assert (await session.account("demo", "alice")).id == first
    assert (await session.account("demo", second)).id == second


async def test_aliases_are_unique_per_user_and_toolkit(connect: Connect, browser: Browser) -> None:
    second = await add_account(connect, browser, "bob", "work")
    config = (await connect.ta.auth_configs.list(toolkit="demo"))[0]
    other = await connect.ta.auth_configs.create("demo", name="another demo app")

    again = await connect.ta.connected_accounts.link("app-user", config.id, alias="work")
    assert again.redirect_url is None and again.connected_account_id == second  # the same one
    with pytest.raises(ConflictError, match="already has the alias 'work'"):
        await connect.ta.connected_accounts.link("app-user", other.id, alias="work")
    with pytest.raises(ValidationError, match="alias must be"):
        await connect.ta.connected_accounts.link("app-user", config.id, alias="work/../1")
    # Another user may use the same alias.
    theirs = await connect.ta.connected_accounts.link("other-user", config.id, alias="work")
    assert theirs.redirect_url is not None and theirs.connected_account_id != second


async def test_the_default_is_settable(connect: Connect, browser: Browser) -> None:
    first = await add_account(connect, browser, "alice", "work")
    second = await add_account(connect, browser, "bob", "personal")

    chosen = await connect.ta.connected_accounts.set_default(second)

    assert chosen.is_default
    assert not (await connect.ta.connected_accounts.get(first)).is_default
    session = connect.ta.create("app-user", toolkits=["demo"])
    assert (await session.account("demo")).id == second
    await connect.ta.connected_accounts.set_default(first)
    assert (await connect.ta.create("app-user", toolkits=["demo"]).account("demo")).id == first


async def test_tools_offer_an_account_argument_only_when_there_is_a_choice(
    connect: Connect, browser: Browser
) -> None:
    await add_account(connect, browser, "alice", "work")
    session = connect.ta.create("app-user", toolkits=["demo"])
    tool = {t.name: t for t in session.tools()}["DEMO_GET_PROFILE"]
    await session.toolkits()
    assert "account" not in tool.tool_call_schema.model_json_schema()["properties"]

    await add_account(connect, browser, "bob", "personal")
    (conn,) = await session.toolkits()

    schema = tool.tool_call_schema.model_json_schema()
    assert "account" in schema["properties"]
    assert "personal (bob@example.com)" in schema["properties"]["account"]["description"]
    assert {c["alias"] for c in conn.accounts} == {"work", "personal"}
    assert (await profile(tool))["preferred_username"] == "alice"  # the default
    assert (await profile(tool, account="personal"))["preferred_username"] == "bob"
    assert (await profile(tool, account="bob@example.com"))["preferred_username"] == "bob"


async def test_an_unknown_or_ambiguous_account_gets_a_choice_list_never_a_guess(
    connect: Connect, browser: Browser
) -> None:
    default = await add_account(connect, browser, "alice", None)
    await add_account(connect, browser, "alice", "work")
    await add_account(connect, browser, "bob", "personal")
    session = connect.ta.create("app-user", toolkits=["demo"])
    tool = {t.name: t for t in session.tools()}["DEMO_GET_PROFILE"]

    named = await tool.ainvoke({"name": "x", "args": {"account": "nobody"}, "id": "1",
                                "type": "tool_call"})  # fmt: skip
    assert named.status == "error"
    assert "No connected demo account is named 'nobody'" in named.content
    assert "work (alice@example.com)" in named.content
    assert "personal (bob@example.com)" in named.content
    # "alice" is the login of two accounts: both are offered, neither is picked.
    with pytest.raises(AccountChoiceError) as found:
        await session.account("demo", "alice")
    assert len(found.value.choices) == 2
    # Without a default (it was disabled) and with aliases in play, no call guesses.
    await connect.ta.connected_accounts.disable(default)
    ambiguous = await tool.ainvoke({"name": "x", "args": {}, "id": "2", "type": "tool_call"})
    assert ambiguous.status == "error"
    assert "several demo accounts and none is the default" in ambiguous.content
    for account in await connect.ta.connected_accounts.list(user_id="app-user"):
        for secret in account.credentials.values():
            assert secret.get_secret_value() not in ambiguous.content
    assert (await connect.ta.connected_accounts.get(default)).status is ConnectionStatus.INACTIVE
