"""The simulated WhatsApp network: the network itself, its persistence, its HTTP server
and client, and what the sim engine does that only a simulated network can provoke."""

from __future__ import annotations

import asyncio
import base64
import re
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import free_port
from zapgate.domain.events import EngineEvent, QrUpdated, StateChanged
from zapgate.domain.ids import new_message_id
from zapgate.domain.state import SessionState
from zapgate.engines.base import EngineOptions
from zapgate.engines.sim import CREDS_FILE, SimEngine
from zapgate.errors import (
    ConfigError,
    DeviceOffline,
    EngineError,
    GatewayError,
    InvalidPhone,
    NotFound,
    NumberNotLinked,
    PairCodeNotFound,
    QrNotFound,
)
from zapgate.simnet.client import HttpSimLink, LocalSimLink, SimLink, make_sim_link
from zapgate.simnet.network import SimNetwork
from zapgate.simnet.server import create_app, default_state_path

S = SessionState
PHONE_A = "+5511999990001"
PHONE_B = "+5511999990002"
STRANGER = "+5511999990077"
B64 = r"[A-Za-z0-9+/]+={0,2}"
QR_RE = re.compile(rf"^2@({B64}),({B64}),({B64}),({B64})$")
MSG_ID_RE = re.compile(r"^3EB0[0-9A-F]{16}$")


