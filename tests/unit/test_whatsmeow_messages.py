"""The whatsmeow engine's messages beyond text and media (issue 9), on real neonize
protobufs fed through neonize's own event entry point by the fake WhatsApp: what
test_engine_messages.py does not reach (contact arrays, V3 polls, quotes of our own
messages, LID mentions, wrapped edits, presence details, votes that cannot be read, a
poll remembered across a restart) and the messages the engine builds."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.contract.test_engine_contract import PHONE_A, wait_for
from tests.contract.whatsmeow_fake import FakeWhatsApp, jid, message_event, source
from tests.media_samples import OGG, jpeg_bytes, webp_bytes
from tests.unit.test_whatsmeow import link, linked, make, network, push
from zapgate.domain.content import ContactCard, LinkPreview, MessageRef, Poll, Quote
from zapgate.domain.events import (
    ChatRead,
    MessageEdited,
    PollVoted,
    PresenceChanged,
    ReactionReceived,
)
from zapgate.domain.ids import new_message_id
from zapgate.domain.models import MessageStatus
from zapgate.engines.whatsmeow import messages

__all__ = ["linked", "network"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.timeout(60)
STRANGER = "+5511999990077"


async def test_inbound_quotes_mentions_contacts_polls_and_voice_notes(linked: Any) -> None:
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
        AudioMessage,
        ContactMessage,
        ContactsArrayMessage,
        ContextInfo,
        ExtendedTextMessage,
        Message,
        PollCreationMessage,
    )

    _, rec, net = linked
    friend = jid(STRANGER)
    await asyncio.to_thread(net.teach, PHONE_A, "222@lid", "+5511999990078")
    reply = ExtendedTextMessage(
        text="yes",
        contextInfo=ContextInfo(
            stanzaID="W1",
            participant=f"{PHONE_A.lstrip('+')}@s.whatsapp.net",
            quotedMessage=Message(conversation="ready?"),
            mentionedJID=["5511999990077@s.whatsapp.net", "222@lid", "333@lid"],
        ),
    )
    cards = ContactsArrayMessage(
        displayName="2 contacts",
        contacts=[
            ContactMessage(
                displayName="Maria",
                vcard="BEGIN:VCARD\nVERSION:3.0\nFN:Maria\nORG:Padaria;\n"
                "EMAIL;type=INTERNET:m@example.com\n"
                "TEL;type=CELL;type=VOICE;waid=5511988887777:+55 11 98888-7777\nEND:VCARD",
            ),
            ContactMessage(
                displayName="Zé", vcard="BEGIN:VCARD\nFN:Zé\nTEL:+55 21 97777-6666\nEND:VCARD"
            ),
        ],
    )
    poll = PollCreationMessage(
        name="Quando?",
        options=[PollCreationMessage.Option(optionName=o) for o in ("sáb", "dom", "seg")],
        selectableOptionsCount=0,
    )
    voice = AudioMessage(PTT=True, mimetype="audio/ogg; codecs=opus", fileLength=9)
    await push(
        net,
        message_event("R1", source(friend, friend), Message(extendedTextMessage=reply)),
        message_event("R2", source(friend, friend), Message(contactsArrayMessage=cards)),
        message_event("R3", source(friend, friend), Message(pollCreationMessageV3=poll)),
        message_event("R4", source(friend, friend), Message(audioMessage=voice)),
    )
    await wait_for(lambda: len(rec.received()) == 4, what="four messages")
    got = {m.id: m for m in rec.received()}
    quote = got["R1"].extras.quote
    # Our own message quoted: no sender (this session's number).
    assert quote == Quote(id="W1", sender=None, text="ready?")
    assert got["R1"].extras.mentions == (STRANGER, "+5511999990078", "333@lid")
    maria, ze = got["R2"].extras.contacts
    assert (maria.name, maria.phone, maria.organization, maria.email) == (
        "Maria",
        "+5511988887777",
        "Padaria",
        "m@example.com",
    )
    assert (ze.name, ze.phone) == ("Zé", "+5521977776666")
    # WhatsApp's 0 selectable options: any number of them.
    assert got["R3"].extras.poll == Poll(
        question="Quando?", options=("sáb", "dom", "seg"), max_selections=3
    )
    media = got["R4"].media
    assert media is not None and (media.kind, media.mime) == ("voice", "audio/ogg; codecs=opus")


async def test_wrapped_edits_presence_and_own_reactions(linked: Any) -> None:
    from neonize.events import ChatPresenceEv, PresenceEv
    from neonize.proto.waCommon.WACommon_pb2 import MessageKey
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
        FutureProofMessage,
        Message,
        ProtocolMessage,
        ReactionMessage,
    )

    _, rec, net = linked
    friend = jid(STRANGER)
    key = MessageKey(remoteJID="5511999990077@s.whatsapp.net", fromMe=False, ID="E1")
    edit = ProtocolMessage(
        key=key, type=ProtocolMessage.MESSAGE_EDIT, editedMessage=Message(conversation="new")
    )
    await push(
        net,
        # An edit still in its editedMessage wrapper (events built outside UnwrapRaw).
        message_event(
            "E2",
            source(friend, friend),
            Message(editedMessage=FutureProofMessage(message=Message(protocolMessage=edit))),
        ),
        # This number reacted from its phone.
        message_event(
            "E3",
            source(friend, jid(PHONE_A), from_me=True),
            Message(reactionMessage=ReactionMessage(key=key, text="🙏")),
        ),
        ChatPresenceEv(MessageSource=source(friend, friend), State=2, Media=1),
        PresenceEv(From=friend, Unavailable=True, LastSeen=1_700_000_000),
    )
    await wait_for(
        lambda: sum(isinstance(e, PresenceChanged) for e in rec.events) == 2, what="presence"
    )
    (edited,) = [e for e in rec.events if isinstance(e, MessageEdited)]
    assert (edited.target_id, edited.text, edited.sender) == ("E1", "new", STRANGER)
    (reaction,) = [e for e in rec.events if isinstance(e, ReactionReceived)]
    assert (reaction.id, reaction.chat, reaction.sender, reaction.from_me) == (
        "E3",
        STRANGER,
        PHONE_A,
        True,
    )
    paused, gone = [e for e in rec.events if isinstance(e, PresenceChanged)]
    assert (paused.chat, paused.state, paused.last_seen) == (STRANGER, "paused", None)
    assert gone.state == "unavailable" and gone.last_seen is not None
    assert gone.last_seen.timestamp() == 1_700_000_000


async def test_poll_options_survive_a_restart_and_bad_votes_are_dropped(
    tmp_path: Path, network: FakeWhatsApp
) -> None:
    from neonize.proto.waCommon.WACommon_pb2 import MessageKey
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
        Message,
        PollEncValue,
        PollUpdateMessage,
    )

    engine, rec = make(tmp_path, network.config())
    engine.probe_target = None
    await link(engine, rec, network, PHONE_A)
    poll = Poll(
        question="Pizza?", options=("Calabresa", "Margherita", "Portuguesa"), max_selections=2
    )
    poll_id = await engine.send_poll(message_id=new_message_id(), to=STRANGER, poll=poll)
    (entry,) = network.inboxes[STRANGER]
    # whatsmeow takes any count up to the options (neonize's VoteType names only 0 and 1).
    assert entry["poll"]["max_selections"] == 2
    await engine.stop()
    assert engine.polls_path.is_file()

    again, rec2 = make(tmp_path, network.config())
    again.probe_target = None
    await again.start()
    await wait_for(lambda: again.phone == PHONE_A, timeout=10, what="the resumed session")
    try:
        garbage = PollUpdateMessage(
            pollCreationMessageKey=MessageKey(
                remoteJID=f"{PHONE_A.lstrip('+')}@s.whatsapp.net", fromMe=False, ID=poll_id
            ),
            vote=PollEncValue(encPayload=b"\x00" * 40, encIV=b"\x01" * 12),
        )
        await push(
            network,
            message_event(
                "V0", source(jid(STRANGER), jid(STRANGER)), Message(pollUpdateMessage=garbage)
            ),
        )
        await asyncio.to_thread(
            network.phone_vote, STRANGER, PHONE_A, poll_id, ["Portuguesa", "Calabresa"]
        )
        await wait_for(lambda: any(isinstance(e, PollVoted) for e in rec2.events), what="a vote")
        (vote,) = [e for e in rec2.events if isinstance(e, PollVoted)]
        assert vote.selected == ("Portuguesa", "Calabresa")
        assert vote.selected_hashes == tuple(
            hashlib.sha256(o.encode()).hexdigest() for o in ("Portuguesa", "Calabresa")
        )
    finally:
        await again.stop()
        await again.runtime.aclose()


async def test_what_the_engine_sends(linked: Any) -> None:
    """Contact arrays, quoted stickers and voice notes, reactions to the phone's messages and revokes as
    whatsmeow's MessageKey names them."""
    engine, rec, net = linked
    asked = await asyncio.to_thread(net.phone_send, STRANGER, PHONE_A, "sticker?")
    await wait_for(lambda: bool(rec.received()), what="the question")
    cards = [
        ContactCard(name="Maria", phone="+5511988887777", organization="Padaria"),
        ContactCard(name="João", phone="+5521977776666", email="j@example.com"),
    ]
    ids = [
        await engine.send_contacts(message_id=new_message_id(), to=STRANGER, contacts=cards),
        await engine.send_media(
            message_id=new_message_id(),
            to=STRANGER,
            kind="sticker",
            data=webp_bytes(),
            mime="image/webp",
            quote=Quote(id=asked, sender=STRANGER, text="sticker?"),
        ),
        await engine.send_media(
            message_id=new_message_id(),
            to=STRANGER,
            kind="voice",
            data=OGG,
            mime="audio/ogg",
            quote=Quote(id=asked, sender=STRANGER),
        ),
    ]
    await wait_for(lambda: all(MessageStatus.READ in rec.acks(i) for i in ids), what="READs")
    contacts, sticker, voice = net.inboxes[STRANGER]
    assert [c["phone"] for c in contacts["contacts"]] == ["+5511988887777", "+5521977776666"]
    assert (sticker["media"]["kind"], sticker["quote"]["id"]) == ("sticker", asked)
    assert (voice["media"]["kind"], voice["media"]["mime"], voice["quote"]["id"]) == (
        "voice",
        "audio/ogg; codecs=opus",
        asked,
    )
    await engine.react(chat=STRANGER, target=MessageRef(id=asked, from_me=False), emoji="👍")
    await engine.revoke(chat=STRANGER, target=MessageRef(id=ids[0], from_me=True))
    await wait_for(lambda: len(net.phone_log(STRANGER)) == 2, what="the reaction and revoke")
    assert [(e["type"], e["id"]) for e in net.phone_log(STRANGER)] == [
        ("reaction", asked),
        ("revoke", ids[0]),
    ]


def test_a_vcard_is_built_as_whatsapp_writes_it() -> None:
    card = {"name": "Maria Souza", "phone": "+5511988887777", "organization": "Padaria"}
    assert messages.vcard(card) == (
        "BEGIN:VCARD\nVERSION:3.0\nFN:Maria Souza\nORG:Padaria;\n"
        "TEL;type=CELL;type=VOICE;waid=5511988887777:+5511988887777\nEND:VCARD"
    )
    assert messages.vcard({**card, "vcard": "BEGIN:VCARD\nEND:VCARD"}) == "BEGIN:VCARD\nEND:VCARD"


def test_a_quote_of_another_authors_message_keeps_its_author() -> None:
    """Without the quoted message's copy, the quote has no text (convert.py, offline)."""
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ContextInfo, ExtendedTextMessage, Message

    from zapgate.engines.whatsmeow import convert

    class NoStore:
        def get_lid_from_pn(self, _: Any) -> Any:
            raise RuntimeError("no lid")

    message = Message(
        extendedTextMessage=ExtendedTextMessage(
            text="hi",
            contextInfo=ContextInfo(stanzaID="Q", participant="5511999990077@s.whatsapp.net"),
        )
    )
    assert convert.extras(NoStore(), message) == {
        "quote": {"id": "Q", "sender": STRANGER, "text": None}
    }


