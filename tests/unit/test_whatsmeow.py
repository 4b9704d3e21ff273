"""The whatsmeow engine beyond the contract suite: real neonize dialing offline (through a
SOCKS proxy on loopback, so nothing leaves the machine) in host processes, no network at
all, retrying for ever, what the host processes guarantee (a wedged or killed one), and
how whatsmeow's events map onto zapgate's (fed through neonize's own entry point)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.contract.test_engine_contract import PHONE_A, Recorder, wait_for
from tests.contract.whatsmeow_fake import (
    FakeWhatsApp,
    LoopbackSocks,
    jid,
    message_event,
    receipt_event,
    source,
)
from zapgate.config import Settings
from zapgate.domain.events import EngineEvent, MessageReceived
from zapgate.domain.models import MessageStatus
from zapgate.domain.state import SessionState as S
from zapgate.engines import EngineBackends, build_engine, known_engines
from zapgate.engines.backends import WhatsmeowConfig, WhatsmeowRuntime
from zapgate.engines.base import EngineOptions
from zapgate.engines.whatsmeow import WhatsmeowEngine
from zapgate.engines.whatsmeow.reasons import dial_reason

pytestmark = pytest.mark.timeout(60)


def make(
    tmp_path: Path,
    config: WhatsmeowConfig,
    client_id: str = "u1-wa",
    runtime: WhatsmeowRuntime | None = None,
    **opts: Any,
) -> tuple[WhatsmeowEngine, Recorder]:
    rec = Recorder()
    engine = build_engine(
        "whatsmeow",
        client_id=client_id,
        session_dir=tmp_path / client_id,
        emit=rec,
        options=EngineOptions(**opts),
        backends=EngineBackends(whatsmeow=runtime or WhatsmeowRuntime(config)),
    )
    assert isinstance(engine, WhatsmeowEngine)
    return engine, rec


def hosts(engine: WhatsmeowEngine) -> list[Any]:
    return list(engine.runtime.pool().hosts)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
    """The real Go core, in a host process, dials WhatsApp through a loopback SOCKS proxy
    that refuses: the session is DISCONNECTED at once, naming the host, and stop() ends
    the host process."""
    socks = await LoopbackSocks().start()
    engine, rec = make(tmp_path, WhatsmeowConfig(proxy=socks.url, reconnect_base=30.0))
    try:
        t0 = time.monotonic()
        await engine.start()
        await wait_for(lambda: engine.state is S.DISCONNECTED, timeout=10, what="DISCONNECTED")
        assert time.monotonic() - t0 < 8.0
        assert socks.targets == ["web.whatsapp.com:443"]
        assert engine.state_reason is not None
        assert "web.whatsapp.com:443" in engine.state_reason
        assert [s for s, _ in rec.states()] == [S.STARTING, S.DISCONNECTED]
        # The Go core created its auth-state schema, but no device is paired.
        assert engine.store_path.is_file() and not engine.has_credentials()
        await asyncio.wait_for(engine.stop(), 5.0)
        assert engine.state is S.STOPPED
        assert hosts(engine) == []
    finally:
        await engine.runtime.aclose()
        await socks.aclose()


async def test_no_network_never_starts_a_host_and_names_the_host(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    cfg = WhatsmeowConfig(proxy=f"socks5://127.0.0.1:{port}", reconnect_base=30.0)
    engine, _ = make(tmp_path, cfg)
    await engine.start()
    assert engine.state is S.DISCONNECTED
    assert engine.state_reason is not None
    assert engine.state_reason.startswith(f"cannot reach proxy 127.0.0.1:{port}")
    assert hosts(engine) == []  # no process, no neonize client
    await engine.stop()


async def test_a_session_that_keeps_failing_keeps_retrying(tmp_path: Path) -> None:
    """Issue 14.10: after 12 failed connects the session went to FAILED for good. Now it
    stays DISCONNECTED, saying which attempt it is at and when the next one comes."""
    port = free_port()
    engine, rec = make(tmp_path, WhatsmeowConfig(proxy=f"socks5://127.0.0.1:{port}"))
    engine.reconnect_base = engine.reconnect_cap = 0.01
    await engine.start()

    def attempts() -> int:
        found = re.search(r"\(attempt (\d+),", engine.state_reason or "")
        return int(found.group(1)) if found else 0

    await wait_for(lambda: attempts() >= 15, what="fifteen attempts")
    assert S.FAILED not in [s for s, _ in rec.states()]
    assert engine.state is S.DISCONNECTED
    await engine.stop()


async def test_many_sessions_starting_keep_the_loop_responsive(tmp_path: Path) -> None:
    """Generous bound on purpose (the timing figure is bench/whatsmeow_sessions.py's job):
    sessions through the real Go core, each in a host of its own (none is linked), must
    not freeze the worker's loop."""
    socks = await LoopbackSocks().start()
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - t0 - 0.005)

    tick = asyncio.create_task(ticker(), name="test:ticker")
    runtime = WhatsmeowRuntime(WhatsmeowConfig(proxy=socks.url, reconnect_base=30.0))
    engines = []
    try:
        for i in range(6):
            engine, _ = make(tmp_path, runtime.config, client_id=f"u{i}-wa", runtime=runtime)
            await engine.start()
            engines.append(engine)
        await wait_for(
            lambda: all(e.state is S.DISCONNECTED for e in engines), timeout=20, what="all down"
        )
        assert len(socks.targets) == 6
        # Each failed attempt's host was ended with it: no store handle outlives it
        # (issue 14.10), and nothing waits for the retry.
        await wait_for(lambda: runtime.pool().hosts == [], what="the hosts to end")
    finally:
        for engine in engines:
            await engine.stop()
        stop.set()
        await tick
        await socks.aclose()
    assert max(lags) < 1.0, max(lags)
    await runtime.aclose()


