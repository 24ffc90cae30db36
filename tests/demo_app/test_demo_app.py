"""The demo app over real HTTP: the agent's stream, connect links, the simulated GitHub, and
the page's security headers. The user's part is the scripted browser on the provider's pages."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
from pathlib import Path

import httpx
import pytest

from toolauth.demo.app import SESSION_COOKIE
from toolauth.demo.browser import BrowserError, complete_in_background, complete_oauth
from toolauth.demo.model import ScriptedDemoModel, choose_model, intent_of

from .conftest import clean_env, start_demo


async def signed_in(http: httpx.AsyncClient, url: str) -> dict[str, str]:
    """Open the chat page, as a person does first: the browser is signed in (a cookie)."""
    page = await http.get(f"{url}/")
    assert page.status_code == 200
    return {SESSION_COOKIE: page.cookies[SESSION_COOKIE]}


async def chat(url: str, message: str, thread: str = "thread-0001", *, consent: bool = True):
    """Send one message from a signed-in browser; play that user (the same cookies) for every
    connect link. The events, in order."""
    events, users = [], []
    async with httpx.AsyncClient(timeout=30) as http:
        cookies = await signed_in(http, url)
        events = await _turn(http, url, message, thread, cookies if consent else None, users)
    for user in users:  # the user's browser may still be following the last redirect
        await asyncio.to_thread(user.join, 10)
        assert not user.is_alive() and user.error is None, user.error
    return events


async def _turn(http, url, message, thread, cookies, users, **options):
    events = []
    async with http.stream(
        "POST", f"{url}/api/chat", json={"thread_id": thread, "message": message}
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for block in _blocks(response):
            events.append(block)
            if block["type"] == "connect_link" and cookies is not None:
                users.append(
                    complete_in_background(
                        block["redirect_url"], delay=0.05, cookies=cookies, **options
                    )
                )
    return events


async def _blocks(response: httpx.Response):
    buffer = ""
    async for text in response.aiter_text():
        buffer += text
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            data = [line[6:] for line in block.splitlines() if line.startswith("data: ")]
            if data:
                yield json.loads("\n".join(data))


def kinds(events):
    return [(e["type"], e.get("name")) for e in events if e["type"] != "token"]


async def test_first_use_links_waits_and_answers_in_one_turn(demo_app):
    _, url = demo_app
    events = await chat(url, "list my items")
    assert kinds(events) == [
        ("tool_start", "DEMO_LIST_ITEMS"),
        ("connect_link", None),
        ("tool_end", "DEMO_LIST_ITEMS"),
        ("tool_start", "COMPOSIO_MANAGE_CONNECTIONS"),
        ("tool_end", "COMPOSIO_MANAGE_CONNECTIONS"),
        ("tool_start", "DEMO_LIST_ITEMS"),
        ("tool_end", "DEMO_LIST_ITEMS"),
        ("message", None),
        ("done", None),
    ]
    link = events[1]
    assert link["toolkit_name"] == "Demo"
    assert link["redirect_url"] == f"{url}/link/{link['link_id']}"
    assert "Follow the white rabbit" in events[-2]["text"]
    async with httpx.AsyncClient() as http:
        await signed_in(http, url)
        status = (await http.get(f"{url}/api/links/{link['link_id']}")).json()
        assert (status["status"], status["connected_account_status"]) == ("COMPLETED", "ACTIVE")
        connections = (await http.get(f"{url}/api/connections")).json()["connections"]
    assert {c["toolkit"]: c["status"] for c in connections} == {
        "demo": "active", "github": "not_connected", "notes": "not_connected",
    }  # fmt: skip
    # No token reaches the page: not in the stream, not in any tool result.
    assert "access_token" not in json.dumps(events)


async def test_connected_users_get_straight_answers_in_the_same_thread(demo_app):
    _, url = demo_app
    await chat(url, "show my demo profile")
    events = await chat(url, "create an item called Buy milk")
    assert kinds(events)[:2] == [
        ("tool_start", "DEMO_CREATE_ITEM"),
        ("tool_end", "DEMO_CREATE_ITEM"),
    ]
    assert events[0]["args"] == {"name": "Buy milk"}
    assert "connect_link" not in [e["type"] for e in events]
    events = await chat(url, "list my items")
    assert "Buy milk" in events[-2]["text"]


async def test_github_is_a_second_oauth_app_on_the_fake_api(demo_app):
    demo, url = demo_app
    events = await chat(url, "list my github repos", "thread-gh-01")
    link = next(e for e in events if e["type"] == "connect_link")
    assert link["toolkit"] == "github" and link["toolkit_name"] == "GitHub (demo)"
    # The link asked for what the real GitHub toolkit asks for, and the user granted it.
    (account,) = await demo.ta.connected_accounts.list(user_id="demo-user", toolkit="github")
    assert account.scopes == ("repo", "read:user")
    answer = events[-2]["text"]
    assert "alice/tea-party" in answer and "alice/looking-glass (private)" in answer
    events = await chat(url, "who am I on github", "thread-gh-01")
    assert "alice (Alice Liddell)" in events[-2]["text"]
    # The fake API refuses anything but the demo provider's tokens.
    async with httpx.AsyncClient() as http:
        refused = await http.get(
            f"{url}/github-api/user/repos", headers={"Authorization": "Bearer x"}
        )
    assert refused.status_code == 401 and refused.json()["message"] == "Bad credentials"


async def test_the_page_links_end_on_promises_only_what_it_knows(demo_app):
    """It cannot tell whether a chat turn still waits (Stop may have ended it), so it sends
    the user back to the chat, whose card says what happens next; its mark is drawn in CSS."""
    _, url = demo_app
    async with httpx.AsyncClient() as http:
        done = await http.get(f"{url}/connected", params={"status": "success"})
    assert done.status_code == 200
    assert "You can close this window and go back to the chat." in done.text
    assert "continues by itself" not in done.text
    assert '<div class="done-badge" aria-hidden="true"></div>' in done.text


async def test_denied_consent_is_reported_plainly(demo_app):
    _, url = demo_app
    users: list = []
    async with httpx.AsyncClient(timeout=30) as http:
        cookies = await signed_in(http, url)
        events = await _turn(
            http, url, "list my items", "thread-deny", cookies, users, decision="deny"
        )
    # The stream can end before the user's browser has followed the last redirect: wait for it
    # off the loop (the server answering that redirect runs on this loop).
    await asyncio.to_thread(users[0].join, 10)
    assert not users[0].is_alive() and users[0].error is None, users[0].error
    assert users[0].result.url.startswith(f"{url}/connected?status=failed")
    assert events[-2]["text"].startswith('Connecting Demo did not work ("the user denied')
    assert events[-1]["type"] == "done"


async def test_disconnect_lets_the_flow_run_again(demo_app):
    _, url = demo_app
    await chat(url, "list my items")
    async with httpx.AsyncClient() as http:
        await signed_in(http, url)
        done = await http.post(f"{url}/api/connections/demo/disconnect", json={})
        assert done.json() == {"removed": 1}
        unknown = await http.post(f"{url}/api/connections/nope/disconnect", json={})
        assert unknown.status_code == 400 and "Unknown toolkit" in unknown.json()["error"]
    events = await chat(url, "list my items", "thread-again")
    assert "connect_link" in [e["type"] for e in events]


async def test_requests_from_elsewhere_are_refused(demo_app):
    _, url = demo_app
    body = {"thread_id": "thread-0001", "message": "list my items"}
    async with httpx.AsyncClient() as http:
        await signed_in(http, url)
        form = await http.post(
            f"{url}/api/chat", content="x", headers={"content-type": "text/plain"}
        )
        assert form.status_code == 415
        other = await http.post(
            f"{url}/api/chat", json=body, headers={"origin": "http://evil.test"}
        )
        assert other.status_code == 403
        port = url.rsplit(":", 1)[1]
        await signed_in(http, f"http://localhost:{port}")  # its own cookie, as a browser's
        local = await http.post(
            f"http://localhost:{port}/api/chat",
            json={**body, "message": "hello"},
            headers={"origin": f"http://localhost:{port}"},
        )
        assert local.status_code == 200  # the page opened as localhost works too
        rebound = await http.get(f"{url}/", headers={"host": "evil.test"})
        assert rebound.status_code == 400
        bad = await http.post(f"{url}/api/chat", json={**body, "thread_id": "../x"})
        assert bad.status_code == 400 and "thread_id" in bad.json()["error"]
        empty = await http.post(f"{url}/api/chat", json={**body, "message": "  "})
        assert empty.status_code == 400


async def test_links_are_bound_to_the_signed_in_chat_user(demo_app):
    """A connect link from the chat completes only in a browser signed in to the chat as the
    user it was made for: one opened elsewhere (a forwarded link) connects nothing and leaves
    the link to its user, and the chat's API answers no signed-out browser."""
    demo, url = demo_app
    body = {"thread_id": "thread-bound", "message": "list my items"}
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{url}/api/connections")).status_code == 401
        denied = await http.post(f"{url}/api/chat", json=body)
        assert denied.status_code == 401 and "sign in" in denied.json()["error"]
        forged = {"cookie": f"{SESSION_COOKIE}=someone-else.{'0' * 64}"}
        assert (await http.get(f"{url}/api/connections", headers=forged)).status_code == 401
        cookies = await signed_in(http, url)
        events = []
        async with http.stream("POST", f"{url}/api/chat", json=body) as response:
            async for block in _blocks(response):
                events.append(block)
                if block["type"] == "connect_link":
                    await _forwarded_link_connects_nothing(demo, block["redirect_url"])
                    done = await asyncio.to_thread(
                        complete_oauth, block["redirect_url"], cookies=cookies
                    )
                    assert done.url.startswith(f"{url}/connected?status=success")
    assert "Follow the white rabbit" in events[-2]["text"]
    (account,) = await demo.ta.connected_accounts.list(user_id="demo-user", toolkit="demo")
    assert account.status == "ACTIVE"


