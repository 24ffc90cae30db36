"""``toolauth demo`` stopped by SIGTERM (a service manager, ``kill``) still removes its
throw-away folder and says it stopped."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from .conftest import start_demo


def test_sigterm_stops_the_demo_and_removes_its_throw_away_home(tmp_path: Path) -> None:
    demo = start_demo(tmp_path)
    try:
        assert demo.home.is_dir()
        assert httpx.get(f"{demo.url}/healthz", timeout=10).status_code == 200
        demo.proc.send_signal(signal.SIGTERM)
        out, _ = demo.proc.communicate(timeout=20)
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
            demo.proc.communicate(timeout=10)
    assert demo.proc.returncode == 0, out
    assert out.strip() == "toolauth demo: stopped."
    assert not demo.home.exists()
