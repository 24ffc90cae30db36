import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


def test_toolkits_command(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "toolauth", "toolkits"], capture_output=True, text=True,
        timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0
    assert "slack" in out.stdout


def test_errors_are_one_line_not_a_traceback(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "toolauth", "migrate"], capture_output=True, text=True,
        timeout=60, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TOOLAUTH_DATABASE_URL": "mysql://x/y"},
    )  # fmt: skip
    assert out.returncode == 1
    assert out.stderr.startswith("toolauth: Unsupported database URL scheme 'mysql'")
    assert "Traceback" not in out.stderr


def _start_serve(tmp_path, *args: str) -> tuple[subprocess.Popen[str], str, str]:
    """``toolauth serve`` on a free port; it prints the URL it really serves once it listens."""
    import re

    proc = subprocess.Popen(
        [sys.executable, "-m", "toolauth", "serve", "--port", "0", *args], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    seen: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if found := re.search(r"toolauth connect app on (http://127\.0\.0\.1:\d+)", line):
            return proc, found.group(1), line
    raise AssertionError("toolauth serve did not start:\n" + "".join(seen))


def test_serve_command_answers_health(tmp_path):
    import httpx

    proc, url, _ = _start_serve(tmp_path)
    try:
        assert httpx.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}
        assert httpx.get(f"{url}/link/ln_nope", timeout=10).status_code == 404
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_on_the_first_signal_after_serving_requests(tmp_path, how):
    """One Ctrl+C (or SIGTERM) stops it even with a keep-alive connection still open, the
    store closed; links made by its client point at the URL it really serves."""
    import httpx

    proc, url, banner = _start_serve(tmp_path)
    assert f"links point at {url}." in banner  # no TOOLAUTH_BASE_URL: the served URL
    with httpx.Client(base_url=url, timeout=10) as kept_alive:
        for _ in range(3):
            assert kept_alive.get("/healthz").status_code == 200
        proc.send_signal(how)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    assert out.strip().endswith("toolauth serve: stopped."), out


def test_serve_access_log_hides_callback_codes():
    import logging

    from toolauth.connect.server import CallbackQueryFilter

    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/oauth/callback?code=SECRETCODE&state=S", "1.1", 303), None,
    )  # fmt: skip
    assert CallbackQueryFilter().filter(record)
    assert "SECRETCODE" not in record.getMessage()
    assert "/oauth/callback?[redacted]" in record.getMessage()


def test_the_access_log_hides_link_ids_and_queries_on_every_route():
    from toolauth.connect.server import redact_path

    assert redact_path("/link/ln_Secret-Id_123") == "/link/[link]"
    assert redact_path("/toolauth/api/links/ln_abcDEF") == "/toolauth/api/links/[link]"
    assert redact_path("/link/ln_abc?x=1") == "/link/[link]?[redacted]"
    assert redact_path("/healthz") == "/healthz"


def test_serve_logs_requests_without_link_ids(tmp_path):
    import httpx

    proc, url, _ = _start_serve(tmp_path)
    try:
        httpx.get(f"{url}/link/ln_SENTINELSENTINEL", timeout=10)
        httpx.get(f"{url}/oauth/callback?code=SENTINELCODE&state=S", timeout=10)
        httpx.get(f"{url}/healthz", timeout=10)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
    assert "GET /link/[link]" in out and "/oauth/callback?[redacted]" in out
    assert "SENTINEL" not in out