async def _forwarded_link_connects_nothing(demo, link_url: str) -> None:
    with pytest.raises(BrowserError):  # the connect app never sent it to the provider
        await asyncio.to_thread(complete_oauth, link_url)
    async with httpx.AsyncClient() as elsewhere:
        page = await elsewhere.get(link_url)
        assert page.status_code == 401 and "Sign in first" in page.text
        other = {"cookie": f"{SESSION_COOKIE}={demo.session_cookie('mallory')}"}
        page = await elsewhere.get(link_url, headers=other)
        assert page.status_code == 403 and "for someone else" in page.text
    (account,) = await demo.ta.connected_accounts.list(user_id="demo-user", toolkit="demo")
    assert account.status == "INITIATED"


async def test_pages_send_csp_and_escape(demo_app):
    _, url = demo_app
    async with httpx.AsyncClient() as http:
        page = await http.get(f"{url}/")
        script = await http.get(f"{url}/assets/chat.js")
        missing = await http.get(f"{url}/assets/../app.py")
        done = await http.get(f"{url}/connected", params={"status": "failed", "error": "<script>x"})
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script" not in re.sub(r'<script src="/assets/chat.js" defer></script>', "", page.text)
    assert script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text and "insertAdjacentHTML" not in script.text
    assert missing.status_code == 404
    assert (
        done.status_code == 400 and "&lt;script&gt;x" in done.text and "<script>x" not in done.text
    )
    assert done.headers["content-security-policy"] == csp


