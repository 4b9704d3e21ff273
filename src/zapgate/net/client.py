"""The outbound HTTP client for calls made on a user's behalf (webhooks, media URLs).

Its connections are pinned: the host is resolved once, every answer passes the SSRF
guard (`net/ssrf.py`), and the TCP connection goes to a checked address. The URL keeps
the host name, so the Host header and the TLS SNI (and certificate check) are the
original host's. A DNS answer that changes between a check and the connection (DNS
rebinding) therefore cannot lead anywhere unchecked. Redirects are not followed by the
client: a caller that follows one makes a new request, whose connection is checked too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

import httpcore
import httpx

from zapgate.net import ssrf


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with name resolution done here, under the guard."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await ssrf.resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        ssrf.ensure_allowed(host, addresses, allow_private=self.allow_private)
        last: httpcore.ConnectError | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        # Say which host, never which addresses it resolved to.
        raise httpcore.ConnectError(f"cannot connect to {host}:{port}") from last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from user URLs")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# The pool's limits. Connections are kept alive and reused (HTTP/1.1 keep-alive: a busy
# webhook pays for one TCP connection, not one per POST); every connection may be kept, so
# reuse holds with as many receivers busy at once as the pool has connections. An idle
# connection goes after 4 s: below the 5 s idle timeout of common servers (uvicorn,
# Node.js, Apache), so it is not reused just as the server closes it, which would fail
# the request. (httpcore's own defaults, which the pool had before: 10 connections, idle
# ones kept forever.)
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=4.0)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool that connects through GuardedBackend."""

    def __init__(self, *, allow_private: bool, limits: httpx.Limits = LIMITS) -> None:
        super().__init__(trust_env=False, limits=limits)
        # httpx builds its pool without a way to pass a network backend; the pool it made
        # is replaced by one with the same TLS settings and limits and the guarded backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(allow_private=allow_private),
        )


def guarded_client(
    *,
    allow_private: bool,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    limits: httpx.Limits = LIMITS,
) -> httpx.AsyncClient:
    """An AsyncClient for user-given URLs: pinned, checked connections, kept alive in a
    pool within `limits`, no redirects followed, no proxy from the environment. A
    forbidden address raises UrlNotAllowed."""
    return httpx.AsyncClient(
        transport=GuardedTransport(allow_private=allow_private, limits=limits),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers=headers,
    )
