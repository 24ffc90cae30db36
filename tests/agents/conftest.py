from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.agents.support import User


@pytest.fixture
async def user() -> AsyncIterator[User]:
    """Alice, in a scripted browser: she grants access on the demo provider's page."""
    person = User("alice")
    yield person
    await person.aclose()