async def wait_for(pred: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def leftovers(directory: Path) -> list[Path]:
    return list(directory.glob(".simnet.json.*"))


async def drain(net: SimNetwork, device: str, after: int = 0) -> list[dict[str, Any]]:
    return await net.next_events(device, after, 0)


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[SimNetwork]:
    network = SimNetwork(tmp_path / "simnet.json", deliver_delay=0.01, read_delay=0.03)
    yield network
    await network.aclose()


async def link_device(net: SimNetwork, device: str, phone: str) -> dict[str, Any]:
    """Connect `device`, scan its QR with `phone`; returns the creds from `paired`."""
    assert await net.connect(device, None) is None
    await net.scan(await net.request_qr(device), phone)
    (paired,) = [e for e in await drain(net, device) if e["type"] == "paired"]
    return dict(paired["creds"])


# -- the network -----------------------------------------------------------------------------
async def test_qr_is_shaped_like_whatsapps(net: SimNetwork) -> None:
    await net.connect("u1-a", None)
    qr = await net.request_qr("u1-a")
    m = QR_RE.fullmatch(qr)
    assert m, qr
    assert [len(base64.b64decode(g)) for g in m.groups()[1:]] == [32, 32, 32]


async def test_a_new_qr_invalidates_the_previous_one(net: SimNetwork) -> None:
    await net.connect("u1-a", None)
    old = await net.request_qr("u1-a")
    new = await net.request_qr("u1-a")
    assert old != new
    with pytest.raises(QrNotFound) as info:
        await net.scan(old, PHONE_A)
    err = info.value
    assert isinstance(err, NotFound) and err.status == 404 and err.errcode == "qr_not_found"
    assert "QR" in err.hint and "expired" in err.hint
    assert await net.scan(new, PHONE_A) == "u1-a"
    with pytest.raises(QrNotFound):  # a QR links once
        await net.scan(new, PHONE_B)


async def test_bad_qr_and_bad_phone_are_clear_errors(net: SimNetwork) -> None:
    with pytest.raises(QrNotFound, match="unknown or has expired"):
        await net.scan("2@nonsense,a,b,c", PHONE_A)
    await net.connect("u1-a", None)
    qr = await net.request_qr("u1-a")
    with pytest.raises(InvalidPhone):
        await net.scan(qr, "not a phone")


async def test_scan_links_and_connect_resumes_with_the_token(net: SimNetwork) -> None:
    creds = await link_device(net, "u1-a", PHONE_A)
    assert set(creds) == {"device_id", "phone", "token"}
    assert creds["device_id"] == "u1-a" and creds["phone"] == PHONE_A
    assert await net.connect("u1-a", creds) == PHONE_A
    assert await net.connect("u1-a", {**creds, "token": "forged"}) is None
    assert await net.connect("u2-b", creds) is None  # creds belong to one device
    assert net.linked_devices() == {"u1-a": PHONE_A}


async def test_links_persist_across_a_new_network(tmp_path: Path) -> None:
    path = tmp_path / "simnet.json"
    first = SimNetwork(path)
    creds = await link_device(first, "u1-a", PHONE_A)
    await first.aclose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []  # the atomic write cleaned up after itself

    second = SimNetwork(path)
    assert await second.connect("u1-a", creds) == PHONE_A
    await second.logout("u1-a")
    third = SimNetwork(path)
    assert await third.connect("u1-a", creds) is None
    assert third.linked_devices() == {}


async def test_a_corrupt_state_file_is_refused_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "simnet.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"simnet\.json"):
        SimNetwork(path)


async def test_pair_code(net: SimNetwork) -> None:
    await net.connect("u1-a", None)
    code = await net.pair_code("u1-a", PHONE_A)
    assert re.fullmatch(r"[A-Z0-9]{8}", code)
    with pytest.raises(PairCodeNotFound, match="another number"):
        await net.enter_pair_code(PHONE_B, code)
    with pytest.raises(PairCodeNotFound):
        await net.enter_pair_code(PHONE_A, "ZZZZZZZZ")
    # Typed the way WhatsApp shows it: two halves, any case.
    assert await net.enter_pair_code(PHONE_A, f"{code[:4].lower()}-{code[4:]}") == "u1-a"
    events = await drain(net, "u1-a")
    assert [e["type"] for e in events] == ["paired"] and events[0]["phone"] == PHONE_A


async def test_send_acks_in_order_and_phone_inbox(net: SimNetwork) -> None:
    await link_device(net, "u1-a", PHONE_A)
    request = new_message_id()
    mid = await net.send("u1-a", request, STRANGER, "hello")
    assert MSG_ID_RE.fullmatch(mid) and mid != request  # the network's own id
    seen: list[str] = []
    after = 0
    while "read" not in seen:
        for e in await net.next_events("u1-a", after, 2.0):
            after = e["seq"]
            if e["type"] == "ack":
                assert e["id"] == mid
                seen.append(e["status"])
    # Sent is the send returning (WhatsApp's server ack); receipts follow.
    assert seen == ["delivered", "read"]
    inbox = await net.phone_inbox(STRANGER)
    assert [(m["id"], m["from"], m["text"]) for m in inbox] == [(mid, PHONE_A, "hello")]
    assert await net.phone_inbox(PHONE_B) == []


async def test_a_retried_request_is_not_sent_twice(net: SimNetwork) -> None:
    await link_device(net, "u1-a", PHONE_A)
    request = new_message_id()
    first = await net.send("u1-a", request, STRANGER, "once")
    assert await net.send("u1-a", request, STRANGER, "once") == first
    other = await net.send("u1-a", new_message_id(), STRANGER, "once")
    assert other != first
    assert [m["id"] for m in await net.phone_inbox(STRANGER)] == [first, other]


async def test_lid_addressed_phones_and_what_a_device_learns(net: SimNetwork) -> None:
    await link_device(net, "u1-a", PHONE_A)
    lid = await net.lid_of(STRANGER)
    assert re.fullmatch(r"[1-9][0-9]{14}@lid", lid)
    assert await net.lid_of(STRANGER) == lid and await net.lid_of(PHONE_B) != lid
    cursor = [0]

    async def new_messages() -> list[dict[str, Any]]:
        events = await drain(net, "u1-a", cursor[0])
        cursor[0] = max([cursor[0], *(e["seq"] for e in events)])
        return [e for e in events if e["type"] == "message"]

    # A phone number's messages carry its LID beside it; the device learns the mapping.
    await net.phone_send(PHONE_B, PHONE_A, "by number")
    (m,) = await new_messages()
    lid_b = await net.lid_of(PHONE_B)
    assert (m["chat"], m["sender"], m["sender_alt"]) == (PHONE_B, PHONE_B, lid_b)
    assert await net.pn_for_lid("u1-a", await net.lid_of(PHONE_B)) == PHONE_B

    # LID-addressed without the number: the device cannot tell who it is...
    assert await net.address_by_lid(STRANGER, share_phone=False) == lid
    await net.phone_send(STRANGER, PHONE_A, "who am I?")
    (m,) = await new_messages()
    assert (m["chat"], m["sender"], m["sender_alt"]) == (lid, lid, None)
    assert await net.pn_for_lid("u1-a", lid) is None
    # ...but can answer the LID, and the phone gets it.
    wa_id = await net.send("u1-a", new_message_id(), lid, "hi, whoever you are")
    assert [(x["id"], x["from"]) for x in await net.phone_inbox(STRANGER)] == [(wa_id, PHONE_A)]
    assert await net.pn_for_lid("u1-a", lid) is None
    # Sending to the number looks its LID up (usync): the mapping is learned.
    await net.send("u1-a", new_message_id(), STRANGER, "by number now")
    assert await net.pn_for_lid("u1-a", lid) == STRANGER

    # LID-addressed with the number beside it.
    await net.address_by_lid(STRANGER, share_phone=True)
    await net.phone_send(STRANGER, PHONE_A, "here is my number")
    assert [(x["chat"], x["sender_alt"]) for x in await new_messages()] == [(lid, STRANGER)]

    with pytest.raises(NotFound):
        await net.send("u1-a", new_message_id(), "123456789012345@lid", "nobody")


async def test_two_linked_devices_can_chat(net: SimNetwork) -> None:
    await link_device(net, "u1-a", PHONE_A)
    await link_device(net, "u2-b", PHONE_B)
    mid = await net.send("u1-a", new_message_id(), PHONE_B, "hi B")
    msgs = [e for e in await drain(net, "u2-b") if e["type"] == "message"]
    assert [(m["id"], m["chat"], m["sender"], m["text"]) for m in msgs] == [
        (mid, PHONE_A, PHONE_A, "hi B")
    ]
    assert not [e for e in await drain(net, "u2-b") if e["type"] == "ack"]


async def test_phone_send_reaches_every_linked_device_of_the_number(net: SimNetwork) -> None:
    await link_device(net, "u1-a", PHONE_A)
    await link_device(net, "u1-a2", PHONE_A)  # a second companion of the same phone
    mid = await net.phone_send(STRANGER, PHONE_A, "oi")
    assert MSG_ID_RE.fullmatch(mid)
    for device in ("u1-a", "u1-a2"):
        (msg,) = [e for e in await drain(net, device) if e["type"] == "message"]
        assert (msg["id"], msg["chat"], msg["sender"], msg["text"]) == (
            mid,
            STRANGER,
            STRANGER,
            "oi",
        )
        assert msg["timestamp"]


async def test_phone_send_to_an_unlinked_number(net: SimNetwork) -> None:
    with pytest.raises(NumberNotLinked) as info:
        await net.phone_send(STRANGER, PHONE_B, "anyone?")
    assert info.value.errcode == "number_not_linked" and info.value.status == 404
    assert "scan its QR" in info.value.hint


async def test_next_events_waits_acknowledges_and_times_out(net: SimNetwork) -> None:
    await link_device(net, "u1-a", PHONE_A)
    first = await drain(net, "u1-a")
    last = first[-1]["seq"]
    assert await net.next_events("u1-a", last, 0.02) == []  # acknowledged, then nothing
    waiter = asyncio.create_task(net.next_events("u1-a", last, 5.0))
    await asyncio.sleep(0.02)
    assert not waiter.done()
    mid = await net.phone_send(STRANGER, PHONE_A, "wake up")
    events = await asyncio.wait_for(waiter, 2.0)
    assert [(e["type"], e["id"]) for e in events] == [("message", mid)]
    assert events[0]["seq"] > last


async def test_unacknowledged_events_survive_a_reconnect(net: SimNetwork) -> None:
    creds = await link_device(net, "u1-a", PHONE_A)
    after = (await drain(net, "u1-a"))[-1]["seq"]
    assert await drain(net, "u1-a", after) == []  # reading after `after` acknowledges it
    await net.disconnect("u1-a")
    mid = await net.phone_send(STRANGER, PHONE_A, "while you were away")
    assert await net.connect("u1-a", creds) == PHONE_A
    events = await net.next_events("u1-a", 0, 0)
    assert [e.get("id") for e in events if e["type"] == "message"] == [mid]
    assert all(e["seq"] > after for e in events)


async def test_disconnect_is_seen_by_the_reader(net: SimNetwork) -> None:
    await link_device(net, "u1-a", PHONE_A)
    last = (await drain(net, "u1-a"))[-1]["seq"]
    waiter = asyncio.create_task(net.next_events("u1-a", last, 5.0))
    await asyncio.sleep(0.02)
    await net.disconnect("u1-a", reason="test drop")
    events = await asyncio.wait_for(waiter, 2.0)
    assert [(e["type"], e["reason"]) for e in events] == [("disconnected", "test drop")]
    with pytest.raises(DeviceOffline):
        await net.request_qr("u1-a")


async def test_logout_unlinks_and_tells_the_device(net: SimNetwork) -> None:
    creds = await link_device(net, "u1-a", PHONE_A)
    await net.logout("u1-a")
    await net.logout("u1-a")  # idempotent
    events = await drain(net, "u1-a")
    assert [e["type"] for e in events][-1] == "logged_out"
    assert await net.connect("u1-a", creds) is None
    assert await drain(net, "u1-a") == []  # a fresh unlinked device replays nothing
    with pytest.raises(NumberNotLinked):
        await net.phone_send(STRANGER, PHONE_A, "gone?")


async def test_device_ids_are_validated(net: SimNetwork) -> None:
    with pytest.raises(GatewayError) as info:
        await net.connect("../etc", None)
    assert info.value.status == 422


# -- the link helpers ------------------------------------------------------------------------
async def test_make_sim_link(tmp_path: Path) -> None:
    local = make_sim_link(None, default_state_path(tmp_path))
    assert isinstance(local, LocalSimLink) and isinstance(local, SimLink)
    assert local.network.state_path == tmp_path / "simnet.json"
    remote = make_sim_link("http://127.0.0.1:5090", tmp_path / "x.json")
    assert isinstance(remote, HttpSimLink) and remote.base_url == "http://127.0.0.1:5090"
    await remote.aclose()
    with pytest.raises(ConfigError, match="ZAPGATE_SIMNET_URL"):
        make_sim_link("127.0.0.1:5090", tmp_path / "x.json")


# -- over HTTP -------------------------------------------------------------------------------
@pytest.fixture
async def simnet_url(net: SimNetwork) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(net),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="test:simnet")
    await wait_for(lambda: server.started, what="simnet to listen")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_http_health_and_error_shape(simnet_url: str) -> None:
    async with httpx.AsyncClient(base_url=simnet_url) as http:
        health = await http.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        bad = await http.post("/phones/%2B5511999990001/scan", json={"qr": "2@nope"})
        assert bad.status_code == 404
        assert bad.json()["errcode"] == "qr_not_found" and bad.json()["hint"]
        invalid = await http.post("/phones/%2B5511999990001/scan", json={})
        assert invalid.status_code == 422 and invalid.json()["errcode"] == "validation_error"
        phone = await http.post("/phones/123/messages", json={"to": PHONE_A, "text": "x"})
        assert phone.status_code == 422 and phone.json()["errcode"] == "invalid_phone"


