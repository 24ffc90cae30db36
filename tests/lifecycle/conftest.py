"""The lifecycle tests run on every store backend: ``store_env`` (used by ``connect``,
``settings`` and ``ta``) comes from the parametrized ``backend`` fixture here."""

from __future__ import annotations

import pytest

from tests.conftest import Backend


@pytest.fixture
def store_env(backend: Backend) -> dict[str, str]:
    return backend.env
