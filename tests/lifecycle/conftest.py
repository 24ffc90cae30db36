"""The lifecycle tests run on every store backend: ``store_env`` (used by ``connect``,
``settings`` and ``ta``) comes from the parametrized ``backend`` fixture here. ``receiver`` is
a webhook receiver on loopback (:mod:`tests.lifecycle.receiver`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Backend, InBackground
from tests.lifecycle.receiver import Receiver
from toolauth.connect.serving import serve_app


@pytest.fixture
def store_env(backend: Backend) -> dict[str, str]:
    return backend.env


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    async with InBackground(serve_app(found.app)) as url:
        yield found, url
