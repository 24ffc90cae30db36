"""Every example runs as users run it (``python examples/<name>.py --auto``), offline.

They start together (each is mostly waiting on imports) and each test checks one's output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

EXPECTED = {
    "langchain_agent": [
        "user: list my items",
        "agent calls DEMO_LIST_ITEMS({})",
        "Connect Demo: http://127.0.0.1:",
        'agent calls COMPOSIO_MANAGE_CONNECTIONS({"toolkits": ["demo"]})',
        "agent: You have 2 item(s) on Demo:\n• Follow the white rabbit\n• Have tea with the Hatter",
    ],
    "fastapi_mount": [
        "/connected (HTTP 200):",
        "Demo connected",
        "  - Follow the white rabbit\n  - Have tea with the Hatter",
    ],
    "custom_auth_config": [
        "My Demo App, scopes ['profile', 'items:read']",
        "client secret visible in repr or JSON: False",
        "is ACTIVE",
        "GET /me    -> Alice Liddell <alice@example.com>",
        "GET /items -> ['Follow the white rabbit', 'Have tea with the Hatter']",
        "POST /items -> 403 insufficient_scope",
    ],
    "api_key_toolkit": [
        "API_KEY, form fields ['api_key']",
        "a wrong key -> HTTP 400, the form says: Demo rejected these credentials.",
        "the right key -> HTTP 200",
        "is ACTIVE",
        '"name":"Alice Liddell"',
        '"name":"Paint the roses red","created":true',
        "the key appears in the database files as plain text: False",
    ],
    "mcp_toolkit": [
        "tools before anyone connected: ['NOTES_CALL_TOOL']",
        "Connect Notes: http://127.0.0.1:",
        "is ACTIVE",
        "add_note -> Croquet",
        "list_notes -> ['Tea party', 'Croquet']",
        "tools now: ['NOTES_LIST_NOTES', 'NOTES_ADD_NOTE', 'NOTES_DELETE_ALL_NOTES']",
        "client registrations at the provider: 1",
    ],
    "langgraph_interrupt": [
        "run paused (interrupt",
        "Connect Demo: http://127.0.0.1:",
        "connected; resuming with {",
        "'status': 'ACTIVE'",
        "agent: You have 2 item(s) on Demo:",
        "pending interrupts: 0",
    ],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, subprocess.Popen[str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLAUTH_")}
    started = {}
    for name in EXPECTED:
        cwd = tmp_path_factory.mktemp(name)
        started[name] = subprocess.Popen(
            [sys.executable, str(EXAMPLES / f"{name}.py"), "--auto"], cwd=cwd, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    yield started
    for proc in started.values():  # also those no selected test read: close their pipes
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_every_example_is_tested():
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPECTED))
def test_example_runs_offline(runs, name):
    out, err = runs[name].communicate(timeout=60)
    assert runs[name].returncode == 0, f"{name} failed:\n{out}\n{err}"
    for expected in EXPECTED[name]:
        assert expected in out, f"{name}: {expected!r} missing from:\n{out}"
    assert "Traceback" not in err
    assert "access_token" not in out and "refresh_token" not in out
