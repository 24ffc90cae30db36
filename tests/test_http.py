"""The client's HTTP plumbing (``toolauth._http``): one TLS context for the process."""

from __future__ import annotations

import ssl
import threading

from toolauth._http import HttpPool, tls_context


def test_one_verifying_tls_context_serves_every_client_and_thread() -> None:
    seen: list[ssl.SSLContext] = []
    threads = [threading.Thread(target=lambda: seen.append(tls_context())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    context = tls_context()
    assert all(found is context for found in seen)
    # it verifies: certificates against the CA bundle, and the host name
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


async def test_the_pool_builds_its_clients_on_it() -> None:
    pool = HttpPool(timeout=5.0)
    try:
        client_pool = pool.client._transport._pool  # type: ignore[attr-defined]
        assert client_pool._ssl_context is tls_context()
    finally:
        await pool.aclose()
