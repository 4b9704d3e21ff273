"""The whatsmeow engine beyond the contract suite: real neonize dialing offline (through a
SOCKS proxy on loopback, so nothing leaves the machine), no network at all, giving up,
and how whatsmeow's events map onto zapgate's (fed through neonize's own entry point)."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.contract.test_engine_contract import PHONE_A, Recorder, wait_for
from tests.contract.whatsmeow_fake import (
    FakeWhatsApp,
    LoopbackSocks,
    execute,
    jid,
    message_event,
    receipt_event,
    source,
)
from zapgate.config import Settings
from zapgate.domain.models import MessageStatus
from zapgate.domain.state import SessionState as S
from zapgate.engines import EngineBackends, build_engine, known_engines
from zapgate.engines.backends import WhatsmeowConfig, WhatsmeowRuntime
from zapgate.engines.base import EngineOptions
from zapgate.engines.whatsmeow import WhatsmeowEngine
from zapgate.engines.whatsmeow.convert import dial_reason

pytestmark = pytest.mark.timeout(60)


def make(
    tmp_path: Path, config: WhatsmeowConfig, client_id: str = "u1-wa", **opts: Any
) -> tuple[WhatsmeowEngine, Recorder]:
    rec = Recorder()
    engine = build_engine(
        "whatsmeow",
        client_id=client_id,
        session_dir=tmp_path / client_id,
        emit=rec,
        options=EngineOptions(**opts),
        backends=EngineBackends(whatsmeow=WhatsmeowRuntime(config)),
    )
    assert isinstance(engine, WhatsmeowEngine)
    return engine, rec


def session_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("zapgate-wa:")]


def test_registered_by_name() -> None:
    assert "whatsmeow" in known_engines()


def test_dial_reason_names_the_host() -> None:
    err = (
        "failed to dial whatsapp web websocket: failed to WebSocket dial: failed to send "
        'handshake request: Get "https://web.whatsapp.com/ws/chat": socks connect tcp '
        "127.0.0.1:9->web.whatsapp.com:443: dial tcp 127.0.0.1:9: connect: connection refused"
    )
    assert dial_reason(err) == "cannot reach web.whatsapp.com:443: connection refused"
    lookup = "failed to dial: dial tcp: lookup web.whatsapp.com: no such host"
    assert dial_reason(lookup).startswith("cannot reach web.whatsapp.com")


def test_config_uses_a_postgres_registry_for_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAPGATE_DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/zap")
    monkeypatch.delenv("ZAPGATE_WHATSMEOW_STORE", raising=False)
    assert WhatsmeowConfig.from_settings(Settings()).store == "postgres://u:p@db:5432/zap"
    monkeypatch.setenv("ZAPGATE_WHATSMEOW_STORE", "sqlite")
    assert WhatsmeowConfig.from_settings(Settings()).store is None


async def test_offline_start_fails_fast_through_real_neonize(tmp_path: Path) -> None:
    """The real Go core dials WhatsApp through a loopback SOCKS proxy that refuses: the
    session is DISCONNECTED at once, naming the host, and stop() releases its thread."""
    socks = await LoopbackSocks().start()
    try:
        cfg = WhatsmeowConfig(proxy=socks.url, reconnect_base=30.0, max_failures=0)
        engine, rec = make(tmp_path, cfg)
        t0 = time.monotonic()
        await engine.start()
        await wait_for(lambda: engine.state is S.DISCONNECTED, what="DISCONNECTED")
        assert time.monotonic() - t0 < 3.0
        assert socks.targets == ["web.whatsapp.com:443"]
        assert engine.state_reason is not None
        assert "web.whatsapp.com:443" in engine.state_reason
        assert [s for s, _ in rec.states()] == [S.STARTING, S.DISCONNECTED]
        # The Go core created its auth-state schema, but no device is paired.
        assert engine.store_path.is_file() and not engine.has_credentials()
        await asyncio.wait_for(engine.stop(), 5.0)
        assert engine.state is S.STOPPED
        await wait_for(lambda: not session_threads(), what="the session thread to end")
    finally:
        await socks.aclose()


async def test_no_network_never_calls_neonize_and_names_the_host(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    cfg = WhatsmeowConfig(proxy=f"socks5://127.0.0.1:{port}", reconnect_base=30.0)
    engine, _ = make(tmp_path, cfg)

    def no_client(**_: Any) -> Any:
        raise AssertionError("neonize must not be called without a network")

    engine.client_factory = no_client
    await engine.start()
    assert engine.state is S.DISCONNECTED
    assert engine.state_reason is not None
    assert engine.state_reason.startswith(f"cannot reach proxy 127.0.0.1:{port}")
    await engine.stop()


async def test_a_session_that_keeps_failing_goes_to_failed(tmp_path: Path) -> None:
    port = free_port()
    cfg = WhatsmeowConfig(proxy=f"socks5://127.0.0.1:{port}", reconnect_base=0.01, max_failures=3)
    engine, rec = make(tmp_path, cfg)
    await engine.start()
    await wait_for(lambda: engine.state is S.FAILED, what="FAILED")
    assert engine.state_reason is not None and f"127.0.0.1:{port}" in engine.state_reason
    assert [s for s, _ in rec.states()] == [S.STARTING, S.DISCONNECTED, S.FAILED]
    await asyncio.sleep(0.1)  # no more attempts after FAILED
    assert rec.states()[-1][0] is S.FAILED
    await engine.start()  # FAILED is not running: a new start tries again
    assert engine.state in (S.DISCONNECTED, S.FAILED)
    await engine.stop()


async def test_many_sessions_starting_keep_the_loop_responsive(tmp_path: Path) -> None:
    """Generous bound on purpose (the timing figure is bench/whatsmeow_sessions.py's job):
    30 sessions through the real Go core must not freeze the loop."""
    socks = await LoopbackSocks().start()
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - t0 - 0.005)

    tick = asyncio.create_task(ticker(), name="test:ticker")
    engines = []
    try:
        cfg = WhatsmeowConfig(proxy=socks.url, reconnect_base=30.0, max_failures=0)
        for i in range(30):
            engine, _ = make(tmp_path, cfg, client_id=f"u{i}-wa")
            await engine.start()
            engines.append(engine)
        assert all(e.state is S.DISCONNECTED for e in engines)
        assert len(socks.targets) == 30
    finally:
        for engine in engines:
            await engine.stop()
        stop.set()
        await tick
        await socks.aclose()
    assert max(lags) < 1.0, max(lags)
    await wait_for(lambda: not session_threads(), what="every session thread to end")


# -- event mapping, through the fake network and neonize's Event.execute -------------------
@pytest.fixture
async def linked(tmp_path: Path) -> Any:
    net = FakeWhatsApp()
    engine, rec = make(tmp_path, WhatsmeowConfig(reconnect_base=0.01))
    engine.probe_target = None
    engine.client_factory = functools.partial(net.factory)
    await engine.start()
    await wait_for(lambda: bool(rec.qrs()), what="a QR")
    await asyncio.to_thread(net.scan, rec.qrs()[-1], PHONE_A)
    await wait_for(lambda: engine.state is S.CONNECTED, what="CONNECTED")
    yield engine, rec, net
    await engine.stop()


async def test_receipts_map_to_statuses(linked: Any) -> None:
    engine, rec, _ = linked
    client = engine._client
    chat = jid("+5511999990077")
    for kind in (2, 1, 6, 5, 4):  # SENDER, DELIVERED, PLAYED, READ_SELF, READ
        await asyncio.to_thread(execute, client, receipt_event(chat, ["M1", "M2"], kind))
    await wait_for(lambda: len(rec.acks("M2")) == 3, what="the acks")
    assert rec.acks("M1") == [MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.READ]


async def test_inbound_text_media_lid_and_own_messages(linked: Any) -> None:
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ImageMessage, Message

    engine, rec, _ = linked
    client = engine._client
    stranger = jid("+5511999990077")
    lid = jid("123456789")
    lid.Server = "lid"
    group = jid("120363000000000000")
    group.Server = "g.us"
    events = [
        message_event("A1", source(stranger, stranger, from_me=True), Message(conversation="echo")),
        message_event(
            "A2",
            source(group, lid, sender_alt=stranger),
            Message(imageMessage=ImageMessage(caption="look")),
            ts=1_700_000_000,
        ),
        message_event("A3", source(stranger, stranger), Message(imageMessage=ImageMessage())),
    ]
    for ev in events:
        await asyncio.to_thread(execute, client, ev)
    await wait_for(lambda: len(rec.received()) == 2, what="two inbound messages")
    first, second = rec.received()
    assert (first.id, first.chat, first.sender, first.text) == (
        "A2",
        "120363000000000000@g.us",
        "+5511999990077",
        "look",
    )
    assert first.timestamp.timestamp() == 1_700_000_000
    assert (second.id, second.text) == ("A3", None)


async def test_group_stanza_parts_become_one_message_with_its_content(linked: Any) -> None:
    """Issue 14.1: whatsmeow emits one event per encrypted part with the stanza's id; the
    first, sender-key-only part has no content. It used to be stored as an empty message,
    and the real content (same id) was then dropped as a duplicate."""
    _, rec, net = linked
    mid = await asyncio.to_thread(
        net.phone_send_group, "+5511999990077", "120363000000000001", [PHONE_A], "oi, turma"
    )
    await wait_for(lambda: len(rec.received()) == 1, what="the group message")
    await asyncio.sleep(0.2)  # nothing else may follow
    (only,) = rec.received()
    assert (only.id, only.chat, only.sender, only.text) == (
        mid,
        "120363000000000001@g.us",
        "+5511999990077",
        "oi, turma",
    )


async def test_protocol_status_and_newsletter_events_are_not_messages(linked: Any) -> None:
    """Issue 14.5 (part): edits, deletes and reactions arrive as message events; status
    updates and channels look like chats. None becomes an inbound message, and a
    contact's status media is never downloaded."""
    from neonize.proto.waCommon.WACommon_pb2 import MessageKey
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
        ImageMessage,
        Message,
        ProtocolMessage,
        ReactionMessage,
    )

    engine, rec, _ = linked
    client = engine._client
    friend = jid("+5511999990077")
    status = jid("status")
    status.Server = "broadcast"
    channel = jid("120363999999999999")
    channel.Server = "newsletter"
    key = MessageKey(remoteJID="5511999990077@s.whatsapp.net", fromMe=True, ID="X1")
    downloads: list[Any] = []
    client.download_any = lambda *a, **k: downloads.append(a) or b""
    events = [
        message_event(
            "P1",
            source(friend, friend),
            Message(protocolMessage=ProtocolMessage(key=key, type=ProtocolMessage.REVOKE)),
        ),
        message_event(
            "P2",
            source(friend, friend),
            Message(reactionMessage=ReactionMessage(key=key, text="👍")),
        ),
        message_event(
            "P3", source(status, friend), Message(imageMessage=ImageMessage(fileLength=10))
        ),
        message_event("P4", source(channel, channel), Message(conversation="news")),
        message_event("P5", source(friend, friend), Message(conversation="a real one")),
    ]
    for ev in events:
        await asyncio.to_thread(execute, client, ev)
    await wait_for(lambda: len(rec.received()) == 1, what="the one real message")
    await asyncio.sleep(0.2)
    assert [m.id for m in rec.received()] == ["P5"]
    assert downloads == []


