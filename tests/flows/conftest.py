"""The flow tests run on every store backend: ``store_env`` (used by ``connect``,
``settings`` and ``ta``) comes from the parametrized ``backend`` fixture here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Backend, Connect
from tests.flows.support import APP_CALLBACK
from tests.helpers import Browser


@pytest.fixture
def store_env(backend: Backend) -> dict[str, str]:
    return backend.env


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A user's browser: follows every hop, stopping only at the app's own callback."""
    client = Browser(stop_at=APP_CALLBACK)
    yield client
    await client.aclose()


@pytest.fixture
async def paused(connect: Connect) -> AsyncIterator[Browser]:
    """A browser that also stops before the connect app's OAuth callback, so the provider's
    redirect can be inspected, replayed or delivered elsewhere (``paused.get(landing.url)``
    delivers it)."""
    client = Browser(stop_at=(connect.base_url + "/oauth/callback", APP_CALLBACK))  # type: ignore[arg-type]
    yield client
    await client.aclose()
