"""The SSRF guard (issue 8, item 6): the address table, IPv4 embedded in IPv6, and the
decision taken on the address actually connected to (DNS rebinding, redirects).
Loopback only: names are `.test`, resolution is monkeypatched, receivers are 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.server
import ipaddress
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.media_samples import png_bytes
from tests.receiver import Receiver as WebhookReceiver
from zapgate.config import Settings
from zapgate.errors import UrlNotAllowed
from zapgate.net import ssrf
from zapgate.net.client import LIMITS, guarded_client
from zapgate.pipeline.webhooks import WebhookDispatcher
from zapgate.registry import Registry
from zapgate.services.media import MediaIntake

IMAGE = png_bytes()

# (address, refused?)
ADDRESSES = [
    # IPv4
    ("8.8.8.8", False),
    ("1.1.1.1", False),
    ("127.0.0.1", True),
    ("10.1.2.3", True),
    ("172.16.0.1", True),
    ("192.168.0.10", True),
    ("169.254.169.254", True),  # cloud metadata
    ("100.64.0.1", True),  # carrier-grade NAT
    ("0.0.0.0", True),
    ("224.0.0.1", True),
    ("240.0.0.1", True),
    ("192.0.2.1", True),  # documentation
    # IPv6
    ("2606:4700:4700::1111", False),
    ("::1", True),
    ("::", True),
    ("fe80::1", True),
    ("fc00::1", True),
    ("fd12:3456::1", True),
    ("fec0::1", True),  # site-local
    ("ff02::1", True),
    ("2001:db8::1", True),
    # IPv4-mapped ::ffff:0:0/96: the IPv4 decides
    ("::ffff:127.0.0.1", True),
    ("::ffff:10.0.0.1", True),
    ("::ffff:169.254.169.254", True),
    ("::ffff:8.8.8.8", False),
    # IPv4-compatible ::/96 (deprecated): refused whatever it embeds
    ("::127.0.0.1", True),
    ("::10.0.0.1", True),
    ("::8.8.8.8", True),
    # 6to4 2002::/16: the embedded gateway decides
    ("2002:7f00:1::1", True),
    ("2002:a00:1::1", True),
    ("2002:a9fe:a9fe::1", True),
    ("2002:808:808::1", False),
    # NAT64 well-known prefix 64:ff9b::/96: the IPv4 behind the translator decides
    ("64:ff9b::7f00:1", True),
    ("64:ff9b::a00:1", True),
    ("64:ff9b::a9fe:a9fe", True),
    ("64:ff9b::808:808", False),
    # local-use NAT64 64:ff9b:1::/48: a translator inside the operator's network
    ("64:ff9b:1::808:808", True),
    ("64:ff9b:1::a00:1", True),
    # Teredo 2001::/32: server and client (obfuscated) IPv4 both decide
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", True),  # client 192.0.2.45 (documentation)
    ("2001:0:a00:1:8000:63bf:f7f7:f7f7", True),  # server 10.0.0.1
    ("2001:0:808:808:8000:63bf:f7f7:f7f7", False),  # server 8.8.8.8, client 8.8.8.8
]


@pytest.mark.parametrize(("address", "refused"), ADDRESSES)
def test_address_table(address: str, refused: bool) -> None:
    assert ssrf.is_forbidden(ipaddress.ip_address(address)) is refused


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]]) -> list[str]:
    """Resolve the names in `answers` (each lookup takes the next answer, the last one
    repeats); IP literals resolve to themselves. Returns the names looked up."""
    asked: list[str] = []
    real = ssrf.resolve

    async def resolve(host: str, port: int) -> list[ssrf.IPAddress]:
        if host not in answers:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise OSError(f"{host} is not in the test's DNS") from None
            return await real(host, port)
        asked.append(host)
        queue = answers[host]
        found = queue.pop(0) if len(queue) > 1 else queue[0]
        return [ipaddress.ip_address(a) for a in found]

    monkeypatch.setattr(ssrf, "resolve", resolve)
    return asked


async def test_names_resolving_to_private_addresses_are_refused_without_the_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_dns(
        monkeypatch,
        {
            "internal.test": [["10.20.30.40"]],
            "mixed.test": [["8.8.8.8", "10.20.30.40"]],
            "mapped.test": [["::ffff:10.20.30.40"]],
            "sixtofour.test": [["2002:a14:1e28::1"]],
            "nat64.test": [["64:ff9b::a14:1e28"]],
            "public.test": [["8.8.8.8", "2606:4700:4700::1111"]],
        },
    )
    for host in ("internal.test", "mixed.test", "mapped.test", "sixtofour.test", "nat64.test"):
        with pytest.raises(UrlNotAllowed) as info:
            await ssrf.check_url(f"https://{host}/hook", allow_private=False)
        err = info.value
        assert err.error == f"url: {host} resolves to a non-public address.", err.error
        assert "10.20.30.40" not in err.error + str(err.hint) + str(err.to_dict())
    await ssrf.check_url("https://public.test/hook", allow_private=False)
    await ssrf.check_url("https://internal.test/hook", allow_private=True)


class Receiver(http.server.BaseHTTPRequestHandler):
    """Records every request; /img.png is an image, /to-internal and /to-mapped redirect
    to private addresses, /to-img redirects to /img.png."""

    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Host", "")))
        routes: dict[str, tuple[int, bytes, dict[str, str]]] = {
            "/img.png": (200, IMAGE, {"Content-Type": "image/png"}),
            "/hook": (200, b"ok", {}),
            "/to-img": (302, b"", {"Location": "/img.png"}),
            "/to-internal": (302, b"", {"Location": "http://internal.test/img.png"}),
            "/to-mapped": (307, b"", {"Location": "http://[::ffff:10.0.0.1]/img.png"}),
        }
        status, body, headers = routes.get(self.path, (404, b"no", {}))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[tuple[str, str]]]]:
    seen: list[tuple[str, str]] = []
    handler = type("Handler", (Receiver,), {"seen": seen})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1], seen
    srv.shutdown()
    srv.server_close()


async def test_connection_goes_to_the_resolved_address_with_the_original_host(
    monkeypatch: pytest.MonkeyPatch, receiver: tuple[int, list[tuple[str, str]]]
) -> None:
    port, seen = receiver
    fake_dns(monkeypatch, {"pinned.test": [["127.0.0.1"]]})
    async with guarded_client(allow_private=True, timeout=5) as client:
        r = await client.get(f"http://pinned.test:{port}/img.png")
    assert r.status_code == 200 and r.content == IMAGE
    assert seen == [("/img.png", f"pinned.test:{port}")]


async def test_dns_rebinding_cannot_reach_loopback(
    monkeypatch: pytest.MonkeyPatch, receiver: tuple[int, list[tuple[str, str]]]
) -> None:
    """The name is public when checked and loopback when connected to: refused at the
    connection, and the loopback receiver never hears of it."""
    port, seen = receiver
    asked = fake_dns(monkeypatch, {"rebind.test": [["8.8.8.8"], ["127.0.0.1"]]})
    url = f"http://rebind.test:{port}/img.png"
    await ssrf.check_url(url, allow_private=False)  # the check sees a public address
    async with guarded_client(allow_private=False, timeout=5) as client:
        with pytest.raises(UrlNotAllowed) as info:
            await client.get(url)
    assert "127.0.0.1" not in info.value.error
    assert asked == ["rebind.test", "rebind.test"] and seen == []
    # The media fetch takes the same path.
    intake = MediaIntake(Settings(allow_private_urls=False, media_fetch_timeout=5))
    with pytest.raises(UrlNotAllowed):
        await intake.from_url("image", url, mime=None, filename=None, caption=None)
    assert seen == []


@pytest.fixture
def loopback_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the guard take 127.0.0.1 for a public server, so redirects from a loopback
    receiver can be tested with the guard on."""
    real = ssrf.is_forbidden
    loopback = ipaddress.ip_address("127.0.0.1")
    monkeypatch.setattr(ssrf, "is_forbidden", lambda ip: ip != loopback and real(ip))


