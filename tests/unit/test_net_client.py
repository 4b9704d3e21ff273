"""The guarded client's own connections (asyncio transports, `net/client.py`): TLS with
the certificate checked, a keep-alive connection the server closed while idle, a large
download read with flow control, timeouts. Loopback only; the certificate is made for
the test with the openssl command."""

from __future__ import annotations

import asyncio
import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from zapgate.net.client import guarded_client

BIG = bytes(range(256)) * (12 * 1024)  # 3 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: set[tuple[str, int]]

    def do_GET(self) -> None:
        self.connections.add(self.client_address)
        body = BIG if self.path == "/big" else b"hello"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.connections.add(self.client_address)
        body = self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(context: ssl.SSLContext | None = None) -> tuple[http.server.ThreadingHTTPServer, set]:  # type: ignore[type-arg]
    connections: set[tuple[str, int]] = set()
    handler = type("H", (Handler,), {"connections": connections})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, connections


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(
    certificate: tuple[Path, Path],
) -> Iterator[tuple[int, set[tuple[str, int]]]]:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server, connections = serve(context)
    yield server.server_address[1], connections
    server.shutdown()
    server.server_close()


@pytest.fixture
def plain_server() -> Iterator[tuple[int, set[tuple[str, int]]]]:
    server, connections = serve()
    yield server.server_address[1], connections
    server.shutdown()
    server.server_close()


async def test_tls_with_the_certificate_checked(
    tls_server: tuple[int, set[tuple[str, int]]],
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, connections = tls_server
    url = f"https://localhost:{port}/"
    async with guarded_client(allow_private=True, timeout=5) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(url)  # not signed by a CA the client trusts

    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    monkeypatch.setattr(httpx, "create_ssl_context", lambda **_: trusted)
    async with guarded_client(allow_private=True, timeout=5) as client:
        first = await client.get(url)
        second = await client.post(url, content=b"over tls")
        async with client.stream("GET", f"https://localhost:{port}/big") as r:
            chunks = []
            async for chunk in r.aiter_bytes():
                chunks.append(chunk)
                await asyncio.sleep(0)  # a slow reader: reading pauses, above TLS
    assert (first.status_code, first.content, second.content) == (200, b"hello", b"over tls")
    assert b"".join(chunks) == BIG
    assert len(connections) == 1  # kept alive over TLS too


async def test_a_large_body_arrives_whole(plain_server: tuple[int, set[tuple[str, int]]]) -> None:
    """Reading pauses while the unread data is large and goes on as it is read."""
    port, _ = plain_server
    async with (
        guarded_client(allow_private=True, timeout=5) as client,
        client.stream("GET", f"http://127.0.0.1:{port}/big") as r,
    ):
        chunks = []
        async for chunk in r.aiter_bytes():
            chunks.append(chunk)
            await asyncio.sleep(0)  # a slow reader
    assert b"".join(chunks) == BIG


@pytest.fixture
async def closes_when_idle() -> AsyncIterator[tuple[int, list[int]]]:
    """Answers one request per connection with keep-alive, then closes the connection
    0.1 s later, as a server's idle timeout does."""
    accepted: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(h.split(b":")[1])
                for h in head.split(b"\r\n")
                if h.lower().startswith(b"content-length")
            ),
            0,
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], accepted
    server.close()


async def test_a_connection_the_server_closed_while_idle_is_not_reused(
    closes_when_idle: tuple[int, list[int]],
) -> None:
    """The pool sees that the idle connection ended and makes a new one, instead of
    sending the next request into a closed connection (a failed delivery)."""
    port, accepted = closes_when_idle
    async with guarded_client(allow_private=True, timeout=5) as client:
        assert (await client.post(f"http://127.0.0.1:{port}/", content=b"1")).content == b"ok"
        await asyncio.sleep(0.3)
        assert (await client.post(f"http://127.0.0.1:{port}/", content=b"2")).content == b"ok"
    assert len(accepted) == 2


async def test_a_silent_server_is_a_read_timeout() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with guarded_client(allow_private=True, timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(f"http://127.0.0.1:{port}/", content=b"{}")
    finally:
        server.close()


async def test_nothing_listening_is_a_connect_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with guarded_client(allow_private=True, timeout=2) as client:
        with pytest.raises(httpx.ConnectError, match=f"cannot connect to 127.0.0.1:{port}"):
            await client.get(f"http://127.0.0.1:{port}/")


class CookieHandler(http.server.BaseHTTPRequestHandler):
    """Sets a cookie on every answer and echoes the Cookie header it was sent."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = (self.headers.get("cookie") or "").encode()
        self.send_response(200)
        self.send_header("set-cookie", "tenant=alice; Path=/")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


async def test_a_cookie_one_receiver_sets_never_reaches_another() -> None:
    # One client serves every tenant's webhooks; two of them on the same host.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CookieHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        async with guarded_client(allow_private=True, timeout=5) as client:
            first = await client.post(f"{base}/alice-hook", content=b"{}")
            assert "tenant=alice" in first.headers["set-cookie"]
            second = await client.post(f"{base}/bob-hook", content=b"{}")
            assert second.content == b""  # no Cookie header was sent
            assert not list(client.cookies.jar)
    finally:
        server.shutdown()
        server.server_close()