async def test_pairing_deadline_ends_with_whatsmeows_login_window(tmp_path: Path) -> None:
    """Issue 14.9: whatsmeow closes the login socket 160 s after the first QR, pairing code
    or not; the engine waited up to 140 s from the code request, so a code asked for late
    outlived the socket it needed."""
    net = FakeWhatsApp()
    engine, _ = make(tmp_path, WhatsmeowConfig(reconnect_base=0.01))
    engine.probe_target = None
    engine.client_factory = functools.partial(net.factory)
    engine.login_window = 1.5  # stands for whatsmeow's 160 s
    try:
        await engine.start()
        await wait_for(lambda: engine.state is S.SCAN_QR, what="SCAN_QR")
        await asyncio.sleep(0.5)
        asked = time.monotonic()
        await engine.pair_code("+5511999990002")
        assert engine.state is S.PAIRING
        await wait_for(lambda: engine.state is S.STOPPED, timeout=5, what="the pairing deadline")
        took = time.monotonic() - asked
        assert engine.state_reason == "pair_code_timeout"
        # what was left of the window (about 1 s), not the configured 60 s + rotations
        assert took < 1.5, took
    finally:
        await engine.stop()


async def test_connect_failure_ends_the_attempt_and_reconnects(linked: Any) -> None:
    """Issue 14.6: whatsmeow turns its own reconnect off before a ConnectFailure while
    connect() keeps blocking; the session sat in its state forever. Now the attempt ends,
    the reason is shown, and the runner connects again after its backoff."""
    from neonize.events import ConnectFailureEv
    from neonize.proto.Neonize_pb2 import ConnectFailureReason, Node

    engine, rec, _ = linked
    old = engine._client
    failure = ConnectFailureEv(
        Reason=ConnectFailureReason.GENERIC,
        Message="try later",
        Raw=Node(Tag="failure", Nil=False, Bytes=b""),
    )
    await asyncio.to_thread(execute, old, failure)
    await wait_for(
        lambda: (S.DISCONNECTED, "connect_failure generic: try later") in rec.states(),
        what="DISCONNECTED with the failure's reason",
    )
    await wait_for(
        lambda: engine.state is S.CONNECTED and engine._client is not old,
        what="a new connection",
    )


