"""The simulated network's messages beyond text and media: what it carries, what it refuses
(as WhatsApp does), how actions reach the other side, and the sim engine's poll memory."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import free_port
from tests.unit.test_simnet import wait_for
from zapgate.domain.content import Poll
from zapgate.domain.events import EngineEvent, PollVoted, QrUpdated
from zapgate.domain.ids import new_message_id
from zapgate.domain.state import SessionState
from zapgate.engines.base import EngineOptions
from zapgate.engines.sim import POLLS_FILE, SimEngine
from zapgate.errors import DeviceNotLinked, InvalidPhone, NotFound, ValidationFailed
from zapgate.simnet.client import HttpSimLink, LocalSimLink
from zapgate.simnet.content import option_hash, vcard
from zapgate.simnet.network import SimNetwork
from zapgate.simnet.server import create_app

PHONE_A = "+5511999990001"
PHONE_B = "+5511999990002"
STRANGER = "+5511999990077"
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def net(tmp_path: Path, clock: Clock) -> AsyncIterator[SimNetwork]:
    network = SimNetwork(tmp_path / "simnet.json", deliver_delay=0.01, read_delay=0.03, clock=clock)
    yield network
    await network.aclose()


async def link(net: SimNetwork, device: str, phone: str) -> None:
    await net.connect(device, None)
    await net.scan(await net.request_qr(device), phone)


async def events(net: SimNetwork, device: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in await net.next_events(device, 0, 0) if e["type"] == kind]


# -- what a message carries ------------------------------------------------------------------
async def test_contacts_get_whatsapps_vcard_where_missing(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    given = "BEGIN:VCARD\nVERSION:3.0\nFN:Own\nEND:VCARD"
    extras = {
        "contacts": [
            {"name": "Maria", "phone": "+55 11 98888-7777", "organization": "Padaria"},
            {"name": "Own", "vcard": given},
        ]
    }
    await net.send("u1-a", new_message_id(), STRANGER, None, extras=extras)
    (entry,) = await net.phone_inbox(STRANGER)
    built, kept = entry["contacts"]
    assert built["phone"] == "+5511988887777"
    assert built["vcard"] == (
        "BEGIN:VCARD\nVERSION:3.0\nFN:Maria\nORG:Padaria;\n"
        "TEL;type=CELL;type=VOICE;waid=5511988887777:+5511988887777\nEND:VCARD"
    )
    assert kept["vcard"] == given
    assert "EMAIL;type=INTERNET:m@x.example" in vcard("M", None, None, "m@x.example")


@pytest.mark.parametrize(
    ("extras", "text", "match"),
    [
        ({"poll": {"question": "Q?", "options": ["only"]}}, None, "1 options"),
        ({"poll": {"question": "Q?", "options": ["a", "a"]}}, None, "differ"),
        ({"poll": {"question": "Q?", "options": ["a", "b"], "max_selections": 3}}, None, "1 to 2"),
        ({"poll": {"question": "", "options": ["a", "b"]}}, None, "question"),
        ({"location": {"latitude": 91, "longitude": 0}}, None, "out of range"),
        ({"location": {"latitude": 0, "longitude": 0}}, "caption?", "one of"),
        ({"contacts": [{"name": " "}]}, None, "name"),
    ],
)
async def test_bad_extras_are_refused(
    net: SimNetwork, extras: dict[str, Any], text: str | None, match: str
) -> None:
    await link(net, "u1-a", PHONE_A)
    with pytest.raises(ValidationFailed, match=match):
        await net.send("u1-a", new_message_id(), STRANGER, text, extras=extras)
    with pytest.raises(ValidationFailed, match=match):
        await net.phone_send(STRANGER, PHONE_A, text, extras=extras)
    assert await net.phone_inbox(STRANGER) == []


async def test_bad_mentions_and_media_kinds_are_refused(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    with pytest.raises(InvalidPhone):
        await net.send("u1-a", new_message_id(), STRANGER, "hi", extras={"mentions": ["123"]})
    media = {"kind": "hologram", "mime": "x/y", "data": b"x"}
    with pytest.raises(ValidationFailed, match="hologram"):
        await net.send("u1-a", new_message_id(), STRANGER, None, media)


async def test_a_phone_quotes_only_messages_of_its_chat(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    await link(net, "u2-b", PHONE_B)
    other_chat = await net.send("u2-b", new_message_id(), STRANGER, "not yours")
    with pytest.raises(NotFound):
        await net.phone_send(STRANGER, PHONE_A, "re", extras={"quote": {"id": other_chat}})
    mine = await net.send("u1-a", new_message_id(), STRANGER, "question")
    await net.phone_send(STRANGER, PHONE_A, "answer", extras={"quote": {"id": mine}})
    (msg,) = await events(net, "u1-a", "message")
    # The quoted message is the reader's own: no sender, as WhatsApp's Quote.sender.
    assert msg["quote"] == {"id": mine, "sender": None, "text": "question"}


# -- what the network refuses ----------------------------------------------------------------
async def test_only_the_sender_edits_or_deletes_a_message(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    theirs = await net.phone_send(STRANGER, PHONE_A, "hello")
    with pytest.raises(ValidationFailed, match="only its sender can edit it"):
        await net.edit("u1-a", STRANGER, theirs, "changed")
    with pytest.raises(ValidationFailed, match="only its sender can delete it"):
        await net.revoke("u1-a", STRANGER, {"id": theirs, "from_me": False})
    mine = await net.send("u1-a", new_message_id(), STRANGER, "mine")
    with pytest.raises(ValidationFailed, match="only its sender can edit it"):
        await net.phone_edit(STRANGER, PHONE_A, mine, "hijacked")
    with pytest.raises(ValidationFailed, match="only its sender can delete it"):
        await net.phone_revoke(STRANGER, PHONE_A, mine)
    assert await net.phone_log(STRANGER) == []


async def test_an_edit_after_15_minutes_is_refused(net: SimNetwork, clock: Clock) -> None:
    await link(net, "u1-a", PHONE_A)
    mine = await net.send("u1-a", new_message_id(), STRANGER, "teh")
    clock.now = T0 + timedelta(minutes=15)
    await net.edit("u1-a", STRANGER, mine, "the")  # just in time
    clock.now = T0 + timedelta(minutes=15, seconds=1)
    with pytest.raises(ValidationFailed, match="more than 15 minutes ago") as info:
        await net.edit("u1-a", STRANGER, mine, "them")
    assert info.value.hint and "15" in info.value.hint
    theirs = await net.phone_send(STRANGER, PHONE_A, "at 8")
    clock.now += timedelta(hours=1)
    with pytest.raises(ValidationFailed, match="15 minutes"):
        await net.phone_edit(STRANGER, PHONE_A, theirs, "at 9")
    ((entry,), edits) = await net.phone_inbox(STRANGER), await net.phone_log(STRANGER)
    assert (entry["text"], entry["edited"]) == ("the", True)
    assert [(e["type"], e["text"]) for e in edits] == [("edit", "the")]


async def test_unknown_targets_are_not_found(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    await link(net, "u2-b", PHONE_B)
    elsewhere = await net.send("u2-b", new_message_id(), STRANGER, "another chat")
    for target_id in ("3EB0000000000000DEAD", elsewhere):
        ref = {"id": target_id, "from_me": True}
        with pytest.raises(NotFound, match="no message"):
            await net.react("u1-a", STRANGER, ref, "👍")
        with pytest.raises(NotFound):
            await net.edit("u1-a", STRANGER, target_id, "x")
        with pytest.raises(NotFound):
            await net.revoke("u1-a", STRANGER, ref)
        with pytest.raises(NotFound):
            await net.phone_react(STRANGER, PHONE_A, target_id, "👍")
        with pytest.raises(NotFound):
            await net.phone_vote(STRANGER, PHONE_A, target_id, [])
    mine = await net.send("u1-a", new_message_id(), STRANGER, "mine")
    # WhatsApp's MessageKey: the same id with the other from_me is another message.
    with pytest.raises(NotFound):
        await net.react("u1-a", STRANGER, {"id": mine, "from_me": False}, "👍")


async def test_votes_must_name_the_polls_options(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    text_id = await net.send("u1-a", new_message_id(), STRANGER, "not a poll")
    poll = {"question": "Q?", "options": ["a", "b", "c"], "max_selections": 2}
    poll_id = await net.send("u1-a", new_message_id(), STRANGER, None, extras={"poll": poll})
    with pytest.raises(ValidationFailed, match="not a poll"):
        await net.phone_vote(STRANGER, PHONE_A, text_id, ["a"])
    with pytest.raises(ValidationFailed, match="not an option"):
        await net.phone_vote(STRANGER, PHONE_A, poll_id, ["z"])
    with pytest.raises(ValidationFailed, match="at most 2"):
        await net.phone_vote(STRANGER, PHONE_A, poll_id, ["a", "b", "c"])
    await net.phone_vote(STRANGER, PHONE_A, poll_id, ["c", "a"])
    (vote,) = await events(net, "u1-a", "vote")
    assert vote["selected_hashes"] == [hashlib.sha256(o.encode()).hexdigest() for o in "ca"]
    (seen,) = await net.phone_log(PHONE_A)  # the account's own phone sees the vote too
    assert (seen["type"], seen["from"], seen["options"]) == ("vote", STRANGER, ["c", "a"])


async def test_actions_need_a_linked_online_device_and_valid_values(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    mine = await net.send("u1-a", new_message_id(), STRANGER, "x")
    with pytest.raises(ValidationFailed, match="dancing"):
        await net.set_presence("u1-a", STRANGER, "dancing")
    with pytest.raises(ValidationFailed, match="available"):
        await net.set_presence("u1-a", STRANGER, "available")  # a chat presence only
    with pytest.raises(ValidationFailed, match="reaction"):
        await net.react("u1-a", STRANGER, {"id": mine, "from_me": True}, "x" * 40)
    await net.connect("u9-z", None)
    with pytest.raises(DeviceNotLinked):
        await net.mark_read("u9-z", STRANGER, ["3EB0000000000000BEEF"])


# -- how actions reach the other side --------------------------------------------------------
async def test_actions_between_two_linked_devices(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    await link(net, "u2-b", PHONE_B)
    mid = await net.send("u1-a", new_message_id(), PHONE_B, "hi b")
    reaction = await net.react("u2-b", PHONE_A, {"id": mid, "from_me": False}, "🎉")
    await net.edit("u1-a", PHONE_B, mid, "hi B")
    await net.set_presence("u2-b", PHONE_A, "typing")
    await net.mark_read("u2-b", PHONE_A, [mid])
    await net.revoke("u1-a", PHONE_B, {"id": mid, "from_me": True})
    (got,) = await events(net, "u1-a", "reaction")
    assert (got["id"], got["target_id"], got["emoji"], got["chat"]) == (
        reaction,
        mid,
        "🎉",
        PHONE_B,
    )
    assert got["sender_alt"] == await net.lid_of(PHONE_B)
    ((edit,), (revoke,)) = await events(net, "u2-b", "edit"), await events(net, "u2-b", "revoke")
    assert (edit["target_id"], edit["text"], revoke["target_id"]) == (mid, "hi B", mid)
    assert [e["state"] for e in await events(net, "u1-a", "presence")] == ["typing"]
    log_a = await net.phone_log(PHONE_A)
    assert [(e["type"], e["from"]) for e in log_a] == [
        ("reaction", PHONE_B),
        ("presence", PHONE_B),
        ("read", PHONE_B),
    ]
    (entry,) = await net.phone_inbox(PHONE_B)
    assert entry == {
        "id": mid,
        "from": PHONE_A,
        "timestamp": T0.isoformat(),
        "text": None,
        "revoked": True,
    }
    with pytest.raises(ValidationFailed, match="was deleted"):
        await net.edit("u1-a", PHONE_B, mid, "again")


async def test_actions_of_a_lid_addressed_phone(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    mid = await net.send("u1-a", new_message_id(), STRANGER, "hi")
    lid = await net.address_by_lid(STRANGER, share_phone=False)
    await net.phone_react(STRANGER, PHONE_A, mid, "👍")
    await net.phone_presence(STRANGER, PHONE_A, "available")
    for event in await events(net, "u1-a", "reaction") + await events(net, "u1-a", "presence"):
        assert (event["chat"], event["sender"], event["sender_alt"]) == (lid, lid, None)
    await net.react("u1-a", lid, {"id": mid, "from_me": True}, "")  # a LID names the chat
    assert [e["emoji"] for e in await net.phone_log(STRANGER)] == [""]


async def test_the_own_phones_message_is_from_me(net: SimNetwork) -> None:
    await link(net, "u1-a", PHONE_A)
    await link(net, "u2-b", PHONE_B)
    mid = await net.phone_send_own(PHONE_A, PHONE_B, "by hand")
    (own,) = await events(net, "u1-a", "message")
    assert (own["id"], own["from_me"], own["chat"], own["sender"]) == (mid, True, PHONE_B, PHONE_A)
    assert own["chat_alt"] == await net.lid_of(PHONE_B)
    (theirs,) = await events(net, "u2-b", "message")
    assert (theirs["id"], theirs["chat"], theirs.get("from_me")) == (mid, PHONE_A, None)
    assert [e["text"] for e in await net.phone_inbox(PHONE_B)] == ["by hand"]
    # The account can act on it as its own message.
    await net.edit("u1-a", PHONE_B, mid, "by hand!")


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


async def test_http_refusals_keep_the_error_shape(
    net: SimNetwork, simnet_url: str, clock: Clock
) -> None:
    await link(net, "u1-a", PHONE_A)
    http_link = HttpSimLink(simnet_url, timeout=5.0)
    try:
        mine = await http_link.send("u1-a", new_message_id(), STRANGER, "x")
        clock.now += timedelta(minutes=16)
        with pytest.raises(ValidationFailed, match="15 minutes") as info:
            await http_link.edit("u1-a", STRANGER, mine, "y")
        assert info.value.hint and info.value.status == 422
        with pytest.raises(NotFound):
            await http_link.phone_react(STRANGER, PHONE_A, "3EB0000000000000DEAD", "👍")
        with pytest.raises(ValidationFailed, match="1 options"):
            poll = {"question": "Q", "options": ["a"]}
            await http_link.send("u1-a", new_message_id(), STRANGER, None, extras={"poll": poll})
        async with httpx.AsyncClient(base_url=simnet_url) as http:
            bad = await http.post(
                "/devices/u1-a/reactions", json={"chat": STRANGER, "target": {"id": mine}}
            )
            assert bad.status_code == 422 and bad.json()["errcode"] == "validation_error"
            log = await http.get("/phones/%2B5511999990077/log")
            assert log.status_code == 200 and log.json() == {"items": []}
    finally:
        await http_link.aclose()


# -- the sim engine's polls ------------------------------------------------------------------
async def test_the_engine_remembers_its_polls_across_a_restart(
    net: SimNetwork, tmp_path: Path
) -> None:
    seen: list[EngineEvent] = []

    async def emit(event: EngineEvent) -> None:
        seen.append(event)

    def engine() -> SimEngine:
        return SimEngine(
            client_id="u1-a",
            session_dir=tmp_path / "s",
            emit=emit,
            options=EngineOptions(),
            link=LocalSimLink(net),
        )

    first = engine()
    await first.start()
    qr = next(e.qr for e in seen if isinstance(e, QrUpdated))
    await net.scan(qr, PHONE_A)
    await wait_for(lambda: first.state is SessionState.CONNECTED, what="CONNECTED")
    poll = Poll(question="Pizza?", options=("Calabresa", "Margherita"))
    poll_id = await first.send_poll(message_id=new_message_id(), to=STRANGER, poll=poll)
    await first.stop()
    assert (tmp_path / "s" / POLLS_FILE).stat().st_mode & 0o077 == 0

    second = engine()
    await second.start()
    await wait_for(lambda: second.state is SessionState.CONNECTED, what="resumed")
    await net.phone_vote(STRANGER, PHONE_A, poll_id, ["Calabresa"])
    await wait_for(lambda: any(isinstance(e, PollVoted) for e in seen), what="a vote")
    (vote,) = [e for e in seen if isinstance(e, PollVoted)]
    assert (vote.selected, vote.selected_hashes) == (("Calabresa",), (option_hash("Calabresa"),))
    await second.stop()