# -- event mapping, through the fake network, a host process and neonize's Event.execute ---
@pytest.fixture
async def network() -> AsyncIterator[FakeWhatsApp]:
    net = FakeWhatsApp().serve()
    yield net
    net.close()


async def link(engine: WhatsmeowEngine, rec: Recorder, net: FakeWhatsApp, phone: str) -> None:
    await engine.start()
    await wait_for(lambda: bool(rec.qrs()), timeout=10, what="a QR")
    await asyncio.to_thread(net.scan, rec.qrs()[-1], phone)
    await wait_for(lambda: engine.state is S.CONNECTED, timeout=10, what="CONNECTED")


@pytest.fixture
async def linked(tmp_path: Path, network: FakeWhatsApp) -> Any:
    engine, rec = make(tmp_path, network.config())
    engine.probe_target = None
    try:
        await link(engine, rec, network, PHONE_A)
        yield engine, rec, network
    finally:
        await engine.stop()
        await engine.runtime.aclose()


async def push(net: FakeWhatsApp, *events: Any) -> None:
    for ev in events:
        await asyncio.to_thread(net.push, PHONE_A, ev)


async def test_receipts_map_to_statuses(linked: Any) -> None:
    _, rec, net = linked
    chat = jid("+5511999990077")
    await push(net, *(receipt_event(chat, ["M1", "M2"], k) for k in (2, 1, 6, 5, 4)))
    # SENDER, DELIVERED, PLAYED, READ_SELF, READ
    await wait_for(lambda: len(rec.acks("M2")) == 3, what="the acks")
    assert rec.acks("M1") == [MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.READ]


async def test_inbound_text_media_lid_and_own_messages(linked: Any) -> None:
    """A message this number sent from its phone arrives as whatsmeow reports a device-sent
    one (IsFromMe, the recipient as the chat, our own JID as the sender): `from_me`."""
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ImageMessage, Message

    _, rec, net = linked
    stranger = jid("+5511999990077")
    lid = jid("123456789", server="lid")
    group = jid("120363000000000000", server="g.us")
    await push(
        net,
        message_event(
            "A1", source(stranger, jid(PHONE_A), from_me=True), Message(conversation="by hand")
        ),
        message_event(
            "A2",
            source(group, lid, sender_alt=stranger),
            Message(imageMessage=ImageMessage(caption="look")),
            ts=1_700_000_000,
        ),
        message_event("A3", source(stranger, stranger), Message(conversation="plain")),
    )
    await wait_for(lambda: len(rec.received()) == 3, what="three inbound messages")
    by_id = {m.id: m for m in rec.received()}
    own = by_id["A1"]
    assert (own.chat, own.sender, own.text, own.from_me) == (
        "+5511999990077",
        PHONE_A,
        "by hand",
        True,
    )
    first = by_id["A2"]
    assert (first.chat, first.sender, first.text) == (
        "120363000000000000@g.us",
        "+5511999990077",
        "look",
    )
    assert first.raw["sender_lid"] == "123456789@lid"
    assert first.timestamp.timestamp() == 1_700_000_000
    assert (by_id["A3"].chat, by_id["A3"].text, by_id["A3"].from_me) == (
        "+5511999990077",
        "plain",
        False,
    )


async def test_lid_chats_carry_their_phone_when_whatsmeow_knows_it(linked: Any) -> None:
    """Issue 14.4: for a 1:1 chat addressed by LID, `Chat` is the `@lid` JID and the phone
    is only in `SenderAlt`, or in the store's LID map (get_pn_from_lid), or nowhere. The
    chat is the phone whenever it is known; the LID is kept beside it."""
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

    _, rec, net = linked
    friend, mapped = jid("+5511999990077"), jid("+5511999990078")
    lid1, lid2, lid3 = (jid(u, server="lid") for u in ("111", "222", "333"))
    await asyncio.to_thread(net.teach, PHONE_A, "222@lid", "+5511999990078")
    await push(
        net,
        message_event("L1", source(lid1, lid1, sender_alt=friend), Message(conversation="a")),
        message_event("L2", source(lid2, lid2), Message(conversation="b")),
        message_event("L3", source(lid3, lid3), Message(conversation="c")),
    )
    await wait_for(lambda: len(rec.received()) == 3, what="three messages")
    got = {m.id: (m.chat, m.sender, m.raw["chat_lid"]) for m in rec.received()}
    assert got == {
        "L1": ("+5511999990077", "+5511999990077", "111@lid"),
        "L2": ("+5511999990078", "+5511999990078", "222@lid"),
        "L3": ("333@lid", "333@lid", "333@lid"),
    }
    assert mapped.User == "5511999990078"


async def test_a_lid_can_be_answered(linked: Any) -> None:
    """Issue 14.4: a chat known only by its LID can be answered (whatsmeow sends to LIDs)."""
    engine, _, net = linked
    lid = await asyncio.to_thread(net.lid_of, "+5511999990079")
    wa_id = await engine.send_text(message_id="g1", to=lid, text="oi")
    with net.lock:
        inbox = net.inboxes["+5511999990079"]
    assert [(m["id"], m["text"]) for m in inbox] == [(wa_id, "oi")]


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

    _, rec, net = linked
    friend = jid("+5511999990077")
    status = jid("status", server="broadcast")
    channel = jid("120363999999999999", server="newsletter")
    key = MessageKey(remoteJID="5511999990077@s.whatsapp.net", fromMe=True, ID="X1")
    await push(
        net,
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
            "P3",
            source(status, friend),
            Message(imageMessage=ImageMessage(fileLength=10, directPath="/v/none")),
        ),
        message_event("P4", source(channel, channel), Message(conversation="news")),
        message_event("P5", source(friend, friend), Message(conversation="a real one")),
    )
    await wait_for(lambda: len(rec.received()) == 1, what="the one real message")
    await asyncio.sleep(0.2)
    assert [m.id for m in rec.received()] == ["P5"]
    # The deletion and the reaction are events of their own (test_whatsmeow_messages.py).
    assert [type(e).__name__ for e in rec.events if not isinstance(e, MessageReceived)][-2:] == [
        "MessageRevoked",
        "ReactionReceived",
    ]


async def test_a_slow_download_holds_up_no_other_event(linked: Any) -> None:
    """Issue 14.11: media was downloaded inside the session's event runner, so a large
    file held up every later event (receipts, texts, state)."""
    _, rec, net = linked
    net.download_delay = 3.0
    media_id = await asyncio.to_thread(
        net.phone_send_media,
        "+5511999990077",
        PHONE_A,
        kind="image",
        data=b"x" * 100,
        mime="image/png",
    )
    text_id = await asyncio.to_thread(net.phone_send, "+5511999990077", PHONE_A, "after")
    await wait_for(lambda: len(rec.received()) == 1, what="the text")
    assert rec.received()[0].id == text_id  # not behind the download
    await wait_for(lambda: len(rec.received()) == 2, timeout=10, what="the image")
    image = rec.received()[1]
    assert image.id == media_id and image.media is not None and image.media.data == b"x" * 100


async def test_an_unexpected_error_does_not_end_the_runner(linked: Any) -> None:
    """Issue 14.11: an exception of a type the runner did not expect ended it while the
    session still showed CONNECTED."""
    engine, rec, net = linked
    failing = {"once": True}
    original = rec.__call__

    async def flaky(event: EngineEvent) -> None:
        if isinstance(event, MessageReceived) and failing.pop("once", False):
            raise RuntimeError("the journal is locked")
        await original(event)

    engine._emit = flaky
    await asyncio.to_thread(net.phone_send, "+5511999990077", PHONE_A, "lost")
    second = await asyncio.to_thread(net.phone_send, "+5511999990077", PHONE_A, "kept")
    await wait_for(lambda: any(m.id == second for m in rec.received()), what="the next message")
    assert engine.state is S.CONNECTED


async def test_pairing_deadline_ends_with_whatsmeows_login_window(
    tmp_path: Path, network: FakeWhatsApp
) -> None:
    """Issue 14.9: whatsmeow closes the login socket 160 s after the first QR, pairing code
    or not; the engine waited up to 140 s from the code request, so a code asked for late
    outlived the socket it needed."""
    engine, _ = make(tmp_path, network.config())
    engine.probe_target = None
    engine.login_window = 2.5  # stands for whatsmeow's 160 s
    try:
        await engine.start()
        await wait_for(lambda: engine.state is S.SCAN_QR, timeout=10, what="SCAN_QR")
        await asyncio.sleep(0.5)
        asked = time.monotonic()
        await engine.pair_code("+5511999990002")
        assert engine.state is S.PAIRING
        await wait_for(lambda: engine.state is S.STOPPED, timeout=5, what="the pairing deadline")
        took = time.monotonic() - asked
        assert engine.state_reason == "pair_code_timeout"
        # what was left of the window (about 2 s), not the configured 60 s + rotations
        assert took < 2.5, took
    finally:
        await engine.stop()
        await engine.runtime.aclose()


async def test_connect_failure_ends_the_attempt_and_reconnects(linked: Any) -> None:
    """Issue 14.6: whatsmeow turns its own reconnect off before a ConnectFailure while
    connect() keeps blocking; the session sat in its state forever. Now the attempt ends,
    the reason is shown, and the runner connects again after its backoff."""
    from neonize.events import ConnectFailureEv
    from neonize.proto.Neonize_pb2 import ConnectFailureReason, Node

    engine, rec, net = linked
    connects = net.connects
    failure = ConnectFailureEv(
        Reason=ConnectFailureReason.GENERIC,
        Message="try later",
        Raw=Node(Tag="failure", Nil=False, Bytes=b""),
    )
    await push(net, failure)
    await wait_for(
        lambda: (S.DISCONNECTED, "connect_failure generic: try later") in rec.states(),
        what="DISCONNECTED with the failure's reason",
    )
    await wait_for(
        lambda: engine.state is S.CONNECTED and net.connects > connects,
        timeout=10,
        what="a new connection",
    )


async def test_keepalive_timeout_shows_disconnected_until_restored(linked: Any) -> None:
    """Issue 14.6: whatsmeow's forced reconnect after a keep-alive timeout emits no
    Disconnected, so CONNECTED was shown on a dead socket."""
    from neonize.events import KeepAliveRestoredEv, KeepAliveTimeoutEv

    engine, _, net = linked
    await push(net, KeepAliveTimeoutEv(ErrorCount=3, LastSuccess=0))
    await wait_for(lambda: engine.state is S.DISCONNECTED, what="DISCONNECTED")
    assert engine.state_reason == "keep-alive timed out; reconnecting"
    await push(net, KeepAliveRestoredEv())
    await wait_for(lambda: engine.state is S.CONNECTED, what="CONNECTED again")


