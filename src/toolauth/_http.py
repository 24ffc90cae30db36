"""The client's HTTP: one client for provider calls, one connection pool for toolkit APIs.

Both are made on first use (``import toolauth`` does not load httpx) and closed with the
client. A ``transport`` given to the client replaces the network for both: tests and proxies.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = ["HttpPool", "shared_transport", "tls_context"]

_tls: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """The one TLS context of the process, as httpx makes it (certifi's CA bundle, or
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``): making one reads and parses the whole CA bundle,
    ~15 ms of CPU, which every client and connection pool would otherwise repeat. A context
    is safe to share between clients, loops and threads."""
    global _tls
    with _tls_lock:
        if _tls is None:
            import httpx

            _tls = httpx.create_ssl_context()
        return _tls


def shared_transport(inner: httpx.AsyncBaseTransport, *, owned: bool) -> httpx.AsyncBaseTransport:
    """``inner`` behind a transport whose ``aclose`` leaves it open: the short-lived clients
    built on it close without closing the pool. ``close_pool()`` closes it when ``owned``."""
    import httpx

    class SharedTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await inner.handle_async_request(request)

        async def aclose(self) -> None:
            """Left open on purpose: the toolauth client closes the pool."""

        async def close_pool(self) -> None:
            if owned:
                await inner.aclose()

    return SharedTransport()


class HttpPool:
    """The HTTP clients one toolauth client shares between its parts."""

    def __init__(
        self, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._api: httpx.AsyncBaseTransport | None = None

    @property
    def transport(self) -> httpx.AsyncBaseTransport | None:
        """The transport given to the client (tests, proxies), if any."""
        return self._transport

    @property
    def client(self) -> httpx.AsyncClient:
        """For calls to providers (token, discovery, revocation, credential checks)."""
        if self._client is None:
            import httpx  # loaded on first use: `import toolauth` stays light

            transport = self._transport
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout, connect=min(5.0, self._timeout)),
                headers={"User-Agent": "toolauth"},
                follow_redirects=False,
                verify=tls_context(),
                transport=None if transport is None else shared_transport(transport, owned=False),
            )
        return self._client

    @property
    def api_transport(self) -> httpx.AsyncBaseTransport:
        """The pool every connected account's API client shares (left open when one of them
        closes; closed with the toolauth client)."""
        if self._api is None:
            import httpx

            if self._transport is not None:
                self._api = shared_transport(self._transport, owned=False)
            else:
                pool = httpx.AsyncHTTPTransport(
                    verify=tls_context(), limits=httpx.Limits(max_keepalive_connections=20)
                )
                self._api = shared_transport(pool, owned=True)
        return self._api

    async def aclose(self) -> None:
        client, self._client = self._client, None
        api, self._api = self._api, None
        if client is not None:
            await client.aclose()
        if api is not None:
            close: Any = getattr(api, "close_pool")  # noqa: B009 - made by shared_transport
            await close()