async def _toolauth(cwd: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "toolauth", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("TOOLAUTH_")}},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_toolkits_add_discover_list_remove(tmp_path: Path, provider) -> None:
    _, issuer = provider
    file = tmp_path / "acme.json"
    file.write_text(json.dumps({
        "slug": "acme", "name": "Acme", "description": "An API.", "api_base_url": "https://acme.test",
        "auth_schemes": {"NO_AUTH": {}},
    }), encoding="utf-8")  # fmt: skip
    code, out, err = await _toolauth(tmp_path, "toolkits", "add", str(file))
    assert (code, err) == (0, "") and "Stored toolkit acme version 1" in out
    code, out, err = await _toolauth(
        tmp_path, "toolkits", "discover", "idp", issuer, "--scope", "profile"
    )
    assert (code, err) == (0, "") and "Stored toolkit idp version 1" in out
    code, out, _ = await _toolauth(tmp_path, "toolkits")
    listed = {line.split()[0]: line.split()[2:] for line in out.splitlines()}
    assert listed["acme"] == ["file", "NO_AUTH"] and listed["idp"] == ["discovered", "OAUTH2"]
    assert listed["github"][0] == "builtin"

    code, _, err = await _toolauth(tmp_path, "toolkits", "add", str(tmp_path / "missing.json"))
    assert code == 1 and err.startswith("toolauth: Cannot read") and "Traceback" not in err
    code, _, err = await _toolauth(tmp_path, "toolkits", "remove", "github")
    assert code == 1 and "github.json" in err
    code, out, err = await _toolauth(tmp_path, "toolkits", "remove", "acme")
    assert (code, err) == (0, "") and "Removed toolkit acme" in out
    code, out, _ = await _toolauth(tmp_path, "toolkits", "list")
    assert "acme" not in out.split() and "idp" in out.split()


@pytest.mark.parametrize(
    ("documents", "registration", "mode"),
    [
        (True, True, "client registration: CIMD (client ID metadata document: client_id "),
        (False, True, "client registration: dynamic (RFC 7591"),
        (False, False, "client registration: manual (create a custom auth config"),
    ],
)
async def test_toolkits_add_mcp_and_show(
    tmp_path: Path, provider, documents: bool, registration: bool, mode: str
) -> None:
    """``add-mcp`` discovers a real loopback MCP server (RFC 9728, then RFC 8414) and prints
    its issuer, resource and how managed configs get their client, in MCP's order of
    preference (CIMD, then RFC 7591, then manual); ``show`` prints the stored definition."""
    from tests.conftest import InBackground
    from tests.helpers import free_port
    from toolauth.connect.serving import serve_app
    from toolauth.demo.notes_mcp import notes_app

    demo, issuer = provider
    demo.config.client_id_metadata_documents = documents
    demo.config.dynamic_registration = registration
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    app = notes_app(url, issuer=issuer, introspect=demo.introspect)
    async with InBackground(serve_app(app, port=port)):
        code, out, err = await _toolauth(
            tmp_path, "toolkits", "add-mcp", "notes", "--url", url, "--name", "Notes",
            "--scope", "profile", "--allowed-host", "127.0.0.1",
        )  # fmt: skip
        assert (code, err) == (0, ""), err
        lines = out.splitlines()
        assert lines[0].startswith("Stored toolkit notes version 1")
        assert f"MCP server: {url}" in lines and f"resource: {url}" in lines
        assert f"issuer: {issuer}" in lines
        assert any(line.startswith(mode) for line in lines), out
        if documents:
            assert "/clients/notes.json, served by the connect app)" in out
        code, _, err = await _toolauth(tmp_path, "toolkits", "add-mcp", "notes", "--url", url)
        assert code == 1 and err.startswith("toolauth: ") and "Traceback" not in err
        code, out, err = await _toolauth(
            tmp_path, "toolkits", "add-mcp", "notes", "--url", url, "--replace"
        )
        assert (code, err) == (0, "") and "Stored toolkit notes version 2" in out
    code, out, err = await _toolauth(tmp_path, "toolkits", "show", "notes")
    assert (code, err) == (0, "")
    shown = json.loads(out)
    assert shown["slug"] == "notes" and shown["mcp"]["url"] == url
    assert shown["mcp"]["issuer"] == issuer and shown["mcp"]["resource"] == url
    assert shown["mcp"]["client_id_metadata_document_supported"] is documents
    assert shown["auth_schemes"]["OAUTH2"]["resource"] == url
    assert "secret" not in out.replace("client_secret_basic", "")  # a definition holds none
    code, _, err = await _toolauth(tmp_path, "toolkits", "show", "nobody_here")
    assert code == 1 and err.startswith("toolauth: Unknown toolkit 'nobody_here'")