async def test_http_link_does_everything_the_local_one_does(
    net: SimNetwork, simnet_url: str
) -> None:
    link = HttpSimLink(simnet_url, timeout=5.0)
    try:
        assert await link.connect("u1-a", None) is None
        qr = await link.request_qr("u1-a")
        assert QR_RE.fullmatch(qr)
        with pytest.raises(QrNotFound) as info:
            await link.scan("2@stale", PHONE_A)
        assert info.value.hint and info.value.status == 404
        assert await link.scan(qr, PHONE_A) == "u1-a"  # '+' survives the URL path
        (paired,) = await link.next_events("u1-a", 0, 1.0)
        creds = paired["creds"]
        assert await link.connect("u1-a", creds) == PHONE_A

        request = new_message_id()
        mid = await link.send("u1-a", request, STRANGER, "over http")
        assert MSG_ID_RE.fullmatch(mid) and mid != request
        assert await link.send("u1-a", request, STRANGER, "over http") == mid
        assert [m["text"] for m in await link.phone_inbox(STRANGER)] == ["over http"]

        waiter = asyncio.create_task(link.next_events("u1-a", paired["seq"], 5.0))
        got = await asyncio.wait_for(waiter, 3.0)  # the delivered receipt comes soon
        assert (got[0]["type"], got[0]["id"], got[0]["status"]) == ("ack", mid, "delivered")

        lid = await link.lid_of(STRANGER)
        assert await link.address_by_lid(STRANGER, share_phone=False) == lid
        assert await link.pn_for_lid("u1-a", lid) == STRANGER  # learned by sending to it
        assert await link.pn_for_lid("u1-a", await link.lid_of(PHONE_B)) is None

        in_id = await link.phone_send(STRANGER, PHONE_A, "hi over http")
        assert MSG_ID_RE.fullmatch(in_id)
        with pytest.raises(NumberNotLinked):
            await link.phone_send(STRANGER, PHONE_B, "nobody")

        await link.connect("u2-b", None)
        code = await link.pair_code("u2-b", PHONE_B)
        with pytest.raises(PairCodeNotFound):
            await link.enter_pair_code(PHONE_A, code)
        assert await link.enter_pair_code(PHONE_B, code) == "u2-b"

        await link.disconnect("u2-b")
        (dropped,) = await link.next_events("u2-b", 0, 1.0)
        assert dropped["type"] == "disconnected"
        await link.logout("u1-a")
        assert net.linked_devices() == {"u2-b": PHONE_B}
    finally:
        await link.aclose()