@pytest.mark.usefixtures("loopback_is_public")
async def test_redirects_to_private_addresses_are_refused(
    monkeypatch: pytest.MonkeyPatch, receiver: tuple[int, list[tuple[str, str]]]
) -> None:
    port, seen = receiver
    fake_dns(monkeypatch, {"files.test": [["127.0.0.1"]], "internal.test": [["10.0.0.1"]]})
    intake = MediaIntake(Settings(allow_private_urls=False, media_fetch_timeout=5))
    media = await intake.from_url(
        "image", f"http://files.test:{port}/to-img", mime=None, filename=None, caption=None
    )
    assert media.data == IMAGE and media.mime == "image/png"
    for path in ("/to-internal", "/to-mapped"):
        with pytest.raises(UrlNotAllowed) as info:
            await intake.from_url(
                "image", f"http://files.test:{port}{path}", mime=None, filename=None, caption=None
            )
    assert info.value.error == "url: ::ffff:10.0.0.1 resolves to a non-public address."
    assert [p for p, _ in seen] == ["/to-img", "/img.png", "/to-internal", "/to-mapped"]


async def test_the_guarded_client_follows_no_redirect(
    monkeypatch: pytest.MonkeyPatch, receiver: tuple[int, list[tuple[str, str]]]
) -> None:
    """Webhook deliveries use this client: a 3xx is an answer, never a second request."""
    port, seen = receiver
    async with guarded_client(allow_private=True, timeout=5) as client:
        r = await client.post(f"http://127.0.0.1:{port}/to-internal", content=b"{}")
    assert r.status_code == 302 and [p for p, _ in seen] == ["/to-internal"]


