"""Snippets from the hosted agent-auth platform's Python docs, run VERBATIM and synchronously.

Only the import and constructor change (``from toolauth import ToolAuth as Composio;
composio = Composio()``) and configuration comes from environment variables alone. Each snippet
is a string below, executed with ``exec`` in one namespace per test, in order. A placeholder id
``"ac_..."`` of the docs is replaced by the id an earlier snippet made (``with_id``), and
nothing else is changed.

``wait_for_connection()`` needs a user to finish the link: the managed GitHub app points at the
local demo provider, the way ``toolauth demo`` does it (``simulated_github_toolkit()``
registered in the client's catalog, the demo's GitHub OAuth app in ``TOOLAUTH_GITHUB_CLIENT_ID``
/ ``_SECRET``), and ``complete_in_background(url)`` signs in and allows in a thread while the
snippet waits. The connect app is served by ``with composio.serve(port=0):`` (harness code).
The flow ends by sending the browser to ``https://myapp.com/auth/callback``; so that nothing
leaves the machine, ``HTTPS_PROXY`` points at a closed loopback port (loopback itself is in
``NO_PROXY``): the scripted browser's last request fails there, and the test reads where it
was sent from the error.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from toolauth import ConnectionStatus
from toolauth.demo.browser import complete_in_background
from toolauth.demo.github import simulated_github_toolkit
from toolauth.demo.local import (
    GITHUB_CLIENT_ID,
    GITHUB_CLIENT_SECRET,
    LocalProvider,
    local_provider_in_thread,
    register_clients,
)

SETUP = """
from toolauth import ToolAuth as Composio
composio = Composio()
"""

AUTHORIZE_MANAGED = """
session = composio.create(user_id="user_123")
connection_request = session.authorize("github")
print(connection_request.redirect_url)
"""

GMAIL_CUSTOM_OAUTH = """
auth_config = composio.auth_configs.create(
    "gmail",
    type="use_custom_auth",
    name="My Gmail OAuth App",
    auth_scheme="OAUTH2",
    credentials={
        "client_id": os.environ["GOOGLE_CLIENT_ID"],
        "client_secret": os.environ["GOOGLE_CLIENT_SECRET"],
    },
)
"""

LINEAR_API_KEY = """
auth_config = composio.auth_configs.create(
    "linear",
    type="use_custom_auth",
    name="Linear API Key",
    auth_scheme="API_KEY",
    credentials={"api_key": os.environ["LINEAR_API_KEY"]},
)
"""

SESSION_WITH_CONFIG = """
session = composio.create(user_id="user_123", auth_configs={"gmail": "ac_..."})
"""

LIST_AND_GET = """
configs = composio.auth_configs.list(toolkit="gmail")
composio.auth_configs.get("ac_...")
"""

DISABLE_AND_DELETE = """
composio.auth_configs.disable("ac_...")
composio.auth_configs.delete("ac_...")
"""

AUTHORIZE_WITH_CALLBACK = """
connection_request = session.authorize("github", callback_url="https://myapp.com/auth/callback")
"""

WAIT = """
connected_account = connection_request.wait_for_connection()
"""

LINK = """
connection_request = composio.connected_accounts.link(
    user_id="user_123",
    auth_config_id="ac_...",
    callback_url="https://myapp.com/auth/callback",
)
"""

LINEAR_KEY = "lin_api_" + "0123456789abcdefghijKLMN"  # the catalog's ^lin_api_[A-Za-z0-9]{20,}$


def with_id(snippet: str, auth_config_id: str) -> str:
    """The snippet with the docs' placeholder ``ac_...`` replaced by a real id."""
    assert "ac_..." in snippet
    return snippet.replace("ac_...", auth_config_id)


def run(snippet: str, namespace: dict[str, Any]) -> dict[str, Any]:
    exec(compile(snippet, "<snippet>", "exec"), namespace)
    return namespace


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the socket is