async def test_http_long_poll_is_held_then_released(simnet_url: str) -> None:
    link = HttpSimLink(simnet_url, timeout=5.0)
    try:
        await link.connect("u1-a", None)
        t0 = time.monotonic()
        assert await link.next_events("u1-a", 0, 0.3) == []
        assert time.monotonic() - t0 >= 0.25
    finally:
        await link.aclose()


async def test_unreachable_simnet_is_an_engine_error_naming_the_url() -> None:
    port = free_port()  # nothing listens there
    link = HttpSimLink(f"http://127.0.0.1:{port}", timeout=2.0)
    try:
        with pytest.raises(EngineError) as info:
            await link.connect("u1-a", None)
        assert f"127.0.0.1:{port}" in info.value.error
        assert "zapgate simnet" in info.value.hint
    finally:
        await link.aclose()


# -- the sim engine, where only the simulated network can provoke it -------------------------
class Rec:
    def __init__(self) -> None:
        self.events: list[EngineEvent] = []

    async def __call__(self, event: EngineEvent) -> None:
        self.events.append(event)

    def states(self) -> list[tuple[SessionState, str | None]]:
        return [(e.state, e.reason) for e in self.events if isinstance(e, StateChanged)]

    def qrs(self) -> list[str]:
        return [e.qr for e in self.events if isinstance(e, QrUpdated)]