async def test_the_guarded_client_keeps_connections_alive_within_its_limits() -> None:
    """Keep-alive with the guard in the path: sequential POSTs share one connection; no
    more connections at once than the pool allows; an idle one is dropped after the
    keep-alive expiry (before common servers' own idle timeout of 5 s)."""
    assert LIMITS.keepalive_expiry is not None and LIMITS.keepalive_expiry < 5
    assert LIMITS.max_keepalive_connections == LIMITS.max_connections
    hook = WebhookReceiver(keep_alive=True).start()
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2, keepalive_expiry=0.3)
    try:
        async with guarded_client(allow_private=True, timeout=5, limits=limits) as client:
            for _ in range(5):
                assert (await client.post(hook.url("/seq"), content=b"{}")).status_code == 200
            assert len(hook.connections) == 1
            hook.slow["/par"] = 0.2
            answers = await asyncio.gather(
                *(client.post(hook.url("/par"), content=b"{}") for _ in range(4))
            )
            assert [r.status_code for r in answers] == [200] * 4
            assert len(hook.connections) == 2
            await asyncio.sleep(0.5)  # past the expiry: the idle connections go
            await client.post(hook.url("/seq"), content=b"{}")
            assert len(hook.connections) == 3
    finally:
        hook.stop()


async def test_unresolvable_names_are_a_connect_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {})
    async with guarded_client(allow_private=False, timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://nowhere.invalid/")


async def test_webhook_delivery_decides_on_the_address_it_connects_to(
    monkeypatch: pytest.MonkeyPatch,
    receiver: tuple[int, list[tuple[str, str]]],
    tmp_path: Path,
) -> None:
    """A webhook made while its host was public, delivered after the host turned to
    loopback: the delivery fails with the guard's error and the receiver hears nothing;
    with ZAPGATE_ALLOW_PRIVATE_URLS the same webhook is delivered."""
    port, seen = receiver
    fake_dns(monkeypatch, {"hook.test": [["8.8.8.8"], ["127.0.0.1"]]})
    url = f"http://hook.test:{port}/hook"
    registry = await Registry.open(f"sqlite+aiosqlite:///{tmp_path / 'zapgate.db'}")
    try:
        user = await registry.users.create("hooks@example.com")
        settings = Settings(allow_private_urls=False, webhook_backoff_base=60)
        await ssrf.check_url(url, allow_private=False)  # as the webhook service does
        hook = await registry.outbox.create_webhook(
            user.id, url=url, secret="s" * 32, events=["message.received"]
        )
        await registry.outbox.ping_webhook(user.id, hook.id)
        dispatcher = WebhookDispatcher(settings, registry)
        try:
            await dispatcher._drain(hook)
        finally:
            await dispatcher.close()
        [delivery] = await registry.outbox.list_deliveries(user.id, hook.id)
        assert delivery.status == "pending" and delivery.last_status_code is None
        assert delivery.last_error == "url: hook.test resolves to a non-public address."
        assert seen == []

        allowed = WebhookDispatcher(
            settings.model_copy(update={"allow_private_urls": True}), registry
        )
        await registry.outbox.update_delivery(
            delivery.id,
            status="pending",
            attempts=delivery.attempts,
            next_attempt_at=datetime.now(UTC),
            status_code=None,
            error=delivery.last_error,
        )
        try:
            await allowed._drain(hook)
        finally:
            await allowed.close()
        assert seen == [("/hook", f"hook.test:{port}")]
        [delivery] = await registry.outbox.list_deliveries(user.id, hook.id)
        assert delivery.status == "delivered" and delivery.last_status_code == 200
    finally:
        await registry.close()
