"""THE engine contract: one suite, run over every engine through `engine_harness`.

A harness knows how to build an engine of its kind and how to play the other side of the
network for it: scan a QR with a phone, type a pairing code, write from a phone, read a
phone's inbox. To run this suite over a new engine, write an `EngineHarness` subclass
and add it to `HARNESSES`; the tests themselves never name an engine.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.conftest import free_port
from tests.media_samples import MP4, OGG, PDF, png_bytes
from zapgate.domain.content import ContactCard, Extras, LinkPreview, Location, Poll, Quote
from zapgate.domain.events import (
    EngineEvent,
    MessageAck,
    MessageReceived,
    QrUpdated,
    StateChanged,
)
from zapgate.domain.ids import new_message_id
from zapgate.domain.models import MessageStatus
from zapgate.domain.state import SessionState
from zapgate.engines import EngineBackends, build_engine
from zapgate.engines.backends import WhatsmeowRuntime
from zapgate.engines.base import Engine, EngineOptions
from zapgate.simnet.client import HttpSimLink, LocalSimLink, SimLink
from zapgate.simnet.network import SimNetwork
from zapgate.simnet.server import create_app

S = SessionState
PHONE_A = "+5511999990001"
PHONE_B = "+5511999990002"
STRANGER = "+5511999990077"


# -- helpers ---------------------------------------------------------------------------------
async def wait_for(pred: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `pred` until it holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Recorder:
    """The `emit` callback of one engine: keeps every event for the test to read."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []

    async def __call__(self, event: EngineEvent) -> None:
        self.events.append(event)

    def states(self) -> list[tuple[SessionState, str | None]]:
        return [(e.state, e.reason) for e in self.events if isinstance(e, StateChanged)]

    def qrs(self) -> list[str]:
        return [e.qr for e in self.events if isinstance(e, QrUpdated)]

    def acks(self, message_id: str) -> list[MessageStatus]:
        return [e.status for e in self.events if isinstance(e, MessageAck) and e.id == message_id]

    def ack_events(self, wa_id: str) -> list[MessageAck]:
        return [e for e in self.events if isinstance(e, MessageAck) and e.id == wa_id]

    def received(self) -> list[MessageReceived]:
        return [e for e in self.events if isinstance(e, MessageReceived)]


