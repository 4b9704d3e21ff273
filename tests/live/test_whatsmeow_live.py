"""The whatsmeow engine against the real WhatsApp, one test per item of issue 14, for
whoever has a phone. Skipped unless ZAPGATE_LIVE=1; nothing here runs in `make test`.

    ZAPGATE_LIVE=1 [ZAPGATE_LIVE_TO=+5511...] .venv/bin/pytest tests/live -m live -s -k <name>

The linked session lives in ./data/live-whatsmeow (kept: later runs resume without a QR).
Steps per test (each docstring says what to do on the phone while it waits):

1. `test_link_a_real_phone_and_send` first: scan the QR printed in the terminal
   (WhatsApp > Linked devices) within two minutes. With ZAPGATE_LIVE_TO, a text goes to
   that number: its DELIVERED must come back under the id the send returned (item 3).
2. `test_stop_in_scan_qr_is_prompt` needs no phone (item 2).
3. `test_group_and_protocol_messages` (items 1, 4, 5): within two minutes, from ANOTHER
   phone: write in a group the linked number is in, react to and edit a message in the
   1:1 chat, and write once in the 1:1 chat.
4. `test_a_device_logged_out_while_stopped` (item 7): run it, remove the linked device on
   the phone when it says so, and press Enter.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.test_engine_contract import Recorder, wait_for
from zapgate.config import Settings
from zapgate.domain.ids import new_message_id
from zapgate.domain.models import MessageStatus
from zapgate.domain.state import SessionState as S
from zapgate.engines import EngineBackends, build_engine
from zapgate.engines.backends import WhatsmeowConfig, WhatsmeowRuntime
from zapgate.engines.base import EngineOptions
from zapgate.engines.whatsmeow import WhatsmeowEngine

SESSION_DIR = Path("data/live-whatsmeow").resolve()

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(os.environ.get("ZAPGATE_LIVE") != "1", reason="needs ZAPGATE_LIVE=1"),
    pytest.mark.timeout(400),
]


def build(rec: Recorder, session_dir: Path = SESSION_DIR) -> WhatsmeowEngine:
    engine = build_engine(
        "whatsmeow",
        client_id=session_dir.name,
        session_dir=session_dir,
        emit=rec,
        options=EngineOptions(qr_max_rotations=6),
        backends=EngineBackends(
            whatsmeow=WhatsmeowRuntime(WhatsmeowConfig.from_settings(Settings()))
        ),
    )
    assert isinstance(engine, WhatsmeowEngine)
    return engine


async def until_linked(engine: WhatsmeowEngine, rec: Recorder) -> None:
    import segno

    shown = 0
    deadline = time.monotonic() + 180
    while engine.state is not S.CONNECTED:
        assert time.monotonic() < deadline, f"not linked: {engine.state} {engine.state_reason}"
        assert engine.state.is_running, f"{engine.state}: {engine.state_reason}"
        if len(rec.qrs()) > shown:
            shown = len(rec.qrs())
            segno.make_qr(rec.qrs()[-1]).terminal(compact=True)
        await asyncio.sleep(0.2)


@pytest.fixture
async def live() -> AsyncIterator[tuple[WhatsmeowEngine, Recorder]]:
    rec = Recorder()
    engine = build(rec)
    await engine.start()
    try:
        await until_linked(engine, rec)
        yield engine, rec
    finally:
        await engine.stop()
        await engine.runtime.aclose()


async def test_link_a_real_phone_and_send(live: tuple[WhatsmeowEngine, Recorder]) -> None:
    engine, rec = live
    assert engine.phone and engine.phone.startswith("+")
    assert engine.has_credentials()
    to = os.environ.get("ZAPGATE_LIVE_TO")
    if to:
        wa_id = await engine.send_text(message_id=new_message_id(), to=to, text="zapgate live")
        await wait_for(
            lambda: MessageStatus.DELIVERED in rec.acks(wa_id), timeout=60, what="DELIVERED"
        )


async def test_stop_in_scan_qr_is_prompt(tmp_path: Path) -> None:
    """Item 2: an unlinked session's stop kills its host at once."""
    rec = Recorder()
    engine = build(rec, tmp_path / "live-unlinked")
    await engine.start()
    await wait_for(lambda: engine.state is S.SCAN_QR, timeout=30, what="a QR")
    pids = [h.pid for h in engine.runtime.pool().hosts]
    t0 = time.monotonic()
    await engine.stop()
    assert time.monotonic() - t0 < 1.0
    assert engine.runtime.pool().hosts == []
    for pid in pids:
        assert pid is not None
        await wait_for(lambda p=pid: not Path(f"/proc/{p}").exists(), what="the host gone")
    await engine.runtime.aclose()


async def test_group_and_protocol_messages(live: tuple[WhatsmeowEngine, Recorder]) -> None:
    """Items 1, 4, 5: from another phone, write in a group with the linked number, react
    to and edit a message in the 1:1 chat, then write once in the 1:1 chat."""
    _, rec = live
    print("\nnow: a group message, a reaction, an edit, then a 1:1 message (2 minutes)")
    await wait_for(
        lambda: (
            any(m.chat.endswith("@g.us") for m in rec.received())
            and any(not m.chat.endswith("@g.us") for m in rec.received())
        ),
        timeout=120,
        what="a group and a 1:1 message",
    )
    for m in rec.received():
        print(m.id, m.chat, m.sender, m.raw.get("chat_lid"), repr(m.text))
        assert m.text or m.media, "a message without content was delivered"
        # A chat is its phone whenever whatsmeow knows it (item 4).
        assert m.chat.startswith("+") or "@" in m.chat


async def test_a_device_logged_out_while_stopped() -> None:
    """Item 7: remove the device from the phone while the session is stopped; the next
    start must ask for a new QR, not crash."""
    rec = Recorder()
    engine = build(rec)
    await engine.start()
    await until_linked(engine, rec)
    await engine.stop()
    await asyncio.to_thread(input, "\nremove this linked device on the phone, then press Enter")
    await engine.start()
    await wait_for(
        lambda: engine.state in (S.SCAN_QR, S.LOGGED_OUT), timeout=60, what="QR or LOGGED_OUT"
    )
    await engine.stop()
    await engine.runtime.aclose()