def test_the_scripted_model_reads_what_the_demo_promises():
    assert intent_of("show my demo profile").tool == "DEMO_GET_PROFILE"
    assert intent_of("list my items").tool == "DEMO_LIST_ITEMS"
    assert intent_of("Create an item called “Buy milk”.").args == {"name": "Buy milk"}
    assert intent_of("add item named list my items").args == {"name": "list my items"}
    assert intent_of("list my github repos").tool == "GITHUB_LIST_REPOSITORIES"
    assert intent_of("list my notes").args == {"tool": "list_notes", "arguments": {}}
    assert intent_of("Add a note called “Call the Hatter”.").args == {
        "tool": "add_note", "arguments": {"title": "Call the Hatter"},
    }  # fmt: skip
    assert intent_of("add item named list my notes").args == {"name": "list my notes"}
    assert intent_of("what's the weather?") is None


def test_a_configured_model_that_cannot_be_built_falls_back_in_one_line():
    chosen = choose_model({"TOOLAUTH_DEMO_MODEL": "no-such-provider:model-x"})
    assert isinstance(chosen.model, ScriptedDemoModel)
    assert chosen.note is not None and "\n" not in chosen.note
    assert chosen.note.startswith("TOOLAUTH_DEMO_MODEL=no-such-provider:model-x is not usable")
    built = choose_model({"TOOLAUTH_DEMO_MODEL": "mine"}, init=lambda spec: ScriptedDemoModel())
    assert (built.label, built.note) == ("mine", None)
    assert choose_model({}).label.startswith("scripted")


