"""The engine contract, part three: what a session learns about other users (is a number
on WhatsApp, a contact's profile, blocking, the address book) and calls, over every engine
(the harnesses of test_engine_contract.py)."""

from __future__ import annotations

import asyncio

import pytest

from tests.contract.test_engine_contract import (
    PHONE_A,
    PHONE_B,
    STRANGER,
    EngineHarness,
    engine_harness,
    wait_for,
)
from zapgate.domain.contacts import MAX_CHECK
from zapgate.domain.events import CallReceived

__all__ = ["engine_harness"]  # the fixture, imported for pytest

NOBODY = "+5511999990088"


async def test_every_engine_has_the_contact_and_call_capabilities(
    engine_harness: EngineHarness,
) -> None:
    engine, _ = engine_harness.engine()
    assert set(engine.capabilities) >= {"contacts", "calls"}


async def test_which_numbers_are_on_whatsapp(engine_harness: EngineHarness) -> None:
    engine, _ = await engine_harness.linked(phone=PHONE_A)
    await engine_harness.off_whatsapp(NOBODY)
    await engine_harness.set_profile(PHONE_B, business=True)
    checks = await engine.check_numbers([STRANGER, NOBODY, PHONE_B])
    assert [(c.phone, c.on_whatsapp) for c in checks] == [
        (STRANGER, True),
        (NOBODY, False),
        (PHONE_B, True),
    ]
    stranger, nobody, business = checks
    assert stranger.jid == "5511999990077@s.whatsapp.net"
    assert stranger.lid == await engine_harness.lid_of(STRANGER)
    assert (nobody.jid, nobody.lid) == (None, None)
    assert business.business and not stranger.business


async def test_a_check_of_too_many_numbers_is_refused(engine_harness: EngineHarness) -> None:
    engine, _ = await engine_harness.linked(phone=PHONE_A)
    phones = [f"+55119{i:08d}" for i in range(MAX_CHECK + 1)]
    with pytest.raises(Exception) as info:
        await engine.check_numbers(phones)
    assert getattr(info.value, "errcode", None) == "validation_error"
    assert await engine.check_numbers([]) == []


async def test_a_contacts_profile(engine_harness: EngineHarness) -> None:
    engine, _ = await engine_harness.linked(phone=PHONE_A)
    await engine_harness.set_profile(
        STRANGER, push_name="Ana", about="Disponível", business=True, picture=True
    )
    profile = await engine.contact_profile(STRANGER)
    assert (profile.address, profile.about, profile.business, profile.blocked) == (
        STRANGER,
        "Disponível",
        True,
        False,
    )
    assert profile.lid == await engine_harness.lid_of(STRANGER)
    assert profile.picture_url and profile.picture_url.startswith("https://")

    await engine_harness.set_profile(PHONE_B)
    plain = await engine.contact_profile(PHONE_B)
    assert (plain.about, plain.picture_url, plain.business) == (None, None, False)


async def test_a_blocked_contact_no_longer_reaches_the_session(
    engine_harness: EngineHarness,
) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    await engine.set_blocked(STRANGER, True)
    assert (await engine.contact_profile(STRANGER)).blocked
    await engine_harness.phone_send(STRANGER, PHONE_A, "are you there?")
    await asyncio.sleep(0.3)
    assert rec.received() == []

    await engine.set_blocked(STRANGER, False)
    assert not (await engine.contact_profile(STRANGER)).blocked
    msg_id = await engine_harness.phone_send(STRANGER, PHONE_A, "now?")
    await wait_for(lambda: bool(rec.received()), what="a message after unblocking")
    assert [m.id for m in rec.received()] == [msg_id]


async def test_the_address_book_the_phone_synced(engine_harness: EngineHarness) -> None:
    engine, _ = await engine_harness.linked(phone=PHONE_A)
    await engine_harness.phone_save_contact(PHONE_A, STRANGER, "Ana Souza")

    async def names() -> dict[str, str | None]:
        return {e.address: e.name for e in await engine.address_book()}

    for _ in range(300):
        if (await names()).get(STRANGER) == "Ana Souza":
            break
        await asyncio.sleep(0.01)
    assert (await names()).get(STRANGER) == "Ana Souza"


async def test_a_call_rings_and_is_rejected(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    call_id = await engine_harness.phone_call(STRANGER, PHONE_A, video=True)

    def calls() -> list[CallReceived]:
        return [e for e in rec.events if isinstance(e, CallReceived)]

    await wait_for(lambda: bool(calls()), what="a ringing call")
    (call,) = calls()
    assert (call.id, call.caller, call.video, call.group) == (call_id, STRANGER, True, False)
    assert call.caller_lid == await engine_harness.lid_of(STRANGER)

    await engine.reject_call(call_id=call.id, caller=call.caller)
    for _ in range(300):
        log = [e for e in await engine_harness.phone_log(STRANGER) if e["type"] == "call_rejected"]
        if log:
            break
        await asyncio.sleep(0.01)
    assert [(e["id"], e["from"]) for e in log] == [(call_id, PHONE_A)]