def make_engine(link: SimLink, session_dir: Path, client_id: str = "u1-a") -> tuple[SimEngine, Rec]:
    rec = Rec()
    engine = SimEngine(
        client_id=client_id,
        session_dir=session_dir,
        emit=rec,
        options=EngineOptions(qr_first_ttl=30, qr_ttl=30, qr_max_rotations=3),
        link=link,
    )
    engine.reconnect_base = 0.01
    engine.reconnect_cap = 0.05
    return engine, rec


async def linked_engine(net: SimNetwork, tmp_path: Path) -> tuple[SimEngine, Rec]:
    engine, rec = make_engine(LocalSimLink(net), tmp_path / "sessions" / "u1-a")
    await engine.start()
    await wait_for(lambda: bool(rec.qrs()), what="a QR")
    await net.scan(rec.qrs()[-1], PHONE_A)
    await wait_for(lambda: engine.state is S.CONNECTED, what="CONNECTED")
    return engine, rec


async def test_engine_creds_file_is_private(net: SimNetwork, tmp_path: Path) -> None:
    engine, _ = await linked_engine(net, tmp_path)
    try:
        creds = engine.session_dir / CREDS_FILE
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        assert '"phone": "+5511999990001"' in creds.read_text()
    finally:
        await engine.stop()


