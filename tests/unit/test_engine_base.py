"""engines/base.py: the final send methods tie WhatsApp's id to the gateway's in one SENT
ack, and no receipt reaches the event stream before the ack that names its id, even when
the engine reports it before its send call returned."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

import pytest

from zapgate.domain.content import LinkPreview, Quote
from zapgate.domain.events import EngineEvent, MessageAck
from zapgate.domain.models import MessageStatus
from zapgate.engines.base import Engine, EngineOptions
from zapgate.errors import EngineError

DELIVERED, READ, SENT = MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.SENT


class OvertakingEngine(Engine):
    """Reports the receipts of each message before its send returns, as whatsmeow can:
    its receipt callbacks and the send's result race onto the event loop."""

    name: ClassVar[str] = "overtaking"
    capabilities: ClassVar[frozenset[str]] = frozenset({"send_media"})

    def __init__(self, events: list[EngineEvent], tmp: Path) -> None:
        async def emit(event: EngineEvent) -> None:
            events.append(event)

        super().__init__(client_id="u1-t", session_dir=tmp, emit=emit, options=EngineOptions())
        self.gate: dict[str, asyncio.Event] = {}
        self.fail: set[str] = set()

    async def _do_send_text(
        self,
        *,
        message_id: str,
        to: str,
        text: str,
        quote: Quote | None = None,
        mentions: tuple[str, ...] = (),
        preview: LinkPreview | None = None,
    ) -> str:
        wa_id = "WA-" + message_id
        await self.emit(MessageAck(id=wa_id, status=DELIVERED))
        await self.emit(MessageAck(id="WA-OLD", status=READ))  # a message of days ago
        await self.emit(MessageAck(id=wa_id, status=READ))
        if message_id in self.gate:
            await self.gate[message_id].wait()
        if message_id in self.fail:
            raise RuntimeError("the socket closed")
        return wa_id

    async def _do_send_media(
        self,
        *,
        message_id: str,
        to: str,
        kind: str,
        data: bytes,
        mime: str,
        filename: str | None,
        caption: str | None,
        quote: Quote | None,
    ) -> str:
        return await self._do_send_text(message_id=message_id, to=to, text=caption or "")

    async def _do_start(self) -> None: ...

    async def _do_stop(self) -> None: ...

    async def _do_logout(self) -> None: ...

    def _do_has_credentials(self) -> bool:
        return False


def acks(events: list[EngineEvent]) -> list[tuple[str, MessageStatus, str | None]]:
    return [(e.id, e.status, e.message_id) for e in events if isinstance(e, MessageAck)]


async def test_the_sent_ack_names_both_ids_before_any_receipt(tmp_path: Path) -> None:
    events: list[EngineEvent] = []
    engine = OvertakingEngine(events, tmp_path)
    assert await engine.send_text(message_id="G1", to="+5511999990003", text="x") == "WA-G1"
    assert (
        await engine.send_media(
            message_id="G2", to="12@lid", kind="image", data=b"x", mime="image/png"
        )
        == "WA-G2"
    )
    assert acks(events) == [
        ("WA-G1", SENT, "G1"),
        ("WA-G1", DELIVERED, None),
        ("WA-OLD", READ, None),
        ("WA-G1", READ, None),
        ("WA-G2", SENT, "G2"),
        ("WA-G2", DELIVERED, None),
        ("WA-OLD", READ, None),
        ("WA-G2", READ, None),
    ]


async def test_sends_in_flight_together_keep_each_ones_order(tmp_path: Path) -> None:
    events: list[EngineEvent] = []
    engine = OvertakingEngine(events, tmp_path)
    engine.gate = {"G1": asyncio.Event()}
    first = asyncio.create_task(engine.send_text(message_id="G1", to="+5511999990003", text="1"))
    await asyncio.sleep(0)
    # G2 completes while G1 is still in flight: G2's acks go out, G1's wait for its SENT.
    await engine.send_text(message_id="G2", to="+5511999990003", text="2")
    assert acks(events) == [
        ("WA-G2", SENT, "G2"),
        ("WA-G2", DELIVERED, None),
        ("WA-G2", READ, None),
    ]
    engine.gate["G1"].set()
    await first
    assert acks(events)[3:] == [
        ("WA-G1", SENT, "G1"),
        ("WA-G1", DELIVERED, None),
        ("WA-OLD", READ, None),
        ("WA-G1", READ, None),
        ("WA-OLD", READ, None),
    ]


async def test_a_failed_send_reports_no_sent_and_releases_what_it_held(tmp_path: Path) -> None:
    events: list[EngineEvent] = []
    engine = OvertakingEngine(events, tmp_path)
    engine.fail = {"G1"}
    with pytest.raises(EngineError):
        await engine.send_text(message_id="G1", to="+5511999990003", text="x")
    assert acks(events) == [
        ("WA-G1", DELIVERED, None),
        ("WA-OLD", READ, None),
        ("WA-G1", READ, None),
    ]
    await engine.emit(MessageAck(id="WA-LATER", status=DELIVERED))  # nothing in flight
    assert acks(events)[-1] == ("WA-LATER", DELIVERED, None)


async def test_under_steady_load_a_receipt_waits_for_no_quiet_moment(tmp_path: Path) -> None:
    """Overlapping sends keep a send in flight at all times: a receipt that came before
    every send still in flight began is released when a send completes, not held until
    none is in flight (issue 15: acks of a busy session were held indefinitely)."""
    events: list[EngineEvent] = []
    engine = OvertakingEngine(events, tmp_path)
    engine.gate = {"G1": asyncio.Event(), "G2": asyncio.Event()}
    first = asyncio.create_task(engine.send_text(message_id="G1", to="+5511999990003", text="1"))
    await asyncio.sleep(0)
    second = asyncio.create_task(engine.send_text(message_id="G2", to="+5511999990003", text="2"))
    await asyncio.sleep(0)
    engine.gate["G1"].set()
    await first
    assert not second.done()
    # G1's receipts, and the old one that came before G2 began, are out; G2's wait.
    assert acks(events) == [
        ("WA-G1", SENT, "G1"),
        ("WA-G1", DELIVERED, None),
        ("WA-OLD", READ, None),
        ("WA-G1", READ, None),
    ]
    engine.gate["G2"].set()
    await second
    assert acks(events)[4:] == [
        ("WA-G2", SENT, "G2"),
        ("WA-G2", DELIVERED, None),
        ("WA-OLD", READ, None),
        ("WA-G2", READ, None),
    ]
