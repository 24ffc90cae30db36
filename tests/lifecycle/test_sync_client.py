"""The lifecycle from the sync client ``ToolAuth``: ``stream.next(timeout=)`` and a keeper
that runs for a while and returns (``run(stop_after=)``), over a real receiver on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.lifecycle.receiver import Receiver
from toolauth import Settings, ToolAuth, ValidationError
from toolauth.connect.serving import serve_app_in_thread
from toolauth.events import EventType


@pytest.fixture
def sync_ta(settings: Settings) -> Iterator[ToolAuth]:
    with ToolAuth(settings=settings.with_overrides(webhook_allow_private=True)) as client:
        yield client


def test_sync_stream_next_with_a_timeout(sync_ta: ToolAuth) -> None:
    stream = sync_ta.events.subscribe(types=["auth_config.created"])
    assert stream.next(timeout=0.05) is None  # listening from here: nothing yet
    config = sync_ta.auth_configs.create("openai")
    sync_ta.auth_configs.disable(config.id)  # filtered out
    event = stream.next(timeout=10)
    assert event is not None and event.type is EventType.AUTH_CONFIG_CREATED
    assert event.auth_config_id == config.id
    assert stream.next(timeout=0.05) is None
    stream.aclose()
    with pytest.raises(StopAsyncIteration):
        stream.next(timeout=0)


def test_sync_keeper_runs_for_a_while_and_returns(sync_ta: ToolAuth) -> None:
    found = Receiver()
    with serve_app_in_thread(found.app) as url:
        sync_ta.webhooks.create(f"{url}/ok", events=["auth_config.created"])
        sync_ta.auth_configs.create("openai")
        keeper = sync_ta.keeper()
        started = time.monotonic()
        keeper.run(stop_after=0.5)  # delivers at once, then returns when the time is up
        assert time.monotonic() - started >= 0.5
        assert [r.json["type"] for r in found.on("/ok")] == ["auth_config.created"]
        assert keeper.run_once().delivered == 0  # nothing left
        with pytest.raises(ValidationError, match="stop_after"):
            keeper.run(stop_after=-1)
