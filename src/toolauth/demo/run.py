"""``toolauth demo``: the chat demo in one process, on one loopback port, fully offline."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import tempfile
import threading
import webbrowser
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

import uvicorn

from .app import DemoApp
from .model import choose_model

__all__ = ["DEFAULT_PORT", "run_demo"]

DEFAULT_PORT = 8765


class _Server(uvicorn.Server):
    """uvicorn, opening the browser once the app is up and ending agent turns on Ctrl+C."""

    def __init__(self, config: uvicorn.Config, demo: DemoApp, open_browser: bool) -> None:
        super().__init__(config)
        self.demo = demo
        self.url = demo.base_url or ""
        self.open_browser = open_browser

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # listening: add the Notes MCP server over HTTP, start the chat
            await self.demo.ready()
        if self.open_browser and self.started:
            threading.Thread(target=_open, args=(self.url,), daemon=True).start()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.demo.end_turns()  # a turn waiting for a connection would hold the server
        await super().shutdown(sockets)


class _Stopped(Exception):
    """SIGTERM, raised again by uvicorn once it stopped."""


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _open(url: str) -> None:
    with contextlib.suppress(Exception):  # no browser here: the printed URL is enough
        webbrowser.open(url)


@contextlib.contextmanager
def _home(home: str | Path | None) -> Iterator[tuple[Path, bool]]:
    if home is not None:
        path = Path(home).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        yield path, False
        return
    with tempfile.TemporaryDirectory(prefix="toolauth-demo-") as temp:
        yield Path(temp), True


def run_demo(
    *,
    port: int = DEFAULT_PORT,
    home: str | Path | None = None,
    open_browser: bool = True,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> int:
    """Serve the demo at ``http://127.0.0.1:<port>`` until Ctrl+C; returns the exit code."""
    out = out or sys.stdout
    env = os.environ if environ is None else environ
    try:
        import langchain.agents  # noqa: F401
        import langgraph.checkpoint.memory  # noqa: F401
    except ImportError as exc:
        print(
            f"toolauth demo needs LangChain and LangGraph ({exc.name} is missing): "
            "pip install 'toolauth[langgraph]'",
            file=sys.stderr,
        )
        return 1
    chosen = choose_model(env)
    if chosen.note:
        print(chosen.note, file=out, flush=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        print(
            f"toolauth demo: cannot listen on 127.0.0.1:{port} ({exc.strerror}). "
            "Pick another port with --port (0 picks a free one).",
            file=sys.stderr,
        )
        return 1
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with sock, _home(home) as (where, throwaway):
        demo = DemoApp(where, environ=env, chosen=chosen)
        demo.bind(url)
        keep = "a throw-away folder, deleted on exit" if throwaway else "kept"
        print(
            f"toolauth demo: open {url}\n"
            f"  Sign in on the demo apps as alice / wonderland. Model: {chosen.label}.\n"
            f"  Data: {where} ({keep}). Nothing leaves this machine. Ctrl+C stops.",
            file=out,
            flush=True,
        )
        config = uvicorn.Config(
            demo.app, lifespan="on", log_level="warning", access_log=False, ws="none",
            timeout_graceful_shutdown=2,
        )  # fmt: skip
        server = _Server(config, demo, open_browser)
        # uvicorn stops on Ctrl+C or SIGTERM, then raises the signal again: both end here, so
        # the throw-away folder is always removed.
        with _signals_raise(), contextlib.suppress(KeyboardInterrupt, _Stopped):
            server.run(sockets=[sock])
        print("toolauth demo: stopped.", file=out, flush=True)
    return 0 if server.started else 1