async def test_the_newest_polls_are_remembered(
    tmp_path: Path, network: FakeWhatsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zapgate.engines.whatsmeow import engine as engine_module

    monkeypatch.setattr(engine_module, "POLL_MEMORY", 2)
    engine, _ = make(tmp_path, network.config())
    for poll_id in ("B", "A", "C"):
        await engine._remember_poll(poll_id, [poll_id.lower(), "x"])
    again, _ = make(tmp_path, network.config())
    sha = hashlib.sha256(b"c").hexdigest()
    assert await again._poll_choices("C", (sha,)) == ("c",)
    assert await again._poll_choices("B", (hashlib.sha256(b"b").hexdigest(),)) == ()
    assert list(await again._load_polls()) == ["A", "C"]


async def test_the_accounts_own_read_receipts_are_chat_reads(linked: Any) -> None:
    """whatsmeow reports a chat read on the phone as a Receipt from the account itself:
    `read`, or `read-self` when its read receipts are off (receipt.go). In a LID chat the
    phone is in RecipientAlt. Other receipts of its own (played, delivered) are nothing."""
    from neonize.events import ReceiptEv
    from neonize.proto.Neonize_pb2 import Receipt

    _, rec, net = linked
    own = jid(PHONE_A)
    lid = jid("184726394857261", server="lid")
    in_lid_chat = source(lid, own, from_me=True)
    in_lid_chat.RecipientAlt.CopyFrom(jid(STRANGER))

    def own_receipt(src: Any, ids: list[str], kind: int) -> Any:
        return ReceiptEv(MessageSource=src, MessageIDs=ids, Timestamp=1_700_000_000, Type=kind)

    await push(
        net,
        own_receipt(source(own, own, from_me=True), ["X1"], Receipt.PLAYED_SELF),
        own_receipt(source(own, own, from_me=True), ["X2"], Receipt.DELIVERED),
        own_receipt(in_lid_chat, ["R1", "R2"], Receipt.READ_SELF),
        own_receipt(source(jid(STRANGER), own, from_me=True), ["R3"], Receipt.READ),
    )
    await wait_for(
        lambda: sum(isinstance(e, ChatRead) for e in rec.events) == 2, what="the chat reads"
    )
    by_lid, by_phone = [e for e in rec.events if isinstance(e, ChatRead)]
    assert (by_lid.chat, by_lid.chat_lid, by_lid.ids) == (
        STRANGER,
        "184726394857261@lid",
        ("R1", "R2"),
    )
    assert by_lid.timestamp.timestamp() == 1_700_000_000
    assert (by_phone.chat, by_phone.ids) == (STRANGER, ("R3",))
    assert not any(rec.acks(i) for i in ("X1", "X2", "R1", "R3"))


async def test_inbound_link_previews(linked: Any) -> None:
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ExtendedTextMessage, Message

    _, rec, net = linked
    friend = jid(STRANGER)
    bare = ExtendedTextMessage(text="https://example.com/x", matchedText="https://example.com/x")
    plain = ExtendedTextMessage(text="no link here")
    await push(
        net,
        message_event("L1", source(friend, friend), Message(extendedTextMessage=bare)),
        message_event("L2", source(friend, friend), Message(extendedTextMessage=plain)),
    )
    await wait_for(lambda: len(rec.received()) == 2, what="two texts")
    with_card, without = rec.received()
    assert with_card.extras.preview == LinkPreview(url="https://example.com/x")
    assert without.extras.preview is None and not without.extras


async def test_a_preview_whose_thumbnail_cannot_be_uploaded_goes_inline() -> None:
    class NoUpload:
        def upload(self, data: bytes, media_type: Any) -> Any:
            raise RuntimeError("media servers unreachable")

    thumb = jpeg_bytes()
    part = messages.link_preview(NoUpload(), {"url": "https://example.com", "title": "T"}, thumb)
    assert (part.matchedText, part.title, part.JPEGThumbnail) == ("https://example.com", "T", thumb)
    assert not part.thumbnailDirectPath