def test_cli_demo_serves_one_port_and_stops_cleanly_on_ctrl_c(tmp_path: Path):
    env = clean_env(tmp_path, TOOLAUTH_DEMO_MODEL="no-such-provider:model-x",
                    TOOLAUTH_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")  # fmt: skip
    demo = start_demo(tmp_path, env=env)
    events: list[dict] = []
    linked = threading.Event()
    waiting = threading.Thread(target=_follow, args=(demo.url, events, linked), daemon=True)
    try:
        assert demo.banner.count("\n") == 4  # the model note is one line, then the banner
        assert demo.banner.startswith("TOOLAUTH_DEMO_MODEL=no-such-provider:model-x")
        assert demo.home.is_dir() and demo.home != tmp_path
        # The provider, the connect app and the chat share the one port.
        assert (
            httpx.get(f"{demo.url}/demo/.well-known/oauth-authorization-server").json()["issuer"]
            == f"{demo.url}/demo"
        )
        assert httpx.get(f"{demo.url}/").status_code == 200
        assert (demo.home / "toolauth.db").exists()  # its own store, not the environment's
        # A page that goes away mid-turn cancels the turn; the link stays good.
        cookies = _sign_in(demo.url)
        result = complete_oauth(_link(demo.url, "list my items", cookies), cookies=cookies)
        assert result.url.startswith(f"{demo.url}/connected?status=success")
        # Ctrl+C while a turn waits for the user: the stream says so and ends, no traceback.
        waiting.start()
        assert linked.wait(20)
    finally:
        code, out = demo.stop()
        if waiting.is_alive():
            waiting.join(10)
    assert code == 0 and out.strip() == "toolauth demo: stopped."
    assert events[-1] == {"type": "error", "message": "The demo server is stopping."}
    assert not demo.home.exists()  # the throw-away home is gone


def _sign_in(url: str) -> dict[str, str]:
    return {SESSION_COOKIE: httpx.get(f"{url}/").cookies[SESSION_COOKIE]}


def _follow(url: str, events: list, linked: threading.Event) -> None:
    body = {"thread_id": "thread-stop", "message": "list my github repos"}
    cookies = _sign_in(url)
    with httpx.stream(
        "POST", f"{url}/api/chat", json=body, timeout=30, cookies=cookies
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["type"] == "tool_start" and events[-1]["name"].startswith("COMPOSIO"):
                    linked.set()


def _link(url: str, message: str, cookies: dict[str, str]) -> str:
    body = {"thread_id": "thread-cli", "message": message}
    with httpx.stream(
        "POST", f"{url}/api/chat", json=body, timeout=10, cookies=cookies
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and '"connect_link"' in line:
                return json.loads(line[6:])["redirect_url"]
    raise AssertionError("no connect link")


def test_cli_demo_reports_a_busy_port(tmp_path: Path):
    import socket
    import subprocess

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "toolauth", "demo", "--port", str(port), "--no-browser"],
            capture_output=True, text=True, timeout=60, env=clean_env(tmp_path),
        )  # fmt: skip
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("name", ["chat.html", "chat.js", "chat.css", "connected.js"])
def test_static_files_ship_in_the_package(name):
    from importlib import resources

    assert (resources.files("toolauth.demo") / "static" / name).is_file()


async def test_notes_mcp_server_connects_in_chat_and_its_tools_answer(demo_app):
    """Notes (MCP demo) is a remote MCP server in the demo's process, added with add_mcp
    (RFC 9728 discovery from its 401, the demo provider's RFC 8414 metadata): the chat meets an
    unconnected user, shows the Connect button, registers the client (RFC 7591) and calls the
    server's tool through its dispatcher in the same turn, with a token for the server only."""
    demo, url = demo_app
    events = await chat(url, "list my notes", "thread-notes-1")
    assert kinds(events) == [
        ("tool_start", "NOTES_CALL_TOOL"),
        ("connect_link", None),
        ("tool_end", "NOTES_CALL_TOOL"),
        ("tool_start", "COMPOSIO_MANAGE_CONNECTIONS"),
        ("tool_end", "COMPOSIO_MANAGE_CONNECTIONS"),
        ("tool_start", "NOTES_CALL_TOOL"),
        ("tool_end", "NOTES_CALL_TOOL"),
        ("message", None),
        ("done", None),
    ]
    link = events[1]
    assert (link["toolkit"], link["toolkit_name"]) == ("notes", "Notes (MCP demo)")
    assert link["redirect_url"] == f"{url}/link/{link['link_id']}"
    assert "Tea party: Bring jam tarts." in events[-2]["text"]
    definition = demo.ta.toolkits.get("notes")
    assert definition.mcp is not None and definition.mcp.url == f"{url}/notes/mcp"
    assert definition.mcp.issuer == f"{url}/demo"
    (account,) = await demo.ta.connected_accounts.list(user_id="demo-user", toolkit="notes")
    token = account.credentials["access_token"].get_secret_value()
    assert demo.provider.introspect(token)["aud"] == f"{url}/notes/mcp"  # RFC 8707
    assert demo.provider.stats.registrations == 1
    events = await chat(url, "add a note called Call the Hatter", "thread-notes-1")
    assert kinds(events)[:2] == [("tool_start", "NOTES_CALL_TOOL"), ("tool_end", "NOTES_CALL_TOOL")]
    assert events[0]["args"] == {"tool": "add_note", "arguments": {"title": "Call the Hatter"}}
    assert "Added the note “Call the Hatter”" in events[-2]["text"]
    events = await chat(url, "list my notes", "thread-notes-2")
    assert "connect_link" not in [e["type"] for e in events]
    assert "Call the Hatter" in events[-2]["text"]
    assert [n.title for n in demo.notes.list("alice")] == ["Tea party", "Call the Hatter"]
    assert token not in json.dumps(events)
    async with httpx.AsyncClient() as http:
        await signed_in(http, url)
        connections = (await http.get(f"{url}/api/connections")).json()["connections"]
        refused = await http.post(f"{url}/notes/mcp", json={}, headers={"authorization": "x"})
    assert {c["toolkit"]: c["status"] for c in connections}["notes"] == "active"
    assert refused.status_code == 401  # the server answers only the provider's tokens
    assert "resource_metadata=" in refused.headers["www-authenticate"]