async def test_keepalive_timeout_shows_disconnected_until_restored(linked: Any) -> None:
    """Issue 14.6: whatsmeow's forced reconnect after a keep-alive timeout emits no
    Disconnected, so CONNECTED was shown on a dead socket."""
    from neonize.events import KeepAliveRestoredEv, KeepAliveTimeoutEv

    engine, _, _ = linked
    client = engine._client
    await asyncio.to_thread(execute, client, KeepAliveTimeoutEv(ErrorCount=3, LastSuccess=0))
    await wait_for(lambda: engine.state is S.DISCONNECTED, what="DISCONNECTED")
    assert engine.state_reason == "keep-alive timed out; reconnecting"
    await asyncio.to_thread(execute, client, KeepAliveRestoredEv())
    await wait_for(lambda: engine.state is S.CONNECTED, what="CONNECTED again")


async def test_temporary_ban_says_until_when_and_retries_after_it(linked: Any) -> None:
    """Issue 14.6: a temporary ban went to FAILED for good, without saying until when."""
    from neonize.events import TemporaryBanEv

    engine, _, _ = linked
    engine.ban_margin = 0.0
    ban = TemporaryBanEv(Code=TemporaryBanEv.SEND_TO_TOO_MANY_PEOPLE, Expire=1)
    await asyncio.to_thread(execute, engine._client, ban)
    await wait_for(lambda: engine.state is S.FAILED, what="FAILED")
    reason = engine.state_reason or ""
    assert reason.startswith("temporary_ban: code ") and ", until 20" in reason, reason
    await wait_for(lambda: engine.state is S.CONNECTED, timeout=10, what="CONNECTED after the ban")