class EngineHarness(ABC):
    """Builds engines of one kind and plays the network's other side for them."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.engines: list[Engine] = []

    @abstractmethod
    async def setup(self) -> None:
        """Bring up whatever the engine talks to."""

    @abstractmethod
    def build(
        self, client_id: str, session_dir: Path, emit: Recorder, options: EngineOptions
    ) -> Engine: ...

    @abstractmethod
    async def scan(self, qr: str, phone: str) -> None:
        """A phone scans `qr`."""

    @abstractmethod
    async def enter_pair_code(self, phone: str, code: str) -> None: ...

    @abstractmethod
    async def phone_send(self, phone: str, to: str, text: str) -> str:
        """A phone writes to the linked number `to`; returns the message id."""

    @abstractmethod
    async def phone_inbox(self, phone: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def phone_send_media(
        self, phone: str, to: str, *, kind: str, data: bytes, mime: str, caption: str | None
    ) -> str:
        """A phone sends media (with a caption) to the linked number `to`."""

    @abstractmethod
    async def lid_of(self, phone: str) -> str:
        """The LID (`<digits>@lid`) of `phone`'s account, stable for the phone."""

    @abstractmethod
    async def set_push_name(self, phone: str, name: str) -> None:
        """`phone`'s user sets the name it shows in WhatsApp (its push name), which its
        next messages carry; until then they carry some default name."""

    @abstractmethod
    async def address_by_lid(self, phone: str, *, share_phone: bool) -> None:
        """From now on `phone`'s messages arrive addressed by its LID (Info.Chat and Sender
        `@lid`), with its number in SenderAlt only when `share_phone`. A device learns the
        LID <-> phone mapping (its store: `get_pn_from_lid`) from a message that carries
        both, or by sending to the phone by number."""

    # -- the phone side of messages beyond text and media (test_engine_messages.py) --------
    @abstractmethod
    async def phone_send_rich(
        self,
        phone: str,
        to: str,
        *,
        text: str | None = None,
        quote_id: str | None = None,
        mentions: tuple[str, ...] = (),
        location: Location | None = None,
        contacts: tuple[ContactCard, ...] = (),
        poll: Poll | None = None,
        preview: LinkPreview | None = None,
    ) -> str:
        """`phone` writes to the linked number `to`: a text (replying to the message
        `quote_id` of their chat, whoever wrote it, mentioning `mentions`, with the
        `preview` of its link), or a location, contact cards or a poll. Returns
        WhatsApp's id of the message."""

    @abstractmethod
    async def phone_send_from_own_phone(self, owner: str, to: str, text: str) -> str:
        """The linked number `owner` writes `text` to `to` from its own phone (another
        device of the account): its linked devices see it as their own message."""

    @abstractmethod
    async def phone_react(self, phone: str, to: str, target_id: str, emoji: str) -> str:
        """`phone` reacts to the message `target_id` of its chat with the linked number
        `to` (either side's message); "" removes its reaction. The reaction's id."""

    @abstractmethod
    async def phone_edit(self, phone: str, to: str, target_id: str, text: str) -> None:
        """`phone` edits its own message `target_id` sent to the linked number `to`."""

    @abstractmethod
    async def phone_revoke(self, phone: str, to: str, target_id: str) -> None:
        """`phone` deletes its own message `target_id` to `to` for everyone."""

    @abstractmethod
    async def phone_vote(self, phone: str, to: str, poll_id: str, options: list[str]) -> None:
        """`phone` votes `options` (their texts; [] withdraws) on the poll `poll_id` that the
        linked number `to` sent it."""

    @abstractmethod
    async def phone_presence(self, phone: str, to: str, state: str) -> None:
        """`phone` shows `state` to the linked number `to`: typing, recording or paused in
        their chat, or available / unavailable."""

    @abstractmethod
    async def phone_read_chat(self, owner: str, chat: str) -> list[str]:
        """The linked number `owner` opens its chat with `chat` on its own phone: what
        `chat` sent it unread is read (those ids, oldest first), and the linked devices
        hear of it as WhatsApp tells them of a read made on another device."""

    @abstractmethod
    async def phone_log(self, phone: str) -> list[dict[str, Any]]:
        """What `phone` saw besides messages, oldest first, each a dict with `type` and
        `from` (the acting number): `reaction` {id, emoji}, `edit` {id, text}, `revoke`
        {id}, `read` {ids}, `presence` {state}, `vote` {poll_id, options}."""

    # -- the phone side of contacts and calls (test_engine_contacts.py) ---------------------
    @abstractmethod
    async def off_whatsapp(self, phone: str) -> None:
        """From now on `phone` has no WhatsApp account (a landline, a number never
        registered): checks say so, and nothing can be sent to it."""

    @abstractmethod
    async def set_profile(
        self,
        phone: str,
        *,
        push_name: str | None = None,
        about: str | None = None,
        business: bool = False,
        picture: bool = False,
    ) -> None:
        """What `phone`'s WhatsApp profile shows: its name, about text, whether it is a
        business account, whether it has a profile picture."""

    @abstractmethod
    async def phone_call(self, phone: str, to: str, *, video: bool = False) -> str:
        """`phone` calls the linked number `to`; returns WhatsApp's id of the call. A
        rejection shows in `phone_log(phone)` as {type: "call_rejected", id, from}."""

    @abstractmethod
    async def phone_save_contact(self, owner: str, phone: str, name: str) -> None:
        """The linked number `owner` saves `phone` as `name` in its phone's address book,
        which WhatsApp syncs to the account's linked devices."""

    async def close(self) -> None:
        for engine in self.engines:
            await engine.stop()

    def engine(
        self,
        client_id: str = "u1-aaa",
        *,
        session_dir: Path | None = None,
        qr_first_ttl: float = 30.0,
        qr_ttl: float = 30.0,
        qr_max_rotations: int = 5,
    ) -> tuple[Engine, Recorder]:
        rec = Recorder()
        options = EngineOptions(
            qr_first_ttl=qr_first_ttl, qr_ttl=qr_ttl, qr_max_rotations=qr_max_rotations
        )
        engine = self.build(
            client_id, session_dir or self.tmp_path / "sessions" / client_id, rec, options
        )
        self.engines.append(engine)
        return engine, rec

    async def linked(
        self, client_id: str = "u1-aaa", phone: str = PHONE_A
    ) -> tuple[Engine, Recorder]:
        """A started engine that a phone has linked."""
        engine, rec = self.engine(client_id)
        await engine.start()
        await wait_for(lambda: bool(rec.qrs()), what="a QR")
        await self.scan(rec.qrs()[-1], phone)
        await wait_for(lambda: engine.state is S.CONNECTED, what="CONNECTED")
        return engine, rec


