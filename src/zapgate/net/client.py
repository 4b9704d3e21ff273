"""The outbound HTTP client for calls made on a user's behalf (webhooks, media URLs).

Its connections are pinned: the host is resolved once, every answer passes the SSRF
guard (`net/ssrf.py`), and the TCP connection goes to a checked address. The URL keeps
the host name, so the Host header and the TLS SNI (and certificate check) are the
original host's. A DNS answer that changes between a check and the connection (DNS
rebinding) therefore cannot lead anywhere unchecked. Redirects are not followed by the
client: a caller that follows one makes a new request, whose connection is checked too."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpcore
import httpx

from zapgate.net import ssrf

# Reading stops while this much received data waits to be read (a large download from a
# fast server is not buffered whole), and goes on below a quarter of it.
READ_HIGH_WATER = 256 * 1024
# Writes are gathered into one send up to this size: a request's head and a small body
# go out together, not in a system call (and a TCP segment) each.
GATHER_LIMIT = 64 * 1024


class _Protocol(asyncio.Protocol):
    """The receiving end of a connection: data and the end of the stream wait here for
    `AsyncioStream.read`. So whether an idle connection has news (the server closed it)
    is known without asking the socket."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.ended = False
        self.error: BaseException | None = None
        self._paused_reading = False
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= READ_HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self._paused_reading = True
        _release(self._readable)

    def eof_received(self) -> bool:
        self.ended = True
        _release(self._readable)
        return False  # close our side too: HTTP/1.1 has nothing left to say

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        _release(self._readable)
        _release(self._writable)

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        _release(self._writable)
        self._writable = None

    async def readable(self) -> None:
        """Wait for data or the end of the stream."""
        if self.buffer or self.ended:
            return
        self._readable = asyncio.get_running_loop().create_future()
        try:
            await self._readable
        finally:
            self._readable = None

    def take(self, max_bytes: int) -> bytes:
        data = bytes(self.buffer[:max_bytes])
        del self.buffer[:max_bytes]
        if self._paused_reading and len(self.buffer) < READ_HIGH_WATER // 4:
            assert self.transport is not None
            self.transport.resume_reading()
            self._paused_reading = False
        return data

    async def drained(self) -> None:
        """Wait while the transport holds more unsent data than it wants."""
        if self._writable is not None and not self.ended:
            await asyncio.shield(self._writable)


def _release(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """httpcore's network stream on an asyncio transport, in place of AnyIO's stream
    (what httpcore uses on asyncio). Per request that saves work where the webhook
    dispatcher spends most of its time: no cancel scope around every read and write,
    a request's head and body sent in one system call, and the pool's check of every
    idle connection on every request ("is_readable") reads a flag instead of asking the
    socket (AnyIO also collected all of its attributes, peer address included, to
    answer it)."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._unsent: list[bytes] = []
        self._unsent_size = 0

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        await self._send(timeout)
        protocol = self._protocol
        try:
            async with asyncio.timeout(timeout):
                await protocol.readable()
        except TimeoutError:
            raise httpcore.ReadTimeout("timed out reading the response") from None
        if protocol.buffer:
            return protocol.take(max_bytes)
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""  # the server closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Gathered, and sent by the next read (or once enough is gathered): HTTP/1.1
        writes the whole request before it reads the response."""
        if not buffer:
            return
        self._unsent.append(buffer)
        self._unsent_size += len(buffer)
        if self._unsent_size >= GATHER_LIMIT:
            await self._send(timeout)

    async def _send(self, seconds: float | None) -> None:
        if not self._unsent:
            return
        data = b"".join(self._unsent)
        self._unsent.clear()
        self._unsent_size = 0
        if self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        try:
            self._transport.write(data)
            async with asyncio.timeout(seconds):
                await self._protocol.drained()
        except TimeoutError:
            raise httpcore.WriteTimeout("timed out sending the request") from None
        except (OSError, RuntimeError) as exc:
            raise httpcore.WriteError(str(exc)) from exc
        if self._protocol.error is not None and self._transport.is_closing():
            raise httpcore.WriteError(str(self._protocol.error))

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.close()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, ssl.SSLError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:
            raise httpcore.ConnectError("the connection closed in the TLS handshake")
        # The protocol now hears from the TLS transport (start_tls does not call
        # connection_made again): reading is paused and resumed on it, above TLS.
        self._protocol.transport = transport
        return AsyncioStream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            protocol = self._protocol
            return bool(protocol.buffer) or protocol.ended
        names = {
            "ssl_object": "ssl_object",
            "client_addr": "sockname",
            "server_addr": "peername",
            "socket": "socket",
        }
        return self._transport.get_extra_info(names[info]) if info in names else None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with name resolution done here, under the guard, and
    connections made with asyncio (`AsyncioStream`)."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

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
        last: Exception | None = None
        for ip in addresses:
            try:
                async with asyncio.timeout(timeout):
                    return await self._connect(str(ip), port, local_address, socket_options)
            except TimeoutError:
                raise httpcore.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
            except OSError as exc:
                last = exc
        # Say which host, never which addresses it resolved to.
        raise httpcore.ConnectError(f"cannot connect to {host}:{port}") from last

    @staticmethod
    async def _connect(
        ip: str,
        port: int,
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> AsyncioStream:
        """A TCP connection to a checked address (asyncio sets TCP_NODELAY on it)."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(
            _Protocol, ip, port, local_addr=(local_address, 0) if local_address else None
        )
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        assert isinstance(transport, asyncio.Transport)
        return AsyncioStream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from user URLs")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


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
        # One client serves every tenant's URLs: a cookie one receiver sets must never
        # reach another's (same host, another user). The jar's policy accepts none.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )
