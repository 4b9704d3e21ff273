"""Links a real phone to the whatsmeow engine. Skipped unless ZAPGATE_LIVE=1.

    ZAPGATE_LIVE=1 [ZAPGATE_LIVE_TO=+5511...] .venv/bin/pytest tests/live -m live -s

Prints the QR in the terminal; scan it with WhatsApp (Linked devices) within two minutes.
With ZAPGATE_LIVE_TO set, sends one text to that number and waits for its DELIVERED ack.
The session lives in ./data/live-whatsmeow (kept, so a second run resumes without a QR).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tests.contract.test_engine_contract import Recorder
from zapgate.config import Settings
from zapgate.domain.ids import new_message_id
from zapgate.domain.models import MessageStatus
from zapgate.domain.state import SessionState as S
from zapgate.engines import EngineBackends, build_engine
from zapgate.engines.backends import WhatsmeowConfig, WhatsmeowRuntime
from zapgate.engines.base import EngineOptions

SESSION_DIR = Path("data/live-whatsmeow").resolve()

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(os.environ.get("ZAPGATE_LIVE") != "1", reason="needs ZAPGATE_LIVE=1"),
    pytest.mark.timeout(300),
]


async def test_link_a_real_phone_and_send() -> None:
    import segno

    rec = Recorder()
    engine = build_engine(
        "whatsmeow",
        client_id="live-whatsmeow",
        session_dir=SESSION_DIR,
        emit=rec,
        options=EngineOptions(qr_max_rotations=6),
        backends=EngineBackends(
            whatsmeow=WhatsmeowRuntime(WhatsmeowConfig.from_settings(Settings()))
        ),
    )
    await engine.start()
    shown = 0
    deadline = time.monotonic() + 180
    try:
        while engine.state is not S.CONNECTED:
            assert time.monotonic() < deadline, f"not linked: {engine.state} {engine.state_reason}"
            assert engine.state.is_running, f"{engine.state}: {engine.state_reason}"
            if len(rec.qrs()) > shown:
                shown = len(rec.qrs())
                segno.make_qr(rec.qrs()[-1]).terminal(compact=True)
            await asyncio.sleep(0.2)
        assert engine.phone and engine.phone.startswith("+")
        assert engine.has_credentials()
        to = os.environ.get("ZAPGATE_LIVE_TO")
        if to:
            wa_id = await engine.send_text(message_id=new_message_id(), to=to, text="zapgate live")
            while MessageStatus.DELIVERED not in rec.acks(wa_id):
                assert time.monotonic() < deadline + 60, "no DELIVERED ack"
                await asyncio.sleep(0.2)
    finally:
        await engine.stop()