async def test_temporary_ban_says_until_when_and_retries_after_it(linked: Any) -> None:
    """Issue 14.6: a temporary ban went to FAILED for good, without saying until when."""
    from neonize.events import TemporaryBanEv

    engine, _, net = linked
    engine.ban_margin = 0.0
    await push(net, TemporaryBanEv(Code=TemporaryBanEv.SEND_TO_TOO_MANY_PEOPLE, Expire=1))
    await wait_for(lambda: engine.state is S.FAILED, what="FAILED")
    reason = engine.state_reason or ""
    assert reason.startswith("temporary_ban: code ") and ", until 20" in reason, reason
    await wait_for(lambda: engine.state is S.CONNECTED, timeout=15, what="CONNECTED after the ban")


async def test_logged_out_from_the_phone(linked: Any) -> None:
    engine, _, net = linked
    assert engine.has_credentials()
    await asyncio.to_thread(net.log_out_from_phone, PHONE_A)
    await wait_for(lambda: engine.state is S.LOGGED_OUT, what="LOGGED_OUT")
    assert engine.state_reason == "logged_out"
    assert engine.phone is None and not engine.has_credentials()
    assert not engine.store_path.exists()
    await wait_for(lambda: hosts(engine) == [], what="the host to end")


async def test_stream_replaced_fails_instead_of_fighting(linked: Any) -> None:
    from neonize.events import StreamReplacedEv

    engine, _, net = linked
    await push(net, StreamReplacedEv())
    await wait_for(lambda: engine.state is S.FAILED, what="FAILED")
    assert engine.state_reason is not None and engine.state_reason.startswith("stream_replaced")
    assert engine.has_credentials()  # not logged out: a restart may take the device back


async def test_a_failed_reconnect_after_pairing_resumes_the_linked_device(
    tmp_path: Path, network: FakeWhatsApp
) -> None:
    """Issue 14.6: after a pairing WhatsApp restarts the stream (515); when whatsmeow's
    reconnect failed, the session sat in SCAN_QR with its QR timer cancelled, forever."""
    network.fail_after_pair = True  # the next connection, as the linked device, works
    engine, rec = make(tmp_path, network.config())
    engine.probe_target = None
    engine.after_pair = 0.5
    try:
        await engine.start()
        await wait_for(lambda: bool(rec.qrs()), timeout=10, what="a QR")
        await asyncio.to_thread(network.scan, rec.qrs()[-1], PHONE_A)
        await wait_for(lambda: engine.state is S.CONNECTED, timeout=10, what="CONNECTED")
        assert len(rec.qrs()) == 1  # resumed as the linked device, no new QR
        assert (
            S.DISCONNECTED,
            "paired, but the connection after pairing did not come",
        ) in rec.states()
    finally:
        await engine.stop()
        await engine.runtime.aclose()


# -- what the host processes guarantee (issue 14.2) ----------------------------------------------
async def test_stop_in_scan_qr_returns_at_once_and_ends_the_wedged_host(
    tmp_path: Path, network: FakeWhatsApp
) -> None:
    """whatsmeow never closes the QR channel on a requested disconnect, so neonize's
    connect() never returns for an unpaired device: stop() took 5 s and leaked the thread,
    the client and its store for good. Its host process is killed instead."""
    engine, _ = make(tmp_path, network.config())
    engine.probe_target = None
    await engine.start()
    await wait_for(lambda: engine.state is S.SCAN_QR, timeout=10, what="SCAN_QR")
    (host,) = hosts(engine)
    t0 = time.monotonic()
    await engine.stop()
    took = time.monotonic() - t0
    assert took < 1.0, took
    assert engine.state is S.STOPPED and hosts(engine) == []
    await wait_for(lambda: not pid_alive(host.pid), what="the host process to end")
    await engine.runtime.aclose()


