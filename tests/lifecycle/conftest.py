"""The lifecycle tests run on every store backend: ``store_env`` (used by ``connect``,
``settings`` and ``ta``) comes from the parametrized ``backend`` fixture here. ``receiver`` is
a webhook receiver on loopback (:mod:`tests.lifecycle.receiver`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Backend, InBackground
from tests.lifecycle.receiver import Receiver
from toolauth import AsyncToolAuth
from toolauth.connect.serving import serve_app


@pytest.fixture
def store_env(backend: Backend) -> dict[str, str]:
    return backend.env


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    async with InBackground(serve_app(found.app)) as url:
        yield found, url


async def key_config(ta: AsyncToolAuth) -> str:
    """An API-key toolkit ``keyed`` and a custom auth config of it: its id."""
    await ta.toolkits.register({
        "slug": "keyed", "name": "Keyed", "description": "A key toolkit.",
        "api_base_url": "https://api.keyed.example",
        "auth_schemes": {"API_KEY": {
            "fields": [{"name": "api_key", "label": "API key", "secret": True}],
            "placements": [{"in": "header", "name": "X-Key", "format": "{api_key}"}],
        }},
    })  # fmt: skip
    return (await ta.auth_configs.create("keyed", type="use_custom_auth")).id
