"""The engine contract, part two: every kind of message beyond text and media, both ways,
over every engine (the harnesses of test_engine_contract.py).

The phone side (`EngineHarness.phone_*`) plays WhatsApp's users. A phone's inbox entry of a
rich message carries, beside {id, from, text, media?}: `quote` {id} when it replies,
`mentions` [phones], `location` {latitude, longitude, name, address}, `contacts`
[{name, phone, vcard}], `poll` {question, options, max_selections}, `preview` {url, title,
description, thumbnail (base64)}; a sticker or a voice note is `media.kind` "sticker" /
"voice". What a phone sees besides messages (reactions, edits, deletions, read receipts,
presence) is in `phone_log`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from typing import Any

import pytest

from tests.contract.test_engine_contract import (
    PHONE_A,
    STRANGER,
    EngineHarness,
    Recorder,
    engine_harness,
    wait_for,
)
from tests.media_samples import OGG, jpeg_bytes, webp_bytes
from zapgate.domain.content import ContactCard, LinkPreview, Location, MessageRef, Poll, Quote
from zapgate.domain.events import (
    ChatRead,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    PollVoted,
    PresenceChanged,
    ReactionReceived,
)
from zapgate.domain.ids import new_message_id
from zapgate.domain.models import MessageStatus
from zapgate.engines.base import Engine

__all__ = ["engine_harness"]  # the fixture, imported for pytest

CAPABILITIES = {
    "reply",
    "send_location",
    "send_contacts",
    "polls",
    "reactions",
    "edit",
    "revoke",
    "read_receipts",
    "presence",
    "link_preview",
}


def _log(entries: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["type"] == kind]


async def _wait_log(engine_harness: EngineHarness, phone: str, kind: str) -> None:
    """Until `phone` saw an action of `kind` (its log is read by awaiting, so no wait_for)."""
    deadline = time.monotonic() + 5.0
    while not _log(await engine_harness.phone_log(phone), kind):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for a {kind} at {phone}")
        await asyncio.sleep(0.01)


async def _inbound(engine_harness: EngineHarness, text: str = "oi") -> tuple[Engine, Recorder, str]:
    """A linked engine, its recorder, and the id of a message STRANGER wrote to it."""
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    msg_id = await engine_harness.phone_send(STRANGER, PHONE_A, text)
    await wait_for(lambda: bool(rec.received()), what="an inbound message")
    return engine, rec, msg_id


async def test_every_engine_has_the_message_capabilities(engine_harness: EngineHarness) -> None:
    engine, _ = engine_harness.engine()
    assert set(engine.capabilities) >= CAPABILITIES


# -- replies and mentions ------------------------------------------------------------------
async def test_a_reply_quotes_the_phones_message(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    asked = await engine_harness.phone_send(STRANGER, PHONE_A, "what time?")
    await wait_for(lambda: bool(rec.received()), what="the question")
    wa_id = await engine.send_text(
        message_id=new_message_id(),
        to=STRANGER,
        text="at nine",
        quote=Quote(id=asked, sender=STRANGER, text="what time?"),
    )
    await wait_for(lambda: MessageStatus.READ in rec.acks(wa_id), what="READ ack")
    (entry,) = await engine_harness.phone_inbox(STRANGER)
    assert (entry["id"], entry["text"], entry["quote"]["id"]) == (wa_id, "at nine", asked)


async def test_mentions_reach_the_phone(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    wa_id = await engine.send_text(
        message_id=new_message_id(),
        to=STRANGER,
        text="@5511999990077 look",
        mentions=(STRANGER,),
    )
    await wait_for(lambda: MessageStatus.READ in rec.acks(wa_id), what="READ ack")
    (entry,) = await engine_harness.phone_inbox(STRANGER)
    assert entry["mentions"] == [STRANGER]


async def test_a_phones_reply_carries_the_quoted_id(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    wa_id = await engine.send_text(message_id=new_message_id(), to=STRANGER, text="ready?")
    reply = await engine_harness.phone_send_rich(
        STRANGER, PHONE_A, text="yes", quote_id=wa_id, mentions=(PHONE_A,)
    )
    await wait_for(lambda: bool(rec.received()), what="the reply")
    (msg,) = rec.received()
    assert (msg.id, msg.text, msg.from_me) == (reply, "yes", False)
    assert msg.extras.quote is not None and msg.extras.quote.id == wa_id
    assert msg.extras.mentions == (PHONE_A,)


# -- locations, contacts, stickers, voice notes ---------------------------------------------
async def test_a_location_both_ways(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    pin = Location(latitude=-23.5613, longitude=-46.6565, name="MASP", address="Av. Paulista")
    wa_id = await engine.send_location(message_id=new_message_id(), to=STRANGER, location=pin)
    await wait_for(lambda: MessageStatus.READ in rec.acks(wa_id), what="READ ack")
    (entry,) = await engine_harness.phone_inbox(STRANGER)
    got = entry["location"]
    assert (got["latitude"], got["longitude"], got["name"]) == (-23.5613, -46.6565, "MASP")

    back = Location(latitude=-22.9519, longitude=-43.2105)
    msg_id = await engine_harness.phone_send_rich(STRANGER, PHONE_A, location=back)
    await wait_for(lambda: bool(rec.received()), what="an inbound location")
    (msg,) = rec.received()
    assert msg.id == msg_id and msg.extras.kind == "location"
    assert msg.extras.location is not None
    assert (msg.extras.location.latitude, msg.extras.location.longitude) == (-22.9519, -43.2105)


async def test_contacts_both_ways(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    card = ContactCard(name="Maria Souza", phone="+5511988887777", organization="Padaria")
    wa_id = await engine.send_contacts(message_id=new_message_id(), to=STRANGER, contacts=[card])
    await wait_for(lambda: MessageStatus.READ in rec.acks(wa_id), what="READ ack")
    (entry,) = await engine_harness.phone_inbox(STRANGER)
    (got,) = entry["contacts"]
    assert got["name"] == "Maria Souza"
    # The vCard WhatsApp shows was built for the user, with the number WhatsApp links.
    assert "BEGIN:VCARD" in got["vcard"] and "FN:Maria Souza" in got["vcard"]
    assert "waid=5511988887777" in got["vcard"]

    msg_id = await engine_harness.phone_send_rich(
        STRANGER, PHONE_A, contacts=(ContactCard(name="João", phone="+5521977776666"),)
    )
    await wait_for(lambda: bool(rec.received()), what="inbound contacts")
    (msg,) = rec.received()
    assert msg.id == msg_id and msg.extras.kind == "contacts"
    (card_in,) = msg.extras.contacts
    assert (card_in.name, card_in.phone) == ("João", "+5521977776666")


async def test_a_sticker_and_a_voice_note_reach_the_phone(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    sticker = webp_bytes()
    ids = [
        await engine.send_media(
            message_id=new_message_id(),
            to=STRANGER,
            kind="sticker",
            data=sticker,
            mime="image/webp",
        ),
        await engine.send_media(
            message_id=new_message_id(), to=STRANGER, kind="voice", data=OGG, mime="audio/ogg"
        ),
    ]
    await wait_for(lambda: all(MessageStatus.READ in rec.acks(i) for i in ids), what="READs")
    inbox = await engine_harness.phone_inbox(STRANGER)
    assert [(e["id"], e["media"]["kind"]) for e in inbox] == [
        (ids[0], "sticker"),
        (ids[1], "voice"),
    ]
    assert inbox[0]["media"]["sha256"] == hashlib.sha256(sticker).hexdigest()


# -- link previews ---------------------------------------------------------------------------
async def test_a_link_preview_both_ways(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    card = LinkPreview(
        url="https://example.com/menu",
        title="Cardápio",
        description="Pizzas e massas",
        thumbnail=jpeg_bytes(),
    )
    wa_id = await engine.send_text(
        message_id=new_message_id(),
        to=STRANGER,
        text="olha https://example.com/menu hoje",
        preview=card,
    )
    await wait_for(lambda: MessageStatus.READ in rec.acks(wa_id), what="READ ack")
    (entry,) = await engine_harness.phone_inbox(STRANGER)
    assert (entry["id"], entry["text"]) == (wa_id, "olha https://example.com/menu hoje")
    assert entry["preview"] == {
        "url": "https://example.com/menu",
        "title": "Cardápio",
        "description": "Pizzas e massas",
        "thumbnail": base64.b64encode(card.thumbnail or b"").decode(),
    }

    back = LinkPreview(url="https://example.org/a", title="A page", thumbnail=jpeg_bytes())
    msg_id = await engine_harness.phone_send_rich(
        STRANGER, PHONE_A, text="see https://example.org/a", preview=back
    )
    await wait_for(lambda: bool(rec.received()), what="an inbound text with a preview")
    (msg,) = rec.received()
    assert (msg.id, msg.text, msg.extras.kind) == (msg_id, "see https://example.org/a", None)
    assert msg.extras.preview == back


async def test_a_text_without_a_preview_carries_none(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    wa_id = await engine.send_text(
        message_id=new_message_id(), to=STRANGER, text="https://example.com, no card"
    )
    await wait_for(lambda: MessageStatus.READ in rec.acks(wa_id), what="READ ack")
    (entry,) = await engine_harness.phone_inbox(STRANGER)
    assert "preview" not in entry


# -- polls -----------------------------------------------------------------------------------
async def test_a_poll_and_its_votes(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    poll = Poll(question="Pizza?", options=("Calabresa", "Margherita", "Portuguesa"))
    poll_id = await engine.send_poll(message_id=new_message_id(), to=STRANGER, poll=poll)
    await wait_for(lambda: MessageStatus.SENT in rec.acks(poll_id), what="SENT ack")
    (entry,) = await engine_harness.phone_inbox(STRANGER)
    assert entry["poll"]["options"] == list(poll.options)

    def votes() -> list[PollVoted]:
        return [e for e in rec.events if isinstance(e, PollVoted)]

    await engine_harness.phone_vote(STRANGER, PHONE_A, poll_id, ["Margherita"])
    await wait_for(lambda: len(votes()) == 1, what="a vote")
    await engine_harness.phone_vote(STRANGER, PHONE_A, poll_id, [])
    await wait_for(lambda: len(votes()) == 2, what="a withdrawn vote")
    first, withdrawn = votes()
    assert (first.poll_id, first.chat, first.sender) == (poll_id, STRANGER, STRANGER)
    assert first.selected_hashes == (hashlib.sha256(b"Margherita").hexdigest(),)
    # The engine that sent the poll knows its options: it names the choice.
    assert first.selected == ("Margherita",)
    assert (withdrawn.selected, withdrawn.selected_hashes) == ((), ())


async def test_a_poll_from_a_phone(engine_harness: EngineHarness) -> None:
    _, rec = await engine_harness.linked(phone=PHONE_A)
    poll = Poll(question="Quando?", options=("Sábado", "Domingo"), max_selections=2)
    msg_id = await engine_harness.phone_send_rich(STRANGER, PHONE_A, poll=poll)
    await wait_for(lambda: bool(rec.received()), what="an inbound poll")
    (msg,) = rec.received()
    assert msg.id == msg_id and msg.extras.poll == poll


# -- reactions, edits, deletions ---------------------------------------------------------------
async def test_reactions_both_ways(engine_harness: EngineHarness) -> None:
    engine, rec, msg_id = await _inbound(engine_harness, "bom dia")
    await engine.react(chat=STRANGER, target=MessageRef(id=msg_id, from_me=False), emoji="👍")
    await _wait_log(engine_harness, STRANGER, "reaction")

    wa_id = await engine.send_text(message_id=new_message_id(), to=STRANGER, text="obrigado")
    reaction_id = await engine_harness.phone_react(STRANGER, PHONE_A, wa_id, "❤️")
    await engine_harness.phone_react(STRANGER, PHONE_A, wa_id, "")

    def reactions() -> list[ReactionReceived]:
        return [e for e in rec.events if isinstance(e, ReactionReceived)]

    await wait_for(lambda: len(reactions()) == 2, what="a reaction and its removal")
    added, removed = reactions()
    assert (added.id, added.target_id, added.emoji, added.chat) == (
        reaction_id,
        wa_id,
        "❤️",
        STRANGER,
    )
    assert (added.sender, added.from_me) == (STRANGER, False)
    assert (removed.target_id, removed.emoji) == (wa_id, "")
    (mine,) = _log(await engine_harness.phone_log(STRANGER), "reaction")
    assert (mine["id"], mine["emoji"], mine["from"]) == (msg_id, "👍", PHONE_A)


async def test_an_edit_both_ways(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    wa_id = await engine.send_text(message_id=new_message_id(), to=STRANGER, text="teh price")
    await wait_for(lambda: MessageStatus.READ in rec.acks(wa_id), what="READ ack")
    await engine.edit(chat=STRANGER, target_id=wa_id, text="the price")
    await _wait_log(engine_harness, STRANGER, "edit")
    (edit,) = _log(await engine_harness.phone_log(STRANGER), "edit")
    assert (edit["id"], edit["text"], edit["from"]) == (wa_id, "the price", PHONE_A)

    msg_id = await engine_harness.phone_send(STRANGER, PHONE_A, "see you at 8")
    await engine_harness.phone_edit(STRANGER, PHONE_A, msg_id, "see you at 9")
    await wait_for(
        lambda: any(isinstance(e, MessageEdited) for e in rec.events), what="an inbound edit"
    )
    (edited,) = [e for e in rec.events if isinstance(e, MessageEdited)]
    assert (edited.target_id, edited.text, edited.chat, edited.sender) == (
        msg_id,
        "see you at 9",
        STRANGER,
        STRANGER,
    )


async def test_a_deletion_both_ways(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    wa_id = await engine.send_text(message_id=new_message_id(), to=STRANGER, text="oops")
    await wait_for(lambda: MessageStatus.SENT in rec.acks(wa_id), what="SENT ack")
    await engine.revoke(chat=STRANGER, target=MessageRef(id=wa_id, from_me=True))
    await _wait_log(engine_harness, STRANGER, "revoke")
    (gone,) = _log(await engine_harness.phone_log(STRANGER), "revoke")
    assert (gone["id"], gone["from"]) == (wa_id, PHONE_A)

    msg_id = await engine_harness.phone_send(STRANGER, PHONE_A, "wrong chat")
    await engine_harness.phone_revoke(STRANGER, PHONE_A, msg_id)
    await wait_for(
        lambda: any(isinstance(e, MessageRevoked) for e in rec.events), what="an inbound revoke"
    )
    (revoked,) = [e for e in rec.events if isinstance(e, MessageRevoked)]
    assert (revoked.target_id, revoked.chat, revoked.sender, revoked.from_me) == (
        msg_id,
        STRANGER,
        STRANGER,
        False,
    )


# -- receipts and presence -------------------------------------------------------------------
async def test_read_receipts_reach_the_phone(engine_harness: EngineHarness) -> None:
    engine, _, msg_id = await _inbound(engine_harness)
    await engine.mark_read(chat=STRANGER, ids=[msg_id])
    await _wait_log(engine_harness, STRANGER, "read")
    (read,) = _log(await engine_harness.phone_log(STRANGER), "read")
    assert (read["ids"], read["from"]) == ([msg_id], PHONE_A)


async def test_presence_both_ways(engine_harness: EngineHarness) -> None:
    engine, rec = await engine_harness.linked(phone=PHONE_A)
    await engine.set_presence(chat=STRANGER, state="typing")
    await _wait_log(engine_harness, STRANGER, "presence")
    (shown,) = _log(await engine_harness.phone_log(STRANGER), "presence")
    assert (shown["state"], shown["from"]) == ("typing", PHONE_A)

    await engine_harness.phone_presence(STRANGER, PHONE_A, "recording")

    def seen() -> list[PresenceChanged]:
        return [e for e in rec.events if isinstance(e, PresenceChanged)]

    await wait_for(lambda: bool(seen()), what="the phone's presence")
    (presence,) = seen()
    assert (presence.chat, presence.sender, presence.state) == (STRANGER, STRANGER, "recording")


async def test_presence_refuses_an_unknown_state(engine_harness: EngineHarness) -> None:
    engine, _ = await engine_harness.linked(phone=PHONE_A)
    with pytest.raises(Exception) as info:
        await engine.set_presence(chat=STRANGER, state="dancing")
    assert getattr(info.value, "errcode", None) == "validation_error"


async def test_the_own_phone_reading_a_chat(engine_harness: EngineHarness) -> None:
    _, rec, first = await _inbound(engine_harness)
    second = await engine_harness.phone_send(STRANGER, PHONE_A, "tá aí?")
    await wait_for(lambda: len(rec.received()) == 2, what="a second message")
    assert await engine_harness.phone_read_chat(PHONE_A, STRANGER) == [first, second]

    def reads() -> list[ChatRead]:
        return [e for e in rec.events if isinstance(e, ChatRead)]

    await wait_for(lambda: bool(reads()), what="the chat read on the phone")
    (read,) = reads()
    lid = await engine_harness.lid_of(STRANGER)
    assert (read.chat, read.chat_lid, read.ids) == (STRANGER, lid, (first, second))
    assert read.timestamp.tzinfo is not None
    # Nothing unread is left: opening the chat again sends no receipt.
    assert await engine_harness.phone_read_chat(PHONE_A, STRANGER) == []
    (receipt,) = _log(await engine_harness.phone_log(STRANGER), "read")
    assert (receipt["ids"], receipt["from"]) == ([first, second], PHONE_A)


async def test_what_the_engine_read_is_not_read_again_on_the_phone(
    engine_harness: EngineHarness,
) -> None:
    engine, rec, msg_id = await _inbound(engine_harness)
    await engine.mark_read(chat=STRANGER, ids=[msg_id])
    await _wait_log(engine_harness, STRANGER, "read")
    assert await engine_harness.phone_read_chat(PHONE_A, STRANGER) == []
    assert not any(isinstance(e, ChatRead) for e in rec.events)


# -- the account's own phone -----------------------------------------------------------------
async def test_a_message_from_the_own_phone_is_from_me(engine_harness: EngineHarness) -> None:
    _, rec = await engine_harness.linked(phone=PHONE_A)
    msg_id = await engine_harness.phone_send_from_own_phone(PHONE_A, STRANGER, "sent by hand")
    await wait_for(lambda: bool(rec.received()), what="the own phone's message")
    (msg,) = rec.received()
    assert isinstance(msg, MessageReceived)
    assert (msg.id, msg.chat, msg.text, msg.from_me) == (msg_id, STRANGER, "sent by hand", True)
    assert msg.sender == PHONE_A


async def test_messages_carry_the_senders_push_name(engine_harness: EngineHarness) -> None:
    """Every message carries the name its sender set in WhatsApp, a new one once changed;
    one from the account's own phone carries the account's name."""
    _, rec = await engine_harness.linked(phone=PHONE_A)
    await engine_harness.phone_send(STRANGER, PHONE_A, "before")
    await wait_for(lambda: len(rec.received()) == 1, what="a message")
    first = rec.received()[0].push_name
    assert first and first.strip() == first
    await engine_harness.set_push_name(STRANGER, "Ana Souza")
    await engine_harness.phone_send_rich(STRANGER, PHONE_A, text="after")
    await wait_for(lambda: len(rec.received()) == 2, what="a second message")
    assert rec.received()[1].push_name == "Ana Souza"
    await engine_harness.set_push_name(PHONE_A, "Loja do Zé")
    await engine_harness.phone_send_from_own_phone(PHONE_A, STRANGER, "from the shop")
    await wait_for(lambda: len(rec.received()) == 3, what="the own phone's message")
    own = rec.received()[2]
    assert own.from_me and own.push_name == "Loja do Zé"
