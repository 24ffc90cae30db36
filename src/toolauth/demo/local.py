"""The demo provider on loopback, for scripts, examples and notebooks.

```python
async with local_provider() as demo:                 # the demo OAuth provider, offline
    settings = Settings.from_env({**os.environ, **demo.environ(), "TOOLAUTH_HOME": home})
    async with AsyncToolAuth(settings=settings) as ta, ta.serve(port=0) as base_url:
        demo.allow(base_url)                          # register {base_url}/oauth/callback
        ...
```

``environ()`` holds the managed OAuth app of the ``demo`` toolkit (``TOOLAUTH_DEMO_CLIENT_ID``
and ``_SECRET``) and where the provider runs (``TOOLAUTH_DEMO_PROVIDER_URL``). These are demo
credentials of a provider that lives in this process; they guard nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from ..connect.serving import serve_app, serve_app_in_thread
from .github import SIMULATED_GITHUB_NAME, SIMULATED_GITHUB_SCOPES
from .provider import DemoProvider, ProviderConfig

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "GITHUB_CLIENT_ID",
    "GITHUB_CLIENT_SECRET",
    "LocalProvider",
    "local_provider",
    "local_provider_in_thread",
    "oauth_environ",
]

DEMO_CLIENT_ID = "toolauth-demo"
DEMO_CLIENT_SECRET = "demo-secret-of-a-local-provider"
GITHUB_CLIENT_ID = "toolauth-demo-github"
GITHUB_CLIENT_SECRET = "demo-github-secret-of-a-local-provider"
CLIENT_NAME = "toolauth demo"
"""Who asks for access on the provider's sign-in and consent pages."""


def oauth_environ(*, github: bool = False) -> dict[str, str]:
    """The managed OAuth app(s) the demo provider knows, as ``TOOLAUTH_*`` variables."""
    env = {
        "TOOLAUTH_DEMO_CLIENT_ID": DEMO_CLIENT_ID,
        "TOOLAUTH_DEMO_CLIENT_SECRET": DEMO_CLIENT_SECRET,
    }
    if github:
        env["TOOLAUTH_GITHUB_CLIENT_ID"] = GITHUB_CLIENT_ID
        env["TOOLAUTH_GITHUB_CLIENT_SECRET"] = GITHUB_CLIENT_SECRET
    return env


def register_clients(provider: DemoProvider, base_url: str) -> None:
    """Let the demo's OAuth apps send users back to ``{base_url}/oauth/callback``.

    The Demo app signs in to "Demo"; the GitHub app's pages carry the simulated toolkit's name
    and GitHub's scopes, so its sign-in and consent look like that app's own."""
    redirect = [f"{base_url.rstrip('/')}/oauth/callback"]
    provider.register_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, redirect, name=CLIENT_NAME)
    provider.register_client(
        GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, redirect, name=CLIENT_NAME,
        brand=SIMULATED_GITHUB_NAME, scopes=SIMULATED_GITHUB_SCOPES,
    )  # fmt: skip


@dataclass
class LocalProvider:
    """A running demo provider: the object (users, API keys, switches) and its URL."""

    provider: DemoProvider
    url: str

    def environ(self) -> dict[str, str]:
        """Variables that point the ``demo`` toolkit at this provider, with its OAuth app."""
        return {"TOOLAUTH_DEMO_PROVIDER_URL": self.url, **oauth_environ()}

    def allow(self, base_url: str) -> None:
        """Register the connect app at ``base_url`` as a redirect target of the OAuth app."""
        register_clients(self.provider, base_url)

    def issue_api_key(self, username: str = "alice") -> str:
        """A new API key of the provider's user (for the ``demo`` toolkit's API_KEY scheme)."""
        return self.provider.issue_api_key(username)


@contextlib.asynccontextmanager
async def local_provider(
    *, port: int = 0, config: ProviderConfig | None = None
) -> AsyncIterator[LocalProvider]:
    """Serve a new demo provider on loopback as a task of the running loop."""
    provider = DemoProvider(config)
    async with serve_app(provider.app, port=port) as url:
        yield LocalProvider(provider, url)


@contextlib.contextmanager
def local_provider_in_thread(
    *, port: int = 0, config: ProviderConfig | None = None
) -> Iterator[LocalProvider]:
    """Serve a new demo provider on loopback from sync code (its own thread and loop)."""
    provider = DemoProvider(config)
    with serve_app_in_thread(provider.app, port=port) as url:
        yield LocalProvider(provider, url)