async def test_logged_out_from_the_phone(linked: Any) -> None:
    engine, _, net = linked
    assert engine.has_credentials()
    await asyncio.to_thread(net.log_out_from_phone, PHONE_A)
    await wait_for(lambda: engine.state is S.LOGGED_OUT, what="LOGGED_OUT")
    assert engine.state_reason == "logged_out"
    assert engine.phone is None and not engine.has_credentials()
    assert not engine.store_path.exists()
    await wait_for(lambda: not session_threads(), what="the session thread to end")


async def test_stream_replaced_fails_instead_of_fighting(linked: Any) -> None:
    from neonize.events import StreamReplacedEv

    engine, _, _ = linked
    await asyncio.to_thread(execute, engine._client, StreamReplacedEv())
    await wait_for(lambda: engine.state is S.FAILED, what="FAILED")
    assert engine.state_reason is not None and engine.state_reason.startswith("stream_replaced")
    assert engine.has_credentials()  # not logged out: a restart may take the device back


async def test_a_shared_store_resumes_its_own_device(tmp_path: Path) -> None:
    """With a PostgreSQL store (many devices in one database) a session must name its
    device (jid) to resume, and ask for a new one (new_device) to pair."""
    calls: list[dict[str, Any]] = []

    def spy(**kwargs: Any) -> Any:
        calls.append(kwargs)
        raise RuntimeError("no Go in this test")

    engine, _ = make(tmp_path, WhatsmeowConfig(store="postgres://u@127.0.0.1:1/x"))
    engine.probe_target = None
    engine.client_factory = spy
    engine.session_dir.mkdir(parents=True)
    engine._inbox = asyncio.Queue()
    assert not engine.has_credentials()
    with pytest.raises(RuntimeError):
        engine._launch()
    (engine.device_path).write_text(
        '{"user": "5511999990001", "device": 7, "server": "s.whatsapp.net"}'
    )
    assert engine.has_credentials()
    with pytest.raises(RuntimeError):
        engine._launch()
    assert calls[0]["jid"] is None and calls[0]["new_device"] is True
    assert calls[1]["jid"].User == "5511999990001" and calls[1]["jid"].Device == 7
    assert calls[1]["new_device"] is False
    assert calls[1]["store"] == "postgres://u@127.0.0.1:1/x"


async def test_doctor_checks_whatsapp_without_leaving_loopback(tmp_path: Path) -> None:
    from zapgate import doctor
    from zapgate.config import Topology

    port = free_port()
    lines: list[str] = []
    base = {"data_dir": tmp_path, "engine": "whatsmeow"}
    proxy = f"socks5://127.0.0.1:{port}"
    info = Settings(**base, whatsmeow_proxy=proxy)
    assert await doctor.run(info, Topology.EMBEDDED, lines.append)  # informational
    assert any(f"[warn] WhatsApp: proxy 127.0.0.1:{port} not reachable" in x for x in lines)
    strict = Settings(**base, whatsmeow_proxy=proxy, doctor_whatsapp="require")
    assert not await doctor.run(strict, Topology.EMBEDDED, lines.append)
    socks = await LoopbackSocks().start()
    try:
        ok, detail = await doctor.whatsapp_reachable(Settings(**base, whatsmeow_proxy=socks.url))
        assert ok and detail == f"proxy 127.0.0.1:{socks.port} reachable"
    finally:
        await socks.aclose()
