"""The simulated network's contacts and calls: numbers off WhatsApp, profiles, blocking,
the address book and calls; what it refuses, and the same over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import free_port
from tests.unit.test_simnet import wait_for
from zapgate.domain.contacts import MAX_CHECK
from zapgate.domain.ids import new_message_id
from zapgate.errors import DeviceNotLinked, NotFound, NumberNotLinked, ValidationFailed
from zapgate.simnet.client import HttpSimLink
from zapgate.simnet.network import MAX_ABOUT, SimNetwork
from zapgate.simnet.server import create_app

PHONE_A = "+5511999990001"
PHONE_B = "+5511999990002"
STRANGER = "+5511999990077"
NOBODY = "+5511999990088"


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[SimNetwork]:
    network = SimNetwork(tmp_path / "simnet.json", deliver_delay=0.01, read_delay=0.03)
    yield network
    await network.aclose()


async def link(net: SimNetwork, device: str, phone: str) -> None:
    await net.connect(device, None)
    await net.scan(await net.request_qr(device), phone)


async def events(net: SimNetwork, device: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in await net.next_events(device, 0, 0) if e["type"] == kind]


# -- numbers off WhatsApp --------------------------------------------------------------------
async def test_nothing_goes_to_or_from_a_number_off_whatsapp(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    await net.off_whatsapp(NOBODY)
    with pytest.raises(NotFound, match="not on WhatsApp") as info:
        await net.send("u1-a", new_message_id(), NOBODY, "hello?")
    assert info.value.hint
    with pytest.raises(NotFound, match="not on WhatsApp"):
        await net.phone_send(NOBODY, PHONE_A, "hi")
    with pytest.raises(NotFound, match="not on WhatsApp"):
        await net.phone_call(NOBODY, PHONE_A)
    with pytest.raises(NotFound, match="not on WhatsApp"):
        await net.contact_profile("u1-a", NOBODY)
    with pytest.raises(NotFound, match="not on WhatsApp"):
        await net.set_blocked("u1-a", NOBODY, True)
    with pytest.raises(NotFound, match="not on WhatsApp"):
        await net.set_profile(NOBODY, about="landline")
    assert await net.phone_inbox(NOBODY) == []
    assert await events(net, "u1-a", "message") == []


async def test_a_check_answers_in_order_and_teaches_the_lids(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    await net.off_whatsapp(NOBODY)
    lid = await net.lid_of(STRANGER)
    assert await net.pn_for_lid("u1-a", lid) is None
    checks = await net.check_numbers("u1-a", ["+55 11 99999-0077", NOBODY])
    assert checks == [
        {
            "phone": STRANGER,
            "on_whatsapp": True,
            "jid": "5511999990077@s.whatsapp.net",
            "lid": lid,
            "business": False,
        },
        {"phone": NOBODY, "on_whatsapp": False, "jid": None, "lid": None, "business": False},
    ]
    assert await net.pn_for_lid("u1-a", lid) == STRANGER


async def test_a_check_needs_a_linked_device_and_at_most_max_numbers(net: SimNetwork) -> None:
    await net.connect("u1-a", None)
    with pytest.raises(DeviceNotLinked):
        await net.check_numbers("u1-a", [STRANGER])
    await net.scan(await net.request_qr("u1-a"), PHONE_A)
    with pytest.raises(ValidationFailed, match=f"at most {MAX_CHECK}"):
        await net.check_numbers("u1-a", [STRANGER] * (MAX_CHECK + 1))


# -- profiles --------------------------------------------------------------------------------
async def test_a_profile_by_number_or_lid(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    await net.set_profile(STRANGER, push_name="Ana", about="Oi", business=True, picture=True)
    lid = await net.lid_of(STRANGER)
    # By LID before the device learned the number: the LID is all it may know.
    by_lid = await net.contact_profile("u1-a", lid)
    assert (by_lid["address"], by_lid["lid"], by_lid["push_name"]) == (lid, lid, "Ana")
    profile = await net.contact_profile("u1-a", STRANGER)
    assert profile["address"] == STRANGER
    assert (profile["about"], profile["business"], profile["blocked"]) == ("Oi", True, False)
    url = profile["picture_url"]
    assert url.startswith("https://pps.whatsapp.invalid/v/") and url.endswith(".jpg")
    # Another change keeps the picture; dropping it drops its URL.
    await net.set_profile(STRANGER, about="Ocupada", picture=True)
    assert (await net.contact_profile("u1-a", lid))["picture_url"] == url
    await net.set_profile(STRANGER)
    plain = await net.contact_profile("u1-a", STRANGER)
    assert (plain["about"], plain["picture_url"], plain["business"]) == (None, None, False)
    assert plain["push_name"] == "Ana"


async def test_bad_profiles_are_refused(net: SimNetwork) -> None:
    with pytest.raises(ValidationFailed, match=f"at most {MAX_ABOUT}"):
        await net.set_profile(STRANGER, about="x" * (MAX_ABOUT + 1))
    with pytest.raises(ValidationFailed, match="push name"):
        await net.set_profile(STRANGER, push_name=" ")


# -- blocking --------------------------------------------------------------------------------
async def test_a_block_holds_for_every_device_of_the_account(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    await link(net, "u1-a2", PHONE_A)
    await net.set_blocked("u1-a", STRANGER, True)
    assert (await net.contact_profile("u1-a2", STRANGER))["blocked"]
    dropped = await net.phone_send(STRANGER, PHONE_A, "are you there?")
    await net.phone_presence(STRANGER, PHONE_A, "typing")
    await net.phone_call(STRANGER, PHONE_A)
    for device in ("u1-a", "u1-a2"):
        assert [e["type"] for e in await net.next_events(device, 0, 0)] == ["paired"]
    with pytest.raises(NotFound):  # a message that never arrived cannot be reacted to
        await net.react("u1-a", STRANGER, {"id": dropped, "from_me": False}, "👍")
    assert await net.phone_log(PHONE_A) == []

    await net.set_blocked("u1-a2", STRANGER, False)
    await net.phone_send(STRANGER, PHONE_A, "now?")
    for device in ("u1-a", "u1-a2"):
        assert [e["text"] for e in await events(net, device, "message")] == ["now?"]


async def test_a_blocked_account_gets_no_receipts_and_no_presence(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    await link(net, "u2-b", PHONE_B)
    await net.set_blocked("u2-b", PHONE_A, True)
    sent = await net.send("u1-a", new_message_id(), PHONE_B, "hello")
    await asyncio.sleep(0.1)
    assert await events(net, "u1-a", "ack") == []  # one grey tick: never delivered
    assert await events(net, "u2-b", "message") == []
    assert await net.phone_inbox(PHONE_B) == []
    # The blocking account's presence does not reach the blocked one either.
    await net.set_presence("u2-b", PHONE_A, "typing")
    assert await events(net, "u1-a", "presence") == []
    with pytest.raises(NotFound):
        await net.react("u2-b", PHONE_A, {"id": sent, "from_me": False}, "👍")


async def test_blocking_is_refused_for_oneself_and_unlinked_devices(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    with pytest.raises(ValidationFailed, match="cannot block itself"):
        await net.set_blocked("u1-a", PHONE_A, True)
    with pytest.raises(NotFound, match="LID"):
        await net.set_blocked("u1-a", "123456789012345@lid", True)
    await net.connect("u9-x", None)
    with pytest.raises(DeviceNotLinked):
        await net.set_blocked("u9-x", STRANGER, True)


# -- the address book ------------------------------------------------------------------------
async def test_the_address_book_syncs_contacts_on_whatsapp(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    await net.off_whatsapp(NOBODY)
    await net.set_push_name(STRANGER, "Ana")
    await net.phone_save_contact(PHONE_A, STRANGER, "  Ana Souza ")
    await net.phone_save_contact(PHONE_A, NOBODY, "Landline")
    lid = await net.lid_of(STRANGER)
    assert await net.address_book("u1-a") == [
        {"address": STRANGER, "name": "Ana Souza", "push_name": "Ana", "lid": lid}
    ]
    assert await net.pn_for_lid("u1-a", lid) == STRANGER
    await net.phone_save_contact(PHONE_A, STRANGER, "Ana")
    assert [e["name"] for e in await net.address_book("u1-a")] == ["Ana"]


async def test_bad_address_book_entries_are_refused(net: SimNetwork) -> None:
    with pytest.raises(NumberNotLinked):
        await net.phone_save_contact(PHONE_A, STRANGER, "Ana")
    await link(net, "u1-a", PHONE_A)
    with pytest.raises(ValidationFailed, match="contact's name"):
        await net.phone_save_contact(PHONE_A, STRANGER, "  ")


# -- calls -----------------------------------------------------------------------------------
async def test_a_call_rings_every_device_and_a_reject_reaches_the_caller(
    net: SimNetwork,
) -> None:
    await link(net, "u1-a", PHONE_A)
    await link(net, "u1-a2", PHONE_A)
    await net.address_by_lid(STRANGER, share_phone=False)
    call_id = await net.phone_call(STRANGER, PHONE_A, video=True)
    assert len(call_id) == 32 and call_id == call_id.upper()
    lid = await net.lid_of(STRANGER)
    for device in ("u1-a", "u1-a2"):
        (call,) = await events(net, device, "call")
        assert (call["id"], call["sender"], call["sender_alt"]) == (call_id, lid, None)
        assert (call["video"], call["group"]) == (True, False)
    await net.reject_call("u1-a", call_id, lid)
    await net.reject_call("u1-a2", call_id, lid)  # already rejected: nothing more
    log = await net.phone_log(STRANGER)
    assert [(e["type"], e["id"], e["from"]) for e in log] == [("call_rejected", call_id, PHONE_A)]


async def test_only_the_called_account_rejects_a_known_call(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    await link(net, "u2-b", PHONE_B)
    with pytest.raises(NumberNotLinked):
        await net.phone_call(STRANGER, "+5511999990055")
    call_id = await net.phone_call(STRANGER, PHONE_A)
    with pytest.raises(NotFound, match="no call"):
        await net.reject_call("u1-a", "0" * 32, STRANGER)
    with pytest.raises(NotFound, match="no call"):
        await net.reject_call("u1-a", call_id, PHONE_B)
    with pytest.raises(NotFound, match="no call"):
        await net.reject_call("u2-b", call_id, STRANGER)
    assert await net.phone_log(STRANGER) == []


# -- over HTTP -------------------------------------------------------------------------------
@pytest.fixture
async def http_link(net: SimNetwork) -> AsyncIterator[HttpSimLink]:
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
    client = HttpSimLink(f"http://127.0.0.1:{port}", timeout=5.0)
    yield client
    await client.aclose()
    server.should_exit = True
    await task


async def test_contacts_and_calls_over_http(net: SimNetwork, http_link: HttpSimLink) -> None:
    await link(net, "u1-a", PHONE_A)
    await http_link.off_whatsapp(NOBODY)
    await http_link.set_profile(STRANGER, push_name="Ana", about="Oi", picture=True)
    checks = await http_link.check_numbers("u1-a", [STRANGER, NOBODY])
    assert [c["on_whatsapp"] for c in checks] == [True, False]
    profile = await http_link.contact_profile("u1-a", STRANGER)
    assert (profile["push_name"], profile["about"]) == ("Ana", "Oi")
    await http_link.set_blocked("u1-a", STRANGER, True)
    assert (await http_link.contact_profile("u1-a", STRANGER))["blocked"]
    await http_link.phone_save_contact(PHONE_A, STRANGER, "Ana Souza")
    assert [e["name"] for e in await http_link.address_book("u1-a")] == ["Ana Souza"]
    await http_link.set_blocked("u1-a", STRANGER, False)
    call_id = await http_link.phone_call(STRANGER, PHONE_A)
    await http_link.reject_call("u1-a", call_id, STRANGER)
    assert [e["id"] for e in await http_link.phone_log(STRANGER)] == [call_id]


async def test_http_refusals_of_contacts_and_calls_keep_the_error_shape(
    net: SimNetwork, http_link: HttpSimLink
) -> None:
    await link(net, "u1-a", PHONE_A)
    await net.off_whatsapp(NOBODY)
    with pytest.raises(NotFound, match="no call") as info:
        await http_link.reject_call("u1-a", "0" * 32, STRANGER)
    assert info.value.hint and info.value.status == 404
    with pytest.raises(ValidationFailed, match=f"at most {MAX_ABOUT}"):
        await http_link.set_profile(STRANGER, about="x" * (MAX_ABOUT + 1))
    with pytest.raises(ValidationFailed) as too_many:
        await http_link.check_numbers("u1-a", [STRANGER] * (MAX_CHECK + 1))
    assert too_many.value.status == 422
    async with httpx.AsyncClient(base_url=http_link.base_url) as http:
        bad = await http.post("/devices/u1-a/blocks", json={"address": STRANGER})
        assert bad.status_code == 422 and bad.json()["errcode"] == "validation_error"
        missing = await http.get("/devices/u1-a/profiles/%2B5511999990088")
        assert missing.status_code == 404 and missing.json()["errcode"] == "not_found"