class SimHarness(EngineHarness):
    """The sim engine over an in-process simulated network."""

    link: SimLink

    async def setup(self) -> None:
        self.network = SimNetwork(
            self.tmp_path / "simnet.json", deliver_delay=0.01, read_delay=0.03
        )
        self.link = LocalSimLink(self.network)

    def build(
        self, client_id: str, session_dir: Path, emit: Recorder, options: EngineOptions
    ) -> Engine:
        engine = build_engine(
            "sim",
            client_id=client_id,
            session_dir=session_dir,
            emit=emit,
            options=options,
            backends=EngineBackends(sim=self.link),
        )
        engine.reconnect_base = 0.01  # type: ignore[attr-defined]
        return engine

    async def scan(self, qr: str, phone: str) -> None:
        await self.link.scan(qr, phone)

    async def enter_pair_code(self, phone: str, code: str) -> None:
        await self.link.enter_pair_code(phone, code)

    async def phone_send(self, phone: str, to: str, text: str) -> str:
        return await self.link.phone_send(phone, to, text)

    async def phone_inbox(self, phone: str) -> list[dict[str, Any]]:
        return await self.link.phone_inbox(phone)

    async def phone_send_media(
        self, phone: str, to: str, *, kind: str, data: bytes, mime: str, caption: str | None
    ) -> str:
        media = {"kind": kind, "mime": mime, "data": data}
        return await self.link.phone_send(phone, to, caption, media)

    async def lid_of(self, phone: str) -> str:
        return await self.link.lid_of(phone)

    async def set_push_name(self, phone: str, name: str) -> None:
        await self.link.set_push_name(phone, name)

    async def address_by_lid(self, phone: str, *, share_phone: bool) -> None:
        await self.link.address_by_lid(phone, share_phone=share_phone)

    async def phone_send_rich(
        self,
        phone: str,
        to: str,
        *,
        text: str | None = None,
        quote_id: str | None = None,
        mentions: tuple[str, ...] = (),
        location: Location | None = None,
        contacts: tuple[ContactCard, ...] = (),
        poll: Poll | None = None,
        preview: LinkPreview | None = None,
    ) -> str:
        extras = Extras(
            quote=None if quote_id is None else Quote(id=quote_id),
            mentions=mentions,
            location=location,
            contacts=contacts,
            poll=poll,
            preview=preview,
        )
        return await self.link.phone_send(phone, to, text, None, extras.to_dict())

    async def phone_send_from_own_phone(self, owner: str, to: str, text: str) -> str:
        return await self.link.phone_send_own(owner, to, text)

    async def phone_react(self, phone: str, to: str, target_id: str, emoji: str) -> str:
        return await self.link.phone_react(phone, to, target_id, emoji)

    async def phone_edit(self, phone: str, to: str, target_id: str, text: str) -> None:
        await self.link.phone_edit(phone, to, target_id, text)

    async def phone_revoke(self, phone: str, to: str, target_id: str) -> None:
        await self.link.phone_revoke(phone, to, target_id)

    async def phone_vote(self, phone: str, to: str, poll_id: str, options: list[str]) -> None:
        await self.link.phone_vote(phone, to, poll_id, options)

    async def phone_presence(self, phone: str, to: str, state: str) -> None:
        await self.link.phone_presence(phone, to, state)

    async def phone_read_chat(self, owner: str, chat: str) -> list[str]:
        return await self.link.phone_read(owner, chat)

    async def phone_log(self, phone: str) -> list[dict[str, Any]]:
        return await self.link.phone_log(phone)

    async def off_whatsapp(self, phone: str) -> None:
        await self.link.off_whatsapp(phone)

    async def set_profile(
        self,
        phone: str,
        *,
        push_name: str | None = None,
        about: str | None = None,
        business: bool = False,
        picture: bool = False,
    ) -> None:
        await self.link.set_profile(
            phone, push_name=push_name, about=about, business=business, picture=picture
        )

    async def phone_call(self, phone: str, to: str, *, video: bool = False) -> str:
        return await self.link.phone_call(phone, to, video=video)

    async def phone_save_contact(self, owner: str, phone: str, name: str) -> None:
        await self.link.phone_save_contact(owner, phone, name)

    async def close(self) -> None:
        await super().close()
        await self.network.aclose()