@pytest.fixture
def demo() -> Iterator[LocalProvider]:
    with local_provider_in_thread() as provider:
        yield provider


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo: LocalProvider
) -> dict[str, str]:
    for name in [n for n in __import__("os").environ if n.startswith("TOOLAUTH_")]:
        monkeypatch.delenv(name)
    env = {
        "TOOLAUTH_HOME": str(tmp_path / "home"),
        "TOOLAUTH_DEMO_PROVIDER_URL": demo.url,  # where the simulated GitHub signs in
        "TOOLAUTH_GITHUB_CLIENT_ID": GITHUB_CLIENT_ID,
        "TOOLAUTH_GITHUB_CLIENT_SECRET": GITHUB_CLIENT_SECRET,
        "GOOGLE_CLIENT_ID": "1234-abc.apps.googleusercontent.com",
        "GOOGLE_CLIENT_SECRET": "GOCSPX-not-a-real-secret",
        "LINEAR_API_KEY": LINEAR_KEY,
        "TOOLAUTH_ALLOWED_CALLBACK_ORIGINS": "https://myapp.com",
        "HTTPS_PROXY": f"http://127.0.0.1:{closed_port()}",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def namespace(environment: dict[str, str]) -> Iterator[dict[str, Any]]:
    ns: dict[str, Any] = {"os": __import__("os")}
    run(SETUP, ns)
    try:
        yield ns
    finally:
        ns["composio"].close()


def test_authorize_with_the_managed_app_prints_a_connect_link(namespace, capsys):
    run(AUTHORIZE_MANAGED, namespace)
    printed = capsys.readouterr().out.strip()
    request = namespace["connection_request"]
    assert printed == request.redirect_url
    assert printed.startswith("http://127.0.0.1:8765/link/ln_")  # TOOLAUTH_BASE_URL's default
    assert request.id.startswith("ca_")
    assert request.link_id == printed.rsplit("/", 1)[1]


def test_custom_auth_configs_list_get_disable_delete(namespace):
    composio = namespace["composio"]
    gmail = run(GMAIL_CUSTOM_OAUTH, namespace)["auth_config"]
    assert (gmail.toolkit, gmail.name, gmail.auth_scheme.value) == (
        "gmail", "My Gmail OAuth App", "OAUTH2",
    )  # fmt: skip
    assert gmail.id.startswith("ac_")
    assert "GOCSPX" not in repr(gmail)

    linear = run(LINEAR_API_KEY, namespace)["auth_config"]
    assert (linear.toolkit, linear.auth_scheme.value, linear.is_shared) == (
        "linear", "API_KEY", True,
    )  # fmt: skip
    # A shared credential: the user is connected at once, with no link to open.
    shared = composio.connected_accounts.link("user_123", linear.id)
    assert (shared.redirect_url, shared.status) == (None, ConnectionStatus.ACTIVE)

    session = run(with_id(SESSION_WITH_CONFIG, gmail.id), namespace)["session"]
    assert session.auth_config("gmail").id == gmail.id

    run(with_id(LIST_AND_GET, gmail.id), namespace)
    assert [c.id for c in namespace["configs"]] == [gmail.id]

    run(with_id(DISABLE_AND_DELETE, gmail.id), namespace)
    assert composio.auth_configs.list(toolkit="gmail") == []


def test_authorize_with_a_callback_then_wait_for_connection(namespace, demo):
    composio = namespace["composio"]
    composio.toolkits.register(simulated_github_toolkit(), replace=True, override=True)  # stored
    with composio.serve(port=0) as url:
        register_clients(demo.provider, url)
        run("session = composio.create(user_id='user_123')", namespace)
        run(AUTHORIZE_WITH_CALLBACK, namespace)
        request = namespace["connection_request"]
        assert request.redirect_url.startswith(f"{url}/link/ln_")
        user = complete_in_background(request.redirect_url, delay=0)
        run(WAIT, namespace)
        user.join(30)
    account = namespace["connected_account"]
    assert (account.id, account.status, account.toolkit) == (
        request.id, ConnectionStatus.ACTIVE, "github",
    )  # fmt: skip
    # The browser was sent on to the app's callback, with the account id and never a token.
    assert isinstance(user.error, httpx.ProxyError | httpx.ConnectError), user.error
    sent_to = httpx.URL(str(user.error.request.url))
    assert (sent_to.scheme, sent_to.host, sent_to.path) == ("https", "myapp.com", "/auth/callback")
    assert dict(sent_to.params) == {"status": "success", "connected_account_id": account.id}


def test_link_a_custom_auth_config(namespace):
    composio = namespace["composio"]
    gmail = run(GMAIL_CUSTOM_OAUTH, namespace)["auth_config"]
    with composio.serve(port=0) as url:
        request = run(with_id(LINK, gmail.id), namespace)["connection_request"]
        assert request.redirect_url.startswith(f"{url}/link/ln_")
        assert request.auth_config_id == gmail.id
        opened = httpx.get(request.redirect_url, follow_redirects=False)
    # The link sends the user to Google's consent page with the app's own client id.
    assert opened.status_code in (302, 303), opened.text
    location = httpx.URL(opened.headers["location"])
    assert location.host == "accounts.google.com"
    assert location.params["client_id"] == "1234-abc.apps.googleusercontent.com"
    assert location.params["redirect_uri"] == f"{url}/oauth/callback"