async def test_engine_reconnects_after_a_drop(net: SimNetwork, tmp_path: Path) -> None:
    engine, rec = await linked_engine(net, tmp_path)
    try:
        await net.disconnect("u1-a", reason="server restart")
        await wait_for(
            lambda: (S.DISCONNECTED, "server restart") in rec.states(), what="DISCONNECTED"
        )
        await wait_for(lambda: engine.state is S.CONNECTED, what="CONNECTED again")
        assert rec.states()[-2:] == [(S.DISCONNECTED, "server restart"), (S.CONNECTED, None)]
        assert len(rec.qrs()) == 1  # resumed with its creds, no new QR
        assert engine.phone == PHONE_A
    finally:
        await engine.stop()


async def test_phone_side_unlink_logs_the_engine_out(net: SimNetwork, tmp_path: Path) -> None:
    engine, _ = await linked_engine(net, tmp_path)
    await net.logout("u1-a")  # the phone removes the linked device
    await wait_for(lambda: engine.state is S.LOGGED_OUT, what="LOGGED_OUT")
    assert not engine.has_credentials() and engine.phone is None
    await engine.stop()


async def test_stale_creds_ask_for_a_new_qr(net: SimNetwork, tmp_path: Path) -> None:
    engine, _ = await linked_engine(net, tmp_path)
    await engine.stop()
    fresh = SimNetwork(deliver_delay=0.01, read_delay=0.03)  # a network that never knew it
    again, rec = make_engine(LocalSimLink(fresh), engine.session_dir)
    try:
        await again.start()
        assert again.state is S.SCAN_QR and rec.qrs()
        assert not again.has_credentials()
    finally:
        await again.stop()
        await fresh.aclose()


async def test_stopped_session_qr_no_longer_scans(net: SimNetwork, tmp_path: Path) -> None:
    engine, rec = make_engine(LocalSimLink(net), tmp_path / "sessions" / "u1-a")
    await engine.start()
    qr = rec.qrs()[-1]
    await engine.stop()
    with pytest.raises(QrNotFound):
        await net.scan(qr, PHONE_A)


async def test_unreachable_simnet_disconnects_with_the_host(tmp_path: Path) -> None:
    port = free_port()
    link = HttpSimLink(f"http://127.0.0.1:{port}", timeout=2.0)
    engine, rec = make_engine(link, tmp_path / "sessions" / "u1-a")
    try:
        await asyncio.wait_for(engine.start(), 3.0)  # never hangs the caller
        assert engine.state is S.DISCONNECTED
        assert engine.state_reason and f"127.0.0.1:{port}" in engine.state_reason
        await asyncio.sleep(0.1)  # it keeps retrying, without flooding state reports
        assert [s for s, _ in rec.states()].count(S.DISCONNECTED) == 1
        assert engine.state is S.DISCONNECTED
    finally:
        t0 = time.monotonic()
        await asyncio.wait_for(engine.stop(), 3.0)
        assert time.monotonic() - t0 < 2.0
        await link.aclose()
    assert engine.state is S.STOPPED


async def test_engine_comes_back_when_the_simnet_does(tmp_path: Path) -> None:
    port = free_port()
    net = SimNetwork(tmp_path / "simnet.json", deliver_delay=0.01, read_delay=0.03)
    link = HttpSimLink(f"http://127.0.0.1:{port}", timeout=2.0)
    engine, rec = make_engine(link, tmp_path / "sessions" / "u1-a")
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(net),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
    )
    task: asyncio.Task[None] | None = None
    try:
        await engine.start()
        assert engine.state is S.DISCONNECTED
        task = asyncio.create_task(server.serve(), name="test:simnet-late")
        await wait_for(
            lambda: engine.state is S.SCAN_QR and bool(rec.qrs()), what="a QR once simnet is up"
        )
    finally:
        await engine.stop()
        await link.aclose()
        server.should_exit = True
        if task is not None:
            await task
        await net.aclose()


async def test_engine_without_a_network_is_a_clear_error(tmp_path: Path) -> None:
    engine = SimEngine(
        client_id="u1-a", session_dir=tmp_path / "s", emit=Rec(), options=EngineOptions()
    )
    with pytest.raises(EngineError, match="no simulated network"):
        await engine.start()
