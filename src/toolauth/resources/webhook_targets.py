"""Connections for webhook deliveries, made to the address that was checked (SSRF, DNS
rebinding).

Checking a host's addresses and then letting the HTTP client resolve it again to connect
leaves a gap: a name whose first answer is public and second is ``127.0.0.1`` passes the
check and reaches loopback. Here the name is resolved once, when the connection is made;
every address is judged (loopback, private, link-local and other non-global ones are refused
unless ``TOOLAUTH_WEBHOOK_ALLOW_PRIVATE``), and the socket connects to one of those very
addresses. The connection pool keys on the host name, so TLS still sends it as SNI and checks
the certificate against it (RFC 6125 §6), and a pooled connection was checked when it opened.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import httpcore
import httpx

from .._http import tls_context
from ..webhooks.urls import RefusedTargetError, is_public_address

__all__ = ["Resolver", "TargetNetwork", "resolve", "target_transport"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
_MAX_BODY = 64 * 1024  # a receiver's answer is not used: read a little, then drop the rest


async def resolve(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system resolver, in its order."""
    found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class TargetNetwork(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses it resolved and judged itself."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = resolve,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._resolver = resolver
        self._network = network or httpcore.AnyIOBackend()

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``: resolved once, all of them public."""
        literal = _literal(host)
        if literal is not None:
            found = [literal]
        else:
            try:
                found = await self._resolver(host, port)
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise RefusedTargetError(f"cannot resolve {host} ({reason})") from exc
        if not found:
            raise RefusedTargetError(f"{host} resolves to no address")
        private = [a for a in found if not is_public_address(a)]
        if private and not self._allow_private:
            raise RefusedTargetError(
                f"{host} resolves to a non-public address ({', '.join(sorted(private))}); set "
                "TOOLAUTH_WEBHOOK_ALLOW_PRIVATE=1 to allow it"
            )
        return found

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await self.addresses(host, port):
            try:
                return await self._network.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the next address, as a resolver's order suggests
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedTargetError("webhooks are not sent over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class _TargetTransport(httpx.AsyncBaseTransport):
    """An httpx transport over a connection pool on :class:`TargetNetwork`."""

    def __init__(self, network: TargetNetwork) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls_context(), max_connections=100,
            max_keepalive_connections=20, keepalive_expiry=5.0, network_backend=network,
        )  # fmt: skip

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = request.url
        response = await self._pool.handle_async_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
                ),
                headers=request.headers.raw, content=request.stream,
                extensions=request.extensions,
            )
        )  # fmt: skip
        body = b""
        try:
            async for chunk in response.aiter_stream():
                body += chunk
                if len(body) > _MAX_BODY:
                    break
        finally:
            await response.aclose()
        return httpx.Response(response.status, headers=response.headers, content=body[:_MAX_BODY])

    async def aclose(self) -> None:
        await self._pool.aclose()


def target_transport(network: TargetNetwork) -> httpx.AsyncBaseTransport:
    """The transport webhook deliveries use: connections only to checked addresses."""
    return _TargetTransport(network)