async def test_a_killed_host_is_noticed_and_its_session_restarted(
    tmp_path: Path, network: FakeWhatsApp
) -> None:
    engine, rec = make(tmp_path, network.config())
    engine.probe_target = None
    try:
        await link(engine, rec, network, PHONE_A)
        (host,) = hosts(engine)
        os.kill(host.pid, signal.SIGKILL)
        await wait_for(
            lambda: any(
                (r or "").startswith("connection failed: the engine process ")
                for _, r in rec.states()
            ),
            what="the crash, named",
        )
        await wait_for(lambda: engine.state is S.CONNECTED, timeout=10, what="CONNECTED again")
        (again,) = hosts(engine)
        assert again.pid != host.pid and not again.solo  # linked now: a shared host
        assert len(rec.qrs()) == 1
    finally:
        await engine.stop()
        await engine.runtime.aclose()


async def test_linked_sessions_share_hosts_and_a_wedged_one_is_replaced(
    tmp_path: Path, network: FakeWhatsApp
) -> None:
    """Linked sessions resume in shared hosts (`sessions_per_host`); a stop the shared
    host cannot complete ends that host, and its other sessions come back in a new one."""
    runtime = WhatsmeowRuntime(network.config(sessions_per_host=2))
    engines = []
    try:
        for i in range(3):
            engine, rec = make(tmp_path, runtime.config, client_id=f"u{i}-wa", runtime=runtime)
            engine.probe_target = None
            await link(engine, rec, network, f"+55119999900{10 + i}")
            await engine.stop()
            engines.append(engine)
        for engine in engines:
            await engine.start()
            await wait_for(lambda e=engine: e.state is S.CONNECTED, timeout=10, what="resumed")
        shared = runtime.pool().hosts
        assert sorted(len(h.sessions) for h in shared) == [1, 2] and not any(h.solo for h in shared)
        # A host that cannot stop a client within join_timeout is ended.
        first = engines[0]
        first.join_timeout = 0.2
        host = first._host
        assert host is not None
        other = next(e for e in engines[1:] if e._host is host)
        network.ignore_stop = True
        await first.stop()
        network.ignore_stop = False
        await wait_for(lambda: not pid_alive(host.pid), what="the wedged host to end")
        await wait_for(
            lambda: other.state is S.CONNECTED and other._host is not host,
            timeout=10,
            what="its other session back in a new host",
        )
    finally:
        for engine in engines:
            await engine.stop()
        await runtime.aclose()


async def test_a_stale_device_in_a_postgres_store_does_not_crash_the_worker(
    tmp_path: Path, network: FakeWhatsApp, pg_store: str
) -> None:
    """Issue 14.7: whatsmeow deletes the device row itself on LoggedOut; the device file
    left behind made GetDevice return nil, which neonize hands to NewClient: a Go nil
    dereference on every start. The store is checked first and the device forgotten."""
    engine, rec = make(tmp_path, network.config(store=pg_store))
    engine.probe_target = None
    try:
        await link(engine, rec, network, PHONE_A)
        assert engine.has_credentials()
        await engine.stop()
        from tests.contract.whatsmeow_fake import delete_device

        await asyncio.to_thread(delete_device, pg_store, PHONE_A.lstrip("+"))  # while away
        await engine.start()
        await wait_for(lambda: engine.state is S.SCAN_QR, timeout=10, what="a new QR")
        assert not engine.device_path.exists()
        assert not any("engine process" in (r or "") for _, r in rec.states())
    finally:
        await engine.stop()
        await engine.runtime.aclose()


@pytest.fixture
async def pg_store() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for whatsmeow's store (lib/pq URL form)."""
    import secrets

    import asyncpg  # type: ignore[import-untyped]

    admin = os.environ.get("ZAPGATE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin = admin.replace("+asyncpg", "")
    name = "zg_wm_" + secrets.token_hex(4)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgres://")
    yield f"{base}/{name}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


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


def test_host_processes_get_no_zapgate_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys and database URLs stay out of the processes that run neonize's native code."""
    from zapgate.engines.whatsmeow.procs import _host_environment

    monkeypatch.setenv("ZAPGATE_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("ZAPGATE_DATABASE_URL", "postgresql://u:p@127.0.0.1/x")
    env = _host_environment()
    assert not [k for k in env if k.startswith("ZAPGATE_")] and "PATH" in env