class SimHttpHarness(SimHarness):
    """The sim engine over HTTP to an in-process `zapgate simnet` (uvicorn on loopback)."""

    async def setup(self) -> None:
        self.network = SimNetwork(
            self.tmp_path / "simnet.json", deliver_delay=0.01, read_delay=0.03
        )
        port = free_port()
        config = uvicorn.Config(
            create_app(self.network),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.server_task = asyncio.create_task(self.server.serve(), name="test:simnet")
        await wait_for(lambda: self.server.started, what="simnet to listen")
        self.link = HttpSimLink(f"http://127.0.0.1:{port}", timeout=5.0)

    async def close(self) -> None:
        await EngineHarness.close(self)
        await self.link.aclose()
        self.server.should_exit = True
        await self.server_task


class WhatsmeowHarness(EngineHarness):
    """The whatsmeow engine (real neonize clients, in host processes) over a fake WhatsApp
    that drives them through neonize's own event entry point; see
    tests/contract/whatsmeow_fake.py."""

    async def setup(self) -> None:
        from tests.contract.whatsmeow_fake import FakeWhatsApp

        self.network = FakeWhatsApp().serve()
        self.backends = EngineBackends(whatsmeow=WhatsmeowRuntime(self.network.config()))

    def build(
        self, client_id: str, session_dir: Path, emit: Recorder, options: EngineOptions
    ) -> Engine:
        engine = build_engine(
            "whatsmeow",
            client_id=client_id,
            session_dir=session_dir,
            emit=emit,
            options=options,
            backends=self.backends,
        )
        engine.probe_target = None  # type: ignore[attr-defined]
        self.network.ttls[client_id] = (options.qr_first_ttl, options.qr_ttl)
        return engine

    async def scan(self, qr: str, phone: str) -> None:
        await asyncio.to_thread(self.network.scan, qr, phone)

    async def enter_pair_code(self, phone: str, code: str) -> None:
        await asyncio.to_thread(self.network.enter_pair_code, phone, code)

    async def phone_send(self, phone: str, to: str, text: str) -> str:
        return await asyncio.to_thread(self.network.phone_send, phone, to, text)

    async def phone_inbox(self, phone: str) -> list[dict[str, Any]]:
        with self.network.lock:
            return list(self.network.inboxes.get(phone, []))

    async def phone_send_media(
        self, phone: str, to: str, *, kind: str, data: bytes, mime: str, caption: str | None
    ) -> str:
        return await asyncio.to_thread(
            self.network.phone_send_media,
            phone,
            to,
            kind=kind,
            data=data,
            mime=mime,
            caption=caption,
        )

    async def lid_of(self, phone: str) -> str:
        return await asyncio.to_thread(self.network.lid_of, phone)

    async def set_push_name(self, phone: str, name: str) -> None:
        self.network.set_push_name(phone, name)

    async def address_by_lid(self, phone: str, *, share_phone: bool) -> None:
        await asyncio.to_thread(self.network.address_by_lid, phone, share_phone=share_phone)

    async def phone_send_rich(
        self,
        phone: str,
        to: str,
        *,
        text: str | None = None,
        quote_id: str | None = None,
        mentions: tuple[str, ...] = (),
        location: Location | None = None,
        contacts: tuple[ContactCard, ...] = (),
        poll: Poll | None = None,
        preview: LinkPreview | None = None,
    ) -> str:
        return await asyncio.to_thread(
            lambda: self.network.phone_send_rich(
                phone,
                to,
                text=text,
                quote_id=quote_id,
                mentions=mentions,
                location=location,
                contacts=contacts,
                poll=poll,
                preview=preview,
            )
        )

    async def phone_send_from_own_phone(self, owner: str, to: str, text: str) -> str:
        return await asyncio.to_thread(self.network.phone_send_from_own_phone, owner, to, text)

    async def phone_react(self, phone: str, to: str, target_id: str, emoji: str) -> str:
        return await asyncio.to_thread(self.network.phone_react, phone, to, target_id, emoji)

    async def phone_edit(self, phone: str, to: str, target_id: str, text: str) -> None:
        await asyncio.to_thread(self.network.phone_edit, phone, to, target_id, text)

    async def phone_revoke(self, phone: str, to: str, target_id: str) -> None:
        await asyncio.to_thread(self.network.phone_revoke, phone, to, target_id)

    async def phone_vote(self, phone: str, to: str, poll_id: str, options: list[str]) -> None:
        await asyncio.to_thread(self.network.phone_vote, phone, to, poll_id, options)

    async def phone_presence(self, phone: str, to: str, state: str) -> None:
        await asyncio.to_thread(self.network.phone_presence, phone, to, state)

    async def phone_read_chat(self, owner: str, chat: str) -> list[str]:
        return await asyncio.to_thread(self.network.phone_read_chat, owner, chat)

    async def phone_log(self, phone: str) -> list[dict[str, Any]]:
        return self.network.phone_log(phone)

    async def off_whatsapp(self, phone: str) -> None:
        await asyncio.to_thread(self.network.off_whatsapp, phone)

    async def set_profile(
        self,
        phone: str,
        *,
        push_name: str | None = None,
        about: str | None = None,
        business: bool = False,
        picture: bool = False,
    ) -> None:
        await asyncio.to_thread(
            lambda: self.network.set_profile(
                phone, push_name=push_name, about=about, business=business, picture=picture
            )
        )

    async def phone_call(self, phone: str, to: str, *, video: bool = False) -> str:
        return await asyncio.to_thread(lambda: self.network.phone_call(phone, to, video=video))

    async def phone_save_contact(self, owner: str, phone: str, name: str) -> None:
        await asyncio.to_thread(self.network.phone_save_contact, owner, phone, name)

    async def close(self) -> None:
        await super().close()
        await self.backends.aclose()
        self.network.close()


HARNESSES: dict[str, type[EngineHarness]] = {
    "sim": SimHarness,
    "sim-http": SimHttpHarness,
    "whatsmeow": WhatsmeowHarness,
}


@pytest.fixture(params=list(HARNESSES))
async def engine_harness(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[EngineHarness]:
    harness = HARNESSES[request.param](tmp_path)
    await harness.setup()
    try:
        yield harness
    finally:
        await harness.close()


async def within(seconds: float, aw: Awaitable[Any]) -> Any:
    async with asyncio.timeout(seconds):
        return await aw


# -- the contract ----------------------------------------------------------------------------
async def test_start_without_creds_asks_for_a_qr(engine_harness: EngineHarness) -> None:
    engine, rec = engine_harness.engine()
    assert not engine.has_credentials()
    await engine.start()
    await wait_for(lambda: engine.state is S.SCAN_QR and bool(rec.qrs()), what="SCAN_QR + QR")
    assert rec.qrs()[0].startswith("2@")
    assert [s for s, _ in rec.states()][:2] == [S.STARTING, S.SCAN_QR]
    qr_event = next(e for e in rec.events if isinstance(e, QrUpdated))
    assert qr_event.expires_at.tzinfo is not None
    assert engine.phone is None


async def test_qr_rotates_then_stops_with_qr_timeout(engine_harness: EngineHarness) -> None:
    engine, rec = engine_harness.engine(qr_first_ttl=0.05, qr_ttl=0.05, qr_max_rotations=3)
    await engine.start()
    await wait_for(lambda: engine.state is S.STOPPED, what="STOPPED after the last QR")
    assert engine.state_reason == "qr_timeout"
    qrs = rec.qrs()
    assert len(qrs) == 3 and len(set(qrs)) == 3
    assert all(q.startswith("2@") for q in qrs)
    assert rec.states()[-1] == (S.STOPPED, "qr_timeout")
    await asyncio.sleep(0.15)  # no endless loop: nothing more comes after STOPPED
    assert len(rec.qrs()) == 3 and engine.state is S.STOPPED


async def test_scan_connects_and_saves_credentials(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    assert engine.phone == PHONE_A
    assert engine.has_credentials()
    connected = [e for e in rec.events if isinstance(e, StateChanged) and e.state is S.CONNECTED]
    assert connected and connected[-1].phone == PHONE_A


async def test_old_qr_stops_working_after_rotation(engine_harness: EngineHarness) -> None:
    engine, rec = engine_harness.engine(qr_first_ttl=0.05, qr_ttl=30.0)
    await engine.start()
    await wait_for(lambda: len(rec.qrs()) >= 2, what="a second QR")
    with pytest.raises(Exception) as info:
        await engine_harness.scan(rec.qrs()[0], PHONE_A)
    assert getattr(info.value, "status", None) == 404
    await engine_harness.scan(rec.qrs()[-1], PHONE_A)
    await wait_for(lambda: engine.state is S.CONNECTED, what="CONNECTED")


async def test_restart_resumes_without_a_qr(engine_harness: EngineHarness, tmp_path: Path) -> None:
    engine, _ = await engine_harness.linked(phone=PHONE_A)
    await engine.stop()
    assert engine.state is S.STOPPED and engine.has_credentials()

    again, rec = engine_harness.engine(session_dir=engine.session_dir)
    assert again.has_credentials()
    await again.start()
    await wait_for(lambda: again.state is S.CONNECTED, what="CONNECTED after restart")
    assert again.phone == PHONE_A
    assert rec.qrs() == []
    assert S.SCAN_QR not in [s for s, _ in rec.states()]


async def test_send_reports_sent_delivered_read_in_order(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    message_id = new_message_id()
    got = await engine.send_text(message_id=message_id, to=STRANGER, text="hello there")
    # WhatsApp assigns the id; the gateway's is never what the network uses.
    assert got != message_id
    await wait_for(lambda: MessageStatus.READ in rec.acks(got), what="READ ack")
    assert rec.acks(got) == [MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ]
    inbox = await engine_harness.phone_inbox(STRANGER)
    assert [(m["id"], m["text"], m["from"]) for m in inbox] == [(got, "hello there", PHONE_A)]


async def test_the_sent_ack_ties_whatsapps_id_to_the_gateways(
    engine_harness: EngineHarness,
) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    ids = [new_message_id() for _ in range(3)]
    got = [
        await engine.send_text(message_id=ids[0], to=STRANGER, text="one"),
        await engine.send_media(
            message_id=ids[1], to=STRANGER, kind="image", data=png_bytes(), mime="image/png"
        ),
        await engine.send_text(message_id=ids[2], to=PHONE_B, text="three"),
    ]
    assert len(set(got)) == 3 and not set(got) & set(ids)
    await wait_for(lambda: all(MessageStatus.READ in rec.acks(w) for w in got), what="READs")
    for wa_id, message_id in zip(got, ids, strict=True):
        first, *receipts = rec.ack_events(wa_id)
        # The SENT ack names both ids and comes first; receipts name WhatsApp's only.
        assert (first.status, first.message_id) == (MessageStatus.SENT, message_id)
        assert [(a.status, a.message_id) for a in receipts] == [
            (MessageStatus.DELIVERED, None),
            (MessageStatus.READ, None),
        ]


# -- LIDs ------------------------------------------------------------------------------------
async def test_a_lid_chat_with_the_phone_beside_it(engine_harness: EngineHarness) -> None:
    _, rec = await engine_harness.linked(phone=PHONE_A)
    lid = await engine_harness.lid_of(STRANGER)
    assert lid.endswith("@lid") and lid[: -len("@lid")].isdigit()
    await engine_harness.address_by_lid(STRANGER, share_phone=True)
    msg_id = await engine_harness.phone_send(STRANGER, PHONE_A, "my number is beside")
    await wait_for(lambda: bool(rec.received()), what="an inbound message")
    (msg,) = rec.received()
    assert (msg.id, msg.chat, msg.chat_lid) == (msg_id, STRANGER, lid)
    assert (msg.sender, msg.sender_lid, msg.text) == (STRANGER, lid, "my number is beside")


async def test_a_phone_chat_carries_its_lid(engine_harness: EngineHarness) -> None:
    _, rec = await engine_harness.linked(phone=PHONE_A)
    await engine_harness.phone_send(STRANGER, PHONE_A, "by number")
    await wait_for(lambda: bool(rec.received()), what="an inbound message")
    (msg,) = rec.received()
    lid = await engine_harness.lid_of(STRANGER)
    assert (msg.chat, msg.chat_lid, msg.sender, msg.sender_lid) == (STRANGER, lid, STRANGER, lid)


async def test_a_lid_chat_without_the_phone_is_answered_and_learned_later(
    engine_harness: EngineHarness,
) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    lid = await engine_harness.lid_of(STRANGER)
    await engine_harness.address_by_lid(STRANGER, share_phone=False)
    await engine_harness.phone_send(STRANGER, PHONE_A, "guess who")
    await wait_for(lambda: len(rec.received()) == 1, what="a LID-only message")
    (first,) = rec.received()
    # Nothing tells the number: the chat is the LID, never a made-up phone.
    assert (first.chat, first.chat_lid, first.sender, first.sender_lid) == (lid, lid, lid, lid)

    # The LID can be answered, and the phone behind it gets the message.
    wa_id = await engine.send_text(message_id=new_message_id(), to=lid, text="hi, you")
    await wait_for(lambda: MessageStatus.READ in rec.acks(wa_id), what="READ ack")
    inbox = await engine_harness.phone_inbox(STRANGER)
    assert [(m["id"], m["from"], m["text"]) for m in inbox] == [(wa_id, PHONE_A, "hi, you")]

    # Writing to the number teaches the session the mapping: later messages of the LID
    # chat name the phone.
    await engine.send_text(message_id=new_message_id(), to=STRANGER, text="by number")
    await engine_harness.phone_send(STRANGER, PHONE_A, "me again")
    await wait_for(lambda: len(rec.received()) == 2, what="a second message")
    later = rec.received()[1]
    assert (later.chat, later.chat_lid, later.sender, later.sender_lid) == (
        STRANGER,
        lid,
        STRANGER,
        lid,
    )


async def test_a_lid_chat_is_resolved_by_what_the_session_saw_before(
    engine_harness: EngineHarness,
) -> None:
    _, rec = await engine_harness.linked(phone=PHONE_A)
    lid = await engine_harness.lid_of(STRANGER)
    await engine_harness.phone_send(STRANGER, PHONE_A, "by number first")
    await wait_for(lambda: len(rec.received()) == 1, what="a first message")
    await engine_harness.address_by_lid(STRANGER, share_phone=False)
    await engine_harness.phone_send(STRANGER, PHONE_A, "then by LID alone")
    await wait_for(lambda: len(rec.received()) == 2, what="a LID-only message")
    later = rec.received()[1]
    assert (later.chat, later.chat_lid, later.text) == (STRANGER, lid, "then by LID alone")


async def test_media_to_a_lid(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    lid = await engine_harness.lid_of(STRANGER)
    data = png_bytes()
    wa_id = await engine.send_media(
        message_id=new_message_id(), to=lid, kind="image", data=data, mime="image/png"
    )
    await wait_for(lambda: MessageStatus.READ in rec.acks(wa_id), what="READ ack")
    (entry,) = await engine_harness.phone_inbox(STRANGER)
    assert (entry["id"], entry["from"], entry["media"]["size"]) == (wa_id, PHONE_A, len(data))


async def test_send_needs_a_connected_session(engine_harness: EngineHarness) -> None:
    engine, _ = engine_harness.engine()
    await engine.start()
    await wait_for(lambda: engine.state is S.SCAN_QR, what="SCAN_QR")
    with pytest.raises(Exception) as info:
        await engine.send_text(message_id=new_message_id(), to=STRANGER, text="x")
    assert getattr(info.value, "errcode", None) == "wrong_state"


async def test_inbound_message_from_a_phone(engine_harness: EngineHarness) -> None:
    _, rec = await engine_harness.linked(phone=PHONE_A)
    msg_id = await engine_harness.phone_send(STRANGER, PHONE_A, "oi, tudo bem?")
    await wait_for(lambda: bool(rec.received()), what="an inbound message")
    (msg,) = rec.received()
    assert (msg.id, msg.chat, msg.sender, msg.text) == (msg_id, STRANGER, STRANGER, "oi, tudo bem?")
    assert msg.timestamp.tzinfo is not None


async def test_pair_code_links_without_a_scan(engine_harness: EngineHarness) -> None:
    engine, rec = engine_harness.engine()
    await engine.start()
    await wait_for(lambda: engine.state is S.SCAN_QR, what="SCAN_QR")
    code = await engine.pair_code(PHONE_B)
    assert len(code) == 8 and code.isalnum() and code.upper() == code
    assert engine.state is S.PAIRING
    await engine_harness.enter_pair_code(PHONE_B, code)
    await wait_for(lambda: engine.state is S.CONNECTED, what="CONNECTED after the code")
    assert engine.phone == PHONE_B and engine.has_credentials()
    assert [s for s, _ in rec.states()][-3:] == [S.SCAN_QR, S.PAIRING, S.CONNECTED]


async def test_logout_forgets_the_device(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    await engine.logout()
    assert engine.state is S.LOGGED_OUT and engine.phone is None
    assert not engine.has_credentials()

    await engine.start()
    await wait_for(lambda: engine.state is S.SCAN_QR, what="a new QR after logout")
    assert len(rec.qrs()) == 2


async def test_stop_is_idempotent_and_prompt(engine_harness: EngineHarness) -> None:
    never_started, rec0 = engine_harness.engine("u0-zzz")
    await within(2.0, never_started.stop())
    await within(2.0, never_started.stop())
    assert never_started.state is S.STOPPED
    assert len(rec0.states()) <= 1  # at most the reason "stopped", once

    engine, rec = engine_harness.engine()
    await engine.start()
    await wait_for(lambda: engine.state is S.SCAN_QR, what="SCAN_QR")
    await asyncio.sleep(0.05)  # the reader is now inside a long-poll
    t0 = time.monotonic()
    await within(2.0, engine.stop())
    await within(2.0, engine.stop())
    assert time.monotonic() - t0 < 1.5
    assert engine.state is S.STOPPED and engine.state_reason == "stopped"
    assert [s for s, _ in rec.states()].count(S.STOPPED) == 1
    assert engine.has_credentials() is False


async def test_stop_keeps_credentials(engine_harness: EngineHarness) -> None:
    engine, _ = await engine_harness.linked()
    await within(2.0, engine.stop())
    assert engine.has_credentials() and engine.state is S.STOPPED


async def test_state_reports_are_deduplicated(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    await engine.set_state(S.CONNECTED)
    await engine.set_state(S.CONNECTED)
    await engine.start()  # already running: a no-op
    await engine.stop()
    await engine.stop()
    states = rec.states()
    assert all(a != b for a, b in itertools.pairwise(states)), states
    assert states == [
        (S.STARTING, None),
        (S.SCAN_QR, None),
        (S.CONNECTED, None),
        (S.STOPPED, "stopped"),
    ]


async def test_two_sessions_on_one_network_are_kept_apart(engine_harness: EngineHarness) -> None:
    a, rec_a = engine_harness.engine("u1-aaa")
    b, rec_b = engine_harness.engine("u2-bbb")
    await a.start()
    await b.start()
    await wait_for(lambda: bool(rec_a.qrs() and rec_b.qrs()), what="both QRs")
    assert rec_a.qrs()[-1] != rec_b.qrs()[-1]

    await engine_harness.scan(rec_a.qrs()[-1], PHONE_A)
    await wait_for(lambda: a.state is S.CONNECTED, what="A CONNECTED")
    assert b.state is S.SCAN_QR and b.phone is None and not b.has_credentials()

    await engine_harness.scan(rec_b.qrs()[-1], PHONE_B)
    await wait_for(lambda: b.state is S.CONNECTED, what="B CONNECTED")
    assert (a.phone, b.phone) == (PHONE_A, PHONE_B)

    # A writes to B's number: B receives it from A's phone; only A gets the acks.
    mid = await a.send_text(message_id=new_message_id(), to=PHONE_B, text="hi B")
    await wait_for(lambda: MessageStatus.READ in rec_a.acks(mid), what="A's READ ack")
    await wait_for(lambda: bool(rec_b.received()), what="B's inbound")
    assert [(m.id, m.sender, m.text) for m in rec_b.received()] == [(mid, PHONE_A, "hi B")]
    assert rec_b.acks(mid) == [] and rec_a.received() == []

    # A stranger writes to A only.
    await engine_harness.phone_send(STRANGER, PHONE_A, "only for A")
    await wait_for(lambda: bool(rec_a.received()), what="A's inbound")
    assert [m.text for m in rec_a.received()] == ["only for A"]
    assert [m.text for m in rec_b.received()] == ["hi B"]


# -- media -----------------------------------------------------------------------------------
MEDIA_SAMPLES = {
    "image": (png_bytes(), "image/png", "a red square"),
    "document": (PDF, "application/pdf", "the contract"),
    "audio": (OGG, "audio/ogg", None),
    "video": (MP4, "video/mp4", "a clip"),
}


@pytest.mark.parametrize("kind", list(MEDIA_SAMPLES))
async def test_send_media_reaches_the_phone(engine_harness: EngineHarness, kind: str) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    data, mime, caption = MEDIA_SAMPLES[kind]
    got = await engine.send_media(
        message_id=new_message_id(),
        to=STRANGER,
        kind=kind,
        data=data,
        mime=mime,
        filename="contract.pdf" if kind == "document" else None,
        caption=caption,
    )
    await wait_for(lambda: MessageStatus.READ in rec.acks(got), what="READ ack")
    (entry,) = await engine_harness.phone_inbox(STRANGER)
    assert (entry["id"], entry["from"], entry["text"]) == (got, PHONE_A, caption)
    media = entry["media"]
    assert (media["kind"], media["mime"], media["size"]) == (kind, mime, len(data))
    assert media["sha256"] == hashlib.sha256(data).hexdigest()
    if kind == "document":
        assert media["filename"] == "contract.pdf"


async def test_send_media_needs_a_connected_session(engine_harness: EngineHarness) -> None:
    engine, _ = engine_harness.engine()
    await engine.start()
    await wait_for(lambda: engine.state is S.SCAN_QR, what="SCAN_QR")
    with pytest.raises(Exception) as info:
        await engine.send_media(
            message_id=new_message_id(),
            to=STRANGER,
            kind="image",
            data=png_bytes(),
            mime="image/png",
        )
    assert getattr(info.value, "errcode", None) == "wrong_state"


async def test_send_media_refuses_an_unknown_kind(engine_harness: EngineHarness) -> None:
    engine, _ = await engine_harness.linked(phone=PHONE_A)
    with pytest.raises(Exception) as info:
        await engine.send_media(
            message_id=new_message_id(), to=STRANGER, kind="hologram", data=b"x", mime="x/y"
        )
    assert getattr(info.value, "errcode", None) == "validation_error"
    assert await engine_harness.phone_inbox(STRANGER) == []


async def test_inbound_media_from_a_phone(engine_harness: EngineHarness) -> None:
    _, rec = await engine_harness.linked(phone=PHONE_A)
    data = png_bytes(color=(0, 0, 255))
    msg_id = await engine_harness.phone_send_media(
        STRANGER, PHONE_A, kind="image", data=data, mime="image/png", caption="olha"
    )
    await wait_for(lambda: bool(rec.received()), what="an inbound image")
    (msg,) = rec.received()
    assert (msg.id, msg.sender, msg.text) == (msg_id, STRANGER, "olha")
    assert msg.media is not None
    assert (msg.media.kind, msg.media.mime, msg.media.size) == ("image", "image/png", len(data))
    assert msg.media.data == data
    assert msg.media.sha256 == hashlib.sha256(data).hexdigest()
