"""The demo as users run it: ``toolauth demo`` in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from toolauth.connect.serving import serve_app
from toolauth.demo.app import DemoApp
from toolauth.demo.model import ChosenModel, ScriptedDemoModel


@dataclass
class DemoProcess:
    proc: subprocess.Popen[str]
    url: str
    home: Path
    banner: str

    def stop(self, timeout: float = 15) -> tuple[int, str]:
        """Ctrl+C, as a user would; the exit code and the rest of stdout."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLAUTH_")}
    env.update(HOME=str(tmp_path), PYTHONUNBUFFERED="1", **extra)
    return env


def start_demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> DemoProcess:
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolauth", "demo", "--port", "0", "--no-browser", *args],
        cwd=tmp_path, env=env or clean_env(tmp_path), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl+C" in line:
            break
    banner = "".join(lines)
    found = re.search(r"open (http://127\.0\.0\.1:\d+)", banner)
    home = re.search(r"Data: (\S+) \(", banner)
    if found is None or home is None:
        proc.kill()
        rest, _ = proc.communicate(timeout=10)
        raise AssertionError(f"the demo did not start:\n{banner}{rest}")
    url = found.group(1)
    while time.monotonic() < deadline:  # the banner comes just before uvicorn listens
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    return DemoProcess(proc, url, Path(home.group(1)), banner)


@pytest.fixture
def demo_process(tmp_path: Path) -> Iterator[DemoProcess]:
    running = start_demo(tmp_path)
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.communicate(timeout=10)


@pytest.fixture
async def demo_app(tmp_path: Path):
    """The demo app in this process, scripted model, on a free port: (app, url)."""
    demo = DemoApp(
        tmp_path / "home", environ={}, chosen=ChosenModel(ScriptedDemoModel(), "scripted")
    )
    async with serve_app(demo.app) as url:
        demo.bind(url)
        yield demo, url
        await demo.end_turns()  # as `toolauth demo` does before its server stops
